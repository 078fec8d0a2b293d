/**
 * SLO recording rules and multi-window multi-burn-rate alerts (Google SRE workbook, ch. 5), with sloth's rule
 * names (`slo:sli_error:ratio_rate5m` ... `_rate3d`), as pure functions from objectives to rule groups.
 */
import { LABEL, LATENCY_BUCKETS_SECONDS, METRIC } from '@modelship/contract';
import { errorRatio, matchers, sumBy, type SeriesSelector } from '../promql';

/** The windows sloth records; the burn-rate alerts read pairs of them. */
export const SLO_WINDOWS = ['5m', '30m', '1h', '2h', '6h', '1d', '3d'] as const;
type SloWindow = (typeof SLO_WINDOWS)[number];

/** Workbook table 5-8: [burn rate, long window, short window, severity]. */
export const BURN_RATE_ALERTS = [
  { burnRate: 14.4, long: '1h', short: '5m', severity: 'critical' },
  { burnRate: 6, long: '6h', short: '30m', severity: 'critical' },
  { burnRate: 3, long: '1d', short: '2h', severity: 'warning' },
  { burnRate: 1, long: '3d', short: '6h', severity: 'warning' },
] as const;

/**
 * The labels a per-version SLO is split by. A version is a version of one model, and a runtime serving a model
 * repository may serve several models: `version` alone would add model a's version 1 to model b's.
 */
export const PER_VERSION_LABELS: readonly string[] = [LABEL.model, LABEL.version];

/** ModelMonitoring's objectives when none are given, which a canary analysis also judges against by default. */
export const DEFAULT_AVAILABILITY_OBJECTIVE = 99.9;
export const DEFAULT_LATENCY_OBJECTIVE = { thresholdSeconds: 0.25, percent: 99 } as const;

export interface Rule {
  readonly record?: string;
  readonly alert?: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly annotations?: Readonly<Record<string, string>>;
}

export interface RuleGroup {
  readonly name: string;
  readonly interval?: string;
  readonly rules: readonly Rule[];
}

export interface Slo {
  /** `availability` or `latency`: the `slo` label on every series of this objective. */
  readonly name: 'availability' | 'latency';
  /** Target share of good requests, e.g. 0.999. */
  readonly objective: number;
  /**
   * The labels the ratios are split by: none (one ratio for the whole service) or PER_VERSION_LABELS (one per model
   * version, each over its own requests, so a version's failures are not diluted by another's traffic).
   */
  readonly by: readonly string[];
  /** PromQL for the share of bad requests over a window, one series per value of the `by` labels. */
  errorRatio(window: string): string;
}

export function availabilitySlo(selector: SeriesSelector, objectivePercent: number, by: readonly string[] = []): Slo {
  const objective = checkObjective('availabilityObjective', objectivePercent);
  return {
    name: 'availability',
    objective,
    by,
    errorRatio: (w) => errorRatio(selector, w, by),
  };
}

export function latencySlo(selector: SeriesSelector, objectivePercent: number, thresholdSeconds: number, by: readonly string[] = []): Slo {
  const objective = checkObjective('latencyObjective.percent', objectivePercent);
  const le = bucketBoundary(thresholdSeconds);
  // Prometheus 3 writes whole-number bucket bounds as "1.0" where 2.x wrote "1": match both.
  const bucket = Number.isInteger(thresholdSeconds) ? `le=~"${le}(\\.0)?"` : `le="${le}"`;
  const sum = sumBy(by);
  return {
    name: 'latency',
    objective,
    by,
    errorRatio: (w) => `1 - (${sum}(rate(${METRIC.requestDuration}_bucket${matchers(selector, [bucket])}[${w}])) / ${sum}(rate(${METRIC.requestDuration}_count${matchers(selector)}[${w}])))`,
  };
}

/**
 * An objective as a percentage, high enough that every burn-rate alert can fire. An alert with burn factor F fires
 * when the error ratio exceeds F × (1 − objective); a ratio never exceeds 1, so F × (1 − objective) ≥ 1 is an alert
 * that can never fire — at 90%, the 14.4× page would need 144% of requests to fail.
 */
function checkObjective(prop: string, percent: number): number {
  if (!(percent > 0 && percent < 100)) throw new Error(`'${prop}' (${percent}) must be a percentage between 0 and 100, e.g. 99.9`);
  const objective = percent / 100;
  const fastest = BURN_RATE_ALERTS.reduce((a, b) => (b.burnRate > a.burnRate ? b : a));
  if (fastest.burnRate * (1 - objective) >= 1) {
    // The lowest objective that works, rounded up to 4 decimals so the number quoted is itself accepted.
    const lowest = Math.ceil((1 - 1 / fastest.burnRate) * 100 * 1e4) / 1e4;
    const asPercent = round(percent * 100);
    const fraction = percent <= 1 ? ` is a percentage, not a fraction: write ${asPercent} for ${asPercent}%. As given, it` : '';
    throw new Error(`'${prop}' (${percent})${fraction} is too low for the burn-rate alerts: the ${fastest.burnRate}× page (${fastest.long} and ${fastest.short} windows) fires when errors exceed ${fastest.burnRate} × the error budget, `
      + `and at ${percent}% that is ${round(fastest.burnRate * (100 - percent))}% of requests, so it could never fire. Give an objective of at least ${lowest} (an error budget under ${Number((100 / fastest.burnRate).toPrecision(3))}%)`);
  }
  return objective;
}

/** The histogram can only count "faster than X" at a bucket edge: the threshold must be one. */
function bucketBoundary(seconds: number): string {
  if (!LATENCY_BUCKETS_SECONDS.includes(seconds)) {
    throw new Error(`'latencyObjective.thresholdSeconds' (${seconds}) must be a bucket boundary of ${METRIC.requestDuration}: one of ${LATENCY_BUCKETS_SECONDS.join(', ')}`);
  }
  return String(seconds);
}

/** Recording rules for one objective: the error ratio over every window, the objective and the budget. */
export function sloRecordingRules(slo: Slo, labels: Readonly<Record<string, string>>): Rule[] {
  const common = { ...labels, slo: slo.name };
  return [
    ...SLO_WINDOWS.map((w): Rule => ({ record: errorRatioRecord(w), expr: slo.errorRatio(w), labels: common })),
    { record: 'slo:objective:ratio', expr: `vector(${round(slo.objective)})`, labels: common },
    { record: 'slo:error_budget:ratio', expr: `vector(${round(1 - slo.objective)})`, labels: common },
  ];
}

/** The series sloRecordingRules records for one objective's error ratio over `window`, of the selected service. */
export function recordedErrorRatio(slo: Slo, selector: SeriesSelector, window: SloWindow): string {
  return `${errorRatioRecord(window)}${matchers(selector, [`slo="${slo.name}"`])}`;
}

const errorRatioRecord = (window: SloWindow) => `slo:sli_error:ratio_rate${window}`;

/**
 * The burn-rate alert expressions for one objective, one per severity, over the recorded ratios. `and` matches the long
 * and short windows on all their labels: with per-version ratios, each version is judged on its own two windows.
 */
export function burnRateAlertExprs(slo: Slo, selector: SeriesSelector): Record<'critical' | 'warning', string> {
  const budget = round(1 - slo.objective);
  const condition = (a: (typeof BURN_RATE_ALERTS)[number]) =>
    `(${recordedErrorRatio(slo, selector, a.long)} > ${round(a.burnRate * budget)} and ${recordedErrorRatio(slo, selector, a.short)} > ${round(a.burnRate * budget)})`;
  const of = (severity: string) => BURN_RATE_ALERTS.filter((a) => a.severity === severity).map(condition).join(' or ');
  return { critical: of('critical'), warning: of('warning') };
}

/** Drops floating-point noise (1 - 0.999 = 0.0010000000000000009) from the numbers written into PromQL. */
export const round = (n: number) => Number(n.toPrecision(12));
