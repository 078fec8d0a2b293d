/**
 * The runtime's Prometheus metrics, named from lib/contract so the rules and autoscalers that query them can
 * never drift from what is exported.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { BATCH_SIZE_BUCKETS, LABEL, LATENCY_BUCKETS_SECONDS, METRIC, type DriftProfile } from '@modelship/contract';
import type { DriftCounts } from './model/messages';
import { Exemplars, openMetricsText, OPENMETRICS_CONTENT_TYPE } from './open-metrics';
import type { ExemplarLabels } from './tracing/tracing';

const VERSION_LABELS = [LABEL.model, LABEL.version] as const;
const REQUEST_LABELS = [LABEL.model, LABEL.version, LABEL.protocol, LABEL.code] as const;
const EXPLAIN_LABELS = [LABEL.model, LABEL.version, LABEL.explainer] as const;
const EXPLAIN_REQUEST_LABELS = [...EXPLAIN_LABELS, LABEL.code] as const;
const DRIFT_LABELS = [LABEL.model, LABEL.version, LABEL.tensor, LABEL.feature, LABEL.bin] as const;

export class RuntimeMetrics {
  readonly registry = new Registry();

  readonly requests = new Counter({
    name: METRIC.requests, help: 'Finished inference requests.', labelNames: REQUEST_LABELS, registers: [this.registry],
  });
  readonly requestDuration = new Histogram({
    name: METRIC.requestDuration, help: 'Seconds from a request\'s arrival to its response.',
    labelNames: REQUEST_LABELS, buckets: [...LATENCY_BUCKETS_SECONDS], registers: [this.registry],
  });
  readonly queueDuration = new Histogram({
    name: METRIC.queueDuration, help: 'Seconds a request waited for a batch or a free session.',
    labelNames: VERSION_LABELS, buckets: [...LATENCY_BUCKETS_SECONDS], registers: [this.registry],
  });
  readonly computeDuration = new Histogram({
    name: METRIC.computeDuration, help: 'Seconds session.run took per executed batch.',
    labelNames: VERSION_LABELS, buckets: [...LATENCY_BUCKETS_SECONDS], registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: METRIC.batchSize, help: 'Items per executed batch.',
    labelNames: VERSION_LABELS, buckets: [...BATCH_SIZE_BUCKETS], registers: [this.registry],
  });
  readonly inFlight = new Gauge({
    name: METRIC.inFlight, help: 'Inference requests accepted and not yet answered.',
    labelNames: VERSION_LABELS, registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: METRIC.queueDepth, help: 'Inference requests waiting to run.', labelNames: VERSION_LABELS, registers: [this.registry],
  });
  readonly modelReady = new Gauge({
    name: METRIC.modelReady, help: '1 when the model version can serve, else 0.', labelNames: VERSION_LABELS, registers: [this.registry],
  });
  readonly modelLoadDuration = new Gauge({
    name: METRIC.modelLoadDuration, help: 'Seconds the last load of the model version took, warm-up included.',
    labelNames: VERSION_LABELS, registers: [this.registry],
  });
  readonly modelInfo = new Gauge({
    name: METRIC.modelInfo, help: 'Always 1; the model file\'s sha256 and opset as labels.',
    labelNames: [LABEL.model, LABEL.version, LABEL.sha256, LABEL.opset], registers: [this.registry],
  });

  readonly driftBins = new Counter({
    name: METRIC.driftBins, help: 'Served rows that fell in each bin of the drift profile, per tensor and feature.',
    labelNames: DRIFT_LABELS, registers: [this.registry],
  });
  readonly driftReferenceRatio = new Gauge({
    name: METRIC.driftReferenceRatio, help: 'The drift profile\'s reference share of each bin, per tensor and feature.',
    labelNames: DRIFT_LABELS, registers: [this.registry],
  });
  // Kept apart from the inference series: an explanation is many model runs, and counting it as one request would
  // distort the latency objective and the error ratio that the alerts and the autoscaler read.
  readonly explainRequests = new Counter({
    name: METRIC.explainRequests, help: 'Explanations answered (:explain), by explainer and HTTP status.',
    labelNames: EXPLAIN_REQUEST_LABELS, registers: [this.registry],
  });
  readonly explainDuration = new Histogram({
    name: METRIC.explainDuration, help: 'Seconds from an explanation\'s arrival to its answer.',
    labelNames: EXPLAIN_LABELS, buckets: [...LATENCY_BUCKETS_SECONDS], registers: [this.registry],
  });
  // No labels: drops are the sink's, whichever model the event was of; always exported, 0 without a sink.
  readonly payloadEventsDropped = new Counter({
    name: METRIC.payloadEventsDropped, help: 'Payload events (--payload-log-url) dropped: the queue was full or the sink failed.',
    registers: [this.registry],
  });

  /** The traces of sampled requests on the latency buckets they fell in (open-metrics.ts). */
  readonly exemplars = new Exemplars({
    [METRIC.requestDuration]: LATENCY_BUCKETS_SECONDS, [METRIC.queueDuration]: LATENCY_BUCKETS_SECONDS,
  });

  private readonly versions = new Map<string, VersionMetrics>();
  /** The model_info label set of each loaded version, so that `forget` removes exactly the series it set. */
  private readonly infoLabels = new Map<string, Record<string, string>>();

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /**
   * The exposition for a scrape: OpenMetrics with exemplars when `openMetrics` (tracing is on, so there are
   * exemplars to carry) and the scraper asks for it; the Prometheus text format otherwise.
   */
  async exposition(openMetrics: boolean): Promise<{ readonly contentType: string; readonly body: string }> {
    if (openMetrics) return { contentType: OPENMETRICS_CONTENT_TYPE, body: await openMetricsText(this.registry, this.exemplars) };
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  /** Sets modelship_model_info for a loaded version: its file's sha256 and default opset. */
  setModelInfo(model: string, version: number, file: { readonly sha256: string; readonly opset?: number }): void {
    const labels = { model, version: String(version), sha256: file.sha256, opset: String(file.opset ?? '') };
    this.infoLabels.set(versionKey(model, version), labels);
    this.modelInfo.set(labels, 1);
  }

  /** Drops an unloaded version's series, so dashboards do not show a version that is gone. */
  forget(model: string, version: number): void {
    const labels = { model, version: String(version) };
    for (const metric of [this.inFlight, this.queueDepth, this.modelReady, this.modelLoadDuration]) metric.remove(labels);
    const key = versionKey(model, version);
    const info = this.infoLabels.get(key);
    if (info) this.modelInfo.remove(info);
    this.infoLabels.delete(key);
    this.versions.get(key)?.forgetDrift();
    this.versions.delete(key);
  }

  /**
   * The series of one model version, resolved once: prom-client hashes the label set on every call otherwise,
   * which at tens of thousands of requests a second is a measurable share of the main thread.
   */
  forVersion(model: string, version: number): VersionMetrics {
    const key = versionKey(model, version);
    let found = this.versions.get(key);
    if (!found) {
      found = new VersionMetrics(this, { model, version: String(version) });
      this.versions.set(key, found);
    }
    return found;
  }
}

const versionKey = (model: string, version: number) => `${model}\u0000${version}`;

type RequestSeries = { readonly count: Counter.Internal; readonly duration: Histogram.Internal<string>; readonly exemplarKey: string };

export class VersionMetrics {
  readonly inFlight: Gauge.Internal<string>;
  readonly queueDepth: Gauge.Internal<string>;
  readonly queueDuration: Histogram.Internal<string>;
  readonly computeDuration: Histogram.Internal<string>;
  readonly batchSize: Histogram.Internal<string>;
  private readonly requestSeries = new Map<string, RequestSeries>();
  /** Per tensor of the drift profile, its bin counters feature after feature (the layout of DriftCounts). */
  private driftSeries: Counter.Internal[][] = [];
  private driftLabels: Record<string, string>[] = [];
  private readonly queueExemplarKey: string;

  constructor(private readonly metrics: RuntimeMetrics, readonly labels: { readonly model: string; readonly version: string }) {
    this.queueExemplarKey = Exemplars.seriesKey(METRIC.queueDuration, labels);
    this.inFlight = metrics.inFlight.labels(labels);
    this.queueDepth = metrics.queueDepth.labels(labels);
    this.queueDuration = metrics.queueDuration.labels(labels);
    this.computeDuration = metrics.computeDuration.labels(labels);
    this.batchSize = metrics.batchSize.labels(labels);
  }

  /**
   * Exports a drift profile: its reference shares, and each bin's counter at 0, so that the ratio of served rows
   * per bin is defined from the first scrape. A profile holds features × 10 series per tensor.
   */
  setDriftProfile(profile: DriftProfile): void {
    this.forgetDrift();
    this.driftSeries = profile.tensors.map((tensor) => tensor.features.flatMap((feature) => feature.ratios.map((ratio, bin) => {
      const labels = { ...this.labels, tensor: tensor.name, feature: String(feature.index), bin: String(bin) };
      this.driftLabels.push(labels);
      this.metrics.driftReferenceRatio.set(labels, ratio);
      this.metrics.driftBins.inc(labels, 0);
      return this.metrics.driftBins.labels(labels);
    })));
  }

  /** Adds a run's per-bin counts (from the session worker) to the counters. */
  addDrift(counts: DriftCounts): void {
    for (const [t, tensor] of counts.entries()) {
      const series = this.driftSeries[t];
      if (!tensor || !series) continue;
      for (let i = 0; i < tensor.length && i < series.length; i++) if (tensor[i] > 0) series[i].inc(tensor[i]);
    }
  }

  forgetDrift(): void {
    for (const labels of this.driftLabels) {
      this.metrics.driftBins.remove(labels);
      this.metrics.driftReferenceRatio.remove(labels);
    }
    this.driftLabels = [];
    this.driftSeries = [];
  }

  /** Counts one finished explanation and how long it took. */
  explanation(explainer: string, code: number, seconds: number): void {
    const labels = { ...this.labels, explainer };
    this.metrics.explainRequests.inc({ ...labels, code: String(code) });
    this.metrics.explainDuration.observe(labels, seconds);
  }

  /** Counts one finished request and its latency; `exemplar` is its trace when tracing sampled it. */
  request(protocol: string, code: number, seconds: number, exemplar?: ExemplarLabels): void {
    const key = `${protocol} ${code}`;
    let series = this.requestSeries.get(key);
    if (!series) {
      const labels = { ...this.labels, protocol, code: String(code) };
      series = {
        count: this.metrics.requests.labels(labels), duration: this.metrics.requestDuration.labels(labels),
        exemplarKey: Exemplars.seriesKey(METRIC.requestDuration, labels),
      };
      this.requestSeries.set(key, series);
    }
    series.count.inc();
    series.duration.observe(seconds);
    if (exemplar) this.metrics.exemplars.record(METRIC.requestDuration, series.exemplarKey, seconds, exemplar);
  }

  /** How long a request waited for its run; `exemplar` is its trace when tracing sampled it. */
  observeQueue(seconds: number, exemplar?: ExemplarLabels): void {
    this.queueDuration.observe(seconds);
    if (exemplar) this.metrics.exemplars.record(METRIC.queueDuration, this.queueExemplarKey, seconds, exemplar);
  }
}
