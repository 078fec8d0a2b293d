/**
 * The one path every inference takes, whatever door it came in by: resolve the model
 * version, run it through its queue, and account for it in the metrics. The doors only decode and encode.
 */
import { performance } from 'node:perf_hooks';
import type { Protocol } from '../../lib/contract/metrics';
import { InferenceError } from './errors';
import type { RuntimeMetrics } from './metrics';
import type { ModelRegistry } from './model/registry';
import type { ModelVersion } from './model/model-version';
import type { PayloadLogger } from './payload-log';
import type { NamedTensor } from './tensor/datatypes';
import { checkOutputNames, type ShapeLimits } from './tensor/signature';

export interface InferenceResult {
  readonly outputs: readonly NamedTensor[];
}

export class InferenceService {
  private draining = false;

  constructor(
    readonly registry: ModelRegistry,
    readonly metrics: RuntimeMetrics,
    readonly limits: ShapeLimits & { readonly maxResponseBytes: number },
    private readonly payloads?: PayloadLogger,
  ) {}

  /** After this, every new request is refused with 503 (SIGTERM). */
  startDraining(): void {
    this.draining = true;
  }

  get isDraining(): boolean {
    return this.draining;
  }

  get isReady(): boolean {
    return !this.draining && this.registry.ready;
  }

  /**
   * Refuses a request before its body is read, when the answer is already known: the server is draining (503),
   * the model or version does not exist (404), or its queue is full (429, counted like any other answer). Under
   * overload this keeps rejections fast and spares the CPU that reading large bodies would cost.
   */
  admit(protocol: Protocol, model: string, version: string | undefined): void {
    if (this.draining) throw new InferenceError(503, 'the server is shutting down; retry on another replica', 1);
    const target = this.registry.resolve(model, version);
    try {
      target.queue.checkCapacity();
    } catch (error) {
      this.metrics.forVersion(target.name, target.version).request(protocol, (error as InferenceError).status, 0);
      throw error;
    }
  }

  /**
   * Runs `work` for the model version a request names, with the in-flight gauge, request counter and latency
   * histogram kept for it. `work` decodes the request, calls `run`, and encodes the response.
   */
  async serve<T>(protocol: Protocol, model: string, version: string | undefined, work: (target: ModelVersion) => Promise<T>): Promise<T> {
    // No draining check here: the doors refuse new requests at arrival (admit, the gRPC wrapper), and a request
    // accepted before SIGTERM whose body was still arriving is one the drain waits for — it must be served.
    const started = performance.now();
    const target = this.registry.resolve(model, version);
    const series = this.metrics.forVersion(target.name, target.version);
    series.inFlight.inc();
    target.inFlight++;
    let code = 200;
    try {
      return await work(target);
    } catch (error) {
      code = error instanceof InferenceError ? error.status : 500;
      throw error;
    } finally {
      series.inFlight.dec();
      target.inFlight--;
      series.request(protocol, code, (performance.now() - started) / 1000);
    }
  }

  /**
   * Refuses an answer too large to encode safely: a small request can ask a model for a huge output (a zero-sized
   * dim turned into rows, a broadcast), and encoding it on the main thread would starve every other request.
   */
  private checkResponseSize(target: ModelVersion, outputs: readonly NamedTensor[]): void {
    let bytes = 0;
    for (const output of outputs) {
      bytes += Array.isArray(output.data)
        ? (output.data as string[]).reduce((sum, text) => sum + text.length * 3 + 4, 0)
        : (output.data as { byteLength: number }).byteLength;
    }
    if (bytes > this.limits.maxResponseBytes) {
      throw new InferenceError(400, `${target.key} would answer with ${bytes} bytes of outputs, over the limit of ${this.limits.maxResponseBytes} (--max-response-bytes); ask for smaller inputs or fewer outputs`);
    }
  }

  /**
   * Queues a run of decoded inputs (the doors check input names before they decode, so nothing is allocated for
   * a request that names the wrong inputs) and records its queue time.
   */
  async run(target: ModelVersion, inputs: readonly NamedTensor[], requestedOutputs?: readonly string[]): Promise<InferenceResult> {
    const outputs = checkOutputNames(target.signature, requestedOutputs);
    // Inputs move to the session worker without a copy, so a sampled record takes its share of them first.
    const sampled = this.payloads?.sample() ? this.payloads.capture(inputs, 0.5) : undefined;
    const result = await target.run(inputs, outputs);
    this.checkResponseSize(target, result.outputs);
    if (sampled) this.payloads!.write(target.name, target.version, sampled, result.outputs);
    // Compute time and batch size are per executed run, so the queue records them (model/registry.ts).
    this.metrics.forVersion(target.name, target.version).queueDuration.observe(result.queueSeconds);
    return { outputs: result.outputs };
  }
}
