/**
 * ModelMonitoring's rules on a real Prometheus: the runtime serves three models behind one "service", a Debian
 * Prometheus scrapes it every second with the generated rule file loaded, and the test sends real traffic with a
 * known share of server errors (500 from a model that fails at run time) and of requests slower than the latency
 * threshold. The SLO recording rules must carry those shares, the error-budget alert must fire with the `for`
 * shortened through `alertFor`, and a Debian Alertmanager must deliver it to a local webhook.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import { ALERT, ModelMonitoring, ModelService, ModelSource, SLO_WINDOWS } from 'modelship';
import { PATHS } from '@modelship/contract';
import { MODELS } from '../helpers/paths';
import {
  ALERTMANAGER_BIN, alerts, PROMETHEUS_BIN, query, requireBinary, sleep, startAlertmanager, startPrometheus, startWebhookReceiver, waitFor,
  type PrometheusAlert, type ServerProcess, type WebhookPayload, type WebhookReceiver,
} from '../helpers/prometheus';
import { startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

const LATENCY_THRESHOLD_SECONDS = 0.25;
const TRAFFIC_MS = 15_000;
const CONCURRENCY = 4;
/**
 * Every series shares the scrape timestamps, so the recorded ratios are the traffic's up to requests in flight at a
 * scrape and rate()'s extrapolation toward each counter's zero (measured here: recorded 0.001-0.003 above sent).
 */
const TOLERANCE = 0.03;

type Kind = 'good' | 'failing' | 'slow';
/** One cycle of the traffic: 14 fast good requests, 4 server errors (20%), 2 slow good requests (10%). */
const CYCLE: readonly Kind[] = [
  'good', 'good', 'failing', 'good', 'good', 'slow', 'good', 'failing', 'good', 'good',
  'good', 'good', 'failing', 'good', 'good', 'slow', 'good', 'failing', 'good', 'good',
];
const EXPECTED_STATUS: Record<Kind, number> = { good: 200, failing: 500, slow: 200 };

const REQUESTS: Record<Kind, { model: string; body: unknown }> = {
  good: { model: 'fraud', body: { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [1] }] } },
  // Reshape of 6 elements to [4, 4] throws inside session.run: a real 500, not a 400 from input validation.
  failing: {
    model: 'fails',
    body: { inputs: [{ name: 'x', datatype: 'FP32', shape: [6], data: [1, 2, 3, 4, 5, 6] }, { name: 'shape', datatype: 'INT64', shape: [2], data: [4, 4] }] },
  },
  // 0.12 ms (an idle fast core) to 0.2 ms per iteration: 0.4 s or more, above the 0.25 s threshold and its bucket. At
  // 2000 iterations an otherwise idle core answered in 0.23 s, under the threshold.
  slow: {
    model: 'slow',
    body: { inputs: [{ name: 'iterations', datatype: 'INT64', shape: [], data: [3500] }, { name: 'x', datatype: 'FP32', shape: [1, 64], data: Array.from({ length: 64 }, (_, i) => i / 64) }] },
  },
};

interface Outcome { readonly kind: Kind; readonly status: number; readonly ms: number }

async function send(runtime: RuntimeProcess, kind: Kind): Promise<Outcome> {
  const { model, body } = REQUESTS[kind];
  const started = performance.now();
  const response = await fetch(`${runtime.url}/v2/models/${model}/infer`, {
    method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(10_000),
  });
  await response.arrayBuffer();
  return { kind, status: response.status, ms: performance.now() - started };
}

/** CONCURRENCY clients take the next request of the cycle until `ms` have passed. */
async function drive(runtime: RuntimeProcess, ms: number): Promise<Outcome[]> {
  const outcomes: Outcome[] = [];
  const end = Date.now() + ms;
  let next = 0;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < end) outcomes.push(await send(runtime, CYCLE[next++ % CYCLE.length]));
  }));
  return outcomes;
}

describe('ModelMonitoring on a real Prometheus and Alertmanager', () => {
  // Missing servers fail a test (not only a hook, which node:test reports as cancelled tests), naming the package.
  const binaries = [[PROMETHEUS_BIN, 'prometheus'], [ALERTMANAGER_BIN, 'prometheus-alertmanager']] as const;
  if (binaries.some(([path]) => !existsSync(path))) {
    it('needs Debian\'s prometheus and prometheus-alertmanager packages', () => {
      for (const [path, debianPackage] of binaries) requireBinary(path, debianPackage);
    });
    return;
  }

  const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
  const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('r/m:1') });
  const monitoring = new ModelMonitoring(chart, 'monitoring', {
    service,
    scrapeInterval: '1s',
    latencyObjective: { thresholdSeconds: LATENCY_THRESHOLD_SECONDS, percent: 99 },
    // The known shares are of the service's whole traffic, spread over three models: per model version, each model's
    // ratio would be 0 or 1. The per-version split is checked under promtool (promtool.test.ts).
    perVersion: false,
    alertFor: { [ALERT.errorBudgetBurn]: '0s', [ALERT.latencyBudgetBurn]: '0s' },
  });
  const selector = service.seriesSelector;
  const namespace = selector.namespace!;
  const sel = `namespace="${namespace}",service="${selector.service}"`;

  const cleanups: (() => Promise<unknown>)[] = [];
  let runtime: RuntimeProcess;
  let prometheus: ServerProcess;
  let alertmanager: ServerProcess;
  let webhook: WebhookReceiver;
  let outcomes: Outcome[];
  const count = (predicate: (o: Outcome) => boolean) => outcomes.filter(predicate).length;
  const started = Date.now();
  // A failed hook only cancels the tests (`fail 0` in the summary); each test rethrows the setup error instead.
  let setupError: unknown;
  const setUp = () => { if (setupError) throw setupError; };

  before(async () => {
    try {
      await setup();
    } catch (error) {
      setupError = error;
    }
    // Every step of setup() has its own, shorter bound, so it has settled before this one ends and `after` stops
    // everything it started; a normal run takes ~30 s.
  }, { timeout: 150_000 });

  async function setup(): Promise<void> {
    webhook = await startWebhookReceiver();
    cleanups.push(() => webhook.close());
    // One session worker per model, so slow runs never queue the fast models' requests behind them.
    runtime = await startRuntime([
      '--session-workers', '3',
      '--model', `${REQUESTS.good.model}=${MODELS.linearRegression}`,
      '--model', `${REQUESTS.failing.model}=${MODELS.failsAtRun}`,
      '--model', `${REQUESTS.slow.model}=${MODELS.slow}`,
    ], { timeoutMs: 20_000 });
    cleanups.push(() => runtime.stop());

    alertmanager = await startAlertmanager({
      config: {
        route: { receiver: 'webhook', group_by: ['alertname', 'severity'], group_wait: '0s', group_interval: '1s', repeat_interval: '1h' },
        receivers: [{ name: 'webhook', webhook_configs: [{ url: webhook.url, send_resolved: false }] }],
      },
    });
    cleanups.push(() => alertmanager.stop());

    // The generated job, with static targets in place of Kubernetes discovery: the runtime on loopback, labelled
    // as the Operator or the generated relabelling would label a pod of the Service.
    const { kubernetes_sd_configs: _sd, relabel_configs: _relabel, ...job } = monitoring.scrapeConfig();
    assert.equal(job.metrics_path, PATHS.metrics);
    assert.equal(job.scrape_interval, '1s');
    prometheus = await startPrometheus({
      config: {
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: ['rules.yaml'],
        alerting: { alertmanagers: [{ static_configs: [{ targets: [new URL(alertmanager.url).host] }] }] },
        scrape_configs: [{
          ...job,
          static_configs: [{ targets: [new URL(runtime.url).host], labels: { namespace, service: selector.service, pod: 'modelship-local' } }],
        }],
      },
      files: { 'rules.yaml': monitoring.rulesFile() },
    });
    cleanups.push(() => prometheus.stop());

    // One request of each kind creates every series, then Prometheus must have scraped all three before the
    // measured traffic starts: rate() counts increases from a series' first sample, so the mix between the first
    // and the last sample is exactly the traffic's.
    for (const kind of ['good', 'failing', 'slow'] as const) assert.equal((await send(runtime, kind)).status, EXPECTED_STATUS[kind]);
    await waitFor('Prometheus to scrape the runtime (first scrape comes ~5 s after start)', async () => {
      const series = await query(prometheus.url, `modelship_inference_requests_total{${sel}}`);
      return series.length === 3 ? true : undefined;
    }, 15_000);

    outcomes = await drive(runtime, TRAFFIC_MS);
    const total = outcomes.length + 3;
    await waitFor(`Prometheus to scrape all ${total} requests`, async () => {
      const [sum] = await query(prometheus.url, `sum(modelship_inference_requests_total{${sel}})`);
      return sum?.value === total ? true : undefined;
    }, 10_000);
    // Two rule evaluations after that scrape.
    await sleep(2_500);
  }

  after(async () => {
    for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
  });

  it('sent the traffic it meant to: every request answered as its kind should be', (t) => {
    setUp();
    for (const o of outcomes) assert.equal(o.status, EXPECTED_STATUS[o.kind], `${o.kind} request answered ${o.status}`);
    const slowMs = outcomes.filter((o) => o.kind === 'slow').map((o) => o.ms);
    assert.ok(Math.min(...slowMs) > LATENCY_THRESHOLD_SECONDS * 1000, `slow requests took ${Math.min(...slowMs).toFixed(0)} ms at least`);
    assert.ok(count((o) => o.kind === 'slow') >= 10, 'enough slow requests to measure');
    t.diagnostic(`${outcomes.length} requests in ${TRAFFIC_MS / 1000} s: ${count((o) => o.status === 500)} answered 500, ${count((o) => o.kind === 'slow')} slow (${Math.min(...slowMs).toFixed(0)}-${Math.max(...slowMs).toFixed(0)} ms)`);
  });

  it('records the share of server errors as the availability error ratio, in every window', async (t) => {
    setUp();
    const sent = count((o) => o.status >= 500) / outcomes.length;
    for (const window of SLO_WINDOWS) {
      const result = await query(prometheus.url, `slo:sli_error:ratio_rate${window}{${sel},slo="availability"}`);
      assert.equal(result.length, 1, `one availability ratio for ${window}: ${JSON.stringify(result)}`);
      assert.ok(Math.abs(result[0].value - sent) <= TOLERANCE, `availability error ratio over ${window}: recorded ${result[0].value}, sent ${sent}`);
      if (window === '5m') t.diagnostic(`availability error ratio: recorded ${result[0].value.toFixed(4)}, sent ${sent.toFixed(4)}`);
    }
    const [budget] = await query(prometheus.url, `slo:error_budget:ratio{${sel},slo="availability"}`);
    assert.ok(Math.abs(budget.value - 0.001) < 1e-9, `availability budget ${budget.value}`);
  });

  it('records the share of requests slower than the threshold as the latency error ratio', async (t) => {
    setUp();
    const sent = count((o) => o.kind === 'slow') / outcomes.length;
    for (const window of SLO_WINDOWS) {
      const result = await query(prometheus.url, `slo:sli_error:ratio_rate${window}{${sel},slo="latency"}`);
      assert.equal(result.length, 1, `one latency ratio for ${window}: ${JSON.stringify(result)}`);
      assert.ok(Math.abs(result[0].value - sent) <= TOLERANCE, `latency error ratio over ${window}: recorded ${result[0].value}, sent ${sent}`);
      if (window === '5m') t.diagnostic(`latency error ratio: recorded ${result[0].value.toFixed(4)}, sent ${sent.toFixed(4)}`);
    }
    const [budget] = await query(prometheus.url, `slo:error_budget:ratio{${sel},slo="latency"}`);
    assert.ok(Math.abs(budget.value - 0.01) < 1e-9, `latency budget ${budget.value}`);
  });

  it('fires the critical error-budget burn alert (and the latency one), and nothing else', async () => {
    setUp();
    const firing = (list: PrometheusAlert[], name: string) =>
      list.find((a) => a.labels.alertname === name && a.labels.severity === 'critical' && a.state === 'firing');
    const active = await waitFor('ModelServiceErrorBudgetBurn to fire', async () => {
      const list = await alerts(prometheus.url);
      return firing(list, ALERT.errorBudgetBurn) && firing(list, ALERT.latencyBudgetBurn) ? list : undefined;
    }, 10_000);
    const burn = firing(active, ALERT.errorBudgetBurn)!;
    assert.equal(burn.labels.namespace, namespace);
    assert.equal(burn.labels.service, selector.service);
    assert.match(burn.annotations.summary, new RegExp(selector.service));
    assert.match(burn.annotations.runbook_url, /\/ModelServiceErrorBudgetBurn\.md$/);
    // 20% errors against a 0.1% budget also trips the slow-burn ticket (pending for its 15m); the runtime is up and
    // its models ready, so no other alert may be pending or firing.
    const others = active.filter((a) => a.labels.alertname !== ALERT.errorBudgetBurn && a.labels.alertname !== ALERT.latencyBudgetBurn);
    assert.deepEqual(others.map((a) => `${a.labels.alertname} ${a.state}`), []);
  });

  it('delivers the alert through Alertmanager to the webhook', async (t) => {
    setUp();
    const isBurn = (a: WebhookPayload['alerts'][number]) => a.labels.alertname === ALERT.errorBudgetBurn && a.labels.severity === 'critical';
    const payload = await waitFor('Alertmanager to POST ModelServiceErrorBudgetBurn to the webhook', () => webhook.received.find((p) => p.alerts.some(isBurn)), 15_000);
    assert.equal(payload.status, 'firing');
    assert.equal(payload.receiver, 'webhook');
    const alert = payload.alerts.find(isBurn)!;
    assert.equal(alert.status, 'firing');
    assert.equal(alert.labels.namespace, namespace);
    assert.equal(alert.labels.service, selector.service);
    assert.ok(alert.annotations.summary, 'a summary');
    assert.ok(alert.annotations.description, 'a description');
    assert.match(alert.annotations.runbook_url, /^https:\/\/.*\/ModelServiceErrorBudgetBurn\.md$/);
    t.diagnostic(`webhook got ${webhook.received.length} payload(s); ${alert.labels.alertname}: ${alert.annotations.description}`);
    t.diagnostic(`runtime, Alertmanager and Prometheus up, traffic sent and every assertion made in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  });
});
