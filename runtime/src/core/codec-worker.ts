/**
 * A codec thread: translates, checks and decodes large request bodies, and writes large answers out as JSON, so that
 * the main thread stays free for probes, /metrics and connections. Bodies and tensors arrive and leave as
 * transferred buffers.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { InferenceError } from '../errors';
import { CODECS } from '../protocols/codecs';
import { transferListOf } from '../tensor/datatypes';
import { weighParsedJson } from '../tensor/numeric-json';
import { decodeInline } from './codec-runner';
import type { CodecReply, CodecTask } from './codec-messages';

const { weighing } = (workerData ?? {}) as { weighing?: { maxBodyBytes: number; weight: number } };
if (weighing) weighParsedJson(weighing.maxBodyBytes, weighing.weight);

function handle(task: CodecTask): [CodecReply, ArrayBuffer[]] {
  const codec = CODECS[task.codec];
  if (task.op === 'decode') {
    const { decoded, meta } = decodeInline(codec, task.wire, task.signature, task.limits);
    return [{ id: task.id, ok: true, decoded, meta }, transferListOf(decoded.inputs)];
  }
  const encoded = utf8Bytes(codec.encode(task.response, task.meta));
  return [{ id: task.id, ok: true, encoded }, buffersIn(encoded)];
}

/** JSON text as UTF-8 bytes, wherever it is in an answer: bytes move between threads without a copy, strings do not. */
function utf8Bytes(encoded: unknown): unknown {
  if (typeof encoded === 'string') return Buffer.from(encoded, 'utf8');
  if (typeof encoded === 'object' && encoded !== null && typeof (encoded as { json?: unknown }).json === 'string') {
    return { ...encoded, json: Buffer.from((encoded as { json: string }).json, 'utf8') };
  }
  return encoded;
}

function buffersIn(encoded: unknown): ArrayBuffer[] {
  const views: ArrayBufferView[] = [];
  if (ArrayBuffer.isView(encoded)) views.push(encoded);
  else if (typeof encoded === 'object' && encoded !== null) {
    for (const value of Object.values(encoded)) {
      if (ArrayBuffer.isView(value)) views.push(value);
      else if (Array.isArray(value)) views.push(...value.filter((item): item is ArrayBufferView => ArrayBuffer.isView(item)));
    }
  }
  // Buffer.from(string) may take its bytes from Node's shared pool: only buffers the views cover whole are moved.
  return [...new Set(views.filter((v) => v.byteOffset === 0 && v.byteLength === v.buffer.byteLength).map((v) => v.buffer as ArrayBuffer))];
}

parentPort!.on('message', (task: CodecTask) => {
  let reply: [CodecReply, ArrayBuffer[]];
  try {
    reply = handle(task);
  } catch (error) {
    const known = error instanceof InferenceError;
    reply = [{
      id: task.id, ok: false, status: known ? error.status : 500,
      message: (error as Error).message ?? String(error), retryAfterSeconds: known ? error.retryAfterSeconds : undefined,
    }, []];
  }
  parentPort!.postMessage(...reply);
});
