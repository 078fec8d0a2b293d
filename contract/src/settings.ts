/**
 * The runtime's settings: one table that names each command-line flag, its environment variable, its bounds and
 * default. `runtime/src/config.ts` parses the container's args with it, and the constructs write container args
 * and validate props with it, so a prop can never produce a flag the runtime rejects.
 */
import { DEFAULT_DRAIN_TIMEOUT_SECONDS, GRPC_PORT, HTTP_PORT } from './runtime';

interface SettingBase {
  /** Long flag name without the leading dashes. */
  readonly flag: string;
  /** Environment variable read when the flag is absent. */
  readonly env: string;
  readonly description: string;
}
export interface IntegerSetting extends SettingBase {
  readonly kind: 'integer';
  readonly default: number;
  readonly min: number;
  readonly max: number;
}
/** A decimal number within bounds (an error tolerance, a share). */
export interface NumberSetting extends SettingBase {
  readonly kind: 'number';
  readonly default?: number;
  readonly min: number;
  readonly max: number;
}
export interface StringSetting extends SettingBase {
  readonly kind: 'string';
  readonly default?: string;
  /** When set, the only accepted values. */
  readonly choices?: readonly string[];
}
export interface BooleanSetting extends SettingBase {
  readonly kind: 'boolean';
  readonly default: boolean;
}
/** A repeatable flag; its environment variable holds comma-separated values. */
export interface ListSetting extends SettingBase {
  readonly kind: 'list';
}
export type Setting = IntegerSetting | NumberSetting | StringSetting | BooleanSetting | ListSetting;

const MiB = 1024 * 1024;

/** What `--max-body-bytes 0` and `--max-response-bytes 0` mean when the container has no memory limit. */
export const UNLIMITED_MEMORY_DEFAULTS = { maxBodyBytes: 64 * MiB, maxResponseBytes: 64 * MiB } as const;

export const GRAPH_OPTIMIZATION_LEVELS = ['disabled', 'basic', 'extended', 'all'] as const;
export type GraphOptimizationLevel = (typeof GRAPH_OPTIMIZATION_LEVELS)[number];
export const EXECUTION_MODES = ['sequential', 'parallel'] as const;
export type ExecutionMode = (typeof EXECUTION_MODES)[number];
export const EXECUTION_PROVIDERS = ['cpu', 'cuda'] as const;
export type ExecutionProvider = (typeof EXECUTION_PROVIDERS)[number];
export const SPINNING_CHOICES = ['auto', 'on', 'off'] as const;
export type Spinning = (typeof SPINNING_CHOICES)[number];
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const SERVE_SETTINGS = {
  modelRepository: {
    kind: 'string', flag: 'model-repository', env: 'MODELSHIP_MODEL_REPOSITORY',
    description: 'Directory laid out as <model>/<version>/model.onnx',
  },
  model: {
    kind: 'list', flag: 'model', env: 'MODELSHIP_MODEL',
    description: 'NAME=PATH.onnx, repeatable; serves one file as version 1 without a repository',
  },
  modelDir: {
    kind: 'string', flag: 'model-dir', env: 'MODELSHIP_MODEL_DIR',
    description: "One model's directory, holding model.onnx (served as version 1) or <version>/model.onnx: what KServe's storage initializer leaves at /mnt/models. Needs --model-name",
  },
  modelName: {
    kind: 'string', flag: 'model-name', env: 'MODELSHIP_MODEL_NAME',
    description: 'The name the model in --model-dir is served under (KServe passes the InferenceService name)',
  },
  host: {
    kind: 'string', flag: 'host', env: 'MODELSHIP_HOST', default: '0.0.0.0',
    description: 'Address both ports bind to',
  },
  httpPort: {
    kind: 'integer', flag: 'http-port', env: 'MODELSHIP_HTTP_PORT', default: HTTP_PORT, min: 0, max: 65535,
    description: 'REST port (OIP v2, TF Serving, /metrics); 0 picks a free port',
  },
  grpcPort: {
    kind: 'integer', flag: 'grpc-port', env: 'MODELSHIP_GRPC_PORT', default: GRPC_PORT, min: 0, max: 65535,
    description: 'OIP v2 gRPC port; 0 picks a free port',
  },
  maxBodyBytes: {
    kind: 'integer', flag: 'max-body-bytes', env: 'MODELSHIP_MAX_BODY_BYTES', default: 0, min: 0,
    max: 2048 * MiB, description: `Largest request body accepted; larger ones get 413. 0 derives it from the container's memory limit (at most ${UNLIMITED_MEMORY_DEFAULTS.maxBodyBytes / MiB} MiB, and that without a limit)`,
  },
  maxTensorElements: {
    kind: 'integer', flag: 'max-tensor-elements', env: 'MODELSHIP_MAX_TENSOR_ELEMENTS', default: 64 * MiB, min: 1,
    max: 2 ** 31 - 1, description: 'Largest element count a declared input shape may have; larger ones get 400',
  },
  maxResponseBytes: {
    kind: 'integer', flag: 'max-response-bytes', env: 'MODELSHIP_MAX_RESPONSE_BYTES', default: 0, min: 0,
    max: 2048 * MiB, description: `Largest output a request may produce (raw bytes); larger answers are refused with 400 before encoding, and an input without elements may span at most this / 8 elements. 0 derives it from the container's memory limit (at most ${UNLIMITED_MEMORY_DEFAULTS.maxResponseBytes / MiB} MiB, and that without a limit)`,
  },
  maxQueueSize: {
    kind: 'integer', flag: 'max-queue-size', env: 'MODELSHIP_MAX_QUEUE_SIZE', default: 256, min: 1, max: 1_000_000,
    description: 'Requests per model version that may wait to run; more get 429',
  },
  maxBatchSize: {
    kind: 'integer', flag: 'max-batch-size', env: 'MODELSHIP_MAX_BATCH_SIZE', default: 32, min: 1, max: 4096,
    description: 'Rows that queued requests to a model with a dynamic first dimension are merged into per run; 1 turns batching off',
  },
  maxQueueDelayMicroseconds: {
    kind: 'integer', flag: 'max-queue-delay-microseconds', env: 'MODELSHIP_MAX_QUEUE_DELAY_MICROSECONDS', default: 0,
    min: 0, max: 1_000_000,
    description: 'How long the oldest queued request may wait for more to batch with; 0 never waits, so an idle server adds no latency',
  },
  requestTimeoutSeconds: {
    kind: 'integer', flag: 'request-timeout', env: 'MODELSHIP_REQUEST_TIMEOUT', default: 60, min: 1, max: 3600,
    description: 'Seconds a client may take to send a whole request (headers within 10 s): slow clients cannot hold connections',
  },
  maxConnections: {
    kind: 'integer', flag: 'max-connections', env: 'MODELSHIP_MAX_CONNECTIONS', default: 4096, min: 1, max: 1_000_000,
    description: 'Open HTTP connections accepted at once; more are refused',
  },
  payloadLogPercent: {
    kind: 'integer', flag: 'payload-log-percent', env: 'MODELSHIP_PAYLOAD_LOG_PERCENT', default: 0, min: 0, max: 100,
    description: 'Percent of inferences whose inputs and outputs are logged (0: off, or every inference when --payload-log-url is set)',
  },
  payloadLogMaxBytes: {
    kind: 'integer', flag: 'payload-log-max-bytes', env: 'MODELSHIP_PAYLOAD_LOG_MAX_BYTES', default: 4096, min: 256, max: 1024 * 1024,
    description: 'Most bytes of tensor data logged per payload record (per event with --payload-log-url)',
  },
  payloadLogRedact: {
    kind: 'list', flag: 'payload-log-redact', env: 'MODELSHIP_PAYLOAD_LOG_REDACT',
    description: 'Tensor names whose data is never logged, repeatable',
  },
  payloadLogUrl: {
    kind: 'string', flag: 'payload-log-url', env: 'MODELSHIP_PAYLOAD_LOG_URL',
    description: "http(s) URL that sampled inferences are POSTed to as CloudEvents, a request and a response event each, in the form KServe's payload logger sends; sampled payloads then go there instead of stdout. Every inference is sent unless --payload-log-percent samples fewer",
  },
  payloadLogSource: {
    kind: 'string', flag: 'payload-log-source', env: 'MODELSHIP_PAYLOAD_LOG_SOURCE',
    description: "The events' ce-source; unset: http://localhost:<--http-port>/",
  },
  payloadLogServiceName: {
    kind: 'string', flag: 'payload-log-service-name', env: 'MODELSHIP_PAYLOAD_LOG_SERVICE_NAME',
    description: "The events' ce-inferenceservicename; unset: the name of the model that served the inference",
  },
  payloadLogNamespace: {
    kind: 'string', flag: 'payload-log-namespace', env: 'MODELSHIP_PAYLOAD_LOG_NAMESPACE',
    description: "The events' ce-namespace (the constructs set it to the pod's namespace); unset: empty",
  },
  driftBaselineRows: {
    kind: 'integer', flag: 'drift-baseline-rows', env: 'MODELSHIP_DRIFT_BASELINE_ROWS', default: 0, min: 0, max: 10_000_000,
    description: 'For a model version without profile.json, take the drift profile from the first N rows served, then count drift against it (0: off)',
  },
  maxExplainSamples: {
    kind: 'integer', flag: 'max-explain-samples', env: 'MODELSHIP_MAX_EXPLAIN_SAMPLES', default: 4096, min: 2, max: 65536,
    description: "Most perturbed inputs one explanation may run (KernelSHAP's nsamples, occlusion's patch positions); more get 400. Bounds each explanation's time and memory",
  },
  maxExplainQueueSize: {
    kind: 'integer', flag: 'max-explain-queue-size', env: 'MODELSHIP_MAX_EXPLAIN_QUEUE_SIZE', default: 4, min: 0, max: 1024,
    description: 'Explanations per model version accepted at once; more get 429. 0 turns :explain off (404)',
  },
  explainTimeoutSeconds: {
    kind: 'integer', flag: 'explain-timeout', env: 'MODELSHIP_EXPLAIN_TIMEOUT', default: 60, min: 1, max: 3600,
    description: 'Seconds an explanation may take, waiting behind inference included (its runs only use a model when no inference is queued for it); past it, 503',
  },
  pollRepositorySeconds: {
    kind: 'integer', flag: 'poll-repository-seconds', env: 'MODELSHIP_POLL_REPOSITORY_SECONDS', default: 5, min: 0, max: 3600,
    description: 'How often the model repository is scanned for new models and versions; 0 never rescans',
  },
  drainTimeoutSeconds: {
    kind: 'integer', flag: 'drain-timeout', env: 'MODELSHIP_DRAIN_TIMEOUT', default: DEFAULT_DRAIN_TIMEOUT_SECONDS,
    min: 0, max: 3600, description: 'Seconds to let in-flight requests finish after SIGTERM',
  },
  sessionWorkers: {
    kind: 'integer', flag: 'session-workers', env: 'MODELSHIP_SESSION_WORKERS', default: 0, min: 0, max: 256,
    description: "Worker threads that run sessions (models are spread over them); 0 means one per CPU the container may use (its cgroup CPU limit), at most one per model version",
  },
  intraOpThreads: {
    kind: 'integer', flag: 'intra-op-threads', env: 'MODELSHIP_INTRA_OP_THREADS', default: 0, min: 0, max: 1024,
    description: "onnxruntime threads inside one operator; 0 means one per CPU the container may use (its cgroup CPU limit)",
  },
  intraOpSpinning: {
    kind: 'string', flag: 'intra-op-spinning', env: 'MODELSHIP_INTRA_OP_SPINNING', default: 'auto', choices: SPINNING_CHOICES,
    description: "Whether onnxruntime's intra-op threads spin while waiting for work (session.intra_op.allow_spinning): faster runs, but CPU burnt between them, which a container's CPU quota pays for; auto spins unless the container has a CPU limit",
  },
  interOpThreads: {
    kind: 'integer', flag: 'inter-op-threads', env: 'MODELSHIP_INTER_OP_THREADS', default: 0, min: 0, max: 1024,
    description: 'onnxruntime threads across operators (parallel execution mode); 0 lets onnxruntime choose',
  },
  graphOptimizationLevel: {
    kind: 'string', flag: 'graph-optimization-level', env: 'MODELSHIP_GRAPH_OPTIMIZATION_LEVEL', default: 'all',
    choices: GRAPH_OPTIMIZATION_LEVELS, description: 'onnxruntime graph optimizations',
  },
  executionMode: {
    kind: 'string', flag: 'execution-mode', env: 'MODELSHIP_EXECUTION_MODE', default: 'sequential',
    choices: EXECUTION_MODES, description: 'onnxruntime execution mode',
  },
  executionProvider: {
    kind: 'string', flag: 'execution-provider', env: 'MODELSHIP_EXECUTION_PROVIDER', default: 'cpu',
    choices: EXECUTION_PROVIDERS, description: 'cuda needs an image built with the CUDA provider',
  },
  warmup: {
    kind: 'boolean', flag: 'warmup', env: 'MODELSHIP_WARMUP', default: true,
    description: 'Run each model once on zeros before reporting ready',
  },
  logLevel: {
    kind: 'string', flag: 'log-level', env: 'MODELSHIP_LOG_LEVEL', default: 'info', choices: LOG_LEVELS,
    description: 'JSON log level',
  },
  authTokenFile: {
    kind: 'string', flag: 'auth-token-file', env: 'MODELSHIP_AUTH_TOKEN_FILE',
    description: "File of accepted bearer tokens, one per line ('#' comments); when set, requests need 'Authorization: Bearer <token>'. Re-read when it changes",
  },
  authExempt: {
    kind: 'string', flag: 'auth-exempt', env: 'MODELSHIP_AUTH_EXEMPT', default: 'health-and-metrics',
    choices: ['health', 'health-and-metrics', 'none'],
    description: 'Endpoints that stay open when --auth-token-file is set: health checks (REST and gRPC), and /metrics',
  },
  tlsCertFile: {
    kind: 'string', flag: 'tls-cert-file', env: 'MODELSHIP_TLS_CERT_FILE',
    description: 'PEM certificate chain; with --tls-key-file, REST is served over HTTPS and gRPC over TLS',
  },
  tlsKeyFile: {
    kind: 'string', flag: 'tls-key-file', env: 'MODELSHIP_TLS_KEY_FILE',
    description: 'PEM private key of --tls-cert-file',
  },
} as const satisfies Record<string, Setting>;

export type ServeSettingKey = keyof typeof SERVE_SETTINGS;

/**
 * Per-model settings, read from `<repository>/<model>/config.json` (or .yaml); each overrides the server-wide flag
 * of the same meaning for that model.
 */
export interface ModelConfigFile {
  readonly max_batch_size?: number;
  readonly max_queue_delay_microseconds?: number;
  readonly max_queue_size?: number;
  readonly intra_op_threads?: number;
  readonly intra_op_spinning?: Spinning;
  readonly inter_op_threads?: number;
  readonly graph_optimization_level?: GraphOptimizationLevel;
  readonly execution_mode?: ExecutionMode;
  readonly execution_provider?: ExecutionProvider;
  readonly warmup?: boolean;
}

/** Which server-wide setting each config-file key overrides (and so which bounds apply to it). */
export const MODEL_CONFIG_KEYS = {
  max_batch_size: 'maxBatchSize',
  max_queue_delay_microseconds: 'maxQueueDelayMicroseconds',
  max_queue_size: 'maxQueueSize',
  intra_op_threads: 'intraOpThreads',
  intra_op_spinning: 'intraOpSpinning',
  inter_op_threads: 'interOpThreads',
  graph_optimization_level: 'graphOptimizationLevel',
  execution_mode: 'executionMode',
  execution_provider: 'executionProvider',
  warmup: 'warmup',
} as const satisfies Record<keyof ModelConfigFile, ServeSettingKey>;

/** `modelship profile`: a drift profile from reference data. */
export const PROFILE_SETTINGS = {
  model: { kind: 'string', flag: 'model', env: 'MODELSHIP_PROFILE_MODEL', description: 'The model file (.onnx) the reference data is for' },
  data: {
    kind: 'string', flag: 'data', env: 'MODELSHIP_PROFILE_DATA',
    description: 'Reference inputs, one request per line: a v2 `inputs` array or a TF Serving `instances` array',
  },
  out: { kind: 'string', flag: 'out', env: 'MODELSHIP_PROFILE_OUT', description: `Where to write the profile; serve it as <model>/<version>/profile.json beside model.onnx` },
} as const satisfies Record<string, Setting>;

/** What `modelship optimize --quantize` can do to a model's weights. */
export const QUANTIZE_CHOICES = ['dynamic-int8'] as const;
export type Quantize = (typeof QUANTIZE_CHOICES)[number];
/** The graph optimization levels `modelship optimize --level` saves (onnxruntime's, without 'disabled'). */
export const OPTIMIZE_LEVELS = ['basic', 'extended', 'all'] as const;
export type OptimizeLevel = (typeof OPTIMIZE_LEVELS)[number];
/** The model file's metadata_props key under which `modelship optimize` records what it did (JSON). */
export const OPTIMIZED_METADATA_KEY = 'modelship.optimized';

/** `modelship optimize IN.onnx --out OUT.onnx`: a smaller or faster model, checked against the original. */
export const OPTIMIZE_SETTINGS = {
  out: { kind: 'string', flag: 'out', env: 'MODELSHIP_OPTIMIZE_OUT', description: 'Where to write the optimized model; nothing is written when the guard fails' },
  level: {
    kind: 'string', flag: 'level', env: 'MODELSHIP_OPTIMIZE_LEVEL', choices: OPTIMIZE_LEVELS,
    description: "onnxruntime's graph optimizations, saved; extended and all are specific to the CPU they ran on",
  },
  quantize: {
    kind: 'string', flag: 'quantize', env: 'MODELSHIP_OPTIMIZE_QUANTIZE', choices: QUANTIZE_CHOICES,
    description: 'dynamic-int8: MatMul and Gemm weights stored as int8 with scales, activations quantized at run time',
  },
  fp16: {
    kind: 'boolean', flag: 'fp16', env: 'MODELSHIP_OPTIMIZE_FP16', default: false,
    description: 'Float weights stored as float16, cast back to float at load; inputs and outputs unchanged',
  },
  validateData: {
    kind: 'string', flag: 'validate-data', env: 'MODELSHIP_OPTIMIZE_VALIDATE_DATA',
    description: 'Inputs the guard runs both models on, one request per line (as `modelship profile --data`); unset: random inputs within the ranges of profile.json beside IN, or unit normal',
  },
  validateSamples: {
    kind: 'integer', flag: 'validate-samples', env: 'MODELSHIP_OPTIMIZE_VALIDATE_SAMPLES', default: 32, min: 1, max: 100_000,
    description: 'Random inputs the guard generates when there is no --validate-data',
  },
  maxError: {
    kind: 'number', flag: 'max-error', env: 'MODELSHIP_OPTIMIZE_MAX_ERROR', min: 0, max: 1e9,
    description: "Largest relative error allowed on any output (the largest absolute difference over the largest absolute value of the original's output); over it, exit 1 and no file",
  },
  minAgreement: {
    kind: 'number', flag: 'min-agreement', env: 'MODELSHIP_OPTIMIZE_MIN_AGREEMENT', min: 0, max: 1,
    description: "Smallest share of rows whose top-1 class is unchanged, for outputs that score classes ([rows, classes]); under it, exit 1 and no file",
  },
  json: { kind: 'boolean', flag: 'json', env: 'MODELSHIP_OPTIMIZE_JSON', default: false, description: 'Print the report as JSON' },
} as const satisfies Record<string, Setting>;

/** `modelship fetch`, the init container's command. */
export const FETCH_SETTINGS = {
  uri: {
    kind: 'string', flag: 'uri', env: 'MODELSHIP_FETCH_URI',
    description: 'The model file: https://..., s3://BUCKET/KEY, gs://BUCKET/OBJECT or oci://REGISTRY/REPOSITORY:TAG (or @sha256:...)',
  },
  sha256: { kind: 'string', flag: 'sha256', env: 'MODELSHIP_FETCH_SHA256', description: 'Expected sha256 of the file, 64 hex digits' },
  dest: { kind: 'string', flag: 'dest', env: 'MODELSHIP_FETCH_DEST', description: 'Where to write it, e.g. /models/<name>/<version>/model.onnx' },
  retries: {
    kind: 'integer', flag: 'retries', env: 'MODELSHIP_FETCH_RETRIES', default: 4, min: 0, max: 100,
    description: 'Retries after a transient failure (network, timeout, 408, 429, 5xx), with exponential backoff',
  },
  timeoutSeconds: {
    kind: 'integer', flag: 'timeout', env: 'MODELSHIP_FETCH_TIMEOUT', default: 300, min: 1, max: 86400,
    description: 'Seconds one download attempt may take',
  },
  plainHttp: {
    kind: 'boolean', flag: 'plain-http', env: 'MODELSHIP_FETCH_PLAIN_HTTP', default: false,
    description: 'Reach an oci:// registry over http instead of https (a registry without TLS inside the cluster)',
  },
} as const satisfies Record<string, Setting>;
