/**
 * What may be merged into one run, and how: requests to a model whose every input and output has a dynamic first
 * dimension, with equal trailing shapes and datatypes, become one run along that dimension; each request then
 * gets exactly its own rows of every output back.
 */
import { DATATYPES, elementCount, type NamedTensor, type TensorData, type TypedArray } from '../tensor/datatypes';
import type { Signature } from '../tensor/signature';

/**
 * True when the model's signature says dim 0 is free on every input and output, the usual mark of a batch
 * dimension. Models with state tensors (e.g. [2, batch, 64]) or a fixed batch size fail this and run one by one.
 */
export function isBatchable(signature: Signature): boolean {
  const free = (shape: readonly (number | string)[] | undefined) => shape !== undefined && shape.length > 0 && typeof shape[0] === 'string';
  return signature.inputs.length > 0
    && signature.inputs.every((spec) => spec.datatype !== undefined && free(spec.shape))
    && signature.outputs.every((spec) => free(spec.shape));
}

/** Rows of a request: the first dimension every input shares, or undefined when they differ (it runs alone). */
export function rowsOf(inputs: readonly NamedTensor[]): number | undefined {
  const rows = inputs[0]?.shape[0];
  return rows !== undefined && inputs.every((input) => input.shape.length > 0 && input.shape[0] === rows) ? rows : undefined;
}

/** Whether two requests can share a run: same outputs asked for, same datatypes and trailing dims per input. */
export function canMerge(a: readonly NamedTensor[], aOutputs: readonly string[], b: readonly NamedTensor[], bOutputs: readonly string[]): boolean {
  if (a.length !== b.length || aOutputs.length !== bOutputs.length || aOutputs.some((name, i) => name !== bOutputs[i])) return false;
  return a.every((input) => {
    const other = b.find((candidate) => candidate.name === input.name);
    return other !== undefined && other.datatype === input.datatype && other.shape.length === input.shape.length
      && input.shape.every((dim, axis) => axis === 0 || dim === other.shape[axis]);
  });
}

/** Concatenates each input along dim 0, in the order of the requests. */
export function concatenate(batch: readonly (readonly NamedTensor[])[]): NamedTensor[] {
  return batch[0].map((first) => {
    const parts = batch.map((inputs) => inputs.find((input) => input.name === first.name)!);
    const rows = parts.reduce((sum, part) => sum + part.shape[0], 0);
    const shape = [rows, ...first.shape.slice(1)];
    const info = DATATYPES[first.datatype];
    let data: TensorData;
    if (info.array) {
      const merged = new info.array(elementCount(shape));
      let offset = 0;
      for (const part of parts) {
        (merged as Uint8Array).set(part.data as Uint8Array, offset);
        offset += (part.data as TypedArray).length;
      }
      data = merged;
    } else {
      data = parts.flatMap((part) => part.data as string[]);
    }
    return { name: first.name, datatype: first.datatype, shape, data };
  });
}

/** Whether every output's first dimension is the batch's total rows, i.e. whether the outputs can be split. */
export function followsBatch(outputs: readonly NamedTensor[], totalRows: number): boolean {
  return outputs.every((output) => output.shape.length > 0 && output.shape[0] === totalRows);
}

/**
 * Splits merged tensors (a run's outputs, or a batch's merged inputs) back into each request's rows, as views on
 * the same buffers (no copy). Returns undefined when a tensor's first dimension is not the total of the rows: the
 * model does not batch after all.
 */
export function splitRows(outputs: readonly NamedTensor[], rows: readonly number[]): NamedTensor[][] | undefined {
  if (!followsBatch(outputs, rows.reduce((a, b) => a + b, 0))) return undefined;
  let start = 0;
  return rows.map((count) => {
    const from = start;
    start += count;
    return outputs.map((output) => {
      const stride = elementCount(output.shape.slice(1));
      const data = Array.isArray(output.data)
        ? (output.data as string[]).slice(from * stride, (from + count) * stride)
        : (output.data as TypedArray).subarray(from * stride, (from + count) * stride);
      return { ...output, shape: [count, ...output.shape.slice(1)], data };
    });
  });
}
