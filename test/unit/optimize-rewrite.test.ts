/**
 * The graph rewrites behind `modelship optimize` (dynamic int8 quantization, float16 storage), run on real models
 * in real onnxruntime sessions: the rewritten model loads, keeps its signature, computes close to the original
 * within the tolerances the modules document, and is as much smaller as promised.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { onnx } from 'onnx-proto';
import { readOnnxFile } from '@modelship/contract';
import * as ort from '../../runtime/src/model/onnxruntime';
import { convertToFloat16 } from '../../runtime/src/optimize/float16';
import { quantizeDynamicInt8 } from '../../runtime/src/optimize/quantize-dynamic';
import type { RewriteReport } from '../../runtime/src/optimize/rewrite-report';
import { MODELS } from '../helpers/paths';
import { textPage } from '../helpers/text-page';
import { buildWideMlp } from '../helpers/wide-mlp';

/** A deterministic pseudo-random sequence in [-1, 1), so failures reproduce. */
function noise(count: number, seed: number): Float32Array {
  let state = seed;
  return Float32Array.from({ length: count }, () => {
    state = (state * 16807) % 2147483647;
    return (state / 2147483647) * 2 - 1;
  });
}

/** max |a − b| / max |a| over the output: the error relative to the output's own scale. */
function relativeError(expected: Float32Array, actual: Float32Array): number {
  assert.equal(actual.length, expected.length);
  let largest = 0;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    largest = Math.max(largest, Math.abs(expected[i]));
    worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
  }
  return largest === 0 ? worst : worst / largest;
}

type Rewrite = (model: onnx.ModelProto) => RewriteReport;
const OPTIONS: Readonly<Record<string, readonly Rewrite[]>> = {
  'dynamic-int8': [quantizeDynamicInt8],
  fp16: [convertToFloat16],
  'dynamic-int8 + fp16': [quantizeDynamicInt8, convertToFloat16],
};

/** The model's bytes after the rewrites, in order, with their reports. */
function optimize(bytes: Uint8Array, rewrites: readonly Rewrite[]): { bytes: Uint8Array; reports: RewriteReport[] } {
  const model = onnx.ModelProto.decode(bytes);
  const reports = rewrites.map((rewrite) => rewrite(model));
  return { bytes: onnx.ModelProto.encode(model).finish(), reports };
}

async function run(bytes: Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const results = await session.run(feeds);
    return Object.fromEntries(Object.entries(results).map(([name, tensor]) => [name, tensor.data as Float32Array]));
  } finally {
    await session.release();
  }
}

async function namesOf(bytes: Uint8Array): Promise<{ inputs: readonly string[]; outputs: readonly string[] }> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    return { inputs: [...session.inputNames], outputs: [...session.outputNames] };
  } finally {
    await session.release();
  }
}

interface Subject {
  readonly path: () => string;
  readonly feeds: () => Record<string, ort.Tensor>;
  /**
   * The largest relative error allowed per option: measured, then about three times that for margin (the modules'
   * comments quote them). Where a rewrite leaves the model's arithmetic as it was, the outputs must match exactly.
   */
  readonly tolerance: Readonly<Record<string, number>>;
}

let workDir = '';
const wideMlpPath = () => join(workDir, 'wide_mlp.onnx');
const WIDE_MLP_ROWS = 256;
const wideMlpFeeds = () => ({ x: new ort.Tensor('float32', noise(WIDE_MLP_ROWS * 256, 11), [WIDE_MLP_ROWS, 256]) });

const SUBJECTS: Readonly<Record<string, Subject>> = {
  'wide MLP 256-1024-1024-10': {
    path: wideMlpPath,
    feeds: wideMlpFeeds,
    tolerance: { 'dynamic-int8': 0.03, fp16: 0.002, 'dynamic-int8 + fp16': 0.03 },
  },
  'tabular MLP 16-32-4': {
    path: () => MODELS.mlp,
    feeds: () => ({ x: new ort.Tensor('float32', noise(8 * 16, 5), [8, 16]) }),
    tolerance: { 'dynamic-int8': 0.03, fp16: 0.002, 'dynamic-int8 + fp16': 0.03 },
  },
  'OCR detection': {
    path: () => MODELS.ocrDetection,
    feeds: () => ({ x: new ort.Tensor('float32', textPage(128), [1, 3, 128, 128]) }),
    // int8 leaves every Conv in float: the model computes as before.
    tolerance: { 'dynamic-int8': 0, fp16: 0.04, 'dynamic-int8 + fp16': 0.04 },
  },
  'silero VAD': {
    path: () => MODELS.sileroVad,
    feeds: () => ({
      input: new ort.Tensor('float32', noise(512, 9).map((v) => v * 0.3), [1, 512]),
      sr: new ort.Tensor('int64', BigInt64Array.of(16000n), []),
      h: new ort.Tensor('float32', noise(128, 21).map((v) => v * 0.1), [2, 1, 64]),
      c: new ort.Tensor('float32', noise(128, 23).map((v) => v * 0.1), [2, 1, 64]),
    }),
    // Its weights are read by Conv nodes inside If branches: int8 leaves it as it was.
    tolerance: { 'dynamic-int8': 0, fp16: 0.003, 'dynamic-int8 + fp16': 0.003 },
  },
};

before(() => {
  workDir = mkdtempSync(join(tmpdir(), 'modelship-optimize-'));
  buildWideMlp(wideMlpPath());
});
after(() => rmSync(workDir, { recursive: true, force: true }));

for (const [subjectName, subject] of Object.entries(SUBJECTS)) {
  describe(`optimize rewrites on the ${subjectName}`, () => {
    for (const [option, rewrites] of Object.entries(OPTIONS)) {
      it(`${option}: loads, keeps the signature, and computes within ${subject.tolerance[option]} relative error`, async () => {
        const original = readFileSync(subject.path());
        const { bytes } = optimize(original, rewrites);
        const declared = readOnnxFile(original);
        const rewritten = readOnnxFile(bytes);
        assert.deepEqual(rewritten.inputs, declared.inputs);
        assert.deepEqual(rewritten.outputs, declared.outputs);
        assert.deepEqual(await namesOf(bytes), await namesOf(original));
        const feeds = subject.feeds();
        const expected = await run(original, feeds);
        const actual = await run(bytes, feeds);
        for (const name of Object.keys(expected)) {
          const error = relativeError(expected[name], actual[name]);
          assert.ok(error <= subject.tolerance[option], `output '${name}': relative error ${error} > ${subject.tolerance[option]}`);
        }
      });
    }
  });
}

describe('what the rewrites do to the wide MLP', () => {
  const sizeRatio = (rewrites: readonly Rewrite[]) => {
    const original = readFileSync(wideMlpPath());
    return optimize(original, rewrites).bytes.length / original.length;
  };

  it('dynamic-int8 quantizes all three layers (Gemm transB=1, MatMul, Gemm) and shrinks the file to 0.35× or less', () => {
    const { reports } = optimize(readFileSync(wideMlpPath()), [quantizeDynamicInt8]);
    assert.deepEqual(reports[0], { rewritten: 3, skipped: [] });
    const ratio = sizeRatio([quantizeDynamicInt8]);
    assert.ok(ratio <= 0.35, `int8 file is ${ratio}× the original`);
  });

  it('dynamic-int8 keeps the same top-1 class on at least 97% of rows', async () => {
    const original = readFileSync(wideMlpPath());
    const feeds = wideMlpFeeds();
    const expected = (await run(original, feeds)).y;
    const actual = (await run(optimize(original, [quantizeDynamicInt8]).bytes, feeds)).y;
    const top1 = (y: Float32Array, row: number) => {
      const logits = y.subarray(row * 10, row * 10 + 10);
      return logits.indexOf(Math.max(...logits));
    };
    let same = 0;
    for (let row = 0; row < WIDE_MLP_ROWS; row++) if (top1(expected, row) === top1(actual, row)) same++;
    assert.ok(same / WIDE_MLP_ROWS >= 0.97, `top-1 unchanged on ${same} of ${WIDE_MLP_ROWS} rows`);
  });

  it('fp16 converts the weights and biases and shrinks the file to 0.55× or less', () => {
    const { reports } = optimize(readFileSync(wideMlpPath()), [convertToFloat16]);
    // fc3.bias (10 elements) is too small to pay.
    assert.equal(reports[0].rewritten, 5);
    const ratio = sizeRatio([convertToFloat16]);
    assert.ok(ratio <= 0.55, `fp16 file is ${ratio}× the original`);
  });

  it('fp16 after dynamic-int8 leaves the int8 weights and their scales alone and converts the biases', () => {
    const model = onnx.ModelProto.decode(readFileSync(wideMlpPath()));
    quantizeDynamicInt8(model);
    const report = convertToFloat16(model);
    assert.equal(report.rewritten, 2);
    assert.equal(report.skipped.filter((note) => /dynamic quantization scale/.test(note)).length, 3);
    const types = new Map(model.graph!.initializer!.map((t) => [t.name, t.dataType]));
    assert.equal(types.get('fc2.weight_quantized'), onnx.TensorProto.DataType.INT8);
    assert.equal(types.get('fc2.weight_scale'), onnx.TensorProto.DataType.FLOAT);
    assert.equal(types.get('fc2.bias_float16'), onnx.TensorProto.DataType.FLOAT16);
    assert.ok(!types.has('fc2.weight'), 'the float weight the int8 one replaced is still stored');
  });
});

describe('fp16 on the OCR detection model, whose weights are Constant nodes', () => {
  it('converts them and shrinks the file to 0.55× or less', () => {
    const original = readFileSync(MODELS.ocrDetection);
    const { bytes, reports } = optimize(original, [convertToFloat16]);
    assert.ok(reports[0].rewritten > 0);
    const ratio = bytes.length / original.length;
    assert.ok(ratio <= 0.55, `fp16 file is ${ratio}× the original`);
  });
});

/** A ModelProto built here, for the cases no real model shows. Weights are seeded noise of the given shape. */
function modelOf(opset: number, nodes: onnx.INodeProto[], weights: Record<string, number[]>, inputs: Record<string, Array<number | string>>, outputs: Record<string, Array<number | string>>): onnx.ModelProto {
  const value = (name: string, dims: Array<number | string>) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } } },
  });
  let seed = 1;
  const initializer = Object.entries(weights).map(([name, dims]) => ({
    name, dataType: 1, dims, floatData: [...noise(dims.reduce((n, d) => n * d, 1), seed++)],
  }));
  return onnx.ModelProto.fromObject({
    irVersion: 8,
    opsetImport: [{ domain: '', version: opset }],
    graph: {
      name: 'built',
      node: nodes,
      initializer,
      input: Object.entries(inputs).map(([name, dims]) => value(name, dims)),
      output: Object.entries(outputs).map(([name, dims]) => value(name, dims)),
    },
  });
}

const attr = (name: string, value: number, float = false) => (float ? { name, type: 1, f: value } : { name, type: 2, i: value });

describe('dynamic-int8 on models built for its edge cases', () => {
  it('refuses a model below opset 11, naming its opset and the fix', () => {
    const model = modelOf(10, [{ opType: 'MatMul', input: ['x', 'w'], output: ['y'] }], { w: [32, 32] }, { x: ['n', 32] }, { y: ['n', 32] });
    assert.throws(() => quantizeDynamicInt8(model), /opset 10 .*convert the model to opset ≥ 11/);
  });

  it('reports rewritten 0 and why when nothing is worth quantizing', () => {
    const model = modelOf(17, [
      { opType: 'MatMul', input: ['x', 'small'], output: ['a'] },
      { opType: 'Gemm', input: ['t', 'w'], output: ['b'], attribute: [attr('transA', 1)] },
      { opType: 'MatMul', input: ['x', 'x2'], output: ['c'] },
    ], { small: [8, 4], w: [16, 32] }, { x: ['n', 8], t: [16, 'n'], x2: [8, 'm'] }, { a: ['n', 4], b: ['n', 32], c: ['n', 'm'] });
    const report = quantizeDynamicInt8(model);
    assert.equal(report.rewritten, 0);
    assert.deepEqual(report.skipped, [
      "MatMul 'a': B 'small' has 32 elements, fewer than 256, too few for int8 to pay, left in float",
      "Gemm 'b': transA=1, left in float",
      "MatMul 'c': B 'x2' is computed at run time, not a stored weight, left in float",
    ]);
  });

  it('leaves a MatMul inside an If branch in float and says so', () => {
    const branch = (name: string) => ({ name, node: [{ opType: 'MatMul', name: `${name}_matmul`, input: ['x', 'w'], output: [`${name}_y`] }], output: [{ name: `${name}_y` }] });
    const model = modelOf(17, [{
      opType: 'If', name: 'choose', input: ['flag'], output: ['y'],
      attribute: [{ name: 'then_branch', type: 5, g: branch('then') }, { name: 'else_branch', type: 5, g: branch('else') }],
    }], { w: [32, 32] }, { x: ['n', 32] }, { y: ['n', 32] });
    const report = quantizeDynamicInt8(model);
    assert.equal(report.rewritten, 0);
    assert.deepEqual(report.skipped, [
      "MatMul 'then_matmul' inside If 'choose': only the main graph is rewritten, left in float",
      "MatMul 'else_matmul' inside If 'choose': only the main graph is rewritten, left in float",
    ]);
  });

  it('folds Gemm alpha and beta, and shares one DynamicQuantizeLinear between MatMuls reading the same input', async () => {
    const model = modelOf(13, [
      { opType: 'Gemm', name: 'scaled', input: ['x', 'w1', 'c1'], output: ['g'], attribute: [attr('alpha', 0.5, true), attr('beta', 2, true)] },
      { opType: 'MatMul', name: 'plain', input: ['x', 'w2'], output: ['m'] },
      { opType: 'Add', input: ['g', 'm'], output: ['y'] },
    ], { w1: [64, 48], c1: [48], w2: [64, 48] }, { x: ['n', 64] }, { y: ['n', 48] });
    const original = onnx.ModelProto.encode(model).finish();
    const report = quantizeDynamicInt8(model);
    assert.deepEqual(report, { rewritten: 2, skipped: [] });
    assert.equal(model.graph!.node!.filter((n) => n.opType === 'DynamicQuantizeLinear').length, 1);
    const feeds = { x: new ort.Tensor('float32', noise(16 * 64, 17), [16, 64]) };
    const expected = (await run(original, feeds)).y;
    const actual = (await run(onnx.ModelProto.encode(model).finish(), feeds)).y;
    const error = relativeError(expected, actual);
    assert.ok(error <= 0.03, `relative error ${error}`);
  });
});

describe('fp16 on models built for its edge cases', () => {
  it('clamps values beyond float16 to ±65504, says how many, and leaves overridable defaults in float', async () => {
    const model = modelOf(17, [
      { opType: 'Add', input: ['x', 'big'], output: ['a'] },
      { opType: 'Add', input: ['a', 'default'], output: ['y'] },
    ], { big: [16, 16], default: [16, 16] }, { x: [16, 16] }, { a: [16, 16], y: [16, 16] });
    const graph = model.graph!;
    graph.initializer![0].floatData![0] = 1e6;
    graph.initializer![0].floatData![1] = -70000;
    graph.input!.push({ name: 'default', type: graph.input![0].type });
    const report = convertToFloat16(model);
    assert.deepEqual(report, {
      rewritten: 1,
      skipped: [
        "initializer 'big': 2 values beyond float16's range clamped to ±65504",
        "initializer 'default': also a graph input (an overridable default), left in float",
      ],
    });
    const { a } = await run(onnx.ModelProto.encode(model).finish(), { x: new ort.Tensor('float32', new Float32Array(256), [16, 16]) });
    assert.deepEqual([a[0], a[1]], [65504, -65504]);
  });
});
