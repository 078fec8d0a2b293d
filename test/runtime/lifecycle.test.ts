/**
 * The runtime's lifecycle: broken models reported without taking the others down, per-model config files,
 * a bounded queue that refuses overload at once, and a SIGTERM drain that finishes every accepted request.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from '../../runtime/src/model/onnxruntime';
import { MODELS } from '../helpers/paths';
import { runReference } from '../helpers/reference';
import { getJson, postJson, startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

function makeRepository(layout: Record<string, string | { config: unknown } | null>): string {
  const root = mkdtempSync(join(tmpdir(), 'modelship-repo-'));
  for (const [path, source] of Object.entries(layout)) {
    const target = join(root, path);
    mkdirSync(join(target, '..'), { recursive: true });
    if (source === null) mkdirSync(target, { recursive: true });
    else if (typeof source === 'string') copyFileSync(source, target);
    else writeFileSync(target, JSON.stringify(source.config));
  }
  return root;
}

/** A request that keeps the slow model busy for about `iterations` × 0.2 ms. */
const slowRequest = (iterations: number) => ({
  inputs: [
    { name: 'iterations', datatype: 'INT64', shape: [], data: [iterations] },
    { name: 'x', datatype: 'FP32', shape: [1, 64], data: Array.from({ length: 64 }, (_, i) => i / 64) },
  ],
});

describe('a repository with broken models', () => {
  let repository: string;
  let runtime: RuntimeProcess;
  before(async () => {
    repository = makeRepository({
      'good/1/model.onnx': MODELS.linearRegression,
      'corrupt/1/model.onnx': MODELS.corrupt,
      'missing/1': null,
      'noversions/README': MODELS.linearRegression,
      'badconfig/1/model.onnx': MODELS.linearRegression,
      'badconfig/config.json': { config: { max_queue_sise: 3 } },
      'upgraded/1/model.onnx': MODELS.linearRegression,
      'upgraded/2/model.onnx': MODELS.corrupt,
    });
    runtime = await startRuntime(['--model-repository', repository]);
  });
  after(async () => {
    assert.equal(await runtime.stop(), 0);
    rmSync(repository, { recursive: true, force: true });
  });

  it('serves the good models and is ready', async () => {
    const { status, body } = await postJson(`${runtime.url}/v1/models/good:predict`, { instances: [1] });
    assert.equal(status, 200);
    assert.equal(body.predictions.length, 1);
    assert.equal((await getJson(`${runtime.url}/v2/health/ready`)).status, 200);
  });

  it('reports each broken model in its metadata, metrics and log', async () => {
    const corrupt = await getJson(`${runtime.url}/v2/models/corrupt`);
    assert.equal(corrupt.status, 200);
    assert.equal(corrupt.body.state, 'UNAVAILABLE');
    assert.match(corrupt.body.reason, /model\.onnx' is not an ONNX model: it starts like an ONNX model but is damaged or cut short \(256 bytes; protobuf: invalid/);
    const missing = await getJson(`${runtime.url}/v2/models/missing`);
    assert.equal(missing.body.state, 'UNAVAILABLE');
    assert.match(missing.body.reason, /ENOENT|no such file/);
    const status = await getJson(`${runtime.url}/v1/models/corrupt`);
    assert.equal(status.body.model_version_status[0].state, 'END');
    assert.equal((await getJson(`${runtime.url}/v2/models/corrupt/ready`)).status, 503);
    const infer = await postJson(`${runtime.url}/v2/models/corrupt/infer`, { inputs: [] });
    assert.equal(infer.status, 503);
    assert.match(infer.body.error, /corrupt.*not ready/);

    const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
    assert.match(metrics, /modelship_model_ready\{model="corrupt",version="1"\} 0/);
    assert.match(metrics, /modelship_model_ready\{model="missing",version="1"\} 0/);
    assert.match(metrics, /modelship_model_ready\{model="good",version="1"\} 1/);

    const errors = runtime.logs.filter((line) => line.level >= 50).map((line) => line.msg);
    for (const name of ['corrupt', 'missing', 'noversions', 'badconfig']) {
      assert.ok(errors.some((msg) => msg.includes(`'${name}'`)), `an error log line names '${name}': ${errors.join(' | ')}`);
    }
  });

  it('refuses a config file with an unknown key, naming it', async () => {
    const { status, body } = await postJson(`${runtime.url}/v1/models/badconfig:predict`, { instances: [1] });
    assert.equal(status, 503);
    assert.match(body.error, /max_queue_sise/);
  });

  it('defaults to the highest version that loaded, and names the broken one', async () => {
    const metadata = await getJson(`${runtime.url}/v2/models/upgraded`);
    assert.deepEqual(metadata.body.versions, ['1', '2']);
    assert.equal(metadata.body.state, 'READY');
    const served = await postJson(`${runtime.url}/v2/models/upgraded/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [1] }] });
    assert.equal(served.status, 200);
    assert.equal(served.body.model_version, '1');
    const broken = await postJson(`${runtime.url}/v2/models/upgraded/versions/2/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [1] }] });
    assert.equal(broken.status, 503);
  });
});

describe('a repository where nothing loads', () => {
  it('is live but never ready', async () => {
    const repository = makeRepository({ 'corrupt/1/model.onnx': MODELS.corrupt });
    const runtime = await startRuntime(['--model-repository', repository], { waitReady: false });
    try {
      const deadline = Date.now() + 10_000;
      while (!runtime.logs.some((l) => /not ready/.test(l.msg)) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal((await getJson(`${runtime.url}/v2/health/live`)).status, 200);
      const ready = await getJson(`${runtime.url}/v2/health/ready`);
      assert.equal(ready.status, 503);
      assert.match(ready.body.error, /no model version could be loaded/);
    } finally {
      await runtime.stop();
      rmSync(repository, { recursive: true, force: true });
    }
  });
});

describe('backpressure', () => {
  it('answers 429 with Retry-After once the queue is full, and recovers', async () => {
    const runtime = await startRuntime(['--model', `slow=${MODELS.slow}`, '--max-queue-size', '2']);
    try {
      const url = `${runtime.url}/v2/models/slow/infer`;
      // One runs, two wait: the queue is full, so the next is refused at once.
      const busy = [postJson(url, slowRequest(5000)), postJson(url, slowRequest(10)), postJson(url, slowRequest(10))];
      await new Promise((resolve) => setTimeout(resolve, 200));
      const started = Date.now();
      const refused = await postJson(url, slowRequest(10));
      assert.equal(refused.status, 429, JSON.stringify(refused.body));
      assert.ok(Date.now() - started < 500, 'refused without waiting');
      assert.equal(refused.headers.get('retry-after'), '1');
      assert.match(refused.body.error, /queue .* is full/);
      for (const response of await Promise.all(busy)) assert.equal(response.status, 200);
      assert.equal((await postJson(url, slowRequest(10))).status, 200, 'serves again once the queue drains');
      const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
      assert.match(metrics, /modelship_inference_requests_total\{model="slow",version="1",protocol="rest",code="429"\} 1/);
    } finally {
      assert.equal(await runtime.stop(), 0);
    }
  });
});

describe('SIGTERM', () => {
  it('finishes in-flight requests, refuses new ones with 503, and exits 0', async () => {
    const runtime = await startRuntime(['--model', `slow=${MODELS.slow}`]);
    const url = `${runtime.url}/v2/models/slow/infer`;
    const inFlight = postJson(url, slowRequest(6000));
    await new Promise((resolve) => setTimeout(resolve, 300));
    runtime.process.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 100));
    const ready = await getJson(`${runtime.url}/v2/health/ready`);
    assert.equal(ready.status, 503);
    assert.match(ready.body.error, /shutting down/);
    const refused = await postJson(url, slowRequest(1));
    assert.equal(refused.status, 503);
    assert.match(refused.body.error, /shutting down/);

    const finished = await inFlight;
    assert.equal(finished.status, 200, JSON.stringify(finished.body));
    const expected = await runReference(MODELS.slow, {
      iterations: new ort.Tensor('int64', BigInt64Array.from([6000n]), []),
      x: new ort.Tensor('float32', Float32Array.from({ length: 64 }, (_, i) => i / 64), [1, 64]),
    });
    assert.deepEqual(finished.body.outputs[0].data, Array.from(expected.y.data as Float32Array));
    assert.equal(await runtime.exited, 0);
    assert.ok(runtime.logs.some((line) => line.msg === 'stopped' && line.drained === true));
  });

  it('gives up after the drain timeout, ending the process at once', async () => {
    const runtime = await startRuntime(['--model', `slow=${MODELS.slow}`, '--drain-timeout', '1']);
    const inFlight = postJson(`${runtime.url}/v2/models/slow/infer`, slowRequest(30000)).catch((error: Error) => error);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const signalled = Date.now();
    runtime.process.kill('SIGTERM');
    await runtime.exited;
    // A session run cannot be interrupted, so the process ends itself with SIGKILL rather than wait for it.
    assert.equal(runtime.process.signalCode, 'SIGKILL');
    assert.ok(runtime.logs.some((line) => /drain timeout of 1s passed/.test(line.msg)));
    const took = Date.now() - signalled;
    assert.ok(took >= 900 && took < 4000, `exited ${took} ms after SIGTERM with a 1 s drain timeout`);
    assert.ok((await inFlight) instanceof Error, 'the unfinished request was cut off, not answered');
  });
});
