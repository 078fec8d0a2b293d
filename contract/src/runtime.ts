/**
 * What the runtime container and the constructs that deploy it must agree on: ports, paths, the user, and the
 * drain arithmetic. The runtime reads its defaults from here and the constructs write manifests from here.
 */

/** Container port of the REST endpoints (OIP v2, TF Serving, /metrics). */
export const HTTP_PORT = 8080;
/** Container port of the OIP v2 gRPC service. */
export const GRPC_PORT = 8081;
/** Named container and Service ports. */
export const PORT_NAME = { http: 'http', grpc: 'grpc' } as const;

export const PATHS = {
  live: '/v2/health/live',
  ready: '/v2/health/ready',
  metrics: '/metrics',
} as const;

/** Where the image expects its model repository (`<model>/<version>/model.onnx`). */
export const MODEL_REPOSITORY_PATH = '/models';
/** The file name inside a version directory. */
export const MODEL_FILE_NAME = 'model.onnx';
/** Per-model settings files, looked up in this order inside `<repository>/<model>/`. */
export const MODEL_CONFIG_FILE_NAMES = ['config.json', 'config.yaml', 'config.yml'] as const;

/** The image's non-root user and group. */
export const RUNTIME_UID = 10001;
export const RUNTIME_GID = 10001;

/** The OIP v2 platform string for ONNX models (as Triton and KServe report it). */
export const PLATFORM = 'onnx_onnxv1';

/** Seconds the runtime waits for in-flight requests after SIGTERM before it gives up. */
export const DEFAULT_DRAIN_TIMEOUT_SECONDS = 30;
