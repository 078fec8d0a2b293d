/**
 * ModelMonitoring's `shadow`: the comparison group and alert it adds for a service that shadows another, what it
 * compares when the profiles allow it, and the mistakes it refuses (itself, another model, profiles that bin
 * differently, settings that cannot work).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import { ALERT, ModelMonitoring, type ModelMonitoringProps, ModelService, ModelSource, type Rule } from 'modelship';
import { DRIFT_BINS, DRIFT_PROFILE_FORMAT, type DriftProfile } from '@modelship/contract';
import { MODELS } from '../helpers/paths';

const scratch = mkdtempSync(join(tmpdir(), 'modelship-shadow-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

/** A profile of the mlp fixture (input x, output y) whose y bins have edges from `start`. */
function profileFile(name: string, start = 1): string {
  const edges = (from: number) => Array.from({ length: DRIFT_BINS - 1 }, (_, i) => from + i);
  const ratios = Array(DRIFT_BINS).fill(0.1);
  const profile: DriftProfile = {
    format: DRIFT_PROFILE_FORMAT, rows: 1000,
    tensors: [
      { name: 'x', kind: 'input', features: [{ index: 0, edges: edges(1), ratios }] },
      { name: 'y', kind: 'output', features: [{ index: 0, edges: edges(start), ratios }] },
    ],
  };
  const path = join(scratch, name);
  writeFileSync(path, JSON.stringify(profile));
  return path;
}
const SAME = profileFile('same.json');

function build(options: { primaryProfile?: string | null; shadowProfile?: string | null; shadowModelName?: string; shadow?: Partial<NonNullable<ModelMonitoringProps['shadow']>>; self?: boolean } = {}) {
  const source = (profile: string | null | undefined) => ModelSource.fromFile(MODELS.mlp, profile === null ? {} : { profile: profile ?? SAME });
  const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
  const primary = new ModelService(chart, 'fraud', { model: source(options.primaryProfile) });
  const shadow = new ModelService(chart, 'fraud-v2', { modelName: options.shadowModelName ?? 'fraud', serviceName: 'fraud-v2', model: source(options.shadowProfile) });
  const monitoring = new ModelMonitoring(chart, 'shadow-monitoring', { service: shadow, shadow: { of: options.self ? shadow : primary, ...options.shadow } });
  return { primary, shadow, monitoring, rules: monitoring.ruleGroups.flatMap((g) => g.rules) };
}
const records = (rules: Rule[]) => rules.filter((r) => r.record?.startsWith('modelship:shadow')).map((r) => r.record);

describe('ModelMonitoring shadow', () => {
  it('adds a shadow group after the drift group: both sides\' shares, the PSI and the error-ratio difference', () => {
    const { monitoring, rules } = build();
    assert.deepEqual(monitoring.ruleGroups.map((g) => g.name), ['modelship-fraud-v2-slo', 'modelship-fraud-v2-drift', 'modelship-fraud-v2-shadow', 'modelship-fraud-v2-alerts']);
    assert.deepEqual(records(rules), ['modelship:shadow_bin_share:1h', 'modelship:shadow_bin_share:1h', 'modelship:shadow_psi:1h', 'modelship:shadow_error_ratio_delta:1h']);
    const shares = rules.filter((r) => r.record === 'modelship:shadow_bin_share:1h');
    assert.deepEqual(shares.map((r) => r.labels), [{ namespace: 'risk', service: 'fraud-v2', side: 'shadow' }, { namespace: 'risk', service: 'fraud-v2', side: 'primary' }]);
    assert.match(shares[0].expr, /modelship_drift_bin_total\{namespace="risk",service="fraud-v2"\}\[1h\]/);
    assert.match(shares[1].expr, /modelship_drift_bin_total\{namespace="risk",service="fraud"\}\[1h\]/);
    const delta = rules.find((r) => r.record === 'modelship:shadow_error_ratio_delta:1h')!;
    assert.match(delta.expr, /service="fraud-v2",code=~"5\.\."/);
    assert.match(delta.expr, /service="fraud",code=~"5\.\."/);
    assert.deepEqual(delta.labels, { namespace: 'risk', service: 'fraud-v2' });
  });

  it('alerts with ModelServiceShadowDiverges on the outputs\' PSI and on the error-ratio difference, told apart by `divergence`', () => {
    const { rules } = build({ shadow: { psiThreshold: 0.1, errorRatioThreshold: 0.02 } });
    const alerts = rules.filter((r) => r.alert === ALERT.shadowDiverges);
    assert.deepEqual(alerts.map((r) => r.labels), [
      { namespace: 'risk', service: 'fraud-v2', severity: 'warning', divergence: 'predictions' },
      { namespace: 'risk', service: 'fraud-v2', severity: 'warning', divergence: 'errors' },
    ]);
    assert.equal(alerts[0].expr, 'modelship:shadow_psi:1h{namespace="risk",service="fraud-v2",tensor=~"y"} > 0.1');
    assert.equal(alerts[1].expr, 'modelship:shadow_error_ratio_delta:1h{namespace="risk",service="fraud-v2"} > 0.02');
    for (const alert of alerts) {
      assert.equal(alert.for, '15m');
      assert.equal(alert.annotations!.runbook_url, 'https://github.com/modelship/modelship/blob/main/docs/runbooks/ModelServiceShadowDiverges.md');
      assert.match(alert.annotations!.summary, /fraud in risk, which it shadows/);
    }
  });

  it('names the window in the records, and takes alertFor', () => {
    const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
    const source = () => ModelSource.fromFile(MODELS.mlp, { profile: SAME });
    const primary = new ModelService(chart, 'fraud', { model: source() });
    const shadow = new ModelService(chart, 'fraud-v2', { modelName: 'fraud', serviceName: 'fraud-v2', model: source() });
    const monitoring = new ModelMonitoring(chart, 'm', { service: shadow, shadow: { of: primary, window: '6h' }, alertFor: { ModelServiceShadowDiverges: '1h' } });
    const rules = monitoring.ruleGroups.flatMap((g) => g.rules);
    assert.deepEqual(records(rules), ['modelship:shadow_bin_share:6h', 'modelship:shadow_bin_share:6h', 'modelship:shadow_psi:6h', 'modelship:shadow_error_ratio_delta:6h']);
    assert.deepEqual(rules.filter((r) => r.alert === ALERT.shadowDiverges).map((r) => r.for), ['1h', '1h']);
    Testing.synth(chart);
  });

  it('compares only the error ratios when either side has no drift profile: nothing counts its predictions into bins', () => {
    for (const profiles of [{ primaryProfile: null }, { shadowProfile: null }]) {
      const { rules } = build(profiles);
      assert.deepEqual(records(rules), ['modelship:shadow_error_ratio_delta:1h']);
      assert.deepEqual(rules.filter((r) => r.alert === ALERT.shadowDiverges).map((r) => r.labels!.divergence), ['errors']);
    }
  });

  it('has no shadow group or alert without `shadow`', () => {
    const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
    const service = new ModelService(chart, 'fraud', { model: ModelSource.fromFile(MODELS.mlp, { profile: SAME }) });
    const rules = new ModelMonitoring(chart, 'm', { service }).ruleGroups.flatMap((g) => g.rules);
    assert.deepEqual(records(rules), []);
    assert.ok(!rules.some((r) => r.alert === ALERT.shadowDiverges));
  });

  it('refuses to compare a service with itself, another model, profiles that bin differently, and settings that cannot work', () => {
    assert.throws(() => build({ self: true }), /'shadow.of' is ModelService 'fraud-detection\/fraud-v2' itself/);
    assert.throws(() => build({ shadowModelName: 'fraud2' }), /serves model 'fraud' and this service 'fraud2'.*give both the same 'modelName'/);
    assert.throws(() => build({ primaryProfile: profileFile('other.json', 2) }), /bins feature 0 of output 'y' at \[2, .*this service's at \[1, .*give both model sources the same profile/);
    assert.throws(() => build({ shadow: { window: '90' } }), /'shadow.window' \('90'\) must be a Prometheus duration/);
    assert.throws(() => build({ shadow: { psiThreshold: 0 } }), /'shadow.psiThreshold' \(0\) must be a PSI above 0/);
    assert.throws(() => build({ shadow: { errorRatioThreshold: 1 } }), /'shadow.errorRatioThreshold' \(1\) must be a share from 0 to below 1/);
  });
});
