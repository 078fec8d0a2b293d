/**
 * Open Inference Protocol v2 over gRPC, served by the real runtime process and called with @grpc/grpc-js, the way
 * Triton's and KServe's clients call it: the published field numbers, health and metadata, every datatype raw and
 * typed (equal to in-process onnxruntime, bit for bit), the error codes, the metrics, and the SIGTERM drain.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import * as ort from '../../runtime/src/model/onnxruntime';
import { DATATYPES, type Datatype, type TypedArray } from '../../runtime/src/tensor/datatypes';
import { MODELS, REPO_ROOT } from '../helpers/paths';
import { randomFloats, runReference } from '../helpers/reference';
import { startRuntime, type RuntimeProcess } from '../helpers/runtime-process';
import { connect, definition, type GrpcClient, methods, rpc } from '../helpers/grpc-client';

async function rejectsWith(call: Promise<unknown>, code: grpc.status, details: RegExp): Promise<void> {
  await assert.rejects(call, (error: grpc.ServiceError) => {
    assert.equal(grpc.status[error.code], grpc.status[code], error.details);
    assert.match(error.details, details);
    return true;
  });
}

// ---- The published numbering

/** Every message's fields as the published grpc_predict_v2.proto numbers them: [name, number, type]. */
const PUBLISHED: Record<string, Array<[string, number, string]>> = {
  ServerLiveRequest: [],
  ServerLiveResponse: [['live', 1, 'bool']],
  ServerReadyRequest: [],
  ServerReadyResponse: [['ready', 1, 'bool']],
  ModelReadyRequest: [['name', 1, 'string'], ['version', 2, 'string']],
  ModelReadyResponse: [['ready', 1, 'bool']],
  ServerMetadataRequest: [],
  ServerMetadataResponse: [['name', 1, 'string'], ['version', 2, 'string'], ['extensions', 3, 'repeated string']],
  ModelMetadataRequest: [['name', 1, 'string'], ['version', 2, 'string']],
  ModelMetadataResponse: [['name', 1, 'string'], ['versions', 2, 'repeated string'], ['platform', 3, 'string'],
    ['inputs', 4, 'repeated message'], ['outputs', 5, 'repeated message']],
  'ModelMetadataResponse.TensorMetadata': [['name', 1, 'string'], ['datatype', 2, 'string'], ['shape', 3, 'repeated int64']],
  ModelInferRequest: [['model_name', 1, 'string'], ['model_version', 2, 'string'], ['id', 3, 'string'],
    ['parameters', 4, 'repeated message'], ['inputs', 5, 'repeated message'], ['outputs', 6, 'repeated message'],
    ['raw_input_contents', 7, 'repeated bytes']],
  'ModelInferRequest.InferInputTensor': [['name', 1, 'string'], ['datatype', 2, 'string'], ['shape', 3, 'repeated int64'],
    ['parameters', 4, 'repeated message'], ['contents', 5, 'message']],
  'ModelInferRequest.InferRequestedOutputTensor': [['name', 1, 'string'], ['parameters', 2, 'repeated message']],
  ModelInferResponse: [['model_name', 1, 'string'], ['model_version', 2, 'string'], ['id', 3, 'string'],
    ['parameters', 4, 'repeated message'], ['outputs', 5, 'repeated message'], ['raw_output_contents', 6, 'repeated bytes']],
  'ModelInferResponse.InferOutputTensor': [['name', 1, 'string'], ['datatype', 2, 'string'], ['shape', 3, 'repeated int64'],
    ['parameters', 4, 'repeated message'], ['contents', 5, 'message']],
  InferParameter: [['bool_param', 1, 'bool'], ['int64_param', 2, 'int64'], ['string_param', 3, 'string']],
  InferTensorContents: [['bool_contents', 1, 'repeated bool'], ['int_contents', 2, 'repeated int32'],
    ['int64_contents', 3, 'repeated int64'], ['uint_contents', 4, 'repeated uint32'], ['uint64_contents', 5, 'repeated uint64'],
    ['fp32_contents', 6, 'repeated float'], ['fp64_contents', 7, 'repeated double'], ['bytes_contents', 8, 'repeated bytes']],
};

interface FieldDescriptor { name: string; number: number; label: string; type: string }
interface MessageDescriptor { field: FieldDescriptor[]; nestedType: Array<MessageDescriptor & { name: string }> }

function descriptorOf(path: string): MessageDescriptor {
  const [outer, inner] = path.split('.');
  const message = (definition[`inference.${outer}`] as unknown as { type: MessageDescriptor }).type;
  return inner ? message.nestedType.find((n) => n.name === inner)! : message;
}

/** A protobuf message's top-level fields as [field number, wire type, payload] (payload for length-delimited ones). */
function wireFields(bytes: Uint8Array): Array<[number, number, Uint8Array | bigint]> {
  const out: Array<[number, number, Uint8Array | bigint]> = [];
  let i = 0;
  const varint = (): bigint => {
    let value = 0n;
    for (let shift = 0n; ; shift += 7n) {
      const byte = bytes[i++];
      value |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) return value;
    }
  };
  while (i < bytes.length) {
    const key = Number(varint());
    const wire = key & 7;
    if (wire === 0) out.push([key >> 3, wire, varint()]);
    else if (wire === 2) {
      const length = Number(varint());
      out.push([key >> 3, wire, bytes.subarray(i, i + length)]);
      i += length;
    } else throw new Error(`unexpected wire type ${wire}`);
  }
  return out;
}

const tags = (bytes: Uint8Array) => wireFields(bytes).map(([number, wire]) => `${number}:${wire}`);
const payload = (bytes: Uint8Array, number: number) => wireFields(bytes).find(([n]) => n === number)![2] as Uint8Array;

describe('grpc_predict_v2.proto keeps the published numbering', () => {
  it('declares the service and its six methods under their published paths', () => {
    assert.deepEqual(Object.keys(methods).sort(), ['ModelInfer', 'ModelMetadata', 'ModelReady', 'ServerLive', 'ServerMetadata', 'ServerReady']);
    for (const [name, method] of Object.entries(methods)) {
      assert.equal(method.path, `/inference.GRPCInferenceService/${name}`);
      assert.equal(method.requestStream || method.responseStream, false, `${name} is unary`);
    }
  });

  for (const [message, fields] of Object.entries(PUBLISHED)) {
    it(`${message}: ${fields.map(([name, number]) => `${name}=${number}`).join(' ') || '(no fields)'}`, () => {
      const actual = descriptorOf(message).field.map((f) => {
        const type = f.type.replace('TYPE_', '').toLowerCase();
        return [f.name, f.number, `${f.label === 'LABEL_REPEATED' ? 'repeated ' : ''}${type}`];
      });
      assert.deepEqual(actual, fields);
    });
  }

  it('puts a ModelInferRequest on the wire with the published tags', () => {
    const bytes = methods.ModelInfer.requestSerialize({
      model_name: 'm', model_version: '2', id: 'r', parameters: { p: { int64_param: '5' } },
      inputs: [{ name: 'a', datatype: 'FP32', shape: ['3'], parameters: { q: { bool_param: true } }, contents: { fp32_contents: [1, 2, 3] } }],
      outputs: [{ name: 'o' }], raw_input_contents: [Buffer.from([1, 2])],
    });
    assert.deepEqual(tags(bytes), ['1:2', '2:2', '3:2', '4:2', '5:2', '6:2', '7:2']);
    const input = payload(bytes, 5);
    assert.deepEqual(tags(input), ['1:2', '2:2', '3:2', '4:2', '5:2']);
    assert.deepEqual(tags(payload(input, 5)), ['6:2'], 'fp32_contents is field 6, packed');
    // A map entry is {key = 1, value = 2}; InferParameter's int64_param is field 2, a varint.
    const parameter = payload(payload(bytes, 4), 2);
    assert.deepEqual(wireFields(parameter), [[2, 0, 5n]]);
    assert.deepEqual(tags(payload(payload(input, 4), 2)), ['1:0'], 'bool_param is field 1');
  });

  it('reads a hand-encoded ModelInferResponse by the published numbers', () => {
    const field = (number: number, body: number[]) => [(number << 3) | 2, body.length, ...body];
    const text = (s: string) => [...Buffer.from(s)];
    const uint64Max = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
    const contents = field(5, uint64Max); // InferTensorContents.uint64_contents, packed
    const output = [...field(1, text('o')), ...field(2, text('UINT64')), ...field(3, [1]), ...field(5, contents)];
    const bytes = Buffer.from([...field(1, text('m')), ...field(2, text('3')), ...field(3, text('x')), ...field(5, output), ...field(6, [7, 8])]);
    const response = methods.ModelInfer.responseDeserialize(bytes) as any;
    assert.equal(response.model_name, 'm');
    assert.equal(response.model_version, '3');
    assert.equal(response.id, 'x');
    assert.deepEqual(response.raw_output_contents, [Buffer.from([7, 8])]);
    assert.equal(response.outputs[0].name, 'o');
    assert.equal(response.outputs[0].datatype, 'UINT64');
    assert.deepEqual(response.outputs[0].shape, ['1']);
    assert.deepEqual(response.outputs[0].contents.uint64_contents, ['18446744073709551615']);
  });
});

// ---- Tensors, encoded by the test independently of the runtime's own code

interface TestTensor { readonly name: string; readonly datatype: Datatype; readonly shape: number[]; readonly data: TypedArray | string[] }

/** Raw contents as the protocol defines them: little-endian elements; BYTES as (uint32 LE length, bytes) each. */
function rawOf(data: TypedArray | string[]): Buffer {
  if (!Array.isArray(data)) return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return Buffer.concat(data.flatMap((s) => {
    const bytes = Buffer.from(s, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(bytes.byteLength);
    return [length, bytes];
  }));
}

function ortTensor(t: TestTensor): ort.Tensor {
  return new ort.Tensor(DATATYPES[t.datatype].ort as any, t.data as any, t.shape);
}

/** Extreme values of every datatype, one input of identity_all each. */
const EXTREMES: TestTensor[] = ([
  ['bool', 'BOOL', Uint8Array.from([1, 0, 1])],
  ['uint8', 'UINT8', Uint8Array.from([0, 255, 7])],
  ['uint16', 'UINT16', Uint16Array.from([0, 65535])],
  ['uint32', 'UINT32', Uint32Array.from([0, 4294967295, 123456789])],
  ['uint64', 'UINT64', BigUint64Array.from([0n, 18446744073709551615n, 9007199254740993n])],
  ['int8', 'INT8', Int8Array.from([-128, 127, 0])],
  ['int16', 'INT16', Int16Array.from([-32768, 32767])],
  ['int32', 'INT32', Int32Array.from([-2147483648, 2147483647, -1])],
  ['int64', 'INT64', BigInt64Array.from([-9223372036854775808n, 9223372036854775807n, -1n, 9007199254740993n])],
  // 0.5, +Inf, -Inf, NaN, 65504 (largest), -0, smallest subnormal
  ['fp16', 'FP16', Uint16Array.from([0x3800, 0x7c00, 0xfc00, 0x7e00, 0x7bff, 0x8000, 0x0001])],
  ['fp32', 'FP32', Float32Array.from([1.5, NaN, Infinity, -Infinity, -0, 3.4028234663852886e38, 1e-45, 0.1])],
  ['fp64', 'FP64', Float64Array.from([NaN, Infinity, -Infinity, -0, Number.MAX_VALUE, Number.MIN_VALUE, 0.1])],
  ['bytes', 'BYTES', ['héllo', '', 'with "quotes" \\ and \n', '日本語']],
] as Array<[string, Datatype, TypedArray | string[]]>).map(([suffix, datatype, data]) => ({ name: `in_${suffix}`, datatype, shape: [data.length], data }));

/** A tensor's elements as the typed contents field of its datatype carries them. */
function typedContents(t: { datatype: string; data: TypedArray | string[] }): Record<string, unknown[]> {
  const data = t.data;
  switch (t.datatype) {
    case 'BOOL': return { bool_contents: Array.from(data as Uint8Array, (v) => v !== 0) };
    case 'UINT8': case 'UINT16': case 'UINT32': return { uint_contents: Array.from(data as Uint32Array) };
    case 'INT8': case 'INT16': case 'INT32': return { int_contents: Array.from(data as Int32Array) };
    case 'UINT64': return { uint64_contents: Array.from(data as BigUint64Array, String) };
    case 'INT64': return { int64_contents: Array.from(data as BigInt64Array, String) };
    case 'FP32': return { fp32_contents: Array.from(data as Float32Array) };
    case 'FP64': return { fp64_contents: Array.from(data as Float64Array) };
    case 'BYTES': return { bytes_contents: (data as string[]).map((s) => Buffer.from(s, 'utf8')) };
    default: throw new Error(`${t.datatype} has no typed contents`);
  }
}

/** The non-empty fields of a decoded InferTensorContents, BYTES as strings. */
function nonEmpty(contents: Record<string, unknown[]> | null): Record<string, unknown[]> {
  return Object.fromEntries(Object.entries(contents ?? {}).filter(([, v]) => v.length > 0)
    .map(([k, v]) => [k, k === 'bytes_contents' ? (v as Buffer[]).map((b) => b.toString('utf8')) : v]));
}

describe('the gRPC service of a running runtime', () => {
  let runtime: RuntimeProcess;
  let client: GrpcClient;
  before(async () => {
    runtime = await startRuntime([
      '--max-body-bytes', '65536',
      '--model', `all=${MODELS.identityAll}`, '--model', `det=${MODELS.ocrDetection}`, '--model', `fails=${MODELS.failsAtRun}`,
    ]);
    client = connect(runtime.grpcPort);
  });
  after(async () => {
    client?.close();
    assert.equal(await runtime.stop(), 0);
  });

  const infer = (request: object) => rpc(client, 'ModelInfer', request);

  it('logs the port it listens on', () => {
    assert.ok(runtime.logs.some((line) => line.protocol === 'grpc' && line.port === runtime.grpcPort && /listening for gRPC/.test(line.msg)));
  });

  it('ServerLive, ServerReady, ServerMetadata', async () => {
    assert.deepEqual(await rpc(client, 'ServerLive', {}), { live: true });
    assert.deepEqual(await rpc(client, 'ServerReady', {}), { ready: true });
    const metadata = await rpc(client, 'ServerMetadata', {});
    assert.equal(metadata.name, 'modelship');
    assert.equal(metadata.version, JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version);
    assert.deepEqual(metadata.extensions, []);
  });

  it('ModelReady and ModelMetadata, and NOT_FOUND for an unknown model or version', async () => {
    assert.deepEqual(await rpc(client, 'ModelReady', { name: 'all' }), { ready: true });
    assert.deepEqual(await rpc(client, 'ModelReady', { name: 'all', version: '1' }), { ready: true });
    for (const version of ['', '1']) {
      const metadata = await rpc(client, 'ModelMetadata', { name: 'fails', version });
      assert.deepEqual(metadata, {
        name: 'fails', versions: ['1'], platform: 'onnx_onnxv1',
        inputs: [{ name: 'x', datatype: 'FP32', shape: ['-1'] }, { name: 'shape', datatype: 'INT64', shape: ['2'] }],
        outputs: [{ name: 'y', datatype: 'FP32', shape: ['-1', '-1'] }],
      });
    }
    const all = await rpc(client, 'ModelMetadata', { name: 'all' });
    assert.deepEqual(all.inputs.map((i: { datatype: string }) => i.datatype), EXTREMES.map((t) => t.datatype));
    await rejectsWith(rpc(client, 'ModelReady', { name: 'nope' }), grpc.status.NOT_FOUND, /unknown model 'nope'/);
    await rejectsWith(rpc(client, 'ModelReady', { name: 'all', version: '7' }), grpc.status.NOT_FOUND, /no version '7'/);
    await rejectsWith(rpc(client, 'ModelMetadata', { name: 'nope' }), grpc.status.NOT_FOUND, /unknown model 'nope'/);
    await rejectsWith(rpc(client, 'ModelMetadata', { name: 'all', version: '2' }), grpc.status.NOT_FOUND, /model 'all' has no version '2'/);
  });

  it('every datatype as raw contents, extreme values bit-exact, answered raw', async () => {
    const expected = await runReference(MODELS.identityAll, Object.fromEntries(EXTREMES.map((t) => [t.name, ortTensor(t)])));
    const response = await infer({
      model_name: 'all', model_version: '1', id: 'raw-1',
      inputs: EXTREMES.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
      raw_input_contents: EXTREMES.map((t) => rawOf(t.data)),
    });
    assert.equal(response.model_name, 'all');
    assert.equal(response.model_version, '1');
    assert.equal(response.id, 'raw-1');
    assert.equal(response.raw_output_contents.length, EXTREMES.length);
    assert.deepEqual(response.outputs.map((o: { name: string }) => o.name), Object.keys(expected));
    response.outputs.forEach((output: any, i: number) => {
      const input = EXTREMES.find((t) => t.name === output.name.replace('out_', 'in_'))!;
      const reference = expected[output.name];
      assert.equal(output.datatype, input.datatype);
      assert.deepEqual(output.shape, [String(input.data.length)]);
      assert.equal(output.contents, null, 'no typed contents next to raw ones');
      assert.deepEqual(response.raw_output_contents[i], rawOf(reference.data as TypedArray | string[]), output.name);
      assert.deepEqual(response.raw_output_contents[i], rawOf(input.data), `${output.name} is the identity`);
    });
  });

  it('every datatype but FP16 as typed contents, answered as raw_output_contents as Triton answers; FP16 only as an empty tensor', async () => {
    const typed = EXTREMES.map((t) => (t.datatype === 'FP16' ? { ...t, shape: [0], data: new Uint16Array(0) } : t));
    const expected = await runReference(MODELS.identityAll, Object.fromEntries(typed.map((t) => [t.name, ortTensor(t)])));
    const response = await infer({
      model_name: 'all', id: 'typed-1', parameters: { priority: { int64_param: '1' } },
      inputs: typed.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, ...(t.data.length ? { contents: typedContents(t) } : {}) })),
    });
    assert.equal(response.id, 'typed-1');
    assert.equal(response.raw_output_contents.length, typed.length);
    response.outputs.forEach((output: any, i: number) => {
      const reference = expected[output.name];
      const datatype = typed.find((t) => t.name === output.name.replace('out_', 'in_'))!.datatype;
      assert.equal(output.datatype, datatype);
      assert.deepEqual(output.shape, reference.dims.map(String));
      assert.equal(output.contents, null, 'no typed contents next to raw ones');
      assert.deepEqual(response.raw_output_contents[i], rawOf(reference.data as TypedArray | string[]), output.name);
    });
    const int64 = response.outputs.findIndex((o: { name: string }) => o.name === 'out_int64');
    const int64s = Buffer.from(response.raw_output_contents[int64]);
    assert.deepEqual([0, 1, 2, 3].map((i) => String(int64s.readBigInt64LE(i * 8))), ['-9223372036854775808', '9223372036854775807', '-1', '9007199254740993']);
  });

  it('returns only the requested outputs, in the order asked', async () => {
    const response = await infer({
      model_name: 'all', inputs: EXTREMES.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
      raw_input_contents: EXTREMES.map((t) => rawOf(t.data)),
      outputs: [{ name: 'out_int64' }, { name: 'out_bytes' }],
    });
    assert.deepEqual(response.outputs.map((o: { name: string }) => o.name), ['out_int64', 'out_bytes']);
    assert.deepEqual(response.raw_output_contents, [rawOf(EXTREMES[8].data), rawOf(EXTREMES[12].data)]);
    assert.equal(response.id, '');
  });

  it('the OCR detection model, raw FP32 [1, 3, 64, 64], equals in-process onnxruntime exactly', async () => {
    const pixels = randomFloats(3 * 64 * 64, 64);
    const expected = await runReference(MODELS.ocrDetection, { x: new ort.Tensor('float32', pixels, [1, 3, 64, 64]) });
    const response = await infer({
      model_name: 'det', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 64, 64] }], raw_input_contents: [rawOf(pixels)],
    });
    assert.deepEqual(response.outputs.map((o: { name: string }) => o.name), Object.keys(expected));
    response.outputs.forEach((output: any, i: number) => {
      const reference = expected[output.name];
      assert.equal(output.datatype, 'FP32');
      assert.deepEqual(output.shape, reference.dims.map(String));
      assert.ok(response.raw_output_contents[i].equals(rawOf(reference.data as Float32Array)), `${output.name} differs from in-process onnxruntime`);
    });
  });

  describe('errors', () => {
    const x = (values: number[]) => ({ name: 'x', datatype: 'FP32', shape: [values.length], contents: { fp32_contents: values } });
    const shape = (dims: number[]) => ({ name: 'shape', datatype: 'INT64', shape: [dims.length], contents: { int64_contents: dims.map(String) } });
    const six = [1, 2, 3, 4, 5, 6];

    it('runs a good request (the reference for the failing ones)', async () => {
      const response = await infer({ model_name: 'fails', inputs: [x(six), shape([2, 3])] });
      assert.deepEqual(response.outputs[0].shape, ['2', '3']);
      assert.deepEqual(Array.from(new Float32Array(new Uint8Array(response.raw_output_contents[0]).slice().buffer)), six);
    });

    it('NOT_FOUND for an unknown model or version', async () => {
      await rejectsWith(infer({ model_name: 'nope', inputs: [] }), grpc.status.NOT_FOUND, /unknown model 'nope'; served models: 'all', 'det', 'fails'/);
      await rejectsWith(infer({ model_name: 'fails', model_version: '7', inputs: [x(six), shape([2, 3])] }), grpc.status.NOT_FOUND,
        /model 'fails' has no version '7'; available versions: 1/);
    });

    const invalid: Array<[string, object, RegExp]> = [
      ['a wrong datatype', { inputs: [{ ...x(six), datatype: 'FP64', contents: { fp64_contents: six } }, shape([2, 3])] },
        /input 'x': expected datatype FP32, received FP64/],
      ['an unknown datatype', { inputs: [{ ...x(six), datatype: 'FLOAT' }, shape([2, 3])] }, /input 'x': 'datatype' must be one of .*received "FLOAT"/],
      ['a shape mismatch', { inputs: [x(six), shape([2, 3, 1])] }, /input 'shape': expected shape \[2\], received \[3\]/],
      ['a negative dim', { inputs: [{ ...x(six), shape: [-6] }, shape([2, 3])] }, /input 'x': 'shape' must be an array of non-negative integers/],
      ['an absurd dim', { inputs: [{ ...x(six), shape: ['9223372036854775807'] }, shape([2, 3])] }, /input 'x'/],
      ['typed elements fewer than the shape needs', { inputs: [{ ...x(six), shape: [7] }, shape([2, 3])] },
        /input 'x': shape \[7\] needs 7 elements, contents.fp32_contents has 6/],
      ['typed elements in the wrong field', { inputs: [{ ...x([]), shape: [2], contents: { int_contents: [1, 2] } }, shape([1, 2])] },
        /input 'x': FP32 elements go in contents.fp32_contents, received contents.int_contents/],
      ['a raw size mismatch', { inputs: [{ name: 'x', datatype: 'FP32', shape: [4] }, { name: 'shape', datatype: 'INT64', shape: [2] }],
        raw_input_contents: [Buffer.alloc(12), rawOf(BigInt64Array.from([2n, 2n]))] },
        /input 'x': shape \[4\] of FP32 needs 16 bytes of raw data, received 12/],
      ['raw and typed contents mixed', { inputs: [x([1, 2, 3, 4]), { name: 'shape', datatype: 'INT64', shape: [2] }],
        raw_input_contents: [rawOf(Float32Array.from([1, 2, 3, 4])), rawOf(BigInt64Array.from([2n, 2n]))] },
        /input 'x' has typed 'contents' but the request also carries raw_input_contents/],
      ['fewer raw contents than inputs', { inputs: [{ name: 'x', datatype: 'FP32', shape: [4] }, { name: 'shape', datatype: 'INT64', shape: [2] }],
        raw_input_contents: [rawOf(Float32Array.from([1, 2, 3, 4]))] },
        /raw_input_contents has 1 entry for 2 inputs \('x', 'shape'\)/],
      ['an unknown input', { inputs: [x(six), shape([2, 3]), { name: 'z', datatype: 'FP32', shape: [0] }] }, /unknown input 'z'; the model's inputs are 'x', 'shape'/],
      ['a missing input', { inputs: [x(six)] }, /missing input 'shape' \(INT64 \[2\]\)/],
      ['an unknown requested output', { inputs: [x(six), shape([2, 3])], outputs: [{ name: 'z' }] }, /unknown output 'z'; the model's outputs are 'y'/],
    ];
    for (const [name, request, message] of invalid) {
      it(`INVALID_ARGUMENT for ${name}`, async () => {
        await rejectsWith(infer({ model_name: 'fails', ...request }), grpc.status.INVALID_ARGUMENT, message);
      });
    }

    it('FP16 only travels raw', async () => {
      const inputs = EXTREMES.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape, ...(t.datatype === 'FP16' ? {} : { contents: typedContents(t) }) }));
      await rejectsWith(infer({ model_name: 'all', inputs }), grpc.status.INVALID_ARGUMENT, /input 'in_fp16': FP16 has no typed contents field; send FP16 tensors as raw_input_contents/);
    });

    it('INTERNAL when the model fails at run time', async () => {
      await rejectsWith(infer({ model_name: 'fails', inputs: [x(six), shape([4, 4])] }), grpc.status.INTERNAL, /model 'fails'.*failed to execute.*Reshape/s);
    });

    it('RESOURCE_EXHAUSTED for a message over --max-body-bytes', async () => {
      const big = new Float32Array(20_000);
      await rejectsWith(infer({ model_name: 'fails', inputs: [{ name: 'x', datatype: 'FP32', shape: [big.length] }, { name: 'shape', datatype: 'INT64', shape: [2] }],
        raw_input_contents: [rawOf(big), rawOf(BigInt64Array.from([100n, 200n]))] }), grpc.status.RESOURCE_EXHAUSTED, /larger than max/);
      // The connection survives it.
      assert.deepEqual(await rpc(client, 'ServerLive', {}), { live: true });
    });

    it('counts requests with protocol="grpc" and code = the HTTP status of the gRPC code', async () => {
      const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
      const count = (code: number) => Number(new RegExp(`modelship_inference_requests_total\\{model="fails",version="1",protocol="grpc",code="${code}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
      assert.ok(count(200) >= 1, metrics);
      assert.ok(count(400) >= 1, metrics);
      assert.ok(count(500) >= 1, metrics);
      assert.match(metrics, /modelship_inference_requests_total\{model="all",version="1",protocol="grpc",code="200"\} [1-9]/);
      assert.match(metrics, /modelship_inference_request_duration_seconds_count\{model="det",version="1",protocol="grpc",code="200"\} 1/);
      // No 404 series: InferenceService.serve refuses an unknown model or version before there is a model version to
      // label the request with (the same on REST).
    });
  });
});

/** A call that keeps the slow model busy for about `iterations` × 0.2 ms. */
const slowRequest = (iterations: number) => ({
  model_name: 'slow',
  inputs: [
    { name: 'iterations', datatype: 'INT64', shape: [], contents: { int64_contents: [String(iterations)] } },
    { name: 'x', datatype: 'FP32', shape: [1, 64], contents: { fp32_contents: Array.from({ length: 64 }, (_, i) => i / 64) } },
  ],
});

describe('backpressure over gRPC', () => {
  it('answers RESOURCE_EXHAUSTED with a retry-after hint at once when the queue is full, and recovers', async () => {
    const runtime = await startRuntime(['--model', `slow=${MODELS.slow}`, '--max-queue-size', '2']);
    const client = connect(runtime.grpcPort);
    try {
      // One runs, two wait: the queue is full, so the next call is refused without waiting for them.
      const busy = [rpc(client, 'ModelInfer', slowRequest(5000)), rpc(client, 'ModelInfer', slowRequest(10)), rpc(client, 'ModelInfer', slowRequest(10))];
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = Date.now();
      const refusal = await new Promise<grpc.ServiceError | null>((resolve) => {
        (client.ModelInfer as Function).call(client, slowRequest(10), (error: grpc.ServiceError | null) => resolve(error));
      });
      assert.ok(refusal, 'the call over the queue limit was served');
      assert.ok(Date.now() - started < 500, `refused after ${Date.now() - started} ms, not at once`);
      assert.equal(grpc.status[refusal.code], 'RESOURCE_EXHAUSTED', refusal.details);
      assert.match(refusal.details, /queue .* is full/);
      assert.deepEqual(refusal.metadata.get('retry-after'), ['1']);
      for (const answer of await Promise.all(busy)) assert.equal(answer.model_name, 'slow');
      assert.equal((await rpc(client, 'ModelInfer', slowRequest(10))).model_name, 'slow', 'serves again once the queue drains');
      const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
      assert.match(metrics, /modelship_inference_requests_total\{model="slow",version="1",protocol="grpc",code="429"\} 1/);
    } finally {
      client.close();
      assert.equal(await runtime.stop(), 0);
    }
  });
});

describe('SIGTERM with gRPC calls in flight', () => {
  it('finishes the call in flight, sends GOAWAY so new calls go elsewhere (UNAVAILABLE here), and exits 0', async () => {
    const runtime = await startRuntime(['--model', `slow=${MODELS.slow}`]);
    const client = connect(runtime.grpcPort);
    try {
      const inFlight = rpc(client, 'ModelInfer', slowRequest(5000));
      await new Promise((resolve) => setTimeout(resolve, 300));
      runtime.process.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 100));
      // The gRPC port no longer takes calls; the kubelet's HTTP probes still answer, liveness 200 and readiness 503.
      await rejectsWith(rpc(client, 'ModelInfer', slowRequest(1)), grpc.status.UNAVAILABLE, /./);
      assert.equal((await fetch(`${runtime.url}/v2/health/live`)).status, 200);
      assert.equal((await fetch(`${runtime.url}/v2/health/ready`)).status, 503);

      const finished = await inFlight;
      const expected = await runReference(MODELS.slow, {
        iterations: new ort.Tensor('int64', BigInt64Array.from([5000n]), []),
        x: new ort.Tensor('float32', Float32Array.from({ length: 64 }, (_, i) => i / 64), [1, 64]),
      });
      assert.ok(Buffer.from(finished.raw_output_contents[0]).equals(rawOf(expected.y.data as Float32Array)));
      assert.equal(await runtime.exited, 0);
      assert.ok(runtime.logs.some((line) => /draining/.test(line.msg) && line.inFlight === 1), 'the drain waited for the gRPC call');
      assert.ok(runtime.logs.some((line) => line.msg === 'stopped' && line.drained === true));
    } finally {
      client.close();
      await runtime.stop();
    }
  });
});
