/**
 * One version of one model: its state, what its file and session say about it, and the queue its runs wait in.
 */
import type { ModelSettings } from '../config';
import { InferenceError } from '../errors';
import { isBatchable } from '../batcher/batch';
import { RunQueue, type QueueObserver, type QueuedRunResult } from '../batcher/run-queue';
import { InFlight } from '../in-flight';
import type { NamedTensor } from '../tensor/datatypes';
import type { Signature } from '../tensor/signature';
import type { LoadResult } from './messages';
import type { SessionWorkerClient } from './session-worker-client';

/** UNLOADING: superseded by a newer version; finishing its requests before it is unloaded. */
export type ModelState = 'LOADING' | 'READY' | 'UNAVAILABLE' | 'UNLOADING';

export class ModelVersion {
  state: ModelState = 'LOADING';
  /** Why the version is UNAVAILABLE. */
  reason: string | undefined;
  loaded: LoadResult | undefined;
  readonly queue: RunQueue;
  /** Requests being served by this version (the core counts them): what a retiring version waits for. */
  readonly inFlight = new InFlight();

  constructor(
    readonly name: string,
    readonly version: number,
    readonly path: string,
    readonly settings: ModelSettings,
    readonly worker: SessionWorkerClient,
    observer: QueueObserver,
  ) {
    this.queue = new RunQueue(this.key, settings.maxQueueSize, settings, worker, observer);
  }

  get key(): string {
    return `model '${this.name}' version ${this.version}`;
  }

  /** The signature onnxruntime reports; 503 unless the version is READY. */
  get signature(): Signature {
    this.requireReady();
    return this.loaded!.signature;
  }

  requireReady(): void {
    if (this.state !== 'READY') {
      throw new InferenceError(503, `${this.key} is not ready (${this.state.toLowerCase()}${this.reason ? `: ${this.reason}` : ''})`);
    }
  }

  async load(): Promise<LoadResult> {
    this.loaded = await this.worker.load(this.key, this.path, this.settings);
    this.queue.setBatching(this.settings.maxBatchSize > 1 && isBatchable(this.loaded.signature));
    this.state = 'READY';
    return this.loaded;
  }

  /** Stops taking new requests; those already queued finish. */
  retire(): void {
    this.state = 'UNLOADING';
  }

  fail(reason: string): void {
    this.state = 'UNAVAILABLE';
    this.reason = reason;
  }

  /** Queues one run; rejects with 503 unless READY, 429 when the queue is full, 500 when execution fails. */
  run(inputs: readonly NamedTensor[], outputs: readonly string[]): Promise<QueuedRunResult> {
    this.requireReady();
    return this.queue.submit(inputs, outputs);
  }
}
