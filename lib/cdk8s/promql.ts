/**
 * PromQL over the runtime's metrics, built from the names in lib/contract/metrics.ts so that no metric name is
 * spelled twice. ModelService's `metricXxx()` helpers, ModelAutoscaler and ModelMonitoring all use these.
 */
import { METRIC } from '@modelship/contract';

/** Label matchers that pick one service's series, as the Prometheus Operator labels scraped targets. */
export interface SeriesSelector {
  readonly namespace?: string;
  readonly service: string;
  /**
   * Further labels the series must carry, narrowing the service's series to some of them: e.g. one model version
   * (`{ model: 'ocr', version: '2' }`), so that the same expressions judge a canary apart from stable.
   * @default - every series of the service
   */
  readonly labels?: Readonly<Record<string, string>>;
}

export function matchers(selector: SeriesSelector, extra: string[] = []): string {
  const narrowing = Object.entries(selector.labels ?? {}).map(([name, value]) => `${name}="${value}"`);
  return `{${namespaceMatchers(selector, [`service="${selector.service}"`, ...narrowing, ...extra])}}`;
}

/**
 * Matchers, without braces, for series that carry no `service` label (kube-state-metrics, cAdvisor): the
 * selector's namespace, if any, then `extra`.
 */
export function namespaceMatchers(selector: SeriesSelector, extra: string[]): string {
  return [...(selector.namespace ? [`namespace="${selector.namespace}"`] : []), ...extra].join(',');
}

/** The names of a Deployment's pods: `<deployment>-<replicaset hash>-<pod hash>`. */
export function podNamePattern(deploymentName: string): string {
  return `${deploymentName}-[a-z0-9]+-[a-z0-9]+`;
}

/** namespaceMatchers for one container of the service's pods, by pod-name pattern (podNamePattern) and name. */
export function containerMatchers(selector: SeriesSelector, podPattern: string, containerName: string): string {
  return namespaceMatchers(selector, [`pod=~"${podPattern}"`, `container="${containerName}"`]);
}

/** namespaceMatchers for kube-state-metrics' series of the service's Deployment. */
export function deploymentMatchers(selector: SeriesSelector, deploymentName: string): string {
  return namespaceMatchers(selector, [`deployment="${deploymentName}"`]);
}

/**
 * `sum`, or `sum by (<labels>) ` when `by` names any: one series per value of those labels (e.g. per model version)
 * instead of one for the whole service.
 */
export function sumBy(by: readonly string[] = []): string {
  return by.length === 0 ? 'sum' : `sum by (${by.join(', ')}) `;
}

/** Requests per second, all codes: one series, or one per value of the `by` labels. */
export function requestRate(selector: SeriesSelector, window = '5m', by: readonly string[] = []): string {
  return `${sumBy(by)}(rate(${METRIC.requests}${matchers(selector)}[${window}]))`;
}

/**
 * Share of requests answered with a server error (`code=~"5.."`, both protocols): one series, or one per value of the
 * `by` labels, each the share of its own requests. The runtime creates a code's series at its first request, so a
 * version that never failed has no 5xx series: its errors count as 0 (`or` its requests × 0) rather than leaving it
 * without a ratio, next to a failing version that has one.
 */
export function errorRatio(selector: SeriesSelector, window = '5m', by: readonly string[] = []): string {
  const sum = sumBy(by);
  const requests = `${sum}(rate(${METRIC.requests}${matchers(selector)}[${window}]))`;
  return `(${sum}(rate(${METRIC.requests}${matchers(selector, ['code=~"5.."'])}[${window}])) or ${requests} * 0) / ${requests}`;
}

/** A latency quantile in seconds from the request-duration histogram: one series, or one per value of the `by` labels. */
export function latencyQuantile(selector: SeriesSelector, quantile: number, window = '5m', by: readonly string[] = []): string {
  return histogramQuantile(METRIC.requestDuration, selector, quantile, window, by);
}

/**
 * A quantile of one of the runtime's histograms (`metric` without the `_bucket` suffix), over the service's pods:
 * one series, or one per value of the `by` labels (e.g. per explainer).
 */
export function histogramQuantile(metric: string, selector: SeriesSelector, quantile: number, window = '5m', by: readonly string[] = []): string {
  if (!(quantile > 0 && quantile < 1)) throw new Error(`quantile (${quantile}) must be between 0 and 1, e.g. 0.99`);
  return `histogram_quantile(${quantile}, sum by (${['le', ...by].join(', ')}) (rate(${metric}_bucket${matchers(selector)}[${window}])))`;
}

/** Requests accepted and not yet answered, summed over the service's pods. */
export function inFlightTotal(selector: SeriesSelector): string {
  return `sum(${METRIC.inFlight}${matchers(selector)})`;
}

/** Requests in flight per pod, averaged over the pods that report. */
export function inFlightPerPod(selector: SeriesSelector): string {
  return `${inFlightTotal(selector)} / count(count by (pod) (${METRIC.inFlight}${matchers(selector)}))`;
}
