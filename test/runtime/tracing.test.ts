/**
 * OpenTelemetry tracing, end to end: the runtime exports to a real OTLP/HTTP receiver (test/helpers/otlp-receiver.ts
 * decodes the protobuf bodies with the upstream definitions) and the spans are judged as a tracing backend would
 * show them: parent and child ids, links from batch runs to the requests they served, attributes, for REST JSON,
 * REST binary and gRPC requests, batched and not; explanations and loads; exemplars on the latency histograms,
 * stored by a real Prometheus.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { METRIC } from '@modelship/contract';
import { expectExit, oneLineReason, runCli } from '../helpers/cli-process';
import { connect, rpc } from '../helpers/grpc-client';
import { startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../helpers/otlp-receiver';
import { MODELS } from '../helpers/paths';
import { query, startPrometheus, type ServerProcess } from '../helpers/prometheus';
import { postJson, startRuntime, type RuntimeProcess } from '../helpers/runtime-process';
import { waitFor } from '../helpers/wait';

const SERVER = 2;
const INTERNAL = 1;

/** A caller's span: a fresh W3C trace context, sampled unless told. */
function callerContext(sampled = true) {
  const traceId = randomBytes(16).toString('hex');
  const spanId = randomBytes(8).toString('hex');
  return { traceId, spanId, traceparent: `00-${traceId}-${spanId}-${sampled ? '01' : '00'}` };
}

const row = (seed: number) => Array.from({ length: 16 }, (_, i) => Math.sin(seed * 16 + i));

async function grpcInfer(port: number, request: object, metadata: grpc.Metadata): Promise<any> {
  const client = connect(port);
  try {
    return await rpc(client, 'ModelInfer', request, metadata);
  } finally {
    client.close();
  }
}

/** The spans of one trace once its server span has arrived, with its queue and compute spans. */
async function traceOf(receiver: OtlpReceiver, traceId: string, what: string): Promise<{ server: ReceivedSpan; queue: ReceivedSpan; spans: ReceivedSpan[] }> {
  return waitFor(`the spans of ${what}`, () => {
    const spans = receiver.spans.filter((span) => span.traceId === traceId);
    const server = spans.find((span) => span.kind === SERVER);
    const queue = spans.find((span) => span.name === 'queue');
    return server && queue ? { server, queue, spans } : undefined;
  }, 15_000, 50);
}

/** The compute span that links to `span` (every run links to each request it served). */
function computeLinking(receiver: OtlpReceiver, span: ReceivedSpan): ReceivedSpan[] {
  return receiver.spans.filter((candidate) => candidate.name === 'compute' && candidate.links.some((link) => link.spanId === span.spanId && link.traceId === span.traceId));
}

describe('tracing with OpenTelemetry (OTLP/HTTP to a real receiver)', () => {
  let receiver: OtlpReceiver;
  let runtime: RuntimeProcess;

  before(async () => {
    receiver = await startOtlpReceiver();
    runtime = await startRuntime([
      '--model', `mlp=${MODELS.mlp}`, '--model', `my_model=${MODELS.linearRegression}`,
      // A head request waits up to 50 ms for others, so concurrent requests share runs.
      '--max-queue-delay-microseconds', '50000', '--max-batch-size', '64',
    ], {
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_SERVICE_NAME: 'fraud-scorer',
        OTEL_RESOURCE_ATTRIBUTES: 'k8s.namespace.name=models', OTEL_BSP_SCHEDULE_DELAY: '100',
      },
    });
  });
  after(async () => {
    await runtime?.stop();
    await receiver?.close();
  });

  it('makes a REST request a child of the caller\'s span, with queue and compute spans under it', async () => {
    const caller = callerContext();
    const answer = await postJson(`${runtime.url}/v2/models/mlp/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: row(1) }] }, { traceparent: caller.traceparent });
    assert.equal(answer.status, 200);
    const { server, queue } = await traceOf(receiver, caller.traceId, 'a REST request');
    assert.equal(server.parentSpanId, caller.spanId, 'the server span continues the caller\'s trace');
    assert.equal(server.name, 'POST /v2/models/{model}/infer');
    assert.deepEqual(
      { model: server.attributes.model, version: server.attributes.version, protocol: server.attributes.protocol, status: server.attributes['http.response.status_code'] },
      { model: 'mlp', version: '1', protocol: 'rest', status: 200 },
    );
    assert.equal(server.statusCode, 0);
    assert.equal(server.resource['service.name'], 'fraud-scorer', 'OTEL_SERVICE_NAME names the service');
    assert.equal(server.resource['k8s.namespace.name'], 'models', 'OTEL_RESOURCE_ATTRIBUTES reach the resource');
    assert.equal(queue.parentSpanId, server.spanId);
    assert.equal(queue.kind, INTERNAL);
    assert.ok(queue.startNanos >= server.startNanos && queue.endNanos <= server.endNanos, 'the queue span lies within the request');
    const [compute, ...others] = computeLinking(receiver, server);
    assert.equal(others.length, 0, 'one run served the request');
    assert.ok(compute, 'a compute span links to the request');
    assert.equal(compute.traceId, caller.traceId, 'a run that served one request is in that request\'s trace');
    assert.equal(compute.parentSpanId, server.spanId);
    assert.ok(compute.startNanos >= queue.endNanos - 1_000_000n, 'the run starts when the queue span ends');
    assert.ok(compute.endNanos <= server.endNanos);
    assert.equal(compute.attributes['batch.requests'], 1);
    assert.equal(compute.attributes['batch.rows'], 1);
    assert.equal(compute.attributes.purpose, 'serve');
  });

  it('traces binary tensor data requests and TF Serving\'s predict, and names the status of a refused one', async () => {
    const caller = callerContext();
    const json = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], parameters: { binary_data_size: 64 } }] }));
    const body = Buffer.concat([json, Buffer.from(new Float32Array(row(2)).buffer)]);
    const response = await fetch(`${runtime.url}/v2/models/mlp/infer`, {
      method: 'POST', body,
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(json.length), traceparent: caller.traceparent },
    });
    assert.equal(response.status, 200);
    const binary = await traceOf(receiver, caller.traceId, 'a binary request');
    assert.equal(binary.server.parentSpanId, caller.spanId);
    assert.equal(binary.server.attributes.protocol, 'rest');

    const predict = callerContext();
    const answer = await postJson(`${runtime.url}/v1/models/my_model:predict`, { instances: [[1.5]] }, { traceparent: predict.traceparent });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const tf = await traceOf(receiver, predict.traceId, 'a TF Serving predict');
    assert.equal(tf.server.name, 'POST /v1/models/{model}:predict');
    assert.equal(tf.server.attributes.model, 'my_model');

    const refused = callerContext();
    const bad = await postJson(`${runtime.url}/v2/models/mlp/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3], data: [1, 2, 3] }] }, { traceparent: refused.traceparent });
    assert.equal(bad.status, 400);
    const server = await waitFor('the refused request\'s span', () => receiver.spans.find((span) => span.traceId === refused.traceId && span.kind === SERVER), 15_000, 50);
    assert.equal(server.attributes['http.response.status_code'], 400);
    assert.equal(server.statusCode, 0, 'a client\'s mistake is not a server error');
    assert.ok(!receiver.spans.some((span) => span.traceId === refused.traceId && span.name === 'queue'), 'a refused request never queued');
  });

  it('continues a trace from gRPC metadata', async () => {
    const caller = callerContext();
    const metadata = new grpc.Metadata();
    metadata.set('traceparent', caller.traceparent);
    metadata.set('tracestate', 'vendor=value');
    const response = await grpcInfer(runtime.grpcPort, {
      model_name: 'mlp', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], contents: { fp32_contents: row(3) } }],
    }, metadata);
    assert.equal(response.model_name, 'mlp');
    const { server, queue } = await traceOf(receiver, caller.traceId, 'a gRPC request');
    assert.equal(server.parentSpanId, caller.spanId);
    assert.equal(server.name, 'inference.GRPCInferenceService/ModelInfer');
    assert.equal(server.traceState, 'vendor=value', 'the caller\'s tracestate is carried on');
    assert.equal(server.attributes.protocol, 'grpc');
    assert.equal(server.attributes['http.response.status_code'], 200);
    assert.equal(queue.parentSpanId, server.spanId);
    assert.equal(computeLinking(receiver, server).length, 1);
  });

  it('gives one compute span per batch run, linked to every request it served', async () => {
    const callers = Array.from({ length: 8 }, () => callerContext());
    const answers = await Promise.all(callers.map((caller, i) => postJson(`${runtime.url}/v2/models/mlp/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 16], data: [...row(10 + i), ...row(20 + i)] }],
    }, { traceparent: caller.traceparent })));
    assert.ok(answers.every((answer) => answer.status === 200));
    const servers = await Promise.all(callers.map(async (caller, i) => (await traceOf(receiver, caller.traceId, `batched request ${i}`)).server));
    const runs = new Map<string, ReceivedSpan>();
    for (const server of servers) {
      const linking = computeLinking(receiver, server);
      assert.equal(linking.length, 1, 'each request was served by exactly one run');
      runs.set(linking[0].spanId, linking[0]);
    }
    const shared = [...runs.values()].filter((run) => run.links.length > 1);
    assert.ok(shared.length >= 1, `concurrent requests shared a run (runs: ${[...runs.values()].map((run) => run.links.length)})`);
    for (const run of runs.values()) {
      assert.equal(run.attributes['batch.requests'], run.links.length, 'a run links to every request it served');
      assert.equal(run.attributes['batch.rows'], 2 * run.links.length);
      const parent = servers.find((server) => server.spanId === run.parentSpanId);
      assert.ok(parent && run.links.some((link) => link.spanId === parent.spanId), 'a run is a child of one of the requests it served');
      assert.equal(run.traceId, parent.traceId);
    }
  });

  it('does not trace a request whose caller did not sample it, nor probes and /metrics', async () => {
    const unsampled = callerContext(false);
    const answer = await postJson(`${runtime.url}/v2/models/mlp/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: row(4) }] }, { traceparent: unsampled.traceparent });
    assert.equal(answer.status, 200);
    for (const path of ['/v2/health/live', '/v2/health/ready', '/v2/models/mlp/ready', '/metrics', '/v2/models/mlp']) {
      assert.equal((await fetch(`${runtime.url}${path}`, { headers: { traceparent: callerContext().traceparent } })).status, 200, path);
    }
    // A request traced after them: once its spans are in, anything the earlier ones made would be too.
    const marker = callerContext();
    await postJson(`${runtime.url}/v2/models/mlp/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: row(5) }] }, { traceparent: marker.traceparent });
    await traceOf(receiver, marker.traceId, 'the marker request');
    assert.ok(!receiver.spans.some((span) => span.traceId === unsampled.traceId), 'an unsampled parent keeps the request untraced');
    const names = new Set(receiver.spans.map((span) => span.name));
    for (const name of names) assert.match(name, /^(POST \/v2\/models\/\{model\}\/(infer|explain)|POST \/v1\/models\/\{model\}:predict|inference\.GRPCInferenceService\/ModelInfer|queue|compute|load)$/, `unexpected span '${name}'`);
  });

  it('traces model loads, and an explanation with its runs', async () => {
    const loads = receiver.spans.filter((span) => span.name === 'load');
    assert.deepEqual(loads.map((span) => span.attributes.model).sort(), ['mlp', 'my_model']);
    for (const load of loads) {
      assert.equal(load.parentSpanId, '');
      assert.equal(load.attributes.version, '1');
      assert.ok(load.endNanos > load.startNanos);
    }
    const caller = callerContext();
    const answer = await postJson(`${runtime.url}/v2/models/mlp/explain`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: row(6) }], parameters: { nsamples: 64, seed: 1 },
    }, { traceparent: caller.traceparent });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const { server } = await traceOf(receiver, caller.traceId, 'an explanation');
    assert.equal(server.name, 'POST /v2/models/{model}/explain');
    const runs = computeLinking(receiver, server);
    assert.ok(runs.length >= 1, 'the explanation\'s model runs are traced');
    assert.ok(runs.every((run) => run.attributes.purpose === 'explain' && run.parentSpanId === server.spanId));
    const rows = runs.reduce((sum, run) => sum + Number(run.attributes['batch.rows']), 0);
    assert.equal(rows, answer.body.model_runs, 'the traced runs hold every row the explanation ran');
  });

  it('puts the trace of sampled requests on the latency buckets, in OpenMetrics when asked', async () => {
    const caller = callerContext();
    await postJson(`${runtime.url}/v2/models/mlp/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: row(7) }] }, { traceparent: caller.traceparent });
    const { server } = await traceOf(receiver, caller.traceId, 'the exemplar request');
    const open = await fetch(`${runtime.url}/metrics`, { headers: { accept: 'application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5' } });
    assert.match(open.headers.get('content-type') ?? '', /^application\/openmetrics-text; version=1\.0\.0/);
    const text = await open.text();
    assert.ok(text.endsWith('# EOF\n'));
    const bucket = text.split('\n').find((line) => line.startsWith(`${METRIC.requestDuration}_bucket{`) && line.includes(`trace_id="${caller.traceId}"`));
    assert.ok(bucket, 'the request\'s trace is an exemplar of its latency bucket');
    assert.match(bucket, new RegExp(`# \\{trace_id="${caller.traceId}",span_id="${server.spanId}"\\} [0-9.e-]+ [0-9]+\\.[0-9]{3}$`));
    assert.ok(text.includes(`# TYPE ${METRIC.requests.replace(/_total$/, '')} counter`), 'counter families are named without _total');
    assert.ok(text.split('\n').some((line) => line.startsWith(`${METRIC.requests}{`)), 'and their samples with it');
    const plain = await fetch(`${runtime.url}/metrics`);
    assert.match(plain.headers.get('content-type') ?? '', /^text\/plain/);
    assert.ok(!(await plain.text()).includes('trace_id'), 'the text format carries no exemplars');
  });

  it('is read by a real Prometheus, which stores the exemplars', async () => {
    let prometheus: ServerProcess | undefined;
    try {
      const target = new URL(runtime.url).host;
      prometheus = await startPrometheus({
        config: { global: { scrape_interval: '1s' }, scrape_configs: [{ job_name: 'runtime', static_configs: [{ targets: [target] }] }] },
        args: ['--enable-feature=exemplar-storage'],
      });
      const caller = callerContext();
      await waitFor('a scrape', async () => ((await query(prometheus!.url, `up{job="runtime"}`))[0]?.value === 1 ? true : undefined), 20_000);
      await postJson(`${runtime.url}/v2/models/mlp/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: row(8) }] }, { traceparent: caller.traceparent });
      const exemplar = await waitFor('the exemplar in Prometheus', async () => {
        const end = Date.now() / 1000;
        const url = `${prometheus!.url}/api/v1/query_exemplars?query=${encodeURIComponent(`${METRIC.requestDuration}_bucket{model="mlp"}`)}&start=${end - 600}&end=${end + 60}`;
        const body = await (await fetch(url)).json() as { data: { exemplars: { labels: Record<string, string> }[] }[] };
        return body.data.flatMap((series) => series.exemplars).find((found) => found.labels.trace_id === caller.traceId);
      }, 20_000);
      assert.match(exemplar.labels.span_id, /^[0-9a-f]{16}$/);
      const counted = await query(prometheus.url, `sum(${METRIC.requests}{model="mlp"})`);
      assert.ok((counted[0]?.value ?? 0) >= 1, 'counters keep their names when scraped as OpenMetrics');
    } finally {
      await prometheus?.stop();
    }
  });
});

describe('tracing a share of requests (parentbased_traceidratio)', () => {
  it('keeps about that share of new traces, every sampled parent\'s and no unsampled parent\'s', async () => {
    const receiver = await startOtlpReceiver();
    const runtime = await startRuntime(['--model', `mlp=${MODELS.mlp}`], {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_BSP_SCHEDULE_DELAY: '100', OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: '0.2' },
    });
    try {
      const body = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: row(11) }] };
      const sampled = Array.from({ length: 10 }, () => callerContext(true));
      const unsampled = Array.from({ length: 10 }, () => callerContext(false));
      for (const caller of [...sampled, ...unsampled]) assert.equal((await postJson(`${runtime.url}/v2/models/mlp/infer`, body, { traceparent: caller.traceparent })).status, 200);
      const fresh = 400;
      for (let i = 0; i < fresh; i++) assert.equal((await postJson(`${runtime.url}/v2/models/mlp/infer`, body)).status, 200);
      const marker = callerContext();
      await postJson(`${runtime.url}/v2/models/mlp/infer`, body, { traceparent: marker.traceparent });
      await traceOf(receiver, marker.traceId, 'the marker request');
      const servers = receiver.spans.filter((span) => span.kind === SERVER);
      for (const caller of sampled) assert.ok(servers.some((span) => span.traceId === caller.traceId), 'a sampled parent is always traced');
      for (const caller of unsampled) assert.ok(!servers.some((span) => span.traceId === caller.traceId), 'an unsampled parent never is');
      const roots = servers.filter((span) => span.parentSpanId === '').length;
      // 400 draws at 0.2: 80 expected, a standard deviation of 8; 40 to 120 is five of them either way.
      assert.ok(roots >= 40 && roots <= 120, `${roots} of ${fresh} new traces kept at a ratio of 0.2`);
    } finally {
      await runtime.stop();
      await receiver.close();
    }
  });
});

describe('tracing to a collector that never answers', () => {
  it('serves at full speed and still stops within its drain', async () => {
    const sockets = new Set<Socket>();
    const hanging = createServer(() => { /* takes the export and never answers */ });
    hanging.on('connection', (socket) => { sockets.add(socket); socket.on('close', () => sockets.delete(socket)); });
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve));
    const runtime = await startRuntime(['--model', `mlp=${MODELS.mlp}`], {
      env: { OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`, OTEL_BSP_SCHEDULE_DELAY: '50', OTEL_TRACES_SAMPLER: 'always_on' },
    });
    try {
      const started = performance.now();
      for (let i = 0; i < 200; i++) {
        const answer = await postJson(`${runtime.url}/v2/models/mlp/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: row(i) }] });
        assert.equal(answer.status, 200);
      }
      const elapsed = performance.now() - started;
      assert.ok(elapsed < 10_000, `200 requests took ${elapsed.toFixed(0)} ms while every export hung`);
      assert.ok(sockets.size > 0, 'the runtime did try to export');
      const stopping = performance.now();
      assert.equal(await runtime.stop(), 0);
      // The drain (nothing in flight) plus at most 2 s for the spans still queued.
      assert.ok(performance.now() - stopping < 8_000, `stopping took ${(performance.now() - stopping).toFixed(0)} ms`);
    } finally {
      await runtime.stop();
      for (const socket of sockets) socket.destroy();
      hanging.close();
    }
  });
});

describe('tracing configuration', () => {
  it('refuses an OTEL_ variable it cannot honour, naming it and what it accepts', async () => {
    for (const [env, expected] of [
      [{ OTEL_TRACES_SAMPLER: 'sometimes' }, /OTEL_TRACES_SAMPLER is 'sometimes'; use one of always_on, .*parentbased_traceidratio/],
      [{ OTEL_TRACES_SAMPLER: 'traceidratio', OTEL_TRACES_SAMPLER_ARG: '10' }, /OTEL_TRACES_SAMPLER_ARG is '10'.*from 0 to 1/],
      [{ OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc' }, /OTEL_EXPORTER_OTLP_PROTOCOL is 'grpc'.*http\/protobuf/],
      [{ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }, /OTEL_EXPORTER_OTLP_ENDPOINT is 'collector:4318'.*http:\/\//],
    ] as const) {
      const result = await runCli(['serve', '--model', `mlp=${MODELS.mlp}`, '--http-port', '0', '--grpc-port', '0'], {
        env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318', ...env },
      });
      expectExit(result, 2);
      assert.match(oneLineReason(result), expected);
    }
  });

  it('is off without an endpoint: no exemplars, the text format whatever the scraper asks', async () => {
    const runtime = await startRuntime(['--model', `mlp=${MODELS.mlp}`], { env: { OTEL_TRACES_SAMPLER: 'always_on' } });
    try {
      assert.ok(!runtime.logs.some((line) => /tracing/.test(line.msg)));
      const caller = callerContext();
      assert.equal((await postJson(`${runtime.url}/v2/models/mlp/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: row(9) }] }, { traceparent: caller.traceparent })).status, 200);
      const response = await fetch(`${runtime.url}/metrics`, { headers: { accept: 'application/openmetrics-text;version=1.0.0' } });
      assert.match(response.headers.get('content-type') ?? '', /^text\/plain/);
      assert.ok(!(await response.text()).includes('trace_id'));
    } finally {
      await runtime.stop();
    }
  });
});
