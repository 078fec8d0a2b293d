/**
 * Where a codec thread pays: the main thread's time to translate and decode a v2 JSON body of N FP32 elements in
 * place, against its time to hand the same body to a codec thread and take the decoded tensor back (measured as
 * event-loop busy time over a closed loop, so the codec thread's own work does not count). Above the crossover the
 * runtime decodes on codec threads (runtime/src/serve.ts, CODEC_THREAD_FROM_BYTES).
 */
import { performance } from 'node:perf_hooks';
import { CodecPool } from '../runtime/src/core/codec-pool';
import { decodeInline } from '../runtime/src/core/codec-runner';
import { v2RestCodec } from '../runtime/src/protocols/v2-rest-codec';
import type { Signature } from '../runtime/src/tensor/signature';

const SIGNATURE: Signature = { inputs: [{ name: 'x', datatype: 'FP32', ortType: 'float32', shape: ['n', 'm'] }], outputs: [] };
const LIMITS = { maxTensorElements: 64 * 1024 * 1024, maxResponseBytes: 64 * 1024 * 1024 };

export interface CrossoverRow {
  readonly elements: number;
  readonly bodyBytes: number;
  /** Main-thread microseconds per body decoded in place. */
  readonly inlineMicros: number;
  /** Main-thread microseconds per body decoded on a codec thread. */
  readonly offloadedMicros: number;
}

function body(elements: number): Buffer {
  const data = Array.from({ length: elements }, (_, i) => ((i * 7919) % 100_003) / 100_003);
  return Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, elements], data }] }));
}

/** Main-thread busy time per call of `work`, over `seconds` of a closed loop with `concurrency` outstanding. */
async function busyMicros(work: () => Promise<unknown>, seconds: number, concurrency: number): Promise<number> {
  for (let i = 0; i < 20; i++) await work();
  const before = performance.eventLoopUtilization();
  const end = performance.now() + seconds * 1000;
  let count = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (performance.now() < end) {
      await work();
      count++;
    }
  }));
  const used = performance.eventLoopUtilization(before);
  return (used.active * 1000) / count;
}

export async function measureCodecCrossover(seconds: number): Promise<CrossoverRow[]> {
  const pool = new CodecPool({ threads: 2, offloadFromBytes: 0 });
  const rows: CrossoverRow[] = [];
  try {
    for (const elements of [64, 1024, 4096, 16_384, 65_536, 262_144]) {
      const bytes = body(elements);
      // Each offloaded call transfers its body, so it needs a copy of its own; the copy is made outside the timing.
      const copies = () => Buffer.from(bytes);
      const inlineMicros = inlineTime(() => decodeInline(v2RestCodec, { body: bytes }, SIGNATURE, LIMITS), seconds);
      const offloadedMicros = await busyMicros(async () => {
        const own = copies();
        return pool.decode(v2RestCodec, { body: own }, SIGNATURE, LIMITS);
      }, seconds, 2) - await copyMicros(bytes, seconds);
      rows.push({ elements, bodyBytes: bytes.byteLength, inlineMicros, offloadedMicros });
    }
  } finally {
    await pool.close();
  }
  return rows;
}

/** Microseconds per call of synchronous `work`, which takes the main thread for exactly that long. */
function inlineTime(work: () => unknown, seconds: number): number {
  for (let i = 0; i < 20; i++) work();
  const started = performance.now();
  let count = 0;
  while (performance.now() - started < seconds * 1000) {
    work();
    count++;
  }
  return ((performance.now() - started) * 1000) / count;
}

/** The copy each offloaded call makes in this measurement only (the server transfers the body it read). */
async function copyMicros(bytes: Buffer, seconds: number): Promise<number> {
  return inlineTime(() => Buffer.from(bytes), Math.min(seconds, 0.5));
}

export function formatCrossover(rows: readonly CrossoverRow[]): string {
  return [
    '| FP32 elements | body bytes | main thread µs, decoded in place | main thread µs, on a codec thread |',
    '|---:|---:|---:|---:|',
    ...rows.map((r) => `| ${r.elements} | ${r.bodyBytes} | ${r.inlineMicros.toFixed(1)} | ${r.offloadedMicros.toFixed(1)} |`),
  ].join('\n');
}

if (require.main === module) {
  void measureCodecCrossover(Number(process.env.BENCH_SECONDS ?? 1)).then((rows) => process.stdout.write(`${formatCrossover(rows)}\n`));
}
