/**
 * ModelService and ModelAutoscaler, synthesized in-process with cdk8s' Testing helpers and imported the way users
 * import them ('modelship'): the fields that make the pods work are asserted, not snapshotted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Chart, Size, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Exposure, ModelAutoscaler, ModelCredentials, ModelService, ModelSource, ScalingSignal } from 'modelship';
import { GRPC_PORT, HTTP_PORT, METRIC, PATHS, RUNTIME_UID, SERVE_SETTINGS } from '@modelship/contract';
import { assertValidManifests } from '../helpers/k8s-schema';
import { MODELS } from '../helpers/paths';

const SHA = 'a'.repeat(64);
type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; spec: any; data?: any; binaryData?: any };

function synth(build: (chart: Chart) => void, namespace = 'risk'): Manifest[] {
  const chart = new Chart(Testing.app(), 'test', { namespace });
  build(chart);
  return Testing.synth(chart) as Manifest[];
}
const byKind = (objects: Manifest[], kind: string) => objects.filter((o) => o.kind === kind);
const one = (objects: Manifest[], kind: string) => {
  const found = byKind(objects, kind);
  assert.equal(found.length, 1, `one ${kind}, found ${found.length}`);
  return found[0];
};

describe('ModelService', () => {
  const objects = synth((chart) => new ModelService(chart, 'fraud', { model: ModelSource.fromUri('https://models.example.com/fraud/3/model.onnx', { sha256: SHA }) }));
  const deployment = one(objects, 'Deployment');
  const pod = deployment.spec.template.spec;
  const runtime = pod.containers[0];

  it('selects its own pods, and the Service and policies select the same pods', () => {
    const podLabels = deployment.spec.template.metadata.labels;
    for (const [key, value] of Object.entries(deployment.spec.selector.matchLabels)) assert.equal(podLabels[key], value);
    const service = one(objects, 'Service');
    for (const [key, value] of Object.entries(service.spec.selector)) assert.equal(podLabels[key], value, `Service selector ${key}`);
    for (const kind of ['PodDisruptionBudget', 'NetworkPolicy']) {
      const selector = kind === 'NetworkPolicy' ? one(objects, kind).spec.podSelector : one(objects, kind).spec.selector;
      for (const [key, value] of Object.entries(selector.matchLabels)) assert.equal(podLabels[key], value, `${kind} selector ${key}`);
    }
    for (const key of ['name', 'instance', 'component', 'part-of', 'managed-by']) assert.ok(podLabels[`app.kubernetes.io/${key}`], key);
    assert.equal(podLabels['app.kubernetes.io/component'], 'model-server');
  });

  it('names container ports http and grpc, and the Service ports point at them', () => {
    assert.deepEqual(runtime.ports, [{ containerPort: HTTP_PORT, name: 'http' }, { containerPort: GRPC_PORT, name: 'grpc' }]);
    const service = one(objects, 'Service');
    assert.deepEqual(service.spec.ports.map((p: any) => [p.name, p.port, p.targetPort]), [['http', HTTP_PORT, HTTP_PORT], ['grpc', GRPC_PORT, GRPC_PORT]]);
    assert.equal(service.spec.type, 'ClusterIP');
    assert.equal(service.metadata.labels!['app.kubernetes.io/name'], 'fraud', 'a ServiceMonitor can select it');
  });

  it('probes the runtime\'s real health paths on the http port', () => {
    assert.equal(runtime.readinessProbe.httpGet.path, PATHS.ready);
    assert.equal(runtime.livenessProbe.httpGet.path, PATHS.live);
    assert.equal(runtime.startupProbe.httpGet.path, PATHS.ready);
    for (const probe of [runtime.readinessProbe, runtime.livenessProbe, runtime.startupProbe]) assert.equal(probe.httpGet.port, HTTP_PORT);
  });

  it('runs non-root on a read-only root with nothing extra allowed', () => {
    for (const container of [...pod.containers, ...pod.initContainers]) {
      assert.deepEqual(container.securityContext, {
        allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, privileged: false,
        readOnlyRootFilesystem: true, runAsGroup: RUNTIME_UID, runAsNonRoot: true, runAsUser: RUNTIME_UID,
      }, container.name);
    }
    assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
    assert.equal(pod.automountServiceAccountToken, false);
    assert.ok(runtime.volumeMounts.some((m: any) => m.mountPath === '/tmp'), 'a writable /tmp');
  });

  it('sizes the grace period and preStop from the drain timeout', () => {
    assert.equal(pod.terminationGracePeriodSeconds, 5 + SERVE_SETTINGS.drainTimeoutSeconds.default + 5);
    assert.deepEqual(runtime.lifecycle.preStop.exec.command, ['node', '-e', 'setTimeout(() => {}, 5000)']);
    assert.ok(runtime.args.includes(`--drain-timeout=${SERVE_SETTINGS.drainTimeoutSeconds.default}`));
    const custom = one(synth((chart) => new ModelService(chart, 'm', { model: ModelSource.fromImage('registry/m:1'), drainTimeoutSeconds: 60, preStopDelaySeconds: 10 })), 'Deployment');
    assert.equal(custom.spec.template.spec.terminationGracePeriodSeconds, 75);
  });

  it('serves the repository the init container fills, with requests and limits', () => {
    assert.deepEqual(runtime.args.slice(0, 3), ['serve', '--model-repository', '/models']);
    const init = pod.initContainers[0];
    assert.deepEqual(init.args, ['fetch', '--uri', 'https://models.example.com/fraud/3/model.onnx', '--sha256', SHA, '--dest', '/models/fraud/1/model.onnx']);
    assert.equal(init.image, runtime.image);
    assert.deepEqual(runtime.resources, {
      limits: { 'cpu': '2', 'memory': '2Gi', 'ephemeral-storage': '2304Mi' }, requests: { 'cpu': '500m', 'memory': '512Mi', 'ephemeral-storage': '2304Mi' },
    });
    assert.equal(pod.topologySpreadConstraints.length, 2);
    assert.equal(deployment.spec.replicas, 2);
    assert.deepEqual(deployment.spec.strategy.rollingUpdate, { maxSurge: 1, maxUnavailable: 0 });
  });

  it('names its instance after the Deployment, and selects on it alone in the NetworkPolicy', () => {
    const instance = deployment.metadata.labels!['app.kubernetes.io/instance'];
    assert.equal(instance, deployment.metadata.name);
    assert.equal(deployment.spec.template.metadata.labels['app.kubernetes.io/instance'], instance);
    for (const kind of ['Service', 'PodDisruptionBudget', 'NetworkPolicy']) assert.equal(one(objects, kind).metadata.labels!['app.kubernetes.io/instance'], instance, kind);
    assert.deepEqual(one(objects, 'NetworkPolicy').spec.podSelector, { matchLabels: { 'app.kubernetes.io/instance': instance } });
  });

  it('opens only the ports it serves, to the peers given', () => {
    const policy = one(objects, 'NetworkPolicy');
    assert.deepEqual(policy.spec.policyTypes, ['Ingress', 'Egress']);
    assert.deepEqual(policy.spec.ingress[0].ports.map((p: any) => p.port), [HTTP_PORT, GRPC_PORT]);
    const peers = one(synth((chart) => new ModelService(chart, 'm', {
      model: ModelSource.fromImage('registry/m:1'), allowFrom: [{ namespaceSelector: { matchLabels: { team: 'risk' } } }],
    })), 'NetworkPolicy');
    assert.deepEqual(peers.spec.ingress[0].from, [{ namespaceSelector: { matchLabels: { team: 'risk' } } }]);
  });

  it('exposes through a load balancer on port 80, as the seed does', () => {
    const service = one(synth((chart) => new ModelService(chart, 'm', { model: ModelSource.fromImage('registry/m:1'), exposure: Exposure.loadBalancer() })), 'Service');
    assert.equal(service.spec.type, 'LoadBalancer');
    assert.deepEqual(service.spec.ports[0], { name: 'http', port: 80, targetPort: HTTP_PORT });
  });

  it('passes runtime settings as the runtime\'s own flags, and asks for GPUs', () => {
    const d = one(synth((chart) => new ModelService(chart, 'm', {
      model: ModelSource.fromImage('registry/m:1'), maxBatchSize: 8, maxQueueDelayMicroseconds: 500, maxQueueSize: 64,
      maxExplainQueueSize: 0, maxExplainSamples: 1024, explainTimeoutSeconds: 20, maxBodyBytes: 1048576, intraOpThreads: 2, gpus: 1,
    })), 'Deployment').spec.template.spec.containers[0];
    for (const arg of [
      '--max-batch-size=8', '--max-queue-delay-microseconds=500', '--max-queue-size=64', '--max-explain-queue-size=0',
      '--max-explain-samples=1024', '--explain-timeout=20', '--max-body-bytes=1048576', '--intra-op-threads=2', '--execution-provider=cuda',
    ]) {
      assert.ok(d.args.includes(arg), arg);
    }
    assert.equal(d.image, 'registry/m:1');
    assert.equal(d.resources.limits['nvidia.com/gpu'], '1');
  });

  it('mounts a claim read-only and a small file from a ConfigMap, reading its signature', () => {
    const claim = synth((chart) => new ModelService(chart, 'm', {
      model: ModelSource.fromPersistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(chart, 'Claim', 'models-pvc'), 'repo'),
    }));
    const spec = one(claim, 'Deployment').spec.template.spec;
    assert.deepEqual(spec.volumes.find((v: any) => v.name === 'models').persistentVolumeClaim, { claimName: 'models-pvc', readOnly: true });
    assert.deepEqual(spec.containers[0].volumeMounts.find((m: any) => m.name === 'models'), { mountPath: '/models', name: 'models', readOnly: true, subPath: 'repo' });

    let service!: ModelService;
    const file = synth((chart) => { service = new ModelService(chart, 'my-model', { modelName: 'my_model', model: ModelSource.fromFile(MODELS.linearRegression) }); });
    const configMap = one(file, 'ConfigMap');
    assert.ok(configMap.binaryData['model.onnx'].length > 100);
    const mount = one(file, 'Deployment').spec.template.spec.containers[0].volumeMounts.find((m: any) => m.name === 'models');
    assert.equal(mount.mountPath, '/models/my_model/1');
    assert.deepEqual(service.signature?.inputs.map((i) => [i.name, i.datatype]), [['x', 'FP32']]);
  });

  it('builds PromQL from the runtime\'s metric names', () => {
    let service!: ModelService;
    synth((chart) => { service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('registry/m:1') }); });
    assert.match(service.metricRequestRate(), new RegExp(`^sum\\(rate\\(${METRIC.requests}\\{namespace="risk",service="${service.serviceName}"\\}\\[5m\\]\\)\\)$`));
    assert.match(service.metricErrorRatio(), /code=~"5\.\."/);
    assert.match(service.metricLatencyQuantile(0.99), new RegExp(`histogram_quantile\\(0.99, sum by \\(le\\) \\(rate\\(${METRIC.requestDuration}_bucket`));
    assert.match(service.metricInFlightPerPod(), new RegExp(METRIC.inFlight));
    assert.equal(service.restUrl, `http://${service.serviceName}:${HTTP_PORT}`);
  });
});

describe('ModelService ephemeral storage', () => {
  const pod = (objects: Manifest[]) => one(objects, 'Deployment').spec.template.spec;
  const storage = (container: any) => [container.resources.requests['ephemeral-storage'], container.resources.limits['ephemeral-storage']];
  const volume = (spec: any, name: string) => spec.volumes.find((v: any) => v.name === name);
  const fromUri = (options: { sizeLimit?: string } = {}) => ModelSource.fromUri('https://m/x.onnx', { sha256: SHA, ...options });

  it('reserves /tmp, logs and the largest ONNX file by default for fromUri, request equal to limit', () => {
    const spec = pod(synth((c) => new ModelService(c, 's', { model: fromUri() })));
    assert.deepEqual(storage(spec.containers[0]), ['2304Mi', '2304Mi']);
    assert.deepEqual(volume(spec, 'models').emptyDir, { sizeLimit: '2048Mi' });
    assert.deepEqual(volume(spec, 'tmp').emptyDir, { sizeLimit: '64Mi' });
  });

  it('gives every init container a request and limit for its logs', () => {
    const spec = pod(synth((c) => new ModelService(c, 's', { model: fromUri() })));
    assert.equal(spec.initContainers.length, 1);
    for (const init of spec.initContainers) assert.deepEqual(storage(init), ['64Mi', '64Mi'], init.name);
  });

  it('sizes the model emptyDir and the defaults from fromUri\'s sizeLimit, rounded up to whole MiB', () => {
    const small = pod(synth((c) => new ModelService(c, 's', { model: fromUri({ sizeLimit: '500Mi' }) })));
    assert.deepEqual(volume(small, 'models').emptyDir, { sizeLimit: '500Mi' });
    assert.deepEqual(storage(small.containers[0]), ['756Mi', '756Mi']);
    const decimal = pod(synth((c) => new ModelService(c, 's', { model: fromUri({ sizeLimit: '1G' }) })));
    assert.deepEqual(volume(decimal, 'models').emptyDir, { sizeLimit: '954Mi' });
    assert.deepEqual(storage(decimal.containers[0]), ['1210Mi', '1210Mi']);
  });

  it('needs only /tmp and logs when the model is not on an emptyDir', () => {
    for (const model of [ModelSource.fromImage('registry/m:1'), ModelSource.fromFile(MODELS.linearRegression)]) {
      const spec = pod(synth((c) => new ModelService(c, 's', { model })));
      assert.deepEqual(storage(spec.containers[0]), ['256Mi', '256Mi']);
      assert.equal(spec.initContainers, undefined);
    }
  });

  it('writes the quantities given exactly, and the request defaults to the limit', () => {
    const both = pod(synth((c) => new ModelService(c, 's', { model: fromUri({ sizeLimit: '1Gi' }), ephemeralStorageRequest: '1.5Gi', ephemeralStorageLimit: '3Gi' })));
    assert.deepEqual(storage(both.containers[0]), ['1.5Gi', '3Gi']);
    const limitOnly = pod(synth((c) => new ModelService(c, 's', { model: ModelSource.fromImage('registry/m:1'), ephemeralStorageLimit: '1G' })));
    assert.deepEqual(storage(limitOnly.containers[0]), ['1G', '1G']);
  });

  it('refuses bad quantities and a limit without room for the model, naming the prop and the fix', () => {
    const image = ModelSource.fromImage('registry/m:1');
    assert.throws(() => fromUri({ sizeLimit: '2 GB' }), /'sizeLimit' \('2 GB'\) is not a storage quantity Kubernetes accepts/);
    assert.throws(() => synth((c) => new ModelService(c, 's', { model: image, ephemeralStorageLimit: 'lots' })), /'ephemeralStorageLimit' \('lots'\) is not a storage quantity/);
    assert.throws(() => synth((c) => new ModelService(c, 's', { model: image, ephemeralStorageRequest: '-1Gi' })), /'ephemeralStorageRequest' \('-1Gi'\) is not a storage quantity/);
    assert.throws(() => synth((c) => new ModelService(c, 's', { model: fromUri(), ephemeralStorageLimit: '1Gi' })),
      /'ephemeralStorageLimit' \(1Gi\) must be at least 2112Mi, room for the model's emptyDirs \(2Gi, from ModelSource.fromUri's 'sizeLimit', twice it with 'optimize'\) and \/tmp \(64Mi\), or the kubelet evicts the pod; raise it or lower 'sizeLimit'/);
    assert.throws(() => synth((c) => new ModelService(c, 's', { model: image, ephemeralStorageLimit: '32Mi' })), /'ephemeralStorageLimit' \(32Mi\) must be at least 64Mi, room for \/tmp \(64Mi\)/);
    assert.throws(() => synth((c) => new ModelService(c, 's', { model: image, ephemeralStorageRequest: '1Gi' })),
      /'ephemeralStorageRequest' \(1Gi\) must not exceed 'ephemeralStorageLimit' \(256Mi\)/);
  });
});

describe('ModelService egress', () => {
  const egress = (model: ModelSource, props: { allowEgress?: kplus.k8s.NetworkPolicyEgressRule[] } = {}) =>
    one(synth((c) => new ModelService(c, 's', { model, ...props })), 'NetworkPolicy').spec.egress;
  const DNS = { ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }] };
  const tcp = (port: number) => ({ ports: [{ port, protocol: 'TCP' }] });

  it('allows only DNS when the model needs no download: the runtime opens no connections', () => {
    assert.deepEqual(egress(ModelSource.fromImage('registry/m:1')), [DNS]);
    assert.deepEqual(egress(ModelSource.fromFile(MODELS.linearRegression)), [DNS]);
  });

  it('allows DNS and the model host\'s port for fromUri: 443 for https, 80 for http, or the URI\'s own', () => {
    const cases: Array<[string, number]> = [
      ['https://models.example.com/fraud/3/model.onnx', 443],
      ['http://models.example.com/fraud/3/model.onnx', 80],
      ['https://models.example.com:8443/model.onnx', 8443],
      ['http://minio.storage.svc:9000/models/model.onnx', 9000],
      ['https://models.example.com:443/model.onnx', 443],
    ];
    for (const [uri, port] of cases) assert.deepEqual(egress(ModelSource.fromUri(uri, { sha256: SHA })), [DNS, tcp(port)], uri);
  });

  it('allows the payload sink\'s port, and sets the events\' namespace from the pod\'s', () => {
    const cases: Array<[string, number]> = [
      ['http://payload-sink.monitoring.svc/events', 80],
      ['https://sink.example.com/', 443],
      ['http://payload-sink.monitoring.svc:8081/', 8081],
    ];
    for (const [url, port] of cases) {
      const objects = synth((c) => new ModelService(c, 's', { model: ModelSource.fromImage('registry/m:1'), payloadLogging: { url } }));
      assert.deepEqual(one(objects, 'NetworkPolicy').spec.egress, [DNS, tcp(port)], url);
      const runtime = one(objects, 'Deployment').spec.template.spec.containers[0];
      assert.ok(runtime.args.includes(`--payload-log-url=${new URL(url).href}`), runtime.args.join(' '));
      assert.ok(!runtime.args.some((a: string) => a.startsWith('--payload-log-percent')), 'no percent: every inference, as KServe\'s logger');
      assert.deepEqual(runtime.env.find((e: any) => e.name === 'MODELSHIP_PAYLOAD_LOG_NAMESPACE'),
        { name: 'MODELSHIP_PAYLOAD_LOG_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } });
    }
    const both = synth((c) => new ModelService(c, 's', { model: ModelSource.fromUri('https://m/x.onnx', { sha256: SHA }),
      payloadLogging: { url: 'http://sink:9000/', percent: 10, serviceName: 'fraud', source: 'http://fraud.team-a.svc/' } }));
    assert.deepEqual(one(both, 'NetworkPolicy').spec.egress, [DNS, tcp(443), tcp(9000)]);
    const args = one(both, 'Deployment').spec.template.spec.containers[0].args;
    for (const flag of ['--payload-log-url=http://sink:9000/', '--payload-log-percent=10', '--payload-log-service-name=fraud', '--payload-log-source=http://fraud.team-a.svc/']) {
      assert.ok(args.includes(flag), `${flag} in ${args.join(' ')}`);
    }
    assert.deepEqual(egress(ModelSource.fromImage('registry/m:1')), [DNS], 'no sink, no egress for one');
  });

  it('appends the rules given in allowEgress', () => {
    const proxy = { to: [{ ipBlock: { cidr: '10.0.0.0/8' } }], ports: [{ port: kplus.k8s.IntOrString.fromNumber(3128), protocol: 'TCP' }] };
    assert.deepEqual(egress(ModelSource.fromUri('https://m/x.onnx', { sha256: SHA }), { allowEgress: [proxy] }),
      [DNS, tcp(443), { to: [{ ipBlock: { cidr: '10.0.0.0/8' } }], ports: [{ port: 3128, protocol: 'TCP' }] }]);
  });
});

describe('ModelService tracing', () => {
  const image = ModelSource.fromImage('registry/m:1');
  const DNS = { ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }] };
  const tcp = (port: number) => ({ ports: [{ port, protocol: 'TCP' }] });
  const runtimeOf = (objects: Manifest[]) => one(objects, 'Deployment').spec.template.spec.containers[0];
  const fieldRef = (fieldPath: string) => ({ valueFrom: { fieldRef: { fieldPath } } });

  it('sets the standard OTEL_* variables, the pod\'s name and namespace before the attributes that refer to them', () => {
    const objects = synth((c) => new ModelService(c, 'fraud', { model: image,
      tracing: { endpoint: 'http://otel-collector.observability.svc:4318', samplingRatio: 0.25, serviceName: 'fraud-scoring' },
      env: { OMP_WAIT_POLICY: kplus.EnvValue.fromValue('PASSIVE') } }));
    assert.deepEqual(runtimeOf(objects).env, [
      { name: 'OTEL_RESOURCE_ATTRIBUTES_POD_NAME', ...fieldRef('metadata.name') },
      { name: 'OTEL_RESOURCE_ATTRIBUTES_POD_NAMESPACE', ...fieldRef('metadata.namespace') },
      { name: 'OTEL_EXPORTER_OTLP_ENDPOINT', value: 'http://otel-collector.observability.svc:4318' },
      { name: 'OTEL_EXPORTER_OTLP_PROTOCOL', value: 'http/protobuf' },
      { name: 'OTEL_TRACES_SAMPLER', value: 'parentbased_traceidratio' },
      { name: 'OTEL_TRACES_SAMPLER_ARG', value: '0.25' },
      { name: 'OTEL_SERVICE_NAME', value: 'fraud-scoring' },
      { name: 'OTEL_RESOURCE_ATTRIBUTES', value: 'k8s.namespace.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAMESPACE),k8s.pod.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME)' },
      { name: 'OMP_WAIT_POLICY', value: 'PASSIVE' },
    ]);
    assert.deepEqual(one(objects, 'NetworkPolicy').spec.egress, [DNS, tcp(4318)]);
    assertValidManifests(objects);
  });

  it('samples a tenth of the traces that start here, named after the Service, by default', () => {
    const env = (props: { modelName?: string; serviceName?: string }) => Object.fromEntries(runtimeOf(synth((c) => new ModelService(c, 'x', {
      model: image, ...props, tracing: { endpoint: 'http://collector:4318/' } }))).env.map((e: any) => [e.name, e.value]));
    const defaults = env({ modelName: 'my_model' });
    assert.equal(defaults.OTEL_TRACES_SAMPLER_ARG, '0.1');
    assert.equal(defaults.OTEL_SERVICE_NAME, 'my-model', 'the Service\'s name, which the metrics are selected by');
    assert.equal(defaults.OTEL_EXPORTER_OTLP_ENDPOINT, 'http://collector:4318', 'the base URL, to which the exporter appends /v1/traces');
    assert.equal(env({ modelName: 'fraud', serviceName: 'fraud-canary' }).OTEL_SERVICE_NAME, 'fraud-canary');
  });

  it('allows the collector\'s port: its own, else 443 for https and 80 for http; beside the payload sink\'s, once when they share one', () => {
    const egress = (endpoint: string, payloadLogging?: { url: string }) =>
      one(synth((c) => new ModelService(c, 's', { model: image, tracing: { endpoint }, payloadLogging })), 'NetworkPolicy').spec.egress;
    assert.deepEqual(egress('http://collector.observability.svc:4318'), [DNS, tcp(4318)]);
    assert.deepEqual(egress('https://otlp.example.com'), [DNS, tcp(443)]);
    assert.deepEqual(egress('http://collector'), [DNS, tcp(80)]);
    assert.deepEqual(egress('https://otlp.example.com', { url: 'http://sink:9000/' }), [DNS, tcp(9000), tcp(443)]);
    assert.deepEqual(egress('https://otlp.example.com', { url: 'https://sink.example.com/' }), [DNS, tcp(443)]);
  });

  it('keeps the payload events\' namespace variable beside its own', () => {
    const env = runtimeOf(synth((c) => new ModelService(c, 's', { model: image, payloadLogging: { url: 'http://sink/' }, tracing: { endpoint: 'http://collector:4318' } }))).env;
    assert.deepEqual(env.slice(0, 3).map((e: any) => e.name), ['MODELSHIP_PAYLOAD_LOG_NAMESPACE', 'OTEL_RESOURCE_ATTRIBUTES_POD_NAME', 'OTEL_RESOURCE_ATTRIBUTES_POD_NAMESPACE']);
  });

  it('writes nothing of it without tracing', () => {
    const objects = synth((c) => new ModelService(c, 's', { model: image, env: { OTEL_TRACES_SAMPLER: kplus.EnvValue.fromValue('always_off') } }));
    assert.deepEqual(runtimeOf(objects).env, [{ name: 'OTEL_TRACES_SAMPLER', value: 'always_off' }], 'other OTEL_* variables pass through env');
    assert.equal(runtimeOf(synth((c) => new ModelService(c, 's', { model: image }))).env, undefined);
    assert.deepEqual(one(objects, 'NetworkPolicy').spec.egress, [DNS]);
  });

  it('passes collector headers through env, as a Secret', () => {
    const env = runtimeOf(synth((c) => new ModelService(c, 's', { model: image, tracing: { endpoint: 'https://otlp.example.com' },
      env: { OTEL_EXPORTER_OTLP_HEADERS: kplus.EnvValue.fromSecretValue({ secret: kplus.Secret.fromSecretName(c, 'H', 'otlp-headers'), key: 'headers' }) } }))).env;
    assert.deepEqual(env.at(-1), { name: 'OTEL_EXPORTER_OTLP_HEADERS', valueFrom: { secretKeyRef: { name: 'otlp-headers', key: 'headers' } } });
  });
});

describe('ModelAutoscaler', () => {
  it('scales on CPU with an autoscaling/v2 HPA that targets the Deployment, which drops its fixed replicas', () => {
    const objects = synth((chart) => {
      const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('registry/m:1') });
      new ModelAutoscaler(chart, 'auto', { service, minReplicas: 2, maxReplicas: 10 });
    });
    const hpa = one(objects, 'HorizontalPodAutoscaler');
    const deployment = one(objects, 'Deployment');
    assert.equal(hpa.apiVersion, 'autoscaling/v2');
    assert.deepEqual(hpa.spec.scaleTargetRef, { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.metadata.name });
    assert.deepEqual([hpa.spec.minReplicas, hpa.spec.maxReplicas], [2, 10]);
    assert.deepEqual(hpa.spec.metrics, [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }]);
    assert.equal(hpa.spec.behavior.scaleDown.stabilizationWindowSeconds, 300);
    assert.equal(deployment.spec.replicas, undefined);
  });

  it('scales on in-flight requests through KEDA, down to zero if asked', () => {
    const objects = synth((chart) => {
      const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('registry/m:1') });
      new ModelAutoscaler(chart, 'auto', { service, minReplicas: 0, maxReplicas: 5, signal: ScalingSignal.inFlightRequestsWithKeda({
        target: 4, prometheusAddress: 'http://prometheus:9090', activation: { query: 'sum(rate(nginx_ingress_controller_requests{service="fraud"}[2m]))' },
      }) });
    });
    const scaled = one(objects, 'ScaledObject');
    assert.equal(scaled.apiVersion, 'keda.sh/v1alpha1');
    assert.equal(scaled.spec.minReplicaCount, 0);
    assert.equal(scaled.spec.scaleTargetRef.name, one(objects, 'Deployment').metadata.name);
    assert.match(scaled.spec.triggers[0].metadata.query, new RegExp(`^sum\\(${METRIC.inFlight}\\{`));
    assert.equal(scaled.spec.triggers[0].metadata.threshold, '4');
    assert.equal(byKind(objects, 'HorizontalPodAutoscaler').length, 0);
    assert.equal(one(objects, 'Deployment').spec.replicas, undefined);
  });

  it('scales on in-flight requests as an HPA Pods metric with the prometheus-adapter rule it needs', () => {
    const objects = synth((chart) => {
      const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('registry/m:1') });
      new ModelAutoscaler(chart, 'auto', { service, signal: ScalingSignal.inFlightRequestsWithPrometheusAdapter({ target: 8 }) });
    });
    const hpa = one(objects, 'HorizontalPodAutoscaler');
    assert.deepEqual(hpa.spec.metrics[0], { type: 'Pods', pods: { metric: { name: METRIC.inFlight }, target: { type: 'AverageValue', averageValue: 8 } } });
    const rules = JSON.parse(one(objects, 'ConfigMap').data['rules.yaml']).rules;
    assert.equal(rules[0].name.as, METRIC.inFlight);
    assert.match(rules[0].seriesQuery, new RegExp(`^${METRIC.inFlight}\\{`));
  });
});

describe('ModelService with authentication and TLS from Secrets', () => {
  let service!: ModelService;
  const objects = synth((chart) => {
    service = new ModelService(chart, 'fraud', {
      model: ModelSource.fromImage('registry/m:1'),
      authTokenSecret: kplus.Secret.fromSecretName(chart, 'Tokens', 'fraud-tokens'), authTokenKey: 'api-tokens',
      tlsSecret: kplus.Secret.fromSecretName(chart, 'Tls', 'fraud-tls'),
    });
  });
  const pod = one(objects, 'Deployment').spec.template.spec;
  const runtime = pod.containers[0];

  it('passes the mounted files as the runtime\'s own flags', () => {
    for (const arg of [`--${SERVE_SETTINGS.authTokenFile.flag}=/etc/modelship/auth/tokens`,
      `--${SERVE_SETTINGS.tlsCertFile.flag}=/etc/modelship/tls/tls.crt`, `--${SERVE_SETTINGS.tlsKeyFile.flag}=/etc/modelship/tls/tls.key`]) {
      assert.ok(runtime.args.includes(arg), arg);
    }
  });

  it('mounts both Secrets read-only as whole volumes (which the kubelet updates), the token key as the file tokens', () => {
    const volume = (secretName: string) => pod.volumes.find((v: any) => v.secret?.secretName === secretName);
    assert.deepEqual(volume('fraud-tokens').secret, { secretName: 'fraud-tokens', defaultMode: 0o440, items: [{ key: 'api-tokens', path: 'tokens' }] });
    assert.deepEqual(volume('fraud-tls').secret.items, [{ key: 'tls.crt', path: 'tls.crt' }, { key: 'tls.key', path: 'tls.key' }]);
    for (const [secretName, mountPath] of [['fraud-tokens', '/etc/modelship/auth'], ['fraud-tls', '/etc/modelship/tls']]) {
      const mount = runtime.volumeMounts.find((m: any) => m.name === volume(secretName).name);
      assert.deepEqual(mount, { mountPath, name: volume(secretName).name, readOnly: true }, secretName);
    }
  });

  it('probes over HTTPS and reports an https URL', () => {
    for (const probe of [runtime.readinessProbe, runtime.livenessProbe, runtime.startupProbe]) assert.equal(probe.httpGet.scheme, 'HTTPS');
    assert.match(service.restUrl, /^https:\/\//);
    assert.equal(service.tlsEnabled, true);
  });

  it('leaves probes on HTTP, and no security flags or volumes, without the Secrets', () => {
    const plain = one(synth((chart) => new ModelService(chart, 'm', { model: ModelSource.fromImage('registry/m:1') })), 'Deployment').spec.template.spec;
    assert.ok(plain.containers[0].args.every((arg: string) => !/--(auth|tls)-/.test(arg)));
    assert.ok(plain.volumes.every((v: any) => v.secret === undefined));
    assert.notEqual(plain.containers[0].readinessProbe.httpGet.scheme, 'HTTPS');
  });

  it('defaults the token key to tokens, and wires either Secret alone', () => {
    const authOnly = one(synth((chart) => new ModelService(chart, 'm', {
      model: ModelSource.fromImage('registry/m:1'), authTokenSecret: kplus.Secret.fromSecretName(chart, 'T', 't'),
    })), 'Deployment').spec.template.spec;
    assert.deepEqual(authOnly.volumes.find((v: any) => v.secret).secret.items, [{ key: 'tokens', path: 'tokens' }]);
    assert.ok(!authOnly.containers[0].args.some((arg: string) => arg.startsWith('--tls-')));
    assert.notEqual(authOnly.containers[0].livenessProbe.httpGet.scheme, 'HTTPS');
  });

  it('passes the strict schema checks', () => assertValidManifests(objects));

  it('refuses a token key without a Secret, and a key Kubernetes would not accept', () => {
    assert.throws(() => synth((c) => new ModelService(c, 's', { model: ModelSource.fromImage('r/m:1'), authTokenKey: 'tokens' })), /'authTokenKey' \('tokens'\) needs 'authTokenSecret'/);
    assert.throws(() => synth((c) => new ModelService(c, 's', {
      model: ModelSource.fromImage('r/m:1'), authTokenSecret: kplus.Secret.fromSecretName(c, 'T', 't'), authTokenKey: 'a/b',
    })), /'authTokenKey' \('a\/b'\) must be a Secret key/);
  });
});

describe('every synthesized object passes the strict Kubernetes 1.27 and CRD schema checks', () => {
  const image = ModelSource.fromImage('registry/m:1');
  const variants: Array<[string, (chart: Chart) => void]> = [
    ['from a URI, defaults', (c) => new ModelService(c, 'fraud', { model: ModelSource.fromUri('https://m/x.onnx', { sha256: SHA }) })],
    ['from a URI on an explicit port, sized, extra egress', (c) => new ModelService(c, 'fraud', {
      model: ModelSource.fromUri('http://minio.storage:9000/m/x.onnx', { sha256: SHA, sizeLimit: '300M' }), ephemeralStorageRequest: '512Mi', ephemeralStorageLimit: '1Gi',
      allowEgress: [{ to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'proxy' } } }], ports: [{ port: kplus.k8s.IntOrString.fromNumber(3128), protocol: 'TCP' }] }],
    })],
    ['from a file, load balancer, every runtime setting, GPU, peers', (c) => new ModelService(c, 'my-model', {
      modelName: 'my_model', model: ModelSource.fromFile(MODELS.linearRegression), exposure: Exposure.loadBalancer(), gpus: 1, image: 'registry.example.com/modelship-runtime:cuda',
      maxBatchSize: 8, maxQueueDelayMicroseconds: 100, maxQueueSize: 10, maxBodyBytes: 4096, intraOpThreads: 1, interOpThreads: 1,
      drainTimeoutSeconds: 10, preStopDelaySeconds: 0, replicas: 1, allowFrom: [{ podSelector: { matchLabels: { role: 'client' } } }, { ipBlock: { cidr: '203.0.113.0/24' } }],
    })],
    ['from a claim, CPU autoscaler', (c) => new ModelAutoscaler(c, 'a', { service: new ModelService(c, 's', {
      model: ModelSource.fromPersistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(c, 'Claim', 'pvc'), 'repo') }) })],
    ['KEDA to zero', (c) => new ModelAutoscaler(c, 'a', { service: new ModelService(c, 's', { model: image }), minReplicas: 0,
      signal: ScalingSignal.inFlightRequestsWithKeda({ target: 2, prometheusAddress: 'http://p:9090', activation: { query: 'sum(queue_length)', threshold: 5 } }) })],
    ['prometheus-adapter', (c) => new ModelAutoscaler(c, 'a', { service: new ModelService(c, 's', { model: image }),
      signal: ScalingSignal.inFlightRequestsWithPrometheusAdapter({ target: 3 }) })],
    ['tracing and a payload sink', (c) => new ModelService(c, 's', { model: image,
      tracing: { endpoint: 'https://otlp.example.com', samplingRatio: 1, serviceName: 'fraud' }, payloadLogging: { url: 'http://sink:9000/' } })],
  ];
  for (const [name, build] of variants) {
    it(name, () => assertValidManifests(synth(build)));
  }
});

describe('synth-time errors name the prop, the value and the fix', () => {
  const image = ModelSource.fromImage('registry/m:1');
  const cases: Array<[string, (chart: Chart) => void, RegExp]> = [
    ['min > max', (c) => new ModelAutoscaler(c, 'a', { service: new ModelService(c, 's', { model: image }), minReplicas: 5, maxReplicas: 3 }), /'minReplicas' \(5\) must be less than or equal to 'maxReplicas' \(3\)/],
    ['zero max', (c) => new ModelAutoscaler(c, 'a', { service: new ModelService(c, 's', { model: image }), maxReplicas: 0 }), /'maxReplicas' \(0\) must be a positive integer/],
    ['zero min without KEDA', (c) => new ModelAutoscaler(c, 'a', { service: new ModelService(c, 's', { model: image }), minReplicas: 0 }), /'minReplicas' \(0\) must be an integer of at least 1 \(only KEDA can scale to zero\)/],
    ['fixed replicas', (c) => new ModelAutoscaler(c, 'a', { service: new ModelService(c, 's', { model: image, replicas: 3 }) }), /has fixed 'replicas'; remove them/],
    ['negative replicas', (c) => new ModelService(c, 's', { model: image, replicas: -1 }), /'replicas' \(-1\) must be a positive integer/],
    ['bad model name', (c) => new ModelService(c, 's', { model: image, modelName: 'Fraud Model!' }), /'modelName' \('Fraud Model!'\) must be 1 to 63/],
    ['bad namespace', (c) => new ModelService(new Chart(c, 'x', { namespace: 'Risk_Team' }), 's', { model: image }), /'namespace' \('Risk_Team'\) must be a DNS label/],
    ['bad sha256', () => ModelSource.fromUri('https://m/x.onnx', { sha256: 'abc' }), /'sha256' \('abc'\) must be the file's sha256 as 64 lower-case hex digits/],
    ['bad scheme', () => ModelSource.fromUri('ftp://m/x.onnx', { sha256: SHA }), /must be https:\/\/, http:\/\/, s3:\/\/, gs:\/\/ or oci:\/\/, not ftp:\/\//],
    ['oversized ConfigMap model', (c) => new ModelService(c, 's', { model: ModelSource.fromFile(MODELS.ocrDetection) }), /over the \d+-byte ConfigMap limit; use ModelSource.fromUri/],
    ['not a model', (c) => new ModelService(c, 's', { model: ModelSource.fromFile(MODELS.corrupt) }), /is not an ONNX model/],
    ['bad cpu', (c) => new ModelService(c, 's', { model: image, cpuRequest: '2 cores' }), /'cpuRequest' \('2 cores'\) is not a CPU quantity Kubernetes accepts/],
    ['bad memory', (c) => new ModelService(c, 's', { model: image, memoryLimit: '1GB' }), /'memoryLimit' \('1GB'\) is not a memory quantity/],
    ['request over limit', (c) => new ModelService(c, 's', { model: image, memoryRequest: '4Gi', memoryLimit: '1Gi' }), /'memoryRequest' \(4Gi\) must not exceed 'memoryLimit' \(1Gi\)/],
    ['runtime bound', (c) => new ModelService(c, 's', { model: image, maxBatchSize: 0 }), /'maxBatchSize' \(0\) must be an integer from 1 to 4096 \(the runtime's --max-batch-size\)/],
    ['bad cpu target', () => ScalingSignal.cpu(150), /utilization \(150\) must be an integer percentage/],
    ['bad in-flight target', () => ScalingSignal.inFlightRequestsWithPrometheusAdapter({ target: 0 }), /'target' \(0\) must be a positive number/],
  ];
  for (const [name, build, message] of cases) {
    it(name, () => assert.throws(() => synth(build), message));
  }
});

describe('ModelService builds its pod over the final containers, as cdk8s-plus does', () => {
  const podOf = (objects: Manifest[]) => one(objects, 'Deployment').spec.template.spec;

  it('hardens an init container added after construction like its own', () => {
    const pod = podOf(synth((chart) => {
      const service = new ModelService(chart, 'fraud', { model: ModelSource.fromUri('https://m/x.onnx', { sha256: SHA }) });
      service.deployment.addInitContainer({ name: 'warm-cache', image: 'busybox:1.36', securityContext: { ensureNonRoot: true, user: 10001 } });
    }));
    assert.deepEqual(pod.initContainers.map((c: any) => c.name), ['fetch-model', 'warm-cache']);
    for (const container of [...pod.initContainers, ...pod.containers]) {
      assert.deepEqual(container.securityContext.capabilities.drop, ['ALL'], `${container.name} drops every capability`);
    }
    const added = pod.initContainers[1];
    assert.equal(added.resources.requests['ephemeral-storage'], '64Mi');
    assert.equal(added.resources.limits['ephemeral-storage'], '64Mi');
    assert.deepEqual(pod.securityContext.seccompProfile, { type: 'RuntimeDefault' });
  });

  it('keeps node affinity the user asks for beside its own anti-affinity and spread', () => {
    const pod = podOf(synth((chart) => new ModelService(chart, 'fraud', {
      model: ModelSource.fromImage('registry/m:1'), nodeSelector: { 'cloud.google.com/gke-nodepool': 'inference' },
      tolerations: [kplus.NodeTaintQuery.is('dedicated', 'inference')],
    })));
    assert.deepEqual(pod.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions,
      [{ key: 'cloud.google.com/gke-nodepool', operator: 'In', values: ['inference'] }]);
    assert.equal(pod.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].podAffinityTerm.topologyKey, 'kubernetes.io/hostname');
    assert.deepEqual(pod.tolerations, [{ key: 'dedicated', operator: 'Equal', value: 'inference' }]);
    assert.equal(pod.topologySpreadConstraints.length, 2);
  });

  it('exposes its NetworkPolicy and PodDisruptionBudget as the objects it synthesizes', () => {
    const chart = new Chart(Testing.app(), 'test', { namespace: 'risk' });
    const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('registry/m:1') });
    const objects = Testing.synth(chart) as Manifest[];
    assert.equal(service.networkPolicy.name, one(objects, 'NetworkPolicy').metadata.name);
    assert.equal(service.podDisruptionBudget?.name, one(objects, 'PodDisruptionBudget').metadata.name);
    const single = new ModelService(chart, 'single', { model: ModelSource.fromImage('registry/m:1'), replicas: 1 });
    assert.equal(single.podDisruptionBudget, undefined, 'one replica, no budget');
  });

  it('takes cdk8s-plus Cpu and cdk8s Size as well as quantity strings, and sizes onnxruntime threads by the CPU limit', () => {
    const runtimeOf = (props: Partial<ConstructorParameters<typeof ModelService>[2]>) =>
      podOf(synth((chart) => new ModelService(chart, 'm', { model: ModelSource.fromImage('registry/m:1'), ...props }))).containers[0];
    const typed = runtimeOf({ cpuRequest: kplus.Cpu.millis(250), cpuLimit: kplus.Cpu.units(4), memoryRequest: Size.mebibytes(768), memoryLimit: Size.gibibytes(3) });
    const strings = runtimeOf({ cpuRequest: '250m', cpuLimit: '4', memoryRequest: '768Mi', memoryLimit: '3072Mi' });
    assert.deepEqual(typed.resources, strings.resources);
    assert.ok(typed.args.includes('--intra-op-threads=4'));
    assert.ok(runtimeOf({ cpuLimit: '500m', cpuRequest: '100m' }).args.includes('--intra-op-threads=1'), 'a fraction of a core is one thread');
    assert.ok(runtimeOf({ cpuLimit: '3500m' }).args.includes('--intra-op-threads=3'), 'whole cores only: a fourth thread would be throttled');
    assert.ok(runtimeOf({ cpuLimit: '4', intraOpThreads: 2 }).args.includes('--intra-op-threads=2'), 'a given count wins');
  });

  it('names its Service after the model, predictably, or as told, and refuses two of one name in a namespace', () => {
    const service = (objects: Manifest[]) => one(objects, 'Service').metadata.name;
    assert.equal(service(synth((c) => new ModelService(c, 'x', { modelName: 'my_model', model: ModelSource.fromImage('r/m:1') }))), 'my-model');
    assert.equal(service(synth((c) => new ModelService(c, '7b.chat', { model: ModelSource.fromImage('r/m:1') }))), 'model-7b-chat');
    assert.equal(service(synth((c) => new ModelService(c, 'x', { model: ModelSource.fromImage('r/m:1'), serviceName: 'fraud-v3' }))), 'fraud-v3');
    assert.throws(() => synth((c) => {
      new ModelService(c, 'v1', { modelName: 'fraud', model: ModelSource.fromImage('r/m:1') });
      new ModelService(c, 'v2', { modelName: 'fraud', model: ModelSource.fromImage('r/m:2') });
    }), /the Service name 'fraud' is also ModelService 'test\/v\d's in namespace 'risk'; give one of them its own 'serviceName'/);
    assert.doesNotThrow(() => synth((c) => {
      new ModelService(c, 'v1', { modelName: 'fraud', model: ModelSource.fromImage('r/m:1') });
      new ModelService(c, 'v2', { modelName: 'fraud', model: ModelSource.fromImage('r/m:2'), serviceName: 'fraud-canary' });
    }));
  });

  it('writes the typed runtime settings and payload logging as the runtime\'s flags', () => {
    const runtime = podOf(synth((chart) => new ModelService(chart, 'm', {
      model: ModelSource.fromImage('registry/m:1'), graphOptimizationLevel: 'basic', executionMode: 'parallel', warmup: false,
      intraOpSpinning: 'off', logLevel: 'debug', requestTimeoutSeconds: 20, maxResponseBytes: 1 << 20,
      payloadLogging: { percent: 5, maxBytes: 1024, redact: ['ssn', 'email'] },
    }))).containers[0];
    for (const flag of ['--graph-optimization-level=basic', '--execution-mode=parallel', '--warmup=false', '--intra-op-spinning=off',
      '--log-level=debug', '--request-timeout=20', `--max-response-bytes=${1 << 20}`, '--payload-log-percent=5', '--payload-log-max-bytes=1024',
      '--payload-log-redact=ssn', '--payload-log-redact=email']) {
      assert.ok(runtime.args.includes(flag), `${flag} in ${runtime.args.join(' ')}`);
    }
  });

  it('runs as the ServiceAccount, pulls with the Secret and policy, and adds environment variables it is given', () => {
    const objects = synth((chart) => new ModelService(chart, 'm', {
      model: ModelSource.fromImage('registry/m:1'), serviceAccount: kplus.ServiceAccount.fromServiceAccountName(chart, 'SA', 'model-reader'),
      imagePullSecret: kplus.Secret.fromSecretName(chart, 'Pull', 'registry-creds'), imagePullPolicy: kplus.ImagePullPolicy.IF_NOT_PRESENT,
      env: { OMP_WAIT_POLICY: kplus.EnvValue.fromValue('PASSIVE') },
    }));
    const pod = podOf(objects);
    assert.equal(pod.serviceAccountName, 'model-reader');
    assert.equal(pod.automountServiceAccountToken, false, 'the runtime calls no API: still no token');
    assert.deepEqual(pod.imagePullSecrets, [{ name: 'registry-creds' }]);
    assert.equal(pod.containers[0].imagePullPolicy, 'IfNotPresent');
    assert.deepEqual(pod.containers[0].env, [{ name: 'OMP_WAIT_POLICY', value: 'PASSIVE' }]);
    assertValidManifests(objects);
  });

  it('puts an internal load balancer\'s annotations and source ranges on the Service, and admits the ranges', () => {
    const objects = synth((chart) => new ModelService(chart, 'm', {
      model: ModelSource.fromImage('registry/m:1'), allowFrom: [{ ipBlock: { cidr: '10.0.0.0/8' } }],
      exposure: Exposure.loadBalancer({ annotations: { 'networking.gke.io/load-balancer-type': 'Internal' }, sourceRanges: ['10.20.0.0/16'] }),
    }));
    const service = one(objects, 'Service');
    assert.deepEqual(service.metadata.annotations, { 'networking.gke.io/load-balancer-type': 'Internal' });
    assert.deepEqual(service.spec.loadBalancerSourceRanges, ['10.20.0.0/16']);
    assert.deepEqual(one(objects, 'NetworkPolicy').spec.ingress[0].from, [{ ipBlock: { cidr: '10.0.0.0/8' } }, { ipBlock: { cidr: '10.20.0.0/16' } }]);
    assertValidManifests(objects);
  });

  it('puts annotations on a ClusterIP Service too', () => {
    const objects = synth((chart) => new ModelService(chart, 'm', {
      model: ModelSource.fromImage('registry/m:1'), exposure: Exposure.clusterIp({ annotations: { 'external-dns.alpha.kubernetes.io/hostname': 'fraud.internal' } }),
    }));
    assert.deepEqual(one(objects, 'Service').metadata.annotations, { 'external-dns.alpha.kubernetes.io/hostname': 'fraud.internal' });
  });

  it('routes a host through an Ingress to the REST port of a ClusterIP Service', () => {
    const objects = synth((chart) => new ModelService(chart, 'm', {
      model: ModelSource.fromImage('registry/m:1'),
      exposure: Exposure.ingress({ host: 'fraud.models.example.com', className: 'nginx', tlsSecret: kplus.Secret.fromSecretName(chart, 'Tls', 'fraud-cert') }),
    }));
    const service = one(objects, 'Service');
    assert.equal(service.spec.type, 'ClusterIP');
    const ingress = one(objects, 'Ingress');
    assert.equal(ingress.spec.ingressClassName, 'nginx');
    assert.deepEqual(ingress.spec.rules[0], { host: 'fraud.models.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: service.metadata.name, port: { number: HTTP_PORT } } } }] } });
    assert.deepEqual(ingress.spec.tls, [{ hosts: ['fraud.models.example.com'], secretName: 'fraud-cert' }]);
    assertValidManifests(objects);
  });
});

describe('what was accepted but wrong is refused with the fix', () => {
  const image = ModelSource.fromImage('registry/m:1');
  const cases: Array<[string, (chart: Chart) => void, RegExp]> = [
    ['load balancer port out of range', () => Exposure.loadBalancer({ port: 99999 }), /'port' \(99999\) must be an integer from 1 to 65535/],
    ['load balancer port on gRPC\'s', () => Exposure.loadBalancer({ port: GRPC_PORT }), /'port' \(8081\) is the gRPC port the Service already exposes; choose another port for REST/],
    ['bad source range', () => Exposure.loadBalancer({ sourceRanges: ['10.0.0.0/33'] }), /'sourceRanges' \('10.0.0.0\/33'\) must be a CIDR range/],
    ['bad ingress host', () => Exposure.ingress({ host: 'Fraud_Models' }), /'host' \('Fraud_Models'\) must be a DNS name/],
    ['load balancer with selector peers only', (c) => new ModelService(c, 's', {
      model: image, exposure: Exposure.loadBalancer(), allowFrom: [{ namespaceSelector: { matchLabels: { team: 'risk' } } }],
    }), /'allowFrom' has only pod or namespace selectors, but Exposure.loadBalancer\(\) brings clients from outside the cluster[\s\S]*ipBlock/],
    ['GPUs on the CPU image', (c) => new ModelService(c, 's', { model: ModelSource.fromUri('https://m/x.onnx', { sha256: SHA }), gpus: 1 }),
      /'gpus' \(1\) needs a runtime image built with the CUDA provider[\s\S]*EXECUTION_PROVIDER=cuda and set 'image'/],
    ['a version for an image source', (c) => new ModelService(c, 's', { model: image, modelVersion: 3 }),
      /'modelVersion' \(3\) has no effect with ModelSource.fromImage/],
    ['a version for a volume source', (c) => new ModelService(c, 's', {
      model: ModelSource.fromPersistentVolumeClaim(kplus.PersistentVolumeClaim.fromClaimName(c, 'C', 'pvc')), modelVersion: 2,
    }), /'modelVersion' \(2\) has no effect with ModelSource.fromPersistentVolumeClaim/],
    ['a construct id that cannot be a model name', (c) => new ModelService(c, 'Fraud Model', { model: image }),
      /the construct id 'Fraud Model' is used as the model's name[\s\S]*give 'modelName' \(e.g. modelName: 'Fraud-Model'\)/],
    ['a bad service name', (c) => new ModelService(c, 's', { model: image, serviceName: 'Fraud' }), /'serviceName' \('Fraud'\) must be 1 to 63 lower-case letters/],
    ['a setting outside its choices', (c) => new ModelService(c, 's', { model: image, graphOptimizationLevel: 'max' as never }), /'graphOptimizationLevel' \('max'\) must be one of 'disabled', 'basic', 'extended', 'all'/],
    ['payload logging at 0%', (c) => new ModelService(c, 's', { model: image, payloadLogging: { percent: 0 } }), /'payloadLogging.percent' \(0\) turns payload logging off/],
    ['payload logging with neither percent nor url', (c) => new ModelService(c, 's', { model: image, payloadLogging: {} }), /'payloadLogging' needs 'percent' \(stdout records\) or 'url'/],
    ['a payload sink that is not http(s)', (c) => new ModelService(c, 's', { model: image, payloadLogging: { url: 'ftp://sink/' } }), /'payloadLogging.url' \('ftp:\/\/sink\/'\) must be an http:\/\/ or https:\/\/ URL/],
    ['a payload sink through env', (c) => new ModelService(c, 's', { model: image, env: { MODELSHIP_PAYLOAD_LOG_URL: kplus.EnvValue.fromValue('http://sink/') } }),
      /set the payload sink with 'payloadLogging.url', not env MODELSHIP_PAYLOAD_LOG_URL/],
    ['a payload sink with credentials', (c) => new ModelService(c, 's', { model: image, payloadLogging: { url: 'https://u:secret@sink/' } }),
      /'payloadLogging.url' \('https:\/\/u:\*\*\*@sink\/'\) must not hold credentials \(user:password@\): the runtime refuses them/],
    ['a collector that is not http(s)', (c) => new ModelService(c, 's', { model: image, tracing: { endpoint: 'grpc://collector:4317' } }),
      /'tracing.endpoint' \('grpc:\/\/collector:4317'\) must be an http:\/\/ or https:\/\/ URL/],
    ['a collector that is no URL', (c) => new ModelService(c, 's', { model: image, tracing: { endpoint: 'collector:4318' } }),
      /'tracing.endpoint' \('collector:4318'\) must be an http:\/\/ or https:\/\/ URL/],
    ['a collector with the traces path', (c) => new ModelService(c, 's', { model: image, tracing: { endpoint: 'http://collector:4318/v1/traces' } }),
      /'tracing.endpoint' \('http:\/\/collector:4318\/v1\/traces'\) must have no path, query or fragment: the exporter appends \/v1\/traces to it; give 'http:\/\/collector:4318'/],
    ['a collector with a query', (c) => new ModelService(c, 's', { model: image, tracing: { endpoint: 'http://collector:4318/?tenant=a' } }),
      /'tracing.endpoint' \('http:\/\/collector:4318\/\?tenant=a'\) must have no path, query or fragment/],
    ['a collector with credentials', (c) => new ModelService(c, 's', { model: image, tracing: { endpoint: 'https://user:hunter2@otlp.example.com' } }),
      /'tracing.endpoint' \('https:\/\/user:\*\*\*@otlp.example.com\/'\) must not hold credentials \(user:password@\)[\s\S]*OTEL_EXPORTER_OTLP_HEADERS from a Secret/],
    ['a sampling ratio above 1', (c) => new ModelService(c, 's', { model: image, tracing: { endpoint: 'http://collector:4318', samplingRatio: 10 } }),
      /'tracing.samplingRatio' \(10\) must be a number from 0 to 1/],
    ['a negative sampling ratio', (c) => new ModelService(c, 's', { model: image, tracing: { endpoint: 'http://collector:4318', samplingRatio: -0.1 } }),
      /'tracing.samplingRatio' \(-0.1\) must be a number from 0 to 1/],
    ['an empty trace service name', (c) => new ModelService(c, 's', { model: image, tracing: { endpoint: 'http://collector:4318', serviceName: '' } }),
      /'tracing.serviceName' must not be empty/],
    ['a collector through env', (c) => new ModelService(c, 's', { model: image, env: { OTEL_EXPORTER_OTLP_ENDPOINT: kplus.EnvValue.fromValue('http://collector:4318') } }),
      /set the trace collector with 'tracing.endpoint', not env OTEL_EXPORTER_OTLP_ENDPOINT: the NetworkPolicy must allow its port/],
    ['a traces collector through env', (c) => new ModelService(c, 's', { model: image, env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: kplus.EnvValue.fromValue('http://collector:4318/v1/traces') } }),
      /set the trace collector with 'tracing.endpoint', not env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT/],
    ['a second collector through env beside tracing', (c) => new ModelService(c, 's', { model: image, tracing: { endpoint: 'http://collector:4318' },
      env: { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: kplus.EnvValue.fromValue('http://other:4318/v1/traces') } }),
      /set the trace collector with 'tracing.endpoint', not env OTEL_EXPORTER_OTLP_TRACES_ENDPOINT/],
    ['a sampler through env beside tracing', (c) => new ModelService(c, 's', { model: image, tracing: { endpoint: 'http://collector:4318' },
      env: { OTEL_TRACES_SAMPLER_ARG: kplus.EnvValue.fromValue('1') } }), /env OTEL_TRACES_SAMPLER_ARG would override what 'tracing' writes; set it with 'tracing.samplingRatio'/],
    ['resource attributes through env beside tracing', (c) => new ModelService(c, 's', { model: image, tracing: { endpoint: 'http://collector:4318' },
      env: { OTEL_RESOURCE_ATTRIBUTES: kplus.EnvValue.fromValue('team=risk') } }), /env OTEL_RESOURCE_ATTRIBUTES would override what 'tracing' writes; remove it from 'env'/],
  ];
  for (const [name, build, message] of cases) {
    it(name, () => assert.throws(() => synth(build), message));
  }

  it('PromQL over a service in a chart without a namespace', () => {
    const chart = new Chart(Testing.app(), 'fraud');
    const service = new ModelService(chart, 's', { model: image });
    assert.throws(() => service.metricRequestRate(), /ModelService 'fraud\/s' is in a chart without a namespace[\s\S]*new Chart\(app, 'fraud', \{ namespace: '<namespace>' \}\)/);
  });
});

describe('the ServiceAccount a pod runs as', () => {
  it('is the one the model\'s credentials name, or the one given, and never two', () => {
    const uri = 's3://models/fraud/3/model.onnx';
    const account = (props: Partial<ConstructorParameters<typeof ModelService>[2]>) => one(synth((chart) => new ModelService(chart, 'm', {
      model: ModelSource.fromUri(uri, { sha256: SHA, credentials: ModelCredentials.fromServiceAccount('model-reader') }), ...props,
    })), 'Deployment').spec.template.spec.serviceAccountName;
    assert.equal(account({}), 'model-reader');
    assert.equal(account({ serviceAccount: kplus.ServiceAccount.fromServiceAccountName(new Chart(Testing.app(), 'x'), 'SA', 'model-reader') }), 'model-reader');
    assert.throws(() => account({ serviceAccount: kplus.ServiceAccount.fromServiceAccountName(new Chart(Testing.app(), 'y'), 'SA', 'other') }),
      /'serviceAccount' \('other'\) and the model's credentials \(ModelCredentials.fromServiceAccount\('model-reader'\)\) name different ServiceAccounts/);
  });
});
