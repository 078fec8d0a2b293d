/**
 * `modelship serve`: finds the models, starts the HTTP and gRPC doors while they load (liveness answers at once, readiness
 * once every loadable model has loaded and warmed up), and drains on SIGTERM without dropping a request.
 */
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { SERVE_SETTINGS } from '@modelship/contract';
import type { ResolvedServeSettings, ServeSettings } from './config';
import { CodecPool } from './core/codec-pool';
import { InferenceCore } from './core/inference';
import { containerResources } from './resources';
import { beforeDeadline } from './deadline';
import { PayloadEventSink } from './payload-events';
import { PayloadLogger } from './payload-log';
import { RuntimeMetrics } from './metrics';
import { ModelRegistry } from './model/registry';
import { modelFromDirectory, modelsFromFlags, scanRepository, type ModelEntry } from './repository';
import { createAuthenticator } from './server/auth';
import { startGrpcServer, type GrpcServer } from './server/grpc-server';
import { createHttpServer, type HttpServer } from './server/http-server';
import { loadTls } from './server/tls';
import { tracingConfig } from './tracing/environment';
import { Tracing } from './tracing/tracing';

export interface RunningServer {
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly core: InferenceCore;
  /** Resolves when every model has loaded or failed, with the versions that failed. */
  readonly loaded: Promise<readonly LoadFailure[]>;
  /** Stops accepting work, waits for in-flight requests (up to the drain timeout), then closes. True if drained. */
  shutdown(reason: string): Promise<boolean>;
}

export interface LoadFailure {
  readonly name: string;
  readonly version: number;
  readonly reason: string;
}

/**
 * Bodies and JSON answers from this size on are decoded and encoded on codec threads: below it the thread hop costs
 * more main-thread time than the work it moves (docs/benchmarks.md, codec threads).
 */
const CODEC_THREAD_FROM_BYTES = 16 * 1024;
/** How long the payload sink may take to send what is queued when the server stops. */
const EVENTS_FLUSH_MS = 2000;

export async function serve(settings: ResolvedServeSettings, log: Logger, serverVersion: string): Promise<RunningServer> {
  // Certificates and tokens first: a wrong path ends the start before any model loads.
  const tls = loadTls(settings, log.child({ component: 'tls' }));
  let entries: ModelEntry[];
  let auth: ReturnType<typeof createAuthenticator>;
  let tracingSettings: ReturnType<typeof tracingConfig>;
  try {
    entries = findModels(settings, log);
    // OTEL_* variables are read here so a wrong one ends the start with the others' mistakes, before any load.
    tracingSettings = tracingConfig();
    auth = createAuthenticator(settings, log);
  } catch (error) {
    tls?.close();
    throw error;
  }
  const tracing = tracingSettings && new Tracing(tracingSettings, serverVersion);
  if (tracingSettings) log.info({ endpoint: tracingSettings.endpoint, sampler: tracingSettings.sampler, ratio: tracingSettings.ratio }, `tracing to ${tracingSettings.endpoint}`);
  const metrics = new RuntimeMetrics();
  // The container's CPU and memory limits, read from its cgroup once: the session workers and codec threads are sized from them.
  const resources = containerResources();
  const registry = new ModelRegistry(entries, settings, metrics, log, resources, tracing);
  // With a sink, sampled payloads go there instead of stdout: one place to look, and no record written twice.
  const events = settings.payloadLogUrl !== undefined
    ? new PayloadEventSink({
      url: settings.payloadLogUrl, percent: settings.payloadLogPercent, maxBytes: settings.payloadLogMaxBytes,
      redact: settings.payloadLogRedact, source: settings.payloadLogSource ?? `http://localhost:${settings.httpPort}/`,
      serviceName: settings.payloadLogServiceName, namespace: settings.payloadLogNamespace ?? '',
    }, metrics.payloadEventsDropped, log.child({ component: 'payload-events' }))
    : undefined;
  const payloads = settings.payloadLogPercent > 0 && events === undefined
    ? new PayloadLogger({ percent: settings.payloadLogPercent, maxBytes: settings.payloadLogMaxBytes, redact: settings.payloadLogRedact }, log.child({ component: 'payload' }))
    : undefined;
  const limits = {
    maxTensorElements: settings.maxTensorElements, maxResponseBytes: settings.maxResponseBytes,
    explain: { maxSamples: settings.maxExplainSamples, maxQueueSize: settings.maxExplainQueueSize, timeoutSeconds: settings.explainTimeoutSeconds },
  };
  const codecs = new CodecPool({ threads: resources.cpus, offloadFromBytes: CODEC_THREAD_FROM_BYTES });
  const core = new InferenceCore(registry, metrics, limits, codecs, { payloads, events, tracing });
  const http = createHttpServer(core, {
    maxBodyBytes: settings.maxBodyBytes, requestTimeoutSeconds: settings.requestTimeoutSeconds,
    maxConnections: settings.maxConnections, serverVersion, log, auth, tls,
  });
  const { app } = http;
  // A port that cannot be bound ends the start: nothing it began may keep the process alive.
  const release = async () => {
    await app.close();
    await registry.close();
    await tracing?.shutdown(0);
    auth?.close();
    tls?.close();
  };

  try {
    await app.listen({ port: settings.httpPort, host: settings.host });
  } catch (error) {
    await release();
    throw listenFailure(error as Error, 'http', settings);
  }
  const httpPort = (app.server.address() as AddressInfo).port;
  const security = { tls: tls !== undefined, auth: auth !== undefined };
  log.info({ protocol: 'http', host: settings.host, port: httpPort, ...security }, `listening for ${tls ? 'HTTPS' : 'REST'} on ${settings.host}:${httpPort}`);
  let grpc: GrpcServer;
  try {
    grpc = await startGrpcServer(core, { host: settings.host, port: settings.grpcPort, maxBodyBytes: settings.maxGrpcMessageBytes, serverVersion, log, auth, tls });
  } catch (error) {
    await release();
    throw listenFailure(error as Error, 'grpc', settings);
  }
  const grpcPort = grpc.port;
  log.info({ protocol: 'grpc', host: settings.host, port: grpcPort, ...security }, `listening for gRPC${tls ? ' over TLS' : ''} on ${settings.host}:${grpcPort}`);

  const loaded = registry.loadAll().then(() => {
    const versions = registry.allVersions();
    const ready = versions.filter((v) => v.state === 'READY').length;
    log.info({ ready, failed: versions.length - ready }, registry.ready ? 'ready' : 'no model version could be loaded; not ready');
    return versions.filter((v) => v.state === 'UNAVAILABLE').map((v) => ({ name: v.name, version: v.version, reason: v.reason ?? 'unknown' }));
  });

  // New versions dropped into the repository are loaded and switched to without a restart (registry.refresh).
  let polling: NodeJS.Timeout | undefined;
  if (settings.modelRepository && settings.pollRepositorySeconds > 0) {
    let scanning = false;
    polling = setInterval(() => {
      if (scanning || core.isDraining) return;
      scanning = true;
      void loaded
        .then(() => registry.refresh(scanRepository(settings.modelRepository!).models, settings.drainTimeoutSeconds))
        .catch((error: Error) => log.error(`rescanning the model repository failed: ${error.message}`))
        .finally(() => { scanning = false; });
    }, settings.pollRepositorySeconds * 1000);
    polling.unref();
  }

  let stopping: Promise<boolean> | undefined;
  const shutdown = (reason: string) => (stopping ??= (clearInterval(polling), drain(http, grpc, core, settings.drainTimeoutSeconds, reason, log)
    // The last requests' events are sent for a moment more; the sink is closed on any outcome of the drain.
    .finally(() => events?.close(EVENTS_FLUSH_MS))
    // The last requests' spans too; what the collector has not taken by then is dropped.
    .finally(() => tracing?.shutdown(EVENTS_FLUSH_MS))
    .finally(() => {
      void codecs.close();
      // The file watchers hold no reference on the event loop, but nothing should reload after the doors closed.
      auth?.close();
      tls?.close();
    })));
  return { httpPort, grpcPort, core, loaded, shutdown };
}

/**
 * A port or address that cannot be bound, told as the flag (and variable) that chose it and what to do, instead of
 * node's 'listen EADDRINUSE: address already in use 0.0.0.0:8080' that names neither the door nor the flag.
 */
function listenFailure(error: Error, door: 'http' | 'grpc', settings: ServeSettings): Error {
  const code = (error as NodeJS.ErrnoException).code ?? /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL|ENOTFOUND|EAI_AGAIN)\b/.exec(error.message)?.[1];
  const setting = SERVE_SETTINGS[door === 'http' ? 'httpPort' : 'grpcPort'];
  const port = door === 'http' ? settings.httpPort : settings.grpcPort;
  const what = `the ${door === 'http' ? 'HTTP' : 'gRPC'} port ${port} (--${setting.flag}, ${setting.env})`;
  const host = `--host ${settings.host} (${SERVE_SETTINGS.host.env})`;
  switch (code) {
    case 'EADDRINUSE':
      if (door === 'grpc' && settings.grpcPort === settings.httpPort) {
        return new Error(`${what} is also the HTTP port (--${SERVE_SETTINGS.httpPort.flag}): give REST and gRPC different ports`);
      }
      return new Error(`${what} is already in use on ${settings.host}: stop the process that holds it, or choose another port with --${setting.flag} (0 picks a free one)`);
    case 'EACCES':
      return new Error(`${what} needs privileges to bind (ports below 1024 need root or CAP_NET_BIND_SERVICE): choose a port from 1024 up with --${setting.flag}`);
    case 'EADDRNOTAVAIL':
      return new Error(`cannot listen on ${host}: no network interface of this machine has that address; use 0.0.0.0 for all of them, or 127.0.0.1`);
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return new Error(`cannot listen on ${host}: the name does not resolve to an address of this machine; use an IP address such as 0.0.0.0 or 127.0.0.1`);
    default:
      return error;
  }
}

function findModels(settings: ServeSettings, log: Logger): ModelEntry[] {
  if (settings.modelDir === undefined && !settings.modelRepository) return modelsFromFlags(settings.model);
  const { models, skipped } = settings.modelDir !== undefined
    ? modelFromDirectory(settings.modelDir, settings.modelName!)
    : scanRepository(settings.modelRepository!);
  for (const reason of skipped) log.warn(`skipped ${reason}`);
  if (models.length === 0) log.warn(`the model repository '${settings.modelRepository}' holds no model directory`);
  return [...models];
}

/**
 * Readiness turns 503 at once; gRPC stops listening and sends GOAWAY; HTTP keeps listening (probes answer on new
 * connections) while the requests on connections from before the signal are served. Done when those connections
 * have closed, every gRPC call has finished and the session workers are idle (runs of requests whose clients went
 * away still occupy them), or at the drain timeout.
 */
async function drain(http: HttpServer, grpc: GrpcServer, core: InferenceCore, timeoutSeconds: number, reason: string, log: Logger): Promise<boolean> {
  core.startDraining();
  const grpcClosed = grpc.close();
  await http.drain.start();
  log.info({ inFlight: inFlight(http, core), timeoutSeconds }, `${reason}: draining; readiness now answers 503`);
  const deadline = Date.now() + timeoutSeconds * 1000;
  const drained = await beforeDeadline(Promise.all([http.drain.idle(), grpcClosed]).then(() => core.registry.idle()), deadline);
  if (!drained) {
    log.error({ inFlight: inFlight(http, core) }, `drain timeout of ${timeoutSeconds}s passed with requests still in flight; exiting`);
    // A session run cannot be interrupted: onnxruntime-node aborts the process when a worker is stopped
    // mid-run, and process.exit stops workers. Ending at once is what the drain timeout promises.
    grpc.forceClose();
    process.kill(process.pid, 'SIGKILL');
  }
  // What is left on the HTTP port is probes and idle connections.
  await http.app.close();
  await core.registry.close();
  log.info({ drained }, 'stopped');
  return drained;
}

/** Requests in progress on both ports: REST ones from their arrival (bodies still being read count), gRPC ones in the core. */
function inFlight(http: HttpServer, core: InferenceCore): number {
  return http.drain.inProgress + core.inFlight.grpc.count;
}
