/**
 * The runtime's Prometheus metrics, named from lib/contract so the rules and autoscalers that query them can
 * never drift from what is exported.
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { BATCH_SIZE_BUCKETS, LABEL, LATENCY_BUCKETS_SECONDS, METRIC } from '../../lib/contract/metrics';

const VERSION_LABELS = [LABEL.model, LABEL.version] as const;
const REQUEST_LABELS = [LABEL.model, LABEL.version, LABEL.protocol, LABEL.code] as const;

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

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }
}
