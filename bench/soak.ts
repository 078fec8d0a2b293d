/**
 * `npm run soak`: the load test's load (the MLP over OIP v2 JSON, 128 keep-alive connections, a different input in
 * every request) for SOAK_SECONDS (default 300), printing throughput and the runtime's resident memory every 10 s.
 * Fails (exit 1) on any request that does not get a 200, on a sampled answer that differs from in-process
 * onnxruntime, on resident memory growing more than SOAK_MAX_RSS_GROWTH_MB (default 150) after the first 10 s, or
 * on a drain at the end that does not exit 0. Loopback only; not part of `npm test`.
 *
 * The load itself (closedLoad, the inputs, the answer check, the RSS reading) is exported: test/runtime/load.test.ts
 * runs the same load for 10 s, and test/runtime/rolling-update.test.ts through a proxy.
 */
import { performance } from 'node:perf_hooks';
import * as ort from '../runtime/src/model/onnxruntime';
import { Pool } from 'undici';
import { MODELS } from '../test/helpers/paths';
import { randomFloats, runReference } from '../test/helpers/reference';
import { startRuntime, type RuntimeProcess } from '../test/helpers/runtime-process';

/** The MLP's OIP v2 infer path when it is served as `mlp`. */
export const MLP_PATH = '/v2/models/mlp/infer';
export const MLP_ARGS = ['--model', `mlp=${MODELS.mlp}`] as const;

/** The input of request `seq`: 16 floats, different for every request. */
export function mlpInput(seq: number): Float32Array {
  return randomFloats(16, 0x50a1c000 + seq);
}

export interface Outcome {
  readonly seq: number;
  readonly x: Float32Array;
  /** performance.now() when the request was handed to the pool, and when it was answered or failed. */
  readonly sentAt: number;
  readonly doneAt: number;
  /** The HTTP status; undefined when no response came (a socket or protocol error). */
  readonly status?: number;
  /** The response said `Connection: close`. */
  readonly connectionClose?: boolean;
  readonly body?: string;
  /** The error's code and message when no response came. */
  readonly error?: string;
}

export interface LoadOptions {
  /** Loops, each sending its next request as soon as the last one is answered. */
  readonly concurrency: number;
  /** performance.now() after which no loop sends another request. */
  readonly until: number;
  /** Called with every outcome; returning false ends the loop that sent the request. */
  readonly onOutcome: (outcome: Outcome) => boolean | void;
  /** @default MLP_PATH */
  readonly path?: string;
  /** The first request's sequence number (its input's seed). @default 0 */
  readonly firstSeq?: number;
}

/** A pool of keep-alive connections as a load client holds them: one request per connection at a time. */
export function loadPool(origin: string, connections: number): Pool {
  return new Pool(origin, {
    connections, pipelining: 1, keepAliveTimeout: 60_000,
    // Bounds every request: a hung server fails the run instead of hanging it.
    headersTimeout: 15_000, bodyTimeout: 15_000, connectTimeout: 5_000,
  });
}

/** Closed-loop load: `concurrency` loops until `until`. Resolves with the number of requests sent. */
export async function closedLoad(pool: Pool, options: LoadOptions): Promise<number> {
  const first = options.firstSeq ?? 0;
  const path = options.path ?? MLP_PATH;
  let next = first;
  const loop = async () => {
    while (performance.now() < options.until) {
      const seq = next++;
      const x = mlpInput(seq);
      const body = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: Array.from(x) }] });
      const sentAt = performance.now();
      let outcome: Outcome;
      try {
        const response = await pool.request({ method: 'POST', path, body, headers: { 'content-type': 'application/json' } });
        const text = await response.body.text();
        const connection = response.headers.connection;
        outcome = {
          seq, x, sentAt, doneAt: performance.now(), status: response.statusCode, body: text,
          connectionClose: /\bclose\b/i.test(Array.isArray(connection) ? connection.join(',') : connection ?? ''),
        };
      } catch (error) {
        const { code, message } = error as NodeJS.ErrnoException;
        outcome = { seq, x, sentAt, doneAt: performance.now(), error: `${code ?? 'error'}: ${message}` };
      }
      if (options.onOutcome(outcome) === false) return;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, loop));
  return next - first;
}

/**
 * Compares served MLP answers with in-process onnxruntime, row by row (batching must not change a bit: see
 * batching.test.ts). Returns a description of each mismatch.
 */
export async function mismatches(samples: ReadonlyArray<{ readonly seq: number; readonly x: Float32Array; readonly body: string }>): Promise<string[]> {
  const found: string[] = [];
  for (const { seq, x, body } of samples) {
    const expected = Array.from((await runReference(MODELS.mlp, { x: new ort.Tensor('float32', x, [1, 16]) })).y.data as Float32Array);
    let served: unknown;
    try {
      const output = (JSON.parse(body) as { outputs: Array<{ name: string; shape: number[]; data: number[] }> }).outputs[0];
      served = output.name === 'y' && output.shape.join() === '1,4' ? output.data : output;
    } catch {
      served = body;
    }
    if (JSON.stringify(served) !== JSON.stringify(expected)) found.push(`request ${seq}: served ${JSON.stringify(served)}, expected ${JSON.stringify(expected)}`);
  }
  return found;
}

/** The runtime's memory, from its /metrics: resident, V8 heap used, and memory outside the heap (buffers). */
export async function memoryStats(url: string): Promise<{ rss: number; heapUsed: number; external: number }> {
  const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(5_000) });
  const text = await response.text();
  const read = (name: string) => {
    const match = new RegExp(`^${name} (\\d+(?:\\.\\d+)?(?:e\\+?\\d+)?)$`, 'm').exec(text);
    if (response.status !== 200 || !match) throw new Error(`no ${name} in /metrics (status ${response.status})`);
    return Number(match[1]);
  };
  return { rss: read('process_resident_memory_bytes'), heapUsed: read('nodejs_heap_size_used_bytes'), external: read('nodejs_external_memory_bytes') };
}

/** The runtime's `process_resident_memory_bytes`, from its /metrics. */
export async function residentBytes(url: string): Promise<number> {
  return (await memoryStats(url)).rss;
}

export const MB = 1024 * 1024;

async function main(): Promise<number> {
  const seconds = Number(process.env.SOAK_SECONDS ?? 300);
  const maxGrowthMb = Number(process.env.SOAK_MAX_RSS_GROWTH_MB ?? 150);
  const concurrency = Number(process.env.SOAK_CONCURRENCY ?? 128);
  for (const [name, value] of [['SOAK_SECONDS', seconds], ['SOAK_MAX_RSS_GROWTH_MB', maxGrowthMb], ['SOAK_CONCURRENCY', concurrency]] as const) {
    if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, got '${process.env[name]}'`);
  }
  const runtime = await startRuntime(MLP_ARGS);
  try {
    return await soak(runtime, seconds, maxGrowthMb, concurrency);
  } finally {
    // Never leaves the runtime behind, whatever failed (stop() only signals a process still running).
    await runtime.stop();
  }
}

async function soak(runtime: RuntimeProcess, seconds: number, maxGrowthMb: number, concurrency: number): Promise<number> {
  const pool = loadPool(runtime.url, concurrency);
  let connects = 0;
  pool.on('connect', () => { connects++; });
  console.log(`soak: ${concurrency} connections to the MLP for ${seconds} s; RSS may grow at most ${maxGrowthMb} MB after the first 10 s`);

  let ok = 0;
  let failed = 0;
  const failures: string[] = [];
  // One answer in 500 is checked against onnxruntime as the run goes, at most 100 held at a time.
  let pendingSamples: Array<{ seq: number; x: Float32Array; body: string }> = [];
  let checked = 0;
  const wrong: string[] = [];
  const started = performance.now();
  const load = closedLoad(pool, {
    concurrency,
    until: started + seconds * 1000,
    onOutcome: (outcome) => {
      if (outcome.status === 200) {
        ok++;
        if (outcome.seq % 500 === 0 && pendingSamples.length < 100) pendingSamples.push({ seq: outcome.seq, x: outcome.x, body: outcome.body! });
      } else {
        failed++;
        if (failures.length < 10) failures.push(outcome.error ?? `status ${outcome.status}: ${outcome.body?.slice(0, 200)}`);
      }
    },
  });

  const rss: Array<{ at: number; bytes: number }> = [];
  let lastOk = 0;
  let lastAt = started;
  let loadDone = false;
  void load.finally(() => { loadDone = true; });
  // Bounded: one report per 10 s of the run, plus one for the tail.
  for (let report = 1; report <= Math.ceil(seconds / 10) + 1 && !loadDone; report++) {
    await Promise.race([load, new Promise((resolve) => setTimeout(resolve, Math.max(0, started + report * 10_000 - performance.now())))]);
    const now = performance.now();
    const memory = await memoryStats(runtime.url).catch(() => ({ rss: Number.NaN, heapUsed: Number.NaN, external: Number.NaN }));
    const bytes = memory.rss;
    rss.push({ at: (now - started) / 1000, bytes });
    const samples = pendingSamples;
    pendingSamples = [];
    wrong.push(...await mismatches(samples));
    checked += samples.length;
    console.log(`t=${((now - started) / 1000).toFixed(0).padStart(4)} s  ${((ok - lastOk) / ((now - lastAt) / 1000)).toFixed(0).padStart(6)} req/s  `
      + `RSS ${(bytes / MB).toFixed(1).padStart(7)} MB (heap ${(memory.heapUsed / MB).toFixed(1)}, external ${(memory.external / MB).toFixed(1)})  ok ${ok}  failed ${failed}  connections opened ${connects}  answers checked ${checked}`);
    lastOk = ok;
    lastAt = now;
  }
  await load;
  const elapsed = (performance.now() - started) / 1000;
  wrong.push(...await mismatches(pendingSamples));
  checked += pendingSamples.length;
  await pool.close();
  const exitCode = await runtime.stop();

  const measured = rss.filter((r) => Number.isFinite(r.bytes));
  const baseline = measured[0];
  const last = measured.at(-1);
  const growthMb = baseline && last ? (last.bytes - baseline.bytes) / MB : Number.NaN;
  const peakMb = Math.max(...measured.map((r) => r.bytes)) / MB;
  console.log(`soak: ${ok} ok, ${failed} failed in ${elapsed.toFixed(1)} s (${(ok / elapsed).toFixed(0)} req/s); `
    + `RSS ${baseline ? (baseline.bytes / MB).toFixed(1) : '?'} MB at ${baseline?.at.toFixed(0)} s → ${last ? (last.bytes / MB).toFixed(1) : '?'} MB at the end `
    + `(growth ${growthMb.toFixed(1)} MB, peak ${peakMb.toFixed(1)} MB); ${checked} answers checked, ${wrong.length} wrong; runtime exit ${exitCode}`);

  const problems: string[] = [];
  if (failed > 0) problems.push(`${failed} requests failed, e.g. ${failures.join(' | ')}`);
  if (ok === 0) problems.push('no request succeeded');
  if (wrong.length > 0) problems.push(`${wrong.length} answers differ from onnxruntime: ${wrong.slice(0, 3).join(' | ')}`);
  if (!(growthMb <= maxGrowthMb)) problems.push(`RSS grew ${growthMb.toFixed(1)} MB after the first 10 s (bound ${maxGrowthMb} MB)`);
  if (exitCode !== 0) problems.push(`the runtime exited with ${exitCode} after SIGTERM`);
  for (const problem of problems) console.error(`soak FAILED: ${problem}`);
  return problems.length === 0 ? 0 : 1;
}

if (require.main === module) {
  main().then((code) => process.exit(code), (error: Error) => {
    console.error(`soak FAILED: ${error.stack ?? error.message}`);
    process.exit(1);
  });
}
