/**
 * The main thread's handle on one session worker thread: request/reply over postMessage, and the scheduler that
 * keeps exactly one run in the worker at a time, taking jobs round-robin from the queues of the models it hosts.
 * Holding the queue here rather than in the worker is what lets requests be rejected, timed and (later) batched.
 */
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { InferenceError } from '../errors';
import type { Batch } from '../batcher/batch';
import type { JobExecutor, RunQueue } from '../batcher/run-queue';
import { InFlight } from '../in-flight';
import { transferListOf } from '../tensor/datatypes';
import type { DriftSetup, LoadResult, RunResult, SessionSettings, WorkerReply, WorkerRequest } from './messages';

type Pending = { resolve(value: unknown): void; reject(error: Error): void };
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

export class SessionWorkerClient implements JobExecutor {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  /** Calls (runs, loads, unloads) the worker has not answered yet. */
  private readonly calls = new InFlight();
  /** Serve queues with work, in round-robin order. */
  private readonly ready: RunQueue[] = [];
  /** Explain queues with work: taken only when no serve queue has any (run-queue.ts, QueuePurpose). */
  private readonly background: RunQueue[] = [];
  private nextId = 1;
  private running = false;
  private wakeTimer: NodeJS.Timeout | undefined;
  private exited: Error | undefined;
  /** How many model versions this worker hosts: the pool places new ones on the least loaded worker. */
  hosted = 0;

  constructor(readonly index: number, private readonly onExit: (error: Error) => void) {
    this.worker = new Worker(join(__dirname, 'session-worker.js'), { name: `session-worker-${index}` });
    this.worker.on('message', (reply: WorkerReply) => this.settle(reply));
    this.worker.on('error', (error) => this.fail(error));
    this.worker.on('exit', (code) => this.fail(new Error(`session worker ${index} exited with code ${code}`)));
  }

  load(key: string, path: string, settings: SessionSettings, drift?: DriftSetup): Promise<LoadResult> {
    return this.call({ op: 'load', key, path, settings, drift }) as Promise<LoadResult>;
  }

  unload(key: string): Promise<void> {
    return this.call({ op: 'unload', key }) as Promise<void>;
  }

  /** Called by a queue that received a job. */
  notify(queue: RunQueue): void {
    const waiting = queue.purpose === 'serve' ? this.ready : this.background;
    if (!waiting.includes(queue)) waiting.push(queue);
    this.pump();
  }

  /** Resolves once no run or load is in progress in the worker. */
  idle(): Promise<void> {
    return this.calls.idle();
  }

  /**
   * Stops the thread. Only call it when idle: onnxruntime-node aborts the whole process when the thread it is
   * running a session on is stopped mid-run.
   */
  async terminate(): Promise<void> {
    this.exited ??= new Error('session worker stopped');
    clearTimeout(this.wakeTimer);
    await this.worker.terminate();
  }

  private pump(): void {
    if (this.running) return;
    if (this.ready.length === 0) return this.pumpBackground();
    // Round-robin between the models on this worker; a queue still waiting to fill a batch lets others go first.
    const now = performance.now();
    const index = this.ready.findIndex((queue) => queue.waitMilliseconds(now) === 0);
    if (index < 0) {
      const wait = Math.min(...this.ready.map((queue) => queue.waitMilliseconds(now)));
      this.wakeTimer ??= setTimeout(() => { this.wakeTimer = undefined; this.pump(); }, wait);
      return;
    }
    const [queue] = this.ready.splice(index, 1);
    this.start(queue, this.ready);
  }

  /** The worker is free and no serve queue has work: an explanation's run may go. */
  private pumpBackground(): void {
    const queue = this.background.shift();
    if (queue) this.start(queue, this.background);
  }

  /** Takes the next batch of `queue` (taken off `waiting`) and runs it; the queue goes back last if it has more. */
  private start(queue: RunQueue, waiting: RunQueue[]): void {
    const batch = queue.takeBatch();
    if (queue.depth > 0) waiting.push(queue);
    if (!batch) return this.pump();
    this.running = true;
    void this.execute(queue, batch).finally(() => {
      this.running = false;
      this.pump();
    });
  }

  private async execute(queue: RunQueue, batch: Batch): Promise<void> {
    batch.dispatch(performance.now());
    const inputs = batch.inputs;
    let result: RunResult;
    try {
      const countDrift = queue.purpose === 'serve';
      result = (await this.call({ op: 'run', key: queue.key, inputs, rows: batch.rows, outputs: batch.outputs, countDrift }, transferListOf(inputs))) as RunResult;
    } catch (error) {
      const failure = error instanceof InferenceError ? error : new InferenceError(500, `${queue.key} failed to execute: ${(error as Error).message}`);
      queue.recordFinished(batch, performance.now(), [{ error: failure.message }]);
      batch.reject(failure);
      return;
    }
    queue.recordFinished(batch, performance.now(), result.outcomes);
    for (const run of result.runs) queue.recordRun(run.rows, run.seconds, inputs);
    if (result.unbatchable) queue.stopBatching();
    queue.recordDrift(result);
    if (result.merged) batch.resolveMerged(result.merged);
    else batch.resolveEach(result.outcomes!, (message) => new InferenceError(500, `${queue.key} failed to execute: ${message}`));
  }

  private call(request: DistributiveOmit<WorkerRequest, 'id'>, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.exited) return Promise.reject(new InferenceError(503, `${request.key} is unavailable: ${this.exited.message}`));
    const id = this.nextId++;
    const finished = this.calls.start();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id } as WorkerRequest, transfer);
    }).finally(finished);
  }

  private settle(reply: WorkerReply): void {
    const pending = this.pending.get(reply.id);
    if (!pending) return;
    this.pending.delete(reply.id);
    if (reply.ok) pending.resolve(reply.result);
    else pending.reject(new Error(reply.error));
  }

  private fail(error: Error): void {
    if (this.exited) return;
    this.exited = error;
    for (const pending of this.pending.values()) pending.reject(new InferenceError(503, error.message));
    this.pending.clear();
    for (const queue of [...this.ready.splice(0), ...this.background.splice(0)]) queue.failAll(new InferenceError(503, error.message));
    this.onExit(error);
  }
}

