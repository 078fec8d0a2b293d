/**
 * The runtime as KServe runs it: the container args a synthesized KServeRuntime gives, with `{{.Name}}` replaced by
 * the InferenceService's name as KServe replaces it, against a directory laid out as KServe's storage initializer
 * leaves /mnt/models (model.onnx directly, or in a version directory). Ready on the path KServe probes, then the
 * answers over v2 REST, v2 gRPC and v1 `:predict` equal in-process onnxruntime's.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import { KServeRuntime } from 'modelship';
import * as ort from '../../runtime/src/model/onnxruntime';
import { connect, type GrpcClient, rpc } from '../helpers/grpc-client';
import { MODELS } from '../helpers/paths';
import { runReference } from '../helpers/reference';
import { getJson, postJson, startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

type Manifest = { kind: string; metadata: { name: string }; spec: any };

/** The ServingRuntime container's args and the InferenceService's name, from a synthesized chart. */
function synthesized(): { args: string[]; name: string; ports: Array<{ name: string; containerPort: number }> } {
  const chart = new Chart(Testing.app(), 'kserve', { namespace: 'risk' });
  new KServeRuntime(chart, 'modelship-onnx').addInferenceService('fraud', { storageUri: 's3://models/fraud' });
  const objects = Testing.synth(chart) as Manifest[];
  const container = objects.find((o) => o.kind === 'ServingRuntime')!.spec.containers[0];
  return { args: container.args, ports: container.ports, name: objects.find((o) => o.kind === 'InferenceService')!.metadata.name };
}

/**
 * The args as KServe passes them, with two changes a test on a shared machine needs: the port values become 0 (free
 * ports, read back from the runtime's log) and /mnt/models becomes a temporary directory of the same layout.
 */
function asKServeRunsThem(args: readonly string[], name: string, modelDir: string, ports: ReadonlyArray<{ containerPort: number }>): string[] {
  const portFlags = new Set(ports.map((port) => String(port.containerPort)));
  return args.map((arg) => {
    const [flag, value] = arg.split('=', 2);
    if ((flag === '--http-port' || flag === '--grpc-port') && portFlags.has(value)) return `${flag}=0`;
    if (flag === '--model-dir' && value === '/mnt/models') return `${flag}=${modelDir}`;
    return arg.replaceAll('{{.Name}}', name);
  });
}

const LAYOUTS = {
  'model.onnx directly in the directory': 'model.onnx',
  'model.onnx in a version directory': join('1', 'model.onnx'),
} as const;

describe('the runtime started with a KServeRuntime\'s container args', () => {
  const { args, name, ports } = synthesized();
  let root: string;
  before(() => { root = mkdtempSync(join(tmpdir(), 'modelship-kserve-')); });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('takes the args KServe passes, unchanged but for the ports and the directory', () => {
    assert.deepEqual(asKServeRunsThem(args, name, '/tmp/m', ports),
      ['serve', '--model-dir=/tmp/m', '--model-name=fraud', '--http-port=0', '--grpc-port=0', '--drain-timeout=25']);
  });

  for (const [layout, file] of Object.entries(LAYOUTS)) {
    describe(layout, () => {
      let runtime: RuntimeProcess;
      let client: GrpcClient;
      const xs = [0.5, 1, 2];
      let expected: number[];
      before(async () => {
        const modelDir = join(root, layout.replace(/\W+/g, '-'));
        mkdirSync(join(modelDir, file, '..'), { recursive: true });
        copyFileSync(MODELS.linearRegression, join(modelDir, file));
        const out = await runReference(MODELS.linearRegression, { x: new ort.Tensor('float32', Float32Array.from(xs), [xs.length, 1]) });
        expected = Array.from(out.y_pred.data as Float32Array);
        // Resolves once GET /v2/health/ready answers 200, the readiness probe's path.
        runtime = await startRuntime(asKServeRunsThem(args, name, modelDir, ports), { exactArgs: true });
        client = connect(runtime.grpcPort);
      });
      after(async () => {
        client?.close();
        assert.equal(await runtime?.stop(), 0);
      });

      it('serves the model under the InferenceService\'s name, as version 1, on the paths KServe probes', async () => {
        assert.equal((await getJson(`${runtime.url}/v2/health/live`)).status, 200);
        const ready = await getJson(`${runtime.url}/v2/models/${name}/ready`);
        assert.equal(ready.status, 200);
        const metadata = await getJson(`${runtime.url}/v2/models/${name}`);
        assert.equal(metadata.status, 200);
        assert.deepEqual(metadata.body.versions, ['1']);
        assert.equal(metadata.body.platform, 'onnx_onnxv1');
      });

      it('infers over v2 REST', async () => {
        const { status, body } = await postJson(`${runtime.url}/v2/models/${name}/infer`, {
          inputs: [{ name: 'x', shape: [xs.length, 1], datatype: 'FP32', data: xs }],
        });
        assert.equal(status, 200, JSON.stringify(body));
        assert.equal(body.model_name, name);
        assert.deepEqual(body.outputs.map((o: any) => [o.name, o.shape]), [['y_pred', [xs.length, 1]]]);
        assert.deepEqual(body.outputs[0].data, expected);
      });

      it('infers over v2 gRPC', async () => {
        assert.deepEqual(await rpc(client, 'ServerReady', {}), { ready: true });
        assert.deepEqual(await rpc(client, 'ModelReady', { name }), { ready: true });
        const response = await rpc(client, 'ModelInfer', {
          model_name: name, inputs: [{ name: 'x', datatype: 'FP32', shape: [String(xs.length), '1'], contents: { fp32_contents: xs } }],
        });
        assert.equal(response.model_name, name);
        assert.deepEqual(response.outputs.map((o: any) => [o.name, o.datatype, o.shape]), [['y_pred', 'FP32', [String(xs.length), '1']]]);
        const raw = Buffer.from(response.raw_output_contents[0]);
        assert.deepEqual(Array.from(new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4)), expected);
      });

      it('answers KServe\'s v1 :predict', async () => {
        const { status, body } = await postJson(`${runtime.url}/v1/models/${name}:predict`, { instances: xs });
        assert.equal(status, 200, JSON.stringify(body));
        assert.deepEqual(body.predictions, expected.map((y) => [y]));
      });
    });
  }
});

describe('the runtime with --model-dir that cannot serve', () => {
  const { args, name, ports } = synthesized();
  let root: string;
  before(() => { root = mkdtempSync(join(tmpdir(), 'modelship-kserve-bad-')); });
  after(() => rmSync(root, { recursive: true, force: true }));

  it('exits at once with a reason that says where the model must be', async () => {
    const empty = join(root, 'empty');
    mkdirSync(empty);
    const runtime = await startRuntime(asKServeRunsThem(args, name, empty, ports), { exactArgs: true, waitReady: false }).catch((error: Error) => error);
    assert.ok(runtime instanceof Error);
    assert.match(runtime.message, new RegExp(`--model-dir '${empty}' holds no model\\.onnx: put the model at ${empty}/model\\.onnx or in a version directory such as ${empty}/1/model\\.onnx`));
  });

  it('exits when the model in the directory cannot load, naming the flag', async () => {
    const corrupt = join(root, 'corrupt');
    mkdirSync(corrupt);
    copyFileSync(MODELS.corrupt, join(corrupt, 'model.onnx'));
    const runtime = await startRuntime(asKServeRunsThem(args, name, corrupt, ports), { exactArgs: true, waitReady: false }).catch((error: Error) => error);
    if (!(runtime instanceof Error)) {
      // It listened before the load failed: the process still ends with the reason.
      assert.equal(await runtime.exited, 1);
      assert.match(runtime.stderr.join('\n'), new RegExp(`--model-dir '${corrupt}' \\(version 1\\) failed to load: .*is not an ONNX model`));
    } else {
      assert.match(runtime.message, new RegExp(`--model-dir '${corrupt}' \\(version 1\\) failed to load`));
    }
  });
});
