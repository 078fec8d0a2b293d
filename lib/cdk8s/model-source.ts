/**
 * Where a ModelService's model comes from. Each source puts `<repository>/<model>/<version>/model.onnx` in front of
 * the runtime its own way: an init container that fetches and verifies it, an image that carries it, a volume
 * claim, or a ConfigMap made from a local file at synth time.
 */
import { readFileSync, statSync } from 'node:fs';
import { Size } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { MODEL_FILE_NAME, MODEL_REPOSITORY_PATH } from '../contract/runtime';
import { FETCH_SETTINGS } from '../contract/settings';
import { readOnnxFile, type OnnxFileInfo } from '../../runtime/src/model/onnx-file';
import { checkSha256 } from './validation';

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
}

export interface FromUriOptions {
  /** The file's sha256: the init container refuses anything else. */
  readonly sha256: string;
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
    return new UriSource(uri, checkSha256('sha256', options.sha256));
  }

  /**
   * A runtime image with the model baked in at `/models/<model>/<version>/model.onnx` (build it `FROM` the
   * modelship runtime image and `COPY` the model there), as the seed's Dockerfile does for TF Serving.
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

  /** @internal */
  abstract bind(scope: Construct, options: ModelSourceBindOptions): ModelSourceConfig;
}

const modelPath = (options: ModelSourceBindOptions) =>
  `${MODEL_REPOSITORY_PATH}/${options.modelName}/${options.modelVersion}/${MODEL_FILE_NAME}`;

class UriSource extends ModelSource {
  constructor(private readonly uri: string, private readonly sha256: string) {
    super();
  }

  bind(_scope: Construct, options: ModelSourceBindOptions): ModelSourceConfig {
    const volume = kplus.Volume.fromEmptyDir(_scope, 'ModelVolume', 'models');
    return {
      volume,
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
  constructor(private readonly image: string) {
    super();
  }

  bind(): ModelSourceConfig {
    return { image: this.image };
  }
}

class ClaimSource extends ModelSource {
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
