/**
 * readOnnxFile on files that are not ONNX models: the error says what the file is instead and how to get a model
 * from it, not protobuf's "invalid wire type 6 at offset 14". What `modelship inspect`, a failed load in `serve`
 * (log, metadata `reason`, the exit line of `--model`) and ModelSource.fromFile all print after
 * "'PATH' is not an ONNX model: ".
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { gzipSync } from 'node:zlib';
import { onnx } from 'onnx-proto';
import { readOnnxFile } from '@modelship/contract';
import { MODELS } from '../helpers/paths';

/** The start of a zip archive: one local file header (PK\3\4, 26 bytes of fields, the name) and the entry's bytes. */
function zipHolding(name: string, data = 'x'): Buffer {
  const header = Buffer.alloc(30);
  header.write('PK\x03\x04', 0, 'latin1');
  header.writeUInt16LE(Buffer.byteLength(name), 26);
  return Buffer.concat([header, Buffer.from(name), Buffer.from(data)]);
}

/** safetensors: the JSON header's length as a little-endian u64, the header, then the tensor bytes. */
function safetensors(): Buffer {
  const header = Buffer.from('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}');
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(header.length));
  return Buffer.concat([length, header, Buffer.alloc(4)]);
}

const reasonFor = (bytes: Uint8Array): string => {
  try {
    readOnnxFile(bytes);
  } catch (error) {
    return (error as Error).message;
  }
  assert.fail('readOnnxFile accepted bytes that are not an ONNX model');
};

describe('readOnnxFile on something else than an ONNX model', () => {
  const text = (s: string) => Buffer.from(s, 'utf8');
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['a text file', text('hello world, this is not a model\n'),
      /^it is 33 bytes of text \('hello world, this is not a model'\), not a model; point at the \.onnx file an exporter wrote \(torch\.onnx\.export, tf2onnx, skl2onnx\)$/],
    ['a long text file, cut with an ellipsis', text('x'.repeat(5000)), /^it is 5000 bytes of text \('x{32}\.\.\.'\), not a model; /],
    // /etc/hostname, as fromFile was once given it: three bytes that protobuf reads past ('3 + 10 > 3').
    ['a hostname', text('vm\n'), /^it is 3 bytes of text \('vm'\), not a model; point at the \.onnx file/],
    ['an empty file', new Uint8Array(0), /^the file is empty \(0 bytes\), as a failed copy or download leaves it; copy or download the model again$/],
    ['an HTML page from a failed download', text('\n<!DOCTYPE html>\n<html><head><title>Sign in</title>'), /^it is an HTML page of 51 bytes \('<!DOCTYPE html> <html><head><tit\.\.\.'\): a failed download, .*; download the model again$/],
    ['a Git LFS pointer', text('version https://git-lfs.github.com/spec/v1\noid sha256:4d7a\nsize 13287\n'), /^it is a Git LFS pointer \(70 bytes\) to a 13287-byte file, not the file itself; fetch it with 'git lfs pull'$/],
    ['a PyTorch checkpoint (.pt, a zip)', zipHolding('archive/data.pkl', '\x80\x02}q\x00.'), /^it looks like a PyTorch checkpoint \(a zip archive of \d+ bytes\); export it to ONNX with torch\.onnx\.export$/],
    ['a zip holding a model', zipHolding('resnet50/model.onnx'), /^it is a zip archive of \d+ bytes holding 'resnet50\/model\.onnx'; extract that file$/],
    ['a Keras .keras archive', zipHolding('model.weights.h5'), /Keras model .*tf2onnx/],
    ['a gzipped model', gzipSync(readFileSync(MODELS.typed)), /^it is gzip-compressed/],
    ['a pickle (old PyTorch, scikit-learn)', Buffer.from([0x80, 0x04, 0x95, 0x10, 0, 0, 0, 0, 0, 0, 0]), /Python pickle.*torch\.onnx\.export, skl2onnx/],
    ['a Keras HDF5 file', Buffer.concat([Buffer.from('\x89HDF\r\n\x1a\n', 'latin1'), Buffer.alloc(64)]), /Keras HDF5 model.*tf2onnx/],
    ['a TensorFlow Lite model', Buffer.concat([Buffer.from('\x1c\x00\x00\x00TFL3', 'latin1'), Buffer.alloc(64)]), /TensorFlow Lite.*tf2onnx/],
    // saved_model_schema_version 1, then a MetaGraphDef whose MetaInfoDef holds the 'serve' tag.
    ['a TensorFlow SavedModel (saved_model.pb)', Buffer.from('\x08\x01\x12\x09\x0a\x07\x12\x05serve', 'latin1'), /TensorFlow SavedModel.*tf2onnx\.convert --saved-model/],
    ['safetensors weights', safetensors(), /safetensors weights \(66 bytes\), which hold no graph/],
    ['a GGUF file', Buffer.concat([Buffer.from('GGUF\x03\x00\x00\x00', 'latin1'), Buffer.alloc(32)]), /GGUF/],
    ['an unknown binary file', Buffer.concat([Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1, 0]), Buffer.alloc(40, 0xff)]),
      /^its 48 bytes start with 7f 45 4c 46 02 01 01 00, which is no model format modelship knows; point at the \.onnx file an exporter wrote/],
    // Bytes protobuf reads past their end ('index out of range: 3 + 10 > 3'): no protobuf internals in the answer.
    ['three bytes protobuf reads past', Buffer.from([0x00, 0x00, 0x20]), /^its 3 bytes start with 00 00 20, which is no model format modelship knows; point at the \.onnx file/],
  ];
  for (const [name, bytes, reason] of cases) {
    it(name, () => assert.match(reasonFor(bytes), reason));
  }

  it('a model cut short or damaged: says so, with its size and protobuf\'s reason', () => {
    const model = readFileSync(MODELS.ocrDetection);
    assert.match(reasonFor(model.subarray(0, 100_000)),
      /^it starts like an ONNX model but is damaged or cut short \(100000 bytes; protobuf: index out of range: .+\); compare its sha256 with the original's$/);
    assert.match(reasonFor(readFileSync(MODELS.corrupt)), /^it starts like an ONNX model but is damaged or cut short \(256 bytes; protobuf: invalid wire type/);
  });

  it('protobuf that decodes but holds no graph', () => {
    assert.match(reasonFor(onnx.ModelProto.encode({ irVersion: 8, producerName: 'p' }).finish()), /^it decodes as protobuf but holds no graph \(5 bytes\); point at the \.onnx file/);
  });

  it('still reads real models (the guesses only run once decoding has failed)', () => {
    for (const path of [MODELS.typed, MODELS.linearRegression, MODELS.ocrDetection]) {
      assert.ok(readOnnxFile(readFileSync(path)).inputs.length > 0, path);
    }
  });
});
