/**
 * Real Prometheus and Alertmanager servers (Debian's `prometheus` and `prometheus-alertmanager` packages) started by
 * a test on loopback with throwaway config and storage directories, a webhook receiver for Alertmanager, and small
 * clients for the HTTP APIs the tests assert through. Every process is killed by `stop()`, and with SIGKILL when the
 * test process exits without stopping it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import * as YAML from 'yaml';
import { sleep } from './wait';

export const PROMETHEUS_BIN = '/usr/bin/prometheus';
export const ALERTMANAGER_BIN = '/usr/bin/prometheus-alertmanager';

/** Throws, naming the Debian package to install, when a server binary is missing: the test must not pass without it. */
export function requireBinary(path: string, debianPackage: string): void {
  if (!existsSync(path)) {
    throw new Error(`${path} is missing: install Debian's '${debianPackage}' package (apt-get install -y ${debianPackage}); .ci/run installs it`);
  }
}

/** A port that was free a moment ago (listen on 0, then close); servers that lose the race are restarted. */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface ServerProcess {
  /** e.g. http://127.0.0.1:41234 */
  readonly url: string;
  readonly process: ChildProcess;
  /** The directory holding its config and storage; removed by stop(). */
  readonly dir: string;
  /** The last lines of its stdout and stderr, for failure messages. */
  readonly output: readonly string[];
  /** SIGTERM, SIGKILL after 5 s; then removes `dir`. Safe to call twice. */
  stop(): Promise<void>;
}

const OUTPUT_LINES = 200;

/**
 * Starts `bin` with the args for a port, and waits until `<url>/-/ready` answers 200. A process that exits before
 * (a port taken in the meantime) is started again on another port, up to three times.
 */
async function startServer(name: string, bin: string, dir: string, args: (port: number) => string[], timeoutMs: number): Promise<ServerProcess> {
  const failures: string[] = [];
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn(bin, args(port), { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
    const killOnExit = () => child.kill('SIGKILL');
    process.once('exit', killOnExit);
    const output: string[] = [];
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        output.push(line);
        if (output.length > OUTPUT_LINES) output.shift();
      });
    }
    const closed = once(child, 'close').then(() => undefined);
    let stopped = false;
    const url = `http://127.0.0.1:${port}`;
    const server: ServerProcess = {
      url, process: child, dir, output,
      async stop() {
        if (!stopped) {
          stopped = true;
          if (child.exitCode === null && child.signalCode === null) {
            child.kill('SIGTERM');
            const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
            await closed;
            clearTimeout(timer);
          }
          process.removeListener('exit', killOnExit);
          rmSync(dir, { recursive: true, force: true });
        }
        await closed;
      },
    };
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline && child.exitCode === null && child.signalCode === null) {
      const response = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(1_000) }).catch(() => undefined);
      await response?.body?.cancel();
      if (response?.status === 200) return server;
      await sleep(50);
    }
    const exited = child.exitCode !== null || child.signalCode !== null;
    if (!exited) {
      child.kill('SIGKILL');
      await closed;
      process.removeListener('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`${name} was not ready on ${url} within ${timeoutMs} ms:\n${output.join('\n')}`);
    }
    await closed;
    process.removeListener('exit', killOnExit);
    failures.push(`attempt ${attempt + 1} (port ${port}) exited with ${child.exitCode ?? child.signalCode}:\n${output.slice(-20).join('\n')}`);
    if (!output.some((line) => /address already in use/i.test(line))) break;
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`${name} did not start:\n${failures.join('\n')}`);
}

export interface PrometheusOptions {
  /** `prometheus.yml` as an object; relative `rule_files` resolve against the directory `files` are written to. */
  readonly config: Record<string, unknown>;
  /** Further files beside it, e.g. `{ 'rules.yaml': monitoring.rulesFile() }`. */
  readonly files?: Readonly<Record<string, string>>;
  /** @default 15_000 */
  readonly timeoutMs?: number;
  /** Further command-line flags, e.g. `--enable-feature=exemplar-storage`. @default none */
  readonly args?: readonly string[];
}

/** Starts Prometheus on a free loopback port with the config and files in a temporary directory. */
export async function startPrometheus(options: PrometheusOptions): Promise<ServerProcess> {
  requireBinary(PROMETHEUS_BIN, 'prometheus');
  const dir = mkdtempSync(join(tmpdir(), 'modelship-prometheus-'));
  for (const [name, text] of Object.entries(options.files ?? {})) writeFileSync(join(dir, name), text);
  writeFileSync(join(dir, 'prometheus.yml'), YAML.stringify(options.config));
  return startServer('prometheus', PROMETHEUS_BIN, dir, (port) => [
    `--config.file=${join(dir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    ...(options.args ?? []),
  ], options.timeoutMs ?? 15_000);
}

export interface AlertmanagerOptions {
  /** `alertmanager.yml` as an object. */
  readonly config: Record<string, unknown>;
  /** @default 15_000 */
  readonly timeoutMs?: number;
}

/** Starts Alertmanager on a free loopback port, clustering off, with the config in a temporary directory. */
export async function startAlertmanager(options: AlertmanagerOptions): Promise<ServerProcess> {
  requireBinary(ALERTMANAGER_BIN, 'prometheus-alertmanager');
  const dir = mkdtempSync(join(tmpdir(), 'modelship-alertmanager-'));
  writeFileSync(join(dir, 'alertmanager.yml'), YAML.stringify(options.config));
  return startServer('alertmanager', ALERTMANAGER_BIN, dir, (port) => [
    `--config.file=${join(dir, 'alertmanager.yml')}`,
    `--storage.path=${join(dir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
    // An empty address turns the gossip cluster off: no port 9094, no peers to wait for.
    '--cluster.listen-address=',
  ], options.timeoutMs ?? 15_000);
}

export interface Sample {
  readonly metric: Record<string, string>;
  readonly value: number;
}

/** An instant query through /api/v1/query; the result must be a vector. */
export async function query(prometheusUrl: string, promql: string): Promise<Sample[]> {
  const response = await fetch(`${prometheusUrl}/api/v1/query?${new URLSearchParams({ query: promql })}`, { signal: AbortSignal.timeout(5_000) });
  const body = await response.json() as { status: string; error?: string; data?: { resultType: string; result: { metric: Record<string, string>; value: [number, string] }[] } };
  if (body.status !== 'success' || !body.data) throw new Error(`query ${promql} failed (${response.status}): ${body.error ?? JSON.stringify(body)}`);
  if (body.data.resultType !== 'vector') throw new Error(`query ${promql} returned a ${body.data.resultType}, not a vector`);
  return body.data.result.map((r) => ({ metric: r.metric, value: Number(r.value[1]) }));
}

export interface PrometheusAlert {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly state: 'pending' | 'firing';
  readonly activeAt: string;
  readonly value: string;
}

/** The pending and firing alerts, from /api/v1/alerts. */
export async function alerts(prometheusUrl: string): Promise<PrometheusAlert[]> {
  const response = await fetch(`${prometheusUrl}/api/v1/alerts`, { signal: AbortSignal.timeout(5_000) });
  const body = await response.json() as { status: string; data: { alerts: PrometheusAlert[] } };
  if (body.status !== 'success') throw new Error(`/api/v1/alerts failed (${response.status}): ${JSON.stringify(body)}`);
  return body.data.alerts;
}

/** Alertmanager's webhook payload (version 4). */
export interface WebhookPayload {
  readonly version: string;
  readonly status: 'firing' | 'resolved';
  readonly receiver: string;
  readonly groupLabels: Record<string, string>;
  readonly commonLabels: Record<string, string>;
  readonly alerts: readonly {
    readonly status: 'firing' | 'resolved';
    readonly labels: Record<string, string>;
    readonly annotations: Record<string, string>;
    readonly startsAt: string;
    readonly generatorURL: string;
  }[];
}

export interface WebhookReceiver {
  /** The URL to give Alertmanager, e.g. http://127.0.0.1:41234/alerts */
  readonly url: string;
  readonly received: readonly WebhookPayload[];
  close(): Promise<void>;
}

/** A local HTTP server that records every JSON payload POSTed to it. */
export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: WebhookPayload[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      try {
        received.push(JSON.parse(Buffer.concat(chunks).toString('utf8')) as WebhookPayload);
        response.writeHead(200).end();
      } catch {
        response.writeHead(400).end();
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/alerts`,
    received,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** General waiting helpers, re-exported for the monitoring suites that import them from here. */
export { sleep, waitFor } from './wait';
