/** Payload logging: off by default; when on, sampled JSON records on stdout, size-capped, named fields redacted. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MODELS } from '../helpers/paths';
import { postJson, startRuntime } from '../helpers/runtime-process';

const typedRequest = {
  inputs: [
    { name: 'ids', datatype: 'INT64', shape: [1, 3], data: [1, 2, 3] },
    { name: 'mask', datatype: 'BOOL', shape: [1, 3], data: [true, false, true] },
    { name: 'text', datatype: 'BYTES', shape: [1], data: ['4111 1111 1111 1111'] },
  ],
};
const waitForLogs = () => new Promise((resolve) => setTimeout(resolve, 200));

describe('payload logging', () => {
  it('writes a capped, redacted record per sampled inference', async () => {
    const runtime = await startRuntime(['--model', `typed=${MODELS.typed}`, '--model', `mlp=${MODELS.mlp}`,
      '--payload-log-percent', '100', '--payload-log-max-bytes', '512', '--payload-log-redact', 'text', '--payload-log-redact', 'text_out']);
    try {
      assert.equal((await postJson(`${runtime.url}/v2/models/typed/infer`, typedRequest)).status, 200);
      const rows = 200;
      assert.equal((await postJson(`${runtime.url}/v2/models/mlp/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 16], data: Array.from({ length: rows * 16 }, (_, i) => i / 7) }] })).status, 200);
      await waitForLogs();
      const records = runtime.logs.filter((l) => l.msg === 'inference payload').map((l) => l.payload as any);
      assert.equal(records.length, 2);
      const typed = records.find((r) => r.model === 'typed');
      assert.deepEqual(typed.inputs.find((t: any) => t.name === 'ids'), { name: 'ids', datatype: 'INT64', shape: [1, 3], data: '1,2,3' });
      assert.equal(typed.inputs.find((t: any) => t.name === 'text').data, '[redacted]');
      assert.equal(typed.outputs.find((t: any) => t.name === 'text_out').data, '[redacted]');
      assert.ok(!JSON.stringify(runtime.logs).includes('4111 1111'), 'the redacted value appears nowhere in the logs');
      const mlp = records.find((r) => r.model === 'mlp');
      assert.equal(mlp.inputs[0].truncated, true);
      assert.ok(JSON.stringify(mlp).length < 2048, 'the record stays near its byte cap');
      assert.deepEqual(mlp.outputs[0].shape, [rows, 4]);
    } finally {
      assert.equal(await runtime.stop(), 0);
    }
  });

  it('is off by default', async () => {
    const runtime = await startRuntime(['--model', `typed=${MODELS.typed}`]);
    try {
      assert.equal((await postJson(`${runtime.url}/v2/models/typed/infer`, typedRequest)).status, 200);
      await waitForLogs();
      assert.equal(runtime.logs.filter((l) => l.msg === 'inference payload').length, 0);
    } finally {
      await runtime.stop();
    }
  });
});
