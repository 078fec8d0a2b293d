/**
 * The one table of tensor datatypes: the Open Inference Protocol name, onnxruntime's name, the ONNX enum, the
 * TensorFlow name, the typed array that holds the data and the value range. Every encoding reads this table.
 */
import type { Tensor as OrtTensor } from 'onnxruntime-node';

export type Datatype =
  | 'BOOL' | 'UINT8' | 'UINT16' | 'UINT32' | 'UINT64' | 'INT8' | 'INT16' | 'INT32' | 'INT64'
  | 'FP16' | 'FP32' | 'FP64' | 'BYTES';

export type TypedArray =
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array | Int8Array | Int16Array | Int32Array
  | BigInt64Array | Float32Array | Float64Array;

/** Tensor data as onnxruntime-node takes it: BOOL as 0/1 bytes, FP16 as raw half-precision bits, BYTES as strings. */
export type TensorData = TypedArray | string[];

type ArrayConstructor = { new (length: number): TypedArray; new (buffer: ArrayBufferLike, offset?: number, length?: number): TypedArray; readonly BYTES_PER_ELEMENT: number };

export interface DatatypeInfo {
  readonly name: Datatype;
  readonly ort: OrtTensor.Type;
  /** ONNX TensorProto.DataType. */
  readonly onnx: number;
  /** TensorFlow's DataType name, for TF Serving metadata. */
  readonly tf: string;
  /** Absent for BYTES, whose elements are strings. */
  readonly array?: ArrayConstructor;
  readonly kind: 'bool' | 'int' | 'bigint' | 'float' | 'half' | 'string';
  /** Inclusive bounds for integer kinds. */
  readonly min?: number | bigint;
  readonly max?: number | bigint;
}

const info = (d: DatatypeInfo) => d;

export const DATATYPES: Readonly<Record<Datatype, DatatypeInfo>> = {
  BOOL: info({ name: 'BOOL', ort: 'bool', onnx: 9, tf: 'DT_BOOL', array: Uint8Array, kind: 'bool' }),
  UINT8: info({ name: 'UINT8', ort: 'uint8', onnx: 2, tf: 'DT_UINT8', array: Uint8Array, kind: 'int', min: 0, max: 255 }),
  UINT16: info({ name: 'UINT16', ort: 'uint16', onnx: 4, tf: 'DT_UINT16', array: Uint16Array, kind: 'int', min: 0, max: 65535 }),
  UINT32: info({ name: 'UINT32', ort: 'uint32', onnx: 12, tf: 'DT_UINT32', array: Uint32Array, kind: 'int', min: 0, max: 2 ** 32 - 1 }),
  UINT64: info({ name: 'UINT64', ort: 'uint64', onnx: 13, tf: 'DT_UINT64', array: BigUint64Array, kind: 'bigint', min: 0n, max: 2n ** 64n - 1n }),
  INT8: info({ name: 'INT8', ort: 'int8', onnx: 3, tf: 'DT_INT8', array: Int8Array, kind: 'int', min: -128, max: 127 }),
  INT16: info({ name: 'INT16', ort: 'int16', onnx: 5, tf: 'DT_INT16', array: Int16Array, kind: 'int', min: -32768, max: 32767 }),
  INT32: info({ name: 'INT32', ort: 'int32', onnx: 6, tf: 'DT_INT32', array: Int32Array, kind: 'int', min: -(2 ** 31), max: 2 ** 31 - 1 }),
  INT64: info({ name: 'INT64', ort: 'int64', onnx: 7, tf: 'DT_INT64', array: BigInt64Array, kind: 'bigint', min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  FP16: info({ name: 'FP16', ort: 'float16', onnx: 10, tf: 'DT_HALF', array: Uint16Array, kind: 'half' }),
  FP32: info({ name: 'FP32', ort: 'float32', onnx: 1, tf: 'DT_FLOAT', array: Float32Array, kind: 'float' }),
  FP64: info({ name: 'FP64', ort: 'float64', onnx: 11, tf: 'DT_DOUBLE', array: Float64Array, kind: 'float' }),
  BYTES: info({ name: 'BYTES', ort: 'string', onnx: 8, tf: 'DT_STRING', kind: 'string' }),
};

const BY_ORT = new Map(Object.values(DATATYPES).map((d) => [d.ort as string, d]));
const BY_ONNX = new Map(Object.values(DATATYPES).map((d) => [d.onnx, d]));

export function isDatatype(name: unknown): name is Datatype {
  return typeof name === 'string' && Object.hasOwn(DATATYPES, name);
}

/** The datatype of an onnxruntime type name, or undefined for types the protocols cannot carry (e.g. bfloat16). */
export function fromOrtType(type: string): DatatypeInfo | undefined {
  return BY_ORT.get(type);
}

export function fromOnnxType(elemType: number): DatatypeInfo | undefined {
  return BY_ONNX.get(elemType);
}

/** A tensor as it travels between the protocol doors, the queue and the session workers. */
export interface Tensor {
  readonly datatype: Datatype;
  readonly shape: readonly number[];
  readonly data: TensorData;
}

export interface NamedTensor extends Tensor {
  readonly name: string;
}

export function elementCount(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) count *= dim;
  return count;
}

/** The bytes a tensor's data holds; for strings, their UTF-16 length as a close estimate. */
export function dataBytes(data: TensorData): number {
  return Array.isArray(data) ? (data as string[]).reduce((sum, text) => sum + text.length, 0) : (data as TypedArray).byteLength;
}

/** The distinct ArrayBuffers under tensors' data, to hand to postMessage as transferables (strings are copied). */
export function transferListOf(tensors: readonly Tensor[]): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const tensor of tensors) {
    if (!Array.isArray(tensor.data)) buffers.add((tensor.data as TypedArray).buffer as ArrayBuffer);
  }
  return [...buffers];
}
