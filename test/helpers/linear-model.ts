/**
 * A linear model written as ONNX for tests whose expected answers follow in closed form: y = x·w + b, whose
 * Shapley values against a baseline are exactly w_i (x_i − baseline_i).
 */
import { writeFileSync } from 'node:fs';
import { onnx } from 'onnx-proto';

/** y = x·w + b as ONNX (MatMul + Add), x [N, M] float32, y [N, 1]. */
export function writeLinearModel(path: string, w: readonly number[], b: number): void {
  const value = (name: string, dims: Array<number | string>) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  writeFileSync(path, onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'linear',
      node: [
        { opType: 'MatMul', input: ['x', 'w'], output: ['xw'] },
        { opType: 'Add', input: ['xw', 'b'], output: ['y'] },
      ],
      initializer: [
        { name: 'w', dataType: 1, dims: [w.length, 1], floatData: [...w] },
        { name: 'b', dataType: 1, dims: [1], floatData: [b] },
      ],
      input: [value('x', ['batch', w.length])],
      output: [value('y', ['batch', 1])],
    },
  }).finish());
}


/**
 * y = x·w + b as ONNX, except that a run fails inside onnxruntime (a real 500, not a 400 from input validation) when
 * any row's first feature is above `limit`: a Gather from a one-element tensor at index 1 for such rows is out of
 * bounds, and its 0 (for the other rows) is added to y so that the graph keeps it. x [N, M] float32, y [N, 1].
 */
export function writeLinearModelFailingAbove(path: string, w: readonly number[], b: number, limit: number): void {
  const value = (name: string, dims: Array<number | string>) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  const INT = 2;
  const INT64 = 7;
  writeFileSync(path, onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 17 }],
    graph: {
      name: 'linear_failing_above',
      node: [
        { opType: 'MatMul', input: ['x', 'w'], output: ['xw'] },
        { opType: 'Add', input: ['xw', 'b'], output: ['linear'] },
        { opType: 'Gather', input: ['x', 'first'], output: ['x0'], attribute: [{ name: 'axis', type: INT, i: 1 }] },
        { opType: 'Greater', input: ['x0', 'limit'], output: ['above'] },
        { opType: 'Cast', input: ['above'], output: ['index'], attribute: [{ name: 'to', type: INT, i: INT64 }] },
        { opType: 'Gather', input: ['zero', 'index'], output: ['nothing'] },
        { opType: 'Unsqueeze', input: ['nothing', 'axis1'], output: ['column'] },
        { opType: 'Add', input: ['linear', 'column'], output: ['y'] },
      ],
      initializer: [
        { name: 'w', dataType: 1, dims: [w.length, 1], floatData: [...w] },
        { name: 'b', dataType: 1, dims: [1], floatData: [b] },
        { name: 'first', dataType: INT64, dims: [], int64Data: [0] },
        { name: 'limit', dataType: 1, dims: [], floatData: [limit] },
        { name: 'zero', dataType: 1, dims: [1], floatData: [0] },
        { name: 'axis1', dataType: INT64, dims: [1], int64Data: [1] },
      ],
      input: [value('x', ['batch', w.length])],
      output: [value('y', ['batch', 1])],
    },
  }).finish());
}
