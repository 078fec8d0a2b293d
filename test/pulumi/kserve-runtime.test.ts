/**
 * KServeRuntime and KServeInferenceService on the Pulumi door: the same props give the same ServingRuntime (or
 * ClusterServingRuntime) and InferenceService as the cdk8s constructs, registered as the components' children, with
 * a namespace or image given as an Output carried into them.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import * as pulumi from '@pulumi/pulumi';
import { App, Chart, Testing } from 'cdk8s';
// Mocks first, then the component module, as Pulumi's testing guide requires.
import { kubernetesObjectsOf, registered, settle } from './mocks';

type PulumiSide = typeof import('modelship/pulumi');
type CdkSide = typeof import('modelship');
let mp: PulumiSide;
let mc: CdkSide;

const KSERVE_KINDS = ['ServingRuntime', 'ClusterServingRuntime', 'InferenceService'];

const variants: Array<[string, Record<string, unknown>, Record<string, unknown>]> = [
  ['a namespaced runtime with defaults', {}, { storageUri: 's3://models/fraud' }],
  ['a cluster-wide runtime above Triton, with settings and resources', { clusterScoped: true, priority: 2, maxBatchSize: 8, logLevel: 'debug', image: 'registry/runtime:2', cpuLimit: '4' },
    { storageUri: 'gs://models/fraud/3', minReplicas: 2, maxReplicas: 6, serviceAccountName: 'model-reader', resources: { memoryLimit: '4Gi' } }],
];

const key = (o: any) => `${o.kind} ${o.metadata.namespace ?? ''}/${o.metadata.name}`;

describe('modelship/pulumi KServeRuntime and KServeInferenceService', () => {
  before(async () => {
    mp = await import('modelship/pulumi');
    mc = await import('modelship');
  });

  variants.forEach(([label, runtimeProps, isvcProps]) => {
    it(`register the objects the cdk8s constructs synthesize, each whole, as their children: ${label}`, async () => {
      const objects = await kubernetesObjectsOf(() => {
        const runtime = new mp.KServeRuntime('modelship-onnx', { ...runtimeProps, namespace: 'risk' });
        return new mp.KServeInferenceService('fraud', { ...isvcProps, runtime } as any);
      });
      const chart = new Chart(new App(), 'modelship-onnx', { namespace: 'risk' });
      const runtime = new mc.KServeRuntime(chart, 'modelship-onnx', runtimeProps);
      new mc.KServeInferenceService(chart, 'fraud', { ...isvcProps, runtime } as any);
      const expected = Testing.synth(chart);
      assert.deepEqual(expected.map((o: any) => o.kind).sort(), [runtimeProps.clusterScoped ? 'ClusterServingRuntime' : 'ServingRuntime', 'InferenceService'].sort());
      const kserveObjects = objects.filter((o) => KSERVE_KINDS.includes(o.inputs.kind));
      assert.deepEqual(kserveObjects.map((o) => key(o.inputs)).sort(), expected.map(key).sort());
      for (const object of expected) {
        const match = kserveObjects.find((o) => key(o.inputs) === key(object))!;
        assert.deepEqual(match.inputs, object, key(object));
        assert.equal(match.type, `kubernetes:${object.apiVersion}:${object.kind}`);
      }
      assert.deepEqual(kserveObjects.map((o) => o.name).sort(), ['fraud-inferenceservice', `modelship-onnx-${(runtimeProps.clusterScoped ? 'ClusterServingRuntime' : 'ServingRuntime').toLowerCase()}`]);
      assert.deepEqual(registered.filter((r) => r.type.startsWith('modelship:index:KServe')).map((r) => [r.type, r.name]),
        [['modelship:index:KServeRuntime', 'modelship-onnx'], ['modelship:index:KServeInferenceService', 'fraud']]);
    });
  });

  it('carries a namespace and an image given as Outputs into the objects', async () => {
    const namespace = pulumi.output(Promise.resolve('team-a'));
    const objects = await kubernetesObjectsOf(() => {
      const runtime = new mp.KServeRuntime('late-onnx', { namespace, image: pulumi.output('registry/runtime:built') });
      return new mp.KServeInferenceService('late', { runtime, storageUri: 's3://m/late' });
    });
    const [servingRuntime] = objects.filter((o) => o.inputs.kind === 'ServingRuntime');
    const [isvc] = objects.filter((o) => o.inputs.kind === 'InferenceService');
    assert.equal(servingRuntime.inputs.metadata.namespace, 'team-a');
    assert.equal(servingRuntime.inputs.spec.containers[0].image, 'registry/runtime:built');
    assert.equal(isvc.inputs.metadata.namespace, 'team-a');
    assert.ok(!JSON.stringify(objects).includes('placeholder'));
  });

  it('puts an InferenceService in its own namespace only with a cluster-wide runtime', async () => {
    const cluster = new mp.KServeRuntime('cluster-onnx', { clusterScoped: true });
    const objects = await kubernetesObjectsOf(() => new mp.KServeInferenceService('elsewhere', { runtime: cluster, namespace: 'team-b', storageUri: 's3://m/e' }));
    assert.equal(objects.find((o) => o.inputs.kind === 'InferenceService')!.inputs.metadata.namespace, 'team-b');
    const local = new mp.KServeRuntime('local-onnx', { namespace: 'team-a' });
    assert.throws(() => new mp.KServeInferenceService('apart', { runtime: local, namespace: 'team-b', storageUri: 's3://m/a' }),
      /KServeInferenceService 'apart': its namespace differs from KServeRuntime 'local-onnx''s, and KServe only finds a ServingRuntime in the InferenceService's namespace/);
    await settle();
  });

  it('refuses what the cdk8s construct refuses, with its message', () => {
    assert.throws(() => new mp.KServeRuntime('bad-onnx', { clusterScoped: true, priority: 1 }), /'priority' \(1\) is kserve-tritonserver's for onnx/);
  });
});
