/**
 * Running `modelship` (or a sandbox wrapped around it) in a child process and judging it the way a user or a
 * container would: by exit code, stdout and stderr only. Shared by the CLI suites (cli, fetch-faults) so that the
 * contract they check, one `modelship: ...` line on stderr and an exit code, is spelled out once.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { CLI, REPO_ROOT } from './paths';

/** How a child process ended and what it printed. */
export interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** Wall-clock time from spawn to close, for the tests that check backoff and timeouts. */
  readonly milliseconds: number;
}

/** A {@link CliResult} that also holds what the child wrote to fd 3 (a channel kept apart from the CLI's output). */
export interface CliResultWithFd3 extends CliResult {
  readonly fd3: string;
}

export interface RunOptions {
  /** Variables added to the {@link cleanEnv cleaned} environment. */
  readonly env?: Record<string, string>;
  /** How long the child may run before it is killed and the run rejected; 20 s unless told. */
  readonly timeoutMs?: number;
  /** What the timeout error calls the command; the command and its arguments unless told. */
  readonly label?: string;
  /** The directory the command runs in. @default the repository root */
  readonly cwd?: string;
  /** Prefixes of variables to leave out as well, e.g. `npm_` for an npm that must not inherit the test run's config. @default none */
  readonly withoutEnv?: readonly string[];
}

/**
 * The environment without any MODELSHIP_* or OTEL_* variable of the shell running the tests (they would change what the CLI
 * does), and without NODE_TEST_CONTEXT, which would make a child `node` believe it runs under this test runner.
 */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('MODELSHIP_') && !key.startsWith('OTEL_') && key !== 'NODE_TEST_CONTEXT') env[key] = value;
  }
  return { ...env, ...extra };
}

function withoutPrefixes(env: NodeJS.ProcessEnv, prefixes: readonly string[]): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(env).filter(([key]) => !prefixes.some((prefix) => key.startsWith(prefix))));
}

/**
 * Runs `command` (from the repo root unless told) asynchronously: the fixture HTTP servers the tests start live in
 * this process,
 * so spawnSync would block the event loop they answer on. Kills the child if it outlives `timeoutMs` and rejects,
 * so that a command that hangs or loops fails its test instead of stalling the suite. With `fd3: true`, fd 3 of
 * the child is a pipe whose contents come back as `fd3`.
 */
export function runProcess(command: string, args: readonly string[], options: RunOptions & { readonly fd3: true }): Promise<CliResultWithFd3>;
export function runProcess(command: string, args: readonly string[], options?: RunOptions & { readonly fd3?: false }): Promise<CliResult>;
export function runProcess(
  command: string, args: readonly string[], options: RunOptions & { readonly fd3?: boolean } = {},
): Promise<CliResult | CliResultWithFd3> {
  const timeoutMs = options.timeoutMs ?? 20_000;
  const label = options.label ?? [command, ...args].join(' ');
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? REPO_ROOT,
      env: { ...withoutPrefixes(cleanEnv(), options.withoutEnv ?? []), ...options.env },
      stdio: ['ignore', 'pipe', 'pipe', ...(options.fd3 ? ['pipe' as const] : [])],
    });
    const out = { stdout: '', stderr: '', fd3: '' };
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { out.stdout += chunk; });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { out.stderr += chunk; });
    if (options.fd3) (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (chunk: string) => { out.fd3 += chunk; });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (error) => { clearTimeout(timer); reject(error); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new Error(`${label} did not exit within ${timeoutMs} ms\nstdout: ${out.stdout}\nstderr: ${out.stderr}`));
        return;
      }
      const { stdout, stderr, fd3 } = out;
      const milliseconds = Date.now() - started;
      resolve(options.fd3 ? { code, signal, stdout, stderr, fd3, milliseconds } : { code, signal, stdout, stderr, milliseconds });
    });
  });
}

/** `node runtime/bin/modelship.js ...args` as {@link runProcess} runs it: the CLI exactly as a user or a container starts it. */
export function runCli(args: readonly string[], options: Omit<RunOptions, 'label'> = {}): Promise<CliResult> {
  return runProcess(process.execPath, [CLI, ...args], { ...options, label: `modelship ${args.join(' ')}` });
}

/** Asserts the contract's failure form: exactly one `modelship: ...` line on stderr; returns that line. */
export function oneLineReason(result: CliResult): string {
  assert.ok(result.stderr.endsWith('\n'), `stderr should end with a newline: ${JSON.stringify(result.stderr)}`);
  const lines = result.stderr.slice(0, -1).split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got ${JSON.stringify(result.stderr)}`);
  assert.match(lines[0], /^modelship: \S/);
  return lines[0];
}

/** Asserts that the process exited by itself (not killed by a signal) with `code`, showing its output if not. */
export function expectExit(result: CliResult, code: number): void {
  assert.equal(result.signal, null, `killed by ${result.signal}`);
  assert.equal(result.code, code, `exit code ${result.code}, expected ${code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
}

/** pino's JSON log lines on stdout (the CLI logs JSON there; anything else on stdout is passed over). */
export function logLines(stdout: string): Array<{ level: number; msg: string; [key: string]: unknown }> {
  return stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line));
}

/** The messages of pino's warnings (level 40) on stdout: `fetch` logs one per failed attempt that it retries. */
export function retryWarnings(stdout: string): string[] {
  return logLines(stdout).filter((entry) => entry.level === 40).map((entry) => entry.msg);
}
