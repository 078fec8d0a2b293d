/**
 * ModelCanary on the Pulumi door: the same props give the same Flagger Canary and MetricTemplates, or Argo Rollouts
 * AnalysisTemplate, as the cdk8s construct, registered as the component's children, in the service's namespace
 * (an Output namespace too, queries included).
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as pulumi from '@pulumi/pulumi';
import { Chart, Testing } from 'cdk8s';
// Mocks first, then the component module, as Pulumi's testing guide requires.
import { kubernetesObjectsOf, registered } from './mocks';

type PulumiSide = typeof import('modelship/pulumi');
type CdkSide = typeof import('modelship');
let mp: PulumiSide;
let mc: CdkSide;

const CANARY_KINDS = ['Canary', 'MetricTemplate', 'AnalysisTemplate'];
const serviceProps = (side: CdkSide | PulumiSide) => ({
  model: side.ModelSource.fromUri('https://models.example.com/ocr/2/model.onnx', { sha256: 'a'.repeat(64) }), modelVersion: 2,
});

const variants: Array<[string, (side: CdkSide | PulumiSide) => Record<string, unknown>]> = [
  ['Flagger, default steps', () => ({ gateway: { name: 'public', namespace: 'gateways' }, hostnames: ['ocr.models.example.com'] })],
  ['Flagger, explicit weights and objectives', () => ({
    gateway: { name: 'public', sectionName: 'https' }, stepWeights: [1, 5, 25, 50], interval: '30s', maxFailedChecks: 3,
    availabilityObjective: 99.5, latencyObjective: { thresholdSeconds: 1, percent: 95 }, prometheusAddress: 'http://prometheus.monitoring.svc:9090',
  })],
  ['Argo Rollouts', (side) => ({ engine: side.CanaryEngine.ARGO_ROLLOUTS, interval: '2m' })],
];

describe('modelship/pulumi ModelCanary', () => {
  before(async () => {
    mp = await import('modelship/pulumi');
    mc = await import('modelship');
  });

  variants.forEach(([label, props]) => {
    it(`registers the objects the cdk8s construct synthesizes, each whole, as its children: ${label}`, async () => {
      // The Pulumi ModelService builds its chart under its own name: the cdk8s chart takes that id, so generated names agree.
      const chart = new Chart(Testing.app(), 'ocr', { namespace: 'vision' });
      const cdkService = new mc.ModelService(chart, 'ocr', serviceProps(mc));
      new mc.ModelCanary(chart, 'ocr-canary', { service: cdkService, ...props(mc) });
      const expected = (Testing.synth(chart) as any[]).filter((o) => CANARY_KINDS.includes(o.kind));
      assert.ok(expected.length > 0);

      const objects = await kubernetesObjectsOf(() => {
        const service = new mp.ModelService('ocr', { ...serviceProps(mp), namespace: 'vision' });
        return new mp.ModelCanary('ocr-canary', { service, ...props(mp) });
      });
      const canaryObjects = objects.filter((o) => CANARY_KINDS.includes(o.inputs.kind));
      const key = (o: any) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`;
      assert.deepEqual(canaryObjects.map((o) => key(o.inputs)).sort(), expected.map(key).sort());
      for (const object of expected) {
        const match = canaryObjects.find((o) => key(o.inputs) === key(object))!;
        assert.deepEqual(match.inputs, object, key(object));
        assert.equal(match.type, `kubernetes:${object.apiVersion}:${object.kind}`);
      }
      assert.deepEqual(registered.filter((r) => r.type === 'modelship:index:ModelCanary').map((c) => c.name), ['ocr-canary']);
    });
  });

  it('carries the service\'s namespace Output into the objects and the queries\' matchers', async () => {
    const namespace = pulumi.output(Promise.resolve('team-a'));
    const objects = await kubernetesObjectsOf(() => {
      const service = new mp.ModelService('late', { ...serviceProps(mp), namespace });
      return new mp.ModelCanary('late-canary', { service, gateway: { name: 'public' } });
    });
    const templates = objects.filter((o) => o.inputs.kind === 'MetricTemplate');
    assert.equal(templates.length, 2);
    for (const template of templates) {
      assert.equal(template.inputs.metadata.namespace, 'team-a');
      assert.match(template.inputs.spec.query, /namespace="team-a",service="late",model="late",version="2"/);
    }
    assert.ok(!JSON.stringify(objects).includes('placeholder'));
  });

  it('refuses what the cdk8s construct refuses, with its message', () => {
    const service = new mp.ModelService('bad', { ...serviceProps(mp), namespace: 'vision' });
    assert.throws(() => new mp.ModelCanary('bad-canary', { service, gateway: { name: 'public' }, stepWeight: 60, maxWeight: 50 }),
      /'stepWeight' \(60\) must be less than or equal to 'maxWeight' \(50\)/);
  });
});
