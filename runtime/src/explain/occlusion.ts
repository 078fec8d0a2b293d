/**
 * Occlusion attribution for image-like tensors, [1, C, H, W] or [C, H, W], for a model seen only as an async batch
 * function.
 *
 * Method. A patch (ph × pw, across all channels) slides over the image with the given stride; each position yields
 * a copy of x with the patch taken from the baseline (one value, or a baseline image of x's shape). The attribution of a pixel is the mean, over the patches that
 * cover it, of f(x) − f(occluded); it is the same in every channel, and the output has x's shape. Positions run
 * 0, stride, 2·stride, … and, when the last one stops short of the border, one more flush with it, so every pixel is
 * covered by at least one patch.
 *
 * Cost: number of patches + 2 model runs (x itself and the baseline), where the number of patches is
 * (⌈(H − ph) / sh⌉ + 1) · (⌈(W − pw) / sw⌉ + 1). Rows go to f in batches of batchSize (default 32): each is a full
 * copy of the image.
 *
 * Limits. One scalar output is explained (the caller reduces the output, e.g. a class score or the sum of a map);
 * the result depends on the patch size, stride and baseline value (occluded regions are off-distribution inputs);
 * attributions are per pixel, not per channel; no interactions between regions are measured.
 */
import { type BatchFunction, checkFiniteVector, checkPositiveInteger, runBatched } from './common';

export interface OcclusionOptions {
  /** Patch size: one number for a square patch, or [height, width]. */
  patch: number | readonly [number, number];
  /** Step between patch positions (default: the patch size, i.e. non-overlapping patches). */
  stride?: number | readonly [number, number];
  /** What the occluded pixels take: one value, or the pixels of a baseline image shaped like x (default 0). */
  baseline?: number | Float64Array;
  /** Most rows per call of f (default 32). */
  batchSize?: number;
}

export interface OcclusionResult {
  /** Per-pixel attributions, shaped (and laid out) like x. */
  attributions: Float64Array;
  shape: number[];
  /** f(x). */
  prediction: number;
  /** f(baseline): the model on the fully occluded image. */
  baseValue: number;
  /** Patch positions evaluated. */
  patches: number;
  /** Rows run through the model: patches + 2. */
  modelRuns: number;
}

export async function occlusion(f: BatchFunction, x: Float64Array, shape: readonly number[], options: OcclusionOptions): Promise<OcclusionResult> {
  if (typeof f !== 'function') throw new TypeError('f must be a function (rows) => Promise<one number per row>');
  const input = checkFiniteVector(x, 'x');
  if (!Array.isArray(shape) || !(shape.length === 3 || (shape.length === 4 && shape[0] === 1))
    || !shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new RangeError(`shape must be [1, C, H, W] or [C, H, W] of positive integers, got ${JSON.stringify(shape)}`);
  }
  const [C, H, W] = shape.slice(-3);
  if (C * H * W !== input.length) {
    throw new RangeError(`x has ${input.length} elements but shape ${JSON.stringify(shape)} holds ${C * H * W}`);
  }
  if (options == null || typeof options !== 'object') throw new TypeError('options must be an object with patch');
  const [ph, pw] = pair(options.patch, 'patch');
  if (ph > H || pw > W) throw new RangeError(`patch (${ph}×${pw}) is larger than the image (${H}×${W})`);
  const [sh, sw] = options.stride === undefined ? [ph, pw] : pair(options.stride, 'stride');
  const background = baselineImage(options.baseline ?? 0, input.length);
  const batchSize = options.batchSize === undefined ? 32 : checkPositiveInteger(options.batchSize, 'batchSize');

  const positions: Array<[number, number]> = [];
  for (const top of starts(H, ph, sh)) for (const left of starts(W, pw, sw)) positions.push([top, left]);

  // Rows are built one batch at a time: each is a full copy of the image.
  const occluded = (k: number): Float64Array => {
    const [top, left] = positions[k];
    const row = Float64Array.from(input);
    for (let c = 0; c < C; c++) {
      for (let i = top; i < top + ph; i++) {
        const start = c * H * W + i * W + left;
        row.set(background.subarray(start, start + pw), start);
      }
    }
    return row;
  };
  // Row 0 is x, row 1 the baseline, then one row per patch position.
  const outputs = new Float64Array(positions.length + 2);
  for (let start = -2; start < positions.length; start += batchSize) {
    const rows: Float64Array[] = [];
    for (let k = start; k < Math.min(start + batchSize, positions.length); k++) rows.push(k === -2 ? input : k === -1 ? background : occluded(k));
    outputs.set(await runBatched(f, rows, rows.length, 'occlusion'), start + 2);
  }
  const prediction = outputs[0];

  const sum = new Float64Array(H * W);
  const count = new Uint32Array(H * W);
  positions.forEach(([top, left], k) => {
    const delta = prediction - outputs[k + 2];
    for (let i = top; i < top + ph; i++) {
      for (let j = left; j < left + pw; j++) { sum[i * W + j] += delta; count[i * W + j]++; }
    }
  });
  const attributions = new Float64Array(input.length);
  for (let p = 0; p < H * W; p++) {
    const mean = sum[p] / count[p];
    for (let c = 0; c < C; c++) attributions[c * H * W + p] = mean;
  }
  return { attributions, shape: [...shape], prediction, baseValue: outputs[1], patches: positions.length, modelRuns: positions.length + 2 };
}

function baselineImage(baseline: number | Float64Array, length: number): Float64Array {
  if (typeof baseline === 'number') {
    if (!Number.isFinite(baseline)) throw new RangeError(`baseline must be a finite number, got ${String(baseline)}`);
    return new Float64Array(length).fill(baseline);
  }
  const image = checkFiniteVector(baseline, 'baseline');
  if (image.length !== length) throw new RangeError(`the baseline image has ${image.length} elements but x has ${length}; they must match`);
  return image;
}

function pair(value: unknown, name: string): [number, number] {
  const [a, b] = typeof value === 'number' ? [value, value] : Array.isArray(value) && value.length === 2 ? value : [NaN, NaN];
  if (!Number.isInteger(a) || !Number.isInteger(b) || a < 1 || b < 1) {
    throw new RangeError(`${name} must be a positive integer or [height, width] of positive integers, got ${JSON.stringify(value)}`);
  }
  return [a, b];
}

/** 0, step, 2·step, … while the patch fits, plus one flush with the border if the last stops short of it. */
function starts(extent: number, size: number, step: number): number[] {
  const out: number[] = [];
  for (let s = 0; s + size <= extent; s += step) out.push(s);
  if (out[out.length - 1] + size < extent) out.push(extent - size);
  return out;
}
