/**
 * A bounded queue of runs for one model version. Past its capacity a request is refused at once with 429, so
 * that overload shows up as fast rejections a client can retry elsewhere, never as latency without bound.
 */
import { performance } from 'node:perf_hooks';
import { InferenceError } from '../errors';
import type { RunResult } from '../model/messages';
import type { NamedTensor } from '../tensor/datatypes';

export interface QueuedRunResult extends RunResult {
  /** Seconds from submission until the run was handed to a session worker. */
  readonly queueSeconds: number;
}

export interface RunJob {
  readonly inputs: readonly NamedTensor[];
  readonly outputs: readonly string[];
  readonly enqueuedAt: number;
  resolve(result: QueuedRunResult): void;
  reject(error: Error): void;
}

/** Whoever executes jobs: told when a queue has work, it takes jobs when it is free. */
export interface JobExecutor {
  notify(queue: RunQueue): void;
}

export class RunQueue {
  private readonly jobs: RunJob[] = [];

  constructor(
    readonly key: string,
    private readonly capacity: number,
    private readonly executor: JobExecutor,
    private readonly onDepth: (depth: number) => void = () => {},
  ) {}

  get depth(): number {
    return this.jobs.length;
  }

  submit(inputs: readonly NamedTensor[], outputs: readonly string[]): Promise<QueuedRunResult> {
    if (this.jobs.length >= this.capacity) {
      throw new InferenceError(429, `the queue of ${this.key} is full (${this.capacity} requests waiting, --max-queue-size); retry later`, 1);
    }
    return new Promise<QueuedRunResult>((resolve, reject) => {
      this.jobs.push({ inputs, outputs, enqueuedAt: performance.now(), resolve, reject });
      this.onDepth(this.jobs.length);
      this.executor.notify(this);
    });
  }

  /** The next job, or undefined when empty. */
  take(): RunJob | undefined {
    const job = this.jobs.shift();
    if (job) this.onDepth(this.jobs.length);
    return job;
  }

  /** Fails every waiting job, e.g. when the worker that would run them is gone. */
  failAll(error: Error): void {
    for (const job of this.jobs.splice(0)) job.reject(error);
    this.onDepth(0);
  }
}
