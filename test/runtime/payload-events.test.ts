/**
 * Payload events (--payload-log-url): a real HTTP receiver gets a request and a response CloudEvent per sampled
 * inference over REST and gRPC, in the form KServe's payload logger sends; a sink that is down or never answers
 * does not slow inference, and what it loses is counted.
 */
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { METRIC } from '@modelship/contract';
import { expectExit, oneLineReason, runCli } from '../helpers/cli-process';
import { MODELS, REPO_ROOT } from '../helpers/paths';
import { postJson, startRuntime, type RuntimeProcess } from '../helpers/runtime-process';
import { waitFor } from '../helpers/wait';

interface ReceivedEvent {
  readonly headers: IncomingHttpHeaders;
  readonly body: any;
}

interface Receiver {
  readonly url: string;
  readonly events: ReceivedEvent[];
  /** Requests that reached the receiver, answered or not. */
  readonly arrived: () => number;
  close(): Promise<void>;
}

/** A sink on a free port: `answer` false keeps every request open, like a receiver that hangs. */
async function startReceiver(answer = true): Promise<Receiver> {
  const events: ReceivedEvent[] = [];
  const sockets = new Set<Socket>();
  let arrived = 0;
  const hanging: ServerResponse[] = [];
  const server: Server = createServer((request, response) => {
    arrived++;
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      events.push({ headers: request.headers, body: JSON.parse(Buffer.concat(chunks).toString('utf8')) });
      if (answer) response.writeHead(202).end();
      else hanging.push(response);
    });
  });
  server.on('connection', (socket) => { sockets.add(socket); socket.on('close', () => sockets.delete(socket)); });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/events`,
    events,
    arrived: () => arrived,
    close: () => new Promise<void>((resolve) => {
      for (const socket of sockets) socket.destroy();
      server.close(() => resolve());
    }),
  };
}

const PROTO = join(REPO_ROOT, 'runtime', 'src', 'protocols', 'grpc_predict_v2.proto');
const definition = loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const Service = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;

function grpcInfer(port: number, request: object): Promise<any> {
  const client = new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    (client.ModelInfer as Function).call(client, request, (error: grpc.ServiceError | null, response: unknown) => {
      client.close();
      if (error) reject(error); else resolve(response);
    });
  });
}

const typedRequest = {
  inputs: [
    { name: 'ids', datatype: 'INT64', shape: [1, 3], data: [1, 2, 3] },
    { name: 'mask', datatype: 'BOOL', shape: [1, 3], data: [true, false, true] },
    { name: 'text', datatype: 'BYTES', shape: [1], data: ['4111 1111 1111 1111'] },
  ],
};
const mlpInput = (rows: number) => Array.from({ length: rows * 16 }, (_, i) => (i % 64) / 8);

async function droppedCount(runtime: RuntimeProcess): Promise<number> {
  const text = await (await fetch(`${runtime.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${METRIC.payloadEventsDropped} `));
  assert.ok(line, `${METRIC.payloadEventsDropped} is in /metrics`);
  return Number(line.split(' ')[1]);
}

/** The median of `count` sequential REST inferences of the mlp model, in milliseconds. */
async function medianLatencyMs(runtime: RuntimeProcess, count: number): Promise<number> {
  const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: mlpInput(1) }] });
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const started = performance.now();
    const response = await postJson(`${runtime.url}/v2/models/mlp/infer`, body);
    times.push(performance.now() - started);
    assert.equal(response.status, 200);
  }
  return times.sort((a, b) => a - b)[Math.floor(count / 2)];
}

const pairOf = (events: readonly ReceivedEvent[], id: string) => ({
  request: events.find((e) => e.headers['ce-id'] === id && e.headers['ce-type'] === 'org.kubeflow.serving.inference.request'),
  response: events.find((e) => e.headers['ce-id'] === id && e.headers['ce-type'] === 'org.kubeflow.serving.inference.response'),
});

describe('payload events', () => {
  it('sends a request and a response CloudEvent per inference over REST and gRPC, in KServe\'s logger form', async () => {
    const receiver = await startReceiver();
    const runtime = await startRuntime(['--model', `typed=${MODELS.typed}`, '--model', `mlp=${MODELS.mlp}`,
      '--payload-log-url', receiver.url, '--payload-log-namespace', 'team-a', '--payload-log-service-name', 'fraud',
      '--payload-log-source', 'http://fraud.team-a.svc/', '--payload-log-redact', 'text', '--payload-log-redact', 'text_out']);
    try {
      const rest = await postJson(`${runtime.url}/v2/models/typed/infer`, typedRequest);
      assert.equal(rest.status, 200);
      const grpcAnswer = await grpcInfer(runtime.grpcPort, {
        model_name: 'mlp', inputs: [{ name: 'x', datatype: 'FP32', shape: ['1', '16'], contents: { fp32_contents: mlpInput(1) } }],
      });
      // The binary extension: the tensor's bytes after the JSON header.
      const raw = Buffer.from(new Float32Array(mlpInput(1).map((v) => v + 1)).buffer);
      const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], parameters: { binary_data_size: raw.length } }] }));
      const binary = await fetch(`${runtime.url}/v2/models/mlp/infer`, {
        method: 'POST', headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) },
        body: Buffer.concat([header, raw]),
      });
      assert.equal(binary.status, 200);
      await binary.arrayBuffer();
      await waitFor('six events', () => receiver.events.length >= 6 || undefined, 10_000, 50);
      assert.equal(receiver.events.length, 6, 'one request and one response event per inference, sampled at 100% when no percent is given');

      for (const event of receiver.events) {
        const h = event.headers;
        assert.equal(h['ce-specversion'], '1.0');
        assert.equal(h['content-type'], 'application/json');
        assert.equal(h['ce-source'], 'http://fraud.team-a.svc/');
        assert.equal(h['ce-inferenceservicename'], 'fraud');
        assert.equal(h['ce-namespace'], 'team-a');
        assert.equal(h['ce-endpoint'], 'default');
        assert.equal(h['ce-component'], 'predictor');
        assert.match(String(h['ce-time']), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d/);
        assert.match(String(h['ce-id']), /^[0-9a-f-]{36}$/);
      }
      const ids = [...new Set(receiver.events.map((e) => String(e.headers['ce-id'])))];
      assert.equal(ids.length, 3, 'the request and response events of one inference share their ce-id');

      const typed = ids.map((id) => pairOf(receiver.events, id)).find((p) => p.response?.body.model_name === 'typed')!;
      assert.ok(typed.request && typed.response);
      assert.deepEqual(typed.request.body.inputs.slice(0, 2), typedRequest.inputs.slice(0, 2), 'the request body is the v2 JSON request');
      assert.deepEqual(typed.request.body.inputs[2], { name: 'text', datatype: 'BYTES', shape: [1], parameters: { redacted: true }, data: [] });
      assert.ok(!JSON.stringify(receiver.events).includes('4111 1111'), 'a redacted tensor is sent nowhere');
      assert.equal(typed.response.body.model_version, '1');
      assert.deepEqual(typed.response.body.outputs.find((o: any) => o.name === 'text_out').parameters, { redacted: true });
      const restOutputs = rest.body.outputs.filter((o: any) => o.name !== 'text_out');
      for (const output of restOutputs) {
        const sent: any = typed.response.body.outputs.find((o: any) => o.name === output.name);
        assert.deepEqual({ ...sent }, { name: output.name, datatype: output.datatype, shape: output.shape, data: output.data }, `output ${output.name} as answered`);
      }

      const mlpPairs = ids.map((id) => pairOf(receiver.events, id)).filter((p) => p.response?.body.model_name === 'mlp');
      const fromBinary = mlpPairs.find((p) => p.request?.body.inputs[0].data[0] === 1)!;
      assert.deepEqual(fromBinary.request!.body.inputs, [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: mlpInput(1).map((v) => v + 1) }],
        'a binary-extension request is sent as v2 JSON');
      const mlp = mlpPairs.find((p) => p !== fromBinary)!;
      assert.ok(mlp.request && mlp.response, 'a gRPC inference sends its pair too');
      assert.deepEqual(mlp.request.body.inputs, [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: mlpInput(1) }], 'gRPC inputs as v2 JSON');
      const sentOutput = mlp.response.body.outputs[0];
      const answered = grpcAnswer.outputs[0];
      assert.deepEqual(sentOutput.shape, answered.shape.map(Number));
      assert.equal(sentOutput.data.length, 4);
      assert.equal(await droppedCount(runtime), 0);
    } finally {
      assert.equal(await runtime.stop(), 0);
      await receiver.close();
    }
  });

  it('caps each event at --payload-log-max-bytes and keeps its JSON whole', async () => {
    const receiver = await startReceiver();
    const runtime = await startRuntime(['--model', `mlp=${MODELS.mlp}`, '--payload-log-url', receiver.url, '--payload-log-max-bytes', '512']);
    try {
      const rows = 200;
      assert.equal((await postJson(`${runtime.url}/v2/models/mlp/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [rows, 16], data: mlpInput(rows) }] })).status, 200);
      await waitFor('two events', () => receiver.events.length >= 2 || undefined, 10_000, 50);
      const request = receiver.events.find((e) => e.headers['ce-type'] === 'org.kubeflow.serving.inference.request')!;
      const input = request.body.inputs[0];
      assert.deepEqual(input.parameters, { truncated: true });
      assert.deepEqual(input.shape, [rows, 16]);
      assert.ok(input.data.length > 0 && input.data.length < rows * 16);
      assert.deepEqual(input.data, mlpInput(rows).slice(0, input.data.length), 'cut between elements');
      assert.ok(JSON.stringify(input.data).length <= 512);
      assert.equal(receiver.events[0].headers['ce-inferenceservicename'], 'mlp', 'unset: the model\'s name');
      assert.match(String(receiver.events[0].headers['ce-source']), /^http:\/\/localhost:\d+\/$/);
    } finally {
      assert.equal(await runtime.stop(), 0);
      await receiver.close();
    }
  });

  it('samples with --payload-log-percent', async () => {
    const receiver = await startReceiver();
    const runtime = await startRuntime(['--model', `mlp=${MODELS.mlp}`, '--payload-log-url', receiver.url, '--payload-log-percent', '1']);
    try {
      const body = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: mlpInput(1) }] };
      for (let i = 0; i < 100; i++) assert.equal((await postJson(`${runtime.url}/v2/models/mlp/infer`, body)).status, 200);
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.ok(receiver.events.length < 20, `about 1% of 100 inferences sent, got ${receiver.events.length / 2}`);
      assert.equal(receiver.events.length % 2, 0);
      assert.equal(runtime.logs.filter((l) => l.msg === 'inference payload').length, 0, 'with a sink, no stdout records');
    } finally {
      await runtime.stop();
      await receiver.close();
    }
  });

  it('does not slow inference when the sink never answers, and counts what it drops', async () => {
    const baseline = await startRuntime(['--model', `mlp=${MODELS.mlp}`]);
    let withoutSink: number;
    try {
      await medianLatencyMs(baseline, 50);
      withoutSink = await medianLatencyMs(baseline, 200);
      assert.equal(await droppedCount(baseline), 0, 'the counter is exported without a sink too');
    } finally {
      await baseline.stop();
    }
    const receiver = await startReceiver(false);
    const runtime = await startRuntime(['--model', `mlp=${MODELS.mlp}`, '--payload-log-url', receiver.url]);
    try {
      await medianLatencyMs(runtime, 50);
      const withSink = await medianLatencyMs(runtime, 200);
      assert.ok(withSink < withoutSink * 2 + 3, `median ${withSink.toFixed(2)} ms with a hanging sink, ${withoutSink.toFixed(2)} ms without`);
      assert.ok(receiver.arrived() > 0, 'the sink was reached');
      // 500 events queued by the runs above, 4 stuck in flight: another 800 inferences overflow the 1000-event queue.
      const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: mlpInput(1) }] });
      for (let i = 0; i < 100; i++) {
        const answers = await Promise.all(Array.from({ length: 8 }, () => postJson(`${runtime.url}/v2/models/mlp/infer`, body)));
        for (const answer of answers) assert.equal(answer.status, 200);
      }
      const dropped = await droppedCount(runtime);
      assert.ok(dropped >= 500, `events beyond the queue are dropped and counted: ${dropped}`);
    } finally {
      const started = performance.now();
      assert.equal(await runtime.stop(), 0);
      assert.ok(performance.now() - started < 15_000, 'a hanging sink does not hold the shutdown');
      await receiver.close();
    }
  });

  it('counts the events a sink that is down loses', async () => {
    const receiver = await startReceiver();
    const url = receiver.url;
    await receiver.close();
    const runtime = await startRuntime(['--model', `mlp=${MODELS.mlp}`, '--payload-log-url', url]);
    try {
      const body = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: mlpInput(1) }] };
      for (let i = 0; i < 5; i++) assert.equal((await postJson(`${runtime.url}/v2/models/mlp/infer`, body)).status, 200);
      await waitFor('10 dropped events', async () => (await droppedCount(runtime)) >= 10 || undefined, 10_000);
      assert.ok(runtime.logs.some((l) => l.level === 40 && /payload sink could not be reached/.test(l.msg)), 'the loss is logged');
    } finally {
      assert.equal(await runtime.stop(), 0);
    }
  });

  it('refuses a --payload-log-url that is not an http(s) URL as a usage error', async () => {
    for (const bad of ['ftp://sink.example/', 'not a url', 'http://']) {
      const result = await runCli(['serve', '--model', `mlp=${MODELS.mlp}`, '--payload-log-url', bad]);
      expectExit(result, 2);
      assert.match(oneLineReason(result), /--payload-log-url must be an http:\/\/ or https:\/\/ URL/);
    }
    const withCredentials = await runCli(['serve', '--model', `mlp=${MODELS.mlp}`, '--payload-log-url', 'http://u:secret@sink/']);
    expectExit(withCredentials, 2);
    const reason = oneLineReason(withCredentials);
    assert.match(reason, /--payload-log-url must not hold credentials/);
    assert.ok(!reason.includes('secret'), 'the password is not echoed');
  });
});
