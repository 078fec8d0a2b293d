/**
 * `modelship serve`: finds the models, starts the HTTP and gRPC doors while they load (liveness answers at once, readiness
 * once every loadable model has loaded and warmed up), and drains on SIGTERM without dropping a request.
 */
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { PATHS } from '../../lib/contract/runtime';
import { grpcMessageLimit, type ServeSettings } from './config';
import { InferenceService } from './inference';
import { PayloadLogger } from './payload-log';
import { RuntimeMetrics } from './metrics';
import { ModelRegistry } from './model/registry';
import { modelsFromFlags, scanRepository, type ModelEntry } from './repository';
import { createAuthenticator } from './server/auth';
import { startGrpcServer, type GrpcServer } from './server/grpc-server';
import { createHttpServer } from './server/http-server';
import { RequestTracker } from './server/request-tracker';
import { loadTls } from './server/tls';

export interface RunningServer {
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly service: InferenceService;
  /** Resolves when every model has loaded or failed. */
  readonly loaded: Promise<void>;
  /** Stops accepting work, waits for in-flight requests (up to the drain timeout), then closes. True if drained. */
  shutdown(reason: string): Promise<boolean>;
}

const GRPC_CLOSE_GRACE_MS = 5000;
const UNTRACKED_PATHS = new Set<string>([PATHS.live, PATHS.ready, PATHS.metrics]);

export async function serve(settings: ServeSettings, log: Logger, serverVersion: string): Promise<RunningServer> {
  // Certificates and tokens first: a wrong path ends the start before any model loads.
  const tls = loadTls(settings, log.child({ component: 'tls' }));
  let entries: ModelEntry[];
  let auth: ReturnType<typeof createAuthenticator>;
  try {
    entries = findModels(settings, log);
    auth = createAuthenticator(settings, log);
  } catch (error) {
    tls?.close();
    throw error;
  }
  const metrics = new RuntimeMetrics();
  const registry = new ModelRegistry(entries, settings, metrics, log);
  const payloads = settings.payloadLogPercent > 0
    ? new PayloadLogger({ percent: settings.payloadLogPercent, maxBytes: settings.payloadLogMaxBytes, redact: settings.payloadLogRedact }, log.child({ component: 'payload' }))
    : undefined;
  const service = new InferenceService(registry, metrics, { maxTensorElements: settings.maxTensorElements, maxResponseBytes: settings.maxResponseBytes }, payloads);
  const tracker = new RequestTracker();
  const app = createHttpServer(service, {
    maxBodyBytes: settings.maxBodyBytes, requestTimeoutSeconds: settings.requestTimeoutSeconds,
    maxConnections: settings.maxConnections, serverVersion, log, auth, tls,
  });
  // Callback-style hooks: an async hook costs a promise per request, which shows at tens of thousands a second.
  app.addHook('onRequest', (request, reply, done) => {
    if (!service.isDraining && !UNTRACKED_PATHS.has(request.url)) tracker.track(reply.raw);
    done();
  });

  await app.listen({ port: settings.httpPort, host: settings.host });
  const httpPort = (app.server.address() as AddressInfo).port;
  const security = { tls: tls !== undefined, auth: auth !== undefined };
  log.info({ protocol: 'http', host: settings.host, port: httpPort, ...security }, `listening for ${tls ? 'HTTPS' : 'REST'} on ${settings.host}:${httpPort}`);
  let grpc: GrpcServer;
  try {
    grpc = await startGrpcServer(service, { host: settings.host, port: settings.grpcPort, maxBodyBytes: grpcMessageLimit(settings), serverVersion, log, tracker, auth, tls });
  } catch (error) {
    await app.close();
    await registry.close();
    auth?.close();
    tls?.close();
    throw error;
  }
  const grpcPort = grpc.port;
  log.info({ protocol: 'grpc', host: settings.host, port: grpcPort, ...security }, `listening for gRPC${tls ? ' over TLS' : ''} on ${settings.host}:${grpcPort}`);

  const loaded = registry.loadAll().then(() => {
    const versions = registry.allVersions();
    const ready = versions.filter((v) => v.state === 'READY').length;
    log.info({ ready, failed: versions.length - ready }, registry.ready ? 'ready' : 'no model version could be loaded; not ready');
  });

  // New versions dropped into the repository are loaded and switched to without a restart (registry.refresh).
  let polling: NodeJS.Timeout | undefined;
  if (settings.modelRepository && settings.pollRepositorySeconds > 0) {
    let scanning = false;
    polling = setInterval(() => {
      if (scanning || service.isDraining) return;
      scanning = true;
      void loaded
        .then(() => registry.refresh(scanRepository(settings.modelRepository!).models, settings.drainTimeoutSeconds))
        .catch((error: Error) => log.error(`rescanning the model repository failed: ${error.message}`))
        .finally(() => { scanning = false; });
    }, settings.pollRepositorySeconds * 1000);
    polling.unref();
  }

  let stopping: Promise<boolean> | undefined;
  const shutdown = (reason: string) => (stopping ??= (clearInterval(polling), drain(app, grpc, service, registry, tracker, settings.drainTimeoutSeconds, reason, log)
    .finally(() => {
      // The file watchers hold no reference on the event loop, but nothing should reload after the doors closed.
      auth?.close();
      tls?.close();
    })));
  return { httpPort, grpcPort, service, loaded, shutdown };
}

function findModels(settings: ServeSettings, log: Logger): ModelEntry[] {
  if (!settings.modelRepository) return modelsFromFlags(settings.model);
  const { models, skipped } = scanRepository(settings.modelRepository);
  for (const reason of skipped) log.warn(`skipped ${reason}`);
  if (models.length === 0) log.warn(`the model repository '${settings.modelRepository}' holds no model directory`);
  return [...models];
}

async function drain(
  app: FastifyInstance, grpc: GrpcServer, service: InferenceService, registry: ModelRegistry, tracker: RequestTracker,
  timeoutSeconds: number, reason: string, log: Logger,
): Promise<boolean> {
  service.startDraining();
  log.info({ inFlight: tracker.count, timeoutSeconds }, `${reason}: draining; readiness now answers 503`);
  const deadline = Date.now() + timeoutSeconds * 1000;
  // Runs of requests whose clients went away still occupy the workers: wait for those too before stopping them.
  const drained = await beforeDeadline(tracker.idle(), deadline) && await beforeDeadline(registry.idle(), deadline);
  if (!drained) {
    log.error({ inFlight: tracker.count }, `drain timeout of ${timeoutSeconds}s passed with requests still in flight; exiting`);
    // A session run cannot be interrupted: onnxruntime-node aborts the process when a worker is stopped
    // mid-run, and process.exit stops workers. Ending at once is what the drain timeout promises.
    grpc.forceClose();
    process.kill(process.pid, 'SIGKILL');
  }
  // Every tracked call has been answered; what is left on either port is health checks and idle connections.
  await Promise.all([app.close(), closeGrpc(grpc, log)]);
  await registry.close();
  log.info({ drained }, 'stopped');
  return drained;
}

/** A graceful gRPC close, forced if a client holds a call open for longer than a few seconds. */
async function closeGrpc(grpc: GrpcServer, log: Logger): Promise<void> {
  if (!await beforeDeadline(grpc.close(), Date.now() + GRPC_CLOSE_GRACE_MS)) {
    log.warn(`gRPC calls still open ${GRPC_CLOSE_GRACE_MS} ms after the drain; closing them`);
    grpc.forceClose();
  }
}

function beforeDeadline(work: Promise<void>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now())); });
  return Promise.race([work.then(() => true), timeout]).finally(() => clearTimeout(timer));
}
