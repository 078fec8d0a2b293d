/** Load generators for the benchmark: closed loop (N outstanding requests) and open loop (a fixed arrival rate). */
import { performance } from 'node:perf_hooks';

export interface LoadResult {
  readonly ok: number;
  readonly failed: number;
  readonly seconds: number;
  /** Latencies of successful requests, in milliseconds, sorted. */
  readonly latencies: number[];
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

/** Several measurements of one thing as one: alternating rounds spread whatever else the machine does over each mode. */
export function combine(results: readonly LoadResult[]): LoadResult {
  return {
    ok: results.reduce((sum, r) => sum + r.ok, 0), failed: results.reduce((sum, r) => sum + r.failed, 0),
    seconds: results.reduce((sum, r) => sum + r.seconds, 0), latencies: results.flatMap((r) => r.latencies).sort((a, b) => a - b),
  };
}

/** `concurrency` loops that each send the next request as soon as the last one answered, for `seconds`. */
export async function closedLoop(send: () => Promise<boolean>, concurrency: number, seconds: number): Promise<LoadResult> {
  // A little warm-up: connections open, code paths compiled, onnxruntime's buffers allocated.
  await Promise.all(Array.from({ length: Math.min(concurrency, 8) }, send));
  const latencies: number[] = [];
  let failed = 0;
  const started = performance.now();
  const end = started + seconds * 1000;
  const loop = async () => {
    while (performance.now() < end) {
      const t0 = performance.now();
      if (await send()) latencies.push(performance.now() - t0);
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  return { ok: latencies.length, failed, seconds: (performance.now() - started) / 1000, latencies: latencies.sort((a, b) => a - b) };
}

export interface OpenLoopResult {
  readonly sent: number;
  readonly accepted: number[];
  readonly rejected: number[];
  readonly failed: number;
}

/** Requests at a fixed rate regardless of answers, as real clients arrive: shows what overload does. */
export async function openLoop(send: () => Promise<number>, ratePerSecond: number, seconds: number): Promise<OpenLoopResult> {
  const accepted: number[] = [];
  const rejected: number[] = [];
  let failed = 0;
  const pending: Promise<void>[] = [];
  const started = performance.now();
  const interval = 1000 / ratePerSecond;
  let sent = 0;
  while (performance.now() - started < seconds * 1000) {
    const due = started + sent * interval;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const t0 = performance.now();
    sent++;
    pending.push(send().then((status) => {
      const ms = performance.now() - t0;
      if (status === 200) accepted.push(ms);
      else if (status === 429) rejected.push(ms);
      else failed++;
    }, () => { failed++; }));
  }
  await Promise.all(pending);
  return { sent, accepted: accepted.sort((a, b) => a - b), rejected: rejected.sort((a, b) => a - b), failed };
}
