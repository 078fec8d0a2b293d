/**
 * A small L7 reverse proxy on loopback that stands in for a Kubernetes Service with an endpoints controller and a
 * per-request load balancer (an ingress or a mesh sidecar) in front of runtime replicas:
 *
 * - requests go round-robin to the backends in rotation, over keep-alive connections (undici pools);
 * - every backend's `/v2/health/ready` is polled (200 ms by default, like a readiness probe with a short period):
 *   a backend joins the rotation after `successThreshold` 200s and leaves it after `failureThreshold` non-200s;
 * - `terminate(url, propagationMs)` is the pod turning Terminating: the endpoints controller drops it from the
 *   rotation whatever its readiness says, `propagationMs` later (the time the removal takes to reach the proxies);
 * - a request is retried once, on another backend, only when connecting to the first one failed (Envoy's
 *   `retry_on: connect-failure`). A response — 503 included — is passed on as it is, and so is a connection that
 *   breaks after the request was sent (answered 502): neither is retried, so neither can hide a lost request.
 */
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

export interface ReadinessProxyOptions {
  /** @default 200 */
  readonly pollIntervalMs?: number;
  /** Consecutive non-200 readiness answers that take a backend out of the rotation. @default 2 */
  readonly failureThreshold?: number;
  /** Consecutive 200s that put a backend into the rotation. @default 1 */
  readonly successThreshold?: number;
  /** Keep-alive connections per backend. @default 64 */
  readonly connections?: number;
}

export interface BackendStats {
  readonly url: string;
  /** Whether requests are sent to it now. */
  readonly inRotation: boolean;
  /** Responses passed on from this backend, by status. */
  readonly responses: Readonly<Record<number, number>>;
  /** Connections to it that failed (retried elsewhere, once). */
  readonly connectFailures: number;
  /** Requests whose connection broke after they were sent (answered 502). */
  readonly brokenAfterSend: number;
}

export interface ProxyEvent {
  /** performance.now() */
  readonly at: number;
  readonly url: string;
  readonly event: 'added' | 'not ready' | 'terminating' | 'ready again';
}

interface Backend {
  readonly url: string;
  readonly pool: Pool;
  inRotation: boolean;
  terminating: boolean;
  successes: number;
  failures: number;
  readonly responses: Record<number, number>;
  connectFailures: number;
  brokenAfterSend: number;
  timer?: NodeJS.Timeout;
}

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'host', 'content-length']);
/** Errors that mean no connection was made, so the backend never saw the request. */
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

export class ReadinessProxy {
  /** Requests retried on another backend after a connect failure. */
  retries = 0;
  /** Requests answered 503 by the proxy itself because no backend was in rotation. */
  noBackend = 0;
  /** Requests answered 502 by the proxy (no response from a backend, not retried). */
  badGateway = 0;
  readonly events: ProxyEvent[] = [];

  private readonly backends: Backend[] = [];
  private next = 0;
  private closed = false;
  private readonly pollIntervalMs: number;
  private readonly failureThreshold: number;
  private readonly successThreshold: number;
  private readonly connections: number;

  private constructor(private readonly server: Server, readonly url: string, options: ReadinessProxyOptions) {
    this.pollIntervalMs = options.pollIntervalMs ?? 200;
    this.failureThreshold = options.failureThreshold ?? 2;
    this.successThreshold = options.successThreshold ?? 1;
    this.connections = options.connections ?? 64;
  }

  static async start(options: ReadinessProxyOptions = {}): Promise<ReadinessProxy> {
    let proxy: ReadinessProxy | undefined;
    const server = createServer((request, response) => proxy!.handle(request, response));
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy = new ReadinessProxy(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, options);
    return proxy;
  }

  /** A new endpoint: polled from now on, in rotation once it answers ready. */
  add(url: string): void {
    if (this.backends.some((b) => b.url === url)) throw new Error(`${url} is already a backend`);
    const backend: Backend = {
      url, pool: new Pool(url, { connections: this.connections, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: 15_000, bodyTimeout: 15_000, connectTimeout: 2_000 }),
      inRotation: false, terminating: false, successes: 0, failures: 0, responses: {}, connectFailures: 0, brokenAfterSend: 0,
    };
    this.backends.push(backend);
    this.poll(backend);
  }

  /**
   * The pod is Terminating: it leaves the rotation `propagationMs` from now whatever its readiness, and is no longer
   * polled. Resolves once it is out.
   */
  async terminate(url: string, propagationMs = 0): Promise<void> {
    const backend = this.backend(url);
    if (propagationMs > 0) await new Promise((resolve) => setTimeout(resolve, propagationMs));
    backend.terminating = true;
    backend.inRotation = false;
    clearTimeout(backend.timer);
    this.events.push({ at: performance.now(), url, event: 'terminating' });
    // Requests already sent to it finish; then its connections go.
    void backend.pool.close().catch(() => undefined);
  }

  /** Waits until the backend is (or is no longer) in rotation. */
  async waitFor(url: string, inRotation: boolean, timeoutMs = 10_000): Promise<void> {
    const backend = this.backend(url);
    const deadline = Date.now() + timeoutMs;
    while (backend.inRotation !== inRotation) {
      if (Date.now() > deadline) throw new Error(`${url} was ${inRotation ? 'not put into' : 'not taken out of'} rotation within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  stats(url: string): BackendStats {
    const b = this.backend(url);
    return { url, inRotation: b.inRotation, responses: { ...b.responses }, connectFailures: b.connectFailures, brokenAfterSend: b.brokenAfterSend };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const backend of this.backends) clearTimeout(backend.timer);
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve());
      this.server.closeAllConnections();
    });
    await Promise.all(this.backends.map((b) => b.pool.destroy().catch(() => undefined)));
  }

  private backend(url: string): Backend {
    const backend = this.backends.find((b) => b.url === url);
    if (!backend) throw new Error(`${url} is not a backend`);
    return backend;
  }

  /** One readiness probe now, and the next one a period later, until the backend terminates or the proxy closes. */
  private poll(backend: Backend): void {
    if (this.closed || backend.terminating) return;
    void fetch(`${backend.url}/v2/health/ready`, { signal: AbortSignal.timeout(1_000) })
      .then(async (response) => {
        await response.arrayBuffer();
        return response.status === 200;
      }, () => false)
      .then((ready) => {
        if (this.closed || backend.terminating) return;
        if (ready) {
          backend.failures = 0;
          if (++backend.successes >= this.successThreshold && !backend.inRotation) {
            backend.inRotation = true;
            this.events.push({ at: performance.now(), url: backend.url, event: this.events.some((e) => e.url === backend.url) ? 'ready again' : 'added' });
          }
        } else {
          backend.successes = 0;
          if (++backend.failures >= this.failureThreshold && backend.inRotation) {
            backend.inRotation = false;
            this.events.push({ at: performance.now(), url: backend.url, event: 'not ready' });
          }
        }
        backend.timer = setTimeout(() => this.poll(backend), this.pollIntervalMs);
      });
  }

  private pick(exclude: ReadonlySet<Backend>): Backend | undefined {
    const candidates = this.backends.filter((b) => b.inRotation && !exclude.has(b));
    if (candidates.length === 0) return undefined;
    return candidates[this.next++ % candidates.length];
  }

  private handle(request: IncomingMessage, response: ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => void this.forward(request, response, Buffer.concat(chunks)));
    request.on('error', () => response.destroy());
  }

  private async forward(request: IncomingMessage, response: ServerResponse, body: Buffer): Promise<void> {
    const tried = new Set<Backend>();
    // At most two attempts: the second only after a connect failure.
    for (let attempt = 1; attempt <= 2; attempt++) {
      const backend = this.pick(tried);
      if (!backend) {
        this.noBackend++;
        return reply(response, 503, { 'content-type': 'application/json' }, Buffer.from('{"error":"proxy: no backend in rotation"}'));
      }
      tried.add(backend);
      let status: number;
      let headers: IncomingHttpHeaders;
      let answer: Buffer;
      try {
        const upstream = await backend.pool.request({
          method: request.method as 'GET' | 'POST', path: request.url!, headers: endToEnd(request.headers),
          body: request.method === 'GET' || request.method === 'HEAD' ? undefined : body,
        });
        status = upstream.statusCode;
        headers = upstream.headers as IncomingHttpHeaders;
        answer = Buffer.from(await upstream.body.arrayBuffer());
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code ?? '';
        if (CONNECT_FAILURES.has(code)) {
          backend.connectFailures++;
          if (attempt === 1) {
            this.retries++;
            continue;
          }
        } else {
          backend.brokenAfterSend++;
        }
        this.badGateway++;
        return reply(response, 502, { 'content-type': 'application/json' }, Buffer.from(JSON.stringify({ error: `proxy: ${backend.url}: ${code} ${(error as Error).message}` })));
      }
      backend.responses[status] = (backend.responses[status] ?? 0) + 1;
      return reply(response, status, endToEnd(headers), answer);
    }
  }
}

function endToEnd(headers: IncomingHttpHeaders): Record<string, string | string[]> {
  const kept: Record<string, string | string[]> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name.toLowerCase())) kept[name] = value;
  }
  return kept;
}

function reply(response: ServerResponse, status: number, headers: Record<string, string | string[]>, body: Buffer): void {
  if (response.destroyed) return;
  response.writeHead(status, { ...headers, 'content-length': String(body.byteLength) });
  response.end(body);
}
