/**
 * The shadow comparison under `promtool test rules`: a primary and its shadow (the same model, versions 1 and 2, with
 * the same drift profile) scraped as kube-prometheus-stack labels them. The same predictions and no errors keep the
 * PSI at 0 and the alert quiet; shifted predictions and a failing shadow give the PSI and error-ratio difference
 * computed here, and ModelServiceShadowDiverges fires for each. A mutated expectation makes promtool fail.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import * as YAML from 'yaml';
import { ALERT, ModelMonitoring, ModelService, ModelSource, type Rule } from 'modelship';
import { DRIFT_BINS, DRIFT_PROFILE_FORMAT, METRIC, type DriftProfile } from '@modelship/contract';
import { MODELS } from '../helpers/paths';

const PROMTOOL = process.env.PROMTOOL ?? '/usr/bin/promtool';
const MODEL = 'fraud';
const FLOOR = 1e-4;
const ROWS_PER_MINUTE = 1000;

type Labels = Record<string, string>;
interface Series { readonly name: string; readonly labels: Labels; readonly values: string }
interface ExpAlert { readonly exp_labels: Labels; readonly exp_annotations: Labels }
interface TestGroup {
  interval: string;
  input_series: Array<{ series: string; values: string }>;
  promql_expr_test: Array<{ expr: string; eval_time: string; exp_samples: Array<{ labels: string; value: number }> }>;
  alert_rule_test: Array<{ eval_time: string; alertname: string; exp_alerts: ExpAlert[] }>;
}

const num = (n: number) => String(Number(n.toPrecision(12)));
const seriesText = (name: string, labels: Labels) => `${name}{${Object.entries(labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
/** A counter rising by `perMinute` every minute from 0, for `minutes` minutes. */
const counter = (perMinute: number, minutes: number) => `0 ${num(perMinute)}+${num(perMinute)}x${minutes - 1}`;
const gauge = (value: number, minutes: number) => `${num(value)}x${minutes}`;

/** The PSI between two distributions of row counts, each side's shares floored as the rules floor them. */
function psiBetween(a: readonly number[], b: readonly number[]): number {
  const share = (counts: readonly number[]) => counts.map((c) => Math.max(c / counts.reduce((x, y) => x + y, 0), FLOOR));
  const [sa, sb] = [share(a), share(b)];
  return sa.reduce((sum, s, bin) => sum + (s - sb[bin]) * Math.log(s / sb[bin]), 0);
}

/** Prometheus' humanizePercentage (`%.4g%%`) for values that need no exponent. */
const humanizePercentage = (ratio: number) => `${Number((ratio * 100).toPrecision(4))}%`;

function promtool(cwd: string, ...args: string[]): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(PROMTOOL, args, { cwd }, (error, stdout, stderr) => resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: stdout + stderr }));
  });
}

describe('ModelMonitoring shadow comparison under promtool', { concurrency: true }, () => {
  const scratch = mkdtempSync(join(tmpdir(), 'modelship-promtool-shadow-'));
  const uniform = Array.from({ length: DRIFT_BINS - 1 }, (_, i) => i + 1);
  const profile: DriftProfile = {
    format: DRIFT_PROFILE_FORMAT, rows: 1000,
    tensors: [
      { name: 'x', kind: 'input', features: [{ index: 0, edges: uniform, ratios: Array(DRIFT_BINS).fill(0.1) }] },
      { name: 'y', kind: 'output', features: [{ index: 0, edges: uniform, ratios: Array(DRIFT_BINS).fill(0.1) }] },
    ],
  };
  const profilePath = join(scratch, 'profile.json');
  writeFileSync(profilePath, JSON.stringify(profile));

  const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
  const primary = new ModelService(chart, 'fraud', { model: ModelSource.fromFile(MODELS.mlp, { profile: profilePath }) });
  const shadow = new ModelService(chart, 'fraud-v2', { modelName: MODEL, serviceName: 'fraud-v2', model: ModelSource.fromFile(MODELS.mlp, { profile: profilePath }) });
  const monitoring = new ModelMonitoring(chart, 'shadow-monitoring', { service: shadow, shadow: { of: primary } });
  const rules = monitoring.ruleGroups.flatMap((g) => g.rules);
  const shadowLabels = { namespace: 'risk', service: shadow.serviceName };

  // Predictions (y) of the reference kind, and a shift towards the low bins; inputs (x) are the same on both sides,
  // as they are for mirrored requests.
  const SAME_Y = [0, 0.1, 0.1, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05];
  const SHIFT_Y = [0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0];
  const X = [0.05, 0.1, 0.15, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05];

  /** One service's runtime series: the bin counters and reference gauges of x and y, and its requests by code. */
  function runtime(service: ModelService, version: string, y: readonly number[], errorShare: number, minutes: number): Series[] {
    const target = {
      namespace: 'risk', service: service.serviceName, job: service.serviceName, endpoint: 'http', container: 'runtime',
      pod: `${service.deployment.name}-5d8f7c9b4-x2x7q`, instance: '10.42.1.17:8080', model: MODEL, version,
    };
    const bins = (tensor: string, shares: readonly number[]) => shares.flatMap((share, bin): Series[] => [
      { name: METRIC.driftBins, labels: { ...target, tensor, feature: '0', bin: String(bin) }, values: counter(Math.round(share * ROWS_PER_MINUTE), minutes) },
      { name: METRIC.driftReferenceRatio, labels: { ...target, tensor, feature: '0', bin: String(bin) }, values: gauge(0.1, minutes) },
    ]);
    return [
      ...bins('x', X),
      ...bins('y', y),
      { name: METRIC.requests, labels: { ...target, protocol: 'rest', code: '200' }, values: counter(ROWS_PER_MINUTE * (1 - errorShare), minutes) },
      ...(errorShare > 0 ? [{ name: METRIC.requests, labels: { ...target, protocol: 'rest', code: '500' }, values: counter(ROWS_PER_MINUTE * errorShare, minutes) }] : []),
    ];
  }

  const ruleOf = (expr: RegExp): Rule => {
    const found = rules.filter((r) => r.alert === ALERT.shadowDiverges && expr.test(r.expr));
    assert.equal(found.length, 1, `one ${ALERT.shadowDiverges} rule matching ${expr}`);
    return found[0];
  };
  const expected = (rule: Rule, labels: Labels, value: string): ExpAlert => {
    const all = { ...labels, ...rule.labels };
    const render = (text: string) => text.replace(/\{\{\s*(.*?)\s*\}\}/g, (whole, inner: string) => {
      const label = /^\$labels\.(\w+)$/.exec(inner);
      if (label) return all[label[1]];
      if (/^\$value \| humanizePercentage$/.test(inner) || inner === 'printf "%.2f" $value') return value;
      throw new Error(`unknown annotation template ${whole}`);
    });
    return { exp_labels: all, exp_annotations: Object.fromEntries(Object.entries(rule.annotations ?? {}).map(([k, v]) => [k, render(v)])) };
  };
  const psiRule = () => ruleOf(/shadow_psi/);
  const errorRule = () => ruleOf(/shadow_error_ratio_delta/);

  /** The recorded PSI is `psi` within 1e-9 for tensor x and y, compared in PromQL (promtool compares exactly). */
  const psiIs = (evalTime: string, psis: Record<'x' | 'y', number>) => ({
    expr: `abs(modelship:shadow_psi:1h - on (tensor) group_left () (${Object.entries(psis).map(([tensor, psi]) => `label_replace(vector(${psi}), "tensor", "${tensor}", "", "")`).join(' or ')})) < bool 1e-9`,
    eval_time: evalTime,
    exp_samples: Object.keys(psis).map((tensor) => ({ labels: seriesText('', { ...shadowLabels, model: MODEL, tensor, feature: '0' }), value: 1 })),
  });
  const deltaIs = (evalTime: string, delta: number) => ({
    expr: 'round(modelship:shadow_error_ratio_delta:1h, 0.000001)',
    eval_time: evalTime,
    exp_samples: [{ labels: seriesText('', { ...shadowLabels, model: MODEL }), value: Number(delta.toFixed(6)) }],
  });

  let dir: string;
  let keep = false;
  before(() => {
    assert.ok(existsSync(PROMTOOL), `${PROMTOOL} is missing: install Debian's 'prometheus' package (apt-get install -y prometheus)`);
    dir = mkdtempSync(join(tmpdir(), 'modelship-promtool-shadow-rules-'));
    writeFileSync(join(dir, 'rules.yaml'), monitoring.rulesFile());
  });
  after(() => {
    rmSync(scratch, { recursive: true, force: true });
    if (keep) console.error(`promtool inputs kept in ${dir}`);
    else if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const run = async (file: string, tests: TestGroup[]) => {
    const group_eval_order = monitoring.ruleGroups.map((g) => g.name);
    writeFileSync(join(dir, file), YAML.stringify({ rule_files: ['rules.yaml'], evaluation_interval: '1m', group_eval_order, tests }, { lineWidth: 0 }));
    return promtool(dir, 'test', 'rules', file);
  };
  const assertPasses = async (file: string, tests: TestGroup[]) => {
    const result = await run(file, tests);
    if (result.code !== 0) keep = true;
    assert.equal(result.code, 0, `promtool test rules ${file}:\n${result.output}`);
  };

  const MINUTES = 90;
  const diverging = (): TestGroup => {
    const psiY = psiBetween(SHIFT_Y.map((s) => Math.round(s * ROWS_PER_MINUTE)), SAME_Y.map((s) => Math.round(s * ROWS_PER_MINUTE)));
    const delta = 0.05 - 0.001;
    return {
      interval: '1m',
      input_series: [...runtime(primary, '1', SAME_Y, 0.001, MINUTES), ...runtime(shadow, '2', SHIFT_Y, 0.05, MINUTES)]
        .map((s) => ({ series: seriesText(s.name, s.labels), values: s.values })),
      promql_expr_test: [psiIs('70m', { x: 0, y: psiY }), deltaIs('70m', delta)],
      alert_rule_test: [{
        eval_time: '80m', alertname: ALERT.shadowDiverges,
        exp_alerts: [
          expected(psiRule(), { ...shadowLabels, model: MODEL, tensor: 'y', feature: '0' }, psiY.toFixed(2)),
          expected(errorRule(), { ...shadowLabels, model: MODEL }, humanizePercentage(delta)),
        ],
      }],
    };
  };

  it('passes promtool check rules, with the shadow group between the SLO and alert groups', async () => {
    const result = await promtool(dir, 'check', 'rules', '--lint=all', '--lint-fatal', 'rules.yaml');
    assert.equal(result.code, 0, result.output);
    assert.deepEqual(monitoring.ruleGroups.map((g) => g.name).map((n) => n.replace(shadow.serviceName, '<s>')),
      ['modelship-<s>-slo', 'modelship-<s>-drift', 'modelship-<s>-shadow', 'modelship-<s>-alerts']);
  });

  it('keeps the PSI and the error-ratio difference at 0 for the same predictions and no errors, and stays quiet', async () => {
    await assertPasses('same.test.yaml', [{
      interval: '1m',
      input_series: [...runtime(primary, '1', SAME_Y, 0, MINUTES), ...runtime(shadow, '2', SAME_Y, 0, MINUTES)]
        .map((s) => ({ series: seriesText(s.name, s.labels), values: s.values })),
      promql_expr_test: [psiIs('70m', { x: 0, y: 0 }), deltaIs('70m', 0)],
      alert_rule_test: [{ eval_time: '80m', alertname: ALERT.shadowDiverges, exp_alerts: [] }],
    }]);
  });

  it('records the PSI and the error-ratio difference computed here for shifted predictions and a failing shadow, and fires for each', async () => {
    assert.ok(psiBetween(SHIFT_Y, SAME_Y) > 0.25, 'the shift is significant');
    await assertPasses('diverging.test.yaml', [diverging()]);
  });

  it('fails when a test expects no alert for the diverging shadow (negative control)', async () => {
    const group = diverging();
    const result = await run('negative.test.yaml', [{ ...group, alert_rule_test: [{ ...group.alert_rule_test[0], exp_alerts: [] }] }]);
    assert.notEqual(result.code, 0, result.output);
  });

  it('waits the default 15m before firing', () => {
    assert.equal(psiRule().for, '15m');
    assert.equal(errorRule().for, '15m');
  });
});
