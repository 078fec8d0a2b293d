/**
 * The Pulumi example: the same services and route as examples/cdk8s, from the same constructs.
 * `npm ci` compiles it; `pulumi up` (with a stack and a cluster) runs it from Pulumi.yaml at the repo root.
 */
import * as k8s from '@pulumi/kubernetes';
import { join } from 'node:path';
import { Exposure, ModelAutoscaler, ModelMonitoring, ModelRoute, ModelService, ModelSource, ScalingSignal } from 'modelship/pulumi';

// A namespace made by this program: its name is an Output, and it flows into every object below.
const models = new k8s.core.v1.Namespace('models', { metadata: { name: 'models' } });

const linear = new ModelService('my-model', {
  namespace: models.metadata.name,
  modelName: 'my_model',
  model: ModelSource.fromFile(join(__dirname, '..', 'models', 'my_model', '1', 'model.onnx')),
  exposure: Exposure.loadBalancer({ port: 80 }),
  replicas: 2,
  cpuRequest: '100m',
  cpuLimit: '1',
  memoryRequest: '256Mi',
  memoryLimit: '512Mi',
});
new ModelMonitoring('my-model-monitoring', { service: linear, extraLabels: { release: 'kube-prometheus-stack' } });

const detection = new ModelService('text-detection', {
  namespace: 'ocr',
  model: ModelSource.fromUri('https://models.example.com/ocr/ch_PP-OCRv4_det/1/model.onnx', {
    sha256: '30a86f5731181461d08021402766601e4302a9b9b9666be8aff402696339cdff',
    // The file is 4.7 MB: the emptyDir, and so the pod's ephemeral-storage, need not reserve the 2Gi default.
    sizeLimit: '64Mi',
  }),
  cpuRequest: '1',
  cpuLimit: '2',
  memoryRequest: '1Gi',
  memoryLimit: '2Gi',
  maxBatchSize: 8,
  drainTimeoutSeconds: 60,
  // Scaled by the autoscaler below: the Deployment leaves the replica count to it.
  autoscaled: true,
});
const autoscaler = new ModelAutoscaler('text-detection-autoscaler', {
  service: detection,
  minReplicas: 2,
  maxReplicas: 10,
  signal: ScalingSignal.inFlightRequestsWithKeda({ target: 4, prometheusAddress: 'http://prometheus-operated.monitoring.svc:9090' }),
});
new ModelMonitoring('text-detection-monitoring', {
  service: detection,
  autoscaler,
  latencyObjective: { thresholdSeconds: 0.5, percent: 99 },
  extraLabels: { release: 'kube-prometheus-stack' },
});

// Version 2 of the same model, under the same model name so that a request's URL (/v2/models/text-detection/...)
// works on either version, and its own Service name.
const detectionV2 = new ModelService('text-detection-v2', {
  namespace: 'ocr',
  modelName: 'text-detection',
  serviceName: 'text-detection-v2',
  modelVersion: 2,
  model: ModelSource.fromUri('https://models.example.com/ocr/ch_PP-OCRv4_det/2/model.onnx', {
    // A placeholder: the sha256 of the version 2 file goes here.
    sha256: '0000000000000000000000000000000000000000000000000000000000000000',
    sizeLimit: '64Mi',
  }),
  cpuRequest: '1',
  cpuLimit: '2',
  memoryRequest: '1Gi',
  memoryLimit: '2Gi',
  maxBatchSize: 8,
  drainTimeoutSeconds: 60,
});

// One address for both versions: 90% of the requests to version 1, 10% to version 2, over REST and gRPC.
const route = new ModelRoute('text-detection-route', {
  namespace: 'ocr',
  name: 'text-detection',
  gateway: { name: 'models', namespace: 'gateway-system' },
  hostnames: ['ocr.models.example.com'],
  backends: [{ service: detection, weight: 90 }, { service: detectionV2, weight: 10 }],
});

export const textDetectionRoute = route.routeName;
export const linearRegressionUrl = linear.restUrl;
export const textDetectionGrpc = detection.grpcAddress;
