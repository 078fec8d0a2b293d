/**
 * One version of one model: its state, what its file and session say about it, and the queue its runs wait in.
 */
import type { ModelSettings } from '../config';
import { InferenceError } from '../errors';
import { isBatchable } from '../batcher/batch';
import { BatchSizers } from '../batcher/batch-sizer';
import { RunQueue, type JobOptions, type QueueObserver, type QueuedRunResult, type RunTracer } from '../batcher/run-queue';
import { InFlight } from '../in-flight';
import type { NamedTensor } from '../tensor/datatypes';
import type { Signature } from '../tensor/signature';
import { existsSync, readFileSync } from 'node:fs';
import { checkDriftProfile, type DriftProfile } from '@modelship/contract';
import type { DriftSetup, LoadResult } from './messages';
import type { SessionWorkerClient } from './session-worker-client';

/** UNLOADING: superseded by a newer version; finishing its requests before it is unloaded. */
export type ModelState = 'LOADING' | 'READY' | 'UNAVAILABLE' | 'UNLOADING';

export class ModelVersion {
  state: ModelState = 'LOADING';
  /** Why the version is UNAVAILABLE. */
  reason: string | undefined;
  loaded: LoadResult | undefined;
  readonly queue: RunQueue;
  /**
   * The perturbed inputs of explanations: run on the same session only when `queue` is empty, never counted as
   * served traffic. Its runs teach the same batch sizers, which also size them.
   */
  readonly explainQueue: RunQueue;
  /** Requests being served by this version (the core counts them): what a retiring version waits for. */
  readonly inFlight = new InFlight();
  /** Explanations accepted and not yet answered (the core bounds them by --max-explain-queue-size). */
  readonly explanations = new InFlight();
  /** The drift profile the version counts against, from profile.json or (later) its baseline rows. */
  profile: DriftProfile | undefined;

  constructor(
    readonly name: string,
    readonly version: number,
    readonly path: string,
    readonly settings: ModelSettings,
    readonly worker: SessionWorkerClient,
    observer: QueueObserver,
    /** profile.json beside the model (repository versions), and --drift-baseline-rows. */
    readonly drift: { readonly profilePath?: string; readonly baselineRows: number } = { baselineRows: 0 },
    /** Spans for the runs of both queues, when tracing is on. */
    tracer?: RunTracer,
  ) {
    const sizers = new BatchSizers(settings.maxBatchSize);
    this.queue = new RunQueue(this.key, settings.maxQueueSize, settings, worker, observer, sizers, 'serve', tracer);
    // An explanation waits for one run at a time (explain/explanation.ts), so its queue holds at most one job per
    // accepted explanation; its runs are counted in the explanation metrics, not the inference ones.
    const unobserved: QueueObserver = { depth: () => {}, run: () => {}, unbatchable: () => {} };
    this.explainQueue = new RunQueue(this.key, settings.maxQueueSize, settings, worker, unobserved, sizers, 'explain', tracer);
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
    const setup = this.driftSetup();
    this.loaded = await this.worker.load(this.key, this.path, this.settings, setup);
    this.profile = setup && 'profile' in setup ? setup.profile : undefined;
    this.queue.setBatching(this.settings.maxBatchSize > 1 && isBatchable(this.loaded.signature));
    this.state = 'READY';
    return this.loaded;
  }

  /**
   * The profile file when there is one, checked whole (a bad one fails the load with its reason, as a bad config
   * file does); else the baseline rows to take one from, when asked for.
   */
  private driftSetup(): DriftSetup | undefined {
    const path = this.drift.profilePath;
    if (path && existsSync(path)) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(readFileSync(path, 'utf8'));
      } catch (error) {
        throw new Error(`${path}: not a JSON drift profile: ${(error as Error).message}`);
      }
      return { profile: checkDriftProfile(parsed, path) };
    }
    return this.drift.baselineRows > 0 ? { baselineRows: this.drift.baselineRows } : undefined;
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
  run(inputs: readonly NamedTensor[], outputs: readonly string[], options?: JobOptions): Promise<QueuedRunResult> {
    this.requireReady();
    return this.queue.submit(inputs, outputs, options);
  }
}
