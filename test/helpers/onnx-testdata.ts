/**
 * The ONNX backend node test cases Debian ships in libonnx-testdata (`data/node/<case>/model.onnx` with
 * `test_data_set_0/{input,output}_<i>.pb`): decoding their TensorProtos, running them in-process, turning them
 * into OIP v2 JSON and back, and comparing results the way the ONNX backend test does.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { getFloat16, setFloat16 } from '@petamoriken/float16';
import { onnx } from 'onnx-proto';
import * as ort from '../../runtime/src/model/onnxruntime';
import { DATATYPES, type Datatype, fromOnnxType, fromOrtType, type TypedArray } from '../../runtime/src/tensor/datatypes';

export const ONNX_TESTDATA = '/usr/share/libonnx-testdata';
export const NODE_CASES = join(ONNX_TESTDATA, 'data', 'node');

/** The ONNX backend test's default tolerance (onnx/backend/test/runner: rtol=1e-3, atol=1e-7). */
export const RTOL = 1e-3;
export const ATOL = 1e-7;

/** A tensor with its data as onnxruntime-node takes it: BOOL as 0/1 bytes, FP16 as raw bits, BYTES as strings. */
export interface CaseTensor {
  readonly name: string;
  readonly datatype: Datatype;
  readonly shape: readonly number[];
  readonly data: TypedArray | string[];
}

/** What the model's graph declares for one input or output. */
export interface DeclaredValue {
  readonly name: string;
  /** Undefined when OIP v2 has no datatype for it (non-tensor, bfloat16, float8, int4, complex, ...). */
  readonly datatype: Datatype | undefined;
  /** Why the value cannot travel as OIP v2 JSON, when it cannot. */
  readonly problem?: string;
  /** As OIP v2 metadata spells it: -1 for a symbolic or unknown dimension; undefined when no shape is declared. */
  readonly shape: number[] | undefined;
}

export interface BackendCase {
  readonly name: string;
  readonly modelPath: string;
  readonly declaredInputs: readonly DeclaredValue[];
  readonly declaredOutputs: readonly DeclaredValue[];
  /** Why the case cannot be carried by OIP v2 JSON; inputs and expected outputs are then not decoded. */
  readonly unrepresentable?: string;
  readonly inputs: readonly CaseTensor[];
  readonly expected: readonly CaseTensor[];
}

export function listNodeCases(): string[] {
  return readdirSync(NODE_CASES, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(join(NODE_CASES, entry.name, 'model.onnx')))
    .map((entry) => entry.name)
    .sort();
}

const ONNX_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'undefined', 14: 'complex64', 15: 'complex128', 16: 'bfloat16', 17: 'float8e4m3fn', 18: 'float8e4m3fnuz',
  19: 'float8e5m2', 20: 'float8e5m2fnuz', 21: 'uint4', 22: 'int4', 23: 'float4e2m1',
};

function declared(value: onnx.IValueInfoProto): DeclaredValue {
  const name = value.name ?? '';
  const type = value.type;
  const tensorType = type?.tensorType;
  if (!tensorType) {
    const kind = type?.sequenceType ? 'a sequence' : type?.optionalType ? 'an optional' : type?.mapType ? 'a map'
      : type?.sparseTensorType ? 'a sparse tensor' : 'of unknown type';
    return { name, datatype: undefined, problem: `'${name}' is ${kind}`, shape: undefined };
  }
  const elemType = tensorType.elemType ?? 0;
  const info = fromOnnxType(elemType);
  const shape = tensorType.shape
    ? (tensorType.shape.dim ?? []).map((d) => (d.dimValue != null && d.dimParam == null ? Number(d.dimValue) : -1))
    : undefined;
  if (!info) return { name, datatype: undefined, problem: `'${name}' is ${ONNX_TYPE_NAMES[elemType] ?? `ONNX type ${elemType}`}`, shape };
  return { name, datatype: info.name, shape };
}

/** The numbered .pb files of a data set, in numeric order (input_10 after input_9). */
function numbered(dir: string, prefix: string): string[] {
  return readdirSync(dir)
    .filter((file) => file.startsWith(prefix) && file.endsWith('.pb'))
    .sort((a, b) => Number(a.slice(prefix.length, -3)) - Number(b.slice(prefix.length, -3)))
    .map((file) => join(dir, file));
}

/** Reads a case: its declared signature and, when representable, its inputs and expected outputs. */
export function loadCase(name: string): BackendCase {
  const dir = join(NODE_CASES, name);
  const modelPath = join(dir, 'model.onnx');
  const model = onnx.ModelProto.decode(readFileSync(modelPath));
  const graph = model.graph!;
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const declaredInputs = (graph.input ?? []).filter((v) => !initializers.has(v.name)).map(declared);
  const declaredOutputs = (graph.output ?? []).map(declared);
  const base = { name, modelPath, declaredInputs, declaredOutputs };
  const problems = [...declaredInputs, ...declaredOutputs].flatMap((v) => (v.problem ? [v.problem] : []));
  if (problems.length > 0) return { ...base, unrepresentable: problems.join('; '), inputs: [], expected: [] };
  const dataDir = join(dir, 'test_data_set_0');
  const read = (files: string[], names: readonly DeclaredValue[]) => files.map((file, i) => {
    const proto = onnx.TensorProto.decode(readFileSync(file));
    // A name in the file wins; otherwise files follow the graph's (= the session's) order.
    return decodeTensor(proto, proto.name || names[i]?.name || `#${i}`);
  });
  try {
    return { ...base, inputs: read(numbered(dataDir, 'input_'), declaredInputs), expected: read(numbered(dataDir, 'output_'), declaredOutputs) };
  } catch (error) {
    return { ...base, unrepresentable: `test data: ${(error as Error).message}`, inputs: [], expected: [] };
  }
}

const Type = onnx.TensorProto.DataType;

/** int64_data / uint64_data elements: numbers, or protobufjs Long objects when the long package is present. */
function int64s(values: readonly (number | { toString(): string })[] | null | undefined): bigint[] {
  return (values ?? []).map((v) => BigInt(typeof v === 'number' ? v : v.toString()));
}

/** A TensorProto as a CaseTensor, following onnx.proto's rules for which repeated field carries which type. */
export function decodeTensor(proto: onnx.TensorProto, name: string): CaseTensor {
  const dataType = proto.dataType ?? 0;
  const info = fromOnnxType(dataType);
  if (!info) throw new Error(`tensor '${name}' has ${ONNX_TYPE_NAMES[dataType] ?? `ONNX type ${dataType}`}`);
  if (proto.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) throw new Error(`tensor '${name}' has external data`);
  const shape = (proto.dims ?? []).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  let data: TypedArray | string[];
  if (proto.rawData && proto.rawData.length > 0) {
    if (info.kind === 'string') throw new Error(`tensor '${name}': raw_data cannot hold strings`);
    // Copy into a fresh, aligned buffer: the decoder's slice may sit at any offset. raw_data is little-endian,
    // as is every platform onnxruntime-node ships for.
    const bytes = new Uint8Array(proto.rawData);
    data = new info.array!(bytes.buffer, 0, bytes.byteLength / info.array!.BYTES_PER_ELEMENT);
  } else {
    switch (dataType) {
      case Type.FLOAT: data = Float32Array.from(proto.floatData ?? []); break;
      case Type.DOUBLE: data = Float64Array.from(proto.doubleData ?? []); break;
      // int32_data carries INT32, INT16, INT8, UINT16, UINT8, BOOL and FLOAT16 (as its bit pattern).
      case Type.INT32: case Type.INT16: case Type.INT8: case Type.UINT16: case Type.UINT8: case Type.BOOL: case Type.FLOAT16:
        data = (info.array as unknown as { from(v: number[]): TypedArray }).from(proto.int32Data ?? []);
        break;
      case Type.INT64: data = BigInt64Array.from(int64s(proto.int64Data)); break;
      // uint64_data carries UINT32 and UINT64.
      case Type.UINT32: data = Uint32Array.from(int64s(proto.uint64Data), Number); break;
      case Type.UINT64: data = BigUint64Array.from(int64s(proto.uint64Data)); break;
      case Type.STRING: {
        const decoder = new TextDecoder('utf-8', { fatal: true });
        data = (proto.stringData ?? []).map((bytes) => decoder.decode(bytes));
        break;
      }
      default: throw new Error(`tensor '${name}': unhandled ONNX type ${dataType}`);
    }
  }
  if (data.length !== count) throw new Error(`tensor '${name}': shape [${shape.join(', ')}] needs ${count} elements, the file has ${data.length}`);
  return { name, datatype: info.name, shape, data };
}

export function toOrtTensor(tensor: CaseTensor): ort.Tensor {
  return new ort.Tensor(DATATYPES[tensor.datatype].ort, tensor.data as ort.Tensor.DataType, tensor.shape);
}

export function fromOrtTensor(name: string, tensor: ort.Tensor): CaseTensor {
  const info = fromOrtType(tensor.type);
  if (!info) throw new Error(`output '${name}' has onnxruntime type ${tensor.type}`);
  return { name, datatype: info.name, shape: [...tensor.dims], data: tensor.data as TypedArray | string[] };
}

/** The elements as plain JS values: numbers (FP16 decoded), bigints, booleans or strings. */
export function elementsOf(tensor: CaseTensor): (number | bigint | boolean | string)[] {
  const { data } = tensor;
  switch (DATATYPES[tensor.datatype].kind) {
    case 'half': {
      const bits = data as Uint16Array;
      const view = new DataView(bits.buffer, bits.byteOffset, bits.byteLength);
      return Array.from({ length: bits.length }, (_, i) => getFloat16(view, i * 2, true));
    }
    case 'bool': return Array.from(data as Uint8Array, (v) => v !== 0);
    case 'string': return [...(data as string[])];
    default: return Array.from(data as Float64Array) as (number | bigint)[];
  }
}

/**
 * Compares an output with the expected tensor as the ONNX backend test does: same datatype and shape; floats within
 * rtol 1e-3 / atol 1e-7 (NaN equals NaN, infinities must match); integers, booleans and strings exactly.
 * Returns a description of the first mismatch, or undefined.
 */
export function compareTensors(expected: CaseTensor, actual: CaseTensor): string | undefined {
  const where = `output '${expected.name}'`;
  if (actual.datatype !== expected.datatype) return `${where}: datatype ${actual.datatype}, expected ${expected.datatype}`;
  if (actual.shape.join(',') !== expected.shape.join(',')) {
    return `${where}: shape [${actual.shape.join(', ')}], expected [${expected.shape.join(', ')}]`;
  }
  const want = elementsOf(expected);
  const got = elementsOf(actual);
  if (got.length !== want.length) return `${where}: ${got.length} elements, expected ${want.length}`;
  const kind = DATATYPES[expected.datatype].kind;
  let bad = 0;
  let first = -1;
  for (let i = 0; i < want.length; i++) {
    const e = want[i];
    const a = got[i];
    let ok: boolean;
    if (kind === 'float' || kind === 'half') {
      // As numpy's assert_allclose: -0 equals 0. (The runtime does keep the sign: test_ceil's -0s come back as -0.)
      const x = a as number;
      const y = e as number;
      ok = Number.isNaN(y) ? Number.isNaN(x) : Number.isFinite(y) ? Math.abs(x - y) <= ATOL + RTOL * Math.abs(y) : x === y;
    } else {
      ok = a === e;
    }
    if (!ok) {
      bad++;
      if (first < 0) first = i;
    }
  }
  if (bad === 0) return undefined;
  return `${where}: ${bad} of ${want.length} elements differ; first at ${first}: ${String(got[first])}, expected ${String(want[first])}`;
}

/** Runs a case in-process; returns undefined when every output matches, else what went wrong. */
export async function runInProcess(c: BackendCase): Promise<string | undefined> {
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(c.modelPath, { logSeverityLevel: 4 });
  } catch (error) {
    return `load: ${firstLine(error)}`;
  }
  try {
    const feeds = Object.fromEntries(c.inputs.map((input) => [input.name, toOrtTensor(input)]));
    const results = await session.run(feeds);
    return compareOutputs(c, (name) => (results[name] ? fromOrtTensor(name, results[name]) : undefined));
  } catch (error) {
    return `run: ${firstLine(error)}`;
  } finally {
    await session.release();
  }
}

/** Compares every expected output with the one of the same name `actual` finds (undefined when missing). */
export function compareOutputs(c: BackendCase, actual: (name: string) => CaseTensor | undefined): string | undefined {
  if (c.expected.length === 0) return 'the case has no expected outputs';
  for (const expected of c.expected) {
    const got = actual(expected.name);
    if (!got) return `output '${expected.name}' is missing`;
    const problem = compareTensors(expected, got);
    if (problem) return problem;
  }
  return undefined;
}

function firstLine(error: unknown): string {
  return String((error as Error)?.message ?? error).split('\n')[0].slice(0, 300);
}

/** JSON text for one float: NaN and ±Infinity as the protocol's strings, -0 as "-0" (valid JSON that keeps the sign). */
function jsonFloat(value: number): string {
  if (Number.isFinite(value)) return Object.is(value, -0) ? '-0' : String(value);
  return `"${value}"`;
}

/**
 * An OIP v2 request tensor as JSON text: flat data; floats exact (a double prints the float32 it holds exactly),
 * non-finite floats as strings; 64-bit integers as digit strings so that no JSON parser rounds them.
 */
export function v2InputJson(tensor: CaseTensor): string {
  const kind = DATATYPES[tensor.datatype].kind;
  const elements = elementsOf(tensor);
  let data: string;
  switch (kind) {
    case 'float': case 'half': data = (elements as number[]).map(jsonFloat).join(','); break;
    case 'bigint': data = elements.map((v) => `"${v}"`).join(','); break;
    case 'string': data = elements.map((v) => JSON.stringify(v)).join(','); break;
    default: data = elements.map(String).join(','); break;
  }
  return `{"name":${JSON.stringify(tensor.name)},"datatype":"${tensor.datatype}","shape":[${tensor.shape.join(',')}],"data":[${data}]}`;
}

export function v2RequestJson(c: BackendCase): string {
  return `{"inputs":[${c.inputs.map(v2InputJson).join(',')}]}`;
}

/** A served OIP v2 output tensor, as parsed by parseJsonExact, turned back into a CaseTensor; throws when malformed. */
export function fromV2Output(output: { name: string; datatype: string; shape: unknown; data: unknown }): CaseTensor {
  const { name, datatype } = output;
  if (!Object.hasOwn(DATATYPES, datatype)) throw new Error(`output '${name}': unknown datatype ${JSON.stringify(datatype)}`);
  const info = DATATYPES[datatype as Datatype];
  if (!Array.isArray(output.shape) || !Array.isArray(output.data)) throw new Error(`output '${name}': shape and data must be arrays`);
  const shape = output.shape.map(Number);
  const items = output.data as unknown[];
  const fail = (i: number): never => { throw new Error(`output '${name}': element ${i} is ${String(items[i])} (${typeof items[i]}), not a ${datatype}`); };
  let data: TypedArray | string[];
  switch (info.kind) {
    case 'float': case 'half': {
      const values = items.map((v, i) => (typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v)
        : v === 'NaN' || v === 'Infinity' || v === '-Infinity' ? Number(v) : fail(i)));
      if (info.kind === 'float') data = (info.array as typeof Float64Array).from(values);
      else {
        const view = new DataView(new ArrayBuffer(values.length * 2));
        values.forEach((v, i) => setHalf(view, i, v));
        data = new Uint16Array(view.buffer);
      }
      break;
    }
    case 'bigint':
      data = (info.array as typeof BigInt64Array).from(items.map((v, i) => (typeof v === 'bigint' ? v
        : typeof v === 'number' && Number.isSafeInteger(v) ? BigInt(v) : fail(i))));
      break;
    case 'int': data = (info.array as typeof Int32Array).from(items.map((v, i) => (typeof v === 'number' && Number.isInteger(v) ? v : fail(i)))); break;
    case 'bool': data = Uint8Array.from(items.map((v, i) => (typeof v === 'boolean' ? (v ? 1 : 0) : fail(i)))); break;
    case 'string': data = items.map((v, i) => (typeof v === 'string' ? v : fail(i))); break;
  }
  return { name, datatype: info.name, shape, data };
}

function setHalf(view: DataView, index: number, value: number): void {
  setFloat16(view, index * 2, value, true);
}

/**
 * JSON.parse, except that integer literals outside the safe range come back as BigInt, so that the exact digits
 * the server writes for INT64/UINT64 are not rounded to doubles. Anything JSON.parse rejects is rejected.
 */
export function parseJsonExact(text: string): unknown {
  let i = 0;
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  const error = (what: string): never => { throw new SyntaxError(`${what} at ${i} in ${text.slice(Math.max(0, i - 20), i + 20)}`); };
  const value = (): unknown => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      const out: Record<string, unknown> = {};
      ws();
      if (text[i] === '}') { i++; return out; }
      for (;;) {
        ws();
        if (text[i] !== '"') error('expected a key');
        const key = string();
        ws();
        if (text[i++] !== ':') error('expected :');
        out[key] = value();
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i++] === '}') return out;
        error('expected , or }');
      }
    }
    if (c === '[') {
      i++;
      const out: unknown[] = [];
      ws();
      if (text[i] === ']') { i++; return out; }
      for (;;) {
        out.push(value());
        ws();
        if (text[i] === ',') { i++; continue; }
        if (text[i++] === ']') return out;
        error('expected , or ]');
      }
    }
    if (c === '"') return string();
    const m = /^(?:true|false|null|-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?)/.exec(text.slice(i, i + 400));
    if (!m) return error('unexpected token');
    i += m[0].length;
    if (m[0] === 'true') return true;
    if (m[0] === 'false') return false;
    if (m[0] === 'null') return null;
    const n = Number(m[0]);
    return !m[1] && !m[2] && !Number.isSafeInteger(n) ? BigInt(m[0]) : n;
  };
  const string = (): string => {
    const start = i;
    i++;
    while (i < text.length && text[i] !== '"') i += text[i] === '\\' ? 2 : 1;
    if (i >= text.length) error('unterminated string');
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  const result = value();
  ws();
  if (i !== text.length) error('trailing characters');
  return result;
}
