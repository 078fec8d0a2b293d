/**
 * Payload events (--payload-log-url): sampled inferences POSTed to an HTTP sink as CloudEvents in binary mode, one
 * request event and one response event per inference sharing a ce-id, with the headers and extensions KServe's
 * payload logger sends, so that a receiver written for that logger takes them unchanged (docs/runtime.md, Payload
 * events).
 *
 * The sink must never cost inference its latency: an event is built on the request's path (it has to be, before
 * the inputs move to a session worker) but only queued there; a background loop sends. The queue is bounded in
 * events and bytes, and whatever does not fit, or fails to send, is dropped and counted.
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Counter } from 'prom-client';
import { METRIC } from '@modelship/contract';
import { elementCount, type NamedTensor } from './tensor/datatypes';
import { redactUri } from './redact-uri';
import { jsonElements } from './tensor/json';

const REQUEST_EVENT_TYPE = 'org.kubeflow.serving.inference.request';
const RESPONSE_EVENT_TYPE = 'org.kubeflow.serving.inference.response';

/** Events queued at most; a sink slower than the request rate loses the newest ones rather than holding memory. */
const QUEUE_EVENTS = 1000;
/** Body bytes queued at most: 1000 events of the largest --payload-log-max-bytes would otherwise be a gigabyte. */
const QUEUE_BYTES = 16 * 1024 * 1024;
/** POSTs in flight at once: enough to keep up with a sink on the same network, few enough not to flood one. */
const SENDERS = 4;
/** One POST's deadline: a sink that hangs must free its sender soon, or the queue fills and events are dropped. */
const SEND_TIMEOUT_MS = 2000;

export interface PayloadEventSettings {
  readonly url: string;
  /** Percent of inferences sent; 0 (unset) sends every one, as KServe's logger does. */
  readonly percent: number;
  /** Most bytes of tensor data per event, shared between its tensors. */
  readonly maxBytes: number;
  /** Tensor names whose data is never sent. */
  readonly redact: readonly string[];
  readonly source: string;
  /** ce-inferenceservicename; undefined: the model's name. */
  readonly serviceName?: string;
  readonly namespace: string;
}

/** An inference whose request event is queued; its response event reuses the id. */
interface EventPair {
  readonly id: string;
  readonly model: string;
}

interface QueuedEvent {
  readonly headers: Record<string, string>;
  readonly body: string;
}

export class PayloadEventSink {
  private readonly redact: Set<string>;
  private readonly queue: QueuedEvent[] = [];
  private queuedBytes = 0;
  private sending = 0;
  private closed = false;
  private readonly idleWaiters: Array<() => void> = [];
  private lastFailureLog = 0;

  constructor(private readonly settings: PayloadEventSettings, private readonly dropped: Counter, private readonly log: Logger) {
    this.redact = new Set(settings.redact);
  }

  /** Whether to send this inference; decided before the run, since input buffers move to the worker. */
  sample(): boolean {
    return this.settings.percent === 0 || Math.random() * 100 < this.settings.percent;
  }

  /** Queues the request event of an inference: its inputs as an OIP v2 JSON request, taken while still on this thread. */
  request(model: string, inputs: readonly NamedTensor[]): EventPair {
    const pair = { id: randomUUID(), model };
    this.enqueue(pair, REQUEST_EVENT_TYPE, `{"inputs":${this.tensorsJson(inputs)}}`);
    return pair;
  }

  /** Queues the response event: the outputs as an OIP v2 JSON response. Only answered inferences have one, as in KServe. */
  response(pair: EventPair, version: number, outputs: readonly NamedTensor[]): void {
    const body = `{"model_name":${JSON.stringify(pair.model)},"model_version":${JSON.stringify(String(version))},"id":${JSON.stringify(pair.id)},"outputs":${this.tensorsJson(outputs)}}`;
    this.enqueue(pair, RESPONSE_EVENT_TYPE, body);
  }

  /** Events waiting or being sent. */
  get pending(): number {
    return this.queue.length + this.sending;
  }

  /**
   * Sends what is queued until `timeoutMs` passes, then stops: a shutting-down pod should not lose the events of
   * its last requests, nor wait long for a sink that is down. What is still queued then is counted as dropped.
   */
  async close(timeoutMs: number): Promise<void> {
    if (this.pending > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        new Promise<void>((resolve) => this.idleWaiters.push(resolve)),
        new Promise<void>((resolve) => { timer = setTimeout(resolve, timeoutMs); }),
      ]);
      clearTimeout(timer);
    }
    this.closed = true;
    if (this.queue.length > 0) this.dropped.inc(this.queue.length);
    this.queue.length = 0;
    this.queuedBytes = 0;
  }

  private enqueue(pair: EventPair, type: string, body: string): void {
    if (this.closed || this.queue.length >= QUEUE_EVENTS || this.queuedBytes + body.length > QUEUE_BYTES) {
      this.dropped.inc();
      return;
    }
    const { source, serviceName, namespace } = this.settings;
    // Binary content mode: the attributes as ce- headers, the body as the data. KServe's logger sets these
    // attributes and extensions on every event (component 'predictor', endpoint 'default' for a single revision,
    // metadata the JSON of selected request headers, here none).
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'ce-specversion': '1.0',
      'ce-id': pair.id,
      'ce-type': type,
      'ce-source': headerValue(source),
      'ce-time': new Date().toISOString(),
      'ce-inferenceservicename': headerValue(serviceName ?? pair.model),
      'ce-namespace': headerValue(namespace),
      'ce-component': 'predictor',
      'ce-endpoint': 'default',
      'ce-metadata': '{}',
    };
    this.queue.push({ headers, body });
    this.queuedBytes += body.length;
    // The send starts on a later turn, so the request's own answer is never behind it.
    if (this.sending < SENDERS) setImmediate(() => this.pump());
  }

  private pump(): void {
    while (this.sending < SENDERS && this.queue.length > 0) {
      const event = this.queue.shift()!;
      this.queuedBytes -= event.body.length;
      this.sending++;
      void this.send(event).finally(() => {
        this.sending--;
        if (this.queue.length > 0) this.pump();
        else if (this.sending === 0) for (const resolve of this.idleWaiters.splice(0)) resolve();
      });
    }
  }

  private async send(event: QueuedEvent): Promise<void> {
    // One retry, and only when the request never got an answer for a reason other than the deadline: a pooled
    // keep-alive connection the sink had already closed fails that way, and the second attempt opens a new one.
    for (let attempt = 1; ; attempt++) {
      try {
        const response = await fetch(this.settings.url, {
          method: 'POST', headers: event.headers, body: event.body, signal: AbortSignal.timeout(SEND_TIMEOUT_MS),
        });
        // The answer's body is not read but must be consumed, or its connection is not reused.
        await response.arrayBuffer().catch(() => undefined);
        if (response.ok) return;
        this.fail(`the payload sink answered ${response.status}`);
        return;
      } catch (error) {
        const timedOut = (error as Error).name === 'TimeoutError' || (error as Error).name === 'AbortError';
        if (attempt === 1 && !timedOut && !this.closed) continue;
        this.fail(timedOut ? `the payload sink did not answer within ${SEND_TIMEOUT_MS} ms` : `the payload sink could not be reached: ${causeOf(error as Error)}`);
        return;
      }
    }
  }

  private fail(reason: string): void {
    this.dropped.inc();
    // At most one line a minute: a sink that is down would otherwise write one per request.
    const now = Date.now();
    if (now - this.lastFailureLog >= 60_000) {
      this.lastFailureLog = now;
      this.log.warn({ url: redactUri(this.settings.url) }, `${reason}; payload events are being dropped (counted in ${METRIC.payloadEventsDropped})`);
    }
  }

  /** OIP v2 JSON tensors, their data capped to a share of --payload-log-max-bytes; the JSON stays well-formed when cut. */
  private tensorsJson(tensors: readonly NamedTensor[]): string {
    const budget = Math.max(16, Math.floor(this.settings.maxBytes / Math.max(1, tensors.length)));
    const parts = tensors.map((tensor) => {
      const head = `{"name":${JSON.stringify(tensor.name)},"datatype":${JSON.stringify(tensor.datatype)},"shape":${JSON.stringify([...tensor.shape])}`;
      if (this.redact.has(tensor.name)) return `${head},"parameters":{"redacted":true},"data":[]}`;
      const { text, truncated } = cappedElements(tensor, budget);
      return `${head}${truncated ? ',"parameters":{"truncated":true}' : ''},"data":[${text}]}`;
    });
    return `[${parts.join(',')}]`;
  }
}

/**
 * The longest prefix of a tensor's elements whose JSON fits `budget`: cut between elements, never inside one, so
 * the data stays a JSON array (one a receiver can parse, with fewer elements than the shape says).
 */
function cappedElements(tensor: NamedTensor, budget: number): { text: string; truncated: boolean } {
  const count = elementCount(tensor.shape);
  // Two bytes per element is the shortest any element renders; no more elements than that could fit.
  const most = Math.min(count, Math.ceil(budget / 2));
  const text = jsonElements(tensor, 0, most);
  if (text.length <= budget && most === count) return { text, truncated: false };
  let low = 0;
  let high = most;
  let best = '';
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    const candidate = jsonElements(tensor, 0, mid);
    if (candidate.length <= budget) {
      low = mid;
      best = candidate;
    } else {
      high = mid - 1;
    }
  }
  return { text: low === 0 ? '' : best, truncated: true };
}

/** A CloudEvents HTTP header value: printable ASCII as is, the rest (and space, '"' and '%') percent-encoded. */
function headerValue(value: string): string {
  return /^[\x21\x23-\x24\x26-\x7E]*$/.test(value) ? value : Array.from(new TextEncoder().encode(value), (b) =>
    b > 0x20 && b < 0x7f && b !== 0x22 && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`).join('');
}

function causeOf(error: Error): string {
  const cause = (error as Error & { cause?: Error }).cause;
  return cause?.message ?? error.message;
}
