/**
 * KServeRuntime and KServeInferenceService: the fields KServe reads (model formats, protocols, the container's name,
 * args with KServe's placeholder, port names, Prometheus annotations), ModelService's security context, both objects
 * against KServe v0.20.0's CRD schemas, and the props refused with messages that name the prop, the value and the fix.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import { KServeInferenceService, KServeRuntime, type KServeRuntimeProps, ModelService, ModelSource } from 'modelship';
import { HTTP_PORT, PATHS, SERVE_SETTINGS } from '@modelship/contract';
import { parseServeSettings } from '../../runtime/src/config';
import { assertValidManifests, validateManifest } from '../helpers/k8s-schema';

type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string }; spec: any };

function synth(props: KServeRuntimeProps = {}, namespace: string | undefined = 'risk') {
  const chart = new Chart(Testing.app(), 'kserve', { namespace });
  const runtime = new KServeRuntime(chart, 'modelship-onnx', props);
  const isvc = runtime.addInferenceService('fraud', { storageUri: 's3://models/fraud' });
  const objects = Testing.synth(chart) as Manifest[];
  const [servingRuntime] = objects.filter((o) => o.kind.endsWith('ServingRuntime'));
  const [inferenceService] = objects.filter((o) => o.kind === 'InferenceService');
  return { chart, runtime, isvc, objects, servingRuntime, inferenceService, container: servingRuntime.spec.containers[0] };
}

describe('KServeRuntime', () => {
  it('is a ServingRuntime KServe chooses for onnx over v1, v2 and grpc-v2, valid against the KServe CRD', () => {
    const { objects, servingRuntime } = synth();
    assertValidManifests(objects);
    assert.equal(servingRuntime.apiVersion, 'serving.kserve.io/v1alpha1');
    assert.equal(servingRuntime.kind, 'ServingRuntime');
    assert.deepEqual(servingRuntime.metadata, { name: 'modelship-onnx', namespace: 'risk' });
    assert.deepEqual(servingRuntime.spec.supportedModelFormats, [{ name: 'onnx', version: '1', autoSelect: true }]);
    assert.deepEqual(servingRuntime.spec.protocolVersions, ['v1', 'v2', 'grpc-v2']);
    assert.deepEqual(servingRuntime.spec.annotations, { 'prometheus.kserve.io/port': String(HTTP_PORT), 'prometheus.kserve.io/path': PATHS.metrics });
  });

  it('runs one kserve-container with KServe\'s model directory and name placeholder, on ports named as KServe expects', () => {
    const { servingRuntime, container } = synth();
    assert.equal(servingRuntime.spec.containers.length, 1);
    assert.equal(container.name, 'kserve-container');
    assert.match(container.image, /^ghcr\.io\/modelship\/runtime:/);
    assert.deepEqual(container.args, ['serve', '--model-dir=/mnt/models', '--model-name={{.Name}}', '--http-port=8080', '--grpc-port=9000', '--drain-timeout=25']);
    assert.deepEqual(container.ports, [{ name: 'http1', containerPort: 8080, protocol: 'TCP' }, { name: 'h2c', containerPort: 9000, protocol: 'TCP' }]);
    assert.deepEqual(container.readinessProbe.httpGet, { path: PATHS.ready, port: 8080 });
    assert.deepEqual(container.livenessProbe.httpGet, { path: PATHS.live, port: 8080 });
    assert.deepEqual(container.startupProbe.httpGet, { path: PATHS.ready, port: 8080 });
  });

  it('traces with the same OTEL_* variables as ModelService, named after each InferenceService by KServe\'s placeholder', () => {
    const { objects, container } = synth({ tracing: { endpoint: 'http://otel-collector.observability:4318', samplingRatio: 0.05 } });
    assertValidManifests(objects);
    const env = Object.fromEntries(container.env.map((variable: any) => [variable.name, variable.value ?? variable.valueFrom]));
    assert.deepEqual(env, {
      OTEL_RESOURCE_ATTRIBUTES_POD_NAME: { fieldRef: { fieldPath: 'metadata.name' } },
      OTEL_RESOURCE_ATTRIBUTES_POD_NAMESPACE: { fieldRef: { fieldPath: 'metadata.namespace' } },
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel-collector.observability:4318',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
      OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
      OTEL_TRACES_SAMPLER_ARG: '0.05',
      OTEL_SERVICE_NAME: '{{.Name}}',
      OTEL_RESOURCE_ATTRIBUTES: 'k8s.namespace.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAMESPACE),k8s.pod.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME)',
    });
    // ModelService's container for the same prop: one definition, two forms.
    const chart = new Chart(Testing.app(), 'svc');
    new ModelService(chart, 'fraud', { model: ModelSource.fromImage('registry/fraud:1'), tracing: { endpoint: 'http://otel-collector.observability:4318', samplingRatio: 0.05 } });
    const deployment = (Testing.synth(chart) as Manifest[]).find((o) => o.kind === 'Deployment')!;
    const serviceEnv = deployment.spec.template.spec.containers.find((c: any) => c.name === 'runtime').env.filter((variable: any) => variable.name.startsWith('OTEL_'));
    assert.deepEqual(serviceEnv.map((variable: any) => variable.name), Object.keys(env));
    assert.throws(() => synth({ tracing: { endpoint: 'http://c:4318/v1/traces' } }), /'tracing.endpoint' .* must have no path/);
    assert.equal(synth().container.env, undefined, 'no variables without tracing');
  });

  it('writes args the runtime parses, with KServe\'s placeholder filled, and each setting prop as its flag', () => {
    const { container } = synth({ maxBatchSize: 8, logLevel: 'debug', warmup: false, drainTimeoutSeconds: 40 });
    const args: string[] = container.args.map((arg: string) => arg.replace('{{.Name}}', 'fraud'));
    assert.equal(args[0], 'serve');
    const settings = parseServeSettings(args.slice(1), {});
    assert.equal(settings.modelDir, '/mnt/models');
    assert.equal(settings.modelName, 'fraud');
    assert.equal(settings.httpPort, container.ports[0].containerPort);
    assert.equal(settings.grpcPort, container.ports[1].containerPort);
    assert.equal(settings.maxBatchSize, 8);
    assert.equal(settings.logLevel, 'debug');
    assert.equal(settings.warmup, false);
    assert.equal(settings.drainTimeoutSeconds, 40);
  });

  it('runs with ModelService\'s security context and a writable /tmp beside a read-only root filesystem', () => {
    const { container, servingRuntime } = synth();
    const chart = new Chart(Testing.app(), 'plain', { namespace: 'risk' });
    new ModelService(chart, 'fraud', { model: ModelSource.fromImage('registry/fraud:1') });
    const deployment = (Testing.synth(chart) as Manifest[]).find((o) => o.kind === 'Deployment')!;
    const pod = deployment.spec.template.spec;
    const runtime = pod.containers.find((c: any) => c.name === 'runtime');
    // A ServingRuntime has no pod security context: the seccomp profile moves onto the container.
    assert.deepEqual(container.securityContext, { ...runtime.securityContext, seccompProfile: pod.securityContext.seccompProfile });
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    assert.deepEqual(container.securityContext.capabilities, { drop: ['ALL'] });
    assert.deepEqual(container.volumeMounts, [{ name: 'tmp', mountPath: '/tmp' }]);
    assert.deepEqual(servingRuntime.spec.volumes, [{ name: 'tmp', emptyDir: { sizeLimit: '64Mi' } }]);
    const tmp = pod.volumes.find((v: any) => v.name === 'tmp');
    assert.deepEqual(servingRuntime.spec.volumes[0].emptyDir, tmp.emptyDir, 'the same /tmp as ModelService');
    assert.deepEqual(container.resources, { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '2', memory: '2Gi' } });
  });

  it('is a ClusterServingRuntime without a namespace when cluster-scoped, ranked above Triton when asked', () => {
    const { objects, servingRuntime, inferenceService } = synth({ clusterScoped: true, priority: 2 });
    assertValidManifests(objects);
    assert.equal(servingRuntime.kind, 'ClusterServingRuntime');
    assert.deepEqual(servingRuntime.metadata, { name: 'modelship-onnx' });
    assert.deepEqual(servingRuntime.spec.supportedModelFormats, [{ name: 'onnx', version: '1', autoSelect: true, priority: 2 }]);
    assert.equal(inferenceService.metadata.namespace, 'risk');
  });

  it('takes name, image, resources and autoSelect', () => {
    const { servingRuntime, container } = synth({ name: 'onnx', image: 'registry/runtime:1', autoSelect: false, cpuRequest: '1', memoryLimit: '4Gi' });
    assert.equal(servingRuntime.metadata.name, 'onnx');
    assert.equal(container.image, 'registry/runtime:1');
    assert.deepEqual(servingRuntime.spec.supportedModelFormats, [{ name: 'onnx', version: '1', autoSelect: false }]);
    assert.deepEqual(container.resources, { requests: { cpu: '1', memory: '512Mi' }, limits: { cpu: '2', memory: '4Gi' } });
  });

  it('refuses props KServe or the runtime would refuse, naming the prop, the value and the fix', () => {
    const refuses = (props: KServeRuntimeProps, message: RegExp, id = 'modelship-onnx') =>
      assert.throws(() => new KServeRuntime(new Chart(Testing.app(), 'c'), id, props), message);
    refuses({ clusterScoped: true, priority: 1 }, /'priority' \(1\) is kserve-tritonserver's for onnx.*give 2 to be preferred to Triton, or leave it unset/);
    refuses({ priority: 2, autoSelect: false }, /'priority' \(2\) ranks runtimes that KServe selects on its own, and 'autoSelect' is false; remove 'priority' or set 'autoSelect' to true/);
    refuses({ priority: 0 }, /'priority' \(0\) must be a positive integer/);
    refuses({ maxBatchSize: 0 }, /'maxBatchSize' \(0\) must be an integer from 1 to 4096 \(the runtime's --max-batch-size\)/);
    const tooLong = SERVE_SETTINGS.drainTimeoutSeconds.max + 1;
    refuses({ drainTimeoutSeconds: tooLong }, new RegExp(`'drainTimeoutSeconds' \\(${tooLong}\\) must be an integer from \\d+ to ${tooLong - 1}`));
    refuses({ cpuRequest: '4' }, /'cpuRequest' \(4\) must not exceed 'cpuLimit' \(2\)/);
    refuses({ name: 'ONNX' }, /'name' \('ONNX'\) must be a DNS label/);
    refuses({}, /the construct id 'ModelshipOnnx' is used as the name, which must be a DNS label .*give 'name' \(e\.g\. name: 'modelshiponnx'\)/, 'ModelshipOnnx');
  });
});

describe('KServeInferenceService', () => {
  it('asks for the onnx format from this runtime over protocol v2, with the storageUri, valid against the KServe CRD', () => {
    const { inferenceService, isvc } = synth();
    assert.deepEqual(validateManifest(inferenceService), []);
    assert.equal(inferenceService.apiVersion, 'serving.kserve.io/v1beta1');
    assert.deepEqual(inferenceService.metadata, { name: 'fraud', namespace: 'risk' });
    assert.equal(isvc.inferenceServiceName, 'fraud');
    const predictor = inferenceService.spec.predictor;
    assert.deepEqual(predictor.model, {
      modelFormat: { name: 'onnx', version: '1' }, runtime: 'modelship-onnx', protocolVersion: 'v2', storageUri: 's3://models/fraud',
    });
    assert.equal(predictor.minReplicas, 1);
    assert.equal(predictor.automountServiceAccountToken, false);
    // KServe's storage initializer runs in the pod too, as its image's user: the user is set on the runtime's container only.
    assert.deepEqual(predictor.securityContext, { runAsNonRoot: true, fsGroup: 10001, fsGroupChangePolicy: 'Always', seccompProfile: { type: 'RuntimeDefault' } });
    // The drain (25 s) and a margin: SIGKILL never cuts the drain short.
    assert.equal(predictor.terminationGracePeriodSeconds, 30);
  });

  it('takes replicas, a ServiceAccount and resources over the runtime\'s', () => {
    const chart = new Chart(Testing.app(), 'c', { namespace: 'risk' });
    const runtime = new KServeRuntime(chart, 'modelship-onnx', { drainTimeoutSeconds: 60 });
    new KServeInferenceService(chart, 'isvc', {
      runtime, name: 'fraud-v2', storageUri: 'gs://models/fraud/2', minReplicas: 0, maxReplicas: 4, serviceAccountName: 'model-reader',
      resources: { cpuLimit: '4', memoryLimit: '8Gi' },
    });
    const objects = Testing.synth(chart) as Manifest[];
    assertValidManifests(objects);
    const predictor = objects.find((o) => o.kind === 'InferenceService')!.spec.predictor;
    assert.equal(predictor.minReplicas, 0);
    assert.equal(predictor.maxReplicas, 4);
    assert.equal(predictor.serviceAccountName, 'model-reader');
    assert.equal(predictor.terminationGracePeriodSeconds, 65);
    assert.deepEqual(predictor.model.resources, { requests: { cpu: '500m', memory: '512Mi' }, limits: { cpu: '4', memory: '8Gi' } });
  });

  it('refuses a runtime KServe would not find from its namespace, and bad props', () => {
    const app = Testing.app();
    const runtime = new KServeRuntime(new Chart(app, 'a', { namespace: 'serving' }), 'modelship-onnx');
    assert.throws(() => runtime.addInferenceService('fraud', { storageUri: 's3://m/f' }, new Chart(app, 'b', { namespace: 'risk' })),
      /the InferenceService 'fraud' is in namespace 'risk' and its ServingRuntime 'modelship-onnx' in 'serving': KServe only finds a ServingRuntime in the InferenceService's namespace; create both in one chart, or make the runtime 'clusterScoped'/);
    const cluster = new KServeRuntime(new Chart(app, 'c'), 'cluster-onnx', { clusterScoped: true });
    cluster.addInferenceService('fraud', { storageUri: 's3://m/f' }, new Chart(app, 'd', { namespace: 'risk' }));
    const chart = new Chart(app, 'e', { namespace: 'serving' });
    assert.throws(() => runtime.addInferenceService('x', { storageUri: '/models/fraud' }, chart), /'storageUri' \('\/models\/fraud'\) must be a URI with a scheme/);
    assert.throws(() => runtime.addInferenceService('y', { storageUri: 's3://m/f', minReplicas: 3, maxReplicas: 2 }, chart), /'minReplicas' \(3\) must be less than or equal to 'maxReplicas' \(2\)/);
    assert.throws(() => runtime.addInferenceService('z', { storageUri: 's3://m/f', minReplicas: -1 }, chart), /'minReplicas' \(-1\) must be an integer of 0 or more/);
    assert.throws(() => runtime.addInferenceService('Fraud', { storageUri: 's3://m/f' }, chart), /the construct id 'Fraud' is used as the name.*give 'name' \(e\.g\. name: 'fraud'\)/);
  });
});
