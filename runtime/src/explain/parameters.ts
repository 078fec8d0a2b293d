/**
 * The `parameters` of an explain request, read and checked before any model run: every mistake is a 400 that
 * names the parameter, what it must be and what arrived. Which of them apply depends on the explainer; the
 * checks that need the model's signature or the request's tensors are explanation.ts's.
 */
import { EXPLAINER, type Explainer } from '@modelship/contract';
import { badRequest } from '../errors';
import { preview } from '../tensor/signature';

/** What the occluded or absent features take: the profile's medians, zeros, one number, or explicit data. */
export type BaselineChoice =
  | { readonly kind: 'profile' }
  | { readonly kind: 'zeros' }
  | { readonly kind: 'value'; readonly value: number }
  /** Per explained input, its elements in row-major order (one unnamed list when a single input is explained). */
  | { readonly kind: 'data'; readonly byInput: ReadonlyMap<string | undefined, readonly number[]> };

export interface ExplainParameters {
  /** Undefined: chosen from the inputs (occlusion for an image-like input, KernelSHAP otherwise). */
  readonly explainer?: Explainer;
  /** The output explained; undefined: the model's first. */
  readonly output?: string;
  /** The element of the output (within one row, for a batched model) whose value is explained. */
  readonly outputIndex: number;
  /** KernelSHAP's coalitions; undefined: as many as exact mode needs, or 2M + 2048, within the server's maximum. */
  readonly nsamples?: number;
  /** Undefined: the profile when the version has one, else zeros. */
  readonly baseline?: BaselineChoice;
  readonly seed: number;
  /** Occlusion: the input occluded; undefined: the first image-like one. */
  readonly input?: string;
  /** Occlusion: patch and stride as [height, width]; undefined: defaults from the image's size. */
  readonly patch?: readonly [number, number];
  readonly stride?: readonly [number, number];
}

/** Keys the Open Inference Protocol's clients may send with any request; an explanation ignores them. */
const PROTOCOL_KEYS = new Set(['binary_data_output', 'priority', 'timeout']);
const EXPLAIN_KEYS = ['explainer', 'output', 'output_index', 'nsamples', 'baseline', 'seed', 'input', 'patch', 'stride'];

export function parseExplainParameters(parameters: unknown, maxSamples: number): ExplainParameters {
  if (parameters === undefined) parameters = {};
  if (typeof parameters !== 'object' || parameters === null || Array.isArray(parameters)) {
    throw badRequest(`'parameters' must be a JSON object (e.g. {"explainer": "kernel_shap"}), received ${preview(parameters)}`);
  }
  const given = parameters as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!EXPLAIN_KEYS.includes(key) && !PROTOCOL_KEYS.has(key)) {
      throw badRequest(`parameters.${key} is not an explain parameter; use ${EXPLAIN_KEYS.join(', ')}`);
    }
  }
  return {
    explainer: explainerOf(given.explainer),
    output: optionalString(given.output, 'output', 'an output name of the model'),
    outputIndex: given.output_index === undefined ? 0 : integer(given.output_index, 'output_index', 0, Number.MAX_SAFE_INTEGER),
    nsamples: given.nsamples === undefined ? undefined : nsamplesOf(given.nsamples, maxSamples),
    baseline: baselineOf(given.baseline),
    seed: given.seed === undefined ? 0 : integer(given.seed, 'seed', 0, 2 ** 32 - 1),
    input: optionalString(given.input, 'input', 'an input name of the model'),
    patch: given.patch === undefined ? undefined : pair(given.patch, 'patch'),
    stride: given.stride === undefined ? undefined : pair(given.stride, 'stride'),
  };
}

function explainerOf(value: unknown): Explainer | undefined {
  if (value === undefined) return undefined;
  const choices = Object.values(EXPLAINER) as string[];
  if (typeof value !== 'string' || !choices.includes(value)) {
    throw badRequest(`parameters.explainer must be one of ${choices.join(', ')}, received ${preview(value)}`);
  }
  return value as Explainer;
}

function nsamplesOf(value: unknown, maxSamples: number): number {
  if (typeof value === 'number' && Number.isInteger(value) && value > maxSamples) {
    throw badRequest(`parameters.nsamples is ${value}, over this server's maximum of ${maxSamples} (--max-explain-samples); ask for fewer`);
  }
  return integer(value, 'nsamples', 2, maxSamples);
}

function baselineOf(value: unknown): BaselineChoice | undefined {
  if (value === undefined) return undefined;
  if (value === 'profile' || value === 'zeros') return { kind: value };
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw badRequest(`parameters.baseline must be finite, received ${preview(value)}`);
    return { kind: 'value', value };
  }
  if (Array.isArray(value)) return { kind: 'data', byInput: new Map([[undefined, numbers(value, 'parameters.baseline')]]) };
  if (typeof value === 'object' && value !== null) {
    return {
      kind: 'data',
      byInput: new Map(Object.entries(value).map(([name, data]) => [name, numbers(data, `parameters.baseline.${name}`)])),
    };
  }
  throw badRequest(`parameters.baseline must be "profile", "zeros", a number, a list of numbers or {"<input>": [numbers]}, received ${preview(value)}`);
}

/** A flat or nested list of finite numbers, flattened in row-major order. */
function numbers(value: unknown, where: string): number[] {
  if (!Array.isArray(value)) throw badRequest(`${where} must be a list of numbers, received ${preview(value)}`);
  const flat = value.flat(Infinity) as unknown[];
  const bad = flat.findIndex((element) => typeof element !== 'number' || !Number.isFinite(element));
  if (bad >= 0) throw badRequest(`${where}: element ${bad} is ${preview(flat[bad])}; every element must be a finite number`);
  return flat as number[];
}

function integer(value: unknown, name: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw badRequest(`parameters.${name} must be an integer from ${min} to ${max}, received ${preview(value)}`);
  }
  return value;
}

function optionalString(value: unknown, name: string, what: string): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw badRequest(`parameters.${name} must be ${what}, received ${preview(value)}`);
  return value;
}

function pair(value: unknown, name: string): [number, number] {
  const [height, width] = typeof value === 'number' ? [value, value] : Array.isArray(value) && value.length === 2 ? value : [NaN, NaN];
  if (![height, width].every((v) => Number.isInteger(v) && v >= 1)) {
    throw badRequest(`parameters.${name} must be a positive integer or [height, width] of positive integers, received ${preview(value)}`);
  }
  return [height, width];
}
