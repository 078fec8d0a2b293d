/**
 * `npm run bench`: the runtime against the limits of this machine, measured in the same run.
 *   (a) compute limit — an in-process session.run loop;
 *   (b) JSON limit — in-process JSON.parse → tensor → run → JSON.stringify, what any v2 JSON server must do;
 *   (c) HTTP+JSON floor — a bare node:http server parsing the same body and answering a fixed response;
 *   (d) the runtime over v2 JSON, v2 binary and v2 gRPC, at concurrency 1, 8 and 64;
 *   (e) transport floor — the bare node:http server moving the same bytes in and out as a binary OCR request, at
 *       concurrency 1: with (a) it bounds what any HTTP server could reach, compute plus transport;
 * plus an overload run at twice the sustainable rate, and the tiny MLP at 64 connections with drift counting on and
 * off in the same runtime, tracing off and on (10% sampled) in two runtimes, and inference's latency alone and beside
 * explanations of the same model in one runtime.
 * `--write` puts the tables into docs/benchmarks.md; `--only drift`, `--only explain` or `--only tracing` runs that part alone.
 * BENCH_SECONDS sets the seconds per measurement (default 3).
 */
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { once } from 'node:events';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import * as ort from '../runtime/src/model/onnxruntime';
import { MODELS } from '../test/helpers/paths';
import { randomFloats } from '../test/helpers/reference';
import { histogramOf, startRuntime, type RuntimeProcess } from '../test/helpers/runtime-process';
import { METRIC } from '@modelship/contract';
import { binarySender, GrpcClient, HttpClient, jsonSender, ok, type StatusSender, type TensorInput, v2JsonBody, v2Request } from './clients';
import { formatCrossover, measureCodecCrossover, type CrossoverRow } from './codec-crossover';
import { writeReport } from './report';
import { profileModel, writeProfile } from '../runtime/src/profile';
import { countRows, ProfileBuilder } from '../runtime/src/drift';
import { closedLoop, combine, type LoadResult, openLoop, percentile } from './load';
import { formatExplainLoad, measureExplainLoad, type ExplainLoadRow } from './explain-load';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const CONCURRENCY = [1, 8, 64];

interface Workload {
  readonly id: string;
  readonly label: string;
  readonly model: string;
  readonly path: string;
  readonly input: TensorInput;
  /** Compare with the bare HTTP floor (tiny models, where per-request overhead is everything). */
  readonly floor: boolean;
  /**
   * Highest concurrency measured over JSON. 64 outstanding 12 MB JSON bodies only queue behind each other for tens
   * of seconds and would say nothing the concurrency-8 cell does not: it would blow the 5-minute budget.
   */
  readonly maxJsonConcurrency?: number;
  /**
   * Batch sizes to run in-process as well: what merging requests would do to throughput, the cost the runtime's
   * batch sizer learns to avoid when it rises per image (docs/runtime.md, Dynamic batching).
   */
  readonly inProcessBatches?: readonly number[];
}

const tensor = (name: string, shape: number[], seed: number): TensorInput =>
  ({ name, shape, data: randomFloats(shape.reduce((a, b) => a * b, 1), seed) });

const WORKLOADS: Workload[] = [
  { id: 'mlp', label: 'tabular MLP 16→32→4, 1 row', model: 'mlp', path: MODELS.mlp, input: tensor('x', [1, 16], 1), floor: true },
  { id: 'det320', label: 'OCR detection 1×3×320×320', model: 'det', path: MODELS.ocrDetection, input: tensor('x', [1, 3, 320, 320], 2), floor: false, inProcessBatches: [4, 16] },
  { id: 'det640', label: 'OCR detection 1×3×640×640', model: 'det', path: MODELS.ocrDetection, input: tensor('x', [1, 3, 640, 640], 3), floor: false, maxJsonConcurrency: 8, inProcessBatches: [4] },
];

interface Row {
  readonly workload: string;
  readonly path: string;
  readonly concurrency: number | '—';
  readonly result: LoadResult;
  readonly baseline?: { readonly name: string; readonly rps: number };
  readonly meanBatch?: number;
  /** Added to the ratio column. */
  readonly note?: string;
}

const rps = (r: LoadResult) => r.ok / r.seconds;

/** `images` > 1 runs the input repeated along dim 0, as a merged batch of that many requests would. */
async function inProcess(workload: Workload, json: boolean, images = 1): Promise<LoadResult> {
  const session = await ort.InferenceSession.create(workload.path, { graphOptimizationLevel: 'all', logSeverityLevel: 4 });
  const output = session.outputNames[0];
  const requestText = v2JsonBody(workload.input);
  const batch = repeated(workload.input, images);
  const once = json
    ? async () => {
      const request = JSON.parse(requestText);
      const input = request.inputs[0];
      const result = await session.run({ [input.name]: new ort.Tensor('float32', Float32Array.from(input.data), input.shape) });
      const out = result[output];
      JSON.stringify({ model_name: workload.model, model_version: '1', outputs: [{ name: output, datatype: 'FP32', shape: out.dims, data: Array.from(out.data as Float32Array) }] });
      return true;
    }
    : async () => {
      await session.run({ [workload.input.name]: new ort.Tensor('float32', batch.data, batch.shape) });
      return true;
    };
  const result = await closedLoop(once, 1, SECONDS);
  await session.release();
  return result;
}

function repeated(input: TensorInput, times: number): { data: Float32Array; shape: number[] } {
  const data = new Float32Array(input.data.length * times);
  for (let i = 0; i < times; i++) data.set(input.data, i * input.data.length);
  return { data, shape: [input.shape[0] * times, ...input.shape.slice(1)] };
}

async function startBareServer(response: string): Promise<{ url: string; stop(): void }> {
  const child = spawn(process.execPath, [join(__dirname, 'bare-http-server.js'), response], { stdio: ['ignore', 'pipe', 'inherit'] });
  const [line] = await once(createInterface({ input: child.stdout! }), 'line');
  return { url: `http://127.0.0.1:${JSON.parse(line).port}`, stop: () => child.kill('SIGTERM') };
}

async function batchStats(runtime: RuntimeProcess, model: string): Promise<{ sum: number; count: number }> {
  return histogramOf(await (await fetch(`${runtime.url}/metrics`)).text(), METRIC.batchSize, model);
}

/** process_cpu_seconds_total of a runtime, now. */
async function cpuSeconds(runtime: RuntimeProcess): Promise<number> {
  const text = await (await fetch(`${runtime.url}/metrics`)).text();
  const line = text.split('\n').find((candidate) => candidate.startsWith('process_cpu_seconds_total '));
  if (!line) throw new Error(`${runtime.url}/metrics has no process_cpu_seconds_total`);
  return Number(line.split(' ')[1]);
}

async function served(runtime: RuntimeProcess, model: string, send: StatusSender, concurrency: number): Promise<{ result: LoadResult; meanBatch: number }> {
  const before = await batchStats(runtime, model);
  const result = await closedLoop(ok(send), concurrency, SECONDS);
  const after = await batchStats(runtime, model);
  return { result, meanBatch: (after.sum - before.sum) / Math.max(1, after.count - before.count) };
}

/**
 * The cost of drift counting: two copies of the tiny MLP in one runtime, one with a profile.json (20 features, 200
 * series) and one without, at 64 connections over v2 JSON, alternated over 4 rounds so both see the same machine. The MLP
 * does the least compute per row of any workload here, so counting is the largest share of its run it can be.
 */
async function measureDrift(log: (message: string) => void): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), 'modelship-bench-drift-'));
  try {
    const reference = Array.from({ length: 50 }, (_, i) => JSON.stringify([{ name: 'x', datatype: 'FP32', shape: [4, 16], data: [...randomFloats(64, 1000 + i)] }]));
    writeFileSync(join(dir, 'reference.jsonl'), `${reference.join('\n')}\n`);
    for (const model of ['mlp_plain', 'mlp_drift']) {
      mkdirSync(join(dir, 'models', model, '1'), { recursive: true });
      copyFileSync(MODELS.mlp, join(dir, 'models', model, '1', 'model.onnx'));
    }
    writeProfile(join(dir, 'models', 'mlp_drift', '1', 'profile.json'), (await profileModel(MODELS.mlp, join(dir, 'reference.jsonl'))).profile);
    const runtime = await startRuntime(['--model-repository', join(dir, 'models'), '--max-queue-size', '1024']);
    const http = new HttpClient(runtime.url, MODE_CONCURRENCY);
    let compared: ComparedModes;
    try {
      compared = await compareModes('drift', (mode) => {
        const model = mode === 'on' ? 'mlp_drift' : 'mlp_plain';
        return served(runtime, model, jsonSender(http, `/v2/models/${model}/infer`, WORKLOADS[0].input), MODE_CONCURRENCY);
      }, log);
    } finally {
      await http.close();
      await runtime.stop();
    }
    const { off, on, perRound, rounds, concurrency } = compared;
    const label = 'tabular MLP 16→32→4, 1 row';
    return [
      { workload: label, path: `(d) runtime, v2 JSON, drift off (${rounds} rounds)`, concurrency, ...off },
      {
        workload: label, path: `(d) runtime, v2 JSON, drift on: 20 features (${rounds} rounds)`, concurrency, ...on,
        baseline: { name: 'drift off', rps: rps(off.result) }, note: ` (rounds: ${perRound}); counting ${countNanoseconds().toFixed(0)} ns per row in-process`,
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const MODE_CONCURRENCY = 64;
const MODE_ROUNDS = 4;

interface ComparedModes {
  readonly off: { result: LoadResult; meanBatch: number };
  readonly on: { result: LoadResult; meanBatch: number };
  /** on ÷ off per round, e.g. "1.01, 0.96, ...". */
  readonly perRound: string;
  readonly rounds: number;
  readonly concurrency: number;
}

/**
 * A feature's cost: the tiny MLP at 64 connections with the feature off and on, alternated over 4 rounds so both
 * see the same machine (each mode goes first in every other round: the first cell of a round runs on a cooler
 * machine), then the rounds together. The MLP does the least compute per row of any workload here, so the
 * feature's work is the largest share of a request it can be.
 */
async function compareModes(feature: string, measure: (mode: 'off' | 'on') => Promise<{ result: LoadResult; meanBatch: number }>, log: (message: string) => void): Promise<ComparedModes> {
  const measured: Record<'off' | 'on', { result: LoadResult; meanBatch: number }[]> = { off: [], on: [] };
  for (let round = 0; round < MODE_ROUNDS; round++) {
    for (const mode of round % 2 === 0 ? ['off', 'on'] as const : ['on', 'off'] as const) {
      log(`${feature} ${mode}: tabular MLP, concurrency ${MODE_CONCURRENCY}, round ${round + 1} of ${MODE_ROUNDS}`);
      measured[mode].push(await measure(mode));
    }
  }
  const together = (cells: { result: LoadResult; meanBatch: number }[]) => ({
    result: combine(cells.map((c) => c.result)),
    meanBatch: cells.reduce((sum, c) => sum + c.meanBatch, 0) / cells.length,
  });
  const perRound = measured.on.map((cell, i) => (rps(cell.result) / rps(measured.off[i].result)).toFixed(2)).join(', ');
  return { off: together(measured.off), on: together(measured.on), perRound, rounds: MODE_ROUNDS, concurrency: MODE_CONCURRENCY };
}

/**
 * The cost of tracing: two runtimes serving the tiny MLP, one with no OTLP endpoint (tracing off) and one exporting
 * to a sink that takes every span and discards it, sampling 10% of requests (parentbased_traceidratio 0.1, the
 * ModelService default; BENCH_TRACING_RATIO sets another share). Both run through the whole measurement, so each mode's cells share the machine with the
 * other's idle runtime. What tracing costs when off, against a build without it, is `npm run bench:compare`'s.
 */
/** The share of new traces the traced runtime keeps: BENCH_TRACING_RATIO, 0.1 (ModelService's default) unless set. */
const TRACING_RATIO = Number(process.env.BENCH_TRACING_RATIO ?? '0.1');

async function measureTracing(log: (message: string) => void): Promise<Row[]> {
  const sink = createServer((request, response) => {
    request.resume();
    request.on('end', () => response.writeHead(200, { 'content-type': 'application/x-protobuf', 'content-length': '0' }).end());
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  const args = ['--model', `mlp=${MODELS.mlp}`, '--max-queue-size', '1024'];
  const runtimes: RuntimeProcess[] = [];
  const clients: HttpClient[] = [];
  /** A runtime serving the MLP, and how to send it the workload's request. */
  const start = async (options: Parameters<typeof startRuntime>[1] = {}) => {
    const runtime = await startRuntime(args, options);
    runtimes.push(runtime);
    const client = new HttpClient(runtime.url, MODE_CONCURRENCY);
    clients.push(client);
    return { runtime, send: jsonSender(client, '/v2/models/mlp/infer', WORKLOADS[0].input) };
  };
  // CPU time per request (process_cpu_seconds_total: the main thread, session and codec workers, the exporter), a
  // measure that another tenant's load on the machine moves far less than throughput.
  const cpu = new Map<RuntimeProcess, { seconds: number; requests: number }>();
  const measure = async (target: { runtime: RuntimeProcess; send: StatusSender }) => {
    const before = await cpuSeconds(target.runtime);
    const cell = await served(target.runtime, 'mlp', target.send, MODE_CONCURRENCY);
    const spent = cpu.get(target.runtime) ?? { seconds: 0, requests: 0 };
    cpu.set(target.runtime, { seconds: spent.seconds + (await cpuSeconds(target.runtime)) - before, requests: spent.requests + cell.result.latencies.length });
    return cell;
  };
  const microsecondsPerRequest = (target: { runtime: RuntimeProcess }) => {
    const spent = cpu.get(target.runtime)!;
    return (spent.seconds * 1e6) / spent.requests;
  };
  const label = 'tabular MLP 16→32→4, 1 row';
  try {
    const off = await start();
    const on = await start({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(sink.address() as AddressInfo).port}`,
        OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: String(TRACING_RATIO),
      },
    });
    // Both warmed alike first, so that neither mode's first cells run colder code.
    for (const target of [off, on]) await served(target.runtime, 'mlp', target.send, MODE_CONCURRENCY);
    const traced = await compareModes('tracing', (mode) => measure(mode === 'on' ? on : off), log);
    return [
      { workload: label, path: `(d) runtime, v2 JSON, tracing off (${traced.rounds} rounds)`, concurrency: traced.concurrency, ...traced.off },
      {
        workload: label, path: `(d) runtime, v2 JSON, tracing on: ${TRACING_RATIO * 100}% sampled, OTLP/HTTP (${traced.rounds} rounds)`, concurrency: traced.concurrency, ...traced.on,
        baseline: { name: 'tracing off', rps: rps(traced.off.result) },
        note: ` (rounds: ${traced.perRound}); CPU per request ${microsecondsPerRequest(on).toFixed(0)} µs, off ${microsecondsPerRequest(off).toFixed(0)} µs`,
      },
    ];
  } finally {
    await Promise.all(clients.map((client) => client.close()));
    await Promise.all(runtimes.map((runtime) => runtime.stop()));
    sink.close();
  }
}

/** Nanoseconds the session worker spends counting one served row of the MLP (x: 16 features, y: 4) into its bins. */
function countNanoseconds(): number {
  const builder = new ProfileBuilder();
  const rows = 1000;
  const x = { name: 'x', datatype: 'FP32' as const, shape: [rows, 16], data: randomFloats(rows * 16, 5) };
  const y = { name: 'y', datatype: 'FP32' as const, shape: [rows, 4], data: randomFloats(rows * 4, 6) };
  builder.add([x], [y]);
  const profile = builder.build();
  const counts = profile.tensors.map((t) => new Uint32Array(t.features.length * 10));
  const iterations = 200;
  // Once untimed, so that the timed loop runs optimized code, as a serving worker does after its first requests.
  countRows(profile.tensors[0], x, counts[0]);
  const started = performance.now();
  for (let i = 0; i < iterations; i++) {
    countRows(profile.tensors[0], x, counts[0]);
    countRows(profile.tensors[1], y, counts[1]);
  }
  return ((performance.now() - started) * 1e6) / (iterations * rows);
}

async function main(): Promise<void> {
  const started = performance.now();
  const rows: Row[] = [];
  const log = (message: string) => process.stderr.write(`${message}\n`);
  const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
  if (only === 'drift') {
    const report = formatReport(await measureDrift(log), undefined, [], [], [], (performance.now() - started) / 1000);
    process.stdout.write(`${report}\n`);
    return;
  }
  if (only === 'explain') {
    const explainRows = await measureExplainLoad(SECONDS, log);
    process.stdout.write(`${formatReport([], undefined, [], [], explainRows, (performance.now() - started) / 1000)}\n`);
    return;
  }
  if (only === 'tracing') {
    process.stdout.write(`${formatReport(await measureTracing(log), undefined, [], [], [], (performance.now() - started) / 1000)}\n`);
    return;
  }
  if (only !== undefined) throw new Error(`--only takes 'drift', 'explain' or 'tracing', received '${only}'`);

  const limits = new Map<string, { compute: number; json: number }>();
  for (const workload of WORKLOADS) {
    log(`in-process: ${workload.label}`);
    const compute = await inProcess(workload, false);
    const json = await inProcess(workload, true);
    rows.push({ workload: workload.label, path: '(a) in-process session.run', concurrency: 1, result: compute });
    rows.push({ workload: workload.label, path: '(b) in-process JSON parse → run → stringify', concurrency: 1, result: json, baseline: { name: '(a)', rps: rps(compute) } });
    limits.set(workload.id, { compute: rps(compute), json: rps(json) });
    for (const images of workload.inProcessBatches ?? []) {
      const batched = await inProcess(workload, false, images);
      rows.push({
        workload: workload.label, path: `(a) in-process session.run, ${images} images per run`, concurrency: 1, result: batched,
        note: `${((images * rps(batched)) / rps(compute)).toFixed(2)}× (a) in images/s`,
      });
    }
  }

  const runtime = await startRuntime(['--model', `mlp=${MODELS.mlp}`, '--model', `det=${MODELS.ocrDetection}`, '--max-queue-size', '1024']);
  const grpcAddress = `127.0.0.1:${(runtime as RuntimeProcess & { grpcPort?: number }).grpcPort}`;
  const grpcClient = new GrpcClient(grpcAddress);
  const mlpResponse = await (await fetch(`${runtime.url}/v2/models/mlp/infer`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: v2JsonBody(WORKLOADS[0].input) })).text();
  const bare = await startBareServer(mlpResponse);
  let overload: Awaited<ReturnType<typeof measureOverload>> | undefined;
  const probes: ProbeRow[] = [];
  let explainLoad: ExplainLoadRow[] = [];
  log('codec threads: main-thread cost of decoding in place and on a codec thread');
  const crossover = await measureCodecCrossover(Math.min(SECONDS, 1));
  try {
    for (const workload of WORKLOADS) {
      const limit = limits.get(workload.id)!;
      const path = `/v2/models/${workload.model}/infer`;
      for (const concurrency of CONCURRENCY) {
        log(`served: ${workload.label}, concurrency ${concurrency}`);
        if (!workload.floor && concurrency === 1) {
          rows.push(await transportFloor(runtime, bare.url, workload, 'binary', { rps: limit.compute, name: '(a)' }));
          rows.push(await transportFloor(runtime, bare.url, workload, 'JSON', { rps: limit.json, name: '(b)' }));
        }
        let floor: LoadResult | undefined;
        if (workload.floor) {
          const client = new HttpClient(bare.url, concurrency);
          floor = await closedLoop(ok(jsonSender(client, '/', workload.input)), concurrency, SECONDS);
          await client.close();
          rows.push({ workload: workload.label, path: '(c) bare node:http JSON floor', concurrency, result: floor });
        }
        const http = new HttpClient(runtime.url, concurrency);
        const variants: Array<[string, StatusSender, number, string]> = [
          ['(d) runtime, v2 JSON', jsonSender(http, path, workload.input), floor ? rps(floor) : limit.json, floor ? '(c)' : '(b)'],
          ['(d) runtime, v2 binary', binarySender(http, path, workload.input), floor ? rps(floor) : limit.compute, floor ? '(c)' : '(a)'],
          ['(d) runtime, v2 gRPC raw', grpcClient.sender(workload.model, workload.input), floor ? rps(floor) : limit.compute, floor ? '(c)' : '(a)'],
        ];
        for (const [name, send, baseline, baselineName] of variants) {
          if (name.includes('JSON') && concurrency > (workload.maxJsonConcurrency ?? Infinity)) continue;
          const { result, meanBatch } = await served(runtime, workload.model, send, concurrency);
          rows.push({ workload: workload.label, path: name, concurrency, result, baseline: { name: baselineName, rps: baseline }, meanBatch });
        }
        await http.close();
      }
    }
    rows.push(...await measureDrift(log));
    rows.push(...await measureTracing(log));
    // Its own runtime, like the drift rows: another's queues and learned batch sizes would blur the comparison.
    explainLoad = await measureExplainLoad(SECONDS, log);
    log('overload: OCR detection 320 at twice the sustainable rate');
    overload = await measureOverload(rows);
    for (const form of ['JSON', 'binary'] as const) {
      log(`probes while 6 clients saturate the server with 640×640 ${form} requests`);
      probes.push(await measureProbes(runtime, form));
    }
  } finally {
    grpcClient.close();
    bare.stop();
    await runtime.stop();
  }
  const report = formatReport(rows, overload, probes, crossover, explainLoad, (performance.now() - started) / 1000);
  process.stdout.write(`${report}\n`);
  if (process.argv.includes('--write')) writeReport('bench', report);
}

/**
 * (e): the bare server receives the workload's request, binary or JSON, and answers as many bytes as the runtime
 * does, so only the bytes move. The limit ((a) for binary, (b) for JSON) plus this transport, one after the other
 * as at concurrency 1, is the best any HTTP server on this machine could do; the note gives that ceiling.
 */
async function transportFloor(runtime: RuntimeProcess, bareUrl: string, workload: Workload, form: 'binary' | 'JSON', limit: { rps: number; name: string }): Promise<Row> {
  const request = v2Request(form, workload.input);
  const answer = await fetch(`${runtime.url}/v2/models/${workload.model}/infer`, { method: 'POST', ...request });
  const answerBytes = (await answer.arrayBuffer()).byteLength;
  const bare = new HttpClient(bareUrl, 1);
  const result = await closedLoop(ok(bare.post(`/bytes/${answerBytes}`, request)), 1, SECONDS);
  await bare.close();
  const ceiling = (1 / limit.rps) / (1 / limit.rps + 1 / rps(result));
  return {
    workload: workload.label, path: `(e) bare node:http, same bytes in and out as ${form}`, concurrency: 1, result,
    note: `ceiling ${limit.name}+(e): ${ceiling.toFixed(2)}× ${limit.name}`,
  };
}

/** Twice the rate the runtime sustained for OCR 320 over binary, against a queue of 8: what happens to the rest. */
async function measureOverload(rows: readonly Row[]) {
  const sustained = Math.max(...rows.filter((r) => r.workload.startsWith('OCR detection 1×3×320') && r.path === '(d) runtime, v2 binary').map((r) => rps(r.result)));
  const runtime = await startRuntime(['--model', `det=${MODELS.ocrDetection}`, '--max-queue-size', '8']);
  try {
    const client = new HttpClient(runtime.url, 256);
    const result = await openLoop(binarySender(client, '/v2/models/det/infer', WORKLOADS[1].input), 2 * sustained, SECONDS * 2);
    await client.close();
    return { rate: 2 * sustained, sustained, ...result };
  } finally {
    await runtime.stop();
  }
}

interface ProbeRow {
  readonly form: 'JSON' | 'binary';
  /** Milliseconds per probe, by path. */
  readonly ready: number[];
  readonly metrics: number[];
  /** Inference requests answered 200 meanwhile, and per second. */
  readonly served: number;
  readonly seconds: number;
}

/** Twenty readiness probes and twenty /metrics scrapes, each on a new connection, while 6 clients saturate the server. */
async function measureProbes(runtime: RuntimeProcess, form: 'JSON' | 'binary'): Promise<ProbeRow> {
  const client = new HttpClient(runtime.url, 6);
  const send = client.post('/v2/models/det/infer', v2Request(form, WORKLOADS[2].input));
  let stop = false;
  let served = 0;
  const started = performance.now();
  const load = Promise.all(Array.from({ length: 6 }, async () => {
    while (!stop) if (await send() === 200) served++;
  }));
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const ready: number[] = [];
  const metrics: number[] = [];
  for (let i = 0; i < 20; i++) {
    for (const [path, into] of [['/v2/health/ready', ready], ['/metrics', metrics]] as const) {
      const t0 = performance.now();
      const response = await fetch(`${runtime.url}${path}`, { headers: { connection: 'close' } });
      await response.arrayBuffer();
      into.push(performance.now() - t0);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  stop = true;
  await load;
  await client.close();
  return { form, ready: ready.sort((a, b) => a - b), metrics: metrics.sort((a, b) => a - b), served, seconds: (performance.now() - started) / 1000 };
}

function formatReport(rows: readonly Row[], overload: Awaited<ReturnType<typeof measureOverload>> | undefined, probes: readonly ProbeRow[], crossover: readonly CrossoverRow[], explainLoad: readonly ExplainLoadRow[], seconds: number): string {
  const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '—');
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, onnxruntime-node ${ort.env.versions.node ?? ''}; ${SECONDS} s per cell; whole run ${fmt(seconds, 0)} s.`,
  ];
  if (rows.length > 0) lines.push(
    '',
    '| workload | path | conc. | req/s | p50 ms | p99 ms | ratio | mean batch |',
    '|---|---|---:|---:|---:|---:|---|---:|',
    ...rows.map((r) => `| ${r.workload} | ${r.path} | ${r.concurrency} | ${fmt(rps(r.result))} | ${fmt(percentile(r.result.latencies, 50), 2)} | ${fmt(percentile(r.result.latencies, 99), 2)} | ${r.baseline ? `${fmt(rps(r.result) / r.baseline.rps, 2)}× ${r.baseline.name}` : ''}${r.note ?? ''} | ${r.meanBatch !== undefined ? fmt(r.meanBatch, 2) : ''} |`
      + (r.result.failed ? ` (${r.result.failed} failed)` : '')),
  );
  if (overload) {
    lines.push('', `Overload: OCR detection 320×320 over binary, open loop at ${fmt(overload.rate)} req/s (twice the ${fmt(overload.sustained)} req/s sustained), --max-queue-size 8, ${SECONDS * 2} s:`,
      '', '| sent | accepted | accepted p50 ms | accepted p99 ms | rejected (429) | rejected p50 ms | rejected p99 ms | other failures |', '|---:|---:|---:|---:|---:|---:|---:|---:|',
      `| ${overload.sent} | ${overload.accepted.length} | ${fmt(percentile(overload.accepted, 50), 1)} | ${fmt(percentile(overload.accepted, 99), 1)} | ${overload.rejected.length} | ${fmt(percentile(overload.rejected, 50), 2)} | ${fmt(percentile(overload.rejected, 99), 2)} | ${overload.failed} |`);
  }
  if (probes.length > 0) {
    lines.push('', 'Probes while 6 clients saturate the server with OCR detection 1×3×640×640 requests (20 of each, each on a new connection):',
      '', '| requests | readiness p50 ms | readiness worst ms | /metrics p50 ms | /metrics worst ms | inferences/s meanwhile |', '|---|---:|---:|---:|---:|---:|',
      ...probes.map((p) => `| v2 ${p.form} | ${fmt(percentile(p.ready, 50), 1)} | ${fmt(p.ready.at(-1)!, 1)} | ${fmt(percentile(p.metrics, 50), 1)} | ${fmt(p.metrics.at(-1)!, 1)} | ${fmt(p.served / p.seconds)} |`));
  }
  if (crossover.length > 0) lines.push('', 'Codec threads: main-thread time per v2 JSON body, decoded in place and on a codec thread:', '', formatCrossover(crossover));
  if (explainLoad.length > 0) lines.push('', formatExplainLoad(explainLoad, SECONDS));
  return lines.join('\n');
}

main().catch((error) => {
  process.stderr.write(`bench failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
