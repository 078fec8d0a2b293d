/**
 * `npm run bench:memory`: what one large request costs the runtime in resident memory, per MB of its body, for each
 * form a body can take; and what a large answer costs per MB of output when it is encoded as JSON. These figures are
 * what the memory-derived defaults of --max-body-bytes and --max-response-bytes divide by (runtime/src/resources.ts).
 *
 * Each row starts a fresh runtime, sends one small request of the same form (so that code is compiled and the
 * allocators are warm), reads the process's VmHWM from /proc/<pid>/status, sends the large request, and reads VmHWM
 * again. The row's figure is the rise in that high-water mark over the body's (or the output's) MB. Each row runs
 * `BENCH_MEMORY_RUNS` times (default 2) and keeps the highest.
 *
 * `--mb N` sets the body size (default 32); `--write` puts the table into docs/benchmarks.md; BENCH_MEMORY_ONLY=text
 * measures only the rows whose body form contains the text.
 */
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { writeReport } from './report';
import { MODELS, REPO_ROOT } from '../test/helpers/paths';
import { randomFloats } from '../test/helpers/reference';
import { startRuntime, type RuntimeProcess } from '../test/helpers/runtime-process';

const MB = 1e6;
const { values: options } = parseArgs({ options: { mb: { type: 'string', default: '32' }, write: { type: 'boolean', default: false } } });
const BODY_BYTES = Number(options.mb) * MB;
const RUNS = Number(process.env.BENCH_MEMORY_RUNS ?? 2);

/** How numbers are spelt: as a client printing float32 data writes them, or as short as they come (the most per MB). */
type Spelling = 'float32' | 'short';
const spell = (spelling: Spelling, count: number, seed: number): string[] => {
  const values = randomFloats(count, seed);
  return spelling === 'float32' ? Array.from(values, (v) => JSON.stringify(v)) : Array.from(values, (v) => (Math.round(v * 9) / 10).toString());
};
/** How many numbers of a spelling fill about `bytes` when separated by `overhead` bytes each. */
const countFor = (spelling: Spelling, bytes: number, overhead: number) => Math.floor(bytes / ((spelling === 'float32' ? 19.5 : 3.6) + overhead));

interface Request {
  readonly send: (runtime: RuntimeProcess) => Promise<{ status: number; answerBytes: number }>;
  readonly bodyBytes: number;
  /** Raw bytes of the outputs, for the rows that measure answers. */
  readonly outputBytes?: number;
}

interface Case {
  readonly form: string;
  readonly model: string;
  readonly path: string;
  /** What the row's figure is per: the body or the output. */
  readonly per: 'body' | 'output';
  readonly build: (bytes: number) => Request;
}

function post(path: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }): Request['send'] {
  return async (runtime) => {
    const response = await fetch(`${runtime.url}${path}`, { method: 'POST', headers, body });
    const answer = await response.arrayBuffer();
    return { status: response.status, answerBytes: answer.byteLength };
  };
}

function v2Json(spelling: Spelling, bytes: number, model: string): Request {
  const n = 1000;
  const rows = Math.max(1, Math.round(countFor(spelling, bytes, 1) / n));
  const body = `{"inputs":[{"name":"x","datatype":"FP32","shape":[${rows},${n}],"data":[${spell(spelling, rows * n, 1).join(',')}]}]}`;
  return { send: post(`/v2/models/${model}/infer`, body), bodyBytes: Buffer.byteLength(body) };
}

/** TF Serving's columnar form with rows of `width` numbers: [[a, b, ...], ...]. */
function tfRows(spelling: Spelling, bytes: number, width: number, model: string): Request {
  const rows = Math.max(1, Math.floor(countFor(spelling, bytes, 1 + 3 / width) / width));
  const numbers = spell(spelling, rows * width, 2);
  const body = `{"inputs":[${Array.from({ length: rows }, (_, r) => `[${numbers.slice(r * width, (r + 1) * width).join(',')}]`).join(',')}]}`;
  return { send: post(`/v1/models/${model}:predict`, body), bodyBytes: Buffer.byteLength(body) };
}

/** TF Serving's row form with one number per instance, for a [-1, 1] model: the issue's 40 MB request. */
function tfScalarInstances(spelling: Spelling, bytes: number, model: string): Request {
  const body = `{"instances":[${spell(spelling, countFor(spelling, bytes, 1), 3).join(',')}]}`;
  return { send: post(`/v1/models/${model}:predict`, body), bodyBytes: Buffer.byteLength(body) };
}

function v2Binary(count: number, model: string, shape: number[], jsonAnswer: boolean): Request {
  const data = randomFloats(count, 4);
  const header = Buffer.from(JSON.stringify({
    inputs: [{ name: 'x', datatype: 'FP32', shape, parameters: { binary_data_size: data.byteLength } }],
    parameters: { binary_data_output: !jsonAnswer },
  }));
  const body = Buffer.concat([header, Buffer.from(data.buffer)]);
  return {
    send: post(`/v2/models/${model}/infer`, body, { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.byteLength) }),
    bodyBytes: body.byteLength,
    outputBytes: data.byteLength,
  };
}

const PROTO = join(REPO_ROOT, 'runtime', 'src', 'protocols', 'grpc_predict_v2.proto');

function grpcInfer(count: number, model: string, raw: boolean): Request {
  const data = randomFloats(count, 5);
  const n = 1000;
  const input = { name: 'x', datatype: 'FP32', shape: [Math.ceil(count / n), n] };
  const request = raw
    ? { model_name: model, inputs: [input], raw_input_contents: [Buffer.from(data.buffer)] }
    : { model_name: model, inputs: [{ ...input, contents: { fp32_contents: Array.from(data) } }] };
  return {
    bodyBytes: data.byteLength,
    send: (runtime) => new Promise((resolve) => {
      const definition = protoLoader.loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
      const inference = (grpc.loadPackageDefinition(definition) as any).inference;
      const client = new inference.GRPCInferenceService(`127.0.0.1:${runtime.grpcPort}`, grpc.credentials.createInsecure(), {
        'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1,
      });
      client.ModelInfer(request, (error: grpc.ServiceError | null) => {
        client.close();
        resolve({ status: error ? 500 : 200, answerBytes: 0 });
      });
    }),
  };
}

/** v2 JSON whose numbers JSON.parse must read: every tenth element the string "NaN", as a client spells it. */
function v2JsonWithStrings(bytes: number, model: string): Request {
  const n = 1000;
  const rows = Math.max(1, Math.round(countFor('short', bytes, 1.4) / n));
  const numbers = spell('short', rows * n, 6).map((text, i) => (i % 10 === 9 ? '"NaN"' : text));
  const body = `{"inputs":[{"name":"x","datatype":"FP32","shape":[${rows},${n}],"data":[${numbers.join(',')}]}]}`;
  return { send: post(`/v2/models/${model}/infer`, body), bodyBytes: Buffer.byteLength(body) };
}

/** TF Serving's row form keyed by input name, a short list per instance: [{"x": [a, b, c, d]}, ...]. */
function tfKeyedInstances(bytes: number, model: string): Request {
  const width = 4;
  const rows = Math.max(1, Math.floor(bytes / (width * 4.6 + 10)));
  const numbers = spell('short', rows * width, 7);
  const body = `{"instances":[${Array.from({ length: rows }, (_, r) => `{"x":[${numbers.slice(r * width, (r + 1) * width).join(',')}]}`).join(',')}]}`;
  return { send: post(`/v1/models/${model}:predict`, body), bodyBytes: Buffer.byteLength(body) };
}

/** Rows of one number with every hundredth row two long: ragged, so refused, but only after JSON.parse read it. */
function tfRaggedRows(bytes: number, model: string): Request {
  const rows = countFor('short', bytes, 3);
  const numbers = spell('short', rows, 8);
  const body = `{"inputs":[${numbers.map((n, r) => (r % 100 === 99 ? `[${n},${n}]` : `[${n}]`)).join(',')}]}`;
  return { send: post(`/v1/models/${model}:predict`, body), bodyBytes: Buffer.byteLength(body) };
}

const CASES: Case[] = [
  { form: 'v2 JSON, float32 spelling', model: 'mean', path: MODELS.mean, per: 'body', build: (b) => v2Json('float32', b, 'mean') },
  { form: 'v2 JSON, short numbers', model: 'mean', path: MODELS.mean, per: 'body', build: (b) => v2Json('short', b, 'mean') },
  { form: 'TF Serving nested rows of 1000, short numbers', model: 'mean', path: MODELS.mean, per: 'body', build: (b) => tfRows('short', b, 1000, 'mean') },
  { form: 'TF Serving nested rows of 1, short numbers', model: 'mean', path: MODELS.mean, per: 'body', build: (b) => tfRows('short', b, 1, 'mean') },
  { form: 'v2 JSON with "NaN" strings among the numbers (JSON.parse\'s path)', model: 'mean', path: MODELS.mean, per: 'body', build: (b) => v2JsonWithStrings(b, 'mean') },
  { form: 'TF Serving instances keyed by input name, 4 numbers each (JSON.parse\'s path)', model: 'mean', path: MODELS.mean, per: 'body', build: (b) => tfKeyedInstances(b, 'mean') },
  { form: 'TF Serving ragged rows, refused after parsing (JSON.parse\'s path)', model: 'mean', path: MODELS.mean, per: 'body', build: (b) => tfRaggedRows(b, 'mean') },
  { form: 'v2 binary', model: 'mean', path: MODELS.mean, per: 'body', build: (b) => v2Binary(Math.floor(b / 4), 'mean', [Math.floor(b / 4000), 1000], true) },
  { form: 'gRPC raw_input_contents', model: 'mean', path: MODELS.mean, per: 'body', build: (b) => grpcInfer(Math.floor(b / 4), 'mean', true) },
  { form: 'gRPC fp32_contents', model: 'mean', path: MODELS.mean, per: 'body', build: (b) => grpcInfer(Math.floor(b / 4), 'mean', false) },
  { form: 'TF Serving instances of scalars, short numbers, answered as JSON', model: 'lin', path: MODELS.linearRegression, per: 'body', build: (b) => tfScalarInstances('short', b, 'lin') },
  { form: 'v2 binary in, answered as v2 JSON', model: 'lin', path: MODELS.linearRegression, per: 'output', build: (b) => v2Binary(Math.floor(b / 8), 'lin', [Math.floor(b / 8), 1], true) },
];

function highWaterMark(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

interface Row {
  readonly form: string;
  readonly model: string;
  readonly per: 'body' | 'output';
  readonly bodyBytes: number;
  readonly outputBytes?: number;
  readonly answerBytes: number;
  readonly idle: number;
  readonly rise: number;
  readonly seconds: number;
  readonly status: number;
}

async function measure(spec: Case): Promise<Row> {
  const large = spec.build(BODY_BYTES);
  const small = spec.build(64 * 1024);
  let worst: Row | undefined;
  for (let run = 0; run < RUNS; run++) {
    const limits = String(2048 * 1024 * 1024);
    const runtime = await startRuntime([
      '--model', `${spec.model}=${spec.path}`, '--max-body-bytes', limits, '--max-response-bytes', limits, '--max-tensor-elements', String(2 ** 31 - 1),
    ]);
    try {
      const pid = runtime.process.pid!;
      await small.send(runtime);
      const idle = highWaterMark(pid);
      const started = performance.now();
      const { status, answerBytes } = await large.send(runtime);
      const seconds = (performance.now() - started) / 1000;
      const rise = highWaterMark(pid) - idle;
      if (!worst || rise > worst.rise) {
        worst = { form: spec.form, model: spec.model, per: spec.per, bodyBytes: large.bodyBytes, outputBytes: large.outputBytes, answerBytes, idle, rise, seconds, status };
      }
    } finally {
      await runtime.stop();
    }
  }
  return worst!;
}

function format(rows: readonly Row[]): string {
  const mb = (bytes: number) => (bytes / MB).toFixed(1);
  return [
    `Measured ${new Date().toISOString().slice(0, 10)}, Node ${process.version}; highest of ${RUNS} runs, a fresh runtime each.`,
    '',
    '| body | model | body MB | answer MB | status | s | idle VmHWM MB | peak rise MB | per MB |',
    '|---|---|---:|---:|---:|---:|---:|---:|---|',
    ...rows.map((r) => {
      const per = r.per === 'body' ? `${(r.rise / r.bodyBytes).toFixed(1)} per MB of body` : `${(r.rise / r.outputBytes!).toFixed(1)} per MB of output`;
      return `| ${r.form} | ${r.model} | ${mb(r.bodyBytes)} | ${mb(r.answerBytes)} | ${r.status} | ${r.seconds.toFixed(1)} | ${mb(r.idle)} | ${mb(r.rise)} | ${per} |`;
    }),
  ].join('\n');
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  const only = process.env.BENCH_MEMORY_ONLY;
  for (const spec of CASES.filter((c) => !only || c.form.includes(only))) {
    process.stderr.write(`memory: ${spec.form} → ${spec.model}\n`);
    rows.push(await measure(spec));
  }
  const report = format(rows);
  process.stdout.write(`${report}\n`);
  if (options.write) writeReport('bench:memory', report);
}

main().catch((error) => {
  process.stderr.write(`bench:memory failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
