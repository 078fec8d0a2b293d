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
  FETCH_SETTINGS, MODEL_FILE_NAME, MODEL_REPOSITORY_PATH, type OnnxFileInfo, readOnnxFile,
} from '@modelship/contract';
import { checkSha256, checkStorage, memoryBytes } from './validation';

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
  /**
   * Bytes of the node's ephemeral storage the source's volume may fill for the pod's whole life (an emptyDir's
   * sizeLimit). The kubelet counts emptyDir usage against the pod, whose limit after the init containers is the
   * runtime container's, so ModelService adds this to the runtime's ephemeral-storage request and limit.
   */
  readonly ephemeralStorageBytes?: number;
  /** NetworkPolicy egress the pod needs to obtain the model (the init container shares the pod's network). */
  readonly egress?: kplus.k8s.NetworkPolicyEgressRule[];
}

/** The largest a single-file ONNX model can be: protobuf refuses messages of 2 GiB and more. */
const MAX_ONNX_FILE_SIZE = '2Gi';

export interface FromUriOptions {
  /** The file's sha256: the init container refuses anything else. */
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
}

export abstract class ModelSource {
  /**
   * A model downloaded over http(s) by an init container running the runtime image's `modelship fetch`, which
   * verifies the sha256 and writes atomically into an emptyDir shared with the server.
   */
  static fromUri(uri: string, options: FromUriOptions): ModelSource {
    let url: URL;
    try {
      url = new URL(uri);
    } catch {
      throw new Error(`ModelSource.fromUri: '${uri}' is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new Error(`ModelSource.fromUri: '${uri}' must be http:// or https://`);
    }
    const sizeLimit = checkStorage('sizeLimit', options.sizeLimit ?? MAX_ONNX_FILE_SIZE);
    return new UriSource(uri, checkSha256('sha256', options.sha256), Math.ceil(memoryBytes(sizeLimit) / MIB), uriPort(url));
  }

  /**
   * A runtime image with the model baked in at `/models/<model>/<version>/model.onnx` (build it `FROM` the
   * modelship runtime image and `COPY` the model there), as is common with TF Serving images.
   */
  static fromImage(image: string): ModelSource {
    if (!image || /\s/.test(image)) throw new Error(`ModelSource.fromImage: '${image}' is not an image reference`);
    return new ImageSource(image);
  }

  /** A model repository on a PersistentVolumeClaim, mounted read-only; `path` is the repository's folder in it. */
  static fromPersistentVolumeClaim(claim: kplus.IPersistentVolumeClaim, path = ''): ModelSource {
    if (path.startsWith('/') || path.split('/').includes('..')) {
      throw new Error(`ModelSource.fromPersistentVolumeClaim: path '${path}' must be relative to the volume, without '..'`);
    }
    return new ClaimSource(claim, path);
  }

  /**
   * A small local model put into a ConfigMap's binaryData at synth time. Its signature is read then, and a file
   * over the ConfigMap limit is refused: larger models belong in an image, a volume or behind a URI.
   */
  static fromFile(localPath: string): ModelSource {
    return new FileSource(localPath);
  }

  /**
   * How the source is named in messages when it decides the served versions itself (an image, a volume): the
   * runtime serves the version directories it holds, so a ModelService's `modelVersion` would do nothing.
   * @default - undefined: the source writes the model into the version ModelService names
   */
  readonly bringsOwnVersions?: string;

  /** @internal */
  abstract bind(scope: Construct, options: ModelSourceBindOptions): ModelSourceConfig;
}

const modelPath = (options: ModelSourceBindOptions) =>
  `${MODEL_REPOSITORY_PATH}/${options.modelName}/${options.modelVersion}/${MODEL_FILE_NAME}`;

const MIB = 2 ** 20;

/** The port `modelship fetch` connects to: the URI's own, else the scheme's. */
function uriPort(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

class UriSource extends ModelSource {
  constructor(private readonly uri: string, private readonly sha256: string, private readonly sizeLimitMebibytes: number, private readonly port: number) {
    super();
  }

  bind(_scope: Construct, options: ModelSourceBindOptions): ModelSourceConfig {
    const volume = kplus.Volume.fromEmptyDir(_scope, 'ModelVolume', 'models', { sizeLimit: Size.mebibytes(this.sizeLimitMebibytes) });
    return {
      volume,
      ephemeralStorageBytes: this.sizeLimitMebibytes * MIB,
      // The model host's IP is unknown at synth time and NetworkPolicy cannot name hosts, so any destination on its
      // port. A redirect to another port (http to https) needs ModelService's `allowEgress`.
      egress: [{ ports: [{ port: kplus.k8s.IntOrString.fromNumber(this.port), protocol: 'TCP' }] }],
      initContainers: [{
        name: 'fetch-model',
        image: options.runtimeImage,
        args: ['fetch', `--${FETCH_SETTINGS.uri.flag}`, this.uri, `--${FETCH_SETTINGS.sha256.flag}`, this.sha256, `--${FETCH_SETTINGS.dest.flag}`, modelPath(options)],
        securityContext: options.containerSecurityContext,
        resources: { cpu: { request: kplus.Cpu.millis(100), limit: kplus.Cpu.units(1) }, memory: { request: Size.mebibytes(128), limit: Size.mebibytes(512) } },
        volumeMounts: [{ path: MODEL_REPOSITORY_PATH, volume }],
      }],
    };
  }
}

class ImageSource extends ModelSource {
  override readonly bringsOwnVersions = 'ModelSource.fromImage';

  constructor(private readonly image: string) {
    super();
  }

  bind(): ModelSourceConfig {
    return { image: this.image };
  }
}

class ClaimSource extends ModelSource {
  override readonly bringsOwnVersions = 'ModelSource.fromPersistentVolumeClaim';

  constructor(private readonly claim: kplus.IPersistentVolumeClaim, private readonly path: string) {
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
  constructor(private readonly localPath: string) {
    super();
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
    const configMap = new kplus.ConfigMap(scope, 'ModelFile', { immutable: true });
    configMap.addBinaryData(MODEL_FILE_NAME, bytes.toString('base64'));
    const volume = kplus.Volume.fromConfigMap(scope, 'ModelVolume', configMap, { name: 'models' });
    return {
      volume,
      // The ConfigMap holds only model.onnx: mount it as the version directory.
      mountPath: `${MODEL_REPOSITORY_PATH}/${options.modelName}/${options.modelVersion}`,
      signature,
    };
  }
}
