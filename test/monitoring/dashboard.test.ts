/**
 * The queries of ModelMonitoring's Grafana dashboard: the explanation panels read the explanation series with the
 * selector of the inference panels, every query names only metrics the runtime exports and parses under promtool,
 * and the explanation queries give the per-explainer rates and quantiles on series as a ServiceMonitor labels them,
 * next to a neighbouring service's.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import * as YAML from 'yaml';
import { ModelMonitoring, ModelService, ModelSource } from 'modelship';
import { EXPLAINER, METRIC } from '@modelship/contract';

const PROMTOOL = process.env.PROMTOOL ?? '/usr/bin/promtool';

interface Target { refId: string; expr: string; legendFormat: string }
interface Panel { id: number; title: string; description?: string; gridPos: { h: number; w: number; x: number; y: number }; targets: Target[] }

/** The dashboard of a service with a drift profile, so that every panel there can be is there. */
function dashboard() {
  const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
  const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('r/m:1', { profile: true }) });
  new ModelMonitoring(chart, 'monitoring', { service });
  const configMap = (Testing.synth(chart) as Array<{ kind: string; metadata: { labels?: Record<string, string> }; data?: Record<string, string> }>)
    .find((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1')!;
  const json = JSON.parse(Object.values(configMap.data!)[0]) as { panels: Panel[] };
  const panel = (title: string) => {
    const found = json.panels.find((p) => p.title === title);
    assert.ok(found, `a panel '${title}'`);
    return found;
  };
  return { service, panels: json.panels, panel };
}

describe('the Grafana dashboard\'s queries', () => {
  const { service, panels, panel } = dashboard();
  const selector = `{namespace="risk",service="${service.serviceName}"}`;

  it('shows explanations per second by explainer and code, and their latency p50 and p99 by explainer', () => {
    assert.deepEqual(panel('Explanations per second').targets, [
      { refId: 'A', expr: `sum by (explainer, code) (rate(modelship_explain_requests_total${selector}[5m]))`, legendFormat: '{{explainer}} {{code}}' },
    ]);
    assert.deepEqual(panel('Explanation latency').targets, [
      { refId: 'A', expr: `histogram_quantile(0.5, sum by (le, explainer) (rate(modelship_explain_duration_seconds_bucket${selector}[5m])))`, legendFormat: '{{explainer}} p50' },
      { refId: 'B', expr: `histogram_quantile(0.99, sum by (le, explainer) (rate(modelship_explain_duration_seconds_bucket${selector}[5m])))`, legendFormat: '{{explainer}} p99' },
    ]);
    // The inference panels select with the same matchers, so both rows show the same service's pods.
    assert.ok(panel('Requests per second').targets[0].expr.includes(`${METRIC.requests}${selector}[5m]`));
    assert.ok(panel('Latency').targets[0].expr.includes(`${METRIC.requestDuration}_bucket${selector}[5m]`));
  });

  it('puts the explanation panels side by side after the inference panels, saying they are outside the objectives', () => {
    const rate = panel('Explanations per second');
    const latency = panel('Explanation latency');
    assert.deepEqual([rate.gridPos, latency.gridPos], [{ h: 8, w: 12, x: 0, y: 40 }, { h: 8, w: 12, x: 12, y: 40 }]);
    assert.ok(rate.gridPos.y > panel('Error budget left (3 days)').gridPos.y);
    for (const p of [rate, latency]) assert.match(p.description ?? '', /not counted in the availability or latency objective/);
  });

  it('shows the versions side by side on the traffic, error, latency and budget panels', () => {
    for (const title of ['Requests per second', 'Server error ratio', 'Latency', 'Error budget left (3 days)']) {
      for (const target of panel(title).targets) {
        assert.match(target.legendFormat, /^\{\{model\}\} v\{\{version\}\} /, `${title}: ${target.legendFormat}`);
        // Split in the query itself, or read from the per-version recorded ratio.
        assert.ok(/by \(model, version[,)]|by \(le, model, version\)/.test(target.expr) || target.expr.includes('slo:sli_error:ratio_rate3d'), `${title}: ${target.expr}`);
      }
    }
  });

  it('names only metrics the runtime exports, each with the service\'s selector', () => {
    const exported = new Set(Object.values(METRIC).flatMap((m) => [m, `${m}_bucket`, `${m}_count`, `${m}_sum`]));
    const targets = panels.flatMap((p) => p.targets);
    for (const { expr } of targets) {
      for (const [, name, matchers] of expr.matchAll(/(modelship_[a-z_]+)(\{[^}]*\})?/g)) {
        assert.ok(exported.has(name), `${name} is exported by the runtime`);
        // The service's matchers, then any of the panel's own (e.g. `code=~"5.."`).
        assert.ok(matchers === selector || matchers?.startsWith(`${selector.slice(0, -1)},`), `${name} in ${expr} selects ${selector}`);
      }
    }
  });

  describe('under promtool', () => {
    let dir: string;
    before(() => {
      assert.ok(existsSync(PROMTOOL), `${PROMTOOL} is missing: install Debian's 'prometheus' package (apt-get install -y prometheus); .ci/run installs it`);
      dir = mkdtempSync(join(tmpdir(), 'modelship-dashboard-'));
    });
    after(() => dir && rmSync(dir, { recursive: true, force: true }));

    it('parses every panel\'s query', () => {
      // promtool checks PromQL only inside rules: each query becomes a recording rule of its own.
      const rules = panels.flatMap((p) => p.targets.map((t) => ({ record: `dashboard:panel_${p.id}:${t.refId.toLowerCase()}`, expr: t.expr })));
      writeFileSync(join(dir, 'dashboard-queries.yaml'), YAML.stringify({ groups: [{ name: 'dashboard-queries', rules }] }));
      const output = execFileSync(PROMTOOL, ['check', 'rules', 'dashboard-queries.yaml'], { cwd: dir, encoding: 'utf8' });
      assert.match(output, new RegExp(`SUCCESS: ${rules.length} rules found`));
    });

    it('gives each version its own request rate, error ratio and latency, a canary\'s apart from stable\'s', () => {
      const labels = (version: string, extra: Record<string, string>) =>
        `{${Object.entries({ namespace: 'risk', service: service.serviceName, pod: `p${version}`, model: 'fraud', version, ...extra }).map(([k, v]) => `${k}="${v}"`).join(',')}}`;
      // Per minute: stable (version 1) 900 requests, all fast and good; the canary (version 2) 100, 20 of them 500s,
      // half of all slower than 0.25 s.
      const input_series = [
        { series: `${METRIC.requests}${labels('1', { protocol: 'rest', code: '200' })}`, values: '0+900x10' },
        { series: `${METRIC.requests}${labels('2', { protocol: 'rest', code: '200' })}`, values: '0+80x10' },
        { series: `${METRIC.requests}${labels('2', { protocol: 'rest', code: '500' })}`, values: '0+20x10' },
        ...Object.entries({ '0.1': 900, '0.25': 900, '0.5': 900, '+Inf': 900 }).map(([le, n]) => ({ series: `${METRIC.requestDuration}_bucket${labels('1', { le })}`, values: `0+${n}x10` })),
        ...Object.entries({ '0.1': 50, '0.25': 50, '0.5': 100, '+Inf': 100 }).map(([le, n]) => ({ series: `${METRIC.requestDuration}_bucket${labels('2', { le })}`, values: `0+${n}x10` })),
      ];
      const rounded = (expr: string, expected: Array<[string, number]>) => ({
        expr: `round(${expr}, 0.0001)`, eval_time: '10m',
        exp_samples: expected.map(([version, value]) => ({ labels: `{model="fraud",version="${version}"}`, value })),
      });
      const tests = [{
        interval: '1m',
        input_series,
        promql_expr_test: [
          rounded(panel('Requests per second').targets[1].expr, [['1', 15], ['2', 1.6667]]),
          rounded(panel('Server error ratio').targets[0].expr, [['1', 0], ['2', 0.2]]),
          // p50: stable inside (0, 0.1], 0.05; the canary at the edge of its fast half, 0.1.
          rounded(panel('Latency').targets[0].expr, [['1', 0.05], ['2', 0.1]]),
        ],
      }];
      writeFileSync(join(dir, 'no-rules.yaml'), YAML.stringify({ groups: [] }));
      writeFileSync(join(dir, 'versions.test.yaml'), YAML.stringify({ rule_files: ['no-rules.yaml'], evaluation_interval: '1m', tests }, { lineWidth: 0 }));
      try {
        execFileSync(PROMTOOL, ['test', 'rules', 'versions.test.yaml'], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
      } catch (error) {
        const { stdout, stderr } = error as { stdout?: string; stderr?: string };
        assert.fail(`promtool test rules failed:\n${stdout ?? ''}${stderr ?? ''}`);
      }
    });

    it('gives the explanation rate per explainer and code, and the quantiles per explainer, of this service alone', () => {
      const labels = (pod: string, extra: Record<string, string>, service_ = service.serviceName) =>
        `{${Object.entries({ namespace: 'risk', service: service_, pod, model: 'fraud', version: '1', ...extra }).map(([k, v]) => `${k}="${v}"`).join(',')}}`;
      const kernelShap = EXPLAINER.kernelShap;
      const occlusion = EXPLAINER.occlusion;
      // One sample a minute; `0+60x10` is a counter growing by 1 per second for 10 minutes.
      const buckets = (explainer: string, perSecondUpTo: Record<string, number>, service_?: string) =>
        Object.entries(perSecondUpTo).map(([le, perSecond]) => ({
          series: `${METRIC.explainDuration}_bucket${labels('a', { explainer, le }, service_)}`, values: `0+${perSecond * 60}x10`,
        }));
      const input_series = [
        { series: `${METRIC.explainRequests}${labels('a', { explainer: kernelShap, code: '200' })}`, values: '0+60x10' },
        { series: `${METRIC.explainRequests}${labels('b', { explainer: kernelShap, code: '200' })}`, values: '0+120x10' },
        { series: `${METRIC.explainRequests}${labels('a', { explainer: occlusion, code: '400' })}`, values: '0+30x10' },
        { series: `${METRIC.explainRequests}${labels('a', { explainer: kernelShap, code: '200' }, 'other')}`, values: '0+600x10' },
        // Kernel SHAP's explanations all between 1 s and 2.5 s, occlusion's between 0.1 s and 0.25 s.
        ...buckets(kernelShap, { '0.1': 0, '0.25': 0, '1': 0, '2.5': 1, '+Inf': 1 }),
        ...buckets(occlusion, { '0.1': 0, '0.25': 1, '1': 1, '2.5': 1, '+Inf': 1 }),
        // A neighbouring service's kernel SHAP explanations, all under 0.1 s: they would pull its quantiles down.
        ...buckets(kernelShap, { '0.1': 5, '0.25': 5, '1': 5, '2.5': 5, '+Inf': 5 }, 'other'),
      ];
      // Rounded: rate() of float samples carries noise, and promtool 2.42 compares samples exactly.
      const rounded = (expr: string, expected: Array<[Record<string, string>, number]>) => ({
        expr: `round(${expr}, 0.0001)`, eval_time: '10m',
        exp_samples: expected.map(([l, value]) => ({ labels: `{${Object.entries(l).map(([k, v]) => `${k}="${v}"`).join(',')}}`, value })),
      });
      const [p50, p99] = panel('Explanation latency').targets.map((t) => t.expr);
      const tests = [{
        interval: '1m',
        input_series,
        promql_expr_test: [
          rounded(panel('Explanations per second').targets[0].expr, [[{ explainer: kernelShap, code: '200' }, 3], [{ explainer: occlusion, code: '400' }, 0.5]]),
          // Linear within the bucket: 1 + 1.5 × q for kernel SHAP, 0.1 + 0.15 × q for occlusion.
          rounded(p50, [[{ explainer: kernelShap }, 1.75], [{ explainer: occlusion }, 0.175]]),
          rounded(p99, [[{ explainer: kernelShap }, 2.485], [{ explainer: occlusion }, 0.2485]]),
        ],
      }];
      writeFileSync(join(dir, 'no-rules.yaml'), YAML.stringify({ groups: [] }));
      writeFileSync(join(dir, 'explanations.test.yaml'), YAML.stringify({ rule_files: ['no-rules.yaml'], evaluation_interval: '1m', tests }, { lineWidth: 0 }));
      try {
        execFileSync(PROMTOOL, ['test', 'rules', 'explanations.test.yaml'], { cwd: dir, encoding: 'utf8', stdio: 'pipe' });
      } catch (error) {
        const { stdout, stderr } = error as { stdout?: string; stderr?: string };
        assert.fail(`promtool test rules failed:\n${stdout ?? ''}${stderr ?? ''}`);
      }
    });
  });
});
