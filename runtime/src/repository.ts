/**
 * Finds the models to serve: a repository laid out as `<model>/<version>/model.onnx` (TF Serving's and Triton's
 * layout) with an optional `<model>/config.json|yaml`, or explicit `NAME=PATH` pairs. Problems with one model are
 * recorded on it and reported, never thrown: one broken model must not take the others down.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { DRIFT_PROFILE_FILE_NAME, MODEL_CONFIG_FILE_NAMES, MODEL_FILE_NAME } from '@modelship/contract';
import { UsageError } from './errors';

export interface VersionEntry {
  readonly version: number;
  readonly path: string;
  /** Where the version's drift profile would be (read at load when it exists): repository versions only. */
  readonly profilePath?: string;
}

export interface ModelEntry {
  readonly name: string;
  readonly versions: readonly VersionEntry[];
  readonly configPath?: string;
  /** Why the model cannot be served at all (e.g. no version directory). */
  readonly problem?: string;
}

/** Names usable in a URL path segment without escaping; also what Triton and KServe accept in practice. */
const MODEL_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const VERSION = /^[1-9]\d{0,15}$/;

export function isModelName(name: string): boolean {
  return MODEL_NAME.test(name);
}

export interface ScanResult {
  readonly models: readonly ModelEntry[];
  /** Directory entries that were passed over, with the reason, for the log. */
  readonly skipped: readonly string[];
}

export function scanRepository(dir: string): ScanResult {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new UsageError(`--model-repository '${dir}' is not a directory`);
  }
  const models: ModelEntry[] = [];
  const skipped: string[] = [];
  for (const name of readdirSync(root).sort()) {
    const modelDir = join(root, name);
    if (name.startsWith('.') || !statSync(modelDir).isDirectory()) continue;
    if (!isModelName(name)) {
      skipped.push(`${modelDir}: '${name}' is not a valid model name (letters, digits, '_', '.', '-')`);
      continue;
    }
    models.push(scanModelDirectory(name, modelDir, skipped));
  }
  return { models, skipped };
}

/**
 * One model's directory, as a repository holds it: numbered version directories with model.onnx (and profile.json)
 * inside, and an optional config file. Directories that are not versions are added to `skipped`.
 */
function scanModelDirectory(name: string, modelDir: string, skipped: string[]): ModelEntry {
  const versions: VersionEntry[] = [];
  for (const child of readdirSync(modelDir)) {
    const versionDir = join(modelDir, child);
    if (!statSync(versionDir).isDirectory()) continue;
    if (!VERSION.test(child)) {
      skipped.push(`${versionDir}: version directories are positive integers`);
      continue;
    }
    versions.push(versionIn(Number(child), versionDir, MODEL_FILE_NAME));
  }
  versions.sort((a, b) => a.version - b.version);
  return {
    name, versions, configPath: configFileIn(modelDir),
    problem: versions.length === 0 ? `no version directory (expected ${modelDir}/<version>/${MODEL_FILE_NAME})` : undefined,
  };
}

/**
 * `--model-dir DIR --model-name NAME`: one model's directory, as KServe's storage initializer leaves it at
 * /mnt/models. A model.onnx directly inside is version 1 (a storageUri naming one model's files); otherwise DIR is
 * read as a repository's model directory (`<version>/model.onnx`). Unlike a repository, a directory that holds
 * neither is an error at start: the one model asked for cannot be served.
 */
export function modelFromDirectory(dir: string, name: string): ScanResult {
  if (!isModelName(name)) {
    throw new UsageError(`--model-name '${name}' is not a valid model name (letters, digits, '_', '.', '-'; at most 128, not starting with '.' or '-')`);
  }
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new UsageError(`--model-dir '${dir}' is not a directory: give the directory that holds ${MODEL_FILE_NAME} or <version>/${MODEL_FILE_NAME}`);
  }
  const skipped: string[] = [];
  const direct = directModelFile(root, dir);
  if (direct !== undefined) return { models: [{ name, configPath: configFileIn(root), versions: [versionIn(1, root, direct)] }], skipped };
  const entry = scanModelDirectory(name, root, skipped);
  if (entry.versions.length === 0) {
    throw new UsageError(`--model-dir '${dir}' holds no ${MODEL_FILE_NAME}: put the model at ${join(root, MODEL_FILE_NAME)} or in a version directory such as ${join(root, '1', MODEL_FILE_NAME)}`);
  }
  return { models: [entry], skipped };
}

/**
 * The model file directly in a --model-dir: model.onnx, or the only .onnx file there, since a storageUri that
 * names a single file (`.../fraud.onnx`) is downloaded under its own name.
 */
function directModelFile(root: string, dir: string): string | undefined {
  if (existsSync(join(root, MODEL_FILE_NAME))) return MODEL_FILE_NAME;
  const files = readdirSync(root).filter((file) => file.endsWith('.onnx') && statSync(join(root, file)).isFile());
  if (files.length > 1) {
    throw new UsageError(`--model-dir '${dir}' holds ${files.length} .onnx files (${files.sort().join(', ')}) and no ${MODEL_FILE_NAME}: name the one to serve ${MODEL_FILE_NAME}, or move the others out`);
  }
  return files[0];
}

function versionIn(version: number, dir: string, file: string): VersionEntry {
  return { version, path: join(dir, file), profilePath: join(dir, DRIFT_PROFILE_FILE_NAME) };
}

function configFileIn(modelDir: string): string | undefined {
  return MODEL_CONFIG_FILE_NAMES.map((file) => join(modelDir, file)).find((file) => existsSync(file));
}

/** `NAME=PATH` pairs from --model, each served as version 1. */
export function modelsFromFlags(pairs: readonly string[]): ModelEntry[] {
  const seen = new Set<string>();
  return pairs.map((pair) => {
    const at = pair.indexOf('=');
    const name = pair.slice(0, at);
    const path = pair.slice(at + 1);
    if (at <= 0 || path === '') {
      const guess = at < 0 && pair !== '' ? basename(pair).replace(/\.[^.]*$/, '').replace(/[^A-Za-z0-9_.-]/g, '_') : '';
      throw new UsageError(`--model must be NAME=PATH.onnx, received '${pair}'${isModelName(guess) ? ` (for example --model ${guess}=${pair})` : ''}`);
    }
    if (!isModelName(name)) throw new UsageError(`--model '${pair}': '${name}' is not a valid model name (letters, digits, '_', '.', '-')`);
    if (seen.has(name)) throw new UsageError(`--model '${name}' is given more than once`);
    if (!existsSync(path)) throw new UsageError(`--model '${pair}': no file at '${path}'`);
    if (statSync(path).isDirectory()) throw new UsageError(`--model '${pair}': '${path}' is a directory; ${directoryHint(name, path)}`);
    seen.add(name);
    return { name, versions: [{ version: 1, path: resolve(path) }] };
  });
}

/** What to pass instead of a directory given to --model. */
function directoryHint(name: string, dir: string): string {
  if (existsSync(join(dir, MODEL_FILE_NAME))) return `did you mean --model ${name}=${join(dir, MODEL_FILE_NAME)}?`;
  if (existsSync(join(dir, 'saved_model.pb'))) {
    return `it looks like a TensorFlow SavedModel; convert it to ONNX with python -m tf2onnx.convert --saved-model ${dir} --output model.onnx`;
  }
  return `--model takes a .onnx file (a directory laid out as <model>/<version>/${MODEL_FILE_NAME} goes to --model-repository)`;
}
