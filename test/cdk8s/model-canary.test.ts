/**
 * ModelCanary: Flagger's Canary and MetricTemplates (the default) or Argo Rollouts' AnalysisTemplate, checked in the
 * fields those controllers read (targetRef, gatewayRefs, weights, threshold, thresholdRange, successCondition,
 * failureLimit), with queries equal to ModelMonitoring's SLO expressions for the canary's version, against the
 * vendored Flagger and Argo Rollouts CRDs; the props it refuses, with messages that name the prop, the value and the fix.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import {
  CanaryEngine, DEFAULT_PROMETHEUS_ADDRESS, ModelAutoscaler, ModelCanary, type ModelCanaryProps, ModelService, ModelSource, PER_VERSION_LABELS, ScalingSignal,
} from 'modelship';
import { availabilitySlo, latencySlo } from '../../lib/cdk8s/rules/slo';
import { assertValidManifests, validateManifest } from '../helpers/k8s-schema';

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec: any };

const gateway = { name: 'public', namespace: 'gateways' };

/** Version 2 of the OCR model, rolled out by a canary in namespace `vision`; returns the canary's objects. */
function canaried(props: Partial<ModelCanaryProps> = {}) {
  const chart = new Chart(Testing.app(), 'vision', { namespace: 'vision' });
  const service = new ModelService(chart, 'ocr', { model: ModelSource.fromUri('https://models.example.com/ocr/2/model.onnx', { sha256: 'a'.repeat(64) }), modelVersion: 2 });
  const canary = new ModelCanary(chart, 'ocr-canary', { service, gateway, hostnames: ['ocr.models.example.com'], ...props });
  const objects = (Testing.synth(chart) as Manifest[]).filter((o) => ['Canary', 'MetricTemplate', 'AnalysisTemplate'].includes(o.kind));
  const ofKind = (kind: string) => objects.filter((o) => o.kind === kind);
  return { chart, service, canary, objects, ofKind };
}

/** The SLO expressions ModelMonitoring records, for the service's series of one model version, over `window`. */
function sloGoodRatios(service: ModelService, version: string, window: string, objectives = { availability: 99.9, latency: { thresholdSeconds: 0.25, percent: 99 } }) {
  const selector = { ...service.seriesSelector, labels: { model: service.modelName, version } };
  return {
    successRate: `1 - (${availabilitySlo(selector, objectives.availability, PER_VERSION_LABELS).errorRatio(window)})`,
    latency: `1 - (${latencySlo(selector, objectives.latency.percent, objectives.latency.thresholdSeconds, PER_VERSION_LABELS).errorRatio(window)})`,
  };
}

describe('ModelCanary with Flagger (the default)', () => {
  it('targets the ModelService\'s Deployment through the Gateway API provider, on the http port, attached to the Gateway', () => {
    const { service, ofKind } = canaried();
    const [canary] = ofKind('Canary');
    assert.equal(canary.apiVersion, 'flagger.app/v1beta1');
    assert.equal(canary.metadata.name, 'ocr-canary');
    assert.equal(canary.metadata.namespace, 'vision');
    assert.equal(canary.spec.provider, 'gatewayapi:v1');
    assert.deepEqual(canary.spec.targetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: service.deployment.name });
    assert.deepEqual(canary.spec.service.gatewayRefs, [{ name: 'public', namespace: 'gateways' }]);
    assert.deepEqual(canary.spec.service.hosts, ['ocr.models.example.com']);
    assert.equal(canary.spec.service.name, 'ocr-canary');
    assert.equal(canary.spec.service.port, 8080);
    assert.equal(canary.spec.service.portName, 'http');
    // The primary Service carries the ModelService's labels, so the ServiceMonitor scrapes stable's pods as well.
    assert.deepEqual(canary.spec.service.primary, { labels: { ...service.labels } });
  });

  it('steps 10 percent at a time up to 50, one check a minute, rolling back at the fifth failed check', () => {
    const [canary] = canaried().ofKind('Canary');
    assert.equal(canary.spec.analysis.interval, '1m');
    assert.equal(canary.spec.analysis.threshold, 5);
    assert.equal(canary.spec.analysis.stepWeight, 10);
    assert.equal(canary.spec.analysis.maxWeight, 50);
    assert.equal(canary.spec.analysis.stepWeights, undefined);
  });

  it('writes explicit step weights, interval and failure threshold where Flagger reads them', () => {
    const [canary] = canaried({ stepWeights: [1, 5, 25, 50, 80], interval: '30s', maxFailedChecks: 2 }).ofKind('Canary');
    assert.deepEqual(canary.spec.analysis.stepWeights, [1, 5, 25, 50, 80]);
    assert.equal(canary.spec.analysis.stepWeight, undefined);
    assert.equal(canary.spec.analysis.maxWeight, undefined);
    assert.equal(canary.spec.analysis.interval, '30s');
    assert.equal(canary.spec.analysis.threshold, 2);
    assert.deepEqual(canary.spec.analysis.metrics.map((m: any) => m.interval), ['30s', '30s']);
  });

  it('queries ModelMonitoring\'s SLO expressions for the canary\'s model and version, over Flagger\'s interval', () => {
    const { service, ofKind } = canaried();
    const templates = ofKind('MetricTemplate');
    const expected = sloGoodRatios(service, '2', '{{ interval }}');
    assert.deepEqual(templates.map((t) => [t.metadata.name, t.spec.query]), [
      ['ocr-canary-success-rate', expected.successRate],
      ['ocr-canary-latency', expected.latency],
    ]);
    for (const template of templates) {
      assert.equal(template.apiVersion, 'flagger.app/v1beta1');
      assert.deepEqual(template.spec.provider, { type: 'prometheus', address: DEFAULT_PROMETHEUS_ADDRESS });
      assert.match(template.spec.query, /service="ocr",model="ocr",version="2"/);
      // Flagger renders the query as a Go template: `{{ interval }}` must be the only action in it.
      const actions: string[] = template.spec.query.match(/\{\{.*?\}\}/g) ?? [];
      assert.ok(actions.length > 0 && actions.every((a) => a === '{{ interval }}'), actions.join(' '));
    }
  });

  it('accepts the canary when each share of good requests is at least its objective', () => {
    const { ofKind } = canaried();
    const [canary] = ofKind('Canary');
    assert.deepEqual(canary.spec.analysis.metrics, [
      { name: 'success-rate', templateRef: { name: 'ocr-canary-success-rate' }, thresholdRange: { min: 0.999 }, interval: '1m' },
      { name: 'latency', templateRef: { name: 'ocr-canary-latency' }, thresholdRange: { min: 0.99 }, interval: '1m' },
    ]);
  });

  it('takes the objectives and the Prometheus address from its props', () => {
    const props = { availabilityObjective: 99.5, latencyObjective: { thresholdSeconds: 1, percent: 95 }, prometheusAddress: 'http://prometheus.monitoring.svc:9090' };
    const { service, ofKind } = canaried(props);
    const expected = sloGoodRatios(service, '2', '{{ interval }}', { availability: 99.5, latency: { thresholdSeconds: 1, percent: 95 } });
    assert.deepEqual(ofKind('MetricTemplate').map((t) => t.spec.query), [expected.successRate, expected.latency]);
    assert.deepEqual(ofKind('MetricTemplate').map((t) => t.spec.provider.address), [props.prometheusAddress, props.prometheusAddress]);
    assert.deepEqual(ofKind('Canary')[0].spec.analysis.metrics.map((m: any) => m.thresholdRange), [{ min: 0.995 }, { min: 0.95 }]);
  });

  it('names the service\'s HPA as autoscalerRef, whether the autoscaler comes before or after the canary', () => {
    for (const order of ['before', 'after'] as const) {
      const chart = new Chart(Testing.app(), 'vision', { namespace: 'vision' });
      const service = new ModelService(chart, 'ocr', { model: ModelSource.fromUri('https://models.example.com/ocr/2/model.onnx', { sha256: 'a'.repeat(64) }), modelVersion: 2 });
      const scale = () => new ModelAutoscaler(chart, 'ocr-autoscaler', { service, minReplicas: 2, maxReplicas: 6 });
      const autoscaler = order === 'before' ? scale() : undefined;
      new ModelCanary(chart, 'ocr-canary', { service, gateway });
      const hpa = (autoscaler ?? scale()).hpa!;
      const canary = (Testing.synth(chart) as Manifest[]).find((o) => o.kind === 'Canary')!;
      assert.deepEqual(canary.spec.autoscalerRef, { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', name: hpa.name }, order);
    }
    assert.equal(canaried().ofKind('Canary')[0].spec.autoscalerRef, undefined);
  });

  it('refuses at synth a KEDA autoscaler, whose primary copy needs queries it does not write', () => {
    const chart = new Chart(Testing.app(), 'vision', { namespace: 'vision' });
    const service = new ModelService(chart, 'ocr', { model: ModelSource.fromUri('https://models.example.com/ocr/2/model.onnx', { sha256: 'a'.repeat(64) }), modelVersion: 2 });
    new ModelCanary(chart, 'ocr-canary', { service, gateway });
    new ModelAutoscaler(chart, 'ocr-autoscaler', { service, minReplicas: 1, maxReplicas: 6, signal: ScalingSignal.inFlightRequestsWithKeda({ target: 4, prometheusAddress: DEFAULT_PROMETHEUS_ADDRESS }) });
    assert.throws(() => Testing.synth(chart), /ModelService 'vision\/ocr' is scaled by a KEDA ScaledObject.*use engine: CanaryEngine.ARGO_ROLLOUTS/);
  });

  it('emits no route of its own: Flagger creates the HTTPRoute and the Services', () => {
    const { chart } = canaried();
    const kinds = (Testing.synth(chart) as Manifest[]).map((o) => o.kind);
    assert.ok(!kinds.includes('HTTPRoute') && !kinds.includes('GRPCRoute'), kinds.join(', '));
  });

  it('validates against the vendored Flagger v1.44.0 CRDs', () => {
    assertValidManifests(canaried().objects);
    assertValidManifests(canaried({ stepWeights: [5, 50], gateway: { name: 'g', sectionName: 'https' }, hostnames: undefined }).objects);
    const chart = new Chart(Testing.app(), 'vision', { namespace: 'vision' });
    const service = new ModelService(chart, 'ocr', { model: ModelSource.fromUri('https://models.example.com/ocr/2/model.onnx', { sha256: 'a'.repeat(64) }), modelVersion: 2 });
    new ModelAutoscaler(chart, 'ocr-autoscaler', { service, minReplicas: 2, maxReplicas: 6 });
    new ModelCanary(chart, 'ocr-canary', { service, gateway });
    assertValidManifests((Testing.synth(chart) as Manifest[]).filter((o) => o.kind === 'Canary'));
  });
});

describe('ModelCanary with Argo Rollouts', () => {
  const argo = (props: Partial<ModelCanaryProps> = {}) => canaried({ engine: CanaryEngine.ARGO_ROLLOUTS, gateway: undefined, hostnames: undefined, ...props });

  it('writes one AnalysisTemplate with the same two checks over the analysis interval, and nothing for Flagger', () => {
    const { service, objects } = argo();
    assert.deepEqual(objects.map((o) => o.kind), ['AnalysisTemplate']);
    const [template] = objects;
    assert.equal(template.apiVersion, 'argoproj.io/v1alpha1');
    assert.equal(template.metadata.name, 'ocr-canary');
    const expected = sloGoodRatios(service, '2', '1m');
    assert.deepEqual(template.spec.metrics, [
      { name: 'success-rate', interval: '1m', successCondition: 'result[0] >= 0.999', failureLimit: 4, provider: { prometheus: { address: DEFAULT_PROMETHEUS_ADDRESS, query: expected.successRate } } },
      { name: 'latency', interval: '1m', successCondition: 'result[0] >= 0.99', failureLimit: 4, provider: { prometheus: { address: DEFAULT_PROMETHEUS_ADDRESS, query: expected.latency } } },
    ]);
  });

  it('reads the interval and failure threshold into each metric', () => {
    const [template] = argo({ interval: '2m', maxFailedChecks: 1 }).objects;
    assert.deepEqual(template.spec.metrics.map((m: any) => [m.interval, m.failureLimit]), [['2m', 0], ['2m', 0]]);
    assert.match(template.spec.metrics[0].provider.prometheus.query, /\[2m\]/);
  });

  it('validates against the vendored Argo Rollouts v1.9.1 CRD', () => {
    assertValidManifests(argo().objects);
  });

  it('refuses the Flagger-only props, naming them', () => {
    assert.throws(() => argo({ gateway, stepWeight: 5 }), /^Error: 'gateway', 'stepWeight' are for Flagger; with CanaryEngine.ARGO_ROLLOUTS the Rollout's own canary 'steps'.*remove them$/);
  });
});

describe('ModelCanary refuses', () => {
  const cases: Array<[string, Partial<ModelCanaryProps>, RegExp]> = [
    ['no gateway with Flagger', { gateway: undefined }, /'gateway' is missing: Flagger attaches the HTTPRoute.*CanaryEngine.ARGO_ROLLOUTS/],
    ['a step above the maximum', { stepWeight: 60, maxWeight: 50 }, /'stepWeight' \(60\) must be less than or equal to 'maxWeight' \(50\)/],
    ['a maximum above 100', { maxWeight: 120 }, /'maxWeight' \(120\) must be a whole percentage from 1 to 100/],
    ['a fractional step', { stepWeight: 2.5 }, /'stepWeight' \(2.5\) must be a whole percentage/],
    ['weights that do not increase', { stepWeights: [10, 5] }, /'stepWeights' \(\[10, 5\]\) must increase: entry 1 \(5\) is not above the one before \(10\)/],
    ['explicit weights with a step', { stepWeights: [10, 20], stepWeight: 5 }, /'stepWeights' \(\[10, 20\]\) replaces 'stepWeight' and 'maxWeight'/],
    ['no weights', { stepWeights: [] }, /'stepWeights' is empty/],
    ['an interval Prometheus cannot read', { interval: '1 minute' }, /'interval' \('1 minute'\) must be a duration such as '30s'/],
    ['zero failed checks', { maxFailedChecks: 0 }, /'maxFailedChecks' \(0\)/],
    ['a Prometheus address that is not a URL', { prometheusAddress: 'prometheus:9090' }, /'prometheusAddress' \('prometheus:9090'\) must be an http\(s\) URL/],
    ['a latency threshold between buckets', { latencyObjective: { thresholdSeconds: 0.3, percent: 99 } }, /'latencyObjective.thresholdSeconds' \(0.3\) must be a bucket boundary/],
    ['an availability objective given as a fraction', { availabilityObjective: 0.999 }, /'availabilityObjective' \(0.999\) is a percentage, not a fraction/],
    ['a gateway name that is not a Kubernetes name', { gateway: { name: 'Public' } }, /'gateway.name' \('Public'\) must be a Kubernetes name/],
    ['a name that is not a DNS label', { name: 'OCR' }, /'name'/],
    ['the ModelService\'s own Service name, which Flagger would take over', { name: 'ocr' }, /the canary's name \('ocr'\) makes Flagger create the Services 'ocr', 'ocr-primary', 'ocr-canary', and the ModelService's Service is 'ocr', which Flagger would take over.*e\.g\. 'ocr-rollout'/],
  ];
  for (const [what, props, message] of cases) {
    it(what, () => assert.throws(() => canaried(props), message));
  }

  it('a service whose model source brings several versions', () => {
    const chart = new Chart(Testing.app(), 'vision', { namespace: 'vision' });
    const service = new ModelService(chart, 'ocr', { model: ModelSource.fromImage('registry/ocr:2') });
    assert.throws(() => new ModelCanary(chart, 'ocr-canary', { service, gateway }), /'service' ModelService 'vision\/ocr' serves the version directories its model source holds/);
  });

  it('a chart without a namespace, whose series could not be told apart', () => {
    const chart = new Chart(Testing.app(), 'vision');
    const service = new ModelService(chart, 'ocr', { model: ModelSource.fromUri('https://models.example.com/ocr/2/model.onnx', { sha256: 'a'.repeat(64) }), modelVersion: 2 });
    assert.throws(() => new ModelCanary(chart, 'ocr-canary', { service, gateway }), /ModelService 'vision\/ocr' is in a chart without a namespace/);
  });
});

describe('the vendored Flagger and Argo Rollouts schemas', () => {
  // The schema checks must be able to fail: the fields ModelCanary sets, misspelt or of the wrong type.
  const edit = (object: Manifest, change: (spec: any) => void) => {
    const copy = structuredClone(object);
    change(copy.spec);
    return validateManifest(copy);
  };

  it('reject an unknown provider, a misspelt analysis field, a threshold range of the wrong type', () => {
    const [canary] = canaried().ofKind('Canary');
    assert.ok(edit(canary, (s) => { s.provider = 'gatewayapi:v2'; }).some((p) => p.startsWith('spec.provider:')));
    assert.deepEqual(edit(canary, (s) => { s.analysis.stepWieght = 10; }), ['spec.analysis.stepWieght: unknown field (did you mean "stepWeight"?)']);
    assert.ok(edit(canary, (s) => { s.analysis.metrics[0].thresholdRange.min = '0.999'; }).some((p) => p.startsWith('spec.analysis.metrics[0].thresholdRange.min:')));
    const [template] = canaried().ofKind('MetricTemplate');
    assert.ok(edit(template, (s) => { s.provider.type = 'prom'; }).some((p) => p.startsWith('spec.provider.type:')));
  });

  it('reject an AnalysisTemplate metric without a provider', () => {
    const [template] = canaried({ engine: CanaryEngine.ARGO_ROLLOUTS, gateway: undefined, hostnames: undefined }).objects;
    assert.ok(edit(template, (s) => { delete s.metrics[0].provider; }).some((p) => p.includes('metrics[0].provider: missing required field')));
  });
});
