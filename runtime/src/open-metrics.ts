/**
 * The OpenMetrics exposition of the runtime's metrics, with exemplars: the trace of a sampled request on the
 * latency bucket it fell in, so that a slow bucket on a dashboard leads to a trace of a request that was slow.
 *
 * prom-client renders the Prometheus text format well but not OpenMetrics for counters already named `_total` (it
 * appends another `_total`), and its exemplar API changes every observe call of a histogram. So exemplars are kept
 * here, only for the requests tracing sampled, and this renders the registry's values in OpenMetrics; the sample
 * names and label values are the ones the text format has, so the series Prometheus stores are the same either way.
 */
import type { MetricObjectWithValues, MetricValue, Registry } from 'prom-client';
import type { ExemplarLabels } from './tracing/tracing';

export const OPENMETRICS_CONTENT_TYPE = 'application/openmetrics-text; version=1.0.0; charset=utf-8';

/** Whether a scraper's Accept header asks for OpenMetrics (Prometheus does when it stores exemplars). */
export function acceptsOpenMetrics(accept: string | undefined): boolean {
  return accept !== undefined && /application\/openmetrics-text/i.test(accept);
}

interface Exemplar {
  readonly labels: ExemplarLabels;
  readonly value: number;
  /** Seconds since the epoch. */
  readonly timestamp: number;
}

/**
 * The latest exemplar of each bucket of each histogram series that saw a sampled request. Kept as long as the
 * series: the latency histograms outlive an unloaded version, as counters do.
 */
export class Exemplars {
  private readonly byBucket = new Map<string, Exemplar>();

  /** Histogram buckets' upper bounds, per metric name, to find the bucket a value falls in. */
  constructor(private readonly bounds: Readonly<Record<string, readonly number[]>>) {}

  /** The key of a series: its metric name and label values (without `le`), in name order. */
  static seriesKey(metric: string, labels: Readonly<Record<string, string | number>>): string {
    return `${metric}${Object.keys(labels).filter((name) => name !== 'le').sort().map((name) => `\u0000${name}=${labels[name]}`).join('')}`;
  }

  record(metric: string, seriesKey: string, value: number, labels: ExemplarLabels): void {
    const bounds = this.bounds[metric] ?? [];
    const bucket = bounds.findIndex((bound) => value <= bound);
    const le = bucket < 0 ? '+Inf' : String(bounds[bucket]);
    this.byBucket.set(`${seriesKey}\u0000le=${le}`, { labels, value, timestamp: Date.now() / 1000 });
  }

  find(metric: string, labels: Readonly<Record<string, string | number>>): Exemplar | undefined {
    if (this.byBucket.size === 0) return undefined;
    return this.byBucket.get(`${Exemplars.seriesKey(metric, labels)}\u0000le=${labels.le === Infinity ? '+Inf' : labels.le}`);
  }
}

/** The registry's metrics in the OpenMetrics text format, with the exemplars of histogram buckets. */
export async function openMetricsText(registry: Registry, exemplars: Exemplars): Promise<string> {
  const lines: string[] = [];
  for (const metric of await registry.getMetricsAsJSON() as MetricObjectWithValues<MetricValue<string>>[]) {
    const type = String(metric.type);
    // A counter's family is named without `_total`; its samples keep it.
    const family = type === 'counter' ? metric.name.replace(/_total$/, '') : metric.name;
    lines.push(`# HELP ${family} ${escapeText(metric.help)}`, `# TYPE ${family} ${type === 'counter' || type === 'gauge' || type === 'histogram' || type === 'summary' ? type : 'unknown'}`);
    for (const sample of metric.values) {
      const name = (sample as { metricName?: string }).metricName ?? (type === 'counter' ? `${family}_total` : metric.name);
      const labels = sample.labels as Record<string, string | number>;
      let line = `${name}${formatLabels(labels)} ${formatValue(sample.value)}`;
      if (type === 'histogram' && name.endsWith('_bucket')) {
        const exemplar = exemplars.find(metric.name, labels);
        if (exemplar) line += ` # ${formatLabels(exemplar.labels as unknown as Record<string, string>)} ${formatValue(exemplar.value)} ${exemplar.timestamp.toFixed(3)}`;
      }
      lines.push(line);
    }
  }
  lines.push('# EOF');
  return `${lines.join('\n')}\n`;
}

function formatLabels(labels: Readonly<Record<string, string | number>>): string {
  const names = Object.keys(labels);
  if (names.length === 0) return '';
  return `{${names.map((name) => `${name}="${escapeText(labels[name] === Infinity ? '+Inf' : String(labels[name]))}"`).join(',')}}`;
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

/** OpenMetrics escapes label values and help text alike: backslash, newline, double quote. */
const escapeText = (value: string) => value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
