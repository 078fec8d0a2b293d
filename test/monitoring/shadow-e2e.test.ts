/**
 * The shadow comparison end to end: two runtimes serve model `tabular`, version 1 (the primary, y = x·w) and version
 * 2 (the shadow, y = x·w + 0.75, failing inside onnxruntime for rows whose first feature is above 1.5), with the same
 * drift profile. The test sends every request to both, as a gateway's mirror does, and a Debian Prometheus scrapes
 * both every second with both ModelMonitorings' rules. The recorded PSI between the two services' predictions (and
 * inputs) equals the PSI computed here from the rows each side answered, the recorded error-ratio difference and the
 * shadow's per-version SLO error ratio equal the share of requests it failed, and ModelServiceShadowDiverges fires
 * for both reasons.
 */
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import { ALERT, ModelMonitoring, ModelService, ModelSource } from 'modelship';
import { binOf, checkDriftProfile, DRIFT_PROFILE_FILE_NAME, type DriftProfile } from '@modelship/contract';
import { runCli } from '../helpers/cli-process';
import { writeLinearModel, writeLinearModelFailingAbove } from '../helpers/linear-model';
import { alerts, PROMETHEUS_BIN, query, requireBinary, sleep, startPrometheus, waitFor, type ServerProcess } from '../helpers/prometheus';
import { randomFloats } from '../helpers/reference';
import { startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

const FEATURES = 4;
const WEIGHTS = [0.5, 0.5, 0.5, 0.5];
const SHIFT = 0.75;
const FAIL_ABOVE = 1.5;
const ROWS_PER_REQUEST = 3;
const REQUESTS = 300;
/** Floor of a bin's share, as the recording rules apply it. */
const FLOOR = 1e-4;
/**
 * The error ratios come from rate(), whose extrapolation toward each counter's zero differs a little between the
 * 200 and 500 series (the prometheus-e2e test measured 0.001-0.003); the bin shares share it exactly.
 */
const ERROR_TOLERANCE = 0.01;

/** `count` rows of roughly normal features (sums of four uniforms, standard deviation 1). */
function rows(count: number, seed: number): number[][] {
  const uniform = randomFloats(count * FEATURES * 4, seed);
  return Array.from({ length: count }, (_, r) => Array.from({ length: FEATURES }, (_, f) => {
    const base = (r * FEATURES + f) * 4;
    return (uniform[base] + uniform[base + 1] + uniform[base + 2] + uniform[base + 3]) / (2 / Math.sqrt(3));
  }));
}
const v2 = (batch: number[][]) => [{ name: 'x', datatype: 'FP32', shape: [batch.length, FEATURES], data: batch.flat() }];

/** Each bin's share of `values` under `edges`, floored as the rules floor it. */
function shares(values: readonly number[], edges: readonly number[]): number[] {
  const counts = new Array(edges.length + 1).fill(0);
  for (const value of values) counts[binOf(edges, Math.fround(value))!] += 1;
  return counts.map((count) => Math.max(count / values.length, FLOOR));
}
function psi(a: readonly number[], b: readonly number[]): number {
  return a.reduce((sum, share, bin) => sum + (share - b[bin]) * Math.log(share / b[bin]), 0);
}

interface Answered { readonly rows: number[][]; readonly y?: number[] }

describe('shadow comparison on a real Prometheus: a shifted, partly failing shadow against its primary', () => {
  if (!existsSync(PROMETHEUS_BIN)) {
    it('needs Debian\'s prometheus package', () => requireBinary(PROMETHEUS_BIN, 'prometheus'));
    return;
  }
  const scratch = mkdtempSync(join(tmpdir(), 'modelship-shadow-'));
  const primaryModel = join(scratch, 'primary', 'tabular', '1', 'model.onnx');
  const shadowModel = join(scratch, 'shadow', 'tabular', '2', 'model.onnx');
  const profilePath = join(scratch, DRIFT_PROFILE_FILE_NAME);
  let profile: DriftProfile;
  let primary: RuntimeProcess;
  let shadow: RuntimeProcess;
  let prometheus: ServerProcess;
  const sel = { primary: 'namespace="risk",service="tabular"', shadow: 'namespace="risk",service="tabular-v2"' };
  const answered: { primary: Answered[]; shadow: Answered[] } = { primary: [], shadow: [] };
  /** Requests counted by the error ratios: those after Prometheus first saw every request series. */
  const measured: { shadowFailed: number; total: number } = { shadowFailed: 0, total: 0 };
  let setupError: unknown;
  const setUp = () => { if (setupError) throw setupError; };

  /** One request to both runtimes, as a mirror sends it; returns whether the shadow failed it. */
  const mirror = async (batch: number[][]): Promise<boolean> => {
    const body = JSON.stringify({ inputs: v2(batch) });
    const [p, s] = await Promise.all([primary, shadow].map((runtime) => fetch(`${runtime.url}/v2/models/tabular/infer`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body,
    })));
    const pBody = await p.json() as { outputs: { data: number[] }[] };
    assert.equal(p.status, 200, JSON.stringify(pBody));
    answered.primary.push({ rows: batch, y: pBody.outputs[0].data });
    const sBody = await s.json() as { outputs?: { data: number[] }[]; error?: string };
    const failed = batch.some((row) => Math.fround(row[0]) > FAIL_ABOVE);
    assert.equal(s.status, failed ? 500 : 200, JSON.stringify(sBody));
    if (!failed) answered.shadow.push({ rows: batch, y: sBody.outputs![0].data });
    return failed;
  };

  before(async () => {
    try {
      mkdirSync(join(primaryModel, '..'), { recursive: true });
      mkdirSync(join(shadowModel, '..'), { recursive: true });
      writeLinearModel(primaryModel, WEIGHTS, 0);
      writeLinearModelFailingAbove(shadowModel, WEIGHTS, SHIFT, FAIL_ABOVE);
      const data = join(scratch, 'reference.jsonl');
      writeFileSync(data, rows(2000, 1).map((row) => JSON.stringify(v2([row]))).join('\n') + '\n');
      const profiled = await runCli(['profile', '--model', primaryModel, '--data', data, '--out', profilePath], { timeoutMs: 60_000 });
      assert.equal(profiled.code, 0, profiled.stderr);
      // One profile for both versions, so that bin k is the same range on both; without the primary's digest, which
      // would tie it to the primary's model file.
      const { modelSha256: _digest, ...shared } = checkDriftProfile(JSON.parse(readFileSync(profilePath, 'utf8')), 'profile.json');
      profile = shared;
      writeFileSync(profilePath, JSON.stringify(profile));
      for (const model of [primaryModel, shadowModel]) writeFileSync(join(model, '..', DRIFT_PROFILE_FILE_NAME), JSON.stringify(profile));

      [primary, shadow] = await Promise.all([
        startRuntime(['--model-repository', join(scratch, 'primary')]),
        startRuntime(['--model-repository', join(scratch, 'shadow')]),
      ]);
      const chart = new Chart(Testing.app(), 'risk', { namespace: 'risk' });
      const primaryService = new ModelService(chart, 'tabular', { model: ModelSource.fromFile(primaryModel, { profile: profilePath }) });
      const shadowService = new ModelService(chart, 'tabular-v2', { modelName: 'tabular', serviceName: 'tabular-v2', model: ModelSource.fromFile(shadowModel, { profile: profilePath }) });
      const monitorings = [
        new ModelMonitoring(chart, 'primary-monitoring', { service: primaryService, scrapeInterval: '1s' }),
        new ModelMonitoring(chart, 'shadow-monitoring', {
          service: shadowService, scrapeInterval: '1s', shadow: { of: primaryService }, alertFor: { ModelServiceShadowDiverges: '0s' },
        }),
      ];
      const targets = [primary, shadow];
      const scrapeConfigs = monitorings.map((monitoring, i) => {
        const { kubernetes_sd_configs: _sd, relabel_configs: _relabel, ...job } = monitoring.scrapeConfig();
        const { service } = [primaryService, shadowService][i].seriesSelector;
        return { ...job, static_configs: [{ targets: [new URL(targets[i].url).host], labels: { namespace: 'risk', service, pod: `${service}-local` } }] };
      });
      prometheus = await startPrometheus({
        config: { global: { scrape_interval: '1s', evaluation_interval: '1s' }, rule_files: ['primary.yaml', 'shadow.yaml'], scrape_configs: scrapeConfigs },
        files: { 'primary.yaml': monitorings[0].rulesFile(), 'shadow.yaml': monitorings[1].rulesFile() },
      });
      // Every bin series exists from the profile's load: Prometheus must see them at 0 before any row is served.
      await waitFor('the first scrape of both runtimes', async () => {
        const [count] = await query(prometheus.url, `count(count by (service) (modelship_drift_bin_total{namespace="risk"}))`);
        return count?.value === 2 ? true : undefined;
      }, 15_000);

      // A request each runtime answers, and one the shadow fails, create every request series; rate() counts from a
      // series' first sample, so the measured requests are those sent after Prometheus has seen all of them.
      const reference = rows(REQUESTS * ROWS_PER_REQUEST + 20, 2);
      const good = reference.filter((row) => Math.fround(row[0]) <= FAIL_ABOVE).slice(0, ROWS_PER_REQUEST);
      const bad = [reference.find((row) => Math.fround(row[0]) > FAIL_ABOVE)!];
      assert.equal(await mirror(good), false);
      assert.equal(await mirror(bad), true);
      await waitFor('Prometheus to see every request series', async () => {
        const series = await query(prometheus.url, `modelship_inference_requests_total{namespace="risk"}`);
        return series.length === 3 ? true : undefined;
      }, 15_000);

      for (let i = 0; i < REQUESTS; i++) {
        const failed = await mirror(reference.slice(i * ROWS_PER_REQUEST, (i + 1) * ROWS_PER_REQUEST));
        measured.total += 1;
        if (failed) measured.shadowFailed += 1;
      }
      const sentRows = answered.primary.reduce((n, a) => n + a.rows.length, 0);
      await waitFor(`Prometheus to scrape the ${sentRows} rows of the primary and every request`, async () => {
        const [rowsSeen] = await query(prometheus.url, `sum(modelship_drift_bin_total{${sel.primary},tensor="x",feature="0"})`);
        const [requests] = await query(prometheus.url, `sum(modelship_inference_requests_total{namespace="risk"})`);
        return rowsSeen?.value === sentRows && requests?.value === 2 * (REQUESTS + 2) ? true : undefined;
      }, 20_000);
      // Rule evaluations after that scrape: the shares, then the PSI that reads them.
      await sleep(2_500);
    } catch (error) {
      setupError = error;
    }
  }, { timeout: 120_000 });

  after(async () => {
    await prometheus?.stop().catch(() => undefined);
    await primary?.stop().catch(() => undefined);
    await shadow?.stop().catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
  });

  it('records the PSI between the two services\' predictions and inputs, equal to the PSI of what each answered', async (t) => {
    setUp();
    const recorded = await query(prometheus.url, `modelship:shadow_psi:1h{${sel.shadow}}`);
    const byKey = new Map(recorded.map((s) => [`${s.metric.tensor}/${s.metric.feature}`, s.value]));
    assert.equal(byKey.size, FEATURES + 1, `a PSI per input feature and for y: ${[...byKey.keys()].join(', ')}`);
    const columnOf = (side: Answered[], tensor: string, index: number) => side.flatMap((a) => (tensor === 'y' ? a.y! : a.rows.map((row) => row[index])));
    for (const tensor of profile.tensors) {
      for (const feature of tensor.features) {
        const expected = psi(shares(columnOf(answered.shadow, tensor.name, feature.index), feature.edges), shares(columnOf(answered.primary, tensor.name, feature.index), feature.edges));
        const got = byKey.get(`${tensor.name}/${feature.index}`)!;
        assert.ok(Math.abs(got - expected) < 1e-6 + expected * 1e-3, `${tensor.name}[${feature.index}]: recorded ${got}, computed ${expected}`);
        t.diagnostic(`${tensor.name}[${feature.index}]: PSI ${got.toFixed(4)} (computed ${expected.toFixed(4)})`);
      }
    }
    assert.ok(byKey.get('y/0')! > 0.25, 'the shifted predictions are a significant difference');
  });

  it('records the error-ratio difference and the shadow version\'s SLO error ratio as the share of requests it failed', async (t) => {
    setUp();
    const sent = measured.shadowFailed / measured.total;
    assert.ok(sent > 0.05 && sent < 0.5, `the shadow failed ${measured.shadowFailed} of ${measured.total} requests`);
    const [delta] = await query(prometheus.url, `modelship:shadow_error_ratio_delta:1h{${sel.shadow}}`);
    assert.equal(delta.metric.model, 'tabular');
    assert.ok(Math.abs(delta.value - sent) <= ERROR_TOLERANCE, `error-ratio difference: recorded ${delta.value}, sent ${sent}`);
    const shadowSlo = await query(prometheus.url, `slo:sli_error:ratio_rate5m{${sel.shadow},slo="availability"}`);
    assert.deepEqual(shadowSlo.map((s) => [s.metric.model, s.metric.version]), [['tabular', '2']]);
    assert.ok(Math.abs(shadowSlo[0].value - sent) <= ERROR_TOLERANCE, `shadow v2 SLO error ratio: recorded ${shadowSlo[0].value}, sent ${sent}`);
    const primarySlo = await query(prometheus.url, `slo:sli_error:ratio_rate5m{${sel.primary},slo="availability"}`);
    assert.deepEqual(primarySlo.map((s) => [s.metric.model, s.metric.version, s.value]), [['tabular', '1', 0]]);
    t.diagnostic(`shadow failed ${(sent * 100).toFixed(2)}% of requests; recorded difference ${(delta.value * 100).toFixed(2)}%, v2 SLO ratio ${(shadowSlo[0].value * 100).toFixed(2)}%`);
  });

  it(`fires ${ALERT.shadowDiverges} for the predictions (output y) and for the errors`, async () => {
    setUp();
    const firing = await waitFor(`${ALERT.shadowDiverges} to fire for both`, async () => {
      const found = (await alerts(prometheus.url)).filter((a) => a.labels.alertname === ALERT.shadowDiverges && a.state === 'firing');
      return found.length === 2 ? found : undefined;
    }, 15_000);
    assert.deepEqual(firing.map((a) => [a.labels.divergence, a.labels.tensor ?? '-', a.labels.service]).sort(),
      [['errors', '-', 'tabular-v2'], ['predictions', 'y', 'tabular-v2']]);
  });
});
