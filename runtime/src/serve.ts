/**
 * `modelship serve`: finds the models, starts the HTTP door while they load (liveness answers at once, readiness
 * once every loadable model has loaded and warmed up), and drains on SIGTERM without dropping a request.
 */
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { PATHS } from '../../lib/contract/runtime';
import type { ServeSettings } from './config';
import { InferenceService } from './inference';
import { RuntimeMetrics } from './metrics';
import { ModelRegistry } from './model/registry';
import { modelsFromFlags, scanRepository, type ModelEntry } from './repository';
import { createHttpServer } from './server/http-server';
import { RequestTracker } from './server/request-tracker';

export interface RunningServer {
  readonly httpPort: number;
  readonly service: InferenceService;
  /** Resolves when every model has loaded or failed. */
  readonly loaded: Promise<void>;
  /** Stops accepting work, waits for in-flight requests (up to the drain timeout), then closes. True if drained. */
  shutdown(reason: string): Promise<boolean>;
}

const UNTRACKED_PATHS = new Set<string>([PATHS.live, PATHS.ready, PATHS.metrics]);

export async function serve(settings: ServeSettings, log: Logger, serverVersion: string): Promise<RunningServer> {
  const entries = findModels(settings, log);
  const metrics = new RuntimeMetrics();
  const registry = new ModelRegistry(entries, settings, metrics, log);
  const service = new InferenceService(registry, metrics, { maxTensorElements: settings.maxTensorElements });
  const tracker = new RequestTracker();
  const app = createHttpServer(service, { maxBodyBytes: settings.maxBodyBytes, serverVersion, log });
  app.addHook('onRequest', async (request, reply) => {
    if (!service.isDraining && !UNTRACKED_PATHS.has(request.url)) tracker.track(reply.raw);
  });

  await app.listen({ port: settings.httpPort, host: settings.host });
  const httpPort = (app.server.address() as AddressInfo).port;
  log.info({ protocol: 'http', host: settings.host, port: httpPort }, `listening for REST on ${settings.host}:${httpPort}`);

  const loaded = registry.loadAll().then(() => {
    const versions = registry.allVersions();
    const ready = versions.filter((v) => v.state === 'READY').length;
    log.info({ ready, failed: versions.length - ready }, registry.ready ? 'ready' : 'no model version could be loaded; not ready');
  });

  let stopping: Promise<boolean> | undefined;
  const shutdown = (reason: string) => (stopping ??= drain(app, service, registry, tracker, settings.drainTimeoutSeconds, reason, log));
  return { httpPort, service, loaded, shutdown };
}

function findModels(settings: ServeSettings, log: Logger): ModelEntry[] {
  if (!settings.modelRepository) return modelsFromFlags(settings.model);
  const { models, skipped } = scanRepository(settings.modelRepository);
  for (const reason of skipped) log.warn(`skipped ${reason}`);
  if (models.length === 0) log.warn(`the model repository '${settings.modelRepository}' holds no model directory`);
  return [...models];
}

async function drain(
  app: FastifyInstance, service: InferenceService, registry: ModelRegistry, tracker: RequestTracker,
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
    process.kill(process.pid, 'SIGKILL');
  }
  await app.close();
  await registry.close();
  log.info({ drained }, 'stopped');
  return drained;
}

function beforeDeadline(work: Promise<void>, deadline: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => { timer = setTimeout(() => resolve(false), Math.max(0, deadline - Date.now())); });
  return Promise.race([work.then(() => true), timeout]).finally(() => clearTimeout(timer));
}
