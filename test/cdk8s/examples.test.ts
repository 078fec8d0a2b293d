/**
 * What the manifests promise, run for real where this machine can: the init container's command fetches a model
 * from a local HTTP server with the real CLI, and `cdk8s synth` of the example app writes both charts.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import * as YAML from 'yaml';
import { ModelService, ModelSource } from 'modelship';
import { MODEL_REPOSITORY_PATH } from '@modelship/contract';
import { runCli, runProcess } from '../helpers/cli-process';
import { sendBytes, startFixtureServer } from '../helpers/http-fixture-server';
import { assertValidManifests } from '../helpers/k8s-schema';
import { MODELS, REPO_ROOT } from '../helpers/paths';

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
      const fetched = await runCli(args, { timeoutMs: 60_000 });
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
      const result = await runProcess(process.execPath, [join(REPO_ROOT, 'node_modules', 'cdk8s-cli', 'bin', 'cdk8s'), 'synth', '--output', out], {
        env: { CDK8S_CHECK_UPGRADE: 'false' }, timeoutMs: 60_000, label: 'cdk8s synth',
      });
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(readdirSync(out).sort(), ['linear-regression.k8s.yaml', 'ocr.k8s.yaml']);
      const seed = YAML.parseAllDocuments(readFileSync(join(out, 'linear-regression.k8s.yaml'), 'utf8')).map((d) => d.toJS());
      const service = seed.find((o) => o.kind === 'Service');
      assert.equal(service.spec.type, 'LoadBalancer');
      assert.deepEqual(service.spec.ports[0], { name: 'http', port: 80, targetPort: 8080 });
      const ocr = YAML.parseAllDocuments(readFileSync(join(out, 'ocr.k8s.yaml'), 'utf8')).map((d) => d.toJS());
      assert.ok(ocr.some((o) => o.kind === 'ScaledObject'));
      // Version 1 and version 2 of the OCR model at 90/10, over REST and gRPC.
      for (const kind of ['HTTPRoute', 'GRPCRoute']) {
        const route = ocr.find((o) => o.kind === kind);
        assert.deepEqual(route.spec.rules[0].backendRefs.map((b: any) => [b.name, b.port, b.weight]),
          [['text-detection', kind === 'HTTPRoute' ? 8080 : 8081, 90], ['text-detection-v2', kind === 'HTTPRoute' ? 8080 : 8081, 10]], kind);
      }
      for (const kind of ['ServiceMonitor', 'PrometheusRule']) assert.ok(seed.some((o) => o.kind === kind) && ocr.some((o) => o.kind === kind), kind);
      assertValidManifests([...seed, ...ocr]);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
