/**
 * The explainer math behind :explain — KernelSHAP and occlusion — against real onnxruntime
 * sessions run in-process: a linear model built here (attributions known in closed form), the tabular MLP fixture
 * (efficiency, reproducibility, exact against sampled) and the OCR detection model (occlusion maps).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { kernelShap } from '../../runtime/src/explain/kernel-shap';
import { occlusion } from '../../runtime/src/explain/occlusion';
import * as ort from '../../runtime/src/model/onnxruntime';
import { writeLinearModel } from '../helpers/linear-model';
import { MODELS } from '../helpers/paths';
import { randomFloats, referenceSession } from '../helpers/reference';

/** A session as the explainers' batch function: rows stacked into one [N, ...shape] float32 input, one output picked. */
function batchFunction(session: ort.InferenceSession, shape: readonly number[], pick: (output: Float32Array, row: number) => number) {
  const size = shape.reduce((a, b) => a * b, 1);
  const calls: number[] = [];
  const f = async (rows: Float64Array[]): Promise<Float64Array> => {
    calls.push(rows.length);
    const data = new Float32Array(rows.length * size);
    rows.forEach((row, k) => data.set(row, k * size));
    const out = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', data, [rows.length, ...shape]) });
    const y = out[session.outputNames[0]].data as Float32Array;
    return Float64Array.from(rows, (_, k) => pick(y, k));
  };
  return { f, calls };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

function sum(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s;
}

describe('kernelShap', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'modelship-explain-')); });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function linear(M: number) {
    // Weights, inputs and baseline on a grid of float32-exact values, so the only error is float32 arithmetic.
    const w = Array.from({ length: M }, (_, i) => ((i % 5) - 2) * 0.75 + 0.25 * (i % 2));
    const path = join(dir, `linear_${M}.onnx`);
    writeLinearModel(path, w, 0.5);
    const session = await ort.InferenceSession.create(path, { logSeverityLevel: 4 });
    const x = Float64Array.from({ length: M }, (_, i) => ((i * 7) % 11) / 8 - 0.5);
    const baseline = Float64Array.from({ length: M }, (_, i) => ((i * 3) % 5) / 4 - 0.25);
    const expected = Float64Array.from(w, (wi, i) => wi * (x[i] - baseline[i]));
    return { session, x, baseline, expected, ...batchFunction(session, [M], (y, k) => y[k]) };
  }

  it('gives w_i (x_i − baseline_i) for a linear ONNX model, exactly, by enumerating every coalition when M is small', async () => {
    const { f, calls, x, baseline, expected } = await linear(5);
    const result = await kernelShap(f, x, baseline, { nsamples: 100 });
    assert.equal(result.exact, true);
    assert.equal(result.modelRuns, 2 ** 5);
    assert.deepEqual(calls, [32], 'one batch');
    assert.ok(maxAbsDiff(result.attributions, expected) < 1e-4, `${result.attributions} vs ${expected}`);
    assert.ok(Math.abs(sum(result.attributions) - (result.prediction - result.baseValue)) < 1e-9);
  });

  it('gives w_i (x_i − baseline_i) for a linear model from sampled coalitions too (M = 16): any full-rank design is exact', async () => {
    const { f, x, baseline, expected } = await linear(16);
    for (const [nsamples, seed] of [[2048, 0], [2048, 9], [64, 1], [30, 2]]) {
      const result = await kernelShap(f, x, baseline, { nsamples, seed });
      assert.equal(result.exact, false);
      assert.equal(result.modelRuns, nsamples + 2);
      assert.ok(maxAbsDiff(result.attributions, expected) < 1e-4, `nsamples ${nsamples}: ${result.attributions} vs ${expected}`);
    }
    // Below 2·(M − 1) the paired coalitions cannot determine the 15 free attributions.
    await assert.rejects(kernelShap(f, x, baseline, { nsamples: 29 }), /nsamples \(29\) must be at least 2·\(M − 1\) = 30/);
  });

  it('gives the exact Shapley values, as the permutation formula computes them, for a nonlinear function in exact mode', async () => {
    const M = 6;
    const g = (r: ArrayLike<number>) => r[0] * r[1] * r[2] + Math.max(0, r[3] - r[4]) + Math.sin(r[5] * r[0]) + r[4];
    const f = async (rows: Float64Array[]) => Float64Array.from(rows, g);
    const x = Float64Array.from([1.5, -2, 0.5, 3, 1, 2]);
    const baseline = Float64Array.from([0.5, 1, -1, 0, 2, -1]);
    const result = await kernelShap(f, x, baseline, { nsamples: 62 });
    assert.equal(result.exact, true);
    const value = (bits: number) => g(Float64Array.from(x, (v, i) => ((bits >> i) & 1 ? v : baseline[i])));
    const factorial = (n: number): number => (n <= 1 ? 1 : n * factorial(n - 1));
    const shapley = new Float64Array(M);
    for (let i = 0; i < M; i++) {
      for (let S = 0; S < 1 << M; S++) {
        if ((S >> i) & 1) continue;
        let s = 0;
        for (let k = 0; k < M; k++) s += (S >> k) & 1;
        shapley[i] += ((factorial(s) * factorial(M - s - 1)) / factorial(M)) * (value(S | (1 << i)) - value(S));
      }
    }
    assert.ok(maxAbsDiff(result.attributions, shapley) < 1e-10, `${result.attributions} vs ${shapley}`);
  });

  describe('on the tabular MLP (16 features, output 0)', () => {
    const x = Float64Array.from(randomFloats(16, 16));
    const baseline = new Float64Array(16);
    const mlp = async () => batchFunction(await referenceSession(MODELS.mlp), [16], (y, k) => y[k * 4]);

    it('satisfies efficiency in sampled mode, reproduces with the same seed and changes with another', async () => {
      const { f, calls } = await mlp();
      const a = await kernelShap(f, x, baseline, { nsamples: 256, seed: 1 });
      const b = await kernelShap(f, x, baseline, { nsamples: 256, seed: 1 });
      const c = await kernelShap(f, x, baseline, { nsamples: 256, seed: 2 });
      assert.equal(a.exact, false);
      assert.equal(a.modelRuns, 258);
      assert.deepEqual(calls, [258, 258, 258]);
      // prediction is the model's own output 0 for x.
      const session = await referenceSession(MODELS.mlp);
      const direct = await session.run({ x: new ort.Tensor('float32', Float32Array.from(x), [1, 16]) });
      assert.ok(Math.abs(a.prediction - (direct.y.data as Float32Array)[0]) < 1e-6);
      for (const r of [a, c]) assert.ok(Math.abs(sum(r.attributions) - (r.prediction - r.baseValue)) < 1e-4);
      assert.deepEqual(b.attributions, a.attributions);
      assert.ok(maxAbsDiff(a.attributions, c.attributions) > 1e-6, 'another seed draws other coalitions');
    });

    it('is exact with all 2^16 coalitions, and the sampled estimate is near it', async () => {
      const { f } = await mlp();
      const exact = await kernelShap(f, x, baseline, { nsamples: 2 ** 16 - 2 });
      assert.equal(exact.exact, true);
      assert.equal(exact.modelRuns, 2 ** 16);
      assert.ok(Math.abs(sum(exact.attributions) - (exact.prediction - exact.baseValue)) < 1e-4);
      const sampled = await kernelShap(f, x, baseline, { nsamples: 2048, seed: 3 });
      const scale = Math.max(...exact.attributions.map(Math.abs));
      assert.ok(maxAbsDiff(sampled.attributions, exact.attributions) < 0.05 * scale,
        `sampled ${sampled.attributions} vs exact ${exact.attributions}`);
    });
  });

  it('rejects bad arguments with errors naming the parameter', async () => {
    const f = async (rows: Float64Array[]) => Float64Array.from(rows, (r) => r[0]);
    const x = new Float64Array(4);
    await assert.rejects(kernelShap(f, x, new Float64Array(3), { nsamples: 10 }), /baseline has 3 features but x has 4/);
    await assert.rejects(kernelShap(f, x, new Float64Array(4), { nsamples: 1 }), /nsamples must be an integer >= 2, got 1/);
    await assert.rejects(kernelShap(f, x, new Float64Array(4), { nsamples: 2.5 }), /nsamples/);
    await assert.rejects(kernelShap(f, new Float64Array(20), new Float64Array(20), { nsamples: 10 }), /nsamples \(10\) must be at least 2·\(M − 1\) = 38/);
    await assert.rejects(kernelShap(f, Float64Array.from([NaN, 0, 0, 0]), x, { nsamples: 10 }), /x\[0\] is NaN/);
    await assert.rejects(kernelShap(async () => new Float64Array(1), x, x, { nsamples: 10 }), /answered 1 values for 12 rows/);
  });
});

describe('occlusion on the OCR detection model (64×64, the sum of the probability map)', () => {
  const H = 64;
  const W = 64;
  // White page with a row of dark strokes across the middle, normalised as PP-OCR expects.
  const image = new Float64Array(3 * H * W);
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < H; i++) {
      for (let j = 0; j < W; j++) {
        const ink = i >= 20 && i < 28 && j >= 8 && j < 56 && j % 6 < 3;
        image[c * H * W + i * W + j] = ((ink ? 0 : 1) - mean[c]) / std[c];
      }
    }
  }
  const detector = async () => batchFunction(await referenceSession(MODELS.ocrDetection), [3, H, W], (y, k) => {
    let total = 0;
    for (let p = k * H * W; p < (k + 1) * H * W; p++) total += y[p];
    return total;
  });
  /** The image with a 16×16 tile (all channels) set to 0. */
  const zeroTile = (ti: number, tj: number) => {
    const out = Float64Array.from(image);
    for (let c = 0; c < 3; c++) for (let i = 0; i < 16; i++) out.fill(0, c * H * W + (ti * 16 + i) * W + tj * 16, c * H * W + (ti * 16 + i) * W + tj * 16 + 16);
    return out;
  };

  it('returns an input-shaped map; zeroing the tile of largest attribution moves the output more than the smallest', async () => {
    const { f, calls } = await detector();
    const result = await occlusion(f, image, [1, 3, H, W], { patch: 16, stride: 8, batchSize: 25 });
    assert.deepEqual(result.shape, [1, 3, H, W]);
    assert.equal(result.attributions.length, image.length);
    assert.equal(result.patches, 7 * 7);
    assert.equal(result.modelRuns, 51, 'x, the baseline and 49 patches');
    assert.deepEqual(calls, [25, 25, 1]);
    assert.deepEqual(result.attributions.subarray(0, H * W), result.attributions.subarray(2 * H * W), 'the same in every channel');
    const tiles: Array<{ ti: number; tj: number; mean: number }> = [];
    for (let ti = 0; ti < 4; ti++) {
      for (let tj = 0; tj < 4; tj++) {
        let s = 0;
        for (let i = 0; i < 16; i++) for (let j = 0; j < 16; j++) s += result.attributions[(ti * 16 + i) * W + tj * 16 + j];
        tiles.push({ ti, tj, mean: s / 256 });
      }
    }
    tiles.sort((a, b) => Math.abs(b.mean) - Math.abs(a.mean));
    const largest = tiles[0];
    const smallest = tiles[tiles.length - 1];
    const [base, big, small, blank] = await f([image, zeroTile(largest.ti, largest.tj), zeroTile(smallest.ti, smallest.tj), new Float64Array(image.length)]);
    assert.ok(Math.abs(base - result.prediction) < 1e-3);
    assert.ok(Math.abs(blank - result.baseValue) < 1e-3, 'the base value is the model on the all-zero image');
    assert.ok(Math.abs(base - big) > Math.abs(base - small), `|Δ| ${Math.abs(base - big)} (largest) vs ${Math.abs(base - small)} (smallest)`);
  });

  it('with non-overlapping patches, each pixel holds f(x) − f(its patch occluded)', async () => {
    const { f } = await detector();
    const result = await occlusion(f, image, [3, H, W], { patch: 16, baseline: 0 });
    assert.equal(result.patches, 16);
    assert.deepEqual(result.shape, [3, H, W]);
    const [base, occluded] = await f([image, zeroTile(1, 2)]);
    const expected = base - occluded;
    const got = result.attributions[(16 + 5) * W + 32 + 7];
    assert.ok(Math.abs(got - expected) < 1e-3 * Math.max(1, Math.abs(expected)), `${got} vs ${expected}`);
  });

  it('takes occluded pixels from a baseline image when given one', async () => {
    const f = async (rows: Float64Array[]) => Float64Array.from(rows, (r) => sum(r));
    const background = Float64Array.from({ length: 4 * 4 }, (_, p) => p);
    const result = await occlusion(f, new Float64Array(4 * 4).fill(100), [1, 1, 4, 4], { patch: 2, baseline: background });
    assert.equal(result.baseValue, sum(background));
    // The top-left patch holds background pixels 0, 1, 4 and 5: occluding it removes 400 and adds 10.
    assert.equal(result.attributions[0], 390);
    await assert.rejects(occlusion(f, new Float64Array(16), [1, 1, 4, 4], { patch: 2, baseline: new Float64Array(3) }), /baseline image has 3 elements but x has 16/);
  });

  it('covers the border with a last patch flush with it when the stride does not reach it', async () => {
    const f = async (rows: Float64Array[]) => Float64Array.from(rows, (r) => sum(r));
    const result = await occlusion(f, new Float64Array(10 * 10).fill(1), [1, 1, 10, 10], { patch: 4, stride: 4 });
    assert.equal(result.patches, 9, 'starts 0, 4 and 6 in each direction');
    assert.ok(result.attributions.every((v) => v === 16), 'every pixel covered; each patch removes 16');
  });

  it('rejects bad arguments with errors naming the parameter', async () => {
    const f = async (rows: Float64Array[]) => new Float64Array(rows.length);
    await assert.rejects(occlusion(f, image, [1, 3, H, W], { patch: 65 }), /patch \(65×65\) is larger than the image \(64×64\)/);
    await assert.rejects(occlusion(f, image, [1, 3, H, W], { patch: [8, 80] }), /patch \(8×80\) is larger/);
    await assert.rejects(occlusion(f, image, [1, 3, H, W], { patch: 0 }), /patch must be a positive integer/);
    await assert.rejects(occlusion(f, image, [1, 3, H, W], { patch: 8, stride: -1 }), /stride must be a positive integer/);
    await assert.rejects(occlusion(f, image, [2, 3, H, W], { patch: 8 }), /shape must be \[1, C, H, W\] or \[C, H, W\]/);
    await assert.rejects(occlusion(f, image, [1, 3, H, 32], { patch: 8 }), /x has 12288 elements but shape \[1,3,64,32\] holds 6144/);
  });
});
