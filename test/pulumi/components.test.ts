/**
 * `modelship/pulumi` under Pulumi's own mocks: each Kubernetes object is registered as its own child resource of
 * the component, with the same content the cdk8s side synthesizes for the same props, and Output-valued image and
 * namespace reach the objects.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import * as pulumi from '@pulumi/pulumi';
import { Chart, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import * as YAML from 'yaml';
import { MODELS, REPO_ROOT } from '../helpers/paths';
// Mocks first, then the component module, as Pulumi's testing guide requires.
import { kubernetesObjectsOf, registered, type Registered, settle, value } from './mocks';

const MODEL_FILE = MODELS.linearRegression;
/** Secrets are referred to by name; Pulumi programs import them into a throwaway cdk8s scope. */
const secrets = new Chart(Testing.app(), 'secrets');
const secret = (name: string) => kplus.Secret.fromSecretName(secrets, `${name}-${Math.random()}`, name);

type PulumiSide = typeof import('modelship/pulumi');
type CdkSide = typeof import('modelship');
let mp: PulumiSide;
let mc: CdkSide;

describe('modelship/pulumi', () => {
  before(async () => {
    mp = await import('modelship/pulumi');
    mc = await import('modelship');
  });

  const propSets: Array<[string, (side: CdkSide | PulumiSide) => { service: any; autoscaler?: any; monitoring?: any }]> = [
    ['a URI source, CPU autoscaler, monitoring', (side) => ({
      service: { model: side.ModelSource.fromUri('https://models.example.com/fraud/3/model.onnx', { sha256: 'b'.repeat(64) }), maxBatchSize: 16 },
      autoscaler: { minReplicas: 2, maxReplicas: 10 },
      monitoring: { extraLabels: { release: 'kps' } },
    })],
    ['a local file behind a load balancer, KEDA to zero, PodMonitor', (side) => ({
      service: { modelName: 'my_model', model: side.ModelSource.fromFile(MODEL_FILE), exposure: side.Exposure.loadBalancer(), gpus: 1, image: 'registry.example.com/modelship-runtime:cuda' },
      autoscaler: { minReplicas: 0, maxReplicas: 3, signal: side.ScalingSignal.inFlightRequestsWithKeda({ target: 2, prometheusAddress: 'http://p:9090', activation: { query: 'sum(queue_length)' } }) },
      monitoring: { podMonitor: true, availabilityObjective: 99.5, plainPrometheusFiles: true },
    })],
    ['TLS and tokens, monitoring over https with a scrape token', (side) => ({
      service: { model: side.ModelSource.fromImage('registry/m:1'), tlsSecret: secret('fraud-tls'), authTokenSecret: secret('fraud-tokens') },
      monitoring: { scrapeTokenSecret: secret('fraud-tokens'), scrapeTokenKey: 'prometheus' },
    })],
    ['a URI source with a drift profile, drift alerts with a lower threshold', (side) => ({
      service: { model: side.ModelSource.fromUri('https://models.example.com/fraud/3/model.onnx', { sha256: 'b'.repeat(64), profile: { uri: 'https://models.example.com/fraud/3/profile.json', sha256: 'c'.repeat(64) } }) },
      monitoring: { drift: { threshold: 0.1, window: '6h' } },
    })],
    ['an image, fixed replicas, prometheus-adapter-free, no dashboard', (side) => ({
      service: { model: side.ModelSource.fromImage('registry/m:1'), replicas: 3, allowFrom: [{ podSelector: { matchLabels: { role: 'client' } } }] },
      monitoring: { dashboard: false, latencyObjective: { thresholdSeconds: 0.1, percent: 95 } },
    })],
    ['tracing to a collector beside a payload sink', (side) => ({
      service: { model: side.ModelSource.fromImage('registry/m:1'), tracing: { endpoint: 'http://otel-collector.observability.svc:4318', samplingRatio: 0.5 },
        payloadLogging: { url: 'https://sink.example.com/' } },
      monitoring: {},
    })],
  ];
  propSets.forEach(([label, make], index) => {
    it(`registers each object as a child of its component, equal to the cdk8s synthesis: ${label}`, async () => {
      registered.length = 0;
      const name = `parity${index}`;
      const p = make(mp);
      const service = new mp.ModelService(name, { ...p.service, namespace: 'risk' });
      const autoscaler = p.autoscaler ? new mp.ModelAutoscaler(`${name}-autoscaler`, { service, ...p.autoscaler }) : undefined;
      if (p.monitoring) new mp.ModelMonitoring(`${name}-monitoring`, { service, autoscaler, ...p.monitoring });
      await value(service.restUrl);
      await settle();

      const c = make(mc);
      const chart = new Chart(Testing.app(), name, { namespace: 'risk' });
      const cdkService = new mc.ModelService(chart, name, c.service);
      const cdkAutoscaler = c.autoscaler ? new mc.ModelAutoscaler(chart, `${name}-autoscaler`, { service: cdkService, ...c.autoscaler }) : undefined;
      if (c.monitoring) new mc.ModelMonitoring(chart, `${name}-monitoring`, { service: cdkService, autoscaler: cdkAutoscaler, ...c.monitoring });
      const expected = Testing.synth(chart) as any[];

      const objects = registered.filter((r) => r.type.startsWith('kubernetes:'));
      assert.deepEqual(objects.map((o) => o.inputs.kind).sort(), expected.map((o) => o.kind).sort());
      for (const object of expected) {
        const match = objects.find((o) => o.inputs.kind === object.kind && o.inputs.metadata.name === object.metadata.name);
        assert.ok(match, `${object.kind} ${object.metadata.name} is registered`);
        assert.deepEqual(JSON.parse(JSON.stringify(match.inputs)), object, `${object.kind} content`);
        const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['core', object.apiVersion];
        assert.equal(match.type, `kubernetes:${group}/${version}:${object.kind}`);
      }
      const components = registered.filter((r) => r.type.startsWith('modelship:')).map((r) => r.type).sort();
      assert.deepEqual(components, ['modelship:index:ModelService', ...(p.autoscaler ? ['modelship:index:ModelAutoscaler'] : []), ...(p.monitoring ? ['modelship:index:ModelMonitoring'] : [])].sort());
    });
  });

  it('gives a URI source with optimize the same init containers, in the same order with the same args, as the cdk8s synthesis', async () => {
    const source = (side: CdkSide | PulumiSide) => side.ModelSource.fromUri('https://models.example.com/fraud/3/model.onnx', {
      sha256: 'b'.repeat(64), profile: { uri: 'https://models.example.com/fraud/3/profile.json', sha256: 'c'.repeat(64) },
      optimize: { level: 'all', quantize: 'dynamic-int8', maxError: 0.02, minAgreement: 0.98, validateSamples: 128 },
    });
    const objects = await kubernetesObjectsOf(() => new mp.ModelService('optimized', { model: source(mp), namespace: 'risk' }));
    const chart = new Chart(Testing.app(), 'optimized', { namespace: 'risk' });
    new mc.ModelService(chart, 'optimized', { model: source(mc) });
    const podOf = (objects: any[]) => objects.find((o) => o.kind === 'Deployment').spec.template.spec;
    const expected = podOf(Testing.synth(chart));
    const actual = podOf(objects.map((o) => o.inputs));
    assert.deepEqual(actual.initContainers.map((c: any) => c.name), ['fetch-model', 'fetch-profile', 'optimize-model']);
    assert.deepEqual(actual.initContainers.map((c: any) => c.args), expected.initContainers.map((c: any) => c.args));
    assert.deepEqual(actual.initContainers, expected.initContainers);
    assert.deepEqual(actual.volumes, expected.volumes);
    assert.deepEqual(actual.containers, expected.containers);
  });

  it('puts children under their component and exposes the service\'s names and URLs', async () => {
    const service = new mp.ModelService('ocr', { model: mp.ModelSource.fromImage('registry/ocr:1'), namespace: 'vision' });
    const deploymentUrn = await value((await childOf(service)).urn);
    assert.match(deploymentUrn, /modelship:index:ModelService\$kubernetes:/);
    const name = await value(service.serviceName);
    assert.equal(await value(service.restUrl), `http://${name}.vision.svc.cluster.local:8080`);
    assert.equal(await value(service.grpcAddress), `${name}.vision.svc.cluster.local:8081`);
    assert.match(await value(service.deploymentName), /^ocr-deployment-/);
  });

  it('gives an https restUrl with tlsSecret, as the cdk8s construct does, with a plain or an Output namespace', async () => {
    const plain = new mp.ModelService('secure', { model: mp.ModelSource.fromImage('registry/m:1'), namespace: 'vision', tlsSecret: secret('secure-tls') });
    await settle();
    assert.equal(await value(plain.restUrl), `https://${await value(plain.serviceName)}.vision.svc.cluster.local:8080`);
    registered.length = 0;
    const late = new mp.ModelService('secure-late', {
      model: mp.ModelSource.fromImage('registry/m:1'), namespace: pulumi.output(Promise.resolve('team-b')), tlsSecret: secret('late-tls'),
      exposure: mp.Exposure.loadBalancer(),
    });
    new mp.ModelMonitoring('secure-late-monitoring', { service: late });
    assert.equal(await value(late.restUrl), `https://${await value(late.serviceName)}.team-b.svc.cluster.local:80`);
    await settle();
    const monitor = registered.find((r) => r.inputs.kind === 'ServiceMonitor')!;
    assert.deepEqual(monitor.inputs.spec.endpoints[0].tlsConfig, { ca: { secret: { name: 'late-tls', key: 'ca.crt' } }, serverName: `${await value(late.serviceName)}.team-b.svc` });
    assert.equal(monitor.inputs.spec.endpoints[0].scheme, 'https');
    const anywhere = new mp.ModelService('secure-default', { model: mp.ModelSource.fromImage('registry/m:1'), tlsSecret: secret('d-tls') });
    await settle();
    assert.equal(await value(anywhere.restUrl), `https://${await value(anywhere.serviceName)}:8080`, 'no namespace: the bare Service name, as cdk8s gives it');
    assert.equal(await value(anywhere.grpcAddress), `${await value(anywhere.serviceName)}:8081`);
    const cdkChart = new Chart(Testing.app(), 'secure', { namespace: 'vision' });
    assert.match(new mc.ModelService(cdkChart, 'secure', { model: mc.ModelSource.fromImage('registry/m:1'), tlsSecret: secret('secure-tls') }).restUrl, /^https:\/\//);
  });

  it('carries an Output-valued image and namespace into every object', async () => {
    registered.length = 0;
    const image = pulumi.output(Promise.resolve('registry.example.com/runtime@sha256:' + 'c'.repeat(64)));
    const namespace = pulumi.output(Promise.resolve('team-a'));
    const service = new mp.ModelService('late', { model: mp.ModelSource.fromUri('https://m/x.onnx', { sha256: 'd'.repeat(64) }), image, namespace });
    new mp.ModelMonitoring('late-monitoring', { service });
    await value(service.restUrl);
    await settle();
    const objects = registered.filter((r) => r.type.startsWith('kubernetes:'));
    assert.ok(objects.length >= 5);
    for (const object of objects) assert.equal(object.inputs.metadata.namespace, 'team-a', object.inputs.kind);
    const deployment = objects.find((o) => o.inputs.kind === 'Deployment')!;
    assert.equal(deployment.inputs.spec.template.spec.containers[0].image, 'registry.example.com/runtime@sha256:' + 'c'.repeat(64));
    assert.equal(deployment.inputs.spec.template.spec.initContainers[0].image, deployment.inputs.spec.template.spec.containers[0].image);
    const rules = objects.find((o) => o.inputs.kind === 'PrometheusRule')!;
    assert.ok(JSON.stringify(rules.inputs).includes('namespace=\\"team-a\\"'));
    assert.ok(!JSON.stringify(objects).includes('placeholder'));
    assert.equal(await value(service.restUrl), `http://${await value(service.serviceName)}.team-a.svc.cluster.local:8080`);
  });
});

/** The first custom resource registered under a component. */
async function childOf(component: pulumi.ComponentResource): Promise<pulumi.CustomResource> {
  await settle();
  const children: pulumi.Resource[] = (component as any).__childResources ? [...(component as any).__childResources] : [];
  const custom = children.find((c) => pulumi.CustomResource.isInstance(c));
  assert.ok(custom, 'the component has custom-resource children');
  return custom as pulumi.CustomResource;
}

describe('what each side loads', () => {
  const loaded = (entry: string) => {
    const { execFileSync } = require('node:child_process') as typeof import('node:child_process');
    const script = `require(${JSON.stringify(entry)}); console.log(JSON.stringify(Object.keys(require.cache)))`;
    return JSON.parse(execFileSync(process.execPath, ['-e', script], { cwd: require('node:path').join(__dirname, '..', '..') }).toString()) as string[];
  };

  it('the cdk8s side never loads @pulumi/*', () => {
    const modules = loaded('modelship');
    assert.ok(modules.some((m) => m.includes('cdk8s-plus-27')));
    assert.deepEqual(modules.filter((m) => m.includes('@pulumi')), []);
  });

  it('the Pulumi side needs no cdk8s CLI', () => {
    const modules = loaded('modelship/pulumi');
    assert.ok(modules.some((m) => m.includes('@pulumi/kubernetes')));
    assert.deepEqual(modules.filter((m) => m.includes('cdk8s-cli')), []);
  });
});

describe('examples/pulumi', () => {
  /** What the example registers, captured once: a module runs its program only when first imported. */
  let exampleObjects: Registered[] = [];
  before(async () => {
    exampleObjects = await kubernetesObjectsOf(async () => {
      const program = await import('../../examples/pulumi/index.js');
      await value(program.linearRegressionUrl);
    });
  });

  it('registers the same kinds of objects as the cdk8s example', () => {
    const kinds = exampleObjects.map((r) => r.inputs.kind);
    for (const kind of ['Namespace', 'Deployment', 'Service', 'ConfigMap', 'ScaledObject', 'ServiceMonitor', 'PrometheusRule', 'HTTPRoute', 'GRPCRoute']) assert.ok(kinds.includes(kind), kind);
    const linearService = exampleObjects.find((r) => r.inputs.kind === 'Service' && r.inputs.spec.type === 'LoadBalancer')!;
    assert.equal(linearService.inputs.metadata.namespace, 'models');
    assert.equal(linearService.inputs.spec.ports[0].port, 80);
    const deployments = exampleObjects.filter((r) => r.inputs.kind === 'Deployment');
    assert.deepEqual(deployments.map((d) => [d.name, d.inputs.spec.replicas]).sort(), [['my-model-deployment', 2], ['text-detection-deployment', undefined], ['text-detection-v2-deployment', 2]],
      'the autoscaled Deployment leaves the replica count to its ScaledObject');
    const route = exampleObjects.find((r) => r.inputs.kind === 'HTTPRoute')!;
    assert.deepEqual(route.inputs.spec.rules[0].backendRefs.map((b: any) => [b.name, b.weight]), [['text-detection', 90], ['text-detection-v2', 10]]);
  });

  it('registers the objects the cdk8s example synthesizes, equal but for the names each door generates', () => {
    // The cdk8s example as `npx cdk8s synth` runs it, writing dist/ in a scratch directory.
    const scratch = mkdtempSync(join(tmpdir(), 'modelship-example-'));
    try {
      execFileSync(process.execPath, [join(REPO_ROOT, 'examples', 'cdk8s', 'main.js')], { cwd: scratch });
      const cdk8sObjects = readdirSync(join(scratch, 'dist')).flatMap((file) => YAML.parseAllDocuments(readFileSync(join(scratch, 'dist', file), 'utf8')).map((d) => d.toJSON()));
      // The Pulumi program makes its Namespaces itself, outside the components.
      const pulumiObjects = exampleObjects.filter((r) => r.inputs.kind !== 'Namespace').map((r) => r.inputs);
      assert.deepEqual(normalized(pulumiObjects), normalized(cdk8sObjects));
    } finally {
      rmSync(scratch, { recursive: true, force: true });
    }
  });
});

/** Kinds whose names both doors take from the props, not from construct paths. */
const NAMED_BY_PROPS = new Set(['Service', 'HTTPRoute', 'GRPCRoute', 'ReferenceGrant']);

/**
 * Objects with the names each door generates from its construct paths (a Deployment's, a ConfigMap's, cdk8s-plus's
 * selector address) replaced by what they name, so that two doors' objects compare. Service and route names come
 * from the props on both doors and stay; so does everything else.
 */
function normalized(objects: any[]): any[] {
  const model = (o: any) => o.metadata.labels?.['app.kubernetes.io/name'] ?? '?';
  const names = new Map<string, string>();
  for (const o of objects) {
    if (!NAMED_BY_PROPS.has(o.kind)) names.set(o.metadata.name, `<${o.kind} of ${model(o)}>`);
    const address = o.kind === 'Deployment' ? o.spec.selector.matchLabels['cdk8s.io/metadata.addr'] : undefined;
    if (address) names.set(address, `<selector of ${model(o)}>`);
  }
  const longestFirst = [...names.keys()].sort((x, y) => y.length - x.length);
  return objects.map((o) => {
    let text = JSON.stringify(o);
    for (const name of longestFirst) text = text.split(name).join(names.get(name)!);
    // A dashboard's uid hashes the namespace, which the Pulumi example gives as an Output: unknown when the uid is
    // made, so that door hashes the service alone (docs/constructs.md, Pulumi).
    text = text.replace(/modelship-([a-z0-9-]+)-[0-9a-f]{10}\b/g, 'modelship-$1-<hash>');
    return JSON.parse(text);
  }).sort((x, y) => canonical(x).localeCompare(canonical(y)));
}

/** JSON with every object's keys sorted: the same text for equal objects, whatever order their keys were set in. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (v && typeof v === 'object' && !Array.isArray(v)
    ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v));
}

