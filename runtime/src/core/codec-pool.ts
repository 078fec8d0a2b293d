/**
 * Codec threads for large bodies and answers (see codec-runner.ts for why). Threads start when the first large body
 * arrives, so a server that only ever sees small ones runs none; each task goes to the thread with the fewest
 * waiting, and buffers move both ways without a copy.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { InferenceError } from '../errors';
import { type NamedTensor, type TypedArray } from '../tensor/datatypes';
import { parsedJsonWeighing } from '../tensor/numeric-json';
import type { Signature, ShapeLimits } from '../tensor/signature';
import type { CodecReply, CodecTask } from './codec-messages';
import { decodeInline, type CodecRunner } from './codec-runner';
import { movable } from './movable';
import type { Codec, DecodedRequest, InferResponse } from './request';

export interface CodecPoolOptions {
  /** Most codec threads. */
  readonly threads: number;
  /** Bodies of at least this many bytes are decoded, and answers with at least this many bytes of tensor data to write as text are encoded, on a codec thread. */
  readonly offloadFromBytes: number;
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

class CodecThread {
  // Bodies parsed here are weighed against the memory-derived limit as they are on the main thread.
  private readonly worker = new Worker(join(__dirname, 'codec-worker.js'), { name: 'codec', workerData: { weighing: parsedJsonWeighing() } });
  private readonly pending = new Map<number, { resolve(reply: CodecReply): void; reject(error: Error): void }>();
  private nextId = 1;
  failed: Error | undefined;

  constructor() {
    // Idle codec threads must not keep a stopping process alive; a waiting call keeps its request open anyway.
    this.worker.unref();
    this.worker.on('message', (reply: CodecReply) => {
      const call = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      call?.resolve(reply);
    });
    const fail = (error: Error) => {
      this.failed ??= error;
      for (const call of this.pending.values()) call.reject(new InferenceError(500, `a codec thread failed: ${error.message}`));
      this.pending.clear();
    };
    this.worker.on('error', fail);
    this.worker.on('exit', (code) => fail(new Error(`codec thread exited with code ${code}`)));
  }

  get load(): number {
    return this.pending.size;
  }

  async call(task: DistributiveOmit<CodecTask, 'id'>, transfer: ArrayBuffer[]): Promise<CodecReply & { ok: true }> {
    const id = this.nextId++;
    const reply = await new Promise<CodecReply>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...task, id }, transfer);
    });
    if (!reply.ok) throw new InferenceError(reply.status, reply.message, reply.retryAfterSeconds);
    return reply;
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

export class CodecPool implements CodecRunner {
  private threads: CodecThread[] = [];

  constructor(private readonly options: CodecPoolOptions) {}

  async decode<W, M, E>(codec: Codec<W, M, E>, wire: W, signature: Signature, limits: ShapeLimits): Promise<{ decoded: DecodedRequest; meta: M }> {
    if (!codec.transferable || codec.size(wire) < this.options.offloadFromBytes) return decodeInline(codec, wire, signature, limits);
    const moved = codec.transferable(wire);
    const reply = await this.thread().call({ op: 'decode', codec: codec.name, wire: moved.wire, signature, limits }, moved.transfer);
    return reply as unknown as { decoded: DecodedRequest; meta: M };
  }

  async encode<W, M, E>(codec: Codec<W, M, E>, response: InferResponse, meta: M): Promise<E> {
    if (codec.textBytes(response, meta) < this.options.offloadFromBytes) return codec.encode(response, meta);
    const transfer: ArrayBuffer[] = [];
    const outputs = response.outputs.map((output): NamedTensor => {
      if (Array.isArray(output.data)) return output;
      const { view, buffer } = movable(output.data as TypedArray, (data) => data.slice() as TypedArray);
      transfer.push(buffer);
      return { ...output, data: view };
    });
    const reply = await this.thread().call({ op: 'encode', codec: codec.name, response: { ...response, outputs }, meta }, transfer);
    return (reply as { encoded: E }).encoded;
  }

  async close(): Promise<void> {
    const threads = this.threads;
    this.threads = [];
    await Promise.all(threads.map((thread) => thread.terminate()));
  }

  /** The thread with the fewest tasks waiting, starting one while there are fewer than allowed and all are busy. */
  private thread(): CodecThread {
    this.threads = this.threads.filter((thread) => !thread.failed);
    const idlest = this.threads.reduce<CodecThread | undefined>((best, t) => (best === undefined || t.load < best.load ? t : best), undefined);
    if (idlest && (idlest.load === 0 || this.threads.length >= this.options.threads)) return idlest;
    const started = new CodecThread();
    this.threads.push(started);
    return started;
  }
}
