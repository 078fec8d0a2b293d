/**
 * The cdk8s example: `npx cdk8s synth` writes dist/linear-regression.k8s.yaml and dist/ocr.k8s.yaml.
 *  - the linear-regression example model, shipped in a ConfigMap behind a LoadBalancer (80 → http), so TF
 *    Serving's predict request `curl -d '{"instances": [1.0, 2.0, 3.0]}' http://<lb>/v1/models/my_model:predict` works;
 *  - a realistic one: PaddleOCR text detection fetched from a URI and verified, autoscaled on in-flight requests,
 *    with its next version beside it taking 10% of the requests through a Gateway API route (REST and gRPC).
 * Both are monitored: a ServiceMonitor, SLO and resource alerts in a PrometheusRule, and a Grafana dashboard.
 */
import { App, Chart } from 'cdk8s';
import { join } from 'node:path';
import { Exposure, ModelAutoscaler, ModelMonitoring, ModelRoute, ModelService, ModelSource, ScalingSignal } from 'modelship';

const app = new App();

const linearChart = new Chart(app, 'linear-regression', { namespace: 'models' });
const linear = new ModelService(linearChart, 'my-model', {
  modelName: 'my_model',
  model: ModelSource.fromFile(join(__dirname, '..', 'models', 'my_model', '1', 'model.onnx')),
  exposure: Exposure.loadBalancer({ port: 80 }),
  replicas: 2,
  cpuRequest: '100m',
  cpuLimit: '1',
  memoryRequest: '256Mi',
  memoryLimit: '512Mi',
});
// CPU, memory, latency and errors, scraped and alerted on.
new ModelMonitoring(linearChart, 'my-model-monitoring', { service: linear, extraLabels: { release: 'kube-prometheus-stack' } });

const ocr = new Chart(app, 'ocr', { namespace: 'ocr' });
const detection = new ModelService(ocr, 'text-detection', {
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
});
const autoscaler = new ModelAutoscaler(ocr, 'text-detection-autoscaler', {
  service: detection,
  minReplicas: 2,
  maxReplicas: 10,
  signal: ScalingSignal.inFlightRequestsWithKeda({ target: 4, prometheusAddress: 'http://prometheus-operated.monitoring.svc:9090' }),
});

new ModelMonitoring(ocr, 'text-detection-monitoring', {
  service: detection,
  autoscaler,
  availabilityObjective: 99.9,
  latencyObjective: { thresholdSeconds: 0.5, percent: 99 },
  extraLabels: { release: 'kube-prometheus-stack' },
});

// Version 2 of the same model, under the same model name so that a request's URL (/v2/models/text-detection/...)
// works on either version, and its own Service name.
const detectionV2 = new ModelService(ocr, 'text-detection-v2', {
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
new ModelRoute(ocr, 'text-detection-route', {
  name: 'text-detection',
  gateway: { name: 'models', namespace: 'gateway-system' },
  hostnames: ['ocr.models.example.com'],
  backends: [{ service: detection, weight: 90 }, { service: detectionV2, weight: 10 }],
});

app.synth();
