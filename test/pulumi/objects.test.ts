/**
 * Every object a construct synthesizes reaches Pulumi whole, whatever its kind: built-in kinds as their typed
 * @pulumi/kubernetes resources with every top-level field, other kinds as CustomResources with every top-level field.
 */
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { ApiObject, App, Chart, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { kubernetesObjectsOf } from './mocks';

const SECRET_SIGNATURE = '4dabf18193072939515e22adb298388d';

type PulumiSide = typeof import('modelship/pulumi');
type CdkSide = typeof import('modelship');
let mp: PulumiSide;
let mc: CdkSide;

/** Escape-hatch children of kinds the components do not make themselves, each with top-level fields besides `spec`. */
function addChildren(service: InstanceType<CdkSide['ModelService']>) {
  new kplus.ServiceAccount(service, 'Runner', { automountToken: false });
  new kplus.k8s.KubeRole(service, 'Reader', { rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }] });
  new ApiObject(service, 'Widget', { apiVersion: 'example.com/v1', kind: 'Widget', metadata: {}, spec: { size: 1 }, settings: { colour: 'blue' } });
  // A custom group whose first label is a built-in one: still a custom resource.
  new ApiObject(service, 'Lookalike', { apiVersion: 'apps.example.com/v1', kind: 'Deployment', metadata: {}, template: { name: 'x' } });
  // A chart nested in the service: `cdk8s synth` writes its objects too.
  new kplus.ConfigMap(new Chart(service, 'Nested'), 'Settings', { data: { level: 'debug' } });
}

/** The type token Pulumi gives an object of this apiVersion and kind (`core` for the core group). */
const typeOf = (object: { apiVersion: string; kind: string }) => {
  const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['core', object.apiVersion];
  return `kubernetes:${group}/${version}:${object.kind}`;
};

describe('modelship/pulumi registers every object whole', () => {
  before(async () => {
    mp = await import('modelship/pulumi');
    mc = await import('modelship');
  });

  it('registers escape-hatch children of any kind with all their top-level fields, as `cdk8s synth` writes them', async () => {
    const objects = await kubernetesObjectsOf(() => new mp.ModelService('extra', { model: mp.ModelSource.fromImage('registry/m:1'), namespace: 'risk', customize: addChildren }));
    const chart = new Chart(Testing.app(), 'extra', { namespace: 'risk' });
    addChildren(new mc.ModelService(chart, 'extra', { model: mc.ModelSource.fromImage('registry/m:1') }));
    // What `cdk8s synth` writes: every chart of the app, the nested one too.
    const expected = App.of(chart).charts.flatMap((c) => c.toJson()) as any[];
    assert.ok(expected.some((o) => o.kind === 'ConfigMap' && o.data?.level === 'debug'));
    assert.equal(objects.length, expected.length);
    for (const object of expected) {
      const match = objects.find((r) => r.inputs.kind === object.kind && r.inputs.metadata.name === object.metadata.name);
      assert.ok(match, `${object.kind} ${object.metadata.name} is registered`);
      assert.deepEqual(match.inputs, object, `${object.apiVersion} ${object.kind}`);
      assert.equal(match.type, typeOf(object));
    }
    assert.equal(objects.find((r) => r.inputs.kind === 'ServiceAccount')!.inputs.automountServiceAccountToken, false);
    assert.deepEqual(objects.find((r) => r.inputs.kind === 'Widget')!.inputs.settings, { colour: 'blue' });
  });

  it('registers a Secret\'s data as Pulumi secrets, as @pulumi/kubernetes\' typed Secret does', async () => {
    const objects = await kubernetesObjectsOf(() => new mp.ModelService('keys', {
      model: mp.ModelSource.fromImage('registry/m:1'),
      customize: (service) => new kplus.Secret(service, 'Keys', { stringData: { token: 's3cret' } }),
    }));
    const secret = objects.find((r) => r.type === 'kubernetes:core/v1:Secret')!;
    // How Pulumi's serialization marks a secret value.
    assert.deepEqual(secret.inputs.stringData, { [SECRET_SIGNATURE]: '1b47061264138c4ac30d75fd1eb44270', value: { token: 's3cret' } });
  });

  it('refuses a top-level field the typed resource would drop, instead of registering the object without it', () => {
    assert.throws(() => new mp.ModelService('odd', {
      model: mp.ModelSource.fromImage('registry/m:1'),
      customize: (service) => new ApiObject(service, 'Odd', { apiVersion: 'v1', kind: 'ConfigMap', metadata: {}, data: { a: '1' }, colour: 'blue' }),
    }), /ConfigMap 'odd-[0-9a-f]+': 'colour' is not a field of v1 ConfigMap \(@pulumi\/kubernetes would drop it/);
  });
});
