/**
 * ModelRoute: the Gateway API objects for weighted versions of a model, checked in the fields the Gateway API reads
 * (backendRefs[].weight, filters[].requestMirror.percent, parentRefs, ReferenceGrant from/to) and against the
 * vendored Gateway API CRDs; the props it refuses, with messages that name the prop, the value and the fix.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { App, Chart, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Exposure, ModelRoute, type ModelRouteProps, ModelService, ModelSource } from 'modelship';
import { assertValidManifests, validateManifest } from '../helpers/k8s-schema';

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec: any };

const gateway = { name: 'public', namespace: 'gateways' };
const version = (chart: Chart, id: string, options: Partial<ConstructorParameters<typeof ModelService>[2]> = {}) =>
  new ModelService(chart, id, { modelName: 'text-detection', serviceName: id, model: ModelSource.fromImage(`registry/ocr:${id}`), ...options });

/** Two versions of one model and a route between them, all in namespace `ocr`; returns the route's objects. */
function routed(props: Partial<ModelRouteProps> = {}, options: { withShadow?: boolean } = {}) {
  const chart = new Chart(Testing.app(), 'ocr', { namespace: 'ocr' });
  const v1 = version(chart, 'ocr-v1');
  const v2 = version(chart, 'ocr-v2');
  const shadow = options.withShadow ? version(chart, 'ocr-v3') : undefined;
  const route = new ModelRoute(chart, 'ocr', {
    gateway, hostnames: ['ocr.models.example.com'],
    backends: [{ service: v1, weight: 90 }, { service: v2, weight: 10 }],
    ...(shadow ? { mirror: { service: shadow, percent: 25 } } : {}),
    ...props,
  });
  const objects = Testing.synth(chart) as Manifest[];
  const ofKind = (kind: string) => objects.filter((o) => o.kind === kind);
  return { chart, v1, v2, shadow, route, objects, ofKind };
}

describe('ModelRoute objects', () => {
  it('splits REST by weight over each service\'s http port, and gRPC the same way over its grpc port', () => {
    const { objects, ofKind } = routed();
    assert.deepEqual(objects.map((o) => o.kind).filter((k) => k.endsWith('Route') || k === 'ReferenceGrant').sort(), ['GRPCRoute', 'HTTPRoute']);
    const [http] = ofKind('HTTPRoute');
    assert.equal(http.apiVersion, 'gateway.networking.k8s.io/v1');
    assert.deepEqual(http.metadata.name, 'ocr');
    assert.equal(http.metadata.namespace, 'ocr');
    assert.deepEqual(http.spec.parentRefs, [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'public', namespace: 'gateways' }]);
    assert.deepEqual(http.spec.hostnames, ['ocr.models.example.com']);
    assert.deepEqual(http.spec.rules, [{
      matches: [{ path: { type: 'PathPrefix', value: '/' } }],
      backendRefs: [
        { group: '', kind: 'Service', name: 'ocr-v1', port: 8080, weight: 90 },
        { group: '', kind: 'Service', name: 'ocr-v2', port: 8080, weight: 10 },
      ],
    }]);
    const [grpc] = ofKind('GRPCRoute');
    assert.equal(grpc.apiVersion, 'gateway.networking.k8s.io/v1');
    assert.deepEqual(grpc.spec.parentRefs, http.spec.parentRefs);
    assert.deepEqual(grpc.spec.hostnames, ['ocr.models.example.com']);
    assert.deepEqual(grpc.spec.rules, [{
      backendRefs: [
        { group: '', kind: 'Service', name: 'ocr-v1', port: 8081, weight: 90 },
        { group: '', kind: 'Service', name: 'ocr-v2', port: 8081, weight: 10 },
      ],
    }]);
  });

  it('points each backendRef at a port the Service has, under the name the Service has', () => {
    const { ofKind } = routed();
    const services = ofKind('Service');
    for (const route of [...ofKind('HTTPRoute'), ...ofKind('GRPCRoute')]) {
      for (const ref of route.spec.rules[0].backendRefs) {
        const service = services.find((s) => s.metadata.name === ref.name);
        assert.ok(service, `${route.kind} backend ${ref.name} is a Service of the chart`);
        const port = service.spec.ports.find((p: any) => p.port === ref.port);
        assert.equal(port?.name, route.kind === 'HTTPRoute' ? 'http' : 'grpc', `${route.kind} ${ref.name}:${ref.port}`);
      }
    }
  });

  it('routes to a load balancer service\'s REST port where the Service has it', () => {
    const chart = new Chart(Testing.app(), 'ocr', { namespace: 'ocr' });
    const v1 = version(chart, 'ocr-v1', { exposure: Exposure.loadBalancer({ port: 80 }) });
    new ModelRoute(chart, 'ocr', { gateway, backends: [{ service: v1, weight: 1 }] });
    const http = (Testing.synth(chart) as Manifest[]).find((o) => o.kind === 'HTTPRoute')!;
    assert.equal(http.spec.rules[0].backendRefs[0].port, 80);
  });

  it('puts the mirror and its percent in a RequestMirror filter of both routes, to the mirror\'s own ports', () => {
    const { ofKind } = routed({}, { withShadow: true });
    const [http] = ofKind('HTTPRoute');
    assert.deepEqual(http.spec.rules[0].filters, [{
      type: 'RequestMirror', requestMirror: { backendRef: { group: '', kind: 'Service', name: 'ocr-v3', port: 8080 }, percent: 25 },
    }]);
    assert.deepEqual(http.spec.rules[0].backendRefs.map((r: any) => r.name), ['ocr-v1', 'ocr-v2'], 'the mirror takes no weighted share');
    const [grpc] = ofKind('GRPCRoute');
    assert.deepEqual(grpc.spec.rules[0].filters, [{
      type: 'RequestMirror', requestMirror: { backendRef: { group: '', kind: 'Service', name: 'ocr-v3', port: 8081 }, percent: 25 },
    }]);
  });

  it('mirrors every request when no percent is given', () => {
    const chart = new Chart(Testing.app(), 'ocr', { namespace: 'ocr' });
    const v1 = version(chart, 'ocr-v1');
    const v2 = version(chart, 'ocr-v2');
    new ModelRoute(chart, 'ocr', { gateway, backends: [{ service: v1, weight: 1 }], mirror: { service: v2 } });
    const http = (Testing.synth(chart) as Manifest[]).find((o) => o.kind === 'HTTPRoute')!;
    assert.equal(http.spec.rules[0].filters[0].requestMirror.percent, 100);
  });

  it('matches a path prefix and strips it, since the runtime serves at the root; the GRPCRoute keeps to the host names', () => {
    const { ofKind } = routed({ pathPrefix: '/ocr' });
    const [http] = ofKind('HTTPRoute');
    assert.deepEqual(http.spec.rules[0].matches, [{ path: { type: 'PathPrefix', value: '/ocr' } }]);
    assert.deepEqual(http.spec.rules[0].filters, [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }]);
    const [grpc] = ofKind('GRPCRoute');
    assert.equal(grpc.spec.rules[0].matches, undefined);
    assert.deepEqual(grpc.spec.hostnames, ['ocr.models.example.com']);
  });

  it('names the listener when given, and leaves the Gateway\'s namespace out when it is the route\'s', () => {
    const { ofKind } = routed({ gateway: { name: 'internal', sectionName: 'https' } });
    assert.deepEqual(ofKind('HTTPRoute')[0].spec.parentRefs, [{ group: 'gateway.networking.k8s.io', kind: 'Gateway', name: 'internal', sectionName: 'https' }]);
    assert.deepEqual(ofKind('GRPCRoute')[0].spec.parentRefs, ofKind('HTTPRoute')[0].spec.parentRefs);
  });

  it('makes no GRPCRoute with grpc: false, and names the routes after `name`', () => {
    const { ofKind, route } = routed({ grpc: false, name: 'text-detection' });
    assert.equal(ofKind('GRPCRoute').length, 0);
    assert.equal(route.grpcRoute, undefined);
    assert.equal(ofKind('HTTPRoute')[0].metadata.name, 'text-detection');
    assert.equal(route.routeName, 'text-detection');
  });

  it('keeps a backend of weight 0 referenced, with its 0', () => {
    const chart = new Chart(Testing.app(), 'ocr', { namespace: 'ocr' });
    const v1 = version(chart, 'ocr-v1');
    const v2 = version(chart, 'ocr-v2');
    new ModelRoute(chart, 'ocr', { gateway, backends: [{ service: v1, weight: 100 }, { service: v2, weight: 0 }] });
    const http = (Testing.synth(chart) as Manifest[]).find((o) => o.kind === 'HTTPRoute')!;
    assert.deepEqual(http.spec.rules[0].backendRefs.map((r: any) => [r.name, r.weight]), [['ocr-v1', 100], ['ocr-v2', 0]]);
  });

  it('validates against the vendored Gateway API CRDs, with and without mirror, prefix and ReferenceGrant', () => {
    assertValidManifests(routed().objects);
    assertValidManifests(routed({ pathPrefix: '/ocr', gateway: { name: 'g', sectionName: 'https' } }, { withShadow: true }).objects);
    assertValidManifests(crossNamespace().objects);
  });
});

/** v1 in the route's namespace, v2 and the shadow in `ocr-canary`, the model of a team that keeps candidates apart. */
function crossNamespace() {
  const app = new App();
  const main = new Chart(app, 'ocr', { namespace: 'ocr' });
  const canary = new Chart(app, 'ocr-canary', { namespace: 'ocr-canary' });
  const v1 = version(main, 'ocr-v1');
  const v2 = version(canary, 'ocr-v2');
  const shadow = version(canary, 'ocr-v3');
  const route = new ModelRoute(main, 'ocr', { gateway, backends: [{ service: v1, weight: 90 }, { service: v2, weight: 10 }], mirror: { service: shadow, percent: 5 } });
  const objects = [...Testing.synth(main), ...Testing.synth(canary)] as Manifest[];
  return { route, objects };
}

describe('ModelRoute across namespaces', () => {
  it('names the other namespace in the backendRefs and the mirror', () => {
    const { objects } = crossNamespace();
    const http = objects.find((o) => o.kind === 'HTTPRoute')!;
    assert.deepEqual(http.spec.rules[0].backendRefs, [
      { group: '', kind: 'Service', name: 'ocr-v1', port: 8080, weight: 90 },
      { group: '', kind: 'Service', name: 'ocr-v2', namespace: 'ocr-canary', port: 8080, weight: 10 },
    ]);
    assert.deepEqual(http.spec.rules[0].filters[0].requestMirror.backendRef, { group: '', kind: 'Service', name: 'ocr-v3', namespace: 'ocr-canary', port: 8080 });
  });

  it('adds one ReferenceGrant in the other namespace, from both route kinds of the route\'s namespace to exactly those Services', () => {
    const { objects, route } = crossNamespace();
    const grants = objects.filter((o) => o.kind === 'ReferenceGrant');
    assert.equal(grants.length, 1);
    assert.equal(route.referenceGrants.length, 1);
    const [grant] = grants;
    assert.equal(grant.apiVersion, 'gateway.networking.k8s.io/v1beta1');
    assert.equal(grant.metadata.namespace, 'ocr-canary');
    assert.equal(grant.metadata.name, 'ocr-from-ocr');
    assert.deepEqual(grant.spec.from, [
      { group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'ocr' },
      { group: 'gateway.networking.k8s.io', kind: 'GRPCRoute', namespace: 'ocr' },
    ]);
    assert.deepEqual(grant.spec.to, [{ group: '', kind: 'Service', name: 'ocr-v2' }, { group: '', kind: 'Service', name: 'ocr-v3' }]);
  });

  it('grants only HTTPRoute when there is no GRPCRoute', () => {
    const app = new App();
    const main = new Chart(app, 'ocr', { namespace: 'ocr' });
    const other = new Chart(app, 'other', { namespace: 'other' });
    new ModelRoute(main, 'ocr', { gateway, grpc: false, backends: [{ service: version(other, 'ocr-v2'), weight: 1 }] });
    const grant = (Testing.synth(main) as Manifest[]).find((o) => o.kind === 'ReferenceGrant')!;
    assert.deepEqual(grant.spec.from, [{ group: 'gateway.networking.k8s.io', kind: 'HTTPRoute', namespace: 'ocr' }]);
  });

  it('adds no ReferenceGrant when every service is in the route\'s namespace', () => {
    assert.equal(routed({}, { withShadow: true }).ofKind('ReferenceGrant').length, 0);
  });
});

describe('ModelRoute refuses', () => {
  const refuse = (props: (s: { v1: ModelService; v2: ModelService }) => Partial<ModelRouteProps>, message: RegExp) => {
    const chart = new Chart(Testing.app(), 'ocr', { namespace: 'ocr' });
    const v1 = version(chart, 'ocr-v1');
    const v2 = version(chart, 'ocr-v2');
    assert.throws(() => new ModelRoute(chart, 'ocr', { gateway, backends: [{ service: v1, weight: 90 }, { service: v2, weight: 10 }], ...props({ v1, v2 }) }), message);
  };

  it('weights that are not integers from 0 to 1000000', () => {
    refuse(({ v1, v2 }) => ({ backends: [{ service: v1, weight: 90 }, { service: v2, weight: -1 }] }),
      /^Error: 'backends\[1\]\.weight' \(-1\) for ModelService 'ocr\/ocr-v2' must be an integer from 0 to 1000000; weights are relative shares, e.g. 90 and 10$/);
    refuse(({ v1 }) => ({ backends: [{ service: v1, weight: 0.5 }] }), /'backends\[0\]\.weight' \(0\.5\)/);
    refuse(({ v1 }) => ({ backends: [{ service: v1, weight: Number.NaN }] }), /'backends\[0\]\.weight' \(NaN\)/);
    refuse(({ v1 }) => ({ backends: [{ service: v1, weight: 1_000_001 }] }), /'backends\[0\]\.weight' \(1000001\)/);
  });

  it('weights that are all 0', () => {
    refuse(({ v1, v2 }) => ({ backends: [{ service: v1, weight: 0 }, { service: v2, weight: 0 }] }),
      /'backends' weights are all 0 \(0, 0\), so the route would refuse every request; give at least one backend a positive weight/);
  });

  it('no backends, and more than the Gateway API takes', () => {
    refuse(() => ({ backends: [] }), /'backends' is empty; give at least one \{ service, weight \}/);
    const chart = new Chart(Testing.app(), 'ocr', { namespace: 'ocr' });
    const many = Array.from({ length: 17 }, (_, i) => ({ service: version(chart, `v${i}`), weight: 1 }));
    assert.throws(() => new ModelRoute(chart, 'ocr', { gateway, backends: many }), /'backends' has 17 entries; the Gateway API takes at most 16 per rule/);
  });

  it('the same service twice', () => {
    refuse(({ v1 }) => ({ backends: [{ service: v1, weight: 50 }, { service: v1, weight: 50 }] }),
      /'backends\[1\]' and 'backends\[0\]' are both ModelService 'ocr\/ocr-v1'; give each service once, with the sum of the weights/);
  });

  it('a mirror percent that is not an integer from 0 to 100', () => {
    const chart = new Chart(Testing.app(), 'ocr', { namespace: 'ocr' });
    const v1 = version(chart, 'ocr-v1');
    const v3 = version(chart, 'ocr-v3');
    for (const percent of [101, -1, 2.5]) {
      assert.throws(() => new ModelRoute(chart, `ocr-${String(percent).replace('.', '-')}`, { gateway, backends: [{ service: v1, weight: 1 }], mirror: { service: v3, percent } }),
        new RegExp(`'mirror\\.percent' \\(${String(percent).replace('.', '\\.')}\\) must be an integer from 0 to 100`));
    }
  });

  it('a mirror that is also a weighted backend', () => {
    refuse(({ v2 }) => ({ mirror: { service: v2, percent: 10 } }),
      /'mirror\.service' \('ocr-v2'\) is also one of the 'backends': its metrics would mix the requests it answers with the copies it shadows/);
  });

  it('a path prefix without host names while a GRPCRoute would take every gRPC request', () => {
    refuse(() => ({ pathPrefix: '/ocr' }), /'pathPrefix' \('\/ocr'\) tells REST requests apart, but gRPC requests have no path.*give 'hostnames' for this model, or set 'grpc: false'/);
  });

  it('a path prefix the Gateway API rejects', () => {
    for (const pathPrefix of ['ocr', '/a//b', '/a/../b', '/a#b', '/a/..']) {
      refuse(() => ({ hostnames: ['ocr.example.com'], pathPrefix }), new RegExp(`'pathPrefix' \\('${pathPrefix.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}'\\) must be an absolute path`));
    }
  });

  it('host names that are not DNS names, and an empty list', () => {
    for (const hostname of ['OCR.example.com', 'ocr.example.com:443', 'https://ocr.example.com', '10.0.0.1.', '*']) {
      refuse(() => ({ hostnames: [hostname] }), /'hostnames' \('.*'\) must be a lower-case DNS name/);
    }
    refuse(() => ({ hostnames: [] }), /'hostnames' is empty; leave it out/);
  });

  it('a gateway name that is not a Kubernetes name', () => {
    refuse(() => ({ gateway: { name: 'Public' } }), /'gateway\.name' \('Public'\) must be a Kubernetes name/);
    refuse(() => ({ gateway: { name: 'public', namespace: 'a.b' } }), /'gateway\.namespace' \('a\.b'\) must be a DNS label/);
  });

  it('a construct id that cannot name the routes, unless `name` is given', () => {
    const chart = new Chart(Testing.app(), 'ocr', { namespace: 'ocr' });
    const v1 = version(chart, 'ocr-v1');
    assert.throws(() => new ModelRoute(chart, 'OcrRoute', { gateway, backends: [{ service: v1, weight: 1 }] }), /the routes are named after the construct's id \('OcrRoute'\).*give 'name'/);
    assert.equal(new ModelRoute(chart, 'OcrRoute2', { gateway, name: 'ocr', backends: [{ service: v1, weight: 1 }] }).routeName, 'ocr');
  });

  it('a service in a chart without a namespace behind a route with one', () => {
    const app = new App();
    const main = new Chart(app, 'ocr', { namespace: 'ocr' });
    const loose = new Chart(app, 'loose');
    assert.throws(() => new ModelRoute(main, 'ocr', { gateway, backends: [{ service: version(loose, 'ocr-v1'), weight: 1 }] }),
      /'backends' ModelService 'loose\/ocr-v1' is in a chart without a namespace and the route in namespace 'ocr'; give both charts a namespace/);
  });

  it('a backend that serves HTTPS', () => {
    const chart = new Chart(Testing.app(), 'ocr', { namespace: 'ocr' });
    const tls = version(chart, 'ocr-v1', { tlsSecret: kplus.Secret.fromSecretName(chart, 'tls', 'ocr-tls') });
    assert.throws(() => new ModelRoute(chart, 'ocr', { gateway, backends: [{ service: tls, weight: 1 }] }), /'backends' ModelService 'ocr\/ocr-v1' serves HTTPS \('tlsSecret'\)/);
  });
});

describe('the vendored Gateway API schema', () => {
  // The schema check must be able to fail: the fields ModelRoute sets, misspelt or out of range.
  const { ofKind } = routed({}, { withShadow: true });
  const [http] = ofKind('HTTPRoute');
  const edit = (change: (spec: any) => void) => {
    const copy = structuredClone(http);
    change(copy.spec);
    return validateManifest(copy);
  };

  it('accepts the route as synthesized', () => {
    assert.deepEqual(validateManifest(http), []);
  });

  it('rejects a mirror percent above 100, a negative weight and an unknown field', () => {
    assert.ok(edit((s) => { s.rules[0].filters[0].requestMirror.percent = 101; }).some((p) => p.startsWith('spec.rules[0].filters[0].requestMirror.percent:')));
    assert.ok(edit((s) => { s.rules[0].backendRefs[0].weight = -1; }).some((p) => p.startsWith('spec.rules[0].backendRefs[0].weight:')));
    assert.deepEqual(edit((s) => { s.rules[0].backendRefs[0].wieght = 1; }), ['spec.rules[0].backendRefs[0].wieght: unknown field (did you mean "weight"?)']);
    assert.ok(edit((s) => { delete s.parentRefs[0].name; }).some((p) => p.includes('parentRefs[0].name: missing required field')));
  });
});
