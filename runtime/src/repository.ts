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
    const versions: VersionEntry[] = [];
    for (const child of readdirSync(modelDir)) {
      const versionDir = join(modelDir, child);
      if (!statSync(versionDir).isDirectory()) continue;
      if (!VERSION.test(child)) {
        skipped.push(`${versionDir}: version directories are positive integers`);
        continue;
      }
      versions.push({ version: Number(child), path: join(versionDir, MODEL_FILE_NAME), profilePath: join(versionDir, DRIFT_PROFILE_FILE_NAME) });
    }
    versions.sort((a, b) => a.version - b.version);
    const configPath = MODEL_CONFIG_FILE_NAMES.map((file) => join(modelDir, file)).find((file) => existsSync(file));
    models.push({
      name, versions, configPath,
      problem: versions.length === 0 ? `no version directory (expected ${modelDir}/<version>/${MODEL_FILE_NAME})` : undefined,
    });
  }
  return { models, skipped };
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
