/**
 * KernelSHAP (Lundberg & Lee, "A Unified Approach to Interpreting Model Predictions", 2017): model-agnostic
 * Shapley-value attributions for one input x against one baseline, for a model seen only as an async batch function.
 *
 * Method. A coalition z ⊆ {1..M} is evaluated as the row with z's features from x and the others from the baseline.
 * The attributions φ solve the weighted linear regression f(z) − f(∅) ≈ Σ_{i∈z} φ_i over coalitions, with the
 * Shapley kernel weight (M−1) / (C(M,|z|)·|z|·(M−|z|)). The two coalitions of infinite weight are constraints, not
 * rows: the empty one by regressing f(z) − f(baseline) without intercept, the full one (efficiency,
 * Σφ = f(x) − f(baseline)) by eliminating the last feature's φ, as the shap package does. The regression is solved
 * by Householder QR (least-squares.ts).
 *  - exact: when 2^M − 2 ≤ nsamples (and M ≤ 20) every coalition is evaluated, and the solution is the exact Shapley values
 *    (to float rounding). Cost: 2^M model runs.
 *  - sampled: otherwise coalition sizes are taken whole from the smallest and largest inward while the budget
 *    affords them, and the rest are drawn by size (kernel weight per size), each draw paired with its complement,
 *    duplicates adding weight rather than runs — the shap package's scheme — from a seeded mulberry32 PRNG: the same
 *    seed gives the same attributions. Cost: at most nsamples + 2 model runs.
 *
 * Limits. The baseline is one reference row (interventional, features treated as independent: coalitions are
 * off-manifold rows); sampled attributions are estimates whose variance falls with nsamples; efficiency holds
 * exactly (to rounding) in both modes; for a model linear in its inputs any full-rank set of coalitions gives the
 * exact φ_i = w_i (x_i − baseline_i). No L1 feature selection (the shap package's l1_reg) is done. Sampled mode
 * needs nsamples ≥ 2·(M − 1) (a coalition and its complement make one independent equation) and a full-rank
 * design; otherwise it throws. M (features) up to a few hundred. Every row is built and held in memory before the
 * model runs (about nsamples · M · 8 bytes, twice over for the regression), so a server must cap nsamples.
 */
import { type BatchFunction, checkFiniteVector, checkPositiveInteger, mulberry32, runBatched } from './common';
import { RankDeficientError, weightedLeastSquares } from './least-squares';

export interface KernelShapOptions {
  /** Coalitions to evaluate besides the empty and full ones; ≥ 2. Exact mode when 2^M − 2 ≤ nsamples. */
  nsamples: number;
  /** PRNG seed for sampled mode (default 0: results are reproducible unless the seed changes). */
  seed?: number;
  /** Most rows per call of f (default: all rows in one call). */
  batchSize?: number;
}

export interface KernelShapResult {
  /** One attribution per feature; they sum to prediction − baseValue. */
  attributions: Float64Array;
  /** f(x). */
  prediction: number;
  /** f(baseline). */
  baseValue: number;
  /** Whether every coalition was evaluated (the attributions are then the exact Shapley values). */
  exact: boolean;
  /** Rows run through the model, including x and the baseline. */
  modelRuns: number;
}

/** The largest M for exact mode: its 2^M rows (and the regression's copy of them) are all held in memory. */
const MAX_EXACT_FEATURES = 20;

export async function kernelShap(f: BatchFunction, x: Float64Array, baseline: Float64Array, options: KernelShapOptions): Promise<KernelShapResult> {
  if (typeof f !== 'function') throw new TypeError('f must be a function (rows) => Promise<one number per row>');
  const xs = checkFiniteVector(x, 'x');
  const base = checkFiniteVector(baseline, 'baseline');
  const M = xs.length;
  if (M === 0) throw new RangeError('x must have at least one feature');
  if (base.length !== M) throw new RangeError(`baseline has ${base.length} features but x has ${M}; they must match`);
  if (options == null || typeof options !== 'object') throw new TypeError('options must be an object with nsamples');
  const nsamples = checkPositiveInteger(options.nsamples, 'nsamples', 2);
  const seed = options.seed ?? 0;
  if (!Number.isInteger(seed)) throw new RangeError(`seed must be an integer, got ${String(seed)}`);
  const batchSize = options.batchSize === undefined ? Infinity : checkPositiveInteger(options.batchSize, 'batchSize');

  const exact = M <= MAX_EXACT_FEATURES && 2 ** M - 2 <= nsamples;
  // The regression has M − 1 unknowns, and a coalition drawn with its complement gives one independent equation,
  // not two (its row is the other's negation once φ_{M−1} is eliminated).
  if (!exact && nsamples < 2 * (M - 1)) {
    throw new RangeError(`nsamples (${nsamples}) must be at least 2·(M − 1) = ${2 * (M - 1)} for ${M} features in sampled mode: the regression has M − 1 unknowns and paired coalitions give one equation per pair`);
  }
  const { masks, weights } = exact ? allCoalitions(M) : sampledCoalitions(M, nsamples, mulberry32(seed));

  const rows: Float64Array[] = [base, xs];
  for (const mask of masks) {
    const row = new Float64Array(M);
    for (let i = 0; i < M; i++) row[i] = mask[i] ? xs[i] : base[i];
    rows.push(row);
  }
  const y = await runBatched(f, rows, batchSize, 'kernelShap');
  const baseValue = y[0];
  const prediction = y[1];
  const total = prediction - baseValue;

  const attributions = new Float64Array(M);
  if (M === 1) {
    attributions[0] = total;
  } else {
    // Eliminate φ_{M−1} = total − Σ_{j<M−1} φ_j: the columns become z_j − z_{M−1}, the targets
    // f(z) − f(∅) − z_{M−1}·total.
    const last = M - 1;
    const design: Float64Array[] = [];
    const targets = new Float64Array(masks.length);
    masks.forEach((mask, k) => {
      const row = new Float64Array(last);
      for (let j = 0; j < last; j++) row[j] = mask[j] - mask[last];
      design.push(row);
      targets[k] = y[k + 2] - baseValue - mask[last] * total;
    });
    let phi: Float64Array;
    try {
      phi = weightedLeastSquares(design, weights, targets, last);
    } catch (error) {
      if (!(error instanceof RankDeficientError)) throw error;
      throw new RangeError(`kernelShap: the ${masks.length} sampled coalitions do not determine ${M} attributions (${error.message}); raise nsamples`);
    }
    let sum = 0;
    for (let j = 0; j < last; j++) { attributions[j] = phi[j]; sum += phi[j]; }
    attributions[last] = total - sum;
  }
  return { attributions, prediction, baseValue, exact, modelRuns: rows.length };
}

/** C(n, k) as a float. */
function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}

interface Coalitions { masks: Uint8Array[]; weights: number[] }

/** Every coalition but the empty and full ones, with its Shapley kernel weight. */
function allCoalitions(M: number): Coalitions {
  const masks: Uint8Array[] = [];
  const weights: number[] = [];
  const bySize = new Float64Array(M);
  for (let s = 1; s < M; s++) bySize[s] = (M - 1) / (binomial(M, s) * s * (M - s));
  for (let bits = 1; bits < 2 ** M - 1; bits++) {
    const mask = new Uint8Array(M);
    let size = 0;
    for (let i = 0; i < M; i++) if ((bits >>> i) & 1) { mask[i] = 1; size++; }
    masks.push(mask);
    weights.push(bySize[size]);
  }
  return { masks, weights };
}

/** The shap package's sampling: whole sizes from the outside in while affordable, then paired draws by size. */
function sampledCoalitions(M: number, nsamples: number, random: () => number): Coalitions {
  const masks: Uint8Array[] = [];
  const weights: number[] = [];
  const index = new Map<string, number>();
  const add = (mask: Uint8Array, weight: number): void => {
    index.set(keyOf(mask), masks.length);
    masks.push(mask);
    weights.push(weight);
  };
  const numSizes = Math.ceil((M - 1) / 2);
  const numPaired = Math.floor((M - 1) / 2);
  // Kernel weight of each size s = 1..numSizes (with its complement size M − s when paired), normalised.
  const sizeWeight = new Float64Array(numSizes);
  for (let s = 1; s <= numSizes; s++) sizeWeight[s - 1] = ((M - 1) / (s * (M - s))) * (s <= numPaired ? 2 : 1);
  const totalWeight = sizeWeight.reduce((a, b) => a + b, 0);
  for (let i = 0; i < numSizes; i++) sizeWeight[i] /= totalWeight;

  let left = nsamples;
  let fullSizes = 0;
  const remaining = Float64Array.from(sizeWeight);
  for (let s = 1; s <= numSizes; s++) {
    const paired = s <= numPaired;
    const count = binomial(M, s) * (paired ? 2 : 1);
    if ((left * remaining[s - 1]) / count < 1 - 1e-8) break;
    fullSizes++;
    left -= count;
    if (remaining[s - 1] < 1) {
      const rest = 1 - remaining[s - 1];
      for (let i = 0; i < numSizes; i++) remaining[i] /= rest;
    }
    const w = sizeWeight[s - 1] / count;
    forEachCombination(M, s, (mask) => {
      add(mask, w);
      if (paired) add(complement(mask), w);
    });
  }

  const fixed = masks.length;
  if (fullSizes < numSizes && left > 0) {
    // Draw sizes among the ones not taken whole; a paired size's draw yields two coalitions.
    const p = Array.from(sizeWeight.subarray(fullSizes), (w, i) => (fullSizes + i + 1 <= numPaired ? w / 2 : w));
    const sum = p.reduce((a, b) => a + b, 0);
    const cumulative = new Float64Array(p.length);
    let acc = 0;
    p.forEach((w, i) => { acc += w / sum; cumulative[i] = acc; });
    const order = new Int32Array(M);
    for (let draws = 4 * left; left > 0 && draws > 0; draws--) {
      const u = random();
      let ind = cumulative.findIndex((c) => u < c);
      if (ind < 0) ind = p.length - 1;
      const size = fullSizes + ind + 1;
      // The first `size` of a partial Fisher–Yates shuffle.
      for (let i = 0; i < M; i++) order[i] = i;
      const mask = new Uint8Array(M);
      for (let i = 0; i < size; i++) {
        const j = i + Math.floor(random() * (M - i));
        const t = order[i]; order[i] = order[j]; order[j] = t;
        mask[order[i]] = 1;
      }
      const seen = index.get(keyOf(mask));
      if (seen === undefined) { add(mask, 1); left--; } else weights[seen] += 1;
      if (size <= numPaired) {
        const other = complement(mask);
        const seenOther = index.get(keyOf(other));
        if (seenOther !== undefined) weights[seenOther] += 1;
        else if (left > 0) { add(other, 1); left--; }
      }
    }
    // The drawn coalitions share the weight of the sizes not taken whole.
    let drawn = 0;
    for (let k = fixed; k < weights.length; k++) drawn += weights[k];
    const share = sizeWeight.subarray(fullSizes).reduce((a, b) => a + b, 0);
    for (let k = fixed; k < weights.length; k++) weights[k] *= share / drawn;
  }
  return { masks, weights };
}

function complement(mask: Uint8Array): Uint8Array {
  return mask.map((v) => 1 - v);
}

function keyOf(mask: Uint8Array): string {
  return mask.join('');
}

function forEachCombination(M: number, s: number, visit: (mask: Uint8Array) => void): void {
  const idx = Array.from({ length: s }, (_, i) => i);
  for (;;) {
    const mask = new Uint8Array(M);
    for (const i of idx) mask[i] = 1;
    visit(mask);
    let i = s - 1;
    while (i >= 0 && idx[i] === M - s + i) i--;
    if (i < 0) return;
    idx[i]++;
    for (let j = i + 1; j < s; j++) idx[j] = idx[j - 1] + 1;
  }
}
