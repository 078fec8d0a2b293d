/**
 * ModelCanary's analysis queries through `promtool test rules`: series of one service whose pods serve two versions
 * of the model, stable (v1) healthy and the canary (v2) failing 5% of its requests with 10% of them slow, next to a
 * neighbour service serving a v2 of its own. The Flagger query (with `{{ interval }}` rendered as Flagger renders it)
 * and the Argo Rollouts query return the canary's own shares, which fail their objectives, and the same checks for
 * v1 return stable's, which pass them. A mutated expectation must make promtool fail, so these tests can fail.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import * as YAML from 'yaml';
import { CanaryEngine, canaryChecks, ModelCanary, ModelService, ModelSource, versionSelector } from 'modelship';
import { METRIC } from '@modelship/contract';

const PROMTOOL = process.env.PROMTOOL ?? '/usr/bin/promtool';
const WINDOW = '5m';
const EVAL_MINUTES = 30;

function synthesize(engine: CanaryEngine) {
  const chart = new Chart(Testing.app(), 'vision', { namespace: 'vision' });
  const service = new ModelService(chart, 'ocr', { model: ModelSource.fromUri('https://models.example.com/ocr/2/model.onnx', { sha256: 'a'.repeat(64) }), modelVersion: 2 });
  const canary = new ModelCanary(chart, 'ocr-canary', engine === CanaryEngine.FLAGGER ? { service, gateway: { name: 'public' }, interval: WINDOW } : { service, engine, interval: WINDOW });
  return { service, canary, objects: Testing.synth(chart) as Array<{ kind: string; spec: any }> };
}

/** How one version's pod behaves: requests per minute, and the shares answered 5xx and slower than 0.25 s. */
interface Behaviour { readonly perMinute: number; readonly errorShare: number; readonly slowShare: number }

type Labels = Record<string, string>;
const text = (name: string, labels: Labels) => `${name}{${Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
/** A counter rising by `perMinute` every minute for the whole test. */
const rising = (perMinute: number) => `0+${Number(perMinute.toPrecision(12))}x${EVAL_MINUTES + 10}`;

/** The runtime's request counter and latency histogram for one pod, as a ServiceMonitor labels them. */
function runtimeSeries(service: string, pod: string, model: string, version: string, b: Behaviour) {
  const target = { namespace: 'vision', service, job: service, endpoint: 'http', container: 'runtime', pod, instance: `${pod}:8080` };
  const codes = [{ code: '200', share: 1 - b.errorShare }, ...(b.errorShare > 0 ? [{ code: '500', share: b.errorShare }] : [])];
  return codes.flatMap(({ code, share }) => {
    const labels = { ...target, model, version, protocol: 'rest', code };
    const all = b.perMinute * share;
    const fast = all * (1 - b.slowShare);
    return [
      { series: text(METRIC.requests, labels), values: rising(all) },
      { series: text(`${METRIC.requestDuration}_bucket`, { ...labels, le: '0.1' }), values: rising(fast) },
      { series: text(`${METRIC.requestDuration}_bucket`, { ...labels, le: '0.25' }), values: rising(fast) },
      { series: text(`${METRIC.requestDuration}_bucket`, { ...labels, le: '+Inf' }), values: rising(all) },
      { series: text(`${METRIC.requestDuration}_count`, labels), values: rising(all) },
    ];
  });
}

const STABLE: Behaviour = { perMinute: 540, errorShare: 0, slowShare: 0.005 };
const CANARY: Behaviour = { perMinute: 60, errorShare: 0.05, slowShare: 0.1 };
const NEIGHBOUR: Behaviour = { perMinute: 600, errorShare: 0.5, slowShare: 0.5 };

const inputSeries = [
  ...runtimeSeries('ocr', 'ocr-deployment-c8f1d2a3-5d8f7c9b4-x2x7q', 'ocr', '1', STABLE),
  ...runtimeSeries('ocr', 'ocr-deployment-c8f1d2a3-7c9b45d8f-k8m2p', 'ocr', '2', CANARY),
  // Another model's version 2 in the same namespace, and this model's version 2 behind another Service: both ignored.
  ...runtimeSeries('ocr', 'ocr-deployment-c8f1d2a3-7c9b45d8f-j4k2m', 'layout', '2', NEIGHBOUR),
  ...runtimeSeries('ocr-shadow', 'ocr-shadow-6b7c8d9f5-q9w8e', 'ocr', '2', NEIGHBOUR),
];

/** The expected shares of good requests per version: what the checks must return, rounded as the test rounds them. */
const expected = {
  '1': { 'success-rate': 1, latency: 0.995 },
  '2': { 'success-rate': 0.95, latency: 0.9 },
} as const;

function exprTest(query: string, version: '1' | '2', check: 'success-rate' | 'latency', value: number = expected[version][check]) {
  return {
    // Rounded to 1e-6: the ratios carry the float noise of dividing rates, and promtool compares samples exactly.
    expr: `round(${query}, 0.000001)`,
    eval_time: `${EVAL_MINUTES}m`,
    exp_samples: [{ labels: `{model="ocr", version="${version}"}`, value }],
  };
}

function promtool(cwd: string, ...args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(PROMTOOL, args, { cwd }, (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : -1) : 0, output: `${stdout}${stderr}` }));
  });
}

describe('ModelCanary analysis queries under promtool', () => {
  let dir: string;
  const run = async (file: string, tests: object[]) => {
    writeFileSync(join(dir, file), YAML.stringify({ rule_files: ['empty.yaml'], evaluation_interval: '1m', tests: [{ interval: '1m', input_series: inputSeries, promql_expr_test: tests }] }, { lineWidth: 0 }));
    return promtool(dir, 'test', 'rules', file);
  };

  before(() => {
    assert.ok(existsSync(PROMTOOL), `${PROMTOOL} is missing: install Debian's 'prometheus' package (apt-get install -y prometheus); .ci/run installs it`);
    dir = mkdtempSync(join(tmpdir(), 'modelship-canary-'));
    writeFileSync(join(dir, 'empty.yaml'), 'groups: []\n');
  });
  after(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

  it('Flagger\'s MetricTemplates, rendered with the interval, return the canary\'s own shares, below their objectives', async () => {
    const { canary, objects } = synthesize(CanaryEngine.FLAGGER);
    const templates = objects.filter((o) => o.kind === 'MetricTemplate');
    assert.equal(templates.length, 2);
    const tests = canary.checks.map((check, i) => {
      assert.ok(expected['2'][check.name] < check.min, `${check.name}: the canary must fail its objective (${check.min})`);
      return exprTest(templates[i].spec.query.replaceAll('{{ interval }}', WINDOW), '2', check.name);
    });
    const result = await run('flagger.yaml', tests);
    assert.equal(result.code, 0, result.output);
  });

  it('Argo Rollouts\' AnalysisTemplate returns the same shares', async () => {
    const { objects } = synthesize(CanaryEngine.ARGO_ROLLOUTS);
    const [template] = objects.filter((o) => o.kind === 'AnalysisTemplate');
    const tests = template.spec.metrics.map((m: any) => exprTest(m.provider.prometheus.query, '2', m.name));
    const result = await run('argo.yaml', tests);
    assert.equal(result.code, 0, result.output);
  });

  it('the same checks for stable\'s version return its shares, at or above their objectives', async () => {
    const { service, canary } = synthesize(CanaryEngine.ARGO_ROLLOUTS);
    const objectives = { availabilityPercent: 99.9, latency: { thresholdSeconds: 0.25, percent: 99 } };
    const stable = canaryChecks(versionSelector(service.seriesSelector, 'ocr', '1'), objectives, WINDOW);
    const tests = stable.map((check, i) => {
      assert.equal(check.min, canary.checks[i].min);
      assert.ok(expected['1'][check.name] >= check.min, `${check.name}: stable must pass its objective (${check.min})`);
      return exprTest(check.query, '1', check.name);
    });
    const result = await run('stable.yaml', tests);
    assert.equal(result.code, 0, result.output);
  });

  it('fails when a test expects the canary to pass, or another version\'s series (negative controls)', async () => {
    const { canary } = synthesize(CanaryEngine.ARGO_ROLLOUTS);
    const [successRate] = canary.checks;
    for (const [file, test] of [
      ['passing.yaml', exprTest(successRate.query, '2', 'success-rate', 1)],
      ['stable.yaml', { ...exprTest(successRate.query, '2', 'success-rate'), exp_samples: [{ labels: '{model="ocr", version="1"}', value: 1 }] }],
    ] as const) {
      const result = await run(file, [test]);
      assert.notEqual(result.code, 0, `promtool passed ${file}:\n${result.output}`);
    }
  });
});
