/**
 * The two checks a canary analysis runs, built from the SLO expressions ModelMonitoring records, narrowed to the
 * canary's model version: the share of its requests that did not fail, and the share answered within the latency
 * objective's threshold. A progressive-delivery tool evaluates them once per interval and compares each with its
 * objective, so a canary is promoted on the same definition of "good" its alerts use.
 */
import { LABEL } from '@modelship/contract';
import type { SeriesSelector } from './promql';
import { availabilitySlo, latencySlo, PER_VERSION_LABELS } from './rules/slo';

export interface CanaryCheck {
  /** A short name the tools show: `success-rate` or `latency`. */
  readonly name: 'success-rate' | 'latency';
  /** PromQL returning one series, the share of good requests (0 to 1) over `window`. */
  readonly query: string;
  /** The lowest acceptable share: the objective as a fraction, e.g. 0.999. */
  readonly min: number;
}

export interface CanaryObjectives {
  /** Percent of requests that must not fail with a server error, e.g. 99.9. */
  readonly availabilityPercent: number;
  /** Requests faster than `thresholdSeconds` (a bucket boundary) must be at least `percent` of them. */
  readonly latency: { readonly thresholdSeconds: number; readonly percent: number };
}

/** The series of one model version of a service: what separates a canary's requests from stable's. */
export function versionSelector(service: SeriesSelector, model: string, version: string): SeriesSelector {
  return { ...service, labels: { ...service.labels, [LABEL.model]: model, [LABEL.version]: version } };
}

/**
 * The checks over `window` (a Prometheus duration, or a placeholder the tool substitutes, such as Flagger's
 * `{{ interval }}`). Each is `1 - ` the SLO's error ratio, split by model and version as ModelMonitoring splits it
 * by default: with the selector narrowed to one version, that is one series.
 */
export function canaryChecks(selector: SeriesSelector, objectives: CanaryObjectives, window: string): CanaryCheck[] {
  const availability = availabilitySlo(selector, objectives.availabilityPercent, PER_VERSION_LABELS);
  const latency = latencySlo(selector, objectives.latency.percent, objectives.latency.thresholdSeconds, PER_VERSION_LABELS);
  return [
    { name: 'success-rate', query: `1 - (${availability.errorRatio(window)})`, min: availability.objective },
    { name: 'latency', query: `1 - (${latency.errorRatio(window)})`, min: latency.objective },
  ];
}
