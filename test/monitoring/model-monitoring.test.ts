/**
 * ModelMonitoring's objects: what they select, which alerts exist with which labels and annotations, that every
 * metric a rule names is one the runtime exports, and that the objects pass the prometheus-operator schemas.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import * as YAML from 'yaml';
import { ALERT, ModelAutoscaler, ModelMonitoring, ModelService, ModelSource, SLO_WINDOWS } from 'modelship';
import { METRIC } from '../../lib/contract/metrics';
import { assertValidManifests } from '../helpers/k8s-schema';
import { REPO_ROOT } from '../helpers/paths';

type Manifest = { kind: string; metadata: { name: string; labels?: Record<string, string> }; spec: any; data?: Record<string, string> };

function build(props: Partial<ConstructorParameters<typeof ModelMonitoring>[2]> = {}, autoscale = true) {
  const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
  const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('r/m:1') });
  const autoscaler = autoscale ? new ModelAutoscaler(chart, 'auto', { service }) : undefined;
  const monitoring = new ModelMonitoring(chart, 'monitoring', { service, autoscaler, ...props });
  return { service, monitoring, objects: Testing.synth(chart) as Manifest[] };
}

describe('ModelMonitoring', () => {
  const { service, monitoring, objects } = build({ extraLabels: { release: 'kps' } });
  const rules = monitoring.ruleGroups.flatMap((g) => g.rules);

  it('scrapes the Service\'s http port at /metrics, with the extra labels kube-prometheus-stack selects', () => {
    const monitor = objects.find((o) => o.kind === 'ServiceMonitor')!;
    const svc = objects.find((o) => o.kind === 'Service')!;
    for (const [key, value] of Object.entries(monitor.spec.selector.matchLabels)) assert.equal(svc.metadata.labels![key], value);
    assert.deepEqual(monitor.spec.endpoints, [{ port: 'http', path: '/metrics', interval: '30s' }]);
    assert.equal(monitor.metadata.labels!.release, 'kps');
    assert.equal(objects.find((o) => o.kind === 'PrometheusRule')!.metadata.labels!.release, 'kps');
  });

  it('has every alert of the contract, each with a severity and summary, description and runbook_url', () => {
    for (const name of ['ModelServiceErrorBudgetBurn', 'ModelServiceLatencyBudgetBurn', 'ModelServiceHighCPU', 'ModelServiceMemoryNearLimit',
      'ModelServiceDown', 'ModelServiceModelNotReady', 'ModelServiceCrashLooping', 'ModelServiceAutoscalerMaxedOut']) {
      assert.ok(rules.some((r) => r.alert === name), name);
    }
    for (const rule of rules.filter((r) => r.alert)) {
      assert.match(rule.labels?.severity ?? '', /^(critical|warning)$/, rule.alert);
      for (const key of ['summary', 'description', 'runbook_url']) assert.ok(rule.annotations?.[key], `${rule.alert} ${key}`);
      assert.ok(existsSync(join(REPO_ROOT, 'docs', 'runbooks', `${rule.alert}.md`)), `a runbook for ${rule.alert}`);
    }
    assert.deepEqual(rules.filter((r) => r.alert === ALERT.errorBudgetBurn).map((r) => r.labels!.severity), ['critical', 'warning']);
  });

  it('records sloth\'s SLO series for both objectives over every window', () => {
    for (const slo of ['availability', 'latency']) {
      for (const window of SLO_WINDOWS) {
        assert.ok(rules.some((r) => r.record === `slo:sli_error:ratio_rate${window}` && r.labels?.slo === slo), `${slo} ${window}`);
      }
    }
    const latency = rules.find((r) => r.record === 'slo:sli_error:ratio_rate5m' && r.labels?.slo === 'latency')!;
    assert.match(latency.expr, /le="0.25"/);
    assert.ok(rules.every((r) => !r.record || /^[a-z_]+:[a-z_]+:[a-z0-9_]+$/.test(r.record)), 'level:metric:operations');
  });

  it('names only metrics the runtime exports, scoped to this service', () => {
    const names = new Set(rules.flatMap((r) => r.expr.match(/modelship_[a-z_]+/g) ?? []));
    const exported = new Set(Object.values(METRIC).flatMap((m) => [m, `${m}_bucket`, `${m}_count`, `${m}_sum`]));
    for (const name of names) assert.ok(exported.has(name), `${name} is exported by the runtime`);
    for (const rule of rules.filter((r) => /modelship_/.test(r.expr))) assert.ok(rule.expr.includes(`service="${service.serviceName}"`), rule.alert ?? rule.record);
    const cpu = rules.find((r) => r.alert === ALERT.highCpu)!;
    assert.ok(cpu.expr.includes(`pod=~"${service.deployment.name}-[a-z0-9]+-[a-z0-9]+"`));
    assert.match(rules.find((r) => r.alert === ALERT.autoscalerMaxedOut)!.expr, /horizontalpodautoscaler="fraud-detection-auto-hpa-/);
  });

  it('passes the prometheus-operator CRD schemas', () => {
    assertValidManifests(objects);
    assertValidManifests(build({ podMonitor: true, plainPrometheusFiles: true }).objects);
  });

  it('ships a Grafana dashboard for the sidecar, and plain Prometheus files', () => {
    const dashboard = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1')!;
    const json = JSON.parse(Object.values(dashboard.data!)[0]);
    const titles = json.panels.map((p: { title: string }) => p.title);
    for (const title of ['Requests per second', 'Server error ratio', 'Latency', 'Mean batch size', 'In flight and queued', 'Replicas', 'CPU against limit', 'Memory against limit', 'Error budget left (3 days)']) {
      assert.ok(titles.includes(title), title);
    }
    const files = monitoring.prometheusFiles();
    const scrape = YAML.parse(files['scrape-config.yaml']).scrape_configs[0];
    assert.equal(scrape.relabel_configs[0].regex, `${service.serviceName};http`);
    assert.deepEqual(YAML.parse(files['rules.yaml']).groups.length, 2);
  });

  it('turns a PodMonitor on, and the dashboard off', () => {
    const { objects: pod } = build({ podMonitor: true, dashboard: false });
    assert.equal(pod.filter((o) => o.kind === 'PodMonitor').length, 1);
    assert.equal(pod.filter((o) => o.kind === 'ServiceMonitor').length, 0);
    assert.equal(pod.filter((o) => o.kind === 'ConfigMap').length, 0);
    assert.ok(!build({}, false).monitoring.ruleGroups.flatMap((g) => g.rules).some((r) => r.alert === ALERT.autoscalerMaxedOut));
  });

  it('labels PodMonitor targets with the service the rules select on', () => {
    const { service: svc, objects: pod } = build({ podMonitor: true });
    const endpoint = pod.find((o) => o.kind === 'PodMonitor')!.spec.podMetricsEndpoints[0];
    assert.deepEqual(endpoint.relabelings, [{ action: 'replace', targetLabel: 'service', replacement: svc.serviceName }]);
  });

  it('matches whole-second bucket bounds as Prometheus 2 and 3 write them', () => {
    const latency = build({ latencyObjective: { thresholdSeconds: 1, percent: 99 } }).monitoring.ruleGroups[0].rules
      .find((r) => r.record === 'slo:sli_error:ratio_rate5m' && r.labels?.slo === 'latency')!;
    assert.match(latency.expr, /le=~"1\(\\\.0\)\?"/);
  });

  it('does not page ModelServiceDown while KEDA holds the service at zero', () => {
    const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
    const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('r/m:1') });
    const { ScalingSignal } = require('modelship') as typeof import('modelship');
    const autoscaler = new ModelAutoscaler(chart, 'auto', { service, minReplicas: 0, signal: ScalingSignal.inFlightRequestsWithKeda({ target: 2, prometheusAddress: 'http://p:9090' }) });
    const down = new ModelMonitoring(chart, 'm', { service, autoscaler }).ruleGroups[1].rules.find((r) => r.alert === ALERT.down)!;
    assert.match(down.expr, new RegExp(`and on \\(\\) \\(sum\\(kube_deployment_spec_replicas\\{namespace="risk",deployment="${service.deployment.name}"\\}\\) > 0\\)$`));
    assert.doesNotMatch(rules.find((r) => r.alert === ALERT.down)!.expr, /kube_deployment_spec_replicas/);
  });

  it('refuses objectives and thresholds that cannot work, naming them', () => {
    assert.throws(() => build({ latencyObjective: { thresholdSeconds: 0.3, percent: 99 } }), /'latencyObjective.thresholdSeconds' \(0.3\) must be a bucket boundary of modelship_inference_request_duration_seconds: one of .*0.25/);
    assert.throws(() => build({ availabilityObjective: 100 }), /'availabilityObjective' \(100\) must be a percentage between 0 and 100/);
    assert.throws(() => build({ cpuThreshold: 80 }), /'cpuThreshold' \(80\) must be a share between 0 and 1/);
    assert.throws(() => build({ alertFor: { ModelServiceDown: 'soon' } }), /'alertFor.ModelServiceDown' \('soon'\) must be a Prometheus duration/);
  });
});
