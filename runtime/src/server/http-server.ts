/**
 * The HTTP door: fastify with raw-body parsers for the content types the inference endpoints read, one error
 * shape (`{"error": "..."}`) for everything that goes wrong, the protocol routes, and /metrics.
 */
import type { Server as HttpsServer } from 'node:https';
import Fastify, { LogController, type FastifyBaseLogger, type FastifyReply, type FastifyError, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { PATHS } from '@modelship/contract';
import { acceptsOpenMetrics } from '../open-metrics';
import { InferenceError } from '../errors';
import type { InferenceCore } from '../core/inference';
import { BINARY_CONTENT_TYPE } from '../protocols/binary-extension';
import { registerTfServingRoutes } from '../protocols/tfserving-rest';
import { registerV2Routes } from '../protocols/v2-rest';
import type { Authenticator } from './auth';
import { policyOf } from './endpoints';
import { HttpDrain } from './http-drain';
import type { ServingCertificate } from './tls';

/**
 * Content types read as JSON. curl's `-d` sends application/x-www-form-urlencoded, and TF Serving reads that body
 * as JSON, so `curl -d '{"instances": ...}'` must work here too.
 */
const JSON_CONTENT_TYPES = ['application/json', 'application/x-www-form-urlencoded', 'text/plain'];

export interface HttpServerOptions {
  readonly maxBodyBytes: number;
  /** Seconds a client may take to send a whole request. */
  readonly requestTimeoutSeconds: number;
  readonly maxConnections: number;
  readonly serverVersion: string;
  readonly log: Logger;
  /** Bearer-token authentication; unset serves every endpoint to anyone. */
  readonly auth?: Authenticator;
  /** Serve HTTPS with this certificate, and with each renewal of it for new connections; unset serves plain HTTP. */
  readonly tls?: ServingCertificate;
}

export interface HttpServer {
  readonly app: FastifyInstance;
  readonly drain: HttpDrain;
}

export function createHttpServer(core: InferenceCore, options: HttpServerOptions): HttpServer {
  const timeouts = serverTimeouts(options.requestTimeoutSeconds);
  // An HTTPS instance has the same API; it is typed as the HTTP one so that the routes need not be generic.
  const app: FastifyInstance = Fastify({
    loggerInstance: options.log.child({ component: 'http' }) as FastifyBaseLogger,
    // A line per request would cost more than a small model's inference; the metrics count requests instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.maxBodyBytes,
    // Idle keep-alive connections are closed on shutdown; busy ones finish their request first.
    forceCloseConnections: 'idle',
    // Errors fastify and Node answer before any route runs get the same `{"error"}` body as every other error.
    frameworkErrors: (error, _request, reply) => {
      const plain = reply as unknown as FastifyReply;
      void plain.code(error.statusCode ?? 400).type('application/json').send({ error: error.message });
    },
    clientErrorHandler: answerClientError,
    // Slow clients (slowloris) cannot hold connections: headers within 10 s, the whole request within the timeout.
    requestTimeout: options.requestTimeoutSeconds * 1000,
    // Node checks those timeouts every connectionsCheckingInterval (30 s by default): check every second.
    // With TLS the same server options go to https.createServer, and a handshake gets as long as the headers.
    ...(options.tls
      ? { https: { ...options.tls.current, ...timeouts, handshakeTimeout: timeouts.headersTimeout } }
      : { http: timeouts }),
    return503OnClosing: false,
  }) as unknown as FastifyInstance;

  app.removeAllContentTypeParsers();
  app.addContentTypeParser(JSON_CONTENT_TYPES, { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  // What Triton's and KServe's clients send with binary tensor data; only the routes that read the extension take it.
  app.addContentTypeParser(BINARY_CONTENT_TYPE, { parseAs: 'buffer' }, (request, body, done) => {
    if (request.routeOptions.config.binaryTensorData === true) done(null, body);
    else done(new InferenceError(415, `content type '${BINARY_CONTENT_TYPE}' is not supported by ${request.method} ${request.url.split('?')[0]}; send application/json`), undefined);
  });

  app.setErrorHandler((error: FastifyError | InferenceError, request, reply) => {
    const status = error instanceof InferenceError ? error.status : errorStatus(error);
    const message = error instanceof InferenceError ? error.message : describeFastifyError(error, options.maxBodyBytes, request.headers['content-type']);
    if (status === 500) request.log.error({ url: request.url, status }, message);
    if (error instanceof InferenceError && error.retryAfterSeconds !== undefined) reply.header('retry-after', String(error.retryAfterSeconds));
    return reply.code(status).type('application/json').send({ error: message });
  });
  const drain = new HttpDrain(app.server, options.tls !== undefined);
  // The first onRequest hooks: a refused request is not parsed or counted against a model.
  app.addHook('onRequest', (request, reply, done) => {
    // Probes and scrapes answer throughout a drain and are not waited for.
    if (policyOf(request.routeOptions.config.endpoint).answersWhileDraining) {
      done();
      return;
    }
    if (!drain.isNewConnection(request.raw.socket)) {
      drain.track(reply.raw);
      done();
      return;
    }
    reply.code(503).header('retry-after', '1').type('application/json')
      .send({ error: 'the server is shutting down and takes no new work on connections opened since; retry on another replica' });
  });
  if (options.auth) app.addHook('onRequest', options.auth.restHook);
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ error: `no route for ${request.method} ${request.url.split('?')[0]}` }));

  app.addHook('onSend', (request, reply, payload, done) => {
    // JSON has no charset parameter (it is always UTF-8), and KServe's client shows error text only for exactly this.
    if (String(reply.getHeader('content-type')).startsWith('application/json;')) reply.header('content-type', 'application/json');
    if (lingersForBody(request.headers['content-length'], reply.statusCode, options.maxBodyBytes)) reply.removeHeader('connection');
    // While draining, tell keep-alive clients to reconnect, which takes them to a replica that is still serving.
    if (core.isDraining) reply.header('connection', 'close');
    done(null, payload);
  });

  app.get(PATHS.metrics, { config: { endpoint: 'metrics' } }, async (request, reply) => {
    // Without tracing there are no exemplars, and the text format is what every scraper reads.
    const { contentType, body } = await core.metrics.exposition(core.tracing !== undefined && acceptsOpenMetrics(request.headers.accept));
    return reply.type(contentType).send(body);
  });
  app.server.maxConnections = options.maxConnections;
  if (options.tls) {
    // A renewed certificate (already checked) for the connections made from now on.
    const server = app.server as unknown as HttpsServer;
    const stop = options.tls.onRenewal((pair) => server.setSecureContext(pair));
    app.addHook('onClose', (_instance, done) => {
      stop();
      done();
    });
  }
  registerV2Routes(app, core, options.serverVersion);
  registerTfServingRoutes(app, core);
  return { app, drain };
}

function serverTimeouts(requestTimeoutSeconds: number) {
  return { headersTimeout: Math.min(10, requestTimeoutSeconds) * 1000, connectionsCheckingInterval: 1000 };
}

function errorStatus(error: FastifyError): number {
  const status = error.statusCode ?? 500;
  return status >= 400 && status < 600 ? status : 500;
}

function describeFastifyError(error: FastifyError, maxBodyBytes: number, contentType: string | undefined): string {
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return `the request body exceeds the limit of ${maxBodyBytes} bytes (--max-body-bytes)`;
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return `content type '${contentType ?? ''}' is not supported; send application/json (or, to /v2 infer, ${BINARY_CONTENT_TYPE} with the Inference-Header-Content-Length header)`;
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return 'the Content-Length header does not match the body';
    default:
      return error.message;
  }
}

/** Malformed HTTP (bad headers, oversized headers, timeouts) answered with the `{"error"}` body, then closed. */
function answerClientError(error: Error & { code?: string }, socket: import('node:net').Socket): void {
  if (!socket.writable) return;
  const [status, reason, message] = error.code === 'HPE_HEADER_OVERFLOW' ? [431, 'Request Header Fields Too Large', 'the request headers are too large']
    : error.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? [408, 'Request Timeout', 'the request did not arrive within the request timeout (--request-timeout)']
      : [400, 'Bad Request', `the request is not valid HTTP: ${error.message}`];
  const body = JSON.stringify({ error: message });
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/**
 * A body refused as too large is answered before it is read, and closing the connection then would reset it under
 * a client still sending: most clients (fetch, Python's) report that reset instead of the 413. Kept open, the
 * connection reads the rest of the body and discards it, so the client finishes sending and reads the answer. Only
 * for a declared length of up to LINGER_FACTOR times the limit, so the discarding stays bounded; the request
 * timeout bounds the time.
 */
export function lingersForBody(contentLength: string | undefined, status: number, maxBodyBytes: number): boolean {
  if (status !== 413 || contentLength === undefined) return false;
  const declared = Number(contentLength);
  return Number.isSafeInteger(declared) && declared <= maxBodyBytes * LINGER_FACTOR;
}

const LINGER_FACTOR = 4;

