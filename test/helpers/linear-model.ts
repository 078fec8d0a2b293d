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

