/**
 * Model versions on the fly: a new version directory is picked up, loaded, warmed and switched to with no failed
 * request; the old version drains and is unloaded; a broken newer version never replaces a working one.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MODELS } from '../helpers/paths';
import { getJson, postJson, startRuntime } from '../helpers/runtime-process';
import { sleep, waitFor } from '../helpers/wait';

const request = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [2] }] };

/** Polls every 100 ms; a probe request that throws fails the test at once, as one of the load's would. */
const POLL = { intervalMs: 100, retryErrors: false };

describe('new model versions', () => {
  it('switches to a new version under load without a failed request, and keeps serving past a broken one', async () => {
    const repository = mkdtempSync(join(tmpdir(), 'modelship-reload-'));
    const place = (version: number, source: string) => {
      // Write elsewhere, then move the directory in: the scanner never sees a half-copied file.
      const staging = join(repository, `.staging-${version}`);
      mkdirSync(staging);
      copyFileSync(source, join(staging, 'model.onnx'));
      renameSync(staging, join(repository, 'linear', String(version)));
    };
    mkdirSync(join(repository, 'linear'));
    place(1, MODELS.linearRegression);
    const runtime = await startRuntime(['--model-repository', repository, '--poll-repository-seconds', '1']);
    const url = `${runtime.url}/v2/models/linear/infer`;
    let stop = false;
    const statuses: number[] = [];
    const versions = new Set<string>();
    const load = Promise.all(Array.from({ length: 4 }, async () => {
      while (!stop) {
        const response = await postJson(url, request);
        statuses.push(response.status);
        if (response.status === 200) versions.add(response.body.model_version);
      }
    }));
    try {
      place(2, MODELS.linearRegression);
      await waitFor('version 2 to serve', async () => (await postJson(url, request)).body.model_version === '2' || undefined, 15_000, POLL);
      await waitFor('version 1 to be unloaded', async () => (await getJson(`${runtime.url}/v2/models/linear/versions/1`)).status === 404 || undefined, 15_000, POLL);
      assert.ok(runtime.logs.some((l) => /version 1 was superseded by version 2; drained and unloaded/.test(l.msg)));

      place(3, MODELS.corrupt);
      await waitFor('version 3 to fail', async () => (await getJson(`${runtime.url}/v2/models/linear/versions/3`)).body?.state === 'UNAVAILABLE' || undefined, 15_000, POLL);
      const after = await postJson(url, request);
      assert.equal(after.body.model_version, '2', 'the working version keeps serving');
      assert.deepEqual((await getJson(`${runtime.url}/v2/models/linear`)).body.versions, ['2', '3']);
      const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
      assert.match(metrics, /modelship_model_ready\{model="linear",version="3"\} 0/);
      assert.doesNotMatch(metrics, /modelship_model_ready\{model="linear",version="1"\}/);
      assert.match(metrics, /modelship_model_info\{model="linear",version="2",/);
      assert.doesNotMatch(metrics, /modelship_model_info\{model="linear",version="1",/, 'the unloaded version\'s model_info series is gone');
    } finally {
      stop = true;
      await load;
      assert.equal(await runtime.stop(), 0);
      rmSync(repository, { recursive: true, force: true });
    }
    assert.deepEqual([...new Set(statuses)], [200], `every request during the switch succeeded (${statuses.length} sent)`);
    assert.deepEqual([...versions].sort(), ['1', '2']);
  });
});

describe('a model that appears with a broken config file', () => {
  it('says why once, not at every scan, and loads it once the config is fixed', async () => {
    const repository = mkdtempSync(join(tmpdir(), 'modelship-reload-config-'));
    mkdirSync(join(repository, 'good', '1'), { recursive: true });
    copyFileSync(MODELS.linearRegression, join(repository, 'good', '1', 'model.onnx'));
    const runtime = await startRuntime(['--model-repository', repository, '--poll-repository-seconds', '1']);
    try {
      const staging = join(repository, '.staging');
      mkdirSync(join(staging, '1'), { recursive: true });
      copyFileSync(MODELS.linearRegression, join(staging, '1', 'model.onnx'));
      writeFileSync(join(staging, 'config.json'), '{"max_batch_size": "many"}');
      renameSync(staging, join(repository, 'broken'));
      const said = () => runtime.logs.filter((line) => line.model === 'broken' && /cannot be served/.test(line.msg));
      await waitFor('the broken config to be reported', () => said()[0], 10_000, POLL);
      await sleep(3500); // three more scans
      assert.equal(said().length, 1, 'reported once');
      assert.match(said()[0].msg, /max_batch_size/);
      assert.ok(!runtime.logs.some((line) => line.model === 'broken' && /appeared/.test(line.msg)), 'no model appeared');

      writeFileSync(join(repository, 'broken', 'config.json'), '{"max_batch_size": 4}');
      await waitFor('the fixed model to serve', async () => (await postJson(`${runtime.url}/v2/models/broken/infer`, request)).status === 200 || undefined, 15_000, POLL);
    } finally {
      assert.equal(await runtime.stop(), 0);
      rmSync(repository, { recursive: true, force: true });
    }
  });
});
