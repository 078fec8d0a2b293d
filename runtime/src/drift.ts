/**
 * Drift profiles: building one from reference rows (`modelship profile`, --drift-baseline-rows) and counting served
 * rows into its bins (the session worker, after each run). Both read a row's feature value the same way and bin it
 * with the contract's `binOf`, so the counts the runtime exports and the shares the profile holds are comparable.
 */
import {
  binOf, DRIFT_BINS, DRIFT_PROFILE_FORMAT, type DriftFeature, type DriftProfile, type DriftTensor,
} from '@modelship/contract';
import type { NamedTensor, Tensor, TypedArray } from './tensor/datatypes';
import type { Signature } from './tensor/signature';

/**
 * Whether a tensor's values can be binned: every datatype held as numbers. FP16 arrives as raw half-precision bits
 * and BYTES as strings, so neither is profiled.
 */
function isProfiled(datatype: string | undefined): boolean {
  return datatype !== undefined && datatype !== 'BYTES' && datatype !== 'FP16';
}

/** Rows (dim 0) and features (dim 1, or 1 for rank 1) of a tensor; undefined for a scalar, which has no rows. */
export interface Layout { readonly rows: number; readonly features: number; readonly stride: number }

export function rowsAndFeatures(shape: readonly number[]): Layout | undefined {
  if (shape.length === 0) return undefined;
  let stride = 1;
  for (let axis = 2; axis < shape.length; axis++) stride *= shape[axis];
  return { rows: shape[0], features: shape.length === 1 ? 1 : shape[1], stride };
}

/**
 * The value of feature `feature` in row `row`: the element itself for rank 1 and 2, the mean over the remaining
 * axes above that (so that an image channel or a sequence step is one number per row).
 */
export function featureValue(data: TypedArray, layout: Layout, row: number, feature: number): number {
  const start = (row * layout.features + feature) * layout.stride;
  if (layout.stride === 1) return Number(data[start]);
  if (layout.stride === 0) return NaN;
  let sum = 0;
  for (let i = start; i < start + layout.stride; i++) sum += Number(data[i]);
  return sum / layout.stride;
}

/**
 * Adds a tensor's rows to per-bin counts, laid out feature after feature, DRIFT_BINS each (the order of
 * `profiled.features`). NaN falls in no bin; a feature beyond the tensor's dim 1 is not counted.
 */
export function countRows(profiled: DriftTensor, tensor: Tensor, counts: Uint32Array): void {
  const layout = rowsAndFeatures(tensor.shape);
  if (!layout || !isProfiled(tensor.datatype)) return;
  const data = tensor.data as TypedArray;
  // Plain number arrays: BigInt data needs Number() per element, the rest reads as numbers already.
  const big = typeof data[0] === 'bigint';
  for (const [f, feature] of profiled.features.entries()) {
    if (feature.index >= layout.features) continue;
    const base = f * DRIFT_BINS;
    const edges = feature.edges;
    for (let row = 0; row < layout.rows; row++) {
      // The common case (rank 1 and 2 of non-BigInt data) reads the element directly, on the session worker's time.
      const value = layout.stride === 1 && !big ? (data[row * layout.features + feature.index] as number) : featureValue(data, layout, row, feature.index);
      const bin = binOf(edges, value);
      if (bin !== undefined) counts[base + bin]++;
    }
  }
}

/** The 9 inner edges of sorted finite values: the deciles, each the value at its rank (nearest rank, no interpolation). */
export function decileEdges(sorted: readonly number[]): number[] {
  const edges: number[] = [];
  for (let k = 1; k < DRIFT_BINS; k++) {
    edges.push(sorted[Math.min(sorted.length - 1, Math.floor((k * sorted.length) / DRIFT_BINS))]);
  }
  return edges;
}

/** A feature's profile from its reference values: decile edges, and the share of the values in each bin. */
export function profileFeature(index: number, values: readonly number[]): DriftFeature | undefined {
  const finite = values.filter(Number.isFinite).sort((a, b) => a - b);
  // A feature without one finite reference value has no deciles to bin by.
  if (finite.length === 0) return undefined;
  const edges = decileEdges(finite);
  const counts = new Array<number>(DRIFT_BINS).fill(0);
  let binned = 0;
  for (const value of values) {
    const bin = binOf(edges, value);
    if (bin === undefined) continue;
    counts[bin]++;
    binned++;
  }
  return { index, edges, ratios: counts.map((count) => count / binned) };
}

/**
 * Collects reference rows, tensor by tensor and feature by feature, and turns them into a profile. Every tensor
 * keeps the feature count it first arrived with: rows that disagree are a mistake in the reference data.
 */
export class ProfileBuilder {
  private readonly tensors = new Map<string, { kind: 'input' | 'output'; features: number; values: number[][] }>();
  rows = 0;

  /**
   * Adds one request's tensors (its inputs and outputs): its rows are dim 0 of its first input, of which `limit`
   * at most are taken. Throws when a tensor's features differ from earlier rows.
   */
  add(inputs: readonly NamedTensor[], outputs: readonly NamedTensor[], limit = Infinity): void {
    const take = Math.min(limit, inputs[0]?.shape[0] ?? 0);
    if (take <= 0) return;
    for (const [kind, tensors] of [['input', inputs], ['output', outputs]] as const) {
      for (const tensor of tensors) {
        const layout = rowsAndFeatures(tensor.shape);
        if (!layout || !isProfiled(tensor.datatype)) continue;
        let entry = this.tensors.get(tensor.name);
        if (!entry) {
          entry = { kind, features: layout.features, values: Array.from({ length: layout.features }, () => []) };
          this.tensors.set(tensor.name, entry);
        } else if (entry.features !== layout.features) {
          throw new Error(`${kind} '${tensor.name}' has ${layout.features} feature(s) (dim 1), where earlier rows had ${entry.features}`);
        }
        const rows = Math.min(take, layout.rows);
        const data = tensor.data as TypedArray;
        for (let f = 0; f < layout.features; f++) {
          const values = entry.values[f];
          for (let row = 0; row < rows; row++) values.push(featureValue(data, layout, row, f));
        }
      }
    }
    this.rows += take;
  }

  build(modelSha256?: string): DriftProfile {
    const tensors: DriftTensor[] = [];
    for (const [name, entry] of this.tensors) {
      const features = entry.values.map((values, index) => profileFeature(index, values)).filter((f): f is DriftFeature => f !== undefined);
      if (features.length > 0) tensors.push({ name, kind: entry.kind, features });
    }
    return { format: DRIFT_PROFILE_FORMAT, rows: this.rows, ...(modelSha256 ? { modelSha256 } : {}), tensors };
  }
}

/**
 * Checks a profile against the model it is meant for: each tensor named must be an input or output of that kind,
 * numeric, and each feature within its fixed dim 1. Throws the first mismatch.
 */
export function checkProfileAgainst(profile: DriftProfile, signature: Signature, source: string): void {
  for (const tensor of profile.tensors) {
    const specs = tensor.kind === 'input' ? signature.inputs : signature.outputs;
    const spec = specs.find((s) => s.name === tensor.name);
    if (!spec) {
      throw new Error(`${source}: the model has no ${tensor.kind} '${tensor.name}' (its ${tensor.kind}s: ${specs.map((s) => `'${s.name}'`).join(', ') || 'none'}); write the profile again with \`modelship profile\``);
    }
    if (!isProfiled(spec.datatype)) throw new Error(`${source}: ${tensor.kind} '${tensor.name}' is ${spec.datatype ?? spec.ortType}, which is not profiled (numeric tensors only)`);
    const width = spec.shape === undefined ? undefined : spec.shape.length === 1 ? 1 : spec.shape[1];
    for (const feature of tensor.features) {
      if (typeof width === 'number' && feature.index >= width) {
        throw new Error(`${source}: ${tensor.kind} '${tensor.name}' has ${width} feature(s) (dim 1); the profile names feature ${feature.index}`);
      }
    }
  }
}
