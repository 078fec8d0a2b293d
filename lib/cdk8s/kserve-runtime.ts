/**
 * KServeRuntime: the modelship runtime as a KServe serving runtime, for clusters that already run KServe and want
 * its storage initializer, autoscaling and networking. A `ServingRuntime` (or `ClusterServingRuntime`) that KServe
 * picks for `onnx` models, and `KServeInferenceService`, an `InferenceService` served by it.
 *
 * KServe starts the runtime with the container's args, `{{.Name}}` replaced by the InferenceService's name, after
 * its storage initializer has copied the `storageUri` to /mnt/models: hence `--model-dir /mnt/models` with
 * `--model-name {{.Name}}`, as KServe's own sklearn and xgboost runtimes are started.
 */
import { ApiObject, Chart, JsonPatch } from 'cdk8s';
import { Construct } from 'constructs';
import { HTTP_PORT, PATHS, SERVE_SETTINGS } from '@modelship/contract';
import { checkResources, DEFAULT_RUNTIME_IMAGE, type ResourceProps, type Resources } from './model-service';
import { kubeProbes } from './probes';
import { type RuntimeSettingsProps, settingArgs } from './runtime-settings';
import { kubeContainerSecurity, kubePodSecurity } from './security';
import { kubeTracingEnv, type TracingOptions } from './tracing';
import { checkDnsLabel, checkDnsName, checkPositiveInteger, checkSetting } from './validation';

export const KSERVE_GROUP = 'serving.kserve.io';
const RUNTIME_API_VERSION = `${KSERVE_GROUP}/v1alpha1`;
const INFERENCE_SERVICE_API_VERSION = `${KSERVE_GROUP}/v1beta1`;

/** The container name KServe looks for in a serving runtime and merges the InferenceService's model spec into. */
export const KSERVE_CONTAINER = 'kserve-container';
/** Where KServe's storage initializer leaves the model, and the placeholder it replaces with the InferenceService's name. */
export const KSERVE_MODEL_DIR = '/mnt/models';
export const KSERVE_NAME_PLACEHOLDER = '{{.Name}}';
/** The model format KServe matches an InferenceService's `modelFormat` against, and its version. */
export const KSERVE_MODEL_FORMAT = { name: 'onnx', version: '1' } as const;
/**
 * The REST door of every KServe runtime. KServe turns the first container port into the predictor Service's port 80.
 * Named `http1`, the name KServe and Knative give an HTTP/1 port.
 */
export const KSERVE_HTTP_PORT = { name: 'http1', containerPort: HTTP_PORT } as const;
/**
 * gRPC on 9000, not the runtime's own 8081: KServe's Triton and MLServer runtimes serve gRPC on 9000, so a client
 * (or an InferenceService's `ports` override) keeps its address whichever runtime serves the model. Named `h2c`:
 * KServe marks a port whose name holds `h2c` or `grpc` with appProtocol kubernetes.io/h2c on the Service.
 */
export const KSERVE_GRPC_PORT = { name: 'h2c', containerPort: 9000 } as const;
/**
 * KServe's own `onnx` runtime, kserve-tritonserver, has priority 1 for the format; KServe's webhook refuses a second
 * ClusterServingRuntime with the same priority for it.
 */
const TRITON_ONNX_PRIORITY = 1;
/**
 * Fits the runtime's drain, and a margin for the process to exit, into Kubernetes' default grace period of 30 s: an
 * InferenceService made without KServeInferenceService gets that period.
 */
const DEFAULT_KSERVE_DRAIN_TIMEOUT_SECONDS = 25;
const EXIT_MARGIN_SECONDS = 5;
/** The runtime's writable /tmp, an emptyDir, as ModelService mounts it: the root filesystem is read-only. */
const TMP_VOLUME = { name: 'tmp', sizeLimit: '64Mi' } as const;

export interface KServeRuntimeProps extends RuntimeSettingsProps, ResourceProps {
  /**
   * The runtime's name: what an InferenceService's `predictor.model.runtime` names.
   * @default - the construct id
   */
  readonly name?: string;
  /**
   * A `ClusterServingRuntime`, usable from every namespace, instead of a `ServingRuntime` in the chart's namespace.
   * @default false
   */
  readonly clusterScoped?: boolean;
  /** @default DEFAULT_RUNTIME_IMAGE */
  readonly image?: string;
  /**
   * KServe may choose this runtime for an InferenceService whose `modelFormat` is `onnx` and that names no runtime.
   * @default true
   */
  readonly autoSelect?: boolean;
  /**
   * Rank among the runtimes KServe may choose for `onnx` (the highest wins). kserve-tritonserver has 1: give 2 or
   * more for this runtime to serve `onnx` InferenceServices that name no runtime.
   * @default - none: KServe prefers a runtime that has one, such as Triton, unless the InferenceService names this one
   */
  readonly priority?: number;
  /**
   * Seconds the runtime lets in-flight requests finish after SIGTERM (`--drain-timeout`). KServeInferenceService
   * sizes the pod's grace period from it; other InferenceServices get Kubernetes' 30 s.
   * @default 25
   */
  readonly drainTimeoutSeconds?: number;
  /**
   * Trace requests with OpenTelemetry to an OTLP/HTTP collector, as ModelService's `tracing` does (the same
   * variables). The service name defaults to the InferenceService's: KServe fills `{{.Name}}` in the container's
   * variables as in its args. KServe owns the pods' network, so no NetworkPolicy is made for the collector.
   * @default - off
   */
  readonly tracing?: TracingOptions;
}

/**
 * A KServe `ServingRuntime` (or `ClusterServingRuntime`) that runs the modelship runtime for `onnx` models over the
 * protocols v1 (TF Serving REST, `:predict`), v2 (Open Inference Protocol REST) and grpc-v2.
 */
export class KServeRuntime extends Construct {
  /** The runtime's name, for an InferenceService's `runtime`. */
  readonly runtimeName: string;
  readonly clusterScoped: boolean;
  readonly drainTimeoutSeconds: number;
  /** The ServingRuntime or ClusterServingRuntime. */
  readonly apiObject: ApiObject;

  constructor(scope: Construct, id: string, props: KServeRuntimeProps = {}) {
    super(scope, id);
    this.runtimeName = props.name === undefined ? nameFromId(id, 'name') : checkDnsLabel('name', props.name);
    this.clusterScoped = props.clusterScoped ?? false;
    const autoSelect = props.autoSelect ?? true;
    const priority = checkPriority(props, autoSelect, this.clusterScoped);
    this.drainTimeoutSeconds = checkSetting('drainTimeoutSeconds', props.drainTimeoutSeconds ?? DEFAULT_KSERVE_DRAIN_TIMEOUT_SECONDS, SERVE_SETTINGS.drainTimeoutSeconds);
    const resources = checkResources(props);
    const flag = (setting: { readonly flag: string }, value: string | number) => `--${setting.flag}=${value}`;

    this.apiObject = new ApiObject(this, 'Resource', {
      apiVersion: RUNTIME_API_VERSION,
      kind: this.clusterScoped ? 'ClusterServingRuntime' : 'ServingRuntime',
      metadata: { name: this.runtimeName },
      spec: {
        // KServe copies these onto the pods; with its metrics aggregation on, it scrapes this port and path.
        annotations: { 'prometheus.kserve.io/port': String(HTTP_PORT), 'prometheus.kserve.io/path': PATHS.metrics },
        supportedModelFormats: [{ ...KSERVE_MODEL_FORMAT, autoSelect, ...(priority === undefined ? {} : { priority }) }],
        // v1 is KServe's name for TF Serving's REST API, which the runtime serves beside the Open Inference Protocol.
        protocolVersions: ['v1', 'v2', 'grpc-v2'],
        containers: [{
          name: KSERVE_CONTAINER,
          image: props.image ?? DEFAULT_RUNTIME_IMAGE,
          // The image's entrypoint is `modelship`; the ports are explicit so that they match `ports` below whatever
          // the runtime's defaults become.
          args: [
            'serve',
            flag(SERVE_SETTINGS.modelDir, KSERVE_MODEL_DIR),
            flag(SERVE_SETTINGS.modelName, KSERVE_NAME_PLACEHOLDER),
            flag(SERVE_SETTINGS.httpPort, KSERVE_HTTP_PORT.containerPort),
            flag(SERVE_SETTINGS.grpcPort, KSERVE_GRPC_PORT.containerPort),
            flag(SERVE_SETTINGS.drainTimeoutSeconds, this.drainTimeoutSeconds),
            ...settingArgs(props),
          ],
          ...(props.tracing ? { env: kubeTracingEnv(props.tracing, KSERVE_NAME_PLACEHOLDER) } : {}),
          ports: [KSERVE_HTTP_PORT, KSERVE_GRPC_PORT].map((port) => ({ ...port, protocol: 'TCP' })),
          ...kubeProbes(),
          // A ServingRuntime has no pod security context: the container's carries it all, seccomp included.
          securityContext: kubeContainerSecurity(),
          resources: kubeResources(resources),
          volumeMounts: [{ name: TMP_VOLUME.name, mountPath: '/tmp' }],
        }],
        volumes: [{ name: TMP_VOLUME.name, emptyDir: { sizeLimit: TMP_VOLUME.sizeLimit } }],
      },
    });
    // Cluster-scoped: no namespace, whatever the chart's.
    if (this.clusterScoped && Chart.of(this).namespace !== undefined) this.apiObject.addJsonPatch(JsonPatch.remove('/metadata/namespace'));
  }

  /** An InferenceService served by this runtime, in the runtime's chart (its namespace) unless `scope` says otherwise. */
  addInferenceService(id: string, props: Omit<KServeInferenceServiceProps, 'runtime'>, scope: Construct = Chart.of(this)): KServeInferenceService {
    return new KServeInferenceService(scope, id, { ...props, runtime: this });
  }
}

export interface KServeInferenceServiceProps {
  /** The runtime that serves the model. */
  readonly runtime: KServeRuntime;
  /**
   * Where KServe's storage initializer fetches the model from into /mnt/models (`s3://`, `gs://`, `pvc://`,
   * `https://`, `hf://`, `oci://`, ...): a directory holding `model.onnx` or `<version>/model.onnx`, or one `.onnx` file.
   */
  readonly storageUri: string;
  /**
   * The InferenceService's name: the model's name in the runtime's URLs (`/v2/models/<name>`) and KServe's hosts.
   * @default - the construct id
   */
  readonly name?: string;
  /**
   * The model container's CPU and memory, over the runtime's; a prop left out takes ModelService's default.
   * @default - the runtime's
   */
  readonly resources?: ResourceProps;
  /** @default 1 */
  readonly minReplicas?: number;
  /** @default - KServe's default */
  readonly maxReplicas?: number;
  /**
   * The ServiceAccount the pods run as: KServe's storage initializer takes credentials for the `storageUri` from the
   * Secrets it names (and workload identity from its annotations).
   * @default - the namespace's default ServiceAccount
   */
  readonly serviceAccountName?: string;
}

/** A KServe `InferenceService` (`serving.kserve.io/v1beta1`) whose predictor is an `onnx` model served by a KServeRuntime. */
export class KServeInferenceService extends Construct {
  /** The InferenceService's name, which is also the model's name in the runtime's URLs. */
  readonly inferenceServiceName: string;
  readonly apiObject: ApiObject;

  constructor(scope: Construct, id: string, props: KServeInferenceServiceProps) {
    super(scope, id);
    this.inferenceServiceName = props.name === undefined ? nameFromId(id, 'name') : checkDnsLabel('name', props.name);
    const storageUri = checkStorageUri(props.storageUri);
    const minReplicas = props.minReplicas ?? 1;
    if (!Number.isInteger(minReplicas) || minReplicas < 0) throw new Error(`'minReplicas' (${minReplicas}) must be an integer of 0 or more`);
    if (props.maxReplicas !== undefined && checkPositiveInteger('maxReplicas', props.maxReplicas) < minReplicas) {
      throw new Error(`'minReplicas' (${minReplicas}) must be less than or equal to 'maxReplicas' (${props.maxReplicas})`);
    }
    const runtime = props.runtime;
    const namespace = Chart.of(this).namespace;
    const runtimeNamespace = Chart.of(runtime).namespace;
    if (!runtime.clusterScoped && namespace !== runtimeNamespace) {
      throw new Error(`the InferenceService '${this.inferenceServiceName}' is in namespace '${namespace ?? '(none)'}' and its ServingRuntime '${runtime.runtimeName}' in '${runtimeNamespace ?? '(none)'}': KServe only finds a ServingRuntime in the InferenceService's namespace; create both in one chart, or make the runtime 'clusterScoped'`);
    }
    this.apiObject = new ApiObject(this, 'Resource', {
      apiVersion: INFERENCE_SERVICE_API_VERSION,
      kind: 'InferenceService',
      metadata: { name: this.inferenceServiceName },
      spec: {
        predictor: {
          minReplicas,
          ...(props.maxReplicas === undefined ? {} : { maxReplicas: props.maxReplicas }),
          ...(props.serviceAccountName === undefined ? {} : { serviceAccountName: checkDnsName('serviceAccountName', props.serviceAccountName) }),
          // The runtime calls no Kubernetes API.
          automountServiceAccountToken: false,
          // fsGroup makes the downloaded model readable by the runtime's group; the seccomp profile is the pod's.
          securityContext: kubePodSecurity(),
          terminationGracePeriodSeconds: runtime.drainTimeoutSeconds + EXIT_MARGIN_SECONDS,
          model: {
            modelFormat: { ...KSERVE_MODEL_FORMAT },
            runtime: runtime.runtimeName,
            protocolVersion: 'v2',
            storageUri,
            // KServe merges these over the runtime container's; unset, the runtime's hold.
            ...(props.resources ? { resources: kubeResources(checkResources(props.resources)) } : {}),
          },
        },
      },
    });
  }
}

/** The construct id as a name, or an error that says to give the prop. */
function nameFromId(id: string, prop: string): string {
  try {
    return checkDnsLabel(prop, id);
  } catch {
    const suggestion = id.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '') || 'model';
    throw new Error(`the construct id '${id}' is used as the name, which must be a DNS label (lower-case letters, digits and '-'); give '${prop}' (e.g. ${prop}: '${suggestion}')`);
  }
}

function checkPriority(props: KServeRuntimeProps, autoSelect: boolean, clusterScoped: boolean): number | undefined {
  const priority = props.priority;
  if (priority === undefined) return undefined;
  checkPositiveInteger('priority', priority);
  if (!autoSelect) throw new Error(`'priority' (${priority}) ranks runtimes that KServe selects on its own, and 'autoSelect' is false; remove 'priority' or set 'autoSelect' to true`);
  if (clusterScoped && priority === TRITON_ONNX_PRIORITY) {
    throw new Error(`'priority' (${priority}) is kserve-tritonserver's for onnx, and KServe refuses two ClusterServingRuntimes with the same priority for a format; give ${TRITON_ONNX_PRIORITY + 1} to be preferred to Triton, or leave it unset`);
  }
  return priority;
}

function checkStorageUri(uri: string): string {
  if (!/^[a-z][a-z0-9+.-]*:\/\/\S+$/.test(uri)) {
    throw new Error(`'storageUri' ('${uri}') must be a URI with a scheme KServe's storage initializer reads, e.g. 's3://bucket/models/fraud', 'gs://...', 'pvc://claim/path' or 'https://.../model.onnx'`);
  }
  return uri;
}

function kubeResources(resources: Resources): object {
  return {
    requests: { cpu: resources.cpuRequest, memory: resources.memoryRequest },
    limits: { cpu: resources.cpuLimit, memory: resources.memoryLimit },
  };
}
