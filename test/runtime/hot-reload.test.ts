/**
 * Model versions on the fly: a new version directory is picked up, loaded, warmed and switched to with no failed
 * request; the old version drains and is unloaded; a broken newer version never replaces a working one.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { MODELS } from '../helpers/paths';
import { getJson, postJson, startRuntime } from '../helpers/runtime-process';

const request = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [2] }] };

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('new model versions', () => {
  it('switches to a new version under load without a failed request, and keeps serving past a broken one', async () => {
    const repository = mkdtempSync(join(tmpdir(), 'modelship-reload-'));
    const place = (version: number, source: string) => {
      // Write elsewhere, then move the directory in: the scanner never sees a half-copied file.
      const staging = join(repository, `.staging-${version}`);
      mkdirSync(staging);
      copyFileSync(source, join(staging, 'model.onnx'));
      require('node:fs').renameSync(staging, join(repository, 'linear', String(version)));
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
      await until(async () => (await postJson(url, request)).body.model_version === '2', 15_000, 'version 2 to serve');
      await until(async () => (await getJson(`${runtime.url}/v2/models/linear/versions/1`)).status === 404, 15_000, 'version 1 to be unloaded');
      assert.ok(runtime.logs.some((l) => /version 1 was superseded by version 2; drained and unloaded/.test(l.msg)));

      place(3, MODELS.corrupt);
      await until(async () => (await getJson(`${runtime.url}/v2/models/linear/versions/3`)).body?.state === 'UNAVAILABLE', 15_000, 'version 3 to fail');
      const after = await postJson(url, request);
      assert.equal(after.body.model_version, '2', 'the working version keeps serving');
      assert.deepEqual((await getJson(`${runtime.url}/v2/models/linear`)).body.versions, ['2', '3']);
      const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
      assert.match(metrics, /modelship_model_ready\{model="linear",version="3"\} 0/);
      assert.doesNotMatch(metrics, /modelship_model_ready\{model="linear",version="1"\}/);
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
