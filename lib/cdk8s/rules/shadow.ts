/**
 * Shadow comparison: a service that receives a copy of another's requests (ModelRoute's `mirror`) is compared with
 * that primary, per model, over a window: how far apart their predictions are (the PSI between the two services'
 * served shares of each drift-profile bin) and how much more often the shadow answers with a server error.
 *
 * A mirrored request names the model the primary serves, so the shadow must serve the same model name (a newer
 * version of it, usually): both sides are matched on `model`, and each side's versions are summed, so a primary in
 * the middle of a rolling update is still one distribution.
 */
import { LABEL, METRIC } from '@modelship/contract';
import { errorRatio, matchers, type SeriesSelector } from '../promql';
import { DRIFT_PSI_FLOOR, regexEscape } from './drift';
import type { Rule } from './slo';

export const DEFAULT_SHADOW_WINDOW = '1h';
export const DEFAULT_SHADOW_PSI_THRESHOLD = 0.25;
export const DEFAULT_SHADOW_ERROR_RATIO_THRESHOLD = 0.01;

/** Which service of the comparison a recorded share belongs to: the `side` label of the share series. */
export type ShadowSide = 'shadow' | 'primary';

/** The labels both services' distributions share: everything but the service, its namespace and the version. */
const FEATURE_LABELS = [LABEL.model, LABEL.tensor, LABEL.feature] as const;
const BIN_LABELS = [...FEATURE_LABELS, LABEL.bin].join(', ');

/** The served share of each bin over `window`, per side; the window is in the name, as for the drift records. */
export const shadowShareRecord = (window: string) => `modelship:shadow_bin_share:${window}`;
/** The PSI between the shadow's and the primary's served shares, per model, tensor and feature. */
export const shadowPsiRecord = (window: string) => `modelship:shadow_psi:${window}`;
/** The shadow's server-error ratio minus the primary's, per model: above 0 the shadow fails more often. */
export const shadowErrorRatioDeltaRecord = (window: string) => `modelship:shadow_error_ratio_delta:${window}`;

export interface ShadowRuleOptions {
  /** The service that receives the copies (the one whose ModelMonitoring records the comparison). */
  readonly shadow: SeriesSelector;
  /** The service whose requests are copied. */
  readonly primary: SeriesSelector;
  readonly window: string;
  readonly psiThreshold: number;
  readonly errorRatioThreshold: number;
  /** Compare the prediction distributions: only when both services count into drift-profile bins. */
  readonly distributions: boolean;
  /** The model's output tensor names when its signature is known at synth; else the PSI alert covers every tensor. */
  readonly outputs?: readonly string[];
  /** The labels every series this ModelMonitoring records carries: the shadow's namespace and service. */
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * PromQL for one service's served share of each bin over `window`, floored as the drift PSI floors it, by model,
 * tensor, feature and bin only (versions and pods summed), so that the two services' shares match one to one. As in
 * driftShareExpr, a feature with no row in the window has no share, and a bin without a series counts as empty.
 */
export function shadowShareExpr(selector: SeriesSelector, window: string): string {
  const feature = FEATURE_LABELS.join(', ');
  const m = matchers(selector);
  const counts = `sum by (${BIN_LABELS}) (increase(${METRIC.driftBins}${m}[${window}]))`;
  const total = `(sum by (${feature}) (increase(${METRIC.driftBins}${m}[${window}])) > 0)`;
  const reference = `max by (${BIN_LABELS}) (${METRIC.driftReferenceRatio}${m})`;
  const served = `${counts} / on (${feature}) group_left () ${total} or (${reference} * 0 and on (${feature}) ${total})`;
  return `clamp_min(${served}, ${DRIFT_PSI_FLOOR})`;
}

/** The recorded share series of one side, as this ModelMonitoring labels it. */
function recordedShare(options: ShadowRuleOptions, side: ShadowSide): string {
  return `${shadowShareRecord(options.window)}${matchers(options.shadow, [`side="${side}"`])}`;
}

/**
 * PSI = Σ over bins (s − p) × ln(s / p), s and p the shadow's and the primary's shares. The two share series differ
 * only in `side`, so they match ignoring it; PSI is symmetric, so neither side is the reference.
 */
export function shadowPsiExpr(options: ShadowRuleOptions): string {
  const s = recordedShare(options, 'shadow');
  const p = recordedShare(options, 'primary');
  return `sum by (${[...Object.keys(options.labels), ...FEATURE_LABELS].join(', ')}) ((${s} - ignoring (side) ${p}) * ln(${s} / ignoring (side) ${p}))`;
}

/**
 * The shadow's error ratio minus the primary's over the window, per model, with the same PromQL as the SLO's error
 * ratio. Computed from the request counters rather than read from either service's SLO records: those exist only
 * where a ModelMonitoring records them, over fixed windows and split as its `perVersion` says, while this needs both
 * sides over the same window and split the same way.
 */
export function shadowErrorRatioDeltaExpr(options: ShadowRuleOptions): string {
  const by = [LABEL.model];
  return `(${errorRatio(options.shadow, options.window, by)}) - on (${LABEL.model}) (${errorRatio(options.primary, options.window, by)})`;
}

/**
 * The shares of both sides, then the PSI, then the error-ratio difference: in this order in one group, so the PSI
 * reads this evaluation's shares. Without distributions to compare, only the error-ratio difference.
 */
export function shadowRecordingRules(options: ShadowRuleOptions): Rule[] {
  const { labels, window } = options;
  const distributions: Rule[] = options.distributions ? [
    { record: shadowShareRecord(window), expr: shadowShareExpr(options.shadow, window), labels: { ...labels, side: 'shadow' } },
    { record: shadowShareRecord(window), expr: shadowShareExpr(options.primary, window), labels: { ...labels, side: 'primary' } },
    { record: shadowPsiRecord(window), expr: shadowPsiExpr(options) },
  ] : [];
  return [...distributions, { record: shadowErrorRatioDeltaRecord(window), expr: shadowErrorRatioDeltaExpr(options), labels }];
}

/** The recorded PSI above the threshold, for the output tensors when they are known (every tensor otherwise). */
export function shadowPsiAlertExpr(options: ShadowRuleOptions): string {
  const outputs = options.outputs === undefined ? [] : [`${LABEL.tensor}=~"${options.outputs.map(regexEscape).join('|')}"`];
  return `${shadowPsiRecord(options.window)}${matchers(options.shadow, outputs)} > ${options.psiThreshold}`;
}

/** The recorded error-ratio difference above the threshold. */
export function shadowErrorAlertExpr(options: ShadowRuleOptions): string {
  return `${shadowErrorRatioDeltaRecord(options.window)}${matchers(options.shadow)} > ${options.errorRatioThreshold}`;
}
