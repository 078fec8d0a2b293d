/**
 * What real clients send: Triton's HTTP client posts v2 JSON with no Content-Type, its asyncio client labels JSON
 * application/octet-stream without Inference-Header-Content-Length; both are JSON, as Triton's server reads them.
 * JSON answers are exactly `application/json` (KServe's client shows error text only then).
 */
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { MODELS } from '../helpers/paths';
import { startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

/** Sends exactly these headers (node:http adds none but Host, Content-Length and Connection). */
function post(url: string, path: string, headers: Record<string, string>, body: string): Promise<{ status: number; type?: string; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}${path}`, { method: 'POST', headers: { ...headers, 'content-length': Buffer.byteLength(body) } }, (res) => {
      let text = '';
      res.on('data', (chunk) => { text += chunk; });
      res.on('end', () => resolve({ status: res.statusCode!, type: res.headers['content-type'], body: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('infer bodies as Triton\'s and KServe\'s clients send them', () => {
  let runtime: RuntimeProcess;
  before(async () => { runtime = await startRuntime(['--model', `lin=${MODELS.linearRegression}`]); });
  after(() => runtime.stop());
  const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 1], data: [1, 2] }] });

  for (const [name, headers] of [
    ['no Content-Type (tritonclient.http)', {}],
    ['application/octet-stream without Inference-Header-Content-Length (tritonclient.http.aio)', { 'content-type': 'application/octet-stream' }],
    ['application/json', { 'content-type': 'application/json' }],
  ] as const) {
    it(`reads ${name} as JSON and answers application/json without a charset`, async () => {
      const answer = await post(runtime.url, '/v2/models/lin/infer', headers, body);
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      assert.equal(answer.type, 'application/json');
      assert.deepEqual(answer.body.outputs[0].shape, [2, 1]);
    });
  }

  it('answers errors as exactly application/json too', async () => {
    const answer = await post(runtime.url, '/v2/models/lin/infer', {}, '{"inputs": [{"name": "nope"}]}');
    assert.equal(answer.status, 400);
    assert.equal(answer.type, 'application/json');
    assert.match(answer.body.error, /unknown input 'nope'/);
  });
});
