/**
 * ModelService: the modelship runtime serving one model — a Deployment (cdk8s-plus) with secure defaults, probes
 * on the runtime's health endpoints and a drain-aware shutdown, a Service with `http` and `grpc` ports, a
 * PodDisruptionBudget and a NetworkPolicy — plus PromQL helpers over the runtime's metrics.
 */
import { ApiObject, Chart, Duration, JsonPatch, Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import {
  GRPC_PORT, HTTP_PORT, type IntegerSetting, MODEL_REPOSITORY_PATH, type OnnxFileInfo, PATHS, PORT_NAME, RUNTIME_GID,
  RUNTIME_UID, SERVE_SETTINGS,
} from '@modelship/contract';
import { LABEL_KEYS, recommendedLabels, selectorLabels, type RecommendedLabels } from './labels';
import type { ModelSource } from './model-source';
import * as promql from './promql';
import { checkCpu, checkDataKey, checkDnsLabel, checkMemory, checkModelName, checkPositiveInteger, checkSetting, checkStorage, cpuCores, memoryBytes } from './validation';

// The package's own version, from its package.json one level up (the same path from lib/cdk8s/*.ts and *.js).
const PACKAGE_VERSION: string = require('../package.json').version;

/** The runtime image the constructs deploy unless told otherwise. */
export const DEFAULT_RUNTIME_IMAGE = `ghcr.io/modelship/runtime:${PACKAGE_VERSION}`;

/** How the Service is reached. */
export class Exposure {
  /** Inside the cluster only. */
  static clusterIp(): Exposure {
    return new Exposure(kplus.ServiceType.CLUSTER_IP, HTTP_PORT);
  }

  /** A cloud load balancer, REST on `port` and gRPC on 8081. */
  static loadBalancer(options: { readonly port?: number } = {}): Exposure {
    return new Exposure(kplus.ServiceType.LOAD_BALANCER, options.port ?? 80);
  }

  private constructor(readonly type: kplus.ServiceType, readonly httpPort: number) {}
}

export interface ModelServiceProps {
  /** Where the model comes from. */
  readonly model: ModelSource;
  /**
   * The model's name in the runtime's URLs (`/v2/models/<name>`) and in labels.
   * @default - the construct id
   */
  readonly modelName?: string;
  /** @default 1 */
  readonly modelVersion?: number;
  /** @default DEFAULT_RUNTIME_IMAGE */
  readonly image?: string;
  /**
   * Fixed replica count. Leave it unset when a ModelAutoscaler targets this service.
   * @default 2
   */
  readonly replicas?: number;
  /** @default '500m' */
  readonly cpuRequest?: string;
  /** @default '2' */
  readonly cpuLimit?: string;
  /** @default '512Mi' */
  readonly memoryRequest?: string;
  /** @default '2Gi' */
  readonly memoryLimit?: string;
  /**
   * Node-local disk the scheduler reserves for a pod (the runtime container's `ephemeral-storage` request). Disk is
   * not a burstable resource here: a downloaded model stays on the node for the pod's whole life.
   * @see https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#local-ephemeral-storage
   * @default - the limit
   */
  readonly ephemeralStorageRequest?: string;
  /**
   * The runtime container's `ephemeral-storage` limit. It is the pod's limit once the init containers are done, and
   * the kubelet evicts a pod whose emptyDirs, logs and writable layers together exceed it, so it must hold the
   * model's emptyDir (ModelSource.fromUri's `sizeLimit`) and `/tmp` (64Mi); the root filesystem is read-only.
   * @default - 256Mi (for `/tmp` and logs) plus the model's emptyDir: 2304Mi with ModelSource.fromUri's default `sizeLimit` of 2Gi, 256Mi for the other sources
   */
  readonly ephemeralStorageLimit?: string;
  /**
   * NVIDIA GPUs per pod (`nvidia.com/gpu`); above 0 the runtime runs the CUDA execution provider, which needs an
   * image built with it (runtime/Dockerfile, EXECUTION_PROVIDER=cuda).
   * @default 0
   */
  readonly gpus?: number;
  /** Rows per merged run; 1 turns dynamic batching off. @default 32 */
  readonly maxBatchSize?: number;
  /** How long a request may wait for a batch to fill. @default 0 */
  readonly maxQueueDelayMicroseconds?: number;
  /** Requests that may wait per model version before 429s. @default 256 */
  readonly maxQueueSize?: number;
  /**
   * Largest request body. @default - derived by the runtime from `memoryLimit`, so that one request cannot take
   * more than its share of the pod's memory (at most 64 MiB; docs/runtime.md, Memory per request)
   */
  readonly maxBodyBytes?: number;
  /** onnxruntime intra-op threads. @default - one per CPU of `cpuLimit` (the runtime reads its cgroup) */
  readonly intraOpThreads?: number;
  /** onnxruntime inter-op threads. @default - onnxruntime's choice */
  readonly interOpThreads?: number;
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
   * @default - any peer may reach the http and grpc ports, nothing else is open
   */
  readonly allowFrom?: kplus.k8s.NetworkPolicyPeer[];
  /**
   * Egress the pods may open besides DNS and the model download, as NetworkPolicy egress rules (peers and ports),
   * e.g. a proxy the download goes through. The runtime itself opens no connections.
   * @default - DNS (port 53, UDP and TCP, to any destination) and, with ModelSource.fromUri, the model host's port
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

export class ModelService extends Construct {
  readonly deployment: kplus.Deployment;
  readonly service: kplus.Service;
  readonly modelName: string;
  readonly labels: RecommendedLabels;
  /** The model's signature, when the source could read it at synth time (ModelSource.fromFile). */
  readonly signature?: OnnxFileInfo;
  readonly drainTimeoutSeconds: number;
  /** The name of `tlsSecret` when TLS is on: where a scraper finds the CA. */
  readonly tlsSecretName?: string;
  private disruptionBudget?: kplus.k8s.KubePodDisruptionBudget;

  constructor(scope: Construct, id: string, props: ModelServiceProps) {
    super(scope, id);
    this.modelName = checkModelName('modelName', props.modelName ?? id);
    const namespace = Chart.of(this).namespace;
    if (namespace !== undefined) checkDnsLabel('namespace', namespace);
    const modelVersion = checkPositiveInteger('modelVersion', props.modelVersion ?? 1);
    const replicas = props.replicas ?? 2;
    if (!Number.isInteger(replicas) || replicas < 1) {
      throw new Error(`'replicas' (${props.replicas}) must be a positive integer; to scale to zero use a ModelAutoscaler with KEDA`);
    }
    this.drainTimeoutSeconds = checkSetting('drainTimeoutSeconds', props.drainTimeoutSeconds ?? SERVE_SETTINGS.drainTimeoutSeconds.default, SERVE_SETTINGS.drainTimeoutSeconds);
    const preStopDelay = props.preStopDelaySeconds ?? 5;
    if (!Number.isInteger(preStopDelay) || preStopDelay < 0 || preStopDelay > 300) {
      throw new Error(`'preStopDelaySeconds' (${preStopDelay}) must be an integer from 0 to 300`);
    }
    const resources = checkResources(props);
    const gpus = props.gpus ?? 0;
    if (!Number.isInteger(gpus) || gpus < 0) throw new Error(`'gpus' (${gpus}) must be a non-negative integer`);

    const runtimeImage = props.image ?? DEFAULT_RUNTIME_IMAGE;
    const securityContext: kplus.ContainerSecurityContextProps = {
      ensureNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false,
      user: RUNTIME_UID, group: RUNTIME_GID,
    };
    const source = props.model.bind(this, { modelName: this.modelName, modelVersion, runtimeImage, containerSecurityContext: securityContext });
    this.signature = source.signature;
    const ephemeralStorage = checkEphemeralStorage(props, source.ephemeralStorageBytes ?? 0);

    const port = (name: string, number: number) => ({ name, number });
    this.tlsSecretName = props.tlsSecret?.name;
    // The kubelet does not verify the certificate of an HTTPS probe, so a self-signed or private CA works.
    const scheme = this.tlsEnabled ? kplus.ConnectionScheme.HTTPS : kplus.ConnectionScheme.HTTP;
    const readiness = (options: { periodSeconds: number; failureThreshold: number }) => kplus.Probe.fromHttpGet(PATHS.ready, {
      port: HTTP_PORT, periodSeconds: Duration.seconds(options.periodSeconds), failureThreshold: options.failureThreshold,
      timeoutSeconds: Duration.seconds(2), scheme,
    });
    this.deployment = new kplus.Deployment(this, 'Deployment', {
      // Unset unless given: cdk8s-plus then writes its default of 2, or nothing once an autoscaler takes over.
      replicas: props.replicas,
      // Start a new pod before stopping an old one: a rollout never drops below the serving capacity.
      strategy: kplus.DeploymentStrategy.rollingUpdate({ maxSurge: kplus.PercentOrAbsolute.absolute(1), maxUnavailable: kplus.PercentOrAbsolute.absolute(0) }),
      automountServiceAccountToken: false,
      // Set only when the model source fetches with a workload identity (ModelCredentials.fromServiceAccount).
      serviceAccount: source.serviceAccount,
      // The preStop delay, then the runtime's drain, then a margin for the process to exit.
      terminationGracePeriod: Duration.seconds(preStopDelay + this.drainTimeoutSeconds + 5),
      securityContext: { ensureNonRoot: true, user: RUNTIME_UID, group: RUNTIME_GID, fsGroup: RUNTIME_GID },
      initContainers: source.initContainers,
      containers: [{
        name: 'runtime',
        image: source.image ?? runtimeImage,
        args: ['serve', `--${SERVE_SETTINGS.modelRepository.flag}`, MODEL_REPOSITORY_PATH, ...runtimeArgs(props, gpus, this.drainTimeoutSeconds), ...securityArgs(props)],
        ports: [port(PORT_NAME.http, HTTP_PORT), port(PORT_NAME.grpc, GRPC_PORT)],
        // Slow model loads must not count as failed liveness: the startup probe allows 5 minutes.
        startup: readiness({ periodSeconds: 5, failureThreshold: 60 }),
        readiness: readiness({ periodSeconds: 5, failureThreshold: 2 }),
        liveness: kplus.Probe.fromHttpGet(PATHS.live, { port: HTTP_PORT, periodSeconds: Duration.seconds(10), failureThreshold: 3, timeoutSeconds: Duration.seconds(2), scheme }),
        // The image has no shell; node can wait. Endpoints drop the pod while it waits, so SIGTERM finds no new traffic.
        lifecycle: preStopDelay > 0 ? { preStop: kplus.Handler.fromCommand(['node', '-e', `setTimeout(() => {}, ${preStopDelay * 1000})`]) } : undefined,
        securityContext,
        resources: {
          // Placeholders: without them cdk8s-plus writes its own defaults; the exact strings are patched in below.
          cpu: { request: kplus.Cpu.millis(1), limit: kplus.Cpu.millis(1) },
          memory: { request: Size.mebibytes(1), limit: Size.mebibytes(1) },
        },
        volumeMounts: source.volume ? [{ path: source.mountPath ?? MODEL_REPOSITORY_PATH, volume: source.volume, readOnly: true, subPath: source.mountSubPath }] : [],
      }],
    });
    // Polaris (metadataAndInstanceMismatched) wants the instance label to be the workload's name. The generated name
    // is a unique, stable DNS label, and naming the instance after it leaves the Deployment's name as it always was.
    this.labels = recommendedLabels(this.modelName, this.deployment.name, props.partOf ?? 'modelship');
    for (const [key, value] of Object.entries(this.labels)) {
      this.deployment.metadata.addLabel(key, value);
      this.deployment.podMetadata.addLabel(key, value);
    }
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

    const deploymentObject = ApiObject.of(this.deployment);
    // cdk8s-plus names capabilities CAP_*; Kubernetes' "drop everything" is the literal ALL.
    const containerPaths = ['containers/0', ...(source.initContainers ?? []).map((_, i) => `initContainers/${i}`)];
    deploymentObject.addJsonPatch(
      ...containerPaths.map((path) => JsonPatch.add(`/spec/template/spec/${path}/securityContext/capabilities`, { drop: ['ALL'] })),
      JsonPatch.add('/spec/template/spec/securityContext/seccompProfile', { type: 'RuntimeDefault' }),
      // Prefer replicas on different hosts (what kube-score looks for), besides the spread below; preferred, not
      // required, so a small cluster still schedules every replica.
      JsonPatch.add('/spec/template/spec/affinity', { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{
        weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: selectorLabels(this.labels) } },
      }] } }),
      // Spread across nodes and zones, preferring rather than requiring it so small clusters still schedule.
      JsonPatch.add('/spec/template/spec/topologySpreadConstraints', ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'].map((topologyKey) => ({
        maxSkew: 1, topologyKey, whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels: selectorLabels(this.labels) },
      }))),
    );
    // cdk8s-plus expresses quantities in its own units; write the strings the user gave, exactly. The patch holds
    // Quantity objects because the generated KubeDeployment maps patched props to JSON after patching.
    const quantity = (value: string) => kplus.k8s.Quantity.fromString(value);
    deploymentObject.addJsonPatch(JsonPatch.replace('/spec/template/spec/containers/0/resources', {
      requests: { 'cpu': quantity(resources.cpuRequest), 'memory': quantity(resources.memoryRequest), 'ephemeral-storage': quantity(ephemeralStorage.request) },
      limits: {
        'cpu': quantity(resources.cpuLimit), 'memory': quantity(resources.memoryLimit), 'ephemeral-storage': quantity(ephemeralStorage.limit),
        ...(gpus > 0 ? { 'nvidia.com/gpu': quantity(String(gpus)) } : {}),
      },
    }));
    // The init containers' own writes are their logs; what they produce goes to volumes, counted in the pod's limit.
    deploymentObject.addJsonPatch(...(source.initContainers ?? []).flatMap((_, i) => ['requests', 'limits'].map((kind) =>
      JsonPatch.add(`/spec/template/spec/initContainers/${i}/resources/${kind}/ephemeral-storage`, quantity(INIT_CONTAINER_EPHEMERAL_STORAGE)))));

    const exposure = props.exposure ?? Exposure.clusterIp();
    this.service = new kplus.Service(this, 'Service', {
      metadata: { labels: this.labels },
      type: exposure.type,
      selector: this.deployment,
      ports: [
        { name: PORT_NAME.http, port: exposure.httpPort, targetPort: HTTP_PORT },
        { name: PORT_NAME.grpc, port: GRPC_PORT, targetPort: GRPC_PORT },
      ],
    });

    if (replicas > 1) this.ensureDisruptionBudget();
    this.createNetworkPolicy(props.allowFrom, [DNS_EGRESS, ...(source.egress ?? []), ...(props.allowEgress ?? [])]);
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

  /** The selector that picks this service's series in Prometheus (as the Prometheus Operator labels them). */
  get seriesSelector(): promql.SeriesSelector {
    return { namespace: ApiObject.of(this.deployment).metadata.namespace, service: this.service.name };
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

  /** Adds a PodDisruptionBudget (maxUnavailable 1) if there is none yet; autoscalers call it. @internal */
  ensureDisruptionBudget(): void {
    this.disruptionBudget ??= new kplus.k8s.KubePodDisruptionBudget(this, 'DisruptionBudget', {
      metadata: { labels: this.labels },
      spec: { maxUnavailable: kplus.k8s.IntOrString.fromNumber(1), selector: { matchLabels: selectorLabels(this.labels) } },
    });
  }

  private createNetworkPolicy(allowFrom: kplus.k8s.NetworkPolicyPeer[] | undefined, egress: kplus.k8s.NetworkPolicyEgressRule[]): void {
    new kplus.k8s.KubeNetworkPolicy(this, 'NetworkPolicy', {
      metadata: { labels: this.labels },
      spec: {
        // The instance label alone: it is unique to this service, and Polaris (missingNetworkPolicy) accepts a
        // selector only when it names exactly one of the pod's labels.
        podSelector: { matchLabels: { [LABEL_KEYS.instance]: this.labels[LABEL_KEYS.instance] } },
        policyTypes: ['Ingress', 'Egress'],
        ingress: [{
          ...(allowFrom && allowFrom.length > 0 ? { from: allowFrom } : {}),
          ports: [HTTP_PORT, GRPC_PORT].map((number) => ({ port: kplus.k8s.IntOrString.fromNumber(number), protocol: 'TCP' })),
        }],
        egress,
      },
    });
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
  const limit = checkStorage('ephemeralStorageLimit', props.ephemeralStorageLimit ?? mebibytes(modelMib + RUNTIME_EPHEMERAL_STORAGE_MIB));
  const request = checkStorage('ephemeralStorageRequest', props.ephemeralStorageRequest ?? limit);
  const floorMib = modelMib + TMP_SIZE_LIMIT_MIB;
  if (memoryBytes(limit) < floorMib * MIB) {
    const model = modelMib > 0 ? ` the model's emptyDir (${mebibytes(modelMib)}, ModelSource.fromUri's 'sizeLimit') and` : '';
    throw new Error(`'ephemeralStorageLimit' (${limit}) must be at least ${mebibytes(floorMib)}, room for${model} /tmp (${TMP_SIZE_LIMIT_MIB}Mi), or the kubelet evicts the pod; raise it${modelMib > 0 ? ' or lower \'sizeLimit\'' : ''}`);
  }
  if (memoryBytes(request) > memoryBytes(limit)) {
    throw new Error(`'ephemeralStorageRequest' (${request}) must not exceed 'ephemeralStorageLimit' (${limit})`);
  }
  return { request, limit };
}

function checkResources(props: ModelServiceProps) {
  const resources = {
    cpuRequest: checkCpu('cpuRequest', props.cpuRequest ?? '500m'),
    cpuLimit: checkCpu('cpuLimit', props.cpuLimit ?? '2'),
    memoryRequest: checkMemory('memoryRequest', props.memoryRequest ?? '512Mi'),
    memoryLimit: checkMemory('memoryLimit', props.memoryLimit ?? '2Gi'),
  };
  if (cpuCores(resources.cpuRequest) > cpuCores(resources.cpuLimit)) {
    throw new Error(`'cpuRequest' (${resources.cpuRequest}) must not exceed 'cpuLimit' (${resources.cpuLimit})`);
  }
  if (memoryBytes(resources.memoryRequest) > memoryBytes(resources.memoryLimit)) {
    throw new Error(`'memoryRequest' (${resources.memoryRequest}) must not exceed 'memoryLimit' (${resources.memoryLimit})`);
  }
  return resources;
}


/** The authentication and TLS flags, pointing at the files the Secret volumes mount. */
function securityArgs(props: ModelServiceProps): string[] {
  return [
    ...(props.authTokenSecret ? [`--${SERVE_SETTINGS.authTokenFile.flag}=${AUTH_TOKEN_FILE}`] : []),
    ...(props.tlsSecret ? [`--${SERVE_SETTINGS.tlsCertFile.flag}=${TLS_DIR}/tls.crt`, `--${SERVE_SETTINGS.tlsKeyFile.flag}=${TLS_DIR}/tls.key`] : []),
  ];
}

/** Runtime flags from props, named by lib/contract/settings.ts; only what differs from the runtime's defaults. */
function runtimeArgs(props: ModelServiceProps, gpus: number, drainTimeoutSeconds: number): string[] {
  const args: string[] = [];
  const flag = (prop: keyof ModelServiceProps & keyof typeof SERVE_SETTINGS, value: number | undefined) => {
    if (value === undefined) return;
    const setting = SERVE_SETTINGS[prop] as IntegerSetting;
    args.push(`--${setting.flag}=${checkSetting(prop, value, setting)}`);
  };
  flag('maxBatchSize', props.maxBatchSize);
  flag('maxQueueDelayMicroseconds', props.maxQueueDelayMicroseconds);
  flag('maxQueueSize', props.maxQueueSize);
  flag('maxBodyBytes', props.maxBodyBytes);
  flag('intraOpThreads', props.intraOpThreads);
  flag('interOpThreads', props.interOpThreads);
  args.push(`--${SERVE_SETTINGS.drainTimeoutSeconds.flag}=${drainTimeoutSeconds}`);
  if (gpus > 0) args.push(`--${SERVE_SETTINGS.executionProvider.flag}=cuda`);
  return args;
}
