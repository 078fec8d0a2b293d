/**
 * `npm run bench:spinning`: onnxruntime's intra-op threads spinning (session.intra_op.allow_spinning) or not, under
 * load, for a CPU-heavy model (OCR detection, 1×3×320×320 and 1×3×640×640, binary requests). What is measured:
 *   - throughput and request latency (the load generator's closed loop);
 *   - the main thread's responsiveness: health-probe latency seen by a client in its own process, every 10 ms, and
 *     the runtime's own event-loop delay (nodejs_eventloop_lag_p99_seconds / _max_seconds over the run);
 *   - CPU seconds the runtime burnt per request (/proc/<pid>/stat), which a container's CPU quota pays for;
 *   - with a CPU quota (a real cgroup, where this machine allows one), the time the quota throttled the runtime.
 * Each cell starts a fresh runtime; spinning off and on alternate, `BENCH_SPINNING_ROUNDS` rounds (default 3) of
 * `BENCH_SECONDS` seconds (default 5) each, and the table gives each figure's median over the rounds.
 * `--write` puts the table into docs/benchmarks.md.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { cpuCgroup, type TestCgroup } from '../test/helpers/cgroup';
import { writeReport } from './report';
import { MODELS } from '../test/helpers/paths';
import { randomFloats } from '../test/helpers/reference';
import { startRuntime, type RuntimeProcess } from '../test/helpers/runtime-process';
import { binarySender, HttpClient, ok } from './clients';
import { closedLoop, percentile } from './load';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_SPINNING_ROUNDS ?? 3);
const PROBE_INTERVAL_MS = 10;
/** Clock ticks per second of /proc/<pid>/stat's times: 100 on Linux. */
const TICKS = 100;

interface Cell {
  readonly quota?: number;
  readonly size: number;
  readonly concurrency: number;
}

interface Sample {
  readonly rps: number;
  readonly p50: number;
  readonly probeP50: number;
  readonly probeP99: number;
  readonly probeMax: number;
  readonly lagP99: number;
  readonly lagMax: number;
  readonly cpuPerRequest: number;
  readonly throttledSeconds?: number;
}

function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after "pid (comm) ".
  return (Number(fields[11]) + Number(fields[12])) / TICKS;
}

/** The runtime's event-loop delay since the last scrape (prom-client resets its histogram on each). */
async function eventLoopDelay(runtime: RuntimeProcess): Promise<{ p99: number; max: number }> {
  const text = await (await fetch(`${runtime.url}/metrics`)).text();
  const value = (name: string) => Number(text.split('\n').find((line) => line.startsWith(`${name} `))?.split(' ')[1] ?? Number.NaN);
  return { p99: value('nodejs_eventloop_lag_p99_seconds'), max: value('nodejs_eventloop_lag_max_seconds') };
}

async function measure(cell: Cell, spinning: boolean): Promise<Sample> {
  let cgroup: TestCgroup | undefined;
  if (cell.quota !== undefined) {
    cgroup = cpuCgroup(cell.quota);
    if (!cgroup) throw new Error('no cpu cgroup can be made here');
  }
  const runtime = await startRuntime(['--model', `det=${MODELS.ocrDetection}`, '--intra-op-spinning', spinning ? 'on' : 'off', '--max-queue-size', '1024'], { cgroups: cgroup ? [cgroup.procs] : [] });
  const client = new HttpClient(runtime.url, cell.concurrency);
  try {
    const shape = [1, 3, cell.size, cell.size];
    const send = binarySender(client, '/v2/models/det/infer', { name: 'x', shape, data: randomFloats(3 * cell.size * cell.size, cell.size) });
    for (let i = 0; i < 4; i++) await send();
    const probe = spawn(process.execPath, [join(__dirname, 'probe.js'), `${runtime.url}/v2/health/live`, String(PROBE_INTERVAL_MS)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let probeOutput = '';
    probe.stdout!.on('data', (chunk: Buffer) => { probeOutput += chunk.toString(); });
    await eventLoopDelay(runtime);
    const pid = runtime.process.pid!;
    const cpuBefore = cpuSeconds(pid);
    const throttledBefore = cgroup?.throttledMicros();
    const started = performance.now();
    const result = await closedLoop(ok(send), cell.concurrency, SECONDS);
    const cpu = cpuSeconds(pid) - cpuBefore;
    const throttled = cgroup && throttledBefore !== undefined ? (cgroup.throttledMicros()! - throttledBefore) / 1e6 : undefined;
    const lag = await eventLoopDelay(runtime);
    probe.kill('SIGTERM');
    await once(probe, 'close');
    const probes = (JSON.parse(probeOutput) as number[]).sort((a, b) => a - b);
    const elapsed = (performance.now() - started) / 1000;
    return {
      rps: result.ok / result.seconds, p50: percentile(result.latencies, 50),
      probeP50: percentile(probes, 50), probeP99: percentile(probes, 99), probeMax: probes.at(-1) ?? Number.NaN,
      lagP99: lag.p99 * 1000, lagMax: lag.max * 1000, cpuPerRequest: cpu / Math.max(1, result.ok + result.failed), throttledSeconds: throttled !== undefined ? throttled / elapsed : undefined,
    };
  } finally {
    await client.close();
    await runtime.stop();
    cgroup?.remove();
  }
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
};

async function main(): Promise<void> {
  const quota = cpuCgroup(1.5);
  const quotas: (number | undefined)[] = [undefined];
  if (quota) {
    quota.remove();
    quotas.push(1.5);
  } else process.stderr.write('no cpu cgroup can be made here: measuring without a CPU quota only\n');
  const cells: Cell[] = quotas.flatMap((q) => [320, 640].flatMap((size) => [1, 4].map((concurrency) => ({ quota: q, size, concurrency }))));
  const lines = [
    `Measured ${new Date().toISOString().slice(0, 10)} on ${(await import('node:os')).cpus().length} cores, Node ${process.version}; OCR detection over v2 binary; median of ${ROUNDS} rounds of ${SECONDS} s, spinning off and on alternating, a fresh runtime each.`,
    '',
    '| CPU quota | image | conc. | spinning | req/s | p50 ms | probe p50 ms | probe p99 ms | probe max ms | event-loop p99 ms | event-loop max ms | CPU s per request | throttled s per s |',
    '|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
  ];
  for (const cell of cells) {
    const samples: Record<'off' | 'on', Sample[]> = { off: [], on: [] };
    for (let round = 0; round < ROUNDS; round++) {
      for (const spinning of round % 2 === 0 ? [false, true] : [true, false]) {
        process.stderr.write(`spinning: quota ${cell.quota ?? 'none'}, ${cell.size}×${cell.size}, concurrency ${cell.concurrency}, spinning ${spinning ? 'on' : 'off'}, round ${round + 1}\n`);
        samples[spinning ? 'on' : 'off'].push(await measure(cell, spinning));
      }
    }
    for (const mode of ['off', 'on'] as const) {
      const m = (key: keyof Sample) => median(samples[mode].map((s) => s[key] ?? Number.NaN));
      const f = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '—');
      lines.push(`| ${cell.quota === undefined ? 'none' : `${cell.quota} CPUs`} | ${cell.size}×${cell.size} | ${cell.concurrency} | ${mode} | ${f(m('rps'))} | ${f(m('p50'))} | ${f(m('probeP50'), 2)} | ${f(m('probeP99'))} | ${f(m('probeMax'))} | ${f(m('lagP99'))} | ${f(m('lagMax'))} | ${f(m('cpuPerRequest'), 3)} | ${f(m('throttledSeconds'), 2)} |`);
    }
  }
  const report = lines.join('\n');
  process.stdout.write(`${report}\n`);
  if (process.argv.includes('--write')) writeReport('bench:spinning', report);
}

main().catch((error) => {
  process.stderr.write(`bench:spinning failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
