/**
 * ModelMonitoring's objects: what they select, which alerts exist with which labels and annotations, that every
 * metric a rule names is one the runtime exports, and that the objects pass the prometheus-operator schemas.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import * as YAML from 'yaml';
import { ALERT, ModelAutoscaler, ModelMonitoring, type ModelMonitoringProps, ModelService, type ModelServiceProps, ModelSource, ScalingSignal, ScrapeTls, SLO_WINDOWS } from 'modelship';
import { METRIC } from '@modelship/contract';
import { assertValidManifests } from '../helpers/k8s-schema';
import { MODELS, REPO_ROOT } from '../helpers/paths';
import { startPrometheus, waitFor, type ServerProcess } from '../helpers/prometheus';
import { startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

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

  it('splits the SLO ratios and burn-rate alerts per model version by default, under the same names; once per service with perVersion: false', () => {
    const ratios = (r: typeof rules) => r.filter((rule) => rule.record?.startsWith('slo:sli_error:'));
    const burns = (r: typeof rules) => r.filter((rule) => rule.alert === ALERT.errorBudgetBurn || rule.alert === ALERT.latencyBudgetBurn);
    assert.equal(ratios(rules).length, 2 * SLO_WINDOWS.length);
    for (const rule of ratios(rules)) {
      // Every sum of each ratio: a version's errors over that version's requests.
      const sums = rule.expr.match(/\bsum\b(?: by \([^)]*\))? ?\(/g) ?? [];
      assert.ok(sums.length >= 2 && sums.every((sum) => sum === 'sum by (model, version) ('), rule.expr);
    }
    for (const rule of burns(rules)) {
      for (const key of ['summary', 'description']) assert.match(rule.annotations![key], /model \{\{ \$labels\.model \}\} version \{\{ \$labels\.version \}\}/, `${rule.alert} ${key}`);
    }
    const serviceWide = build({ perVersion: false }).monitoring.ruleGroups.flatMap((g) => g.rules);
    assert.deepEqual(serviceWide.map((r) => r.record ?? r.alert), rules.map((r) => r.record ?? r.alert), 'the same rule and alert names, in the same order');
    for (const rule of ratios(serviceWide)) assert.doesNotMatch(rule.expr, /by \(|version/, rule.expr);
    for (const rule of burns(serviceWide)) assert.doesNotMatch(JSON.stringify(rule.annotations), /\$labels\.version/);
  });

  it('names only metrics the runtime exports, scoped to this service', () => {
    const names = new Set(rules.flatMap((r) => r.expr.match(/modelship_[a-z_]+/g) ?? []));
    const exported = new Set(Object.values(METRIC).flatMap((m) => [m, `${m}_bucket`, `${m}_count`, `${m}_sum`]));
    for (const name of names) assert.ok(exported.has(name), `${name} is exported by the runtime`);
    for (const rule of rules.filter((r) => /modelship_/.test(r.expr))) assert.ok(rule.expr.includes(`service="${service.serviceName}"`), rule.alert ?? rule.record);
    const cpu = rules.find((r) => r.alert === ALERT.highCpu)!;
    assert.ok(cpu.expr.includes(`pod=~"${service.deployment.name}-[a-z0-9]+-[a-z0-9]+"`));
    assert.ok(rules.find((r) => r.alert === ALERT.autoscalerMaxedOut)!.expr.includes(`scaletargetref_kind="Deployment",scaletargetref_name="${service.deployment.name}"`));
  });

  it('keeps explanations out of the SLO: no recording rule or alert reads the explanation series', () => {
    // Each explanation runs many perturbed inputs at a lower priority than inference: counted in the objectives, a
    // few explanations would burn the latency budget while every inference is fast.
    assert.ok([METRIC.explainRequests, METRIC.explainDuration].every((m) => m.startsWith('modelship_explain_')), 'the prefix names the explanation series');
    const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
    const explained = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('r/m:1', { profile: true }) });
    // Every group there can be: SLO, drift and alerts, with the autoscaler's alert.
    const all = new ModelMonitoring(chart, 'monitoring', { service: explained, autoscaler: new ModelAutoscaler(chart, 'auto', { service: explained }) });
    const allRules = all.ruleGroups.flatMap((g) => g.rules);
    assert.equal(all.ruleGroups.length, 3);
    assert.ok(allRules.some((r) => r.record) && allRules.some((r) => r.alert));
    for (const rule of allRules) assert.doesNotMatch(JSON.stringify(rule), /modelship_explain_/, rule.alert ?? rule.record);
    assert.doesNotMatch(all.rulesFile(), /modelship_explain_/);
  });

  it('passes the prometheus-operator CRD schemas', () => {
    assertValidManifests(objects);
    assertValidManifests(build({ podMonitor: true, plainPrometheusFiles: true }).objects);
  });

  it('ships a Grafana dashboard for the sidecar, and plain Prometheus files', () => {
    const dashboard = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1')!;
    const json = JSON.parse(Object.values(dashboard.data!)[0]);
    const titles = json.panels.map((p: { title: string }) => p.title);
    for (const title of ['Requests per second', 'Server error ratio', 'Latency', 'Mean batch size', 'In flight and queued', 'Replicas', 'CPU against limit', 'Memory against limit', 'Error budget left (3 days)', 'Explanations per second', 'Explanation latency']) {
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

  it('does not page ModelServiceDown while the Deployment is held at zero on purpose, whatever scales it', () => {
    const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
    const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('r/m:1') });
    const monitoring = new ModelMonitoring(chart, 'm', { service });
    new ModelAutoscaler(chart, 'auto', { service, minReplicas: 0, signal: ScalingSignal.inFlightRequestsWithKeda({ target: 2, prometheusAddress: 'http://p:9090', activation: { query: 'sum(queue_length)' } }) });
    const down = monitoring.ruleGroups[1].rules.find((r) => r.alert === ALERT.down)!;
    assert.match(down.expr, new RegExp(`unless on \\(\\) \\(sum\\(kube_deployment_spec_replicas\\{namespace="risk",deployment="${service.deployment.name}"\\}\\) == 0\\)$`));
  });

  it('refuses objectives and thresholds that cannot work, naming them', () => {
    assert.throws(() => build({ latencyObjective: { thresholdSeconds: 0.3, percent: 99 } }), /'latencyObjective.thresholdSeconds' \(0.3\) must be a bucket boundary of modelship_inference_request_duration_seconds: one of .*0.25/);
    assert.throws(() => build({ availabilityObjective: 100 }), /'availabilityObjective' \(100\) must be a percentage between 0 and 100/);
    // 14.4 × a 10% budget is 144% of requests: the page could never fire.
    assert.throws(() => build({ availabilityObjective: 90 }),
      /'availabilityObjective' \(90\) is too low for the burn-rate alerts: the 14.4× page \(1h and 5m windows\) fires when errors exceed 14.4 × the error budget, and at 90% that is 144% of requests, so it could never fire. Give an objective of at least 93.0556 \(an error budget under 6.94%\)/);
    assert.throws(() => build({ latencyObjective: { thresholdSeconds: 0.25, percent: 93 } }), /'latencyObjective.percent' \(93\) is too low for the burn-rate alerts: .* at least 93.0556/);
    // A fraction where a percentage belongs is told so.
    assert.throws(() => build({ availabilityObjective: 0.999 }), /'availabilityObjective' \(0.999\) is a percentage, not a fraction: write 99.9 for 99.9%/);
    assert.doesNotThrow(() => build({ availabilityObjective: 93.0556, latencyObjective: { thresholdSeconds: 0.25, percent: 93.0556 } }));
    assert.throws(() => build({ cpuThreshold: 80 }), /'cpuThreshold' \(80\) must be a share between 0 and 1/);
    assert.throws(() => build({ alertFor: { ModelServiceDown: 'soon' } }), /'alertFor.ModelServiceDown' \('soon'\) must be a Prometheus duration/);
  });
});

describe('ModelMonitoring finds the service\'s autoscaler', () => {
  type Synthesized = { objects: Manifest[]; monitoring: ModelMonitoring };
  /** The alert rules as synthesized into the PrometheusRule: what Prometheus gets. */
  const alertsOf = ({ objects }: Synthesized) => objects.find((o) => o.kind === 'PrometheusRule')!.spec.groups
    .flatMap((g: { rules: Array<{ alert?: string; expr: string }> }) => g.rules).filter((r: { alert?: string }) => r.alert);
  const maxedOut = (synthesized: Synthesized) => alertsOf(synthesized).find((r: { alert?: string }) => r.alert === ALERT.autoscalerMaxedOut);
  const smallest = (order: 'autoscaler first' | 'monitoring first', signal?: ScalingSignal) => {
    const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
    const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('r/m:1') });
    const autoscale = () => new ModelAutoscaler(chart, 'auto', { service, ...(signal ? { signal } : {}) });
    let monitoring: ModelMonitoring;
    if (order === 'autoscaler first') {
      autoscale();
      monitoring = new ModelMonitoring(chart, 'monitoring', { service });
    } else {
      monitoring = new ModelMonitoring(chart, 'monitoring', { service });
      autoscale();
    }
    return { monitoring, objects: Testing.synth(chart) as Manifest[] };
  };

  for (const order of ['autoscaler first', 'monitoring first'] as const) {
    it(`adds ${ALERT.autoscalerMaxedOut} for the HPA of the smallest program, ${order}`, () => {
      const synthesized = smallest(order);
      const target = synthesized.objects.find((o) => o.kind === 'HorizontalPodAutoscaler')!.spec.scaleTargetRef.name;
      assert.ok((maxedOut(synthesized)?.expr ?? '').includes(`scaletargetref_name="${target}"`), 'the HPA is found by the Deployment it scales');
      assert.deepEqual(YAML.parse(synthesized.monitoring.rulesFile()).groups, synthesized.objects.find((o) => o.kind === 'PrometheusRule')!.spec.groups);
    });
  }

  it('watches the HPA KEDA creates for a ScaledObject, by the Deployment both scale', () => {
    const synthesized = smallest('monitoring first', ScalingSignal.inFlightRequestsWithKeda({ target: 2, prometheusAddress: 'http://p:9090' }));
    const target = synthesized.objects.find((o) => o.kind === 'ScaledObject')!.spec.scaleTargetRef.name;
    assert.ok((maxedOut(synthesized)?.expr ?? '').includes(`scaletargetref_name="${target}"`));
  });

  it('watches an autoscaler that is not a ModelAutoscaler: a cdk8s-plus HorizontalPodAutoscaler on the Deployment', () => {
    const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
    const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('r/m:1') });
    const monitoring = new ModelMonitoring(chart, 'monitoring', { service });
    new kplus.HorizontalPodAutoscaler(chart, 'hpa', { target: service.deployment, maxReplicas: 5 });
    assert.ok(maxedOut({ objects: Testing.synth(chart) as Manifest[], monitoring }));
  });

  it('writes the found autoscaler into the plain Prometheus rules file too', () => {
    const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
    const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('r/m:1') });
    new ModelMonitoring(chart, 'monitoring', { service, plainPrometheusFiles: true, dashboard: false });
    new ModelAutoscaler(chart, 'auto', { service });
    const files = (Testing.synth(chart) as Manifest[]).find((o) => o.kind === 'ConfigMap' && o.data?.['rules.yaml'])!;
    assert.match(files.data!['rules.yaml'], new RegExp(ALERT.autoscalerMaxedOut));
  });

  it('keeps the explicit autoscaler prop working, and refuses the autoscaler of another service', () => {
    assert.ok(maxedOut({ objects: build().objects, monitoring: build().monitoring }));
    const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
    const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('r/m:1') });
    const other = new ModelService(chart, 'churn', { model: ModelSource.fromImage('r/m:1') });
    const autoscaler = new ModelAutoscaler(chart, 'churn-auto', { service: other });
    assert.throws(() => new ModelMonitoring(chart, 'monitoring', { service, autoscaler }),
      /'autoscaler' \(ModelAutoscaler 'fraud-detection\/churn-auto'\) scales ModelService 'fraud-detection\/churn', not 'fraud-detection\/fraud': pass the autoscaler of 'fraud-detection\/fraud', or leave 'autoscaler' out/);
  });

  it('adds no autoscaler alert to a service without one', () => {
    const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
    const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('r/m:1') });
    const monitoring = new ModelMonitoring(chart, 'monitoring', { service });
    assert.equal(maxedOut({ objects: Testing.synth(chart) as Manifest[], monitoring }), undefined);
  });
});

describe('the Grafana dashboard\'s identity', () => {
  /** The uid and ConfigMap key of each service's dashboard, by construct id, in one chart. */
  const dashboards = (chartId: string, ids: string[], namespace?: string) => {
    const chart = new Chart(Testing.app(), chartId, { namespace });
    for (const id of ids) new ModelMonitoring(chart, `${id}-monitoring`, { service: new ModelService(chart, id, { model: ModelSource.fromImage('r/m:1') }) });
    return (Testing.synth(chart) as Manifest[]).filter((o) => o.metadata.labels?.grafana_dashboard === '1')
      .map((o) => ({ key: Object.keys(o.data!)[0], uid: JSON.parse(Object.values(o.data!)[0]).uid as string }));
  };
  const GRAFANA_UID = /^[a-zA-Z0-9_-]{1,40}$/;

  it('gives services whose names share a long prefix different uids of at most 40 characters', () => {
    const [eu, us] = dashboards('recs', ['recommendation-service-frontend-ranker-eu', 'recommendation-service-frontend-ranker-us'], 'recs');
    assert.notEqual(eu.uid, us.uid);
    for (const { uid } of [eu, us]) {
      assert.match(uid, GRAFANA_UID);
      assert.match(uid, /^modelship-recommendation-/, 'the uid starts with whose dashboard it is');
    }
  });

  it('keeps the uid within 40 characters and unique for long names, and apart across namespaces', () => {
    const long = 'a-very-long-chart-name-that-goes-on-and-on-for-ever-and-ever';
    const ids = Array.from({ length: 20 }, (_, i) => `model-with-a-long-descriptive-name-${i}`);
    const uids = dashboards(long, ids, 'ml-platform-production').map((d) => d.uid);
    for (const uid of uids) assert.match(uid, GRAFANA_UID);
    assert.equal(new Set(uids).size, ids.length);
    // The same service name in two namespaces: two dashboards, and two files for the Grafana sidecar.
    const [a] = dashboards('fraud-detection', ['fraud'], 'team-a');
    const [b] = dashboards('fraud-detection', ['fraud'], 'team-b');
    assert.equal(new Set([a.uid, b.uid]).size, 2);
    assert.equal(new Set([a.key, b.key]).size, 2);
    assert.equal(a.key, `${a.uid}.json`);
    // Without a namespace the service's series, and so its dashboard, could not be told apart: refused.
    assert.throws(() => dashboards('fraud-detection', ['fraud']), /in a chart without a namespace[\s\S]*namespace: '<namespace>'/);
  });
});

/** A ModelService with TLS (and bearer tokens), the ModelMonitoring of `props` on it. */
function buildSecure(props: (chart: Chart) => Partial<ModelMonitoringProps> = () => ({}), serviceProps: (chart: Chart) => Partial<ModelServiceProps> = () => ({})) {
  const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
  const service = new ModelService(chart, 'fraud', {
    model: ModelSource.fromImage('r/m:1'),
    tlsSecret: kplus.Secret.fromSecretName(chart, 'Tls', 'fraud-tls'),
    authTokenSecret: kplus.Secret.fromSecretName(chart, 'Tokens', 'fraud-tokens'),
    ...serviceProps(chart),
  });
  const monitoring = new ModelMonitoring(chart, 'monitoring', { service, ...props(chart) });
  return { chart, service, monitoring, synth: () => Testing.synth(chart) as Manifest[] };
}

const endpointOf = (objects: Manifest[]) => {
  const monitor = objects.find((o) => o.kind === 'ServiceMonitor' || o.kind === 'PodMonitor')!;
  return monitor.kind === 'ServiceMonitor' ? monitor.spec.endpoints[0] : monitor.spec.podMetricsEndpoints[0];
};

describe('ModelMonitoring of a ModelService with TLS and tokens', () => {
  it('scrapes with https, trusting the ca.crt of the service\'s TLS Secret for the Service\'s DNS name', () => {
    const { service, synth } = buildSecure();
    const objects = synth();
    assert.deepEqual(endpointOf(objects), {
      port: 'http', path: '/metrics', interval: '30s', scheme: 'https',
      tlsConfig: { ca: { secret: { name: 'fraud-tls', key: 'ca.crt' } }, serverName: `${service.serviceName}.risk.svc` },
    });
    assertValidManifests(objects);
    const pod = buildSecure(() => ({ podMonitor: true })).synth();
    assert.deepEqual(endpointOf(pod).tlsConfig, endpointOf(objects).tlsConfig);
    assert.equal(endpointOf(pod).scheme, 'https');
    assertValidManifests(pod);
  });

  it('scrapes with plain http, and no tlsConfig, without tlsSecret', () => {
    const endpoint = endpointOf(build().objects);
    assert.equal(endpoint.scheme, undefined);
    assert.equal(endpoint.tlsConfig, undefined);
    assert.equal(endpoint.authorization, undefined);
    assert.equal(build().monitoring.scrapeConfig().scheme, undefined);
  });

  it('takes another CA, key and server name, or (asked for) no verification', () => {
    const fromConfigMap = buildSecure((chart) => ({ scrapeTls: ScrapeTls.fromCaConfigMap(kplus.ConfigMap.fromConfigMapName(chart, 'Bundle', 'trust-bundle'), { key: 'bundle.pem' }) })).synth();
    assert.deepEqual(endpointOf(fromConfigMap).tlsConfig.ca, { configMap: { name: 'trust-bundle', key: 'bundle.pem' } });
    assertValidManifests(fromConfigMap);
    const fromSecret = buildSecure((chart) => ({ scrapeTls: ScrapeTls.fromCaSecret(kplus.Secret.fromSecretName(chart, 'Ca', 'issuer-ca'), { serverName: 'fraud.example.internal' }), podMonitor: true })).synth();
    assert.deepEqual(endpointOf(fromSecret).tlsConfig, { ca: { secret: { name: 'issuer-ca', key: 'ca.crt' } }, serverName: 'fraud.example.internal' });
    assertValidManifests(fromSecret);
    const pinned = buildSecure(() => ({ scrapeTls: ScrapeTls.fromServiceSecret({ caKey: 'tls.crt' }) })).synth();
    assert.deepEqual(endpointOf(pinned).tlsConfig.ca, { secret: { name: 'fraud-tls', key: 'tls.crt' } });
    const insecure = buildSecure(() => ({ scrapeTls: ScrapeTls.insecureSkipVerify() })).synth();
    assert.deepEqual(endpointOf(insecure).tlsConfig, { insecureSkipVerify: true });
    assertValidManifests(insecure);
  });

  it('refuses a scrapeTls without TLS, and keys that cannot be Secret keys', () => {
    assert.throws(() => build({ scrapeTls: ScrapeTls.fromServiceSecret() }), /'scrapeTls' needs a ModelService with 'tlsSecret'/);
    assert.throws(() => ScrapeTls.fromServiceSecret({ caKey: 'a/b' }), /'caKey' \('a\/b'\) must be a Secret or ConfigMap key/);
    assert.throws(() => build({ scrapeTokenKey: 'token' }), /'scrapeTokenKey' \('token'\) needs 'scrapeTokenSecret'/);
  });

  it('sends the bearer token of scrapeTokenSecret, on both monitor kinds', () => {
    for (const podMonitor of [false, true]) {
      const objects = buildSecure((chart) => ({ podMonitor, scrapeTokenSecret: kplus.Secret.fromSecretName(chart, 'Scrape', 'fraud-tokens'), scrapeTokenKey: 'prometheus' })).synth();
      assert.deepEqual(endpointOf(objects).authorization, { type: 'Bearer', credentials: { name: 'fraud-tokens', key: 'prometheus' } });
      assertValidManifests(objects);
    }
    const { objects } = build({ scrapeTokenSecret: kplus.Secret.fromSecretName(new Chart(Testing.app(), 'x'), 'S', 'scrape') });
    assert.deepEqual(endpointOf(objects).authorization, { type: 'Bearer', credentials: { name: 'scrape', key: 'token' } });
  });

  it('fails synth when the runtime\'s environment closes /metrics and no scrape token is set', () => {
    const closed = buildSecure();
    closed.service.deployment.containers[0].env.addVariable('MODELSHIP_AUTH_EXEMPT', kplus.EnvValue.fromValue('health'));
    assert.throws(() => closed.synth(), /monitoring[\s\S]*\/metrics needs a bearer token \(--auth-exempt is not health-and-metrics\), but 'scrapeTokenSecret' is not set/);
    const withToken = buildSecure((chart) => ({ scrapeTokenSecret: kplus.Secret.fromSecretName(chart, 'Scrape', 'scrape') }));
    withToken.service.deployment.containers[0].env.addVariable('MODELSHIP_AUTH_EXEMPT', kplus.EnvValue.fromValue('none'));
    assert.doesNotThrow(() => withToken.synth());
    // Without a token file there is nothing to close, whatever --auth-exempt says.
    const noAuth = build();
    noAuth.service.deployment.containers[0].env.addVariable('MODELSHIP_AUTH_EXEMPT', kplus.EnvValue.fromValue('health'));
    assert.doesNotThrow(() => Testing.synth(Chart.of(noAuth.service)));
    assert.doesNotThrow(() => buildSecure().synth(), 'ModelService leaves /metrics open');
  });

  it('writes the plain scrape config with https, the CA and token as mounted files', () => {
    const { service, monitoring } = buildSecure((chart) => ({ scrapeTokenSecret: kplus.Secret.fromSecretName(chart, 'Scrape', 'fraud-scrape') }));
    const job = YAML.parse(monitoring.prometheusFiles()['scrape-config.yaml']).scrape_configs[0];
    assert.equal(job.scheme, 'https');
    assert.deepEqual(job.tls_config, { ca_file: '/etc/prometheus/secrets/fraud-tls/ca.crt', server_name: `${service.serviceName}.risk.svc` });
    assert.deepEqual(job.authorization, { type: 'Bearer', credentials_file: '/etc/prometheus/secrets/fraud-scrape/token' });
    const custom = buildSecure((chart) => ({ scrapeTls: ScrapeTls.fromCaConfigMap(kplus.ConfigMap.fromConfigMapName(chart, 'B', 'bundle')) })).monitoring.scrapeConfig({ configMapsDirectory: '/cm' });
    assert.deepEqual(custom.tls_config, { ca_file: '/cm/bundle/ca.crt', server_name: `${service.serviceName}.risk.svc` });
  });
});

/**
 * The generated plain scrape job on a real Prometheus against the real runtime serving TLS with `--auth-exempt
 * health`: the certificate names only the Service's DNS name (no IP), so the scrape of 127.0.0.1 verifies only
 * through `server_name`, and /metrics answers only with the token. The same job without the token, and with
 * another server name, must fail, so the test can fail.
 */
describe('the TLS and token scrape config on a real Prometheus and runtime', () => {
  const dir = mkdtempSync(join(tmpdir(), 'modelship-scrape-tls-'));
  const { service, monitoring } = buildSecure((chart) => ({ scrapeTokenSecret: kplus.Secret.fromSecretName(chart, 'Scrape', 'fraud-scrape'), scrapeInterval: '1s' }));
  const serverName = `${service.serviceName}.risk.svc`;
  let runtime: RuntimeProcess | undefined;
  let prometheus: ServerProcess | undefined;

  before(async () => {
    const secrets = join(dir, 'secrets');
    const openssl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
    const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
    openssl(['req', '-x509', ...ec, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '1', '-subj', '/CN=modelship scrape test ca']);
    openssl(['req', ...ec, '-keyout', 'tls.key', '-out', 'tls.csr', '-subj', `/CN=${serverName}`, '-addext', `subjectAltName=DNS:${serverName}`]);
    openssl(['x509', '-req', '-in', 'tls.csr', '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '1', '-copy_extensions', 'copy', '-out', 'tls.crt']);
    // The Secrets as Prometheus would mount them: <secrets>/<name>/<key>.
    mkdirSync(join(secrets, 'fraud-tls'), { recursive: true });
    mkdirSync(join(secrets, 'fraud-scrape'));
    writeFileSync(join(secrets, 'fraud-tls', 'ca.crt'), readFileSync(join(dir, 'ca.crt')));
    writeFileSync(join(secrets, 'fraud-scrape', 'token'), 'prometheus-token');
    writeFileSync(join(dir, 'tokens'), '# clients\nclient-token\nprometheus-token\n');
    runtime = await startRuntime(['--model', `my_model=${MODELS.linearRegression}`, '--no-warmup',
      '--tls-cert-file', join(dir, 'tls.crt'), '--tls-key-file', join(dir, 'tls.key'),
      '--auth-token-file', join(dir, 'tokens'), '--auth-exempt', 'health'], { waitReady: false, timeoutMs: 20_000 });
    const { kubernetes_sd_configs: _sd, relabel_configs: _relabel, ...job } = monitoring.scrapeConfig({ secretsDirectory: secrets });
    const target = { targets: [new URL(runtime.url).host] };
    const { authorization: _token, ...withoutToken } = job;
    prometheus = await startPrometheus({
      config: {
        global: { scrape_interval: '1s' },
        scrape_configs: [
          { ...job, job_name: 'generated', static_configs: [target] },
          { ...withoutToken, job_name: 'no-token', static_configs: [target] },
          { ...job, job_name: 'other-name', static_configs: [target], tls_config: { ...(job.tls_config as object), server_name: 'other.risk.svc' } },
        ],
      },
    });
  }, { timeout: 60_000 });

  after(async () => {
    await prometheus?.stop();
    await runtime?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('scrapes /metrics over verified TLS with the token; without either it fails', async () => {
    type Target = { scrapePool: string; health: string; lastError: string };
    const targets = async () => ((await (await fetch(`${prometheus!.url}/api/v1/targets`)).json()) as { data: { activeTargets: Target[] } }).data.activeTargets;
    await waitFor('every job to have scraped once', async () => ((await targets()).filter((t) => t.health !== 'unknown').length === 3 ? true : undefined), 20_000);
    // A first scrape may race the runtime's start: a few more seconds for the generated job, then its last error.
    await waitFor('the generated job to be up', async () => ((await targets()).some((t) => t.scrapePool === 'generated' && t.health === 'up') ? true : undefined), 10_000).catch(() => undefined);
    const byJob = Object.fromEntries((await targets()).map((t) => [t.scrapePool, t]));
    assert.equal(byJob.generated.health, 'up', byJob.generated.lastError);
    assert.equal(byJob['no-token'].health, 'down');
    assert.match(byJob['no-token'].lastError, /401/);
    assert.equal(byJob['other-name'].health, 'down');
    assert.match(byJob['other-name'].lastError, /certificate|x509/i);
  });
});

describe('ModelMonitoring drift', () => {
  const withSource = (model: ModelSource, props: Partial<ModelMonitoringProps> = {}) => {
    const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
    const service = new ModelService(chart, 'fraud', { model });
    const monitoring = new ModelMonitoring(chart, 'monitoring', { service, ...props });
    return { service, monitoring, objects: Testing.synth(chart) as Manifest[], rules: monitoring.ruleGroups.flatMap((g) => g.rules) };
  };
  const driftRules = (rules: Array<{ record?: string; alert?: string }>) => rules.filter((r) => r.record?.startsWith('modelship:drift') || r.alert?.endsWith('Drift'));

  it('is on by default when the source has a profile, off without one', () => {
    const on = withSource(ModelSource.fromImage('r/m:1', { profile: true }));
    assert.equal(on.service.hasDriftProfile, true);
    assert.deepEqual(driftRules(on.rules).map((r) => r.record ?? r.alert), ['modelship:drift_bin_share:1h', 'modelship:drift_psi:1h', ALERT.inputDrift]);
    const off = withSource(ModelSource.fromImage('r/m:1'));
    assert.equal(off.service.hasDriftProfile, false);
    assert.deepEqual(driftRules(off.rules), []);
    assert.deepEqual(driftRules(withSource(ModelSource.fromImage('r/m:1', { profile: true }), { drift: { enabled: false } }).rules), []);
    assert.equal(driftRules(withSource(ModelSource.fromImage('r/m:1'), { drift: { enabled: true } }).rules).length, 3);
  });

  it('records the PSI per feature, matching bins on every label, and alerts with the threshold, window and for given', () => {
    const { rules, objects } = withSource(ModelSource.fromImage('r/m:1', { profile: true }), { drift: { threshold: 0.1, window: '6h', for: '1h' } });
    const share = rules.find((r) => r.record === 'modelship:drift_bin_share:6h')!;
    const record = rules.find((r) => r.record === 'modelship:drift_psi:6h')!;
    assert.ok(share && record, 'the records name their window');
    assert.match(share.expr, new RegExp(`increase\\(${METRIC.driftBins}\\{namespace="risk",service="[^"]+"\\}\\[6h\\]\\)`));
    assert.match(share.expr, /^clamp_min\(.*, 0\.0001\)$/);
    assert.match(record.expr, new RegExp(`${METRIC.driftReferenceRatio}\\{namespace="risk"`));
    assert.match(record.expr, /modelship:drift_bin_share:6h\{namespace="risk"/);
    assert.match(record.expr, /clamp_min\(.*0\.0001\)/);
    assert.match(record.expr, /^sum by \(namespace, service, model, version, tensor, feature\) /);
    const input = rules.find((r) => r.alert === ALERT.inputDrift)!;
    assert.match(input.expr, /^modelship:drift_psi:6h\{namespace="risk",service="[^"]+"\} > 0\.1$/);
    assert.equal(input.for, '1h');
    assert.equal(input.labels!.severity, 'warning');
    assert.match(input.annotations!.runbook_url, /\/ModelServiceInputDrift\.md$/);
    const dashboard = JSON.parse(Object.values(objects.find((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1')!.data!)[0]);
    const panel = dashboard.panels.find((p: any) => p.title.startsWith('Drift'));
    assert.equal(panel.targets[0].expr.startsWith('modelship:drift_psi:6h{'), true);
    // Below the six rows of half-width panels (inference, resources, error budget, explanations).
    assert.deepEqual(panel.gridPos, { h: 8, w: 24, x: 0, y: 48 });
  });

  it('splits inputs from outputs by the signature of a local model', () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelship-drift-'));
    try {
      const profile = join(dir, 'profile.json');
      const feature = { index: 0, edges: [1, 2, 3, 4, 5, 6, 7, 8, 9], ratios: Array(10).fill(0.1) };
      writeFileSync(profile, JSON.stringify({ format: 'modelship.drift-profile/v1', rows: 10, tensors: [{ name: 'x', kind: 'input', features: [feature] }, { name: 'y', kind: 'output', features: [feature] }] }));
      const { rules } = withSource(ModelSource.fromFile(MODELS.mlp, { profile }));
      assert.match(rules.find((r) => r.alert === ALERT.inputDrift)!.expr, /tensor=~"x"\} > 0\.25$/);
      assert.match(rules.find((r) => r.alert === ALERT.predictionDrift)!.expr, /tensor=~"y"\} > 0\.25$/);
      for (const name of [ALERT.inputDrift, ALERT.predictionDrift]) assert.ok(existsSync(join(REPO_ROOT, 'docs', 'runbooks', `${name}.md`)), `a runbook for ${name}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses options that would do nothing or contradict, quoting the prop, the value and the fix', () => {
    const image = (profile: boolean) => ModelSource.fromImage('r/m:1', { profile });
    assert.throws(() => withSource(image(false), { drift: { threshold: 0.1 } }),
      /'drift\.threshold' \(0\.1\) has no effect: drift is off because the service's model source has no drift profile; give the source a profile .* or set 'drift\.enabled: true'/);
    assert.throws(() => withSource(image(true), { drift: { threshold: 0 } }), /'drift\.threshold' \(0\) must be a PSI above 0/);
    assert.throws(() => withSource(image(true), { drift: { window: '1 hour' } }), /'drift\.window' \('1 hour'\) must be a Prometheus duration such as '1h'/);
    assert.throws(() => withSource(image(true), { drift: { for: '30 min' } }), /'drift\.for' \('30 min'\) must be a Prometheus duration/);
    assert.throws(() => withSource(image(true), { drift: { for: '1h' }, alertFor: { ModelServiceInputDrift: '2h' } }),
      /'drift\.for' \('1h'\) and 'alertFor\.ModelServiceInputDrift' \('2h'\) both set how long drift must last; remove one of them/);
    assert.equal(withSource(image(true), { alertFor: { ModelServiceInputDrift: '2h' } }).rules.find((r) => r.alert === ALERT.inputDrift)!.for, '2h');
  });

  it('passes the prometheus-operator schemas with drift on', () => {
    assertValidManifests(withSource(ModelSource.fromImage('r/m:1', { profile: true })).objects);
  });
});
