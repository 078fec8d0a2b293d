/**
 * A bounded queue of runs for one model version, and the batching policy that decides what goes into the next
 * run. Past its capacity a request is refused at once with 429, so that overload shows up as fast rejections a
 * client can retry elsewhere, never as latency without bound.
 */
import { performance } from 'node:perf_hooks';
import type { SpanContext } from '@opentelemetry/api';
import { InferenceError } from '../errors';
import type { NamedTensor } from '../tensor/datatypes';
import { Batch, canMerge, rowsOf, type QueuedRunResult, type RunJob, type RunOutcome } from './batch';
import { BatchSizers } from './batch-sizer';
import type { RunResult } from '../model/messages';

export type { QueuedRunResult } from './batch';

/** Whoever executes jobs: told when a queue has work, it takes batches when it is free. */
export interface JobExecutor {
  notify(queue: RunQueue): void;
}

export interface QueueObserver {
  depth(depth: number): void;
  /** One session.run finished: its rows and how long it took. */
  run(rows: number, computeSeconds: number): void;
  /** The model's outputs did not follow a merged batch; batching is now off for it. */
  unbatchable(): void;
  /** A run's served rows per drift bin, and the baseline profile when this run completed it (model/messages.ts). */
  drift?(result: Pick<RunResult, 'drift' | 'baselineProfile'>): void;
}

/** What a request's run carries besides its tensors. */
export interface JobOptions {
  /** Withdraws the job (rejecting with the signal's reason) while it still waits. */
  readonly signal?: AbortSignal;
  /** The sampled span of the request the job serves: its queue and compute spans are made for it. */
  readonly trace?: SpanContext;
}

/** Told of every run that served at least one traced job (tracing/tracing.ts makes its spans). */
export interface RunTracer {
  ran(run: TracedRun): void;
}

/** One run as tracing sees it; times in performance.now() milliseconds. */
export interface TracedRun {
  readonly purpose: QueuePurpose;
  /** The jobs that carried a trace, in queue order, and when each was queued. */
  readonly jobs: readonly { readonly trace: SpanContext; readonly enqueuedAt: number }[];
  /** Requests and rows the run served, traced or not. */
  readonly requests: number;
  readonly rows: number;
  readonly dispatchedAt: number;
  readonly finishedAt: number;
  /** Why the run failed. */
  readonly error?: string;
}

export interface BatchPolicy {
  /** Most rows per run; 1 turns batching off. */
  readonly maxBatchSize: number;
  /** How long the oldest job may wait for others to fill a batch. */
  readonly maxQueueDelayMicroseconds: number;
}

/**
 * What a queue's runs are for. `serve`: requests being answered. `explain`: an explanation's perturbed inputs,
 * which run only when no `serve` queue of the same session worker has work (so they never delay inference by more
 * than the one run in progress), are never merged with each other, and are not served traffic (no drift counts).
 */
export type QueuePurpose = 'serve' | 'explain';

export class RunQueue {
  private readonly jobs: RunJob[] = [];
  private rowsQueued = 0;
  /** Set once the model is known to have a batch dimension (after load); cleared if it proves otherwise. */
  private batchable = false;

  constructor(
    readonly key: string,
    private readonly capacity: number,
    private readonly policy: BatchPolicy,
    private readonly executor: JobExecutor,
    private readonly observer: QueueObserver,
    /** Learned per row shape from every run of the model version, whichever queue it came from. */
    readonly sizers: BatchSizers = new BatchSizers(policy.maxBatchSize),
    readonly purpose: QueuePurpose = 'serve',
    /** Set when tracing is on. */
    private readonly tracer?: RunTracer,
  ) {}

  /** Whether requests may share a run: set from the loaded model's signature. */
  setBatching(enabled: boolean): void {
    this.batchable = enabled;
  }

  get batching(): boolean {
    return this.batchable;
  }

  /** The model's outputs did not follow a merged batch: from now on its requests run one by one. */
  stopBatching(): void {
    if (!this.batchable) return;
    this.batchable = false;
    this.observer.unbatchable();
  }

  get depth(): number {
    return this.jobs.length;
  }

  /** Throws the 429 a new request would get now; the doors call it before reading a body, to refuse cheaply. */
  checkCapacity(): void {
    if (this.jobs.length >= this.capacity) {
      throw new InferenceError(429, `the queue of ${this.key} is full (${this.capacity} requests waiting, --max-queue-size); retry later`, 1);
    }
  }

  /** Queues one run; `options.signal` withdraws it (rejecting with the signal's reason) while it still waits. */
  submit(inputs: readonly NamedTensor[], outputs: readonly string[], options: JobOptions = {}): Promise<QueuedRunResult> {
    const { signal, trace } = options;
    this.checkCapacity();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise<QueuedRunResult>((resolve, reject) => {
      const rows = this.batchable ? rowsOf(inputs) : undefined;
      const withdraw = () => this.withdraw(job, signal!.reason);
      const settled = () => signal?.removeEventListener('abort', withdraw);
      const job: RunJob = {
        inputs, outputs, rows, enqueuedAt: performance.now(), trace,
        resolve: (result) => { settled(); resolve(result); },
        reject: (error) => { settled(); reject(error); },
      };
      signal?.addEventListener('abort', withdraw, { once: true });
      this.jobs.push(job);
      this.rowsQueued += rows ?? this.policy.maxBatchSize;
      this.observer.depth(this.jobs.length);
      this.executor.notify(this);
    });
  }

  private withdraw(job: RunJob, reason: unknown): void {
    const index = this.jobs.indexOf(job);
    if (index < 0) return;
    this.jobs.splice(index, 1);
    this.rowsQueued -= job.rows ?? this.policy.maxBatchSize;
    this.observer.depth(this.jobs.length);
    job.reject(reason instanceof Error ? reason : new Error(String(reason)));
  }

  /**
   * Milliseconds until the head job should run: 0 when batching is off, the queue already fills a batch, or the
   * head has waited its `maxQueueDelayMicroseconds`.
   */
  waitMilliseconds(now = performance.now()): number {
    const head = this.jobs[0];
    if (!head || !this.batchable || head.rows === undefined || this.rowsQueued >= this.sizers.for(head.inputs).limit) return 0;
    return Math.max(0, head.enqueuedAt + this.policy.maxQueueDelayMicroseconds / 1000 - now);
  }

  /**
   * The next run: the head job plus the jobs after it that can merge with it, in arrival order, up to as many rows
   * as the batch sizer finds worth it (at most `maxBatchSize`). A job that cannot merge ends the batch, so no
   * request is overtaken.
   */
  takeBatch(): Batch | undefined {
    const head = this.jobs.shift();
    if (!head) return undefined;
    const batch = [head];
    let rows = head.rows ?? this.policy.maxBatchSize;
    if (this.batchable && head.rows !== undefined) {
      const limit = this.sizers.for(head.inputs).nextLimit();
      while (this.jobs.length > 0) {
        const next = this.jobs[0];
        if (next.rows === undefined || rows + next.rows > limit
          || !canMerge(head.inputs, head.outputs, next.inputs, next.outputs)) break;
        batch.push(this.jobs.shift()!);
        rows += next.rows;
      }
    }
    this.rowsQueued -= batch.reduce((sum, job) => sum + (job.rows ?? this.policy.maxBatchSize), 0);
    this.observer.depth(this.jobs.length);
    return new Batch(batch);
  }

  /** Hands a run's drift counts (or new baseline profile) to whoever exports them. */
  recordDrift(result: Pick<RunResult, 'drift' | 'baselineProfile'>): void {
    if (result.drift || result.baselineProfile) this.observer.drift?.(result);
  }

  /** One session.run of `rows` rows of `inputs`' shape finished: its cost feeds the batch sizer and the metrics. */
  recordRun(rows: number, computeSeconds: number, inputs: readonly NamedTensor[]): void {
    this.sizers.for(inputs).record(rows, computeSeconds);
    this.observer.run(rows, computeSeconds);
  }

  /**
   * A batch of this queue finished running: its spans, when tracing is on and any job is traced. `outcomes` are the
   * requests' own when they ran one by one, one failure when the run itself failed, none when it served them all.
   */
  recordFinished(batch: Batch, finishedAt: number, outcomes?: readonly RunOutcome[]): void {
    if (!this.tracer) return;
    const jobs = batch.traced;
    if (jobs.length === 0) return;
    const error = outcomes?.find((outcome) => 'error' in outcome)?.error;
    this.tracer.ran({
      purpose: this.purpose, jobs, requests: batch.size, rows: batch.rows.reduce((a, b) => a + b, 0),
      dispatchedAt: batch.dispatchedAt ?? finishedAt, finishedAt, ...(error !== undefined ? { error } : {}),
    });
  }

  /** Fails every waiting job, e.g. when the worker that would run them is gone. */
  failAll(error: Error): void {
    for (const job of this.jobs.splice(0)) job.reject(error);
    this.rowsQueued = 0;
    this.observer.depth(0);
  }
}
