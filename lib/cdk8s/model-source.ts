/**
 * Where a ModelService's model comes from. Each source puts `<repository>/<model>/<version>/model.onnx` in front of
 * the runtime its own way: an init container that fetches and verifies it, an image that carries it, a volume
 * claim, or a ConfigMap made from a local file at synth time.
 */
import { readFileSync, statSync } from 'node:fs';
import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import {
  checkDriftProfile, DRIFT_PROFILE_FILE_NAME, type DriftProfile, FETCH_SETTINGS, MODEL_FILE_NAME, MODEL_REPOSITORY_PATH, type ModelUri, type OnnxFileInfo,
  OPTIMIZE_SETTINGS, type OptimizeLevel, parseModelUri, type Quantize, readOnnxFile,
} from '@modelship/contract';
import { ModelCredentials } from './model-credentials';
import { httpUrl, tcpEgress, urlPort } from './network';
import { checkSha256, checkStorage, memoryBytes, settingValue } from './validation';

/** What the ModelService tells a source about where the model must end up. */
export interface ModelSourceBindOptions {
  readonly modelName: string;
  readonly modelVersion: number;
  /** The runtime image, for init containers that run `modelship fetch`. */
  readonly runtimeImage: string;
  /** Security context every container of the pod gets. */
  readonly containerSecurityContext: kplus.ContainerSecurityContextProps;
}

/** What a source adds to the pod. */
export interface ModelSourceConfig {
  /** Replaces the runtime image (the model is baked into it). */
  readonly image?: string;
  readonly volume?: kplus.Volume;
  /** Mount the volume at the repository root (default) or, with subPath, a part of it. */
  readonly mountSubPath?: string;
  readonly mountPath?: string;
  readonly initContainers?: kplus.ContainerProps[];
  /** The signature read from a local file at synth time, when there is one. */
  readonly signature?: OnnxFileInfo;
  /** The drift profile read from a local file at synth time, when there is one (ModelSource.fromFile's `profile`). */
  readonly driftProfile?: DriftProfile;
  /**
   * Bytes of the node's ephemeral storage the source's volume may fill for the pod's whole life (an emptyDir's
   * sizeLimit). The kubelet counts emptyDir usage against the pod, whose limit after the init containers is the
   * runtime container's, so ModelService adds this to the runtime's ephemeral-storage request and limit.
   */
  readonly ephemeralStorageBytes?: number;
  /**
   * Init containers that load the model into onnxruntime as the server does (`optimize-model`): ModelService gives
   * them the runtime container's CPU and memory. An init container's requests do not add to the pod's (the pod
   * reserves the larger of them and its containers' sum), so this reserves nothing more on the node.
   */
  readonly initContainersSizedLikeRuntime?: readonly string[];
  /** NetworkPolicy egress the pod needs to obtain the model (the init container shares the pod's network). */
  readonly egress?: kplus.k8s.NetworkPolicyEgressRule[];
  /** The service account the pod runs as, for a workload identity that fetches the model. */
  readonly serviceAccount?: kplus.IServiceAccount;
}

/** The largest a single-file ONNX model can be: protobuf refuses messages of 2 GiB and more. */
const MAX_ONNX_FILE_SIZE = '2Gi';

export interface FromUriOptions {
  /** The file's sha256: the init container refuses anything else (for oci://, before downloading). */
  readonly sha256: string;
  /**
   * The largest the model file may be: the `sizeLimit` of the emptyDir it is downloaded into, rounded up to a whole
   * MiB. emptyDir usage counts against the pod's ephemeral storage, so ModelService adds it to the runtime
   * container's ephemeral-storage request and limit; set it near the model's real size to reserve less disk on the
   * node. A file that outgrows it gets the pod evicted.
   * @see https://kubernetes.io/docs/concepts/configuration/manage-resources-containers/#local-ephemeral-storage
   * @default '2Gi' - the most a single-file ONNX model can be (protobuf's limit), so any model the runtime can load fits
   */
  readonly sizeLimit?: string;
  /**
   * How the init container proves who it is to the store: `ModelCredentials.fromSecret(...)` (access keys for s3://,
   * a service-account key for gs://, a docker config for oci://) or `ModelCredentials.fromServiceAccount(...)`
   * (workload identity for s3:// and gs://). Not for http(s)://, where a pre-signed URL carries its own authorization.
   * @default - none: s3:// and gs:// use the identity the pod has anyway (its namespace's default service account,
   * which IRSA or Workload Identity may annotate; with none, fetch fails saying which variables to set), and oci://
   * pulls anonymously
   */
  readonly credentials?: ModelCredentials;
  /**
   * s3:// and gs:// only: the URL of an S3-compatible store (MinIO, Ceph, Cloudflare R2...) or a Cloud Storage
   * emulator, given to the init container as AWS_ENDPOINT_URL_S3 or STORAGE_EMULATOR_HOST. S3 requests to it are
   * path-style. The NetworkPolicy lets the pod reach its port.
   * @default - the cloud's own: AWS S3 in `region`, or https://storage.googleapis.com
   */
  readonly endpoint?: string;
  /**
   * s3:// only: the bucket's region, given as AWS_REGION (some S3-compatible stores want their own name, e.g. 'auto').
   * @default - 'us-east-1' first, then the region S3 names for the bucket (one request more)
   */
  readonly region?: string;
  /**
   * oci:// only: reach the registry over plain http (a registry without TLS inside the cluster).
   * @default false
   */
  readonly plainHttp?: boolean;
  /**
   * The model's drift profile (`modelship profile` writes it), fetched by a second init container into
   * `/models/<model>/<version>/profile.json`, beside the model, where the runtime looks for it; its sha256 is verified
   * like the model's. Same scheme as the model's URI, so `credentials`, `endpoint`, `region` and `plainHttp` serve
   * both. With it, ModelMonitoring's drift alerts are on by default.
   * @default - no profile: the runtime exports no drift metrics, and ModelMonitoring's `drift` is off by default
   */
  readonly profile?: UriProfile;
  /**
   * Optimize the model on the node that serves it, before the server starts: after fetch-model has verified the
   * download, a second init container, `optimize-model`, runs `modelship optimize` on it and writes the result as
   * the model.onnx the server loads. Its guard runs both models on the same inputs (random ones within the ranges
   * of `profile`, when there is one, else unit normal) and, when the optimized model strays beyond `maxError` or
   * `minAgreement`, exits non-zero and writes nothing: the pod stays in Init and never serves it
   * (`kubectl logs <pod> -c optimize-model` says why). It runs in every pod, at every start, since `level`
   * 'extended' and 'all' give a model specific to the CPU they ran on: a pod starts later by the time it takes.
   * @default - the model is served as fetched
   */
  readonly optimize?: ModelOptimization;
}

/**
 * What `modelship optimize` does to a ModelSource.fromUri model in the pod, and how far the result may stray from
 * the original. Set at least one of `level`, `quantize` and `fp16`.
 */
export interface ModelOptimization {
  /**
   * onnxruntime's graph optimizations, applied and saved. 'extended' and 'all' fuse operators for the instruction
   * set of the CPU they run on, which is why the optimization runs in the pod, on the node that serves.
   * @default - none saved (the server still applies its own `graphOptimizationLevel` when it loads the model)
   */
  readonly level?: OptimizeLevel;
  /**
   * 'dynamic-int8': MatMul and Gemm weights stored as int8 with scales, activations quantized at run time.
   * @default - weights keep their type
   */
  readonly quantize?: Quantize;
  /**
   * Float weights stored as float16 and cast back to float at load; inputs and outputs keep their types.
   * @default false
   */
  readonly fp16?: boolean;
  /**
   * Largest relative error allowed on any output (the largest absolute difference over the largest absolute value of
   * the original's output). Beyond it, optimize-model fails and the pod does not start.
   * @default - no limit: the guard reports the errors in the container's log and passes
   */
  readonly maxError?: number;
  /**
   * Smallest share (0 to 1) of rows whose top-1 class must be unchanged, for outputs that score classes
   * ([rows, classes]). Below it, optimize-model fails and the pod does not start.
   * @default - no limit: the agreement is reported, not required
   */
  readonly minAgreement?: number;
  /**
   * How many random inputs the guard runs both models on.
   * @default 32
   */
  readonly validateSamples?: number;
}

/** Where the drift profile of a ModelSource.fromUri model is, and its digest. */
export interface UriProfile {
  readonly uri: string;
  readonly sha256: string;
}

export interface FromFileOptions {
  /**
   * A local `profile.json` (`modelship profile` writes it), put into the model's ConfigMap beside `model.onnx`. Read
   * and checked at synth: its format, and that every tensor it names is an input or output of the model, of that kind.
   * @default - no profile: ModelMonitoring's `drift` is off by default
   */
  readonly profile?: string;
}

/** For sources that bring their own files (an image, a volume): whether a profile.json lies beside the model there. */
export interface BroughtProfileOptions {
  /**
   * A `profile.json` lies beside each `model.onnx` in the image or on the volume (the runtime reads it there); it
   * turns ModelMonitoring's drift alerts on by default. Nothing checks it at synth: the files are not at hand.
   * @default false
   */
  readonly profile?: boolean;
}

export abstract class ModelSource {
  /**
   * A model downloaded by an init container running the runtime image's `modelship fetch`, which verifies the
   * sha256 and writes atomically into an emptyDir shared with the server: from an http(s) URL, an S3 or
   * S3-compatible bucket (`s3://bucket/key`), a Cloud Storage bucket (`gs://bucket/object`) or an OCI registry
   * (`oci://registry/repository:tag` or `@sha256:...`, the artifact `oras push` makes of the file).
   */
  static fromUri(uri: string, options: FromUriOptions): ModelSource {
    let parsed: ModelUri;
    try {
      parsed = parseModelUri(uri);
    } catch (error) {
      throw new Error(`ModelSource.fromUri: ${(error as Error).message}`);
    }
    const sizeLimit = checkStorage('sizeLimit', options.sizeLimit ?? MAX_ONNX_FILE_SIZE);
    const scheme = parsed.scheme;
    const only = (prop: 'endpoint' | 'region' | 'plainHttp', schemes: readonly string[], fix: string) => {
      if (options[prop] !== undefined && !schemes.includes(scheme)) {
        throw new Error(`ModelSource.fromUri: '${prop}' (${JSON.stringify(options[prop])}) applies to ${schemes.map((x) => `${x}://`).join(' and ')} URIs only, not ${scheme}://; ${fix}`);
      }
    };
    only('endpoint', ['s3', 'gs'], scheme === 'oci' ? 'the oci:// URI names the registry' : 'the URI names the server');
    only('region', ['s3'], 'remove it');
    only('plainHttp', ['oci'], scheme === 'https' || scheme === 'http' ? 'write the http:// URL' : "write the endpoint's http:// URL in 'endpoint'");
    const endpoint = options.endpoint === undefined ? undefined : checkEndpoint(options.endpoint, scheme);
    if (options.region !== undefined && !/^[a-z0-9][a-z0-9-]{0,62}$/.test(options.region)) {
      throw new Error(`ModelSource.fromUri: 'region' ('${options.region}') is not a region name; use e.g. 'eu-west-1'`);
    }
    options.credentials?.check(scheme);
    const profile = options.profile === undefined ? undefined : checkUriProfile(options.profile, scheme);
    const optimizeFlags = options.optimize === undefined ? undefined : optimizationFlags(options.optimize);
    return new UriSource(uri, parsed, checkSha256('sha256', options.sha256), Math.ceil(memoryBytes(sizeLimit) / MIB), {
      credentials: options.credentials, endpoint, region: options.region, plainHttp: options.plainHttp ?? false, profile, optimizeFlags,
    });
  }

  /**
   * A runtime image with the model baked in at `/models/<model>/<version>/model.onnx` (build it `FROM` the
   * modelship runtime image and `COPY` the model there), as is common with TF Serving images.
   */
  static fromImage(image: string, options: BroughtProfileOptions = {}): ModelSource {
    if (!image || /\s/.test(image)) throw new Error(`ModelSource.fromImage: '${image}' is not an image reference`);
    return new ImageSource(image, checkBroughtProfile('ModelSource.fromImage', options));
  }

  /** A model repository on a PersistentVolumeClaim, mounted read-only; `path` is the repository's folder in it. */
  static fromPersistentVolumeClaim(claim: kplus.IPersistentVolumeClaim, path = '', options: BroughtProfileOptions = {}): ModelSource {
    if (path.startsWith('/') || path.split('/').includes('..')) {
      throw new Error(`ModelSource.fromPersistentVolumeClaim: path '${path}' must be relative to the volume, without '..'`);
    }
    return new ClaimSource(claim, path, checkBroughtProfile('ModelSource.fromPersistentVolumeClaim', options));
  }

  /**
   * A small local model put into a ConfigMap's binaryData at synth time. Its signature is read then, and a file
   * over the ConfigMap limit is refused: larger models belong in an image, a volume or behind a URI.
   */
  static fromFile(localPath: string, options: FromFileOptions = {}): ModelSource {
    if (options.profile !== undefined && (typeof options.profile !== 'string' || options.profile === '')) {
      throw new Error(`ModelSource.fromFile: 'profile' (${JSON.stringify(options.profile)}) must be the path of a profile.json; remove it for no profile`);
    }
    return new FileSource(localPath, options.profile);
  }

  /**
   * A profile.json lies beside the model where the runtime reads it, so the runtime exports drift metrics:
   * ModelMonitoring turns its drift alerts on by default.
   */
  readonly hasDriftProfile: boolean = false;

  /**
   * How the source is named in messages when it decides the served versions itself (an image, a volume): the
   * runtime serves the version directories it holds, so a ModelService's `modelVersion` would do nothing.
   * @default - undefined: the source writes the model into the version ModelService names
   */
  readonly bringsOwnVersions?: string;

  /** @internal */
  abstract bind(scope: Construct, options: ModelSourceBindOptions): ModelSourceConfig;
}

const versionPath = (options: ModelSourceBindOptions, file: string) =>
  `${MODEL_REPOSITORY_PATH}/${options.modelName}/${options.modelVersion}/${file}`;
const modelPath = (options: ModelSourceBindOptions) => versionPath(options, MODEL_FILE_NAME);

const MIB = 2 ** 20;

/**
 * `modelship optimize`'s flags for a fromUri `optimize`, named and bounded by its settings table, so that a bad value
 * fails the synth rather than the pod's start.
 */
function optimizationFlags(optimize: ModelOptimization): string[] {
  if (typeof optimize !== 'object' || optimize === null) {
    throw new Error(`ModelSource.fromUri: 'optimize' (${JSON.stringify(optimize)}) must be an object, e.g. { quantize: 'dynamic-int8' }`);
  }
  if (optimize.level === undefined && optimize.quantize === undefined && optimize.fp16 !== true) {
    throw new Error(`ModelSource.fromUri: 'optimize' (${JSON.stringify(optimize)}) changes nothing; set 'level' (${OPTIMIZE_SETTINGS.level.choices.map((c) => `'${c}'`).join(', ')}), 'quantize' (${OPTIMIZE_SETTINGS.quantize.choices.map((c) => `'${c}'`).join(', ')}) or 'fp16: true', or remove 'optimize'`);
  }
  if (optimize.fp16 !== undefined && typeof optimize.fp16 !== 'boolean') {
    throw new Error(`ModelSource.fromUri: 'optimize.fp16' (${JSON.stringify(optimize.fp16)}) must be true or false`);
  }
  const flags: string[] = [];
  const write = (prop: keyof ModelOptimization, setting: (typeof OPTIMIZE_SETTINGS)[keyof typeof OPTIMIZE_SETTINGS]) => {
    const value = optimize[prop];
    if (value === undefined) return;
    try {
      flags.push(`--${setting.flag}=${settingValue(`optimize.${prop}`, setting, value)}`);
    } catch (error) {
      throw new Error(`ModelSource.fromUri: ${(error as Error).message}`);
    }
  };
  write('level', OPTIMIZE_SETTINGS.level);
  write('quantize', OPTIMIZE_SETTINGS.quantize);
  if (optimize.fp16 === true) write('fp16', OPTIMIZE_SETTINGS.fp16);
  write('validateSamples', OPTIMIZE_SETTINGS.validateSamples);
  write('maxError', OPTIMIZE_SETTINGS.maxError);
  write('minAgreement', OPTIMIZE_SETTINGS.minAgreement);
  return flags;
}

/** A fromUri `profile`: a URI of the model's scheme (one set of credentials and endpoint serves both) and a digest. */
function checkUriProfile(profile: UriProfile, scheme: string): UriProfile {
  let parsed: ModelUri;
  try {
    parsed = parseModelUri(profile?.uri);
  } catch (error) {
    throw new Error(`ModelSource.fromUri: 'profile.uri' (${JSON.stringify(profile?.uri)}): ${(error as Error).message}`);
  }
  if (parsed.scheme !== scheme) {
    throw new Error(`ModelSource.fromUri: 'profile.uri' ('${profile.uri}') is a ${parsed.scheme}:// URI, the model's is ${scheme}://; put the profile in the same store as the model, since 'credentials', 'endpoint', 'region' and 'plainHttp' serve both`);
  }
  return { uri: profile.uri, sha256: checkSha256('profile.sha256', profile.sha256) };
}

function checkBroughtProfile(source: string, options: BroughtProfileOptions): boolean {
  if (options.profile !== undefined && typeof options.profile !== 'boolean') {
    throw new Error(`${source}: 'profile' (${JSON.stringify(options.profile)}) must be true (a profile.json lies beside the model) or false`);
  }
  return options.profile ?? false;
}

/** An endpoint URL for s3:// or gs://: http(s), nothing after the host but a path. */
function checkEndpoint(value: string, scheme: string): URL {
  const url = httpUrl(value);
  if (!url || url.search || url.hash || url.username) {
    const example = scheme === 's3' ? 'http://minio.storage.svc:9000' : 'http://fake-gcs.storage.svc:4443';
    throw new Error(`ModelSource.fromUri: 'endpoint' ('${value}') must be an http:// or https:// URL without query or credentials, e.g. '${example}'`);
  }
  return url;
}


interface UriSourceOptions {
  readonly credentials?: ModelCredentials;
  readonly endpoint?: URL;
  readonly region?: string;
  readonly plainHttp: boolean;
  readonly profile?: UriProfile;
  /** `modelship optimize`'s flags after IN and --out, when the model is optimized in the pod. */
  readonly optimizeFlags?: readonly string[];
}

/** The file fetch-model verifies and optimize-model reads, when the model is optimized. */
const SOURCE_FILE_NAME = 'source.onnx';
/** optimize-model's writable /tmp: scratch space only, the model goes to the model volume. */
const OPTIMIZE_TMP_SIZE_LIMIT_MIB = 64;

class UriSource extends ModelSource {
  override readonly hasDriftProfile: boolean;

  constructor(private readonly uri: string, private readonly parsed: ModelUri, private readonly sha256: string, private readonly sizeLimitMebibytes: number,
    private readonly options: UriSourceOptions) {
    super();
    this.hasDriftProfile = options.profile !== undefined;
  }

  /**
   * The ports the init container reaches the store on. The store's IP is unknown at synth time and NetworkPolicy
   * cannot name hosts, so any destination on those ports. A redirect to another port (http to https) needs
   * ModelService's `allowEgress`.
   */
  private storePorts(): number[] {
    const uri = this.parsed;
    switch (uri.scheme) {
      case 'https':
      case 'http':
        return [urlPort(uri.url)];
      case 's3':
      case 'gs':
        // The cloud's endpoints, and Google's token endpoint, are https.
        return [this.options.endpoint ? urlPort(this.options.endpoint) : 443];
      case 'oci':
        // Token services and the storage a registry redirects blob downloads to are https elsewhere, as a rule.
        return [...new Set([uri.port ?? (this.options.plainHttp ? 80 : 443), ...(this.options.plainHttp ? [] : [443])])];
    }
  }

  bind(scope: Construct, options: ModelSourceBindOptions): ModelSourceConfig {
    const optimizeFlags = this.options.optimizeFlags;
    // With optimize, the version directory holds the verified download (source.onnx) beside the optimized
    // model.onnx, each up to sizeLimit. Staging it there rather than in a volume of its own keeps one copy of the
    // drift profile beside both: the guard reads its ranges beside IN, the server beside model.onnx. The server never
    // sees a half-made model.onnx: it starts only once every init container has exited 0, and optimize writes no
    // file when its guard fails. source.onnx stays for the pod's life (when the init containers run again in the same
    // pod, fetch-model finds it verified and downloads nothing), so the volume is sized for both files, and all of it
    // counts against the pod's ephemeral storage.
    const filesInVolume = optimizeFlags ? 2 : 1;
    const volume = kplus.Volume.fromEmptyDir(scope, 'ModelVolume', 'models', { sizeLimit: Size.mebibytes(filesInVolume * this.sizeLimitMebibytes) });
    const credentials = this.options.credentials?.bind(scope, this.parsed.scheme);
    const env: Record<string, kplus.EnvValue> = { ...credentials?.env };
    if (this.options.endpoint) env[this.parsed.scheme === 's3' ? 'AWS_ENDPOINT_URL_S3' : 'STORAGE_EMULATOR_HOST'] = kplus.EnvValue.fromValue(this.options.endpoint.href.replace(/\/$/, ''));
    if (this.options.region) env.AWS_REGION = kplus.EnvValue.fromValue(this.options.region);
    const egress = [...this.storePorts().map((port) => tcpEgress(port)), ...(credentials?.egress ?? [])];
    const resources: kplus.ContainerResources = { cpu: { request: kplus.Cpu.millis(100), limit: kplus.Cpu.units(1) }, memory: { request: Size.mebibytes(128), limit: Size.mebibytes(512) } };
    // `modelship fetch` checks a digest and writes atomically whatever the file is, so the profile takes the same step:
    // a second init container, with the same store, credentials and flags, writing beside the model.
    const fetch = (name: string, uri: string, sha256: string, dest: string): kplus.ContainerProps => ({
      name,
      image: options.runtimeImage,
      args: [
        'fetch', `--${FETCH_SETTINGS.uri.flag}`, uri, `--${FETCH_SETTINGS.sha256.flag}`, sha256, `--${FETCH_SETTINGS.dest.flag}`, dest,
        ...(this.options.plainHttp ? [`--${FETCH_SETTINGS.plainHttp.flag}`, 'true'] : []),
      ],
      envVariables: Object.keys(env).length > 0 ? env : undefined,
      securityContext: options.containerSecurityContext,
      resources,
      volumeMounts: [{ path: MODEL_REPOSITORY_PATH, volume }, ...(credentials?.volumeMounts ?? [])],
    });
    const profile = this.options.profile;
    const initContainers = [
      fetch('fetch-model', this.uri, this.sha256, versionPath(options, optimizeFlags ? SOURCE_FILE_NAME : MODEL_FILE_NAME)),
      ...(profile ? [fetch('fetch-profile', profile.uri, profile.sha256, versionPath(options, DRIFT_PROFILE_FILE_NAME))] : []),
    ];
    let tmpBytes = 0;
    if (optimizeFlags) {
      // Last, so that the profile is beside source.onnx when the guard looks for its ranges. It needs neither the
      // store's credentials nor its network: only the model volume, and a /tmp of its own on the read-only root.
      const tmp = kplus.Volume.fromEmptyDir(scope, 'OptimizeTmpVolume', 'optimize-tmp', { sizeLimit: Size.mebibytes(OPTIMIZE_TMP_SIZE_LIMIT_MIB) });
      tmpBytes = OPTIMIZE_TMP_SIZE_LIMIT_MIB * MIB;
      initContainers.push({
        name: OPTIMIZE_CONTAINER,
        image: options.runtimeImage,
        args: ['optimize', versionPath(options, SOURCE_FILE_NAME), `--${OPTIMIZE_SETTINGS.out.flag}=${modelPath(options)}`, ...optimizeFlags],
        securityContext: options.containerSecurityContext,
        // Placeholders: ModelService gives it the runtime container's CPU and memory (initContainersSizedLikeRuntime).
        resources,
        volumeMounts: [{ path: MODEL_REPOSITORY_PATH, volume }, { path: '/tmp', volume: tmp }],
      });
    }
    return {
      volume,
      ephemeralStorageBytes: filesInVolume * this.sizeLimitMebibytes * MIB + tmpBytes,
      egress,
      serviceAccount: credentials?.serviceAccount,
      initContainers,
      initContainersSizedLikeRuntime: optimizeFlags ? [OPTIMIZE_CONTAINER] : undefined,
    };
  }
}

/** The init container that runs `modelship optimize`: `kubectl logs <pod> -c optimize-model` says why a guard failed. */
const OPTIMIZE_CONTAINER = 'optimize-model';

class ImageSource extends ModelSource {
  override readonly bringsOwnVersions = 'ModelSource.fromImage';

  constructor(private readonly image: string, override readonly hasDriftProfile: boolean) {
    super();
  }

  bind(): ModelSourceConfig {
    return { image: this.image };
  }
}

class ClaimSource extends ModelSource {
  override readonly bringsOwnVersions = 'ModelSource.fromPersistentVolumeClaim';

  constructor(private readonly claim: kplus.IPersistentVolumeClaim, private readonly path: string, override readonly hasDriftProfile: boolean) {
    super();
  }

  bind(scope: Construct): ModelSourceConfig {
    const volume = kplus.Volume.fromPersistentVolumeClaim(scope, 'ModelVolume', this.claim, { readOnly: true, name: 'models' });
    return { volume, mountSubPath: this.path || undefined };
  }
}

/** ConfigMaps are capped at 1 MiB in total (etcd's object limit); keys and metadata need a little of it. */
export const CONFIG_MAP_MODEL_LIMIT_BYTES = 1024 * 1024 - 16 * 1024;

class FileSource extends ModelSource {
  override readonly hasDriftProfile: boolean;

  constructor(private readonly localPath: string, private readonly profilePath: string | undefined) {
    super();
    this.hasDriftProfile = profilePath !== undefined;
  }

  bind(scope: Construct, options: ModelSourceBindOptions): ModelSourceConfig {
    let size: number;
    try {
      size = statSync(this.localPath).size;
    } catch (error) {
      throw new Error(`ModelSource.fromFile: cannot read '${this.localPath}': ${(error as NodeJS.ErrnoException).code}`);
    }
    if (size > CONFIG_MAP_MODEL_LIMIT_BYTES) {
      throw new Error(`ModelSource.fromFile: '${this.localPath}' is ${size} bytes, over the ${CONFIG_MAP_MODEL_LIMIT_BYTES}-byte ConfigMap limit; use ModelSource.fromUri, fromImage or fromPersistentVolumeClaim for it`);
    }
    const bytes = readFileSync(this.localPath);
    let signature: OnnxFileInfo;
    try {
      signature = readOnnxFile(bytes);
    } catch (error) {
      throw new Error(`ModelSource.fromFile: '${this.localPath}' is not an ONNX model: ${(error as Error).message}`);
    }
    const profile = this.profilePath === undefined ? undefined : readProfile(this.profilePath, signature);
    if (profile && size + Buffer.byteLength(profile.text) > CONFIG_MAP_MODEL_LIMIT_BYTES) {
      throw new Error(`ModelSource.fromFile: '${this.localPath}' (${size} bytes) and its 'profile' '${this.profilePath}' (${Buffer.byteLength(profile.text)} bytes) are over the ${CONFIG_MAP_MODEL_LIMIT_BYTES}-byte ConfigMap limit together; use ModelSource.fromUri with 'profile', or fromImage or fromPersistentVolumeClaim with { profile: true }`);
    }
    const configMap = new kplus.ConfigMap(scope, 'ModelFile', { immutable: true });
    configMap.addBinaryData(MODEL_FILE_NAME, bytes.toString('base64'));
    if (profile) configMap.addData(DRIFT_PROFILE_FILE_NAME, profile.text);
    const volume = kplus.Volume.fromConfigMap(scope, 'ModelVolume', configMap, { name: 'models' });
    return {
      volume,
      // The ConfigMap holds model.onnx (and profile.json): mount it as the version directory.
      mountPath: `${MODEL_REPOSITORY_PATH}/${options.modelName}/${options.modelVersion}`,
      signature,
      driftProfile: profile?.profile,
    };
  }
}

/**
 * A local profile.json, checked whole against the model it goes with: a tensor the model does not have, or of the
 * other kind, would give drift series no alert reads (or the wrong alert), so it fails the synth instead.
 */
function readProfile(path: string, signature: OnnxFileInfo): { readonly text: string; readonly profile: DriftProfile } {
  const where = `ModelSource.fromFile: 'profile' ('${path}')`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`${where} cannot be read: ${(error as NodeJS.ErrnoException).code}; give the path of the profile.json \`modelship profile\` wrote`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new Error(`${where} is not JSON (${(error as Error).message}); give the profile.json \`modelship profile\` wrote`);
  }
  const profile = checkDriftProfile(value, where);
  if (profile.modelSha256 !== undefined && profile.modelSha256.toLowerCase() !== signature.sha256) {
    throw new Error(`${where} was made for the model with sha256 ${profile.modelSha256}, not this one (${signature.sha256}); write the profile again for this model with \`modelship profile\``);
  }
  const kinds = new Map<string, 'input' | 'output'>([...signature.outputs.map((t) => [t.name, 'output'] as const), ...signature.inputs.map((t) => [t.name, 'input'] as const)]);
  for (const tensor of profile.tensors) {
    const kind = kinds.get(tensor.name);
    if (kind === undefined) {
      throw new Error(`${where} names tensor '${tensor.name}', which the model does not have (inputs: ${signature.inputs.map((t) => t.name).join(', ')}; outputs: ${signature.outputs.map((t) => t.name).join(', ')}); write the profile again for this model`);
    }
    if (kind !== tensor.kind) throw new Error(`${where} calls tensor '${tensor.name}' an ${tensor.kind}, but it is an ${kind} of the model; write the profile again for this model`);
  }
  return { text, profile };
}
