/**
 * The one path every inference takes, whatever door it came in by: resolve the model version, translate the
 * request and check it against the signature before anything is allocated, decode, queue, run, count, encode.
 * The doors only move bytes to and from this path (their codecs translate), so whatever must see every request
 * (metrics, payload records) hooks in here, once.
 */
import { performance } from 'node:perf_hooks';
import { PLATFORM, type Protocol } from '@modelship/contract';
import { InferenceError, notFound } from '../errors';
import { explain, explainerFor, type ExplanationAnswer } from '../explain/explanation';
import { parseExplainParameters } from '../explain/parameters';
import { InFlight } from '../in-flight';
import type { RuntimeMetrics } from '../metrics';
import type { ModelRegistry } from '../model/registry';
import type { ModelVersion } from '../model/model-version';
import type { PayloadEventSink } from '../payload-events';
import type { PayloadLogger } from '../payload-log';
import type { RequestSpan, TraceCarrier, Tracing } from '../tracing/tracing';
import { dataBytes, type NamedTensor } from '../tensor/datatypes';
import { publicShape, type ShapeLimits, type TensorSpec } from '../tensor/signature';
import type { CodecRunner } from './codec-runner';
import type { Codec } from './request';

export interface InferenceLimits extends ShapeLimits {
  /** Largest raw size of the outputs one request may be answered with. */
  readonly maxResponseBytes: number;
  readonly explain: ExplainSettings;
}

export interface ExplainSettings {
  /** --max-explain-samples: perturbed inputs per explanation. */
  readonly maxSamples: number;
  /** --max-explain-queue-size: explanations per model version at once; 0 turns :explain off. */
  readonly maxQueueSize: number;
  /** --explain-timeout */
  readonly timeoutSeconds: number;
}

/** Which model and version a request addresses, and by which protocol (for the metrics). */
export interface Addressed {
  readonly protocol: Protocol;
  readonly model: string;
  /** Undefined: the model's default version. */
  readonly version?: string;
  /** The request's headers (REST) or metadata (gRPC), where a W3C `traceparent` may come from. */
  readonly carrier?: TraceCarrier;
  /**
   * When the request arrived (performance.now() milliseconds), if before the core saw it: the server span starts
   * there, so reading the body shows in the trace.
   */
  readonly arrivedAt?: number;
}

/** What sees every request besides the metrics; each is optional and costs nothing when absent. */
export interface CoreHooks {
  /** Sampled payloads as log records (--payload-log-percent without a sink). */
  readonly payloads?: PayloadLogger;
  /** Sampled payloads as events to a sink (--payload-log-url). */
  readonly events?: PayloadEventSink;
  /** OpenTelemetry spans (tracing/environment.ts: on when an OTLP endpoint is set). */
  readonly tracing?: Tracing;
}

/** Server span names, as OpenTelemetry names HTTP (`METHOD route`) and gRPC (`service/method`) server spans. */
const SPAN_NAMES: Readonly<Record<Codec<unknown, unknown, unknown>['name'], { readonly infer: string; readonly explain: string }>> = {
  'v2-rest': { infer: 'POST /v2/models/{model}/infer', explain: 'POST /v2/models/{model}/explain' },
  'tfserving-rest': { infer: 'POST /v1/models/{model}:predict', explain: 'POST /v1/models/{model}:explain' },
  'v2-grpc': { infer: 'inference.GRPCInferenceService/ModelInfer', explain: 'inference.GRPCInferenceService/ModelInfer' },
};

export const SERVER_NAME = 'modelship';

/** A tensor of a model's signature as the metadata endpoints present it: -1 for a dynamic dimension. */
export interface TensorMetadata {
  readonly name: string;
  readonly datatype: string;
  readonly shape: number[];
}

export interface ModelMetadata {
  readonly name: string;
  readonly versions: string[];
  readonly version: number;
  readonly platform: string;
  readonly inputs: TensorMetadata[];
  readonly outputs: TensorMetadata[];
  readonly state: ModelVersion['state'];
  readonly reason?: string;
  /** The signature as loaded, for formats that describe it their own way (TF Serving). */
  readonly signature?: ModelVersion['signature'];
}

export class InferenceCore {
  private draining = false;

  constructor(
    readonly registry: ModelRegistry,
    readonly metrics: RuntimeMetrics,
    readonly limits: InferenceLimits,
    private readonly codecs: CodecRunner,
    private readonly hooks: CoreHooks = {},
  ) {}

  /** OpenTelemetry spans, when tracing is on. */
  get tracing(): Tracing | undefined {
    return this.hooks.tracing;
  }

  /** From now on readiness answers 503 (SIGTERM); the transports decide which requests are still served. */
  startDraining(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  get isReady(): boolean {
    return !this.draining && this.registry.ready;
  }

  /** Inference requests being served now, per protocol. */
  readonly inFlight: Readonly<Record<Protocol, InFlight>> = { rest: new InFlight(), grpc: new InFlight() };

  /** Why the server is not ready, for the readiness answer; undefined when it is. */
  get notReadyReason(): string | undefined {
    if (this.isReady) return undefined;
    if (this.draining) return 'the server is shutting down';
    const loading = this.registry.loadingCount;
    return loading > 0 ? `${loading} model version(s) still loading` : 'no model version could be loaded';
  }

  /**
   * Refuses a request before its body is read, when the answer is already known: the model or version does not
   * exist (404), or its queue is full (429, counted like any other answer). Under overload this keeps rejections
   * fast and spares the CPU that reading large bodies would cost.
   */
  admit(addressed: Addressed): void {
    const target = this.registry.resolve(addressed.model, addressed.version);
    try {
      target.queue.checkCapacity();
    } catch (error) {
      this.metrics.forVersion(target.name, target.version).request(addressed.protocol, (error as InferenceError).status, 0);
      throw error;
    }
  }

  /** One inference, from the door's wire form to its answer; errors are InferenceErrors the door translates. */
  async infer<Wire, Meta, Encoded>(codec: Codec<Wire, Meta, Encoded>, wire: Wire, addressed: Addressed): Promise<Encoded> {
    const started = performance.now();
    const span = this.startSpan(SPAN_NAMES[codec.name].infer, addressed, started);
    const target = this.resolveTraced(addressed, span);
    const { payloads, events } = this.hooks;
    const series = this.metrics.forVersion(target.name, target.version);
    series.inFlight.inc();
    const finishedVersion = target.inFlight.start();
    const finished = this.inFlight[addressed.protocol].start();
    let code = 200;
    let failure: Error | undefined;
    try {
      const { decoded, meta } = await this.codecs.decode(codec, wire, target.signature, this.limits);
      // Inputs move to the session worker without a copy, so a sampled record takes its share of them first.
      const sampled = payloads?.sample() ? payloads.capture(decoded.inputs, 0.5) : undefined;
      // The sink only queues here; sending is its own loop's, so a slow sink never holds the answer back.
      const event = events?.sample() ? events.request(target.name, decoded.inputs) : undefined;
      const trace = span?.sampled;
      const result = await target.run(decoded.inputs, decoded.outputs, trace ? { trace } : undefined);
      this.checkResponseSize(target, result.outputs);
      if (sampled) payloads!.write(target.name, target.version, sampled, result.outputs);
      if (event) events!.response(event, target.version, result.outputs);
      // Compute time and batch size are per executed run, so the queue records them (model/registry.ts).
      series.observeQueue(result.queueSeconds, span?.exemplar);
      return await this.codecs.encode(codec, { model: target.name, version: target.version, outputs: result.outputs }, meta);
    } catch (error) {
      failure = error as Error;
      code = error instanceof InferenceError ? error.status : 500;
      throw error;
    } finally {
      series.inFlight.dec();
      finishedVersion();
      finished();
      series.request(addressed.protocol, code, (performance.now() - started) / 1000, span?.exemplar);
      span?.end(code, target.version, failure);
    }
  }

  /** The version a request addresses; an unknown one (404) still ends the request's span with its status. */
  private resolveTraced(addressed: Addressed, span: RequestSpan | undefined): ModelVersion {
    try {
      return this.registry.resolve(addressed.model, addressed.version);
    } catch (error) {
      span?.end(error instanceof InferenceError ? error.status : 500, undefined, error as Error);
      throw error;
    }
  }

  /** The request's server span, when tracing is on. */
  private startSpan(name: string, addressed: Addressed, started: number): RequestSpan | undefined {
    return this.hooks.tracing?.startRequest(name, addressed.carrier, addressed, addressed.arrivedAt ?? started);
  }

  /**
   * Refuses an explanation before its body is read, when the answer is already known: 404 for an unknown model or
   * version or with explanations turned off, 429 when the version already runs as many as it may.
   */
  admitExplanation(addressed: Addressed): void {
    const target = this.registry.resolve(addressed.model, addressed.version);
    try {
      this.checkExplainCapacity(target);
    } catch (error) {
      const { status } = error as InferenceError;
      if (status === 429) this.metrics.forVersion(target.name, target.version).explanation('none', status, 0);
      throw error;
    }
  }

  private checkExplainCapacity(target: ModelVersion): void {
    const { maxQueueSize } = this.limits.explain;
    if (maxQueueSize === 0) throw notFound('explanations are turned off on this server (--max-explain-queue-size 0)');
    if (target.explanations.count >= maxQueueSize) {
      throw new InferenceError(429, `${target.key} is already running ${target.explanations.count} explanation(s), its limit (--max-explain-queue-size); retry later`, 1);
    }
  }

  /**
   * One explanation: the request decoded and checked as an inference would be, then many runs of perturbed inputs
   * at a lower priority than inference (explain/explanation.ts). Counted in the explanation metrics only, so that
   * the inference latency objective and error ratio stay about inference.
   */
  async explain<Wire, Meta, Encoded>(codec: Codec<Wire, Meta, Encoded>, wire: Wire, addressed: Addressed): Promise<ExplanationAnswer> {
    const started = performance.now();
    const span = this.startSpan(SPAN_NAMES[codec.name].explain, addressed, started);
    const target = this.resolveTraced(addressed, span);
    const { timeoutSeconds, maxSamples } = this.limits.explain;
    const deadline = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const finished: Array<() => void> = [];
    let explainer = 'none';
    let code = 200;
    let failure: Error | undefined;
    try {
      this.checkExplainCapacity(target);
      finished.push(target.explanations.start(), target.inFlight.start());
      timer = setTimeout(() => deadline.abort(new InferenceError(503, `the explanation did not finish within ${timeoutSeconds} s (--explain-timeout): its runs wait while inference keeps ${target.key} busy, and take longer with more samples; retry later or ask for fewer`, 1)), timeoutSeconds * 1000);
      const { decoded } = await this.codecs.decode(codec, wire, target.signature, this.limits);
      const parameters = parseExplainParameters(decoded.parameters, maxSamples);
      explainer = explainerFor(target, decoded.inputs, parameters);
      const trace = span?.sampled;
      return await explain(target, decoded.inputs, parameters, { maxSamples }, { signal: deadline.signal, ...(trace ? { trace } : {}) });
    } catch (error) {
      failure = asInferenceError(error);
      code = failure instanceof InferenceError ? failure.status : 500;
      throw failure;
    } finally {
      clearTimeout(timer);
      for (const finish of finished) finish();
      this.metrics.forVersion(target.name, target.version).explanation(explainer, code, (performance.now() - started) / 1000);
      span?.end(code, target.version, failure);
    }
  }

  /** Metadata of the version a request names (or the default one), for every protocol's metadata endpoint. */
  modelMetadata(model: string, version: string | undefined): ModelMetadata {
    const versions = this.registry.get(model).versions.map((v) => String(v.version));
    const target = this.registry.resolve(model, version);
    const signature = target.loaded?.signature;
    return {
      name: target.name,
      versions,
      version: target.version,
      platform: PLATFORM,
      inputs: signature?.inputs.map(tensorMetadata) ?? [],
      outputs: signature?.outputs.map(tensorMetadata) ?? [],
      state: target.state,
      ...(target.reason ? { reason: target.reason } : {}),
      ...(signature ? { signature } : {}),
    };
  }

  /**
   * Throws unless a model version can serve now: 404 for an unknown model or version, 503 (with the reason) while
   * it is loading or failed, or the server is draining.
   */
  checkModelReady(model: string, version: string | undefined): void {
    const target = this.registry.resolve(model, version);
    if (this.draining) throw new InferenceError(503, `${target.key} is not ready: the server is shutting down`, 1);
    target.requireReady();
  }

  /** checkModelReady as a yes or no; an unknown model or version is still a 404. */
  modelReady(model: string, version: string | undefined): boolean {
    try {
      this.checkModelReady(model, version);
      return true;
    } catch (error) {
      if (error instanceof InferenceError && error.status === 503) return false;
      throw error;
    }
  }

  /**
   * Refuses an answer too large to encode safely: a small request can ask a model for a huge output (a zero-sized
   * dim turned into rows, a broadcast), and encoding it would starve every other request.
   */
  private checkResponseSize(target: ModelVersion, outputs: readonly NamedTensor[]): void {
    let bytes = 0;
    for (const output of outputs) {
      // A string element takes up to three UTF-8 bytes per UTF-16 unit, plus its length.
      bytes += Array.isArray(output.data) ? dataBytes(output.data) * 3 + 4 * output.data.length : dataBytes(output.data);
    }
    if (bytes > this.limits.maxResponseBytes) {
      throw new InferenceError(400, `${target.key} would answer with ${bytes} bytes of outputs, over the limit of ${this.limits.maxResponseBytes} (--max-response-bytes); ask for smaller inputs or fewer outputs`);
    }
  }
}

/**
 * The explainers check their own arguments with RangeError and TypeError (explain/common.ts): everything reaching
 * them came from the request, so those are the client's to fix.
 */
function asInferenceError(error: unknown): InferenceError | Error {
  if (error instanceof InferenceError) return error;
  if (error instanceof RangeError || error instanceof TypeError) return new InferenceError(400, `cannot explain this request: ${error.message}`);
  return error as Error;
}

function tensorMetadata(spec: TensorSpec): TensorMetadata {
  return { name: spec.name, datatype: spec.datatype ?? spec.ortType.toUpperCase(), shape: publicShape(spec) };
}
