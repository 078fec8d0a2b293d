/**
 * Drift: the population stability index (PSI) of what a model version was served against its drift profile, per
 * tensor and feature, recorded from the runtime's per-bin row counter and the profile's reference shares, and the two
 * alerts on it: inputs that no longer look like the reference data, and predictions that no longer do.
 *
 * PSI = Σ over bins (a − r) × ln(a / r), a the bin's share of the rows served in the window, r its reference share.
 * < 0.1 is stable, 0.1–0.25 a moderate shift, > 0.25 a significant one.
 */
import { LABEL, METRIC } from '@modelship/contract';
import { matchers, type SeriesSelector } from '../promql';
import type { Rule } from './slo';

/**
 * Both shares are floored here before the logarithm: an empty bin (no row served there, or a reference share of 0)
 * would make ln(a / r) infinite, and one empty bin would make the whole sum Inf or NaN.
 */
export const DRIFT_PSI_FLOOR = 0.0001;
export const DEFAULT_DRIFT_WINDOW = '1h';
export const DEFAULT_DRIFT_THRESHOLD = 0.25;

/** The labels of one feature's distribution; the PSI series carries these, the bin series `bin` as well. */
const FEATURE_LABELS = ['namespace', 'service', LABEL.model, LABEL.version, LABEL.tensor, LABEL.feature] as const;
const BIN_LABELS = [...FEATURE_LABELS, LABEL.bin].join(', ');

/**
 * The recorded PSI's name. The window is part of it, as in `slo:sli_error:ratio_rate1h`: a PSI over 6 hours is not
 * the PSI over 1 hour, and a dashboard or alert that reads one must not silently get the other.
 */
export const driftPsiRecord = (window: string) => `modelship:drift_psi:${window}`;

/** The recorded served share of each bin over `window`, floored: what the PSI compares with the reference. */
export const driftShareRecord = (window: string) => `modelship:drift_bin_share:${window}`;

/**
 * PromQL for each bin's share of the rows the selected service served over `window`, floored at DRIFT_PSI_FLOOR.
 *
 * - Pods are summed: a feature's distribution is the service's, not a pod's.
 * - The share divides by the feature's total only where it is above 0: with no row in the window there is no
 *   distribution to compare (0/0 would be NaN), so no sample, rather than a NaN that no alert compares.
 * - A bin the counter has no series for yet counts as empty (`or` the reference's bins × 0), for features with rows.
 */
export function driftShareExpr(selector: SeriesSelector, window: string): string {
  const feature = FEATURE_LABELS.join(', ');
  const m = matchers(selector);
  const counts = `sum by (${BIN_LABELS}) (increase(${METRIC.driftBins}${m}[${window}]))`;
  const total = `(sum by (${feature}) (increase(${METRIC.driftBins}${m}[${window}])) > 0)`;
  const served = `${counts} / on (${feature}) group_left () ${total} or (${referenceExpr(selector)} * 0 and on (${feature}) ${total})`;
  return `clamp_min(${served}, ${DRIFT_PSI_FLOOR})`;
}

/** The profile's share of each bin; the same on every pod of a version, so `max` keeps one copy. */
const referenceExpr = (selector: SeriesSelector) => `max by (${BIN_LABELS}) (${METRIC.driftReferenceRatio}${matchers(selector)})`;

/**
 * PromQL for the PSI of every feature of the selected service, from the recorded shares (driftShareRecord). Both
 * sides carry the same labels, `bin` included, so they match one to one; the sum drops `bin`.
 */
export function driftPsiExpr(selector: SeriesSelector, window: string): string {
  const a = `${driftShareRecord(window)}${matchers(selector)}`;
  const r = `clamp_min(${referenceExpr(selector)}, ${DRIFT_PSI_FLOOR})`;
  return `sum by (${FEATURE_LABELS.join(', ')}) ((${a} - ${r}) * ln(${a} / ${r}))`;
}

export interface DriftRuleOptions {
  readonly selector: SeriesSelector;
  readonly window: string;
  readonly threshold: number;
  /** The model's input and output tensor names when its signature is known at synth; else one alert for all tensors. */
  readonly tensors?: { readonly inputs: readonly string[]; readonly outputs: readonly string[] };
}

/**
 * The served shares, then the PSI: in this order in one group, so the PSI reads this evaluation's shares. The shares
 * are recorded (not inlined) because the PSI reads each twice, and each is two increase() over the whole window.
 */
export function driftRecordingRules(options: DriftRuleOptions): Rule[] {
  return [
    { record: driftShareRecord(options.window), expr: driftShareExpr(options.selector, options.window) },
    { record: driftPsiRecord(options.window), expr: driftPsiExpr(options.selector, options.window) },
  ];
}

/** The PSI above the threshold, for the tensors named (all of them when `tensors` is undefined). */
export function driftAlertExpr(options: DriftRuleOptions, tensors?: readonly string[]): string {
  const extra = tensors === undefined ? [] : [`${LABEL.tensor}=~"${tensors.map(regexEscape).join('|')}"`];
  return `${driftPsiRecord(options.window)}${matchers(options.selector, extra)} > ${options.threshold}`;
}

/** A tensor name as an RE2 literal inside a PromQL string (names may hold '.', ':', '/', ...). */
export function regexEscape(name: string): string {
  return name.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&').replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}
