/**
 * Request tracing with OpenTelemetry. Spans are made by hand where the runtime knows what happened, rather than by
 * instrumenting HTTP and gRPC: a batched server's interesting time is between the doors, in the queue and in runs
 * that serve several requests at once, which no library instrumentation sees.
 *
 * Per inference: a server span (the request as the client sees it), a `queue` span (waiting for a batch or a free
 * session) and, per batch run, one `compute` span that links to every request it served (a child of the first one,
 * so a request's own trace shows its run). Explanations get the same; model loads get a `load` span. Probes and
 * /metrics are never traced. Spans are created only when tracing is on: off, the core holds no Tracing at all.
 */
import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Link, type Span, type SpanContext, type Tracer } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler, AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider, type Sampler,
} from '@opentelemetry/sdk-trace';
import type { Protocol } from '@modelship/contract';
import type { RunTracer, TracedRun } from '../batcher/run-queue';
import { beforeDeadline } from '../deadline';
import type { TracingConfig } from './environment';

/** The service name when OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) names none. */
export const DEFAULT_SERVICE_NAME = 'modelship';

/** Where a request's W3C trace context comes from: REST headers, or gRPC metadata as a map. */
export type TraceCarrier = Readonly<Record<string, unknown>>;

/** The trace of one sampled request, as exemplars carry it (OpenMetrics exemplar labels). */
export interface ExemplarLabels {
  readonly trace_id: string;
  readonly span_id: string;
}

export class Tracing {
  private readonly provider: TracerProvider;
  private readonly tracer: Tracer;
  private readonly propagator = new W3CTraceContextPropagator();
  /** The share of traces that start here which are kept, as the configured sampler decides for a root span. */
  private readonly rootRatio: number;

  constructor(config: TracingConfig, serverVersion: string) {
    this.rootRatio = rootRatioOf(config);
    const detected = detectResources({ detectors: [envDetector] });
    const resource = resourceFromAttributes({ 'service.name': DEFAULT_SERVICE_NAME, 'service.version': serverVersion }).merge(detected);
    const exporter = new OTLPTraceExporter({ url: config.endpoint });
    this.provider = new TracerProvider({
      resource, sampler: samplerFor(config), spanProcessors: [new BatchSpanProcessor({ exporter, ...definedOnly(config.batch) })],
    });
    this.tracer = this.provider.getTracer(DEFAULT_SERVICE_NAME, serverVersion);
  }

  /**
   * The server span of one request. A `traceparent` in the carrier makes it a child of the caller's span, and a
   * sampled parent is always traced (the parent-based samplers); `startTime` is when the request arrived, in
   * performance.now() milliseconds.
   */
  startRequest(name: string, carrier: TraceCarrier | undefined, attributes: RequestAttributes, startTime: number): RequestSpan | undefined {
    const traced = carrier?.traceparent !== undefined;
    // Most requests start a trace here and most of those are not sampled: deciding that first spares them the
    // SDK's span, ids and sampler (measured in docs/benchmarks.md). The SDK's own ratio sampler decides by the
    // trace id so that services sharing a trace agree; a trace that starts here and is not kept has no one else to agree with.
    if (!traced && !this.keepsNewTrace()) return undefined;
    const parent = traced ? this.propagator.extract(ROOT_CONTEXT, carrier, HEADER_GETTER) : ROOT_CONTEXT;
    const span = this.tracer.startSpan(name, {
      kind: SpanKind.SERVER, startTime, attributes: { model: attributes.model, protocol: attributes.protocol, ...(attributes.version ? { version: attributes.version } : {}) },
    }, parent);
    return new RequestSpan(span);
  }

  private keepsNewTrace(): boolean {
    return this.rootRatio >= 1 || (this.rootRatio > 0 && Math.random() < this.rootRatio);
  }

  /** Spans for the runs of one model version's queues: its requests' queue spans and one compute span per run. */
  runTracer(model: string, version: number): RunTracer {
    return { ran: (run) => this.traceRun(model, version, run) };
  }

  /** A model version's load (with its warm-up), from `startTime` to `endTime` (performance.now() milliseconds). */
  traceLoad(model: string, version: number, path: string, startTime: number, endTime: number, error?: string): void {
    const span = this.tracer.startSpan('load', { kind: SpanKind.INTERNAL, startTime, attributes: { model, version: String(version), 'file.path': path } }, ROOT_CONTEXT);
    if (error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR, message: error });
    span.end(endTime);
  }

  /** Sends what is still buffered, within `timeoutMillis`; spans ended later are dropped. */
  async shutdown(timeoutMillis: number): Promise<void> {
    await beforeDeadline(this.provider.shutdown().catch(() => {}), Date.now() + timeoutMillis);
  }

  private traceRun(model: string, version: number, run: TracedRun): void {
    const attributes: Attributes = { model, version: String(version), purpose: run.purpose };
    for (const job of run.jobs) {
      const parent = trace.setSpanContext(ROOT_CONTEXT, job.trace);
      this.tracer.startSpan('queue', { kind: SpanKind.INTERNAL, startTime: job.enqueuedAt, attributes }, parent).end(run.dispatchedAt);
    }
    const links: Link[] = run.jobs.map((job) => ({ context: job.trace }));
    // A child of the first request it served, so that request's trace shows the run; the others reach it by link.
    const compute = this.tracer.startSpan('compute', {
      kind: SpanKind.INTERNAL, startTime: run.dispatchedAt, links,
      attributes: { ...attributes, 'batch.requests': run.requests, 'batch.rows': run.rows },
    }, trace.setSpanContext(ROOT_CONTEXT, run.jobs[0].trace));
    if (run.error !== undefined) compute.setStatus({ code: SpanStatusCode.ERROR, message: run.error });
    compute.end(run.finishedAt);
  }
}

export interface RequestAttributes {
  readonly model: string;
  readonly protocol: Protocol;
  /** As the request named it; the version that served it is set when the span ends. */
  readonly version?: string;
}

/** A request's server span while the request is served. */
export class RequestSpan {
  /** The span's context when it is sampled (recorded and exported), for the queue and compute spans. */
  readonly sampled: SpanContext | undefined;
  /** The exemplar labels of a sampled request, for the latency histograms. */
  readonly exemplar: ExemplarLabels | undefined;

  constructor(private readonly span: Span) {
    // Whether a span records is the sampler's decision at its start, fixed from then on.
    this.sampled = span.isRecording() ? span.spanContext() : undefined;
    this.exemplar = this.sampled && { trace_id: this.sampled.traceId, span_id: this.sampled.spanId };
  }

  /**
   * Ends the span with the request's HTTP status (gRPC requests carry the status their gRPC code maps to, as the
   * metrics' `code` label does). Server errors mark the span as failed; a client's mistake does not.
   */
  end(status: number, version: number | undefined, error?: Error): void {
    if (version !== undefined) this.span.setAttribute('version', String(version));
    this.span.setAttribute('http.response.status_code', status);
    if (status >= 500) this.span.setStatus({ code: SpanStatusCode.ERROR, message: error?.message });
    this.span.end();
  }
}

/** Headers as fastify and grpc-js give them: lower-case names, a value or a list of values. */
const HEADER_GETTER = {
  keys: (carrier: TraceCarrier) => Object.keys(carrier),
  get: (carrier: TraceCarrier, key: string) => {
    const value = carrier[key];
    if (typeof value === 'string') return value;
    return Array.isArray(value) && value.every((item) => typeof item === 'string') ? value as string[] : undefined;
  },
};

/** What share of new traces (no parent) a sampler keeps. */
function rootRatioOf(config: TracingConfig): number {
  switch (config.sampler) {
    case 'always_on':
    case 'parentbased_always_on': return 1;
    case 'always_off':
    case 'parentbased_always_off': return 0;
    case 'traceidratio':
    case 'parentbased_traceidratio': return config.ratio;
  }
}

/** The settings given, without the unset ones (which would hide the SDK's defaults). */
function definedOnly<T extends object>(settings: T): Partial<T> {
  return Object.fromEntries(Object.entries(settings).filter(([, value]) => value !== undefined)) as Partial<T>;
}

/**
 * The SDK's sampler. Requests that start a trace are decided before the SDK sees them (Tracing.keepsNewTrace), so
 * a span without a parent that reaches it is kept: a request already chosen, or a model load (always traced unless
 * the sampler keeps nothing). Spans with a parent follow the configured sampler's rule: the parent's decision for
 * the parent-based ones, the trace id's ratio for a caller's span under `traceidratio`, and always the request's
 * own decision for its queue and compute spans.
 */
function samplerFor(config: TracingConfig): Sampler {
  const root = rootRatioOf(config) > 0 ? new AlwaysOnSampler() : new AlwaysOffSampler();
  switch (config.sampler) {
    case 'always_on': return new AlwaysOnSampler();
    case 'always_off': return new AlwaysOffSampler();
    case 'traceidratio': {
      const ratio = new TraceIdRatioBasedSampler(config.ratio);
      return new ParentBasedSampler({ root, remoteParentSampled: ratio, remoteParentNotSampled: ratio });
    }
    case 'parentbased_always_on':
    case 'parentbased_always_off':
    case 'parentbased_traceidratio': return new ParentBasedSampler({ root });
  }
}
