/**
 * `npm run bench:optimize`: what each option of `modelship optimize` buys and costs on four models — the tabular
 * MLP, OCR detection at 1×3×320×320, silero VAD, and the wide MLP whose weights are nearly all MatMul/Gemm. Per model
 * and option: the file's size before and after, in-process throughput before and after, load time, and the guard's
 * largest relative error per output (and top-1 agreement where an output scores classes).
 *
 * Each model's validation inputs are written as a JSON-lines file of v2 `inputs` arrays and given to `optimizeModel`
 * as --validate-data, so that sizes and errors are the command's own. Its throughput figure runs each model for only
 * 0.5 s, which on a shared machine moves by tens of percent; throughput here is measured again, the original and every
 * optimized file of a model in turns (`BENCH_OPTIMIZE_ROUNDS` rounds, default 7, of `BENCH_SECONDS` s each, default
 * 0.5), the order rotating each round so that none always runs first. The table gives medians over the rounds; a
 * ratio is the median of each round's ratio (a file against the original in the same round). Load time is the median
 * of three session creations from the file. `--write` puts the table into docs/benchmarks.md.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import type { OptimizeLevel, Quantize } from '@modelship/contract';
import * as ort from '../runtime/src/model/onnxruntime';
import { format as formatError, throughputs, type OutputComparison } from '../runtime/src/optimize/guard';
import { optimizeModel } from '../runtime/src/optimize/optimize';
import { runInProcess } from '../runtime/src/reference-data';
import type { NamedTensor } from '../runtime/src/tensor/datatypes';
import { writeReport } from './report';
import { MODELS } from '../test/helpers/paths';
import { randomFloats } from '../test/helpers/reference';
import { textPage } from '../test/helpers/text-page';
import { buildWideMlp } from '../test/helpers/wide-mlp';

const { values: options } = parseArgs({ options: { write: { type: 'boolean', default: false } } });
const ROUNDS = Number(process.env.BENCH_OPTIMIZE_ROUNDS ?? 7);
const SECONDS_PER_TURN = Number(process.env.BENCH_SECONDS ?? 0.5);
const QUIET = { logSeverityLevel: 4 } as const;

interface OptimizeChoice {
  readonly label: string;
  readonly level?: OptimizeLevel;
  readonly quantize?: Quantize;
  readonly fp16: boolean;
}

const CHOICES: readonly OptimizeChoice[] = [
  { label: '--level basic', level: 'basic', fp16: false },
  { label: '--level all', level: 'all', fp16: false },
  { label: '--quantize dynamic-int8', quantize: 'dynamic-int8', fp16: false },
  { label: '--fp16', fp16: true },
  { label: '--quantize dynamic-int8 --fp16', quantize: 'dynamic-int8', fp16: true },
];

interface Subject {
  readonly label: string;
  /** What one validation request is, for the table. */
  readonly requestLabel: string;
  readonly path: (workDir: string) => string;
  readonly requests: (path: string) => Promise<NamedTensor[][]>;
}

const float32 = (name: string, shape: number[], data: Float32Array): NamedTensor => ({ name, datatype: 'FP32', shape, data });

/** `count` requests of `rows` rows each, uniform in [-1, 1): the rows the tests feed these models. */
const uniformRows = (input: string, count: number, rows: number, width: number) => async () =>
  Array.from({ length: count }, (_, i) => [float32(input, [rows, width], randomFloats(rows * width, 100 + i))]);

const VAD_SAMPLE_RATE = 16000;
const VAD_CHUNK = 512;

/**
 * A second of speech-like audio: quiet noise, then half a second of a voiced sound (a glottal tone gliding around
 * 150 Hz with falling harmonics, its loudness rising and falling four times a second, as syllables do), then quiet.
 */
function speechLikeAudio(samples: number): Float32Array {
  const noise = randomFloats(samples, 31);
  const audio = new Float32Array(samples);
  let phase = 0;
  for (let i = 0; i < samples; i++) {
    const t = i / VAD_SAMPLE_RATE;
    audio[i] = 0.005 * noise[i];
    if (t < 0.25 || t >= 0.75) continue;
    phase += (2 * Math.PI * (150 + 30 * Math.sin(2 * Math.PI * 2 * t))) / VAD_SAMPLE_RATE;
    let tone = 0;
    for (let harmonic = 1; harmonic <= 10; harmonic++) tone += Math.sin(harmonic * phase) / harmonic;
    audio[i] += 0.3 * (0.5 - 0.5 * Math.cos(2 * Math.PI * 4 * (t - 0.25))) * tone;
  }
  return audio;
}

/**
 * The VAD's requests as a stream sends them: consecutive 512-sample chunks, each with the state (h, c) the original
 * model returned for the chunk before, starting from zeros.
 */
async function vadStream(path: string): Promise<NamedTensor[][]> {
  const audio = speechLikeAudio(VAD_SAMPLE_RATE);
  const session = await ort.InferenceSession.create(path, QUIET);
  const requests: NamedTensor[][] = [];
  let h = float32('h', [2, 1, 64], new Float32Array(128));
  let c = float32('c', [2, 1, 64], new Float32Array(128));
  try {
    for (let start = 0; start + VAD_CHUNK <= audio.length; start += VAD_CHUNK) {
      const request = [
        float32('input', [1, VAD_CHUNK], audio.slice(start, start + VAD_CHUNK)),
        { name: 'sr', datatype: 'INT64', shape: [], data: BigInt64Array.of(BigInt(VAD_SAMPLE_RATE)) } satisfies NamedTensor,
        h, c,
      ];
      requests.push(request);
      const outputs = await runInProcess(session, request);
      const state = (name: string) => outputs.find((output) => output.name === name)!;
      h = { ...state('hn'), name: 'h' };
      c = { ...state('cn'), name: 'c' };
    }
  } finally {
    await session.release();
  }
  return requests;
}

const OCR_SIZE = 320;

const SUBJECTS: readonly Subject[] = [
  { label: 'tabular MLP 16→32→4', requestLabel: '32 requests of [8, 16]', path: () => MODELS.mlp, requests: uniformRows('x', 32, 8, 16) },
  {
    label: 'wide MLP 256→1024→1024→10', requestLabel: '8 requests of [32, 256]',
    path: (workDir) => buildWideMlp(join(workDir, 'wide_mlp.onnx')), requests: uniformRows('x', 8, 32, 256),
  },
  {
    label: `OCR detection ${OCR_SIZE}×${OCR_SIZE}`, requestLabel: `a text-like page [1, 3, ${OCR_SIZE}, ${OCR_SIZE}]`, path: () => MODELS.ocrDetection,
    requests: async () => [[float32('x', [1, 3, OCR_SIZE, OCR_SIZE], textPage(OCR_SIZE))]],
  },
  { label: 'silero VAD', requestLabel: `${Math.floor(VAD_SAMPLE_RATE / VAD_CHUNK)} chunks of speech-like audio [1, ${VAD_CHUNK}]`, path: () => MODELS.sileroVad, requests: vadStream },
];

/** A request as a line of --validate-data: a v2 `inputs` array. */
function v2InputsLine(request: readonly NamedTensor[]): string {
  return JSON.stringify(request.map((tensor) => ({
    name: tensor.name, datatype: tensor.datatype, shape: tensor.shape, data: Array.from(tensor.data as ArrayLike<number | bigint>, Number),
  })));
}

/**
 * Runs per second of each session per round: `throughputs` (the guard's own loop) one round at a time, the order
 * rotating so that each session runs first in its share of the rounds.
 */
async function alternatingThroughputs(sessions: readonly ort.InferenceSession[], requests: readonly NamedTensor[][]): Promise<number[][]> {
  const perRound = sessions.map((): number[] => []);
  for (let round = 0; round < ROUNDS; round++) {
    const order = sessions.map((_, i) => (i + round) % sessions.length);
    const rates = await throughputs(order.map((i) => sessions[i]), requests, SECONDS_PER_TURN, 1);
    order.forEach((i, k) => perRound[i].push(rates[k]));
  }
  return perRound;
}

const median = (values: readonly number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

/** Milliseconds to create a session from the file (reading it included), the median of three. */
async function loadMilliseconds(path: string): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < 3; i++) {
    const started = performance.now();
    const session = await ort.InferenceSession.create(path, QUIET);
    times.push(performance.now() - started);
    await session.release();
  }
  return median(times);
}

interface Row {
  readonly model: string;
  readonly choice: string;
  readonly sizeBytes: { readonly before: number; readonly after: number };
  readonly runsPerSecond: { readonly before: number; readonly after: number };
  /** The optimized file's throughput over the original's in each round. */
  readonly roundRatios: readonly number[];
  /** The ratio `optimize` itself reported (0.5 s per model). */
  readonly reportedRatio: number;
  readonly loadMs: { readonly before: number; readonly after: number };
  readonly outputs: readonly OutputComparison[];
}

async function measureSubject(subject: Subject, workDir: string): Promise<Row[]> {
  const path = subject.path(workDir);
  const requests = await subject.requests(path);
  const dataPath = join(workDir, `${subject.label.replace(/\W+/g, '-')}.jsonl`);
  writeFileSync(dataPath, `${requests.map(v2InputsLine).join('\n')}\n`);
  const optimized: { choice: OptimizeChoice; out: string; report: Awaited<ReturnType<typeof optimizeModel>> }[] = [];
  for (const [i, choice] of CHOICES.entries()) {
    const out = join(workDir, `${subject.label.replace(/\W+/g, '-')}-${i}.onnx`);
    const report = await optimizeModel({
      input: path, out, level: choice.level, quantize: choice.quantize, fp16: choice.fp16,
      validateData: dataPath, validateSamples: requests.length, tool: 'modelship bench:optimize',
    });
    process.stderr.write(`optimize: ${subject.label} ${choice.label}\n${report.steps.map((step) => `  ${step}\n`).join('')}`);
    optimized.push({ choice, out, report });
  }
  const files = [path, ...optimized.map((o) => o.out)];
  const sessions = await Promise.all(files.map((file) => ort.InferenceSession.create(file, QUIET)));
  let perRound: number[][];
  try {
    // One pass over the requests first: each session allocates and plans on its first runs.
    for (const session of sessions) for (const request of requests) await runInProcess(session, request);
    perRound = await alternatingThroughputs(sessions, requests);
  } finally {
    await Promise.all(sessions.map((session) => session.release()));
  }
  const loadMs: number[] = [];
  for (const file of files) loadMs.push(await loadMilliseconds(file));
  const before = median(perRound[0]);
  return optimized.map(({ choice, report }, i) => ({
    model: subject.label,
    choice: choice.label,
    sizeBytes: report.sizeBytes,
    runsPerSecond: { before, after: median(perRound[i + 1]) },
    roundRatios: perRound[i + 1].map((rate, round) => rate / perRound[0][round]),
    reportedRatio: report.runsPerSecond.after / report.runsPerSecond.before,
    loadMs: { before: loadMs[0], after: loadMs[i + 1] },
    outputs: report.validation.outputs,
  }));
}

function formatSize(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

function formatRate(rate: number): string {
  return rate >= 100 ? rate.toFixed(0) : rate.toFixed(1);
}

function formatTable(rows: readonly Row[], subjects: readonly Subject[], seconds: number, loadBefore: number[], loadAfter: number[]): string {
  const ratio = (after: number, before: number) => `${(after / before).toFixed(2)}×`;
  const loads = (values: number[]) => values.map((v) => v.toFixed(2)).join(', ');
  return [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${cpus().length} × ${cpus()[0]?.model ?? 'unknown CPU'}, Node ${process.version}, onnxruntime-node ${ort.env.versions.node ?? ''}; `
    + `load average ${loads(loadBefore)} at the start and ${loads(loadAfter)} at the end; whole run ${seconds.toFixed(0)} s. `
    + `Throughput: runs per second in-process on the validation requests, ${ROUNDS} rounds of ${SECONDS_PER_TURN} s per file in turns, `
    + 'medians over the rounds; the ratio is the median of the rounds\' ratios, in brackets the lowest and highest. Validation requests: '
    + `${subjects.map((s) => `${s.label}, ${s.requestLabel}`).join('; ')}.`,
    '',
    '| model | option | size | size ratio | runs/s | throughput ratio (rounds) | optimize\'s own ratio | load ms | max relative error per output | top-1 unchanged |',
    '|---|---|---|---:|---|---|---:|---|---|---:|',
    ...rows.map((r) => {
      const low = Math.min(...r.roundRatios);
      const high = Math.max(...r.roundRatios);
      const errors = r.outputs.map((output) => `${output.name} ${formatError(output.maxRelativeError)}`).join(', ');
      const top1 = r.outputs.filter((output) => output.top1Agreement !== undefined).map((output) => `${output.top1Agreement!.toFixed(3)} of ${output.rows}`).join(', ');
      return `| ${r.model} | \`${r.choice}\` | ${formatSize(r.sizeBytes.before)} → ${formatSize(r.sizeBytes.after)} | ${ratio(r.sizeBytes.after, r.sizeBytes.before)} `
        + `| ${formatRate(r.runsPerSecond.before)} → ${formatRate(r.runsPerSecond.after)} | ${median(r.roundRatios).toFixed(2)}× (${low.toFixed(2)}–${high.toFixed(2)}) `
        + `| ${r.reportedRatio.toFixed(2)}× | ${r.loadMs.before.toFixed(0)} → ${r.loadMs.after.toFixed(0)} | ${errors} | ${top1 || '—'} |`;
    }),
  ].join('\n');
}

async function main(): Promise<void> {
  const started = performance.now();
  const loadBefore = loadavg();
  const workDir = mkdtempSync(join(tmpdir(), 'modelship-bench-optimize-'));
  try {
    const rows: Row[] = [];
    for (const subject of SUBJECTS) rows.push(...await measureSubject(subject, workDir));
    const table = formatTable(rows, SUBJECTS, (performance.now() - started) / 1000, loadBefore, loadavg());
    process.stdout.write(`${table}\n`);
    if (options.write) writeReport('bench:optimize', table);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}

main().catch((error) => {
  process.stderr.write(`bench:optimize failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
