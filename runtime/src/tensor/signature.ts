/**
 * A model's signature as the protocols present it, and the checks a request must pass against it before anything
 * sized by the request is allocated.
 */
import { badRequest } from '../errors';
import type { Datatype, Dim, Signature, TensorSpec } from '@modelship/contract';

export type { Dim, Signature, TensorSpec } from '@modelship/contract';

/** The shape as OIP v2 and TF Serving metadata spell it: -1 for a dynamic dimension. */
export function publicShape(spec: TensorSpec): number[] {
  return (spec.shape ?? []).map((dim) => (typeof dim === 'number' ? dim : -1));
}

export function describeShape(shape: readonly Dim[] | undefined): string {
  if (!shape) return 'any shape';
  return `[${shape.map((dim) => (typeof dim === 'number' ? dim : dim === '' ? '-1' : dim)).join(', ')}]`;
}

export interface ShapeLimits {
  /** Largest element count one input may declare. */
  readonly maxTensorElements: number;
  /** Largest answer in raw bytes; also bounds what an input without elements may declare (see checkShape). */
  readonly maxResponseBytes: number;
}

/** The widest element a model can answer with (INT64, UINT64, FP64). */
const MAX_ELEMENT_BYTES = 8;

/** Upper bound on rank: ONNX has no limit, but no real model comes near it and deep nesting costs the parser. */
export const MAX_RANK = 32;

/**
 * Checks a request's declared shape against the input's spec and the limits, and returns it as numbers.
 * Symbolic dims are not matched across inputs: onnxruntime does not enforce that equal dim_params agree, and
 * exporters reuse generic names, so a server that did would refuse requests the model runs.
 */
export function checkShape(spec: TensorSpec, shape: unknown, limits: ShapeLimits): number[] {
  const where = `input '${spec.name}'`;
  if (!Array.isArray(shape)) {
    throw badRequest(`${where}: 'shape' must be an array of non-negative integers, received ${preview(shape)}`);
  }
  if (shape.length > MAX_RANK) throw badRequest(`${where}: rank ${shape.length} exceeds the limit of ${MAX_RANK}`);
  for (const dim of shape) {
    if (typeof dim !== 'number' || !Number.isSafeInteger(dim) || dim < 0) {
      throw badRequest(`${where}: 'shape' must be an array of non-negative integers, received ${preview(shape)}`);
    }
  }
  const dims = shape as number[];
  if (spec.shape) {
    if (dims.length !== spec.shape.length) {
      throw badRequest(`${where}: expected rank ${spec.shape.length} ${describeShape(spec.shape)}, received rank ${dims.length} [${dims.join(', ')}]`);
    }
    spec.shape.forEach((expected, axis) => {
      if (typeof expected === 'number' && expected !== dims[axis]) {
        throw badRequest(`${where}: expected shape ${describeShape(spec.shape)}, received [${dims.join(', ')}] (dim ${axis} must be ${expected})`);
      }
    });
  }
  // A zero elsewhere makes the product 0, but onnxruntime still refuses an absurd dim: check each dim as well.
  const absurd = dims.findIndex((dim) => dim > limits.maxTensorElements);
  if (absurd >= 0) {
    throw badRequest(`${where}: dim ${absurd} of shape [${dims.join(', ')}] exceeds the limit of ${limits.maxTensorElements} elements (--max-tensor-elements)`);
  }
  // Multiplying safe integers can overflow past 2^53; stop as soon as the running product exceeds the limit.
  // A zero dim counts as one: [N, 0] holds nothing, but a model can turn it into N rows of output.
  let count = 1;
  for (const dim of dims) {
    count *= Math.max(dim, 1);
    if (count > limits.maxTensorElements) {
      throw badRequest(`${where}: shape [${dims.join(', ')}] has more elements than the limit of ${limits.maxTensorElements} (--max-tensor-elements)`);
    }
  }
  // An input without elements costs its sender a few bytes whatever its other dims, and a model can make them into
  // output: ReduceSum over the empty axis of [N, 0] answers N elements. Held only to --max-tensor-elements, a
  // 150-byte request had onnxruntime compute a 512 MB INT64 answer (refused only afterwards, by --max-response-bytes)
  // and the worker copy it. So what such an input can become must fit the largest answer at the widest element:
  // onnxruntime never computes more than --max-response-bytes from it. That also refuses the rare request whose
  // model would have answered in narrower elements (BOOL, FP32); the real use of empty inputs, a transformer's past
  // keys and values at the first step ([batch, heads, 0, head size]), spans far less. An input with elements is
  // bounded by the body that carries them.
  if (dims.includes(0)) {
    const limit = Math.floor(limits.maxResponseBytes / MAX_ELEMENT_BYTES);
    if (count > limit) {
      throw badRequest(`${where}: shape [${dims.join(', ')}] holds no elements but spans ${count} along its nonzero dims, more than the ${limit} an empty input may span (--max-response-bytes ${limits.maxResponseBytes} / ${MAX_ELEMENT_BYTES} bytes, since a model can answer an element for each); declare fewer or raise --max-response-bytes`);
    }
  }
  return dims;
}

/** Checks the set of input names: each known, none twice, none missing. */
export function checkInputNames(signature: Signature, names: readonly string[]): void {
  const known = new Set(signature.inputs.map((input) => input.name));
  const seen = new Set<string>();
  for (const name of names) {
    if (!known.has(name)) {
      throw badRequest(`unknown input '${name}'; the model's inputs are ${listNames(signature.inputs)}`);
    }
    if (seen.has(name)) throw badRequest(`input '${name}' is given more than once`);
    seen.add(name);
  }
  const missing = signature.inputs.filter((input) => !seen.has(input.name));
  if (missing.length > 0) {
    throw badRequest(`missing input${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m.name}' (${m.datatype ?? m.ortType} ${describeShape(m.shape)})`).join(', ')}`);
  }
}

/** Resolves requested output names, or all outputs when none are named. */
export function checkOutputNames(signature: Signature, requested: readonly string[] | undefined): string[] {
  if (!requested || requested.length === 0) return signature.outputs.map((output) => output.name);
  const known = new Set(signature.outputs.map((output) => output.name));
  for (const name of requested) {
    if (!known.has(name)) {
      throw badRequest(`unknown output '${name}'; the model's outputs are ${listNames(signature.outputs)}`);
    }
  }
  return [...new Set(requested)];
}

/** The spec's datatype, or a 400 naming the type the protocols cannot carry. */
export function requireDatatype(spec: TensorSpec): Datatype {
  if (!spec.datatype) {
    throw badRequest(`input '${spec.name}' has onnxruntime type '${spec.ortType}', which modelship cannot carry`);
  }
  return spec.datatype;
}

export function listNames(specs: readonly { readonly name: string }[]): string {
  return specs.map((spec) => `'${spec.name}'`).join(', ') || '(none)';
}

/** A short, safe rendering of a received value for error messages. */
export function preview(value: unknown): string {
  let text: string;
  try {
    text = JSON.stringify(value) ?? String(value);
  } catch {
    // JSON.stringify overflows the stack on very deep nesting, and String() recurses through arrays the same way.
    text = Array.isArray(value) ? `[${value.length} items, nested too deeply to show]` : typeof value === 'object' && value !== null ? '{...}' : String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

