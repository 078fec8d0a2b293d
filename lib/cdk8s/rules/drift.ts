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

/**
 * The recorded PSI's name. The window is part of it, as in `slo:sli_error:ratio_rate1h`: a PSI over 6 hours is not
 * the PSI over 1 hour, and a dashboard or alert that reads one must not silently get the other.
 */
export const driftPsiRecord = (window: string) => `modelship:drift_psi:${window}`;

/**
 * PromQL for the PSI of every feature of the selected service over `window`.
 *
 * - Pods are summed: a feature's distribution is the service's, not a pod's; the reference is the same on every pod
 *   of a version, so `max` keeps one copy of it.
 * - The served share divides by the feature's total only where it is above 0: with no row in the window there is no
 *   distribution to compare (0/0 would be NaN), so no PSI sample, rather than a NaN that no alert compares.
 * - A bin the counter has no series for yet counts as empty (`or` the reference's bins × 0), for features with rows.
 * - Both sides then carry the same labels, `bin` included, so they match one to one; the sum drops `bin`.
 */
export function driftPsiExpr(selector: SeriesSelector, window: string): string {
  const feature = FEATURE_LABELS.join(', ');
  const bin = [...FEATURE_LABELS, LABEL.bin].join(', ');
  const m = matchers(selector);
  const counts = `sum by (${bin}) (increase(${METRIC.driftBins}${m}[${window}]))`;
  const total = `(sum by (${feature}) (increase(${METRIC.driftBins}${m}[${window}])) > 0)`;
  const reference = `max by (${bin}) (${METRIC.driftReferenceRatio}${m})`;
  const served = `(${counts} / on (${feature}) group_left () ${total} or (${reference} * 0 and on (${feature}) ${total}))`;
  const a = `clamp_min(${served}, ${DRIFT_PSI_FLOOR})`;
  const r = `clamp_min(${reference}, ${DRIFT_PSI_FLOOR})`;
  return `sum by (${feature}) ((${a} - ${r}) * ln(${a} / ${r}))`;
}

export interface DriftRuleOptions {
  readonly selector: SeriesSelector;
  readonly window: string;
  readonly threshold: number;
  /** The model's input and output tensor names when its signature is known at synth; else one alert for all tensors. */
  readonly tensors?: { readonly inputs: readonly string[]; readonly outputs: readonly string[] };
}

/** The PSI recording rule. */
export function driftRecordingRules(options: DriftRuleOptions): Rule[] {
  return [{ record: driftPsiRecord(options.window), expr: driftPsiExpr(options.selector, options.window) }];
}

/** The PSI above the threshold, for the tensors named (all of them when `tensors` is undefined). */
export function driftAlertExpr(options: DriftRuleOptions, tensors?: readonly string[]): string {
  const extra = tensors === undefined ? [] : [`${LABEL.tensor}=~"${tensors.map(regexEscape).join('|')}"`];
  return `${driftPsiRecord(options.window)}${matchers(options.selector, extra)} > ${options.threshold}`;
}

/** A tensor name as an RE2 literal inside a PromQL string (names may hold '.', ':', '/', ...). */
function regexEscape(name: string): string {
  return name.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&').replace(/\\/g, '\\\\').replace(/"/g, '\\"');
}
