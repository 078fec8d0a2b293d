/**
 * What the manifests promise, run for real where this machine can: the init container's command fetches a model
 * from a local HTTP server with the real CLI, and `cdk8s synth` of the example app writes both charts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import * as YAML from 'yaml';
import { ModelService, ModelSource } from 'modelship';
import { MODEL_REPOSITORY_PATH } from '../../lib/contract/runtime';
import { sendBytes, startFixtureServer } from '../helpers/http-fixture-server';
import { assertValidManifests } from '../helpers/k8s-schema';
import { CLI, MODELS, REPO_ROOT } from '../helpers/paths';

async function run(command: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(command, args, { cwd: REPO_ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => { stdout += chunk; });
  child.stderr.on('data', (chunk) => { stderr += chunk; });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const [code] = await once(child, 'close');
  clearTimeout(timer);
  return { code, stdout, stderr };
}

describe('the synthesized init container', () => {
  it('runs a command that modelship fetch accepts, and the model lands where the server looks', async () => {
    const model = readFileSync(MODELS.linearRegression);
    const server = await startFixtureServer((_request, response) => sendBytes(response, model));
    const root = mkdtempSync(join(tmpdir(), 'modelship-init-'));
    try {
      const chart = new Chart(Testing.app(), 'test');
      new ModelService(chart, 'my-model', {
        modelName: 'my_model',
        model: ModelSource.fromUri(`${server.url}/my_model/1/model.onnx`, { sha256: createHash('sha256').update(model).digest('hex') }),
      });
      const deployment = (Testing.synth(chart) as any[]).find((o) => o.kind === 'Deployment');
      const init = deployment.spec.template.spec.initContainers[0];
      const runtimeArgs: string[] = deployment.spec.template.spec.containers[0].args;
      // The pod's /models is an emptyDir; here it is a temporary directory.
      const args = (init.args as string[]).map((arg) => arg.replace(MODEL_REPOSITORY_PATH, root));
      const fetched = await run(process.execPath, [CLI, ...args]);
      assert.equal(fetched.code, 0, fetched.stderr);
      assert.deepEqual(readFileSync(join(root, 'my_model', '1', 'model.onnx')), model);
      assert.deepEqual(runtimeArgs.slice(0, 3), ['serve', '--model-repository', MODEL_REPOSITORY_PATH]);
    } finally {
      await server.close();
      rmSync(root, { recursive: true, force: true });
    }
  });
});

describe('npx cdk8s synth', () => {
  it('writes the example charts', async () => {
    const out = mkdtempSync(join(tmpdir(), 'modelship-synth-'));
    try {
      const result = await run(process.execPath, [join(REPO_ROOT, 'node_modules', 'cdk8s-cli', 'bin', 'cdk8s'), 'synth', '--output', out], { CDK8S_CHECK_UPGRADE: 'false' });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(readdirSync(out).sort(), ['linear-regression.k8s.yaml', 'ocr.k8s.yaml']);
      const seed = YAML.parseAllDocuments(readFileSync(join(out, 'linear-regression.k8s.yaml'), 'utf8')).map((d) => d.toJS());
      const service = seed.find((o) => o.kind === 'Service');
      assert.equal(service.spec.type, 'LoadBalancer');
      assert.deepEqual(service.spec.ports[0], { name: 'http', port: 80, targetPort: 8080 });
      const ocr = YAML.parseAllDocuments(readFileSync(join(out, 'ocr.k8s.yaml'), 'utf8')).map((d) => d.toJS());
      assert.ok(ocr.some((o) => o.kind === 'ScaledObject'));
      for (const kind of ['ServiceMonitor', 'PrometheusRule']) assert.ok(seed.some((o) => o.kind === kind) && ocr.some((o) => o.kind === kind), kind);
      assertValidManifests([...seed, ...ocr]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
