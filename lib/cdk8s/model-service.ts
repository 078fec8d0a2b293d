/**
 * ModelService: the modelship runtime serving one model — a Deployment (cdk8s-plus) with secure defaults, probes
 * on the runtime's health endpoints and a drain-aware shutdown, a Service with `http` and `grpc` ports, a
 * PodDisruptionBudget and a NetworkPolicy — plus PromQL helpers over the runtime's metrics.
 */
import { ApiObject, Chart, Duration, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import {
  GRPC_PORT, HTTP_PORT, MODEL_REPOSITORY_PATH, type DriftProfile, type OnnxFileInfo, PATHS, PORT_NAME,
  SERVE_SETTINGS, type Setting,
} from '@modelship/contract';
import { addIngress, Exposure } from './exposure';
import { HardenedDeployment } from './hardened-deployment';
import { type RuntimeSettingsProps, settingArgs } from './runtime-settings';
import { CONTAINER_SECURITY, POD_SECURITY } from './security';
import { LIVENESS, PROBE_TIMEOUT_SECONDS, type ProbeTiming, READINESS, STARTUP } from './probes';
import { LABEL_KEYS, recommendedLabels, selectorLabels, type RecommendedLabels } from './labels';
import { destinationUrl, distinctRules, urlEgress } from './network';
import type { ModelAutoscaler } from './model-autoscaler';
import type { ModelSource, ModelSourceConfig } from './model-source';
import * as promql from './promql';
import { checkTracingEnv, tracingEndpoint, tracingEnv, type TracingOptions } from './tracing';
import {
  byteQuantity, checkCpu, checkDataKey, checkDnsLabel, checkMemory, checkModelName, checkPositiveInteger, checkSetting, settingValue,
  checkStorage, cpuCores, cpuQuantity, memoryBytes,
} from './validation';

export { type ClusterIpOptions, Exposure, type IngressOptions, type LoadBalancerOptions } from './exposure';
export { type TracingOptions } from './tracing';

// The package's own version, from its package.json one level up (the same path from lib/cdk8s/*.ts and *.js).
const PACKAGE_VERSION: string = require('../package.json').version;

/** The runtime image the constructs deploy unless told otherwise. */
export const DEFAULT_RUNTIME_IMAGE = `ghcr.io/modelship/runtime:${PACKAGE_VERSION}`;

/**
 * Which inferences the runtime logs, inputs and outputs: as JSON lines on stdout, or, with `url`, as CloudEvents
 * POSTed to a sink in the form KServe's payload logger sends (docs/runtime.md, Payload events).
 */
export interface PayloadLogging {
  /**
   * Percent of inferences logged, 1 to 100.
   * @default - required without `url`; with it, every inference
   */
  readonly percent?: number;
  /** Most bytes of tensor data per record (per event with `url`). @default 4096 */
  readonly maxBytes?: number;
  /** Tensor names whose data is never logged (personal data, say). @default - none */
  readonly redact?: string[];
  /**
   * http(s) URL of a sink that receives each logged inference as a request and a response CloudEvent, instead of
   * stdout. The NetworkPolicy lets the pods reach its port (on any host: a NetworkPolicy cannot name hosts).
   * @default - stdout
   */
  readonly url?: string;
  /** The events' ce-inferenceservicename. @default - the model's name */
  readonly serviceName?: string;
  /** The events' ce-source, a URI. @default 'http://localhost:8080/' */
  readonly source?: string;
}

export interface ModelServiceProps extends RuntimeSettingsProps {
  /** Where the model comes from. */
  readonly model: ModelSource;
  /**
   * The model's name in the runtime's URLs (`/v2/models/<name>`) and in labels.
   * @default - the construct id
   */
  readonly modelName?: string;
  /** The version directory the model is served as. Sources that bring their own versions (an image, a volume) take none. @default 1 */
  readonly modelVersion?: number;
  /** @default DEFAULT_RUNTIME_IMAGE */
  readonly image?: string;
  /** When the kubelet pulls the image. @default kplus.ImagePullPolicy.ALWAYS */
  readonly imagePullPolicy?: kplus.ImagePullPolicy;
  /** A kubernetes.io/dockerconfigjson Secret for a private registry (`imagePullSecrets`). @default - none */
  readonly imagePullSecret?: kplus.ISecret;
  /**
   * The Service's name, the stable address clients are given (`<serviceName>.<namespace>.svc`). Unique within the
   * namespace: two ModelServices of one model there need their own.
   * @default - the model name as a DNS label: lower case, `_` and `.` as `-` (`my_model` → `my-model`)
   */
  readonly serviceName?: string;
  /**
   * Fixed replica count. Leave it unset when a ModelAutoscaler targets this service.
   * @default 2
   */
  readonly replicas?: number;
  /** A quantity string or `kplus.Cpu`. @default '500m' */
  readonly cpuRequest?: string | kplus.Cpu;
  /** A quantity string or `kplus.Cpu`. The runtime's onnxruntime threads follow it (`intraOpThreads`). @default '2' */
  readonly cpuLimit?: string | kplus.Cpu;
  /** A quantity string or `Size`. @default '512Mi' */
  readonly memoryRequest?: string | Size;
  /** A quantity string or `Size`. @default '2Gi' */
  readonly memoryLimit?: string | Size;
  /**
   * Node-local disk the scheduler reserves for a pod (the runtime container's `ephemeral-storage` request). Disk is
   * not a burstable resource here: a downloaded model stays on the node for the pod's whole life.
   * @see https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#local-ephemeral-storage
   * @default - the limit
   */
  readonly ephemeralStorageRequest?: string | Size;
  /**
   * The runtime container's `ephemeral-storage` limit. It is the pod's limit once the init containers are done, and
   * the kubelet evicts a pod whose emptyDirs, logs and writable layers together exceed it, so it must hold the
   * model's emptyDir (ModelSource.fromUri's `sizeLimit`, twice that and optimize-model's 64Mi `/tmp` with
   * `optimize`) and `/tmp` (64Mi); the root filesystem is read-only.
   * @default - 256Mi (for `/tmp` and logs) plus the model's emptyDirs: 2304Mi with ModelSource.fromUri's default `sizeLimit` of 2Gi (4416Mi with `optimize`), 256Mi for the other sources
   */
  readonly ephemeralStorageLimit?: string | Size;
  /**
   * NVIDIA GPUs per pod (`nvidia.com/gpu`); above 0 the runtime runs the CUDA execution provider, which needs an
   * image built with it (`image`: runtime/Dockerfile with EXECUTION_PROVIDER=cuda). GPU nodes are usually tainted:
   * see `tolerations` and `nodeSelector`.
   * @default 0
   */
  readonly gpus?: number;
  /** Node labels the pods must be scheduled on, e.g. `{ 'cloud.google.com/gke-accelerator': 'nvidia-l4' }`. @default - any node */
  readonly nodeSelector?: Record<string, string>;
  /** Taints the pods tolerate, e.g. `kplus.NodeTaintQuery.exists('nvidia.com/gpu')`. @default - none */
  readonly tolerations?: kplus.NodeTaintQuery[];
  /**
   * The ServiceAccount the pods run as; its token is still not mounted (the runtime calls no API), but workload
   * identity annotations on it apply, e.g. to fetch the model from a bucket.
   * @default - the namespace's default ServiceAccount
   */
  readonly serviceAccount?: kplus.IServiceAccount;
  /** More environment variables for the runtime container. @default - none */
  readonly env?: Record<string, kplus.EnvValue>;
  /** onnxruntime intra-op threads. @default - the whole cores of `cpuLimit`, at least 1 */
  readonly intraOpThreads?: number;
  /** Log a share of inferences' inputs and outputs. @default - off */
  readonly payloadLogging?: PayloadLogging;
  /**
   * Trace requests with OpenTelemetry and send the spans to an OTLP/HTTP collector: sets the runtime container's
   * standard `OTEL_*` variables, and lets the pods reach the collector's port.
   * @default - off: no spans are recorded or sent
   */
  readonly tracing?: TracingOptions;
  /**
   * Seconds the runtime lets in-flight requests finish after SIGTERM; the pod's grace period is derived from it.
   * @default 30
   */
  readonly drainTimeoutSeconds?: number;
  /**
   * Seconds the preStop hook waits before SIGTERM, so endpoints and load balancers stop sending traffic first.
   * @default 5
   */
  readonly preStopDelaySeconds?: number;
  /** @default Exposure.clusterIp() */
  readonly exposure?: Exposure;
  /**
   * Who may connect to the ports. Each entry is a NetworkPolicy peer (pod or namespace selector, or ipBlock).
   * Behind a load balancer, clients arrive from outside the pod network: name them with an ipBlock (or
   * `Exposure.loadBalancer({ sourceRanges })`), since pod and namespace selectors never match them.
   * @default - any peer may reach the http and grpc ports, nothing else is open
   */
  readonly allowFrom?: kplus.k8s.NetworkPolicyPeer[];
  /**
   * Egress the pods may open besides DNS, the model download, the payload sink and the trace collector, as
   * NetworkPolicy egress rules (peers and ports), e.g. a proxy the download goes through. The runtime itself opens no
   * other connections.
   * @default - DNS (port 53, UDP and TCP, to any destination); with ModelSource.fromUri, the model host's port; the ports of `payloadLogging.url` and `tracing.endpoint`
   */
  readonly allowEgress?: kplus.k8s.NetworkPolicyEgressRule[];
  /** `app.kubernetes.io/part-of`. @default 'modelship' */
  readonly partOf?: string;
  /**
   * A Secret holding the accepted bearer tokens, one per line (blank lines and `#` comments ignored). It is mounted
   * read-only at /etc/modelship/auth and passed as --auth-token-file; every inference and metadata request, REST and
   * gRPC, then needs `Authorization: Bearer <token>`, while health checks and /metrics stay open. Updating the
   * Secret rotates the tokens without a restart (within the kubelet's sync period).
   * @default - no authentication
   */
  readonly authTokenSecret?: kplus.ISecret;
  /** The key of `authTokenSecret` that holds the tokens. @default 'tokens' */
  readonly authTokenKey?: string;
  /**
   * A kubernetes.io/tls Secret (keys tls.crt and tls.key), mounted read-only at /etc/modelship/tls: REST is then
   * served over HTTPS and gRPC over TLS on the same ports, and the probes use HTTPS. A renewed certificate (the
   * kubelet updates the mounted files) is taken by both doors without a restart.
   * @default - plaintext HTTP and gRPC
   */
  readonly tlsSecret?: kplus.ISecret;
}

/** Where ModelService mounts `authTokenSecret`, and the file the runtime reads in it. */
const AUTH_TOKEN_DIR = '/etc/modelship/auth';
const AUTH_TOKEN_FILE = `${AUTH_TOKEN_DIR}/tokens`;
/** Where ModelService mounts `tlsSecret`. */
const TLS_DIR = '/etc/modelship/tls';
/** The runtime container's name. */
const RUNTIME_CONTAINER = 'runtime';

/** The runtime container's CPU and memory props, as ModelService and KServeRuntime take them. */
export type ResourceProps = Pick<ModelServiceProps, 'cpuRequest' | 'cpuLimit' | 'memoryRequest' | 'memoryLimit'>;

/** CPU and memory as quantity strings, checked. */
export interface Resources {
  readonly cpuRequest: string;
  readonly cpuLimit: string;
  readonly memoryRequest: string;
  readonly memoryLimit: string;
}

export class ModelService extends Construct {
  readonly deployment: kplus.Deployment;
  readonly service: kplus.Service;
  /** Who may reach the pods and where they may connect. */
  readonly networkPolicy: kplus.k8s.KubeNetworkPolicy;
  /** The Ingress, with `Exposure.ingress()`. */
  readonly ingress?: kplus.Ingress;
  readonly modelName: string;
  /**
   * The model version the runtime serves (its metrics' `version` label): `modelVersion`, or 1. Undefined for a
   * source that brings its own version directories, which may hold several.
   */
  readonly modelVersion?: number;
  readonly labels: RecommendedLabels;
  /** The model's signature, when the source could read it at synth time (ModelSource.fromFile). */
  readonly signature?: OnnxFileInfo;
  /**
   * A drift profile lies beside the model (the source says so: `profile` of ModelSource.fromUri or fromFile,
   * `{ profile: true }` of fromImage or fromPersistentVolumeClaim), so the runtime exports drift metrics and
   * ModelMonitoring's drift alerts are on by default.
   */
  readonly hasDriftProfile: boolean;
  /** The drift profile, when the source could read it at synth time (ModelSource.fromFile with `profile`). */
  readonly driftProfile?: DriftProfile;
  readonly drainTimeoutSeconds: number;
  /** The name of `tlsSecret` when TLS is on: where a scraper finds the CA. */
  readonly tlsSecretName?: string;
  private disruptionBudget?: kplus.k8s.KubePodDisruptionBudget;
  /** The ModelAutoscaler that scales this service, once one has registered (ModelMonitoring alerts on it). */
  private scaler?: ModelAutoscaler;

  constructor(scope: Construct, id: string, props: ModelServiceProps) {
    super(scope, id);
    this.modelName = props.modelName === undefined ? modelNameFromId(id) : checkModelName('modelName', props.modelName);
    const namespace = Chart.of(this).namespace;
    if (namespace !== undefined) checkDnsLabel('namespace', namespace);
    const replicas = checkReplicas(props.replicas);
    this.drainTimeoutSeconds = checkSetting('drainTimeoutSeconds', props.drainTimeoutSeconds ?? SERVE_SETTINGS.drainTimeoutSeconds.default, SERVE_SETTINGS.drainTimeoutSeconds);
    const resources = checkResources(props);
    const exposure = props.exposure ?? Exposure.clusterIp();
    checkAllowFrom(props.allowFrom, exposure);
    this.tlsSecretName = props.tlsSecret?.name;

    const runtimeImage = props.image ?? DEFAULT_RUNTIME_IMAGE;
    const containerSecurityContext = CONTAINER_SECURITY;
    const modelVersion = checkModelVersion(props);
    this.modelVersion = props.model.bringsOwnVersions ? undefined : modelVersion;
    const source = props.model.bind(this, { modelName: this.modelName, modelVersion, runtimeImage, containerSecurityContext });
    this.signature = source.signature;
    this.hasDriftProfile = props.model.hasDriftProfile;
    this.driftProfile = source.driftProfile;
    const gpus = checkGpus(props, source);
    checkTracingEnv(props.env, props.tracing);

    const deployment = this.createDeployment(props, source, { runtimeImage, containerSecurityContext, resources, gpus });
    this.deployment = deployment;
    // Polaris (metadataAndInstanceMismatched) wants the instance label to be the workload's name. The generated name
    // is a unique, stable DNS label, and naming the instance after it leaves the Deployment's name as it always was.
    this.labels = recommendedLabels(this.modelName, deployment.name, props.partOf ?? 'modelship');
    for (const [key, value] of Object.entries(this.labels)) {
      deployment.metadata.addLabel(key, value);
      deployment.podMetadata.addLabel(key, value);
    }
    this.mountRuntimeVolumes(props);
    deployment._harden({
      selectorLabels: selectorLabels(this.labels),
      runtimeContainer: RUNTIME_CONTAINER,
      initContainersSizedLikeRuntime: source.initContainersSizedLikeRuntime ?? [],
      runtimeResources: runtimeResources(resources, checkEphemeralStorage(props, source.ephemeralStorageBytes ?? 0), gpus),
      initContainerEphemeralStorage: INIT_CONTAINER_EPHEMERAL_STORAGE,
    });

    this.service = this.createService(props, exposure);
    if (exposure.ingress) this.ingress = addIngress(this, this.service, exposure.ingress);
    if (replicas > 1) this.ensureDisruptionBudget();
    this.networkPolicy = this.createNetworkPolicy(ingressPeers(props.allowFrom, exposure),
      [DNS_EGRESS, ...(source.egress ?? []), ...runtimeDestinations(props).map(urlEgress), ...(props.allowEgress ?? [])]);
    this.node.addValidation({ validate: () => this.serviceNameClashes() });
  }

  /** The Service's name, for URLs and selectors. */
  get serviceName(): string {
    return this.service.name;
  }

  /** In-cluster URL of the REST endpoints (https with `tlsSecret`). */
  get restUrl(): string {
    return `${this.tlsEnabled ? 'https' : 'http'}://${this.service.name}:${this.service.ports[0].port}`;
  }

  /** True when the runtime serves TLS (`tlsSecret`): REST over HTTPS, gRPC over TLS. */
  get tlsEnabled(): boolean {
    return this.tlsSecretName !== undefined;
  }

  /** In-cluster address of the gRPC endpoint. */
  get grpcAddress(): string {
    return `${this.service.name}:${GRPC_PORT}`;
  }

  /** True when `replicas` was given, so no autoscaler may take over. */
  get hasFixedReplicas(): boolean {
    // The Deployment keeps `replicas` as given (undefined unless set); its manifest defaults to 2 on its own.
    return this.deployment.replicas !== undefined;
  }

  /** The PodDisruptionBudget (maxUnavailable 1), when the service runs more than one replica or may scale to more. */
  get podDisruptionBudget(): kplus.k8s.KubePodDisruptionBudget | undefined {
    return this.disruptionBudget;
  }

  /**
   * The selector that picks this service's series in Prometheus (as the Prometheus Operator labels them). It needs
   * the chart's namespace: without one, the same service name in every namespace would match.
   */
  get seriesSelector(): promql.SeriesSelector {
    const namespace = ApiObject.of(this.deployment).metadata.namespace;
    if (namespace === undefined) {
      throw new Error(`ModelService '${this.node.path}' is in a chart without a namespace, so its metrics cannot be told apart from a service of the same name in another namespace; give the chart one: new Chart(app, '${Chart.of(this).node.id}', { namespace: '<namespace>' })`);
    }
    return { namespace, service: this.service.name };
  }

  /** PromQL: requests per second. */
  metricRequestRate(window = '5m'): string {
    return promql.requestRate(this.seriesSelector, window);
  }

  /** PromQL: share of requests answered with a server error. */
  metricErrorRatio(window = '5m'): string {
    return promql.errorRatio(this.seriesSelector, window);
  }

  /** PromQL: a latency quantile in seconds. */
  metricLatencyQuantile(quantile: number, window = '5m'): string {
    return promql.latencyQuantile(this.seriesSelector, quantile, window);
  }

  /** PromQL: requests in flight per pod, the autoscaling signal. */
  metricInFlightPerPod(): string {
    return promql.inFlightPerPod(this.seriesSelector);
  }

  /** The ModelAutoscaler that targets this service, if any: whatever the order the two were created in. */
  get autoscaler(): ModelAutoscaler | undefined {
    return this.scaler;
  }

  /**
   * Records the autoscaler of this service; ModelAutoscaler calls it. Two would fight over the Deployment's replica
   * count, each undoing the other's decisions, so a second one is refused. @internal
   */
  _registerAutoscaler(autoscaler: ModelAutoscaler): void {
    if (this.scaler) {
      throw new Error(`ModelService '${this.node.path}' is already scaled by ModelAutoscaler '${this.scaler.node.path}'; ModelAutoscaler '${autoscaler.node.path}' would fight it over the replica count: keep one of them`);
    }
    this.scaler = autoscaler;
  }

  /** Adds a PodDisruptionBudget (maxUnavailable 1) if there is none yet; autoscalers call it. @internal */
  ensureDisruptionBudget(): void {
    this.disruptionBudget ??= new kplus.k8s.KubePodDisruptionBudget(this, 'DisruptionBudget', {
      metadata: { labels: this.labels },
      spec: { maxUnavailable: kplus.k8s.IntOrString.fromNumber(1), selector: { matchLabels: selectorLabels(this.labels) } },
    });
  }

  private createDeployment(props: ModelServiceProps, source: ModelSourceConfig, options: {
    readonly runtimeImage: string; readonly containerSecurityContext: kplus.ContainerSecurityContextProps;
    readonly resources: Resources; readonly gpus: number;
  }): HardenedDeployment {
    const preStopDelay = checkPreStopDelay(props);
    // The kubelet does not verify the certificate of an HTTPS probe, so a self-signed or private CA works.
    const scheme = props.tlsSecret ? kplus.ConnectionScheme.HTTPS : kplus.ConnectionScheme.HTTP;
    const probe = (path: string, timing: ProbeTiming) => kplus.Probe.fromHttpGet(path, {
      port: HTTP_PORT, periodSeconds: Duration.seconds(timing.periodSeconds), failureThreshold: timing.failureThreshold,
      timeoutSeconds: Duration.seconds(PROBE_TIMEOUT_SECONDS), scheme,
    });
    const deployment = new HardenedDeployment(this, 'Deployment', {
      // Unset unless given: cdk8s-plus then writes its default of 2, or nothing once an autoscaler takes over.
      replicas: props.replicas,
      // Start a new pod before stopping an old one: a rollout never drops below the serving capacity.
      strategy: kplus.DeploymentStrategy.rollingUpdate({ maxSurge: kplus.PercentOrAbsolute.absolute(1), maxUnavailable: kplus.PercentOrAbsolute.absolute(0) }),
      automountServiceAccountToken: false,
      serviceAccount: serviceAccountOf(props, source),
      dockerRegistryAuth: props.imagePullSecret,
      // The preStop delay, then the runtime's drain, then a margin for the process to exit.
      terminationGracePeriod: Duration.seconds(preStopDelay + this.drainTimeoutSeconds + 5),
      securityContext: POD_SECURITY,
      initContainers: source.initContainers,
      containers: [{
        name: RUNTIME_CONTAINER,
        image: source.image ?? options.runtimeImage,
        imagePullPolicy: props.imagePullPolicy,
        args: ['serve', `--${SERVE_SETTINGS.modelRepository.flag}`, MODEL_REPOSITORY_PATH, ...runtimeArgs(props, options.resources, options.gpus, this.drainTimeoutSeconds), ...securityArgs(props)],
        envVariables: runtimeEnv(props, serviceNameOf(props, this.modelName)),
        ports: [{ name: PORT_NAME.http, number: HTTP_PORT }, { name: PORT_NAME.grpc, number: GRPC_PORT }],
        // A fetch or an optimize-model run in the init containers, however long, spends none of the startup probe's
        // time (the Deployment's progress deadline is what bounds a whole pod's start).
        startup: probe(PATHS.ready, STARTUP),
        readiness: probe(PATHS.ready, READINESS),
        liveness: probe(PATHS.live, LIVENESS),
        // The image has no shell; node can wait. Endpoints drop the pod while it waits, so SIGTERM finds no new traffic.
        lifecycle: preStopDelay > 0 ? { preStop: kplus.Handler.fromCommand(['node', '-e', `setTimeout(() => {}, ${preStopDelay * 1000})`]) } : undefined,
        securityContext: options.containerSecurityContext,
        // Placeholders: without them cdk8s-plus writes its own defaults; the pod's hardening writes the exact strings.
        resources: { cpu: { request: kplus.Cpu.millis(1), limit: kplus.Cpu.millis(1) }, memory: { request: Size.mebibytes(1), limit: Size.mebibytes(1) } },
        volumeMounts: source.volume ? [{ path: source.mountPath ?? MODEL_REPOSITORY_PATH, volume: source.volume, readOnly: true, subPath: source.mountSubPath }] : [],
      }],
    });
    for (const [key, value] of Object.entries(props.nodeSelector ?? {})) {
      deployment.scheduling.attract(kplus.Node.labeled(kplus.NodeLabelQuery.is(key, value)));
    }
    if (props.tolerations && props.tolerations.length > 0) deployment.scheduling.tolerate(kplus.Node.tainted(...props.tolerations));
    return deployment;
  }

  /** /tmp, and the Secrets for authentication and TLS, mounted into the runtime container. */
  private mountRuntimeVolumes(props: ModelServiceProps): void {
    const runtime = this.deployment.containers[0];
    runtime.mount('/tmp', kplus.Volume.fromEmptyDir(this, 'TmpVolume', 'tmp', { sizeLimit: Size.mebibytes(TMP_SIZE_LIMIT_MIB) }));
    // Secret volumes with explicit items (not subPath mounts, which the kubelet never updates), readable by the
    // runtime's group only (fsGroup).
    if (props.authTokenSecret) {
      const key = checkDataKey('authTokenKey', props.authTokenKey ?? 'tokens', 'a Secret');
      runtime.mount(AUTH_TOKEN_DIR, kplus.Volume.fromSecret(this, 'AuthTokenVolume', props.authTokenSecret, {
        name: 'auth-tokens', defaultMode: 0o440, items: { [key]: { path: 'tokens' } },
      }), { readOnly: true });
    } else if (props.authTokenKey !== undefined) {
      throw new Error(`'authTokenKey' ('${props.authTokenKey}') needs 'authTokenSecret'`);
    }
    if (props.tlsSecret) {
      runtime.mount(TLS_DIR, kplus.Volume.fromSecret(this, 'TlsVolume', props.tlsSecret, {
        name: 'tls', defaultMode: 0o440, items: { 'tls.crt': { path: 'tls.crt' }, 'tls.key': { path: 'tls.key' } },
      }), { readOnly: true });
    }
  }

  private createService(props: ModelServiceProps, exposure: Exposure): kplus.Service {
    return new kplus.Service(this, 'Service', {
      metadata: { name: serviceNameOf(props, this.modelName), labels: this.labels, annotations: exposure.annotations },
      type: exposure.type,
      selector: this.deployment,
      loadBalancerSourceRanges: exposure.sourceRanges,
      ports: [
        { name: PORT_NAME.http, port: exposure.httpPort, targetPort: HTTP_PORT },
        { name: PORT_NAME.grpc, port: GRPC_PORT, targetPort: GRPC_PORT },
      ],
    });
  }

  private createNetworkPolicy(from: kplus.k8s.NetworkPolicyPeer[] | undefined, egress: kplus.k8s.NetworkPolicyEgressRule[]): kplus.k8s.KubeNetworkPolicy {
    return new kplus.k8s.KubeNetworkPolicy(this, 'NetworkPolicy', {
      metadata: { labels: this.labels },
      spec: {
        // The instance label alone: it is unique to this service, and Polaris (missingNetworkPolicy) accepts a
        // selector only when it names exactly one of the pod's labels.
        podSelector: { matchLabels: { [LABEL_KEYS.instance]: this.labels[LABEL_KEYS.instance] } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{
          ...(from && from.length > 0 ? { from } : {}),
          ports: [HTTP_PORT, GRPC_PORT].map((number) => ({ port: kplus.k8s.IntOrString.fromNumber(number), protocol: 'TCP' })),
        }],
        egress: distinctRules(egress),
      },
    });
  }

  /** Another ModelService of the app that would take the same Service name in the same namespace. */
  private serviceNameClashes(): string[] {
    const namespace = ApiObject.of(this.service).metadata.namespace;
    const clash = this.node.root.node.findAll().find((c): c is ModelService => c instanceof ModelService && c !== this
      && c.service.name === this.service.name && ApiObject.of(c.service).metadata.namespace === namespace);
    return clash ? [`the Service name '${this.service.name}' is also ModelService '${clash.node.path}'s in namespace '${namespace ?? '(none)'}'; give one of them its own 'serviceName'`] : [];
  }
}

const MIB = 2 ** 20;
/** The runtime's writable /tmp, an emptyDir: it writes nowhere else. */
const TMP_SIZE_LIMIT_MIB = 64;
/** The runtime container's ephemeral storage besides the model: /tmp and its logs (the kubelet keeps 5 x 10Mi by default). */
const RUNTIME_EPHEMERAL_STORAGE_MIB = 256;
/** An init container writes only its logs: the root filesystem is read-only and its output goes to volumes. */
const INIT_CONTAINER_EPHEMERAL_STORAGE = '64Mi';

/**
 * Name resolution on port 53, UDP and TCP (large answers), to any destination rather than the kube-dns pods: a
 * peer selector would miss NodeLocal DNSCache's link-local address and clusters whose DNS runs elsewhere.
 */
const DNS_EGRESS: kplus.k8s.NetworkPolicyEgressRule = {
  ports: ['UDP', 'TCP'].map((protocol) => ({ port: kplus.k8s.IntOrString.fromNumber(53), protocol })),
};

/** A whole number of MiB as a quantity, in Gi when it is one. */
const mebibytes = (mib: number) => (mib % 1024 === 0 ? `${mib / 1024}Gi` : `${mib}Mi`);

/**
 * The runtime container's ephemeral-storage request and limit. The limit must hold the model's emptyDir and /tmp:
 * the kubelet counts emptyDirs against the pod's limit, which is this container's once the init containers ran.
 */
function checkEphemeralStorage(props: ModelServiceProps, modelBytes: number) {
  const modelMib = Math.ceil(modelBytes / MIB);
  const limit = checkStorage('ephemeralStorageLimit', byteQuantity(props.ephemeralStorageLimit ?? mebibytes(modelMib + RUNTIME_EPHEMERAL_STORAGE_MIB)));
  const request = checkStorage('ephemeralStorageRequest', props.ephemeralStorageRequest === undefined ? limit : byteQuantity(props.ephemeralStorageRequest));
  const floorMib = modelMib + TMP_SIZE_LIMIT_MIB;
  if (memoryBytes(limit) < floorMib * MIB) {
    const model = modelMib > 0 ? ` the model's emptyDirs (${mebibytes(modelMib)}, from ModelSource.fromUri's 'sizeLimit', twice it with 'optimize') and` : '';
    throw new Error(`'ephemeralStorageLimit' (${limit}) must be at least ${mebibytes(floorMib)}, room for${model} /tmp (${TMP_SIZE_LIMIT_MIB}Mi), or the kubelet evicts the pod; raise it${modelMib > 0 ? ' or lower \'sizeLimit\'' : ''}`);
  }
  if (memoryBytes(request) > memoryBytes(limit)) {
    throw new Error(`'ephemeralStorageRequest' (${request}) must not exceed 'ephemeralStorageLimit' (${limit})`);
  }
  return { request, limit };
}

/** The CPU and memory props with their defaults, each a valid quantity and no request above its limit. */
export function checkResources(props: ResourceProps): Resources {
  const resources = {
    cpuRequest: checkCpu('cpuRequest', cpuQuantity(props.cpuRequest ?? '500m')),
    cpuLimit: checkCpu('cpuLimit', cpuQuantity(props.cpuLimit ?? '2')),
    memoryRequest: checkMemory('memoryRequest', byteQuantity(props.memoryRequest ?? '512Mi')),
    memoryLimit: checkMemory('memoryLimit', byteQuantity(props.memoryLimit ?? '2Gi')),
  };
  if (cpuCores(resources.cpuRequest) > cpuCores(resources.cpuLimit)) {
    throw new Error(`'cpuRequest' (${resources.cpuRequest}) must not exceed 'cpuLimit' (${resources.cpuLimit})`);
  }
  if (memoryBytes(resources.memoryRequest) > memoryBytes(resources.memoryLimit)) {
    throw new Error(`'memoryRequest' (${resources.memoryRequest}) must not exceed 'memoryLimit' (${resources.memoryLimit})`);
  }
  return resources;
}

/** The runtime container's resources as the strings the user gave; cdk8s-plus would rewrite them in its units. */
function runtimeResources(resources: Resources, ephemeralStorage: { request: string; limit: string }, gpus: number): kplus.k8s.ResourceRequirements {
  const quantity = (value: string) => kplus.k8s.Quantity.fromString(value);
  return {
    requests: { 'cpu': quantity(resources.cpuRequest), 'memory': quantity(resources.memoryRequest), 'ephemeral-storage': quantity(ephemeralStorage.request) },
    limits: {
      'cpu': quantity(resources.cpuLimit), 'memory': quantity(resources.memoryLimit), 'ephemeral-storage': quantity(ephemeralStorage.limit),
      ...(gpus > 0 ? { 'nvidia.com/gpu': quantity(String(gpus)) } : {}),
    },
  };
}

function checkReplicas(replicas: number | undefined): number {
  const value = replicas ?? 2;
  if (!Number.isInteger(value) || value < 1) {
    throw new Error(`'replicas' (${replicas}) must be a positive integer; to scale to zero use a ModelAutoscaler with KEDA`);
  }
  return value;
}

function checkPreStopDelay(props: ModelServiceProps): number {
  const preStopDelay = props.preStopDelaySeconds ?? 5;
  if (!Number.isInteger(preStopDelay) || preStopDelay < 0 || preStopDelay > 300) {
    throw new Error(`'preStopDelaySeconds' (${preStopDelay}) must be an integer from 0 to 300`);
  }
  return preStopDelay;
}

/** The pod runs as one ServiceAccount: the one given, or the one the model's credentials name (workload identity). */
function serviceAccountOf(props: ModelServiceProps, source: ModelSourceConfig): kplus.IServiceAccount | undefined {
  const given = props.serviceAccount;
  const fromSource = source.serviceAccount;
  if (given && fromSource && given.name !== fromSource.name) {
    throw new Error(`'serviceAccount' ('${given.name}') and the model's credentials (ModelCredentials.fromServiceAccount('${fromSource.name}')) name different ServiceAccounts, and a pod runs as one; use the same account for both, or leave 'serviceAccount' out`);
  }
  return given ?? fromSource;
}

/** GPUs need the CUDA build of the runtime: the default image has only the CPU provider and would never be ready. */
function checkGpus(props: ModelServiceProps, source: ModelSourceConfig): number {
  const gpus = props.gpus ?? 0;
  if (!Number.isInteger(gpus) || gpus < 0) throw new Error(`'gpus' (${gpus}) must be a non-negative integer`);
  // An image the source brings (the model baked in) is built FROM whichever runtime image its author chose.
  if (gpus > 0 && props.image === undefined && source.image === undefined) {
    throw new Error(`'gpus' (${gpus}) needs a runtime image built with the CUDA provider, and the default image has only the CPU one; build runtime/Dockerfile with --build-arg EXECUTION_PROVIDER=cuda and set 'image' to it`);
  }
  return gpus;
}

/** The version prop only means something to sources that put the model into a version directory themselves. */
function checkModelVersion(props: ModelServiceProps): number {
  const version = checkPositiveInteger('modelVersion', props.modelVersion ?? 1);
  if (props.modelVersion !== undefined && props.model.bringsOwnVersions) {
    throw new Error(`'modelVersion' (${props.modelVersion}) has no effect with ${props.model.bringsOwnVersions}: the runtime serves the version directories the source holds (/models/<model>/<version>/model.onnx); remove 'modelVersion' or name the version there`);
  }
  return version;
}

/** The construct id stands in for the model name; say so when it is not a valid one. */
function modelNameFromId(id: string): string {
  try {
    return checkModelName('modelName', id);
  } catch {
    throw new Error(`the construct id '${id}' is used as the model's name, which must be 1 to 63 letters, digits, '_', '.' or '-', starting and ending with a letter or digit; give 'modelName' (e.g. modelName: '${id.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '') || 'model'}')`);
  }
}

/** The Service's name: given, or the model name as a DNS-1035 label (what a Service name must be). */
function serviceNameOf(props: ModelServiceProps, modelName: string): string {
  if (props.serviceName !== undefined) {
    if (!/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(props.serviceName)) {
      throw new Error(`'serviceName' ('${props.serviceName}') must be 1 to 63 lower-case letters, digits or '-', starting with a letter and ending with a letter or digit`);
    }
    return props.serviceName;
  }
  const label = modelName.toLowerCase().replace(/[_.]/g, '-').replace(/-+$/, '');
  return /^[a-z]/.test(label) ? label : `model-${label}`.slice(0, 63).replace(/-+$/, '');
}

/**
 * Behind a load balancer, clients reach the pods from outside the pod network (node or client addresses): pod and
 * namespace selectors never match them, and the NetworkPolicy would drop every request.
 */
function checkAllowFrom(allowFrom: kplus.k8s.NetworkPolicyPeer[] | undefined, exposure: Exposure): void {
  if (!exposure.fromOutsideCluster || !allowFrom || allowFrom.length === 0 || allowFrom.some((peer) => peer.ipBlock)) return;
  throw new Error("'allowFrom' has only pod or namespace selectors, but Exposure.loadBalancer() brings clients from outside the cluster, which they never match, so the NetworkPolicy would drop the balancer's traffic; add their address ranges as { ipBlock: { cidr: '<range>' } } or use Exposure.loadBalancer({ sourceRanges: [...] })");
}

/** The NetworkPolicy's peers: `allowFrom`, plus the balancer's source ranges when the user restricted both. */
function ingressPeers(allowFrom: kplus.k8s.NetworkPolicyPeer[] | undefined, exposure: Exposure): kplus.k8s.NetworkPolicyPeer[] | undefined {
  const ranges = (exposure.sourceRanges ?? []).map((cidr) => ({ ipBlock: { cidr } }));
  if (ranges.length === 0) return allowFrom;
  // Source ranges alone leave the pods open to the cluster as before, and to those ranges from outside.
  return allowFrom && allowFrom.length > 0 ? [...allowFrom, ...ranges] : undefined;
}

/** The authentication and TLS flags, pointing at the files the Secret volumes mount. */
function securityArgs(props: ModelServiceProps): string[] {
  return [
    ...(props.authTokenSecret ? [`--${SERVE_SETTINGS.authTokenFile.flag}=${AUTH_TOKEN_FILE}`] : []),
    ...(props.tlsSecret ? [`--${SERVE_SETTINGS.tlsCertFile.flag}=${TLS_DIR}/tls.crt`, `--${SERVE_SETTINGS.tlsKeyFile.flag}=${TLS_DIR}/tls.key`] : []),
  ];
}

/** Runtime flags from props, named and bounded by @modelship/contract's settings table. */
function runtimeArgs(props: ModelServiceProps, resources: Resources, gpus: number, drainTimeoutSeconds: number): string[] {
  const args = settingArgs(props);
  const write = (prop: string, setting: Setting, value: number | string | boolean | undefined) => {
    if (value !== undefined) args.push(`--${setting.flag}=${settingValue(prop, setting, value)}`);
  };
  // As many onnxruntime threads as the CPU limit has whole cores: more would be throttled by the quota.
  write('intraOpThreads', SERVE_SETTINGS.intraOpThreads, props.intraOpThreads ?? Math.max(1, Math.floor(cpuCores(resources.cpuLimit))));
  if (props.payloadLogging) {
    const logging = props.payloadLogging;
    if (logging.percent === undefined && logging.url === undefined) throw new Error("'payloadLogging' needs 'percent' (stdout records) or 'url' (a sink for events)");
    write('payloadLogging.percent', SERVE_SETTINGS.payloadLogPercent, logging.percent);
    if (logging.percent === 0) throw new Error("'payloadLogging.percent' (0) turns payload logging off; leave 'payloadLogging' unset instead");
    write('payloadLogging.maxBytes', SERVE_SETTINGS.payloadLogMaxBytes, logging.maxBytes);
    for (const name of logging.redact ?? []) args.push(`--${SERVE_SETTINGS.payloadLogRedact.flag}=${checkTensorName(name)}`);
    if (logging.url !== undefined) args.push(`--${SERVE_SETTINGS.payloadLogUrl.flag}=${payloadSinkUrl(logging.url).href}`);
    if (logging.serviceName !== undefined) {
      if (logging.serviceName.length === 0) throw new Error("'payloadLogging.serviceName' must not be empty");
      args.push(`--${SERVE_SETTINGS.payloadLogServiceName.flag}=${logging.serviceName}`);
    }
    if (logging.source !== undefined) {
      if (!URL.canParse(logging.source)) throw new Error(`'payloadLogging.source' ('${logging.source}') must be a URI`);
      args.push(`--${SERVE_SETTINGS.payloadLogSource.flag}=${logging.source}`);
    }
  } else if (props.env?.[SERVE_SETTINGS.payloadLogUrl.env] !== undefined) {
    // A sink named through env would get no NetworkPolicy egress, and every event would be dropped.
    throw new Error(`set the payload sink with 'payloadLogging.url', not env ${SERVE_SETTINGS.payloadLogUrl.env}: the NetworkPolicy must allow its port`);
  }
  args.push(`--${SERVE_SETTINGS.drainTimeoutSeconds.flag}=${drainTimeoutSeconds}`);
  if (gpus > 0) args.push(`--${SERVE_SETTINGS.executionProvider.flag}=cuda`);
  return args;
}

/** The sink's URL, checked as the runtime checks --payload-log-url. */
function payloadSinkUrl(value: string): URL {
  return destinationUrl('payloadLogging.url', value, 'the runtime refuses them');
}

/** The URLs the runtime connects to on its own, each checked by its prop's rules: the NetworkPolicy opens their ports. */
function runtimeDestinations(props: ModelServiceProps): URL[] {
  return [
    ...(props.payloadLogging?.url !== undefined ? [payloadSinkUrl(props.payloadLogging.url)] : []),
    ...(props.tracing ? [tracingEndpoint(props.tracing.endpoint)] : []),
  ];
}

/**
 * The runtime container's variables: what payload logging and tracing need, then `env`. The pod's namespace and
 * name come from the downward API, the only source of them when the chart names no namespace.
 */
function runtimeEnv(props: ModelServiceProps, serviceName: string): Record<string, kplus.EnvValue> | undefined {
  const env: Record<string, kplus.EnvValue> = {
    // The events' ce-namespace.
    ...(props.payloadLogging?.url !== undefined ? { [SERVE_SETTINGS.payloadLogNamespace.env]: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_NAMESPACE) } : {}),
    ...(props.tracing ? tracingEnv(props.tracing, serviceName) : {}),
    ...props.env,
  };
  return Object.keys(env).length > 0 ? env : undefined;
}

function checkTensorName(name: string): string {
  if (name.length === 0 || name.includes(',')) throw new Error(`'payloadLogging.redact' entry ('${name}') must be a tensor name, not empty and without ','`);
  return name;
}
