/**
 * Starts the real runtime as a child process (`node runtime/bin/modelship.js serve ...`) on free ports (HTTP and gRPC), the
 * way a container would run it, and collects its JSON log lines.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { cleanEnv } from './cli-process';
import { CLI } from './paths';

export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [key: string]: unknown;
}

export interface RuntimeProcess {
  readonly url: string;
  /** The gRPC port, from the runtime's `{"protocol":"grpc"}` log line. */
  readonly grpcPort: number;
  readonly process: ChildProcess;
  readonly logs: LogLine[];
  readonly stderr: string[];
  /** Resolves with the exit code once the process has exited. */
  readonly exited: Promise<number | null>;
  /** Sends SIGTERM (unless already exited) and waits for the exit code. */
  stop(): Promise<number | null>;
}

export interface StartOptions {
  /** Wait until /v2/health/ready answers 200. @default true */
  readonly waitReady?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  /** @default 60_000 */
  readonly timeoutMs?: number;
  /**
   * cgroup.procs files (test/helpers/cgroup.ts) to put the runtime in before node starts, so that it starts inside
   * the cgroups' limits and reads them as it would in a pod.
   */
  readonly cgroups?: readonly string[];
  /** The `modelship` bin to start, e.g. one an installed package provides. @default the repository's runtime/bin/modelship.js */
  readonly cli?: string;
  /**
   * `args` is the whole command line after the bin, as a container's args give it: `serve`, the ports and the host
   * are not added. The ports must still be free ones (0) for the helper to read them from the log.
   * @default false
   */
  readonly exactArgs?: boolean;
}

export async function startRuntime(args: readonly string[], options: StartOptions = {}): Promise<RuntimeProcess> {
  // A flag given again in `args` wins: node's parseArgs keeps the last value.
  const command = [process.execPath, options.cli ?? CLI, ...(options.exactArgs ? [] : ['serve', '--http-port', '0', '--grpc-port', '0', '--host', '127.0.0.1']), ...args];
  // The shell joins each cgroup and then becomes node, so node's first instruction already runs within the limits.
  const cgroups = options.cgroups ?? [];
  const [file, ...argv] = cgroups.length === 0 ? command
    : ['/bin/sh', '-c', `for procs in ${cgroups.map((path) => `'${path}'`).join(' ')}; do echo $$ > "$procs" || exit 97; done; exec "$@"`, 'sh', ...command];
  const child = spawn(file, argv, {
    // Not the shell's MODELSHIP_* variables: a test's runtime gets only the settings the test gives it.
    env: { ...cleanEnv(), ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  const stderr: string[] = [];
  // 'close' rather than 'exit': it waits for stdout and stderr to end, so no log line is missed.
  const exited = once(child, 'close').then(([code]) => code as number | null);
  createInterface({ input: child.stderr! }).on('line', (line) => stderr.push(line));
  const ports = new Promise<{ http: number; grpc: number }>((resolve, reject) => {
    let http: number | undefined;
    let grpc: number | undefined;
    createInterface({ input: child.stdout! }).on('line', (line) => {
      let entry: LogLine;
      try {
        entry = JSON.parse(line) as LogLine;
      } catch {
        return;
      }
      logs.push(entry);
      if (entry.protocol === 'http' && typeof entry.port === 'number') http = entry.port;
      if (entry.protocol === 'grpc' && typeof entry.port === 'number') grpc = entry.port;
      if (http !== undefined && grpc !== undefined) resolve({ http, grpc });
    });
    void exited.then((code) => reject(new Error(`runtime exited with ${code} before listening: ${stderr.join('\n')}`)));
  });
  const timeoutMs = options.timeoutMs ?? 60_000;
  const { http, grpc: grpcPort } = await withTimeout(ports, timeoutMs, 'the runtime did not start listening');
  const url = `http://127.0.0.1:${http}`;
  const runtime: RuntimeProcess = {
    url, grpcPort, process: child, logs, stderr, exited,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  if (options.waitReady ?? true) await waitUntilReady(runtime, timeoutMs);
  return runtime;
}

export async function waitUntilReady(runtime: RuntimeProcess, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const response = await fetch(`${runtime.url}/v2/health/ready`).catch(() => undefined);
    if (response?.status === 200) return;
    await response?.body?.cancel();
    if (runtime.process.exitCode !== null) throw new Error(`runtime exited: ${runtime.stderr.join('\n')}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`the runtime was not ready within ${timeoutMs} ms`);
}

function withTimeout<T>(promise: Promise<T>, ms: number, message: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<T>((_, reject) => { timer = setTimeout(() => reject(new Error(message)), ms); }),
  ]);
}

/** POSTs JSON and returns the status and parsed body. */
export async function postJson(url: string, body: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const response = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined, headers: response.headers };
}

export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const response = await fetch(url);
  const text = await response.text();
  return { status: response.status, body: text ? JSON.parse(text) : undefined };
}

/** Sum and count of one model's histogram in the runtime's /metrics text (0 when the series does not exist yet). */
export function histogramOf(metrics: string, name: string, model: string): { sum: number; count: number } {
  const value = (suffix: string) => Number(metrics.split('\n').find((line) => line.startsWith(`${name}_${suffix}{`) && line.includes(`model="${model}"`))?.split(' ').at(-1) ?? 0);
  return { sum: value('sum'), count: value('count') };
}
