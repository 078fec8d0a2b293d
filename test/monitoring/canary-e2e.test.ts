/**
 * ModelCanary's analysis queries on a real Prometheus: two runtimes, one serving version 1 of the model (stable) and
 * one serving version 2 (the canary), both as pods of the same Service, scraped every second. Stable answers every
 * request; a fifth of the canary's requests fail at run time (a real 500). The Flagger query (with `{{ interval }}`
 * rendered as Flagger renders it) and the Argo Rollouts query must return the canary's own shares, which fail the
 * availability objective, and the same checks for version 1 return stable's, which pass.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import { CanaryEngine, canaryChecks, ModelCanary, ModelService, ModelSource, versionSelector } from 'modelship';
import { PATHS } from '@modelship/contract';
import { MODELS } from '../helpers/paths';
import { PROMETHEUS_BIN, query, requireBinary, sleep, startPrometheus, waitFor, type ServerProcess } from '../helpers/prometheus';
import { startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

const MODEL = 'ocr';
const WINDOW = '1m';
const TRAFFIC_MS = 10_000;
/** rate()'s extrapolation and requests in flight at a scrape move a ratio slightly off the traffic's. */
const TOLERANCE = 0.03;
/** The canary's share of failing requests: one in five. */
const CANARY_ERROR_SHARE = 0.2;

// The fails-at-run model reshapes `x` to `shape`: 16 elements to [4, 4] works, 6 elements to [4, 4] throws inside
// session.run, a 500 rather than a 400 from input validation.
const GOOD = { inputs: [{ name: 'x', datatype: 'FP32', shape: [16], data: Array.from({ length: 16 }, (_, i) => i) }, { name: 'shape', datatype: 'INT64', shape: [2], data: [4, 4] }] };
const FAILING = { inputs: [{ name: 'x', datatype: 'FP32', shape: [6], data: [1, 2, 3, 4, 5, 6] }, { name: 'shape', datatype: 'INT64', shape: [2], data: [4, 4] }] };

async function send(runtime: RuntimeProcess, body: unknown): Promise<number> {
  const response = await fetch(`${runtime.url}/v2/models/${MODEL}/infer`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000),
  });
  await response.arrayBuffer();
  return response.status;
}

describe('ModelCanary analysis on a real Prometheus scraping two versions', () => {
  if (!existsSync(PROMETHEUS_BIN)) {
    it('needs Debian\'s prometheus package', () => requireBinary(PROMETHEUS_BIN, 'prometheus'));
    return;
  }

  const chart = new Chart(Testing.app(), 'vision', { namespace: 'vision' });
  const service = new ModelService(chart, 'ocr', { model: ModelSource.fromUri('https://models.example.com/ocr/2/model.onnx', { sha256: 'a'.repeat(64) }), modelVersion: 2 });
  const flagger = new ModelCanary(chart, 'ocr-canary', { service, gateway: { name: 'public' }, interval: WINDOW });
  const argo = new ModelCanary(chart, 'ocr-analysis', { service, engine: CanaryEngine.ARGO_ROLLOUTS, interval: WINDOW });
  const objects = Testing.synth(chart) as Array<{ kind: string; metadata: { name: string }; spec: any }>;
  const selector = service.seriesSelector;

  const cleanups: (() => Promise<unknown>)[] = [];
  let setupError: unknown;
  let prometheus: ServerProcess;
  const sent = { stable: 0, canary: 0, canaryFailed: 0 };

  before(async () => {
    try {
      await setup();
    } catch (error) {
      setupError = error;
    }
  }, { timeout: 90_000 });

  async function setup() {
    const runtimes: Record<'stable' | 'canary', RuntimeProcess> = {} as never;
    for (const [which, version] of [['stable', '1'], ['canary', '2']] as const) {
      const repository = mkdtempSync(join(tmpdir(), `modelship-canary-${which}-`));
      cleanups.push(async () => rmSync(repository, { recursive: true, force: true }));
      mkdirSync(join(repository, MODEL, version), { recursive: true });
      copyFileSync(MODELS.failsAtRun, join(repository, MODEL, version, 'model.onnx'));
      runtimes[which] = await startRuntime(['--model-repository', repository], { timeoutMs: 20_000 });
      cleanups.push(() => runtimes[which].stop());
    }
    // Both runtimes as pods of the ModelService's Service, as the ServiceMonitor would label them.
    const target = (which: 'stable' | 'canary') => ({
      targets: [new URL(runtimes[which].url).host],
      labels: { namespace: selector.namespace!, service: selector.service, pod: `ocr-deployment-${which}-5d8f7c9b4-x2x7q` },
    });
    prometheus = await startPrometheus({
      config: {
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        scrape_configs: [{ job_name: 'ocr', metrics_path: PATHS.metrics, static_configs: [target('stable'), target('canary')] }],
      },
    });
    cleanups.push(() => prometheus.stop());

    // Every series exists and is scraped before the measured traffic: rate() counts increases from a first sample.
    assert.equal(await send(runtimes.stable, GOOD), 200);
    assert.equal(await send(runtimes.canary, GOOD), 200);
    assert.equal(await send(runtimes.canary, FAILING), 500);
    await waitFor('Prometheus to scrape both runtimes', async () => {
      const series = await query(prometheus.url, `modelship_inference_requests_total{service="${selector.service}"}`);
      return series.length === 3 ? true : undefined;
    }, 15_000);

    const end = Date.now() + TRAFFIC_MS;
    await Promise.all([
      (async () => { while (Date.now() < end) { assert.equal(await send(runtimes.stable, GOOD), 200); sent.stable++; } })(),
      (async () => {
        for (let i = 0; Date.now() < end; i++) {
          const failing = i % 5 === 0;
          assert.equal(await send(runtimes.canary, failing ? FAILING : GOOD), failing ? 500 : 200);
          sent.canary++;
          if (failing) sent.canaryFailed++;
        }
      })(),
    ]);
    const total = sent.stable + sent.canary + 3;
    await waitFor(`Prometheus to scrape all ${total} requests`, async () => {
      const [sum] = await query(prometheus.url, `sum(modelship_inference_requests_total{service="${selector.service}"})`);
      return sum?.value === total ? true : undefined;
    }, 10_000);
  }

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  /** The one series a check returns, for the version it selects. */
  async function value(promql: string, version: string): Promise<number> {
    const samples = await query(prometheus.url, promql);
    assert.deepEqual(samples.map((s) => s.metric), [{ model: MODEL, version }], promql);
    return samples[0].value;
  }

  it('sent the traffic it meant to', () => {
    if (setupError) throw setupError;
    assert.ok(sent.stable > 50 && sent.canary > 50, JSON.stringify(sent));
    assert.equal(sent.canaryFailed, Math.ceil(sent.canary / 5));
  });

  it('Flagger\'s queries return the canary\'s success rate, under its objective, and its latency share', async () => {
    if (setupError) throw setupError;
    const templates = objects.filter((o) => o.kind === 'MetricTemplate');
    const [successRate, latency] = flagger.checks.map((check) => templates.find((t) => t.metadata.name === `ocr-canary-${check.name}`)!.spec.query.replaceAll('{{ interval }}', WINDOW));
    const success = await value(successRate, '2');
    const expected = 1 - sent.canaryFailed / sent.canary;
    assert.ok(Math.abs(success - expected) < TOLERANCE, `success rate ${success}, sent ${expected}`);
    assert.ok(Math.abs(expected - (1 - CANARY_ERROR_SHARE)) < TOLERANCE);
    assert.ok(success < flagger.checks[0].min, `${success} must fail the objective ${flagger.checks[0].min}`);
    // Every request of this model is fast: all within the latency threshold.
    assert.equal(await value(latency, '2'), 1);
  });

  it('Argo Rollouts\' queries return the same', async () => {
    if (setupError) throw setupError;
    const [template] = objects.filter((o) => o.kind === 'AnalysisTemplate');
    const [successRate, latency] = template.spec.metrics.map((m: any) => m.provider.prometheus.query);
    assert.equal(successRate, argo.checks[0].query);
    const success = await value(successRate, '2');
    assert.ok(Math.abs(success - (1 - sent.canaryFailed / sent.canary)) < TOLERANCE, `success rate ${success}`);
    assert.equal(await value(latency, '2'), 1);
  });

  it('the same checks for stable\'s version return its shares, which pass', async () => {
    if (setupError) throw setupError;
    const objectives = { availabilityPercent: 99.9, latency: { thresholdSeconds: 0.25, percent: 99 } };
    const [successRate, latency] = canaryChecks(versionSelector(selector, MODEL, '1'), objectives, WINDOW);
    // Stable never failed, so it has no 5xx series: its errors count as 0 rather than leaving it without a ratio.
    assert.equal(await value(successRate.query, '1'), 1);
    assert.equal(await value(latency.query, '1'), 1);
  });
});
