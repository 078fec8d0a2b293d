/**
 * The OIP v2 binary tensor data extension over REST, against the real runtime: every datatype round-trips as raw
 * bytes exactly as in-process onnxruntime answers; binary and JSON inputs and outputs mix in one request; a real
 * image model answers binary requests exactly and the same as JSON; every malformed binary request gets a 400
 * naming the input, the expected and the received, and the server stays ready.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { getFloat16 } from '@petamoriken/float16';
import * as ort from '../../runtime/src/model/onnxruntime';
import { MODELS } from '../helpers/paths';
import { randomFloats, runReference } from '../helpers/reference';
import { getJson, postJson, startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

type Values = Uint8Array | Uint16Array | Uint32Array | BigUint64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Float32Array | Float64Array | string[];

interface TypeCase {
  readonly t: string;
  readonly datatype: string;
  readonly ort: ort.Tensor.Type;
  /** Values that only raw bytes carry exactly: NaN payloads, -0, subnormals, 64-bit extremes. */
  readonly extreme: Values;
  /** Values JSON carries exactly too (64-bit ones within 2^53, so that JSON.parse keeps them). */
  readonly plain: Values;
}

const f32 = (bits: number[]) => new Float32Array(Uint32Array.from(bits).buffer);
const f64 = (bits: bigint[]) => new Float64Array(BigUint64Array.from(bits).buffer);

const TYPES: readonly TypeCase[] = [
  { t: 'bool', datatype: 'BOOL', ort: 'bool', extreme: Uint8Array.of(1, 0, 1, 1), plain: Uint8Array.of(0, 1) },
  { t: 'uint8', datatype: 'UINT8', ort: 'uint8', extreme: Uint8Array.of(0, 255, 128), plain: Uint8Array.of(3, 4) },
  { t: 'uint16', datatype: 'UINT16', ort: 'uint16', extreme: Uint16Array.of(0, 65535, 256), plain: Uint16Array.of(300) },
  { t: 'uint32', datatype: 'UINT32', ort: 'uint32', extreme: Uint32Array.of(0, 4294967295, 65536), plain: Uint32Array.of(70000, 1) },
  { t: 'uint64', datatype: 'UINT64', ort: 'uint64', extreme: BigUint64Array.of(0n, 2n ** 64n - 1n, 2n ** 53n + 1n), plain: BigUint64Array.of(2n ** 52n + 1n) },
  { t: 'int8', datatype: 'INT8', ort: 'int8', extreme: Int8Array.of(-128, 127, -1), plain: Int8Array.of(-5, 5) },
  { t: 'int16', datatype: 'INT16', ort: 'int16', extreme: Int16Array.of(-32768, 32767, -1), plain: Int16Array.of(-300) },
  { t: 'int32', datatype: 'INT32', ort: 'int32', extreme: Int32Array.of(-(2 ** 31), 2 ** 31 - 1, -1), plain: Int32Array.of(-70000, 7) },
  { t: 'int64', datatype: 'INT64', ort: 'int64', extreme: BigInt64Array.of(-(2n ** 63n), 2n ** 63n - 1n, -(2n ** 53n) - 1n), plain: BigInt64Array.of(-(2n ** 52n) - 1n, 42n) },
  // FP16 as bits: 1, -0, a NaN with a payload, -Infinity, the smallest subnormal, 65504.
  { t: 'fp16', datatype: 'FP16', ort: 'float16', extreme: Uint16Array.of(0x3c00, 0x8000, 0x7e01, 0xfc00, 0x0001, 0x7bff), plain: Uint16Array.of(0x3800, 0xc000) },
  { t: 'fp32', datatype: 'FP32', ort: 'float32', extreme: f32([0x7fc00001, 0x80000000, 0x00000001, 0x7f7fffff, 0x3dcccccd]), plain: Float32Array.of(1.5, -0.25) },
  { t: 'fp64', datatype: 'FP64', ort: 'float64', extreme: f64([0x7ff8000000000001n, 0x8000000000000000n, 1n, 0x3fb999999999999an]), plain: Float64Array.of(0.1, 1e-300) },
  { t: 'bytes', datatype: 'BYTES', ort: 'string', extreme: ['héllo', '', '日本語', '🚀 ünïcödé', '', 'with "quotes" \\ and \n'], plain: ['a', '', 'ß'] },
];

/** Raw little-endian bytes, encoded here independently of the runtime: BYTES as (uint32 length, UTF-8) per element. */
function rawOf(values: Values): Buffer {
  if (!Array.isArray(values)) return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  return Buffer.concat(values.flatMap((s) => {
    const bytes = Buffer.from(s, 'utf8');
    const length = Buffer.alloc(4);
    length.writeUInt32LE(bytes.byteLength);
    return [length, bytes];
  }));
}

/** Values as OIP v2 JSON `data` (only for the `plain` sets: JSON cannot carry NaN payloads or -0 as numbers). */
function jsonOf(c: TypeCase, values: Values): unknown[] {
  if (Array.isArray(values)) return values;
  if (c.datatype === 'BOOL') return Array.from(values as Uint8Array, Boolean);
  if (c.datatype === 'FP16') return Array.from(values as Uint16Array, (bits) => getFloat16(new DataView(Uint16Array.of(bits).buffer), 0, true));
  if (values instanceof BigInt64Array || values instanceof BigUint64Array) return Array.from(values, String);
  return Array.from(values as Float64Array);
}

const feedsOf = (pick: (c: TypeCase) => Values) => Object.fromEntries(TYPES.map((c) => {
  const values = pick(c);
  return [`in_${c.t}`, new ort.Tensor(c.ort, values as ort.Tensor.DataType, [values.length])];
}));

const rawOfOrt = (tensor: ort.Tensor) => rawOf(tensor.data as Values);

interface Reply {
  readonly status: number;
  readonly headers: Headers;
  /** The JSON (the whole body, or the JSON header of a binary response). */
  readonly json: any;
  /** Each binary output's bytes, by name. */
  readonly binary: Map<string, Buffer>;
}

/** Reads a response, splitting a binary one at Inference-Header-Content-Length and its outputs by binary_data_size. */
async function readReply(response: Response): Promise<Reply> {
  const body = Buffer.from(await response.arrayBuffer());
  const headerLength = response.headers.get('inference-header-content-length');
  const binary = new Map<string, Buffer>();
  if (headerLength === null) return { status: response.status, headers: response.headers, json: body.length ? JSON.parse(body.toString()) : undefined, binary };
  const length = Number(headerLength);
  const json = JSON.parse(body.subarray(0, length).toString());
  let offset = length;
  for (const output of json.outputs) {
    const size = output.parameters?.binary_data_size;
    if (size === undefined) continue;
    assert.equal(output.data, undefined, `output '${output.name}' is binary and has no 'data'`);
    binary.set(output.name, body.subarray(offset, offset + size));
    offset += size;
  }
  assert.equal(offset, body.length, 'the binary outputs fill the rest of the body exactly');
  return { status: response.status, headers: response.headers, json, binary };
}

/** The request body of the extension: the JSON header, then the binary parts; the header names the JSON's length. */
function binaryBody(header: unknown, parts: readonly Buffer[] = []): { body: Buffer; headerLength: number } {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header));
  return { body: Buffer.concat([json, ...parts]), headerLength: json.length };
}

describe('the binary tensor data extension', () => {
  let runtime: RuntimeProcess;
  before(async () => {
    runtime = await startRuntime(['--model', `all=${MODELS.identityAll}`, '--model', `det=${MODELS.ocrDetection}`, '--model', `lin=${MODELS.linearRegression}`]);
  });
  after(async () => { assert.equal(await runtime.stop(), 0); });

  const url = (model: string) => `${runtime.url}/v2/models/${model}/infer`;
  /** POSTs the extension's body with its header (or `headers` overriding them). */
  const postBinary = async (model: string, header: unknown, parts: readonly Buffer[] = [], headers: Record<string, string | undefined> = {}) => {
    const { body, headerLength } = binaryBody(header, parts);
    const all: Record<string, string | undefined> = { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength), ...headers };
    const sent = Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
    return readReply(await fetch(url(model), { method: 'POST', headers: sent, body }));
  };

  it('is listed in GET /v2 extensions', async () => {
    const { status, body } = await getJson(`${runtime.url}/v2`);
    assert.equal(status, 200);
    assert.ok(body.extensions.includes('binary_tensor_data'), JSON.stringify(body));
  });

  it('round-trips every datatype as raw bytes, exactly as in-process onnxruntime', async () => {
    const expected = await runReference(MODELS.identityAll, feedsOf((c) => c.extreme));
    const reply = await postBinary('all', {
      id: 'every-type',
      inputs: TYPES.map((c) => ({ name: `in_${c.t}`, datatype: c.datatype, shape: [c.extreme.length], parameters: { binary_data_size: rawOf(c.extreme).length } })),
      parameters: { binary_data_output: true },
    }, TYPES.map((c) => rawOf(c.extreme)));
    assert.equal(reply.status, 200, JSON.stringify(reply.json));
    assert.equal(reply.headers.get('content-type'), 'application/octet-stream');
    assert.equal(reply.json.id, 'every-type');
    assert.equal(reply.json.outputs.length, TYPES.length);
    for (const c of TYPES) {
      const name = `out_${c.t}`;
      const output = reply.json.outputs.find((o: { name: string }) => o.name === name);
      assert.deepEqual({ datatype: output.datatype, shape: output.shape }, { datatype: c.datatype, shape: [c.extreme.length] }, name);
      const reference = rawOfOrt(expected[name]);
      assert.equal(output.parameters.binary_data_size, reference.length, name);
      assert.ok(reply.binary.get(name)!.equals(reference), `${name}: ${reply.binary.get(name)!.toString('hex')} != ${reference.toString('hex')}`);
      assert.ok(reference.equals(rawOf(c.extreme)), `${name}: identity in-process`);
    }
  });

  it('mixes binary and JSON inputs, and answers binary_data per output, binary_data_output globally, false overriding', async () => {
    const expected = await runReference(MODELS.identityAll, feedsOf((c) => c.plain));
    // Every other input binary; the binary parts follow in the order of those inputs.
    const binaryInputs = TYPES.filter((_, i) => i % 2 === 0);
    const inputs = TYPES.map((c, i) => (i % 2 === 0
      ? { name: `in_${c.t}`, datatype: c.datatype, shape: [c.plain.length], parameters: { binary_data_size: rawOf(c.plain).length } }
      : { name: `in_${c.t}`, datatype: c.datatype, shape: [c.plain.length], data: jsonOf(c, c.plain) }));
    const parts = binaryInputs.map((c) => rawOf(c.plain));
    const check = (reply: Reply, binaryNames: readonly string[], jsonNames: readonly string[]) => {
      assert.equal(reply.status, 200, JSON.stringify(reply.json));
      assert.deepEqual([...reply.binary.keys()].sort(), [...binaryNames].sort());
      for (const name of binaryNames) assert.ok(reply.binary.get(name)!.equals(rawOfOrt(expected[name])), name);
      for (const name of jsonNames) {
        const output = reply.json.outputs.find((o: { name: string }) => o.name === name);
        const c = TYPES.find((x) => `out_${x.t}` === name)!;
        assert.equal(output.parameters, undefined, name);
        const want = jsonOf(c, expected[name].data as Values);
        assert.deepEqual(output.data.map(String), want.map(String), name);
      }
    };

    // Per output: binary_data true for some, false or absent for others.
    const perOutput = await postBinary('all', {
      inputs,
      outputs: [
        { name: 'out_bool', parameters: { binary_data: true } }, { name: 'out_fp32' },
        { name: 'out_bytes', parameters: { binary_data: false } }, { name: 'out_int64', parameters: { binary_data: true } },
        { name: 'out_fp16', parameters: { binary_data: true } },
      ],
    }, parts);
    check(perOutput, ['out_bool', 'out_int64', 'out_fp16'], ['out_fp32', 'out_bytes']);
    assert.deepEqual(perOutput.json.outputs.map((o: { name: string }) => o.name), ['out_bool', 'out_fp32', 'out_bytes', 'out_int64', 'out_fp16']);

    // Globally: every output binary, except where binary_data is false.
    const global = await postBinary('all', {
      inputs, parameters: { binary_data_output: true },
      outputs: [{ name: 'out_uint64' }, { name: 'out_bytes', parameters: { binary_data: false } }, { name: 'out_fp64' }, { name: 'out_int8', parameters: { binary_data: false } }],
    }, parts);
    check(global, ['out_uint64', 'out_fp64'], ['out_bytes', 'out_int8']);

    // No output binary: a plain JSON response, even for a binary request.
    const plain = await postBinary('all', { inputs, parameters: { binary_data_output: false } }, parts);
    assert.equal(plain.headers.get('content-type'), 'application/json', 'JSON answers carry no charset parameter');
    check(plain, [], TYPES.map((c) => `out_${c.t}`));

    // A plain JSON request asking for binary outputs gets them.
    const jsonIn = await readReply(await fetch(url('all'), {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: TYPES.map((c) => ({ name: `in_${c.t}`, datatype: c.datatype, shape: [c.plain.length], data: jsonOf(c, c.plain) })), parameters: { binary_data_output: true } }),
    }));
    check(jsonIn, TYPES.map((c) => `out_${c.t}`), []);
  });

  it('OCR detection: a binary FP32 [1,3,320,320] in and out equals in-process exactly, and equals the JSON answer', async () => {
    const dims = [1, 3, 320, 320];
    const pixels = randomFloats(dims.reduce((a, b) => a * b, 1), 320);
    const expected = await runReference(MODELS.ocrDetection, { x: new ort.Tensor('float32', pixels, dims) });
    const [name] = Object.keys(expected);
    const reference = rawOfOrt(expected[name]);

    const binary = await postBinary('det', {
      inputs: [{ name: 'x', datatype: 'FP32', shape: dims, parameters: { binary_data_size: pixels.byteLength } }],
      outputs: [{ name, parameters: { binary_data: true } }],
    }, [rawOf(pixels)]);
    assert.equal(binary.status, 200, JSON.stringify(binary.json));
    assert.equal(Number(binary.headers.get('content-length')), Number(binary.headers.get('inference-header-content-length')) + reference.length);
    assert.deepEqual(binary.json.outputs[0].shape, [...expected[name].dims]);
    assert.ok(binary.binary.get(name)!.equals(reference), 'binary output equals in-process bytes');

    const json = await postJson(url('det'), { inputs: [{ name: 'x', datatype: 'FP32', shape: dims, data: Array.from(pixels) }] });
    assert.equal(json.status, 200, JSON.stringify(json.body));
    const served = binary.binary.get(name)!;
    assert.deepEqual(json.body.outputs[0].data, Array.from(new Float32Array(served.buffer.slice(served.byteOffset, served.byteOffset + served.byteLength))));
  });

  it('reads the extension whatever the content type: JSON types, and none (Triton\'s Python client sends none)', async () => {
    const header = { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 1], parameters: { binary_data_size: 8 } }], parameters: { binary_data_output: true } };
    const x = rawOf(Float32Array.of(1, 2));
    const expected = await runReference(MODELS.linearRegression, { x: new ort.Tensor('float32', Float32Array.of(1, 2), [2, 1]) });
    const want = rawOfOrt(expected[Object.keys(expected)[0]]);
    for (const contentType of ['application/octet-stream', 'application/json', 'application/x-www-form-urlencoded', undefined]) {
      const reply = await postBinary('lin', header, [x], { 'content-type': contentType });
      assert.equal(reply.status, 200, `${contentType}: ${JSON.stringify(reply.json)}`);
      assert.ok([...reply.binary.values()][0].equals(want), String(contentType));
    }
    // Versioned route too; a JSON header that fills the whole body is a plain request.
    const { body, headerLength } = binaryBody(header, [x]);
    const versioned = await readReply(await fetch(`${runtime.url}/v2/models/lin/versions/1/infer`, {
      method: 'POST', headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) }, body,
    }));
    assert.equal(versioned.status, 200, JSON.stringify(versioned.json));
    assert.ok([...versioned.binary.values()][0].equals(want));
    const whole = await postBinary('lin', { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 1], data: [1, 2] }] });
    assert.equal(whole.status, 200, JSON.stringify(whole.json));
    assert.equal(whole.json.outputs[0].data.length, 2);
  });

  describe('malformed binary requests get 400 naming the input, the expected and the received', () => {
    const LIN_X = (parameters: Record<string, unknown>, extra: Record<string, unknown> = {}) =>
      ({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 1], parameters, ...extra }] });
    const EIGHT = Buffer.alloc(8);
    const cases: Array<{ name: string; model?: string; header: unknown; parts?: Buffer[]; headers?: Record<string, string | undefined>; says: (string | RegExp)[] }> = [
      { name: 'header length not a number', header: LIN_X({ binary_data_size: 8 }), parts: [EIGHT], headers: { 'inference-header-content-length': 'abc' }, says: ['Inference-Header-Content-Length', 'non-negative integer', '"abc"'] },
      { name: 'header length negative', header: LIN_X({ binary_data_size: 8 }), parts: [EIGHT], headers: { 'inference-header-content-length': '-5' }, says: ['Inference-Header-Content-Length', 'non-negative integer', '"-5"'] },
      { name: 'header length fractional', header: LIN_X({ binary_data_size: 8 }), parts: [EIGHT], headers: { 'inference-header-content-length': '12.5' }, says: ['non-negative integer', '"12.5"'] },
      { name: 'header length larger than the body', header: LIN_X({ binary_data_size: 8 }), parts: [EIGHT], headers: { 'inference-header-content-length': '100000' }, says: ['100000 bytes', /whole body is \d+ bytes/] },
      { name: 'header length 0', header: LIN_X({ binary_data_size: 8 }), parts: [EIGHT], headers: { 'inference-header-content-length': '0' }, says: ['Inference-Header-Content-Length', 'is 0'] },
      { name: 'header length cutting the JSON short', header: LIN_X({ binary_data_size: 8 }), parts: [EIGHT], headers: { 'inference-header-content-length': '20' }, says: ['JSON header', 'first 20 bytes', 'not valid JSON'] },
      { name: 'binary_data_size negative', header: LIN_X({ binary_data_size: -8 }), parts: [EIGHT], says: ["input 'x'", 'binary_data_size', 'non-negative integer', 'received -8'] },
      { name: 'binary_data_size fractional', header: LIN_X({ binary_data_size: 7.5 }), parts: [EIGHT], says: ["input 'x'", 'binary_data_size', 'received 7.5'] },
      { name: 'binary_data_size a string', header: LIN_X({ binary_data_size: '8' }), parts: [EIGHT], says: ["input 'x'", 'binary_data_size', 'received "8"'] },
      { name: 'too few bytes after the JSON header', header: LIN_X({ binary_data_size: 8 }), parts: [Buffer.alloc(6)], says: ["input 'x'", 'binary_data_size', 'is 8', 'only 6 bytes'] },
      { name: 'trailing bytes after the last binary input', header: LIN_X({ binary_data_size: 8 }), parts: [Buffer.alloc(11)], says: ['11 bytes of binary data', "add up to 8 (input 'x': 8)", '3 trailing bytes'] },
      { name: 'binary bytes but no binary input', header: LIN_X({}, { data: [1, 2] }), parts: [EIGHT], says: ['8 bytes of binary data', 'no input declares', '8 trailing bytes'] },
      { name: 'both data and binary_data_size', header: LIN_X({ binary_data_size: 8 }, { data: [1, 2] }), parts: [EIGHT], says: ["input 'x'", "both 'data'", 'binary_data_size'] },
      { name: 'size not shape x datatype size', header: LIN_X({ binary_data_size: 12 }), parts: [Buffer.alloc(12)], says: ["input 'x'", 'shape [2, 1] of FP32 needs 8 bytes', 'received 12'] },
      { name: 'shape checked before the binary data', header: { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 2], parameters: { binary_data_size: 16 } }] }, parts: [Buffer.alloc(16)], says: ["input 'x'", 'expected shape', '[2, 2]'] },
      { name: 'unknown input in a binary request', header: { inputs: [{ name: 'y', datatype: 'FP32', shape: [2, 1], parameters: { binary_data_size: 8 } }] }, parts: [EIGHT], says: ["unknown input 'y'", "'x'"] },
      {
        name: 'BYTES element longer than its data', model: 'all',
        header: { inputs: TYPES.map((c) => (c.t === 'bytes' ? { name: 'in_bytes', datatype: 'BYTES', shape: [1], parameters: { binary_data_size: 6 } } : { name: `in_${c.t}`, datatype: c.datatype, shape: [0], data: [] })) },
        parts: [Buffer.from([9, 0, 0, 0, 0x61, 0x62])], says: ["input 'in_bytes'", 'declares 9 bytes', 'only 2 remain'],
      },
      { name: 'binary_data_size without the header', header: LIN_X({ binary_data_size: 8 }), headers: { 'content-type': 'application/json', 'inference-header-content-length': undefined }, says: ["input 'x'", 'binary_data_size', 'Inference-Header-Content-Length'] },
      { name: 'application/octet-stream without the header', header: LIN_X({ binary_data_size: 8 }), parts: [EIGHT], headers: { 'inference-header-content-length': undefined }, says: ['not valid JSON', 'application/octet-stream without the Inference-Header-Content-Length header is read as JSON', 'JSON header'] },
      { name: 'binary_data_output not a boolean', header: { ...LIN_X({ binary_data_size: 8 }), parameters: { binary_data_output: 'yes' } }, parts: [EIGHT], says: ['binary_data_output', 'true or false', '"yes"'] },
      { name: 'binary_data not a boolean', header: { ...LIN_X({ binary_data_size: 8 }), outputs: [{ name: 'y_pred', parameters: { binary_data: 1 } }] }, parts: [EIGHT], says: ["output 'y_pred'", 'binary_data', 'true or false', 'received 1'] },
    ];
    for (const c of cases) {
      it(c.name, async () => {
        const reply = await postBinary(c.model ?? 'lin', c.header, c.parts, c.headers);
        assert.equal(reply.status, 400, JSON.stringify(reply.json));
        assert.equal(Object.keys(reply.json).join(), 'error');
        for (const part of c.says) {
          if (typeof part === 'string') assert.ok(reply.json.error.includes(part), `'${part}' not in: ${reply.json.error}`);
          else assert.match(reply.json.error, part);
        }
      });
    }

    it('TF Serving refuses application/octet-stream with 415', async () => {
      const response = await fetch(`${runtime.url}/v1/models/lin:predict`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: '{"instances":[1]}' });
      assert.equal(response.status, 415);
      assert.match((await response.json() as { error: string }).error, /application\/octet-stream/);
    });

    it('leaves the server ready and serving', async () => {
      assert.equal((await getJson(`${runtime.url}/v2/health/ready`)).status, 200);
      const reply = await postBinary('lin', LIN_X({ binary_data_size: 8 }), [rawOf(Float32Array.of(3, 4))]);
      assert.equal(reply.status, 200, JSON.stringify(reply.json));
      assert.equal(reply.json.outputs[0].data.length, 2);
    });
  });
});
