/**
 * The seed's example end to end: its linear regression served by the real runtime, its own curl request sent
 * unchanged (curl -d sends application/x-www-form-urlencoded), and every answer equal to in-process onnxruntime.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as ort from '../../runtime/src/model/onnxruntime';
import { METRIC } from '@modelship/contract';
import { EXAMPLE_REPOSITORY, MODELS } from '../helpers/paths';
import { runReference } from '../helpers/reference';
import { getJson, postJson, startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

describe('the seed linear regression, served', () => {
  let runtime: RuntimeProcess;
  before(async () => { runtime = await startRuntime(['--model-repository', EXAMPLE_REPOSITORY]); });
  after(async () => { assert.equal(await runtime.stop(), 0); });

  const reference = async (xs: number[]) => {
    const out = await runReference(MODELS.linearRegression, { x: new ort.Tensor('float32', Float32Array.from(xs), [xs.length, 1]) });
    return Array.from(out.y_pred.data as Float32Array);
  };

  it('answers the seed\'s curl request unchanged, as TF Serving would', async () => {
    const response = await fetch(`${runtime.url}/v1/models/my_model:predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: '{"instances": [1.0, 2.0, 3.0]}',
    });
    assert.equal(response.status, 200);
    const body = await response.json() as { predictions: number[][] };
    const expected = await reference([1, 2, 3]);
    assert.deepEqual(body.predictions, expected.map((y) => [y]));
    // The model was fitted to y = 2x + U(0, 1): the slope is near 2 and the intercept near 0.5.
    const slope = body.predictions[1][0] - body.predictions[0][0];
    assert.ok(Math.abs(slope - 2) < 0.2, `slope ${slope}`);
  });

  it('answers the columnar form and a versioned path', async () => {
    const { status, body } = await postJson(`${runtime.url}/v1/models/my_model/versions/1:predict`, { inputs: [[0.25], [0.5]] });
    assert.equal(status, 200);
    assert.deepEqual(body.outputs, (await reference([0.25, 0.5])).map((y) => [y]));
  });

  it('answers OIP v2 infer with flat and nested data, echoing the id', async () => {
    const xs = [-1, 0, 0.5, 10];
    const expected = await reference(xs);
    for (const data of [xs, xs.map((x) => [x])]) {
      const { status, body } = await postJson(`${runtime.url}/v2/models/my_model/versions/1/infer`, {
        id: 'req-42', inputs: [{ name: 'x', datatype: 'FP32', shape: [4, 1], data }],
      });
      assert.equal(status, 200);
      assert.equal(body.id, 'req-42');
      assert.equal(body.model_name, 'my_model');
      assert.equal(body.model_version, '1');
      assert.deepEqual(body.outputs, [{ name: 'y_pred', datatype: 'FP32', shape: [4, 1], data: expected }]);
    }
  });

  it('reports model status and metadata in both protocols', async () => {
    const v2 = await getJson(`${runtime.url}/v2/models/my_model`);
    assert.deepEqual(v2.body, {
      name: 'my_model', versions: ['1'], platform: 'onnx_onnxv1', state: 'READY',
      inputs: [{ name: 'x', datatype: 'FP32', shape: [-1, 1] }],
      outputs: [{ name: 'y_pred', datatype: 'FP32', shape: [-1, 1] }],
    });
    assert.deepEqual((await getJson(`${runtime.url}/v2/models/my_model/ready`)).body, { name: 'my_model', ready: true });
    const status = await getJson(`${runtime.url}/v1/models/my_model`);
    assert.deepEqual(status.body, { model_version_status: [{ version: '1', state: 'AVAILABLE', status: { error_code: 'OK', error_message: '' } }] });
    const metadata = await getJson(`${runtime.url}/v1/models/my_model/metadata`);
    const signature = metadata.body.metadata.signature_def.signature_def.serving_default;
    assert.equal(signature.inputs.x.dtype, 'DT_FLOAT');
    assert.deepEqual(signature.inputs.x.tensor_shape.dim.map((d: { size: string }) => d.size), ['-1', '1']);
    const server = await getJson(`${runtime.url}/v2`);
    assert.equal(server.body.name, 'modelship');
    assert.deepEqual((await getJson(`${runtime.url}/v2/health/live`)).body, { live: true });
  });

  it('counts the requests it served in the contract\'s metrics', async () => {
    const text = await (await fetch(`${runtime.url}/metrics`)).text();
    const served = text.split('\n').filter((l) => l.startsWith(`${METRIC.requests}{`) && l.includes('code="200"'));
    const total = served.reduce((sum, line) => sum + Number(line.split(' ').at(-1)), 0);
    assert.ok(total >= 4, `expected at least 4 served requests, metrics say ${total}`);
    for (const name of Object.values(METRIC)) assert.ok(text.includes(`# TYPE ${name} `), `metric ${name} is exported`);
    assert.match(text, /modelship_model_ready\{model="my_model",version="1"\} 1/);
    assert.match(text, /modelship_model_info\{model="my_model",version="1",sha256="[0-9a-f]{64}",opset="17"\} 1/);
    assert.match(text, /process_resident_memory_bytes/);
  });
});
