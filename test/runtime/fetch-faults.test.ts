/**
 * `modelship fetch` meeting the faults an init container meets, judged by exit code, stderr and what is left at the
 * destination: a file system that fills up mid-download (a size-limited tmpfs under bubblewrap, as a memory-backed
 * emptyDir is), and a server that promises more bytes than it sends or stops sending. In every case the outcome
 * must be prompt and plain: a one-line reason naming the fault, and no model.onnx (whole or partial) and no
 * temporary file left where the server would look.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MODEL_FILE_NAME, MODEL_REPOSITORY_PATH, RUNTIME_GID, RUNTIME_UID } from '../../lib/contract/runtime';
import { sendBytes, sendHalfThenDrop, startFixtureServer, type FixtureServer } from '../helpers/http-fixture-server';
import { CLI, REPO_ROOT } from '../helpers/paths';

const BWRAP = '/usr/bin/bwrap';
const MiB = 1024 * 1024;
/** Bigger than the small tmpfs and smaller than the big one; random, so nothing along the way can compress it. */
const MODEL = randomBytes(3 * MiB);
const DIGEST = createHash('sha256').update(MODEL).digest('hex');

interface CliResult {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
  /** What fd 3 carried: the sandbox's report of its destination file system, written after the CLI exited. */
  readonly fd3: string;
  readonly milliseconds: number;
}

/** The environment without any MODELSHIP_* variable of the shell running the tests. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('MODELSHIP_') && key !== 'NODE_TEST_CONTEXT') env[key] = value;
  }
  return { ...env, ...extra };
}

/**
 * Runs `command` asynchronously (the fixture server lives in this process, so spawnSync would starve it) and kills
 * it if it outlives `timeoutMs`: a fetch that hangs or loops fails the test instead of stalling the suite.
 */
function run(command: string, args: readonly string[], options: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<CliResult> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: REPO_ROOT, env: cleanEnv(options.env), stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    const out = { stdout: '', stderr: '', fd3: '' };
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { out.stdout += chunk; });
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { out.stderr += chunk; });
    (child.stdio[3] as NodeJS.ReadableStream).setEncoding('utf8').on('data', (chunk: string) => { out.fd3 += chunk; });
    let timedOut = false;
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, timeoutMs);
    child.on('error', (error) => { clearTimeout(timer); reject(error); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) reject(new Error(`${args.join(' ')} did not exit within ${timeoutMs} ms\nstdout: ${out.stdout}\nstderr: ${out.stderr}`));
      else resolve({ code, signal, ...out, milliseconds: Date.now() - started });
    });
  });
}

/** Asserts the contract's failure form: exactly one `modelship: ...` line on stderr; returns that line. */
function oneLineReason(result: CliResult): string {
  assert.ok(result.stderr.endsWith('\n'), `stderr should end with a newline: ${JSON.stringify(result.stderr)}`);
  const lines = result.stderr.slice(0, -1).split('\n');
  assert.equal(lines.length, 1, `expected one line on stderr, got ${JSON.stringify(result.stderr)}`);
  assert.match(lines[0], /^modelship: \S/);
  return lines[0];
}

function expectExit(result: CliResult, code: number): void {
  assert.equal(result.signal, null, `killed by ${result.signal}`);
  assert.equal(result.code, code, `exit code ${result.code}, expected ${code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
}

/** pino's warnings on stdout: one per failed attempt that is retried. */
function retryWarnings(stdout: string): string[] {
  return stdout.split('\n').filter((line) => line.startsWith('{')).map((line) => JSON.parse(line))
    .filter((entry) => entry.level === 40).map((entry) => entry.msg as string);
}

const fetchArgs = (uri: string, dest: string) => ['fetch', '--uri', uri, '--sha256', DIGEST, '--dest', dest];

// ---- the sandbox ---------------------------------------------------------------------------------------------------

/**
 * bubblewrap arguments for the init container's view: a read-only root with the repo at /app, the image's uid and
 * gid, and the model volume at /models as a tmpfs of `bytes` bytes. The host network is shared, so the fixture
 * server on 127.0.0.1 is reachable.
 */
function sandbox(bytes: number): string[] {
  return ['--tmpfs', '/', '--ro-bind', '/usr', '/usr', '--ro-bind', '/lib', '/lib', '--ro-bind', '/etc', '/etc',
    ...(existsSync('/lib64') ? ['--ro-bind', '/lib64', '/lib64'] : []), '--symlink', 'usr/bin', '/bin',
    '--ro-bind', REPO_ROOT, '/app', '--size', String(bytes), '--tmpfs', MODEL_REPOSITORY_PATH,
    '--proc', '/proc', '--dev', '/dev', '--remount-ro', '/',
    '--unshare-user', '--uid', String(RUNTIME_UID), '--gid', String(RUNTIME_GID), '--die-with-parent'];
}

/** Why the sandboxed tests cannot run here, or '' when they can: bwrap must exist and be allowed its namespaces. */
function sandboxUnavailable(): string {
  if (!existsSync(BWRAP)) return `${BWRAP} is not installed (apt-get install bubblewrap)`;
  const probe = spawnSync(BWRAP, [...sandbox(64 * 1024), '/usr/bin/true'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.status === 0) return '';
  const why = probe.error?.message ?? (probe.stderr.trim() || `exit code ${probe.status}`);
  return `bubblewrap cannot create a sandbox here (user or mount namespaces refused?): ${why}`;
}

/** A file or directory under /models after the fetch, as the sandbox reported it. */
interface Entry { readonly path: string; readonly type: 'file' | 'dir'; readonly size?: number; readonly sha256?: string }

/**
 * Runs inside the sandbox after the CLI exits, before the tmpfs disappears: every entry under /models with its size
 * and digest, as JSON on stdout (redirected to fd 3).
 */
const LIST_VOLUME = `const fs = require('fs'), path = require('path'), crypto = require('crypto');
const walk = (dir) => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
  const p = path.join(dir, e.name);
  if (e.isDirectory()) return [{ path: p, type: 'dir' }, ...walk(p)];
  const bytes = fs.readFileSync(p);
  return [{ path: p, type: 'file', size: bytes.length, sha256: crypto.createHash('sha256').update(bytes).digest('hex') }];
});
process.stdout.write(JSON.stringify(walk(${JSON.stringify(MODEL_REPOSITORY_PATH)})));`;

/** `modelship fetch ...` inside a sandbox whose /models holds `bytes`; then the listing of /models on fd 3. */
function fetchInSandbox(bytes: number, args: readonly string[]): Promise<CliResult> {
  const script = 'node /app/bin/modelship.js "$@"; code=$?; node -e "$LIST_VOLUME" >&3; exit $code';
  return run(BWRAP, [...sandbox(bytes), '/bin/sh', '-c', script, 'modelship', ...args], { env: { LIST_VOLUME } });
}

const reason = sandboxUnavailable();

describe('modelship fetch into a file system that fills up', { skip: reason || false, concurrency: 2 }, () => {
  const dest = `${MODEL_REPOSITORY_PATH}/my_model/1/${MODEL_FILE_NAME}`;
  const servers: FixtureServer[] = [];
  /** One server per test, so that its request count is that test's alone. */
  const serveModel = async () => {
    const server = await startFixtureServer((_req, res) => sendBytes(res, MODEL));
    servers.push(server);
    return server;
  };
  after(() => Promise.all(servers.map((s) => s.close())));

  it('fails at once with exit 1, names the full disk, the path and the sizes, and leaves no file behind', async () => {
    const volume = 2 * MiB;
    const server = await serveModel();
    // --retries 4 is the default, spelled out: a full disk must not be retried, so no backoff may show up.
    const result = await fetchInSandbox(volume, [...fetchArgs(`${server.url}/big.onnx`, dest), '--retries', '4']);
    expectExit(result, 1);
    const line = oneLineReason(result);
    assert.match(line, /no space left on device \(ENOSPC\)/, line);
    assert.ok(line.includes(`cannot write ${dest}`), line);
    assert.ok(!/attempts/.test(line), `a full disk is not retried: ${line}`);
    const sizes = line.match(/after writing (\d+) of (\d+) bytes; (\d+) bytes are free there/);
    assert.ok(sizes, `the sizes an operator needs to size the volume: ${line}`);
    const [written, total, free] = sizes.slice(1).map(Number);
    assert.equal(total, MODEL.length, 'the model size, from Content-Length');
    assert.ok(written > 0 && written <= volume, `written ${written}`);
    // Measured after the partial file was closed and removed: the whole volume is free again, and it is too small.
    assert.ok(free > volume - 64 * 1024 && free <= volume, `free ${free}`);

    assert.deepEqual(retryWarnings(result.stdout), [], 'no retry');
    assert.equal(server.requests, 1, 'one request');
    assert.ok(result.milliseconds < 10_000, `took ${result.milliseconds} ms`);

    const left: Entry[] = JSON.parse(result.fd3);
    assert.deepEqual(left.filter((e) => e.type === 'file'), [], 'no model.onnx, whole or partial, and no temporary file');
    assert.deepEqual(left.map((e) => e.path).sort(), [dirname(dirname(dest)), dirname(dest)], 'only the directories fetch created');
  });

  it('control: the same fetch into a volume big enough writes exactly the model', async () => {
    const server = await serveModel();
    const result = await fetchInSandbox(16 * MiB, fetchArgs(`${server.url}/big.onnx`, dest));
    expectExit(result, 0);
    assert.equal(result.stderr, '');
    const files = (JSON.parse(result.fd3) as Entry[]).filter((e) => e.type === 'file');
    assert.deepEqual(files, [{ path: dest, type: 'file', size: MODEL.length, sha256: DIGEST }], 'the model and nothing else');
  });
});

describe('modelship fetch from a server that stops short', { concurrency: 2 }, () => {
  let tmp: string;
  let cases = 0;
  const servers: FixtureServer[] = [];
  const newDest = () => join(tmp, `case-${++cases}`, 'my_model', '1', MODEL_FILE_NAME);
  before(() => { tmp = mkdtempSync(join(tmpdir(), 'modelship-fetch-faults-')); });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    rmSync(tmp, { recursive: true, force: true });
  });

  it('retries a body cut short, then gives up with the byte counts and leaves nothing behind', async () => {
    // Every answer promises MODEL.length bytes (Content-Length), sends half, and drops the connection.
    const server = await startFixtureServer((_req, res) => sendHalfThenDrop(res, MODEL));
    servers.push(server);
    const dest = newDest();
    const result = await run(process.execPath, [CLI, ...fetchArgs(`${server.url}/m.onnx`, dest), '--retries', '1']);
    expectExit(result, 1);
    const line = oneLineReason(result);
    assert.match(line, new RegExp(`failed after 2 attempts: download interrupted after \\d+ of ${MODEL.length} bytes: other side closed`), line);
    const received = Number(line.match(/after (\d+) of/)![1]);
    assert.ok(received > 0 && received < MODEL.length, `received ${received}`);
    assert.equal(server.requests, 2, 'retried once, as --retries 1 asks');
    const warnings = retryWarnings(result.stdout);
    assert.equal(warnings.length, 1, result.stdout);
    assert.match(warnings[0], /download interrupted after \d+ of \d+ bytes/);
    assert.deepEqual(readdirSync(dirname(dest)), [], 'no model.onnx and no temporary file');
  });

  it('gives up on a body that stalls after --timeout, with the byte counts, and leaves nothing behind', async () => {
    // Headers and half the body, then silence with the connection open: only the attempt's deadline ends it.
    const server = await startFixtureServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': MODEL.length });
      res.write(MODEL.subarray(0, MODEL.length / 2));
    });
    servers.push(server);
    const dest = newDest();
    const result = await run(process.execPath, [CLI, ...fetchArgs(`${server.url}/m.onnx`, dest), '--timeout', '1', '--retries', '0']);
    expectExit(result, 1);
    const line = oneLineReason(result);
    assert.match(line, new RegExp(`download interrupted after \\d+ of ${MODEL.length} bytes: .*timeout`, 'i'), line);
    assert.equal(server.requests, 1);
    assert.ok(result.milliseconds >= 1000 && result.milliseconds < 8000, `took ${result.milliseconds} ms`);
    assert.deepEqual(readdirSync(dirname(dest)), [], 'no model.onnx and no temporary file');
  });
});
