/**
 * The drift profile: for every numeric input and output tensor of a model version, per feature, the reference
 * distribution in 10 bins — 9 inner edges (the reference data's deciles) and the share of reference rows in each
 * bin. The runtime counts served rows into the same bins (modelship_drift_bin_total) and exports the shares
 * (modelship_drift_reference_ratio); Prometheus compares the two (the population stability index). It lives as
 * `profile.json` beside `model.onnx`; `modelship profile` writes it from reference data.
 *
 * A feature is the index along axis 1 for tensors of rank 2 or more, the whole value for rank 1; for rank above 2,
 * a row's value for a feature is the mean over the remaining axes.
 */

/** The file name beside `model.onnx`. */
export const DRIFT_PROFILE_FILE_NAME = 'profile.json';
/** The `format` field of every profile this code reads and writes. */
export const DRIFT_PROFILE_FORMAT = 'modelship.drift-profile/v1';
export const DRIFT_BINS = 10;

export interface DriftFeature {
  /** The index along axis 1 (0 for rank-1 tensors). */
  readonly index: number;
  /** DRIFT_BINS - 1 ascending inner edges: bin 0 is below edges[0], bin k holds edges[k-1] <= x < edges[k], the last bin x >= edges[8]. */
  readonly edges: readonly number[];
  /** DRIFT_BINS reference shares, summing to 1. */
  readonly ratios: readonly number[];
}

export interface DriftTensor {
  readonly name: string;
  readonly kind: 'input' | 'output';
  readonly features: readonly DriftFeature[];
}

export interface DriftProfile {
  readonly format: typeof DRIFT_PROFILE_FORMAT;
  /** Reference rows the profile was built from. */
  readonly rows: number;
  /** The model file's sha256, when known: a profile is meant for one model. */
  readonly modelSha256?: string;
  readonly tensors: readonly DriftTensor[];
}

/** The bin of a value: 0 to DRIFT_BINS - 1; NaN has none. */
export function binOf(edges: readonly number[], value: number): number | undefined {
  if (Number.isNaN(value)) return undefined;
  let low = 0;
  let high = edges.length;
  // The first edge above the value: its index is the bin.
  while (low < high) {
    const middle = (low + high) >> 1;
    if (value < edges[middle]) high = middle;
    else low = middle + 1;
  }
  return low;
}

/** A parsed profile, checked whole; the message names the field and what is wrong with it. */
export function checkDriftProfile(value: unknown, source: string): DriftProfile {
  const fail = (why: string): never => {
    throw new Error(`${source}: ${why}; write it with \`modelship profile\``);
  };
  const profile = value as Partial<DriftProfile> | null;
  if (!profile || typeof profile !== 'object') fail('not a JSON object');
  if (profile!.format !== DRIFT_PROFILE_FORMAT) fail(`'format' is ${JSON.stringify(profile!.format)}, expected '${DRIFT_PROFILE_FORMAT}'`);
  if (!Number.isInteger(profile!.rows) || profile!.rows! < 1) fail(`'rows' (${profile!.rows}) must be a positive integer`);
  if (!Array.isArray(profile!.tensors)) fail("'tensors' must be an array");
  for (const [t, tensor] of profile!.tensors!.entries()) {
    const where = `tensors[${t}]`;
    if (typeof tensor?.name !== 'string' || tensor.name === '') fail(`${where}.name must be a tensor name`);
    if (tensor.kind !== 'input' && tensor.kind !== 'output') fail(`${where}.kind must be 'input' or 'output'`);
    if (!Array.isArray(tensor.features) || tensor.features.length === 0) fail(`${where}.features must be a non-empty array`);
    for (const [f, feature] of tensor.features.entries()) {
      const at = `${where}.features[${f}]`;
      if (!Number.isInteger(feature?.index) || feature.index < 0) fail(`${at}.index must be a non-negative integer`);
      const edges = feature.edges;
      if (!Array.isArray(edges) || edges.length !== DRIFT_BINS - 1 || !edges.every(Number.isFinite)) fail(`${at}.edges must be ${DRIFT_BINS - 1} finite numbers`);
      if (edges.some((edge, i) => i > 0 && edge < edges[i - 1])) fail(`${at}.edges must be ascending`);
      const ratios = feature.ratios;
      if (!Array.isArray(ratios) || ratios.length !== DRIFT_BINS || !ratios.every((r) => Number.isFinite(r) && r >= 0)) fail(`${at}.ratios must be ${DRIFT_BINS} non-negative numbers`);
      const sum = ratios.reduce((a, b) => a + b, 0);
      if (Math.abs(sum - 1) > 1e-6) fail(`${at}.ratios sum to ${sum}, not 1`);
    }
  }
  return profile as DriftProfile;
}
