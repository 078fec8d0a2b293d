/**
 * Flags, environment variables and per-model config files → one typed settings object, validated once at start.
 * The flag table and its parser live in @modelship/contract, so that the constructs write and read exactly the
 * flags parsed here.
 */
import { readFileSync } from 'node:fs';
import * as YAML from 'yaml';
import {
  checkInteger, FETCH_SETTINGS, MODEL_CONFIG_KEYS, type ModelConfigFile, parseSetting, parseSettings, SERVE_SETTINGS,
  type Setting, type SettingsOf, UNLIMITED_MEMORY_DEFAULTS,
} from '@modelship/contract';
import { UsageError } from './errors';
import type { ContainerResources } from './resources';

export type ServeSettings = SettingsOf<typeof SERVE_SETTINGS>;
export type FetchSettings = SettingsOf<typeof FETCH_SETTINGS>;

/** The settings a model config file may override, resolved for one model. */
export type ModelSettings = Pick<ServeSettings, (typeof MODEL_CONFIG_KEYS)[keyof typeof MODEL_CONFIG_KEYS]>;

/** Parses `serve`'s argv (after the subcommand) with the environment as fallback. */
export function parseServeSettings(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): ServeSettings {
  const result = parseSettings(SERVE_SETTINGS, argv, env);
  checkModelSources(result);
  // A bad sink address would otherwise only show as every event dropped, long after the start.
  if (result.payloadLogUrl !== undefined) checkHttpUrl('payload-log-url', result.payloadLogUrl);
  if (result.payloadLogSource !== undefined && !URL.canParse(result.payloadLogSource)) {
    throw new UsageError(`--payload-log-source must be a URI (the events' ce-source), received ${JSON.stringify(result.payloadLogSource)}`);
  }
  return result;
}

/** Exactly one way of naming the models: a repository, --model pairs, or one directory with its name (KServe's). */
function checkModelSources(settings: ServeSettings): void {
  const { modelRepository, model, modelDir, modelName } = settings;
  if (modelName !== undefined && modelDir === undefined) {
    throw new UsageError(`--model-name '${modelName}' names the model in --model-dir, which is missing: add --model-dir DIR (the directory holding model.onnx or <version>/model.onnx)`);
  }
  if (modelDir !== undefined && modelName === undefined) {
    throw new UsageError(`--model-dir '${modelDir}' needs the name to serve it under: add --model-name NAME (KServe passes --model-name={{.Name}})`);
  }
  const given = [
    modelRepository !== undefined && '--model-repository', model.length > 0 && '--model', modelDir !== undefined && '--model-dir',
  ].filter((flag): flag is string => flag !== false);
  if (given.length === 0) {
    throw new UsageError('serve needs --model-repository DIR or at least one --model NAME=PATH.onnx (or --model-dir DIR with --model-name NAME)');
  }
  if (given.length > 1) {
    throw new UsageError(`give either --model-repository, --model or --model-dir (with --model-name), not ${given.length === 2 ? 'both ' : ''}${given.join(' and ')}`);
  }
}

function checkHttpUrl(flag: string, value: string): void {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:') || url.hostname === '') {
    throw new UsageError(`--${flag} must be an http:// or https:// URL, received ${JSON.stringify(value)}`);
  }
  // fetch refuses a URL with credentials; say so now rather than drop every event. The value is not echoed.
  if (url.username !== '' || url.password !== '') throw new UsageError(`--${flag} must not hold credentials (user:password@)`);
}

const MiB = 1024 * 1024;
/**
 * What the runtime holds before any request (node, onnxruntime, the session workers, a small model: the idle rows
 * of `npm run bench:memory`). Half of what the container has beyond it is for one request, a quarter for its body
 * while it is read and decoded and a quarter for its answer while it is encoded and sent; the other half is the
 * margin for larger models and for requests in flight at once.
 */
const RUNTIME_RESERVE_BYTES = 128 * MiB;
const BODY_SHARE = 0.25;
const ANSWER_SHARE = 0.25;
/**
 * Resident bytes one request takes per byte of its body, and per byte of output answered as JSON: the worst rows
 * of `npm run bench:memory` (docs/benchmarks.md, Memory per request), rounded up. A REST body's byte costs the
 * first as binary data or in a large array of numbers (tensor/numeric-json.ts), the second when JSON.parse reads it
 * (anything else in a JSON body): those bytes are weighed that much more against the body limit. gRPC has its own:
 * typed contents arrive as arrays of JavaScript numbers, as dear as JSON.parse's.
 */
export const PEAK_BYTES_PER_BODY_BYTE = 5;
export const PEAK_BYTES_PER_PARSED_JSON_BYTE = 20;
export const PEAK_BYTES_PER_GRPC_MESSAGE_BYTE = 20;
export const PEAK_BYTES_PER_OUTPUT_BYTE = 32;
/** How many times a byte JSON.parse reads counts against a derived --max-body-bytes. */
export const PARSED_JSON_WEIGHT = PEAK_BYTES_PER_PARSED_JSON_BYTE / PEAK_BYTES_PER_BODY_BYTE;
/** However small the container, a derived limit still lets ordinary requests through. */
const SMALLEST_DERIVED_LIMIT = 64 * 1024;

export interface MemoryLimits {
  readonly maxBodyBytes: number;
  readonly maxGrpcMessageBytes: number;
  readonly maxResponseBytes: number;
}

/** The byte limits for --max-body-bytes 0 and --max-response-bytes 0 (the defaults). */
export function memoryDerivedLimits(resources: Pick<ContainerResources, 'memoryBytes' | 'memoryLimited'>): MemoryLimits {
  const unlimited = UNLIMITED_MEMORY_DEFAULTS;
  if (!resources.memoryLimited) return { maxBodyBytes: unlimited.maxBodyBytes, maxGrpcMessageBytes: unlimited.maxBodyBytes, maxResponseBytes: unlimited.maxResponseBytes };
  const spare = Math.max(0, resources.memoryBytes - RUNTIME_RESERVE_BYTES);
  const limit = (share: number, perByte: number, most: number) => Math.max(SMALLEST_DERIVED_LIMIT, Math.min(most, Math.floor((spare * share) / perByte)));
  return {
    maxBodyBytes: limit(BODY_SHARE, PEAK_BYTES_PER_BODY_BYTE, unlimited.maxBodyBytes),
    maxGrpcMessageBytes: limit(BODY_SHARE, PEAK_BYTES_PER_GRPC_MESSAGE_BYTE, unlimited.maxBodyBytes),
    maxResponseBytes: limit(ANSWER_SHARE, PEAK_BYTES_PER_OUTPUT_BYTE, unlimited.maxResponseBytes),
  };
}

/** Settings with every byte limit resolved, the gRPC message limit among them (it has no flag of its own). */
export type ResolvedServeSettings = ServeSettings & { readonly maxGrpcMessageBytes: number };

/**
 * The settings with the byte limits left at 0 derived from the container's memory; explicit values stay, and an
 * explicit --max-body-bytes holds for gRPC messages too.
 */
export function withMemoryLimits(settings: ServeSettings, resources: ContainerResources): ResolvedServeSettings {
  const derived = memoryDerivedLimits(resources);
  return {
    ...settings,
    maxBodyBytes: settings.maxBodyBytes || derived.maxBodyBytes,
    maxGrpcMessageBytes: settings.maxBodyBytes || derived.maxGrpcMessageBytes,
    maxResponseBytes: settings.maxResponseBytes || derived.maxResponseBytes,
  };
}

/**
 * Reads a model's config file (JSON or YAML) and resolves its settings over the server-wide ones. Unknown keys
 * are errors: a misspelt key that silently does nothing is worse than a model that refuses to load.
 */
export function readModelConfig(path: string, defaults: ServeSettings): ModelSettings {
  let parsed: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    parsed = path.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message.split('\n')[0]}`);
  }
  return resolveModelConfig(parsed ?? {}, defaults, path);
}

export function resolveModelConfig(parsed: unknown, defaults: ServeSettings, source: string): ModelSettings {
  const settings: Record<string, unknown> = {};
  for (const key of Object.values(MODEL_CONFIG_KEYS)) settings[key] = defaults[key];
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new UsageError(`${source} must hold an object of settings, received ${JSON.stringify(parsed)}`);
  }
  for (const [name, value] of Object.entries(parsed)) {
    if (!Object.hasOwn(MODEL_CONFIG_KEYS, name)) {
      throw new UsageError(
        `${source}: unknown setting '${name}'; known settings are ${Object.keys(MODEL_CONFIG_KEYS).join(', ')}`);
    }
    const key = MODEL_CONFIG_KEYS[name as keyof ModelConfigFile];
    const setting: Setting = SERVE_SETTINGS[key];
    const where = `${source}: '${name}'`;
    if (setting.kind === 'integer') settings[key] = checkInteger(setting.min, setting.max, value, where);
    else if (setting.kind === 'boolean' && typeof value !== 'boolean') {
      throw new UsageError(`${where} must be true or false, received ${JSON.stringify(value)}`);
    } else settings[key] = setting.kind === 'boolean' ? value : parseSetting(setting, String(value), where);
  }
  return settings as ModelSettings;
}
