/**
 * Slow and greedy clients: a request must arrive within --request-timeout (headers within 10 s, or the timeout if
 * shorter), and no more than --max-connections are held open, so no client can starve the others.
 */
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { MODELS } from '../helpers/paths';
import { getJson, startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

/** Opens a raw connection, writes `text`, and resolves with what came back and when the server closed it. */
function slowClient(url: string, text: string, limitMs: number): Promise<{ response: string; closedAfterMs: number; socket: Socket }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let response = '';
    const socket = connect(Number(port), hostname, () => socket.write(text));
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`still open after ${limitMs} ms`)); }, limitMs);
    socket.on('data', (chunk) => { response += chunk; });
    socket.on('close', () => { clearTimeout(timer); resolve({ response, closedAfterMs: Date.now() - started, socket }); });
    socket.on('error', () => {});
  });
}

describe('slow clients', () => {
  let runtime: RuntimeProcess;
  before(async () => { runtime = await startRuntime(['--model', `mlp=${MODELS.mlp}`, '--request-timeout', '1']); });
  after(async () => { assert.equal(await runtime.stop(), 0); });

  it('answers 408 and closes a request whose body never finishes', async () => {
    const { response, closedAfterMs } = await slowClient(runtime.url,
      'POST /v2/models/mlp/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"inp', 5000);
    assert.match(response, /^HTTP\/1.1 408/);
    assert.ok(closedAfterMs < 3500, `closed after ${closedAfterMs} ms`);
  });

  it('closes a connection whose headers never finish', async () => {
    const { closedAfterMs } = await slowClient(runtime.url, 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: ', 5000);
    assert.ok(closedAfterMs < 3500, `closed after ${closedAfterMs} ms`);
    assert.equal((await getJson(`${runtime.url}/v2/health/ready`)).status, 200, 'still serving others');
  });
});

describe('connection limit', () => {
  it('refuses connections past --max-connections and serves again once they close', async () => {
    const runtime = await startRuntime(['--model', `mlp=${MODELS.mlp}`, '--max-connections', '3']);
    const { hostname, port } = new URL(runtime.url);
    const held = await Promise.all(Array.from({ length: 3 }, () => new Promise<Socket>((resolve) => {
      const socket = connect(Number(port), hostname, () => resolve(socket));
    })));
    try {
      const extra = await slowClient(runtime.url, 'GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n', 3000);
      assert.equal(extra.response, '', 'the fourth connection is closed without an answer');
    } finally {
      for (const socket of held) socket.destroy();
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal((await getJson(`${runtime.url}/v2/health/ready`)).status, 200);
    assert.equal(await runtime.stop(), 0);
  });
});
