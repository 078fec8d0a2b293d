/**
 * ModelMonitoring's `shadow` on the Pulumi door: the same PrometheusRule as the cdk8s construct, whichever of the
 * two services is created first, and a refusal when the primary's namespace is an Output the rules cannot name.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as pulumi from '@pulumi/pulumi';
import { Chart, Testing } from 'cdk8s';
import { MODELS } from '../helpers/paths';
// Mocks first, then the component module, as Pulumi's testing guide requires.
import { kubernetesObjectsOf } from './mocks';

type PulumiSide = typeof import('modelship/pulumi');
type CdkSide = typeof import('modelship');
let mp: PulumiSide;
let mc: CdkSide;

const props = (side: CdkSide | PulumiSide, serviceName: string) => ({ modelName: 'fraud', serviceName, model: side.ModelSource.fromFile(MODELS.mlp) });
const shadowOptions = { window: '6h', psiThreshold: 0.1, errorRatioThreshold: 0.05 };

describe('modelship/pulumi ModelMonitoring shadow', () => {
  before(async () => {
    mp = await import('modelship/pulumi');
    mc = await import('modelship');
  });

  for (const shadowFirst of [false, true]) {
    it(`registers the PrometheusRule the cdk8s construct synthesizes${shadowFirst ? ', the shadow created before its primary' : ''}`, async () => {
      const objects = await kubernetesObjectsOf(() => {
        const make = (id: string) => new mp.ModelService(id, { ...props(mp, id), namespace: 'risk' });
        const first = make(shadowFirst ? 'fraud-v2' : 'fraud-v1');
        const second = make(shadowFirst ? 'fraud-v1' : 'fraud-v2');
        const [shadow, primary] = shadowFirst ? [first, second] : [second, first];
        return new mp.ModelMonitoring('fraud-v2-monitoring', { service: shadow, shadow: { of: primary, ...shadowOptions }, dashboard: false });
      });
      const chart = new Chart(Testing.app(), 'fraud-v2', { namespace: 'risk' });
      const primaryChart = new Chart(Testing.app(), 'fraud-v1', { namespace: 'risk' });
      const primary = new mc.ModelService(primaryChart, 'fraud-v1', props(mc, 'fraud-v1'));
      const shadow = new mc.ModelService(chart, 'fraud-v2', props(mc, 'fraud-v2'));
      new mc.ModelMonitoring(chart, 'fraud-v2-monitoring', { service: shadow, shadow: { of: primary, ...shadowOptions }, dashboard: false });
      const expected = (Testing.synth(chart) as any[]).find((o) => o.kind === 'PrometheusRule');
      const rule = objects.find((o) => o.inputs.kind === 'PrometheusRule')!;
      assert.deepEqual(rule.inputs, expected);
      assert.ok(expected.spec.groups.some((g: any) => g.name === 'modelship-fraud-v2-shadow'));
    });
  }

  it('refuses a primary whose namespace is another Output than the shadow\'s', () => {
    const shadow = new mp.ModelService('out-v2', { ...props(mp, 'out-v2'), namespace: pulumi.output('risk') });
    const primary = new mp.ModelService('out-v1', { ...props(mp, 'out-v1'), namespace: pulumi.output('risk') });
    assert.throws(() => new mp.ModelMonitoring('out-v2-monitoring', { service: shadow, shadow: { of: primary } }),
      /the namespace of ModelService 'out-v2' or of its 'shadow.of' ModelService 'out-v1' is an Output/);
  });
});
