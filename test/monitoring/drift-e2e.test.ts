/**
 * Drift detection end to end: the tabular MLP served with a profile that `modelship profile` built from reference
 * data, a Debian Prometheus scraping the runtime every second with ModelMonitoring's rules. Rows from the reference
 * distribution keep `modelship:drift_psi:1h` near 0; rows from a shifted one raise it past the threshold and the
 * drift alerts fire. The recorded PSI equals a PSI computed here, independently, from the rows sent.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import { ModelMonitoring, ModelService, ModelSource } from 'modelship';
import { binOf, checkDriftProfile, DRIFT_PROFILE_FILE_NAME, type DriftProfile } from '@modelship/contract';
import { runCli } from '../helpers/cli-process';
import { MODELS } from '../helpers/paths';
import { alerts, PROMETHEUS_BIN, query, requireBinary, sleep, startPrometheus, waitFor, type ServerProcess } from '../helpers/prometheus';
import { randomFloats } from '../helpers/reference';
import { startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

const FEATURES = 16;
const THRESHOLD = 0.25;
/** Floor of a bin's share, as the recording rule applies it, so that an empty bin keeps the logarithm finite. */
const FLOOR = 1e-4;

/** `count` rows of 16 features, each roughly normal (sum of uniforms), moved by `shift` standard deviations. */
function rows(count: number, seed: number, shift = 0): number[][] {
  const uniform = randomFloats(count * FEATURES * 4, seed);
  return Array.from({ length: count }, (_, r) => Array.from({ length: FEATURES }, (_, f) => {
    const base = (r * FEATURES + f) * 4;
    // Four uniforms in [-1, 1) sum to a bell with standard deviation 2/sqrt(3).
    const sum = uniform[base] + uniform[base + 1] + uniform[base + 2] + uniform[base + 3];
    return sum / (2 / Math.sqrt(3)) + shift;
  }));
}

const v2 = (batch: number[][]) => [{ name: 'x', datatype: 'FP32', shape: [batch.length, FEATURES], data: batch.flat() }];

/** PSI of `values` against a feature of the profile, floored as the rule floors it. */
function psi(values: number[], edges: readonly number[], ratios: readonly number[]): number {
  const counts = new Array(ratios.length).fill(0);
  for (const value of values) counts[binOf(edges, Math.fround(value))!] += 1;
  return counts.reduce((sum, count, bin) => {
    const actual = Math.max(count / values.length, FLOOR);
    const reference = Math.max(ratios[bin], FLOOR);
    return sum + (actual - reference) * Math.log(actual / reference);
  }, 0);
}

describe('drift on a real Prometheus: reference rows stay quiet, shifted rows fire', () => {
  if (!existsSync(PROMETHEUS_BIN)) {
    it('needs Debian\'s prometheus package', () => requireBinary(PROMETHEUS_BIN, 'prometheus'));
    return;
  }
  const scratch = mkdtempSync(join(tmpdir(), 'modelship-drift-'));
  const repository = join(scratch, 'models');
  const versionDir = join(repository, 'tabular', '1');
  const reference = rows(2000, 1);
  let profile: DriftProfile;
  let runtime: RuntimeProcess;
  let prometheus: ServerProcess;
  let sel: string;
  const sent: number[][] = [];
  let setupError: unknown;
  const setUp = () => { if (setupError) throw setupError; };

  const send = async (batch: number[][]) => {
    const response = await fetch(`${runtime.url}/v2/models/tabular/infer`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ inputs: v2(batch) }),
    });
    assert.equal(response.status, 200, await response.text());
    sent.push(...batch);
  };
  /** The recorded PSI of every input feature, once Prometheus has scraped every row sent so far. */
  const recorded = async (): Promise<Map<string, number>> => {
    await waitFor(`Prometheus to scrape ${sent.length} rows`, async () => {
      const [sum] = await query(prometheus.url, `sum(modelship_drift_bin_total{${sel},tensor="x",feature="0"})`);
      return sum?.value === sent.length ? true : undefined;
    }, 20_000);
    await sleep(2_500);
    const samples = await query(prometheus.url, `modelship:drift_psi:1h{${sel},tensor="x"}`);
    return new Map(samples.map((s) => [s.metric.feature, s.value]));
  };

  before(async () => {
    try {
      mkdirSync(versionDir, { recursive: true });
      copyFileSync(MODELS.mlp, join(versionDir, 'model.onnx'));
      const data = join(scratch, 'reference.jsonl');
      writeFileSync(data, reference.map((row) => JSON.stringify(v2([row]))).join('\n') + '\n');
      const profiled = await runCli(['profile', '--model', MODELS.mlp, '--data', data, '--out', join(versionDir, DRIFT_PROFILE_FILE_NAME)], { timeoutMs: 60_000 });
      assert.equal(profiled.code, 0, profiled.stderr);
      profile = checkDriftProfile(JSON.parse(readFileSync(join(versionDir, DRIFT_PROFILE_FILE_NAME), 'utf8')), 'profile.json');

      runtime = await startRuntime(['--model-repository', repository]);
      const chart = new Chart(Testing.app(), 'risk', { namespace: 'risk' });
      const service = new ModelService(chart, 'tabular', { model: ModelSource.fromFile(join(versionDir, 'model.onnx'), { profile: join(versionDir, DRIFT_PROFILE_FILE_NAME) }) });
      const monitoring = new ModelMonitoring(chart, 'monitoring', { service, scrapeInterval: '1s', drift: { threshold: THRESHOLD, for: '0s' } });
      const { namespace, service: name } = service.seriesSelector;
      sel = `namespace="${namespace}",service="${name}"`;
      const { kubernetes_sd_configs: _sd, relabel_configs: _relabel, ...job } = monitoring.scrapeConfig();
      prometheus = await startPrometheus({
        config: {
          global: { scrape_interval: '1s', evaluation_interval: '1s' },
          rule_files: ['rules.yaml'],
          scrape_configs: [{ ...job, static_configs: [{ targets: [new URL(runtime.url).host], labels: { namespace, service: name, pod: 'modelship-local' } }] }],
        },
        files: { 'rules.yaml': monitoring.rulesFile() },
      });
      // Every bin series exists from the profile's load, so Prometheus sees them all from its first scrape.
      await waitFor('the first scrape', async () => ((await query(prometheus.url, `modelship_drift_bin_total{${sel}}`)).length > 0 ? true : undefined), 15_000);
    } catch (error) {
      setupError = error;
    }
  }, { timeout: 120_000 });

  after(async () => {
    await prometheus?.stop().catch(() => undefined);
    await runtime?.stop().catch(() => undefined);
    rmSync(scratch, { recursive: true, force: true });
  });

  it('keeps the PSI near 0 for rows from the reference distribution, equal to the PSI of the rows sent', async (t) => {
    setUp();
    // One request: every bin's count moves in the same scrape, so the shares over the window are the rows' own.
    await send(rows(2000, 2));
    const psis = await recorded();
    assert.equal(psis.size, FEATURES, 'a PSI per input feature');
    const x = profile.tensors.find((tensor) => tensor.name === 'x' && tensor.kind === 'input')!;
    for (const feature of x.features) {
      const expected = psi(sent.map((row) => row[feature.index]), feature.edges, feature.ratios);
      const got = psis.get(String(feature.index))!;
      assert.ok(Math.abs(got - expected) < 1e-6 + expected * 1e-3, `feature ${feature.index}: recorded ${got}, computed ${expected}`);
      assert.ok(got < 0.1, `feature ${feature.index}: PSI ${got} for reference rows`);
    }
    t.diagnostic(`reference rows: PSI up to ${Math.max(...psis.values()).toFixed(4)}`);
    assert.deepEqual((await alerts(prometheus.url)).filter((a) => /Drift$/.test(a.labels.alertname)), []);
  });

  it('raises it past the threshold for rows from a shifted distribution, and the drift alerts fire', async (t) => {
    setUp();
    await send(rows(6000, 3, 1.5));
    const psis = await recorded();
    const x = profile.tensors.find((tensor) => tensor.name === 'x' && tensor.kind === 'input')!;
    for (const feature of x.features) {
      const expected = psi(sent.map((row) => row[feature.index]), feature.edges, feature.ratios);
      const got = psis.get(String(feature.index))!;
      assert.ok(Math.abs(got - expected) < 1e-6 + expected * 1e-3, `feature ${feature.index}: recorded ${got}, computed ${expected}`);
      assert.ok(got > THRESHOLD, `feature ${feature.index}: PSI ${got} for shifted rows`);
    }
    t.diagnostic(`shifted rows: PSI from ${Math.min(...psis.values()).toFixed(3)} to ${Math.max(...psis.values()).toFixed(3)}`);
    await waitFor('ModelServiceInputDrift to fire', async () => {
      const firing = (await alerts(prometheus.url)).filter((a) => a.labels.alertname === 'ModelServiceInputDrift' && a.state === 'firing');
      return firing.length > 0 ? firing : undefined;
    }, 15_000);
  });
});
