/**
 * `modelship fetch` meeting the faults an init container meets, judged by exit code, stderr and what is left at the
 * destination: a file system that fills up mid-download (a size-limited tmpfs under bubblewrap, as a memory-backed
 * emptyDir is), and a server that promises more bytes than it sends or stops sending. In every case the outcome
 * must be prompt and plain: a one-line reason naming the fault, and no model.onnx (whole or partial) and no
 * temporary file left where the server would look.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { MODEL_FILE_NAME, MODEL_REPOSITORY_PATH } from '@modelship/contract';
import { expectExit, oneLineReason, retryWarnings, runCli } from '../helpers/cli-process';
import { fetchInSandbox as runInSandbox, sandboxUnavailable, type VolumeEntry as Entry } from '../helpers/fetch-sandbox';
import { sendBytes, sendHalfThenDrop, startFixtureServer, type FixtureServer } from '../helpers/http-fixture-server';

const MiB = 1024 * 1024;
/** Bigger than the small tmpfs and smaller than the big one; random, so nothing along the way can compress it. */
const MODEL = randomBytes(3 * MiB);
const DIGEST = createHash('sha256').update(MODEL).digest('hex');
/** Each run's deadline: a fetch that hangs or loops fails its test instead of stalling the suite. */
const TIMEOUT_MS = 15_000;

const fetchArgs = (uri: string, dest: string) => ['fetch', '--uri', uri, '--sha256', DIGEST, '--dest', dest];

const fetchInSandbox = (bytes: number, args: readonly string[]) => runInSandbox(bytes, args, { timeoutMs: TIMEOUT_MS });

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
    const result = await runCli([...fetchArgs(`${server.url}/m.onnx`, dest), '--retries', '1'], { timeoutMs: TIMEOUT_MS });
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
    const result = await runCli([...fetchArgs(`${server.url}/m.onnx`, dest), '--timeout', '1', '--retries', '0'], { timeoutMs: TIMEOUT_MS });
    expectExit(result, 1);
    const line = oneLineReason(result);
    assert.match(line, new RegExp(`download interrupted after \\d+ of ${MODEL.length} bytes: .*timeout`, 'i'), line);
    assert.equal(server.requests, 1);
    assert.ok(result.milliseconds >= 1000 && result.milliseconds < 8000, `took ${result.milliseconds} ms`);
    assert.deepEqual(readdirSync(dirname(dest)), [], 'no model.onnx and no temporary file');
  });
});
