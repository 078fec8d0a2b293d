/**
 * What an .onnx file says about itself (IR version, opsets, producer, metadata, declared inputs and outputs),
 * decoded from the ModelProto with onnx-proto. Used by `modelship inspect`, for `modelship_model_info`,
 * and by the constructs to read a local model's signature at synth time.
 */
import { createHash } from 'node:crypto';
import { onnx } from 'onnx-proto';
import { specOfOnnxType } from './datatypes';
import type { Dim, TensorSpec } from './signature';

export interface OpsetImport {
  readonly domain: string;
  readonly version: number;
}

export interface OnnxFileInfo {
  readonly sha256: string;
  readonly sizeBytes: number;
  readonly irVersion: number;
  readonly opsets: readonly OpsetImport[];
  /** The default-domain ('' / ai.onnx) opset, the one people mean by "opset". */
  readonly opset: number | undefined;
  readonly producerName: string;
  readonly producerVersion: string;
  readonly domain: string;
  readonly modelVersion: number;
  readonly docString: string;
  readonly graphName: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Graph inputs that are not initializers, as declared in the file. */
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
}

const ONNX_TYPE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(onnx.TensorProto.DataType).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v, k.toLowerCase()]),
);

/**
 * Decodes the model. When the bytes are not a ModelProto, throws an error whose message says what they are instead,
 * how many bytes were read, and the fix, written to follow "'PATH' is not an ONNX model: " (e.g. "it is 3 bytes of
 * text ('vm'), not a model; point at the .onnx file an exporter wrote (...)"). protobuf's own reason ('index out of
 * range: 3 + 10 > 3') only appears for a file that starts like a model, where it says where the damage is.
 */
export function readOnnxFile(bytes: Uint8Array): OnnxFileInfo {
  let model: onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (error) {
    // protobuf's reason alone ("invalid wire type 6 at offset 14") tells a user nothing about what went wrong.
    const reason = (error as Error).message;
    throw new Error(recognizeFormat(bytes) ?? describeUnknown(bytes, reason));
  }
  // Many byte strings happen to decode as a ModelProto with unknown fields and nothing else (an empty file does).
  if (!model.graph) throw new Error(recognizeFormat(bytes) ?? `it decodes as protobuf but holds no graph (${byteCount(bytes.length)}); ${POINT_AT_A_MODEL}`);
  const opsets = (model.opsetImport ?? []).map((o) => ({ domain: o.domain ?? '', version: Number(o.version) }));
  const initializers = new Set((model.graph.initializer ?? []).map((t) => t.name));
  return {
    sha256: createHash('sha256').update(bytes).digest('hex'),
    sizeBytes: bytes.byteLength,
    irVersion: Number(model.irVersion),
    opsets,
    opset: opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version,
    producerName: model.producerName ?? '',
    producerVersion: model.producerVersion ?? '',
    domain: model.domain ?? '',
    modelVersion: Number(model.modelVersion ?? 0),
    docString: model.docString ?? '',
    graphName: model.graph.name ?? '',
    metadata: Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? ''])),
    inputs: (model.graph.input ?? []).filter((v) => !initializers.has(v.name)).map(valueInfoSpec),
    outputs: (model.graph.output ?? []).map(valueInfoSpec),
  };
}

function valueInfoSpec(value: onnx.IValueInfoProto): TensorSpec {
  const tensorType = value.type?.tensorType;
  const name = value.name ?? '';
  if (!tensorType) return { name, datatype: undefined, ortType: describeNonTensor(value.type), shape: undefined };
  const elemType = tensorType.elemType ?? 0;
  const shape: Dim[] | undefined = tensorType.shape
    ? (tensorType.shape.dim ?? []).map((d) => (d.dimValue != null && d.dimParam == null ? Number(d.dimValue) : d.dimParam ?? ''))
    : undefined;
  return { name, datatype: specOfOnnxType(elemType)?.name, ortType: ONNX_TYPE_NAMES[elemType] ?? `type ${elemType}`, shape };
}

function describeNonTensor(type: onnx.ITypeProto | null | undefined): string {
  if (type?.sequenceType) return 'sequence';
  if (type?.mapType) return 'map';
  return 'unknown';
}

// ---- What a file that is not an ONNX model is instead. Only consulted once decoding has failed, so a valid model
// is never refused on a guess.

const byteCount = (n: number) => `${n} byte${n === 1 ? '' : 's'}`;
/** The fix when the file is something else entirely: the user named the wrong file. */
const POINT_AT_A_MODEL = 'point at the .onnx file an exporter wrote (torch.onnx.export, tf2onnx, skl2onnx)';

const ascii = (bytes: Uint8Array, start: number, end: number) => Buffer.from(bytes.subarray(start, end)).toString('latin1');
const startsWith = (bytes: Uint8Array, prefix: string, at = 0) => bytes.length >= at + prefix.length && ascii(bytes, at, at + prefix.length) === prefix;
/** Whether `text` occurs in the first `within` bytes (file names in a zip's first local header, a SavedModel's tags). */
const holds = (bytes: Uint8Array, text: string, within = 1 << 20) => Buffer.from(bytes.buffer, bytes.byteOffset, Math.min(bytes.length, within)).includes(text, 0, 'latin1');

/**
 * The formats people mistake for ONNX, by their first bytes: what a user downloaded or saved instead of the
 * exported model, with how to get the model from it. Undefined when the bytes match none of them.
 */
function recognizeFormat(bytes: Uint8Array): string | undefined {
  const n = byteCount(bytes.length);
  if (bytes.length === 0) return 'the file is empty (0 bytes), as a failed copy or download leaves it; copy or download the model again';
  if (startsWith(bytes, 'version https://git-lfs')) {
    const size = /\nsize (\d+)/.exec(ascii(bytes, 0, Math.min(bytes.length, 1024)))?.[1];
    return `it is a Git LFS pointer (${n})${size ? ` to a ${size}-byte file` : ''}, not the file itself; fetch it with 'git lfs pull'`;
  }
  if (startsWith(bytes, 'PK\x03\x04') || startsWith(bytes, 'PK\x05\x06')) {
    // torch.save writes a zip whose entries are <name>/data.pkl, <name>/data/0, ..., <name>/version.
    if (holds(bytes, 'data.pkl')) return `it looks like a PyTorch checkpoint (a zip archive of ${n}); export it to ONNX with torch.onnx.export`;
    if (holds(bytes, 'model.weights.h5')) return `it looks like a Keras model (a .keras zip archive of ${n}); convert it to ONNX with tf2onnx`;
    const inside = /[\w./-]+\.onnx/.exec(ascii(bytes, 30, Math.min(bytes.length, 30 + 1024)))?.[0];
    return inside ? `it is a zip archive of ${n} holding '${inside}'; extract that file` : `it is a zip archive of ${n}; extract the .onnx file from it`;
  }
  if (bytes[0] === 0x1f && bytes[1] === 0x8b) return `it is gzip-compressed (${n}; .gz, .tar.gz); unpack it and use the .onnx file inside`;
  if (bytes[0] === 0x80 && bytes[1] >= 2 && bytes[1] <= 5) {
    return `it looks like a Python pickle of ${n} (a PyTorch checkpoint from before PyTorch 1.6, or a scikit-learn/joblib model); `
      + 'export it to ONNX (torch.onnx.export, skl2onnx)';
  }
  if (startsWith(bytes, '\x89HDF\r\n\x1a\n')) return `it looks like a Keras HDF5 model (.h5, ${n}); convert it to ONNX with tf2onnx`;
  if (startsWith(bytes, 'TFL3', 4)) return `it looks like a TensorFlow Lite model (${n}); convert it to ONNX with tf2onnx (--tflite)`;
  // SavedModel: field 1 saved_model_schema_version = 1, then field 2 meta_graphs. An ONNX file starts with field 1
  // ir_version too, but no model with ir_version 1 and no graph is left in the wild.
  if (bytes[0] === 0x08 && bytes[1] === 0x01 && bytes[2] === 0x12) {
    return `it looks like a TensorFlow SavedModel (saved_model.pb, ${n}); convert its directory to ONNX with `
      + 'python -m tf2onnx.convert --saved-model DIR --output model.onnx';
  }
  if (startsWith(bytes, 'GGUF')) return `it is a GGUF file (llama.cpp weights, ${n}), which onnxruntime cannot run`;
  // safetensors: an 8-byte little-endian header length, then the JSON header.
  if (bytes.length > 9 && bytes[8] === 0x7b && bytes[9] === 0x22 && Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64LE() < BigInt(bytes.length)) {
    return `it looks like safetensors weights (${n}), which hold no graph; export the model to ONNX (e.g. optimum-cli export onnx)`;
  }
  const text = leadingText(bytes);
  if (text !== undefined) {
    if (/^(<!doctype html|<html|<head|<body)/i.test(text)) {
      return `it is an HTML page of ${n} ('${shorten(text)}'): a failed download, or an error or login page saved in its place; download the model again`;
    }
    return `it is ${n} of text ('${shorten(text)}'), not a model; ${POINT_AT_A_MODEL}`;
  }
  return undefined;
}

/**
 * A file that is no known format: a damaged or cut ONNX file when it starts like one (protobuf's reason then says
 * where), else its size and first bytes, without protobuf's reason, which only describes bytes that were never a model.
 */
function describeUnknown(bytes: Uint8Array, reason: string): string {
  // ir_version (field 1, a varint) comes first in every ONNX file the onnx library or an exporter writes.
  if (bytes[0] === 0x08 && bytes.length > 1 && bytes[1] > 0 && bytes[1] < 0x80) {
    return `it starts like an ONNX model but is damaged or cut short (${byteCount(bytes.length)}; protobuf: ${reason}); compare its sha256 with the original's`;
  }
  const head = Buffer.from(bytes.subarray(0, 8)).toString('hex').replace(/(..)(?!$)/g, '$1 ');
  const what = bytes.length === 1 ? `its 1 byte is ${head}` : `its ${bytes.length} bytes start with ${head}`;
  return `${what}, which is no model format modelship knows; ${POINT_AT_A_MODEL}`;
}

/** The file's first characters when it is text (UTF-8 without control characters other than whitespace). */
function leadingText(bytes: Uint8Array): string | undefined {
  // A cut may fall inside a multi-byte character: trim up to 3 bytes of a partial one at the end.
  const head = Buffer.from(bytes.subarray(0, 256));
  let text = head.toString('utf8');
  if (bytes.length > 256) text = text.replace(/\uFFFD{1,3}$/, '');
  const trimmed = text.replace(/^\uFEFF/, '').trimStart();
  if (trimmed === '' || /[\u0000-\u0008\u000E-\u001F\u007F\uFFFD]/.test(trimmed)) return undefined;
  return trimmed;
}

function shorten(text: string): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > 32 ? `${line.slice(0, 32)}...` : line;
}
