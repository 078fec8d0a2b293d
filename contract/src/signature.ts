/** A model's declared inputs and outputs, as read from its ONNX file and as the protocols present them. */
import type { Datatype } from './datatypes';

/** A dimension: a non-negative number when fixed, a string (the ONNX dim_param, maybe '') when dynamic. */
export type Dim = number | string;

export interface TensorSpec {
  readonly name: string;
  /** Undefined when the protocols cannot carry the ONNX type (e.g. bfloat16, sequences). */
  readonly datatype: Datatype | undefined;
  /** onnxruntime's own name for the type, kept for error messages about unsupported types. */
  readonly ortType: string;
  /** Undefined when the model does not declare a rank. */
  readonly shape: readonly Dim[] | undefined;
}

export interface Signature {
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
}
