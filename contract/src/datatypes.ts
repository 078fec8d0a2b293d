/**
 * The one table of tensor datatypes: the Open Inference Protocol name, onnxruntime's name, the ONNX enum, the
 * TensorFlow name and the value range. The runtime adds the typed array that holds each one's data; the ONNX
 * signature reader, which the constructs use at synth time too, needs only the names.
 */

export type Datatype =
  | 'BOOL' | 'UINT8' | 'UINT16' | 'UINT32' | 'UINT64' | 'INT8' | 'INT16' | 'INT32' | 'INT64'
  | 'FP16' | 'FP32' | 'FP64' | 'BYTES';

/** onnxruntime's names for the element types the protocols carry. */
export type OrtTypeName =
  | 'bool' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'int8' | 'int16' | 'int32' | 'int64'
  | 'float16' | 'float32' | 'float64' | 'string';

export interface DatatypeSpec {
  readonly name: Datatype;
  readonly ort: OrtTypeName;
  /** ONNX TensorProto.DataType. */
  readonly onnx: number;
  /** TensorFlow's DataType name, for TF Serving metadata. */
  readonly tf: string;
  readonly kind: 'bool' | 'int' | 'bigint' | 'float' | 'half' | 'string';
  /** Inclusive bounds for integer kinds. */
  readonly min?: number | bigint;
  readonly max?: number | bigint;
}

const info = (d: DatatypeSpec) => d;

export const DATATYPE_SPECS: Readonly<Record<Datatype, DatatypeSpec>> = {
  BOOL: info({ name: 'BOOL', ort: 'bool', onnx: 9, tf: 'DT_BOOL', kind: 'bool' }),
  UINT8: info({ name: 'UINT8', ort: 'uint8', onnx: 2, tf: 'DT_UINT8', kind: 'int', min: 0, max: 255 }),
  UINT16: info({ name: 'UINT16', ort: 'uint16', onnx: 4, tf: 'DT_UINT16', kind: 'int', min: 0, max: 65535 }),
  UINT32: info({ name: 'UINT32', ort: 'uint32', onnx: 12, tf: 'DT_UINT32', kind: 'int', min: 0, max: 2 ** 32 - 1 }),
  UINT64: info({ name: 'UINT64', ort: 'uint64', onnx: 13, tf: 'DT_UINT64', kind: 'bigint', min: 0n, max: 2n ** 64n - 1n }),
  INT8: info({ name: 'INT8', ort: 'int8', onnx: 3, tf: 'DT_INT8', kind: 'int', min: -128, max: 127 }),
  INT16: info({ name: 'INT16', ort: 'int16', onnx: 5, tf: 'DT_INT16', kind: 'int', min: -32768, max: 32767 }),
  INT32: info({ name: 'INT32', ort: 'int32', onnx: 6, tf: 'DT_INT32', kind: 'int', min: -(2 ** 31), max: 2 ** 31 - 1 }),
  INT64: info({ name: 'INT64', ort: 'int64', onnx: 7, tf: 'DT_INT64', kind: 'bigint', min: -(2n ** 63n), max: 2n ** 63n - 1n }),
  FP16: info({ name: 'FP16', ort: 'float16', onnx: 10, tf: 'DT_HALF', kind: 'half' }),
  FP32: info({ name: 'FP32', ort: 'float32', onnx: 1, tf: 'DT_FLOAT', kind: 'float' }),
  FP64: info({ name: 'FP64', ort: 'float64', onnx: 11, tf: 'DT_DOUBLE', kind: 'float' }),
  BYTES: info({ name: 'BYTES', ort: 'string', onnx: 8, tf: 'DT_STRING', kind: 'string' }),
};

const BY_ORT = new Map(Object.values(DATATYPE_SPECS).map((d) => [d.ort as string, d]));
const BY_ONNX = new Map(Object.values(DATATYPE_SPECS).map((d) => [d.onnx, d]));

export function isDatatype(name: unknown): name is Datatype {
  return typeof name === 'string' && Object.hasOwn(DATATYPE_SPECS, name);
}

/** The datatype of an onnxruntime type name, or undefined for types the protocols cannot carry (e.g. bfloat16). */
export function specOfOrtType(type: string): DatatypeSpec | undefined {
  return BY_ORT.get(type);
}

export function specOfOnnxType(elemType: number): DatatypeSpec | undefined {
  return BY_ONNX.get(elemType);
}
