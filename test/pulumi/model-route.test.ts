/**
 * ModelRoute on the Pulumi door: the same props give the same HTTPRoute, GRPCRoute and ReferenceGrant as the cdk8s
 * construct, registered as the component's children under Pulumi's type tokens for their kinds, and an Output
 * namespace reaches them when the route and its services share it.
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

const gateway = { name: 'public', namespace: 'gateways', sectionName: 'https' };
const ROUTE_KINDS = ['HTTPRoute', 'GRPCRoute', 'ReferenceGrant'];
const serviceProps = (side: CdkSide | PulumiSide, id: string) => ({ modelName: 'text-detection', serviceName: id, model: side.ModelSource.fromImage(`registry/ocr:${id}`) });

/** Where each version lives, and the route's props besides its backends. */
interface Layout {
  readonly namespaces: { readonly route: string; readonly v1: string; readonly v2: string; readonly shadow?: string };
  readonly route: { readonly hostnames?: string[]; readonly pathPrefix?: string; readonly grpc?: boolean; readonly mirrorPercent?: number };
}

const layouts: Array<[string, Layout]> = [
  ['one namespace, 90/10', { namespaces: { route: 'ocr', v1: 'ocr', v2: 'ocr' }, route: { hostnames: ['ocr.models.example.com'] } }],
  ['a shadow at 25 percent behind a path prefix', { namespaces: { route: 'ocr', v1: 'ocr', v2: 'ocr', shadow: 'ocr' }, route: { hostnames: ['ocr.models.example.com'], pathPrefix: '/ocr', mirrorPercent: 25 } }],
  ['the canary and the shadow in another namespace, REST only', { namespaces: { route: 'ocr', v1: 'ocr', v2: 'ocr-canary', shadow: 'ocr-canary' }, route: { grpc: false } }],
  ['each version in its own namespace', { namespaces: { route: 'ocr', v1: 'ocr-v1', v2: 'ocr-v2' }, route: {} }],
];

function cdk8sObjects(layout: Layout): any[] {
  const app = new App();
  const charts = new Map<string, Chart>();
  const chart = (namespace: string) => charts.get(namespace) ?? charts.set(namespace, new Chart(app, namespace, { namespace })).get(namespace)!;
  const routeChart = chart(layout.namespaces.route);
  const v1 = new mc.ModelService(chart(layout.namespaces.v1), 'ocr-v1', serviceProps(mc, 'ocr-v1'));
  const v2 = new mc.ModelService(chart(layout.namespaces.v2), 'ocr-v2', serviceProps(mc, 'ocr-v2'));
  const shadow = layout.namespaces.shadow ? new mc.ModelService(chart(layout.namespaces.shadow), 'ocr-v3', serviceProps(mc, 'ocr-v3')) : undefined;
  const { mirrorPercent, ...route } = layout.route;
  new mc.ModelRoute(routeChart, 'ocr', {
    gateway, ...route, backends: [{ service: v1, weight: 90 }, { service: v2, weight: 10 }],
    mirror: shadow && { service: shadow, percent: mirrorPercent },
  });
  return [...charts.values()].flatMap((c) => Testing.synth(c)).filter((o: any) => ROUTE_KINDS.includes(o.kind));
}

function pulumiProgram(layout: Layout) {
  const v1 = new mp.ModelService('ocr-v1', { ...serviceProps(mp, 'ocr-v1'), namespace: layout.namespaces.v1 });
  const v2 = new mp.ModelService('ocr-v2', { ...serviceProps(mp, 'ocr-v2'), namespace: layout.namespaces.v2 });
  const shadow = layout.namespaces.shadow ? new mp.ModelService('ocr-v3', { ...serviceProps(mp, 'ocr-v3'), namespace: layout.namespaces.shadow }) : undefined;
  const { mirrorPercent, ...route } = layout.route;
  return new mp.ModelRoute('ocr', {
    namespace: layout.namespaces.route, gateway, ...route, backends: [{ service: v1, weight: 90 }, { service: v2, weight: 10 }],
    mirror: shadow && { service: shadow, percent: mirrorPercent },
  });
}

describe('modelship/pulumi ModelRoute', () => {
  before(async () => {
    mp = await import('modelship/pulumi');
    mc = await import('modelship');
  });

  layouts.forEach(([label, layout]) => {
    it(`registers the objects the cdk8s construct synthesizes, each whole, as its children: ${label}`, async () => {
      const objects = await kubernetesObjectsOf(() => pulumiProgram(layout));
      const routeObjects = objects.filter((o) => o.name.startsWith('ocr-') && ROUTE_KINDS.includes(o.inputs.kind));
      const expected = cdk8sObjects(layout);
      assert.ok(expected.some((o) => o.kind === 'HTTPRoute'));
      assert.equal(expected.some((o) => o.kind === 'ReferenceGrant'), layout.namespaces.v2 !== layout.namespaces.route);
      const key = (o: any) => `${o.kind} ${o.metadata.namespace}/${o.metadata.name}`;
      assert.deepEqual(routeObjects.map((o) => key(o.inputs)).sort(), expected.map(key).sort());
      for (const object of expected) {
        const match = routeObjects.find((o) => key(o.inputs) === key(object))!;
        assert.deepEqual(match.inputs, object, key(object));
        assert.equal(match.type, `kubernetes:${object.apiVersion}:${object.kind}`);
      }
      const components = registered.filter((r) => r.type === 'modelship:index:ModelRoute');
      assert.deepEqual(components.map((c) => c.name), ['ocr']);
    });
  });

  it('names its resources after the component and its kinds, one ReferenceGrant per other namespace', async () => {
    const objects = await kubernetesObjectsOf(() => pulumiProgram(layouts[3][1]));
    assert.deepEqual(objects.filter((o) => ROUTE_KINDS.includes(o.inputs.kind)).map((o) => o.name).sort(),
      ['ocr-grpcroute', 'ocr-httproute', 'ocr-referencegrant-0', 'ocr-referencegrant-1']);
  });

  it('carries a namespace Output that the route and its services share into the routes, and needs no ReferenceGrant', async () => {
    const namespace = pulumi.output(Promise.resolve('team-a'));
    const objects = await kubernetesObjectsOf(() => {
      const v1 = new mp.ModelService('late-v1', { ...serviceProps(mp, 'late-v1'), namespace });
      const v2 = new mp.ModelService('late-v2', { ...serviceProps(mp, 'late-v2'), namespace });
      return new mp.ModelRoute('late', { namespace, gateway, backends: [{ service: v1, weight: 90 }, { service: v2, weight: 10 }] });
    });
    const routes = objects.filter((o) => ROUTE_KINDS.includes(o.inputs.kind));
    assert.deepEqual(routes.map((o) => o.inputs.kind).sort(), ['GRPCRoute', 'HTTPRoute']);
    for (const route of routes) {
      assert.equal(route.inputs.metadata.namespace, 'team-a');
      assert.deepEqual(route.inputs.spec.rules[0].backendRefs.map((r: any) => [r.name, r.namespace, r.weight]), [['late-v1', undefined, 90], ['late-v2', undefined, 10]]);
    }
    assert.ok(!JSON.stringify(objects).includes('placeholder'));
  });

  it('refuses namespaces given as different Outputs, since whether a ReferenceGrant is needed is unknown', async () => {
    const v1 = new mp.ModelService('apart-v1', { ...serviceProps(mp, 'apart-v1'), namespace: pulumi.output('team-a') });
    const v2 = new mp.ModelService('apart-v2', { ...serviceProps(mp, 'apart-v2'), namespace: 'team-a' });
    assert.throws(() => new mp.ModelRoute('apart', { namespace: 'team-a', gateway, backends: [{ service: v1, weight: 1 }, { service: v2, weight: 1 }] }),
      /ModelRoute 'apart': its namespace and its services' \(ModelRoute 'apart', ModelService 'apart-v1', ModelService 'apart-v2'\) include an Output.*give every one the same Output, or plain strings/);
    await settle();
  });

  it('refuses what the cdk8s construct refuses, with its message', () => {
    const v1 = new mp.ModelService('bad-v1', { ...serviceProps(mp, 'bad-v1'), namespace: 'ocr' });
    assert.throws(() => new mp.ModelRoute('bad', { namespace: 'ocr', gateway, backends: [{ service: v1, weight: 0 }] }), /'backends' weights are all 0 \(0\)/);
    assert.throws(() => new mp.ModelRoute('bad2', { namespace: 'ocr', gateway, backends: [{ service: v1, weight: 1 }], mirror: { service: v1, percent: 150 } }), /'mirror\.percent' \(150\) must be an integer from 0 to 100/);
  });
});
