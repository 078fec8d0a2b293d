/**
 * What may be merged into one run, and how: requests to a model whose every input and output has a dynamic first
 * dimension, with equal trailing shapes and datatypes, become one run along that dimension; each request then
 * gets exactly its own rows of every output back.
 */
import type { SpanContext } from '@opentelemetry/api';
import { DATATYPES, elementCount, type NamedTensor, type TensorData, type TypedArray } from '../tensor/datatypes';
import type { Signature } from '../tensor/signature';

/**
 * True when the model's signature says dim 0 is free on every input and output, the usual mark of a batch
 * dimension. Models with state tensors (e.g. [2, batch, 64]) or a fixed batch size fail this and run one by one.
 */
export function isBatchable(signature: Signature): boolean {
  const free = (shape: readonly (number | string)[] | undefined) => shape !== undefined && shape.length > 0 && typeof shape[0] === 'string';
  return signature.inputs.length > 0
    && signature.inputs.every((spec) => spec.datatype !== undefined && free(spec.shape))
    && signature.outputs.every((spec) => free(spec.shape));
}

/** Rows of a request: the first dimension every input shares, or undefined when they differ (it runs alone). */
export function rowsOf(inputs: readonly NamedTensor[]): number | undefined {
  const rows = inputs[0]?.shape[0];
  return rows !== undefined && inputs.every((input) => input.shape.length > 0 && input.shape[0] === rows) ? rows : undefined;
}

/** Whether two requests can share a run: same outputs asked for, same datatypes and trailing dims per input. */
export function canMerge(a: readonly NamedTensor[], aOutputs: readonly string[], b: readonly NamedTensor[], bOutputs: readonly string[]): boolean {
  if (a.length !== b.length || aOutputs.length !== bOutputs.length || aOutputs.some((name, i) => name !== bOutputs[i])) return false;
  return a.every((input) => {
    const other = b.find((candidate) => candidate.name === input.name);
    return other !== undefined && other.datatype === input.datatype && other.shape.length === input.shape.length
      && input.shape.every((dim, axis) => axis === 0 || dim === other.shape[axis]);
  });
}

/** Concatenates each input along dim 0, in the order of the requests. */
export function concatenate(batch: readonly (readonly NamedTensor[])[]): NamedTensor[] {
  return batch[0].map((first) => {
    const parts = batch.map((inputs) => inputs.find((input) => input.name === first.name)!);
    const rows = parts.reduce((sum, part) => sum + part.shape[0], 0);
    const shape = [rows, ...first.shape.slice(1)];
    const info = DATATYPES[first.datatype];
    let data: TensorData;
    if (info.array) {
      const merged = new info.array(elementCount(shape));
      let offset = 0;
      for (const part of parts) {
        (merged as Uint8Array).set(part.data as Uint8Array, offset);
        offset += (part.data as TypedArray).length;
      }
      data = merged;
    } else {
      data = parts.flatMap((part) => part.data as string[]);
    }
    return { name: first.name, datatype: first.datatype, shape, data };
  });
}

/** Whether every output's first dimension is the batch's total rows, i.e. whether the outputs can be split. */
export function followsBatch(outputs: readonly NamedTensor[], totalRows: number): boolean {
  return outputs.every((output) => output.shape.length > 0 && output.shape[0] === totalRows);
}

/**
 * Splits merged tensors (a run's outputs, or a batch's merged inputs) back into each request's rows, as views on
 * the same buffers (no copy). Returns undefined when a tensor's first dimension is not the total of the rows: the
 * model does not batch after all.
 */
export function splitRows(outputs: readonly NamedTensor[], rows: readonly number[]): NamedTensor[][] | undefined {
  if (!followsBatch(outputs, rows.reduce((a, b) => a + b, 0))) return undefined;
  let start = 0;
  return rows.map((count) => {
    const from = start;
    start += count;
    return outputs.map((output) => {
      const stride = elementCount(output.shape.slice(1));
      const data = Array.isArray(output.data)
        ? (output.data as string[]).slice(from * stride, (from + count) * stride)
        : (output.data as TypedArray).subarray(from * stride, (from + count) * stride);
      return { ...output, shape: [count, ...output.shape.slice(1)], data };
    });
  });
}

/** One request waiting in a queue. */
export interface RunJob {
  readonly inputs: readonly NamedTensor[];
  readonly outputs: readonly string[];
  /** The request's rows along dim 0, or undefined when it cannot be merged with others. */
  readonly rows: number | undefined;
  readonly enqueuedAt: number;
  /** The sampled span of the request, when tracing is on. */
  readonly trace?: SpanContext;
  resolve(result: QueuedRunResult): void;
  reject(error: Error): void;
}

export interface QueuedRunResult {
  readonly outputs: readonly NamedTensor[];
  /** Seconds from submission until the run was handed to a session worker. */
  readonly queueSeconds: number;
}

/** How a run went, per request: its outputs or why it failed. */
export type RunOutcome = { readonly outputs: readonly NamedTensor[] } | { readonly error: string };

/**
 * The requests that share one run: it merges their inputs into one tensor per input (one buffer per input crosses
 * to the session worker, however many requests the batch holds) and gives each request its own rows of the result.
 */
export class Batch {
  /** Each request's rows, in order. */
  readonly rows: readonly number[];
  private merged: readonly NamedTensor[] | undefined;
  private dispatched: number | undefined;

  constructor(private readonly jobs: readonly RunJob[]) {
    this.rows = jobs.map((job) => job.rows ?? rowsOf(job.inputs) ?? 1);
  }

  get size(): number {
    return this.jobs.length;
  }

  /** The output names every request of the batch asked for (merging requires them equal). */
  get outputs(): readonly string[] {
    return this.jobs[0].outputs;
  }

  /** The inputs of the run, merged along dim 0 when the batch holds several requests. */
  get inputs(): readonly NamedTensor[] {
    this.merged ??= this.jobs.length === 1 ? this.jobs[0].inputs : concatenate(this.jobs.map((job) => job.inputs));
    return this.merged;
  }

  /** Marks the moment the run leaves the queue, which ends each request's queue time. */
  dispatch(now: number): void {
    this.dispatched = now;
  }

  /** When the run left the queue (performance.now() milliseconds). */
  get dispatchedAt(): number | undefined {
    return this.dispatched;
  }

  /** The jobs whose requests are traced, with when each was queued. */
  get traced(): { readonly trace: SpanContext; readonly enqueuedAt: number }[] {
    const traced = [];
    for (const job of this.jobs) if (job.trace) traced.push({ trace: job.trace, enqueuedAt: job.enqueuedAt });
    return traced;
  }

  /** The merged outputs of a run that followed the batch: each request gets its own rows, as views. */
  resolveMerged(outputs: readonly NamedTensor[]): void {
    const parts = splitRows(outputs, this.rows)!;
    this.jobs.forEach((job, i) => job.resolve({ outputs: parts[i], queueSeconds: this.queueSeconds(job) }));
  }

  /** Per-request outcomes of requests that ran one by one; `describe` turns a failure into the error to answer. */
  resolveEach(outcomes: readonly RunOutcome[], describe: (message: string) => Error): void {
    this.jobs.forEach((job, i) => {
      const outcome = outcomes[i];
      if ('error' in outcome) job.reject(describe(outcome.error));
      else job.resolve({ outputs: outcome.outputs, queueSeconds: this.queueSeconds(job) });
    });
  }

  reject(error: Error): void {
    for (const job of this.jobs) job.reject(error);
  }

  private queueSeconds(job: RunJob): number {
    return ((this.dispatched ?? job.enqueuedAt) - job.enqueuedAt) / 1000;
  }
}
