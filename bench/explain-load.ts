/**
 * Inference latency beside explanations: the same closed-loop inference load on one runtime, alone and while a few
 * clients keep explanations of the same model running back to back, alternating over rounds so that both see the
 * same machine. The explanations' model runs share the session worker with inference (it takes them only when no
 * inference is queued, in runs of about 25 ms), and their coalitions, regressions and JSON share the main thread:
 * what that costs inference's p99 is set against the constructs' default latency objective, 99% within 250 ms.
 */
import { performance } from 'node:perf_hooks';
import { MODELS } from '../test/helpers/paths';
import { randomFloats } from '../test/helpers/reference';
import { startRuntime } from '../test/helpers/runtime-process';
import { binarySender, HttpClient, jsonSender, ok, type StatusSender, type TensorInput, v2JsonBody } from './clients';
import { closedLoop, combine, type LoadResult, percentile } from './load';

/** The constructs' default latency objective (lib/cdk8s/model-monitoring.ts): 99% of requests within 250 ms. */
export const LATENCY_OBJECTIVE_MS = 250;
const INFERENCE_CONCURRENCY = 8;
const EXPLAIN_CLIENTS = 2;
const ROUNDS = 3;

interface ExplainWorkload {
  readonly label: string;
  readonly model: string;
  readonly path: string;
  readonly input: TensorInput;
  /** How inference requests are sent: JSON for the tabular model, binary for the image as its clients would. */
  readonly form: 'JSON' | 'binary';
  /** What the explain clients ask for, described in the report. */
  readonly explainer: string;
  readonly parameters: Record<string, unknown>;
}

const tensor = (name: string, shape: number[], seed: number): TensorInput =>
  ({ name, shape, data: randomFloats(shape.reduce((a, b) => a * b, 1), seed) });

const WORKLOADS: ExplainWorkload[] = [
  {
    // Default nsamples: 2M + 2048 = 2080 coalitions per explanation for the MLP's 16 features.
    label: 'tabular MLP 16→32→4, 1 row', model: 'mlp', path: MODELS.mlp, input: tensor('x', [1, 16], 1), form: 'JSON',
    explainer: 'KernelSHAP, default nsamples (2080)', parameters: { explainer: 'kernel_shap' },
  },
  {
    // 128×128 keeps the explain request's JSON body near 1 MB; 16-pixel patches at stride 16 are 64 occluded images.
    label: 'OCR detection 1×3×128×128', model: 'det', path: MODELS.ocrDetection, input: tensor('x', [1, 3, 128, 128], 7), form: 'binary',
    explainer: 'occlusion, 16×16 patches (64 images)', parameters: { explainer: 'occlusion', patch: 16 },
  },
];

export interface ExplainLoadRow {
  readonly workload: string;
  readonly form: 'JSON' | 'binary';
  readonly explainer: string;
  readonly alone: LoadResult;
  readonly withExplain: LoadResult;
  /** Explanations answered 200 per second while they ran, and those answered otherwise. */
  readonly explanationsPerSecond: number;
  readonly explanationsFailed: number;
}

/** Explanation requests sent back to back by `clients` loops until stopped; counts what they answered. */
function explainLoad(send: StatusSender, clients: number): { stop(): Promise<{ answered: number; failed: number; seconds: number }> } {
  let stopping = false;
  let answered = 0;
  let failed = 0;
  const started = performance.now();
  const loops = Promise.all(Array.from({ length: clients }, async () => {
    while (!stopping) {
      if (await send().catch(() => 0) === 200) answered++;
      else failed++;
    }
  }));
  return {
    // Waits for the explanations under way, so that none runs into the next cell alone.
    async stop() {
      stopping = true;
      await loops;
      return { answered, failed, seconds: (performance.now() - started) / 1000 };
    },
  };
}

export async function measureExplainLoad(seconds: number, log: (message: string) => void): Promise<ExplainLoadRow[]> {
  const runtime = await startRuntime(WORKLOADS.flatMap((w) => ['--model', `${w.model}=${w.path}`]));
  const rows: ExplainLoadRow[] = [];
  try {
    for (const workload of WORKLOADS) {
      const http = new HttpClient(runtime.url, INFERENCE_CONCURRENCY + EXPLAIN_CLIENTS);
      const infer = ok((workload.form === 'JSON' ? jsonSender : binarySender)(http, `/v2/models/${workload.model}/infer`, workload.input));
      // The infer body plus the explainer's parameters.
      const explain = http.post(`/v2/models/${workload.model}/explain`, {
        body: JSON.stringify({ ...JSON.parse(v2JsonBody(workload.input)), parameters: workload.parameters }), headers: { 'content-type': 'application/json' },
      });
      const cells: Record<'alone' | 'with', LoadResult[]> = { alone: [], with: [] };
      const explained = { answered: 0, failed: 0, seconds: 0 };
      try {
        for (let round = 0; round < ROUNDS; round++) {
          // Each mode goes first in every other round: the first cell of a round runs on a cooler machine.
          for (const mode of round % 2 === 0 ? ['alone', 'with'] as const : ['with', 'alone'] as const) {
            log(`explain load: ${workload.label}, inference ${mode === 'alone' ? 'alone' : `beside ${EXPLAIN_CLIENTS} explain clients`}, round ${round + 1} of ${ROUNDS}`);
            if (mode === 'alone') {
              cells.alone.push(await closedLoop(infer, INFERENCE_CONCURRENCY, seconds));
              continue;
            }
            const load = explainLoad(explain, EXPLAIN_CLIENTS);
            cells.with.push(await closedLoop(infer, INFERENCE_CONCURRENCY, seconds));
            const { answered, failed, seconds: ran } = await load.stop();
            explained.answered += answered;
            explained.failed += failed;
            explained.seconds += ran;
          }
        }
      } finally {
        await http.close();
      }
      rows.push({
        workload: workload.label, form: workload.form, explainer: workload.explainer,
        alone: combine(cells.alone), withExplain: combine(cells.with),
        explanationsPerSecond: explained.answered / explained.seconds, explanationsFailed: explained.failed,
      });
    }
  } finally {
    await runtime.stop();
  }
  return rows;
}

export function formatExplainLoad(rows: readonly ExplainLoadRow[], seconds: number): string {
  const fmt = (n: number, digits = 1) => (Number.isFinite(n) ? n.toFixed(digits) : '—');
  const rps = (r: LoadResult) => r.ok / r.seconds;
  const p99 = (r: LoadResult) => percentile(r.latencies, 99);
  return [
    `Inference beside explanations: ${INFERENCE_CONCURRENCY} inference connections alone and while ${EXPLAIN_CLIENTS} clients send explanations back to back, one runtime, ${ROUNDS} rounds of ${seconds} s each, alternating; objective p99 ≤ ${LATENCY_OBJECTIVE_MS} ms:`,
    '',
    '| workload | inference | explanations | req/s alone | p50 ms alone | p99 ms alone | req/s with | p50 ms with | p99 ms with | explanations/s | p99 with ÷ alone | p99 with ≤ 250 ms |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|',
    ...rows.map((r) => `| ${r.workload} | v2 ${r.form}, ${INFERENCE_CONCURRENCY} conc. | ${r.explainer} | ${fmt(rps(r.alone))} | ${fmt(percentile(r.alone.latencies, 50), 2)} | ${fmt(p99(r.alone), 2)} | ${fmt(rps(r.withExplain))} | ${fmt(percentile(r.withExplain.latencies, 50), 2)} | ${fmt(p99(r.withExplain), 2)} | ${fmt(r.explanationsPerSecond, 2)}${r.explanationsFailed ? ` (${r.explanationsFailed} failed)` : ''} | ${fmt(p99(r.withExplain) / p99(r.alone), 2)}× | ${p99(r.withExplain) <= LATENCY_OBJECTIVE_MS ? 'yes' : 'no'} |`
      + (r.alone.failed + r.withExplain.failed ? ` (${r.alone.failed} + ${r.withExplain.failed} inferences failed)` : '')),
  ].join('\n');
}
