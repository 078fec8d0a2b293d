/**
 * Tensors as the runtime holds them: each datatype of the table in @modelship/contract (names, ONNX enum, TF name,
 * bounds) with the typed array its data lives in, and what the queue and the workers need of tensor values.
 */
import { type Datatype, DATATYPE_SPECS, type DatatypeSpec, specOfOnnxType, specOfOrtType } from '@modelship/contract';

export { type Datatype, isDatatype } from '@modelship/contract';

export type TypedArray =
  | Uint8Array | Uint16Array | Uint32Array | BigUint64Array | Int8Array | Int16Array | Int32Array
  | BigInt64Array | Float32Array | Float64Array;

type ArrayConstructor = { new (length: number): TypedArray; new (buffer: ArrayBufferLike, offset?: number, length?: number): TypedArray; readonly BYTES_PER_ELEMENT: number };

export interface DatatypeInfo extends DatatypeSpec {
  /** Absent for BYTES, whose elements are strings. FP16 data is its raw half-precision bits. */
  readonly array?: ArrayConstructor;
}

const ARRAYS: Readonly<Record<Datatype, ArrayConstructor | undefined>> = {
  BOOL: Uint8Array, UINT8: Uint8Array, UINT16: Uint16Array, UINT32: Uint32Array, UINT64: BigUint64Array,
  INT8: Int8Array, INT16: Int16Array, INT32: Int32Array, INT64: BigInt64Array,
  FP16: Uint16Array, FP32: Float32Array, FP64: Float64Array, BYTES: undefined,
};

export const DATATYPES = Object.fromEntries(Object.values(DATATYPE_SPECS).map((spec) => [spec.name, { ...spec, array: ARRAYS[spec.name] }])) as Readonly<Record<Datatype, DatatypeInfo>>;

/** The datatype of an onnxruntime type name, or undefined for types the protocols cannot carry (e.g. bfloat16). */
export function fromOrtType(type: string): DatatypeInfo | undefined {
  const spec = specOfOrtType(type);
  return spec && DATATYPES[spec.name];
}

export function fromOnnxType(elemType: number): DatatypeInfo | undefined {
  const spec = specOfOnnxType(elemType);
  return spec && DATATYPES[spec.name];
}

/** Tensor data as onnxruntime-node takes it: BOOL as 0/1 bytes, FP16 as raw half-precision bits, BYTES as strings. */
export type TensorData = TypedArray | string[];

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
