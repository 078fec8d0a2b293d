/**
 * The proof that an optimized model still answers as the original: both run in-process on the same inputs —
 * the user's validation data, else random inputs within the drift profile's ranges, else unit normal — and every
 * output is compared. The relative error of an output is its largest absolute difference over the largest absolute
 * value the original gave for it (a scale-free number, comparable across outputs); for an output that scores
 * classes ([rows, classes]) the share of rows whose top-1 class is unchanged is reported too.
 */
import { performance } from 'node:perf_hooks';
import { getFloat16, setFloat16 } from '@petamoriken/float16';
import type { DriftProfile } from '@modelship/contract';
import * as ort from '../model/onnxruntime';
import { readRequests, runInProcess } from '../reference-data';
import { DATATYPES, elementCount, type NamedTensor, type TypedArray } from '../tensor/datatypes';
import type { Signature, TensorSpec } from '../tensor/signature';
import { mulberry32 } from '../explain/common';

/** A dynamic dimension that is not a leading batch dimension takes this size in generated inputs. */
export const GENERATED_DYNAMIC_DIM = 64;

export interface ValidationInputs {
  readonly requests: readonly NamedTensor[][];
  /** Where they came from, for the report. */
  readonly source: string;
}

export interface OutputComparison {
  readonly name: string;
  readonly maxAbsoluteError: number;
  readonly maxRelativeError: number;
  /** For [rows, classes] outputs: the share of rows whose top-1 class is unchanged, and over how many rows. */
  readonly top1Agreement?: number;
  readonly rows?: number;
}

export interface GuardLimits {
  readonly maxError?: number;
  readonly minAgreement?: number;
}

/**
 * The inputs the guard runs: every request of `dataPath`, else `samples` random requests (seeded, so two runs
 * compare the same inputs) within the ranges of `profile`'s input features, else from the unit normal.
 */
export function validationInputs(
  signature: Signature, options: { readonly dataPath?: string; readonly profile?: { readonly profile: DriftProfile; readonly path: string }; readonly samples: number },
): ValidationInputs {
  if (options.dataPath !== undefined) {
    const requests = readRequests(options.dataPath, '--validate-data', signature);
    return { requests, source: `${requests.length} request(s) from ${options.dataPath}` };
  }
  const random = mulberry32(0x5eed);
  const normal = () => Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
  const profiled = options.profile?.profile.tensors.filter((tensor) => tensor.kind === 'input');
  const dims = dimensionSizes(signature);
  const requests = Array.from({ length: options.samples }, () => signature.inputs.map((spec) => {
    const shape = (spec.shape ?? []).map((dim) => (typeof dim === 'number' ? dim : dims.get(dim)!));
    const features = profiled?.find((tensor) => tensor.name === spec.name)?.features;
    const value = (index: number): number => {
      const feature = features?.find((f) => f.index === featureOf(shape, index));
      return feature ? feature.edges[0] + random() * (feature.edges[feature.edges.length - 1] - feature.edges[0]) : normal();
    };
    return generated(spec, shape, value);
  }));
  const source = options.profile
    ? `${options.samples} random input(s) within the ranges of ${options.profile.path}`
    : `${options.samples} random input(s) from the unit normal`;
  return { requests, source };
}

/**
 * A size for every symbolic dimension, the same for the same name across inputs (a batch `b` in [b, n] and in
 * [2, b, 64] must agree): 1 where it leads a shape, GENERATED_DYNAMIC_DIM elsewhere.
 */
function dimensionSizes(signature: Signature): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const spec of signature.inputs) {
    for (const [axis, dim] of (spec.shape ?? []).entries()) {
      if (typeof dim === 'string' && !sizes.has(dim)) sizes.set(dim, axis === 0 ? 1 : GENERATED_DYNAMIC_DIM);
    }
  }
  return sizes;
}

/** The drift profile's feature of an element: its index along axis 1 (0 for rank 1), as the profile counts them. */
function featureOf(shape: readonly number[], index: number): number {
  if (shape.length < 2) return 0;
  return Math.floor(index / elementCount(shape.slice(2))) % shape[1];
}

/** A tensor of `spec` whose numbers come from `value`: integers rounded, booleans from the sign, strings empty. */
function generated(spec: TensorSpec, shape: number[], value: (index: number) => number): NamedTensor {
  const datatype = spec.datatype;
  if (!datatype) throw new Error(`input '${spec.name}' has no type the guard can generate; give --validate-data`);
  const count = elementCount(shape);
  const info = DATATYPES[datatype];
  if (!info.array) return { name: spec.name, datatype, shape, data: new Array<string>(count).fill('') };
  const data = new info.array(count) as TypedArray;
  for (let i = 0; i < count; i++) {
    const v = value(i);
    if (info.kind === 'half') setFloat16(new DataView(data.buffer, i * 2, 2), 0, v, true);
    else if (info.kind === 'bigint') data[i] = BigInt(Math.round(v)) as never;
    else if (info.kind === 'bool') data[i] = (v > 0 ? 1 : 0) as never;
    else data[i] = (info.kind === 'float' ? v : Math.round(v)) as never;
  }
  return { name: spec.name, datatype, shape, data };
}

/** Runs both sessions on every request and compares each output of the original with the optimized model's. */
export async function compareModels(original: ort.InferenceSession, optimized: ort.InferenceSession, requests: readonly NamedTensor[][]): Promise<OutputComparison[]> {
  const stats = new Map<string, { maxAbs: number; maxRef: number; agreed: number; rows: number; classes: boolean }>();
  for (const [i, inputs] of requests.entries()) {
    const expected = await runOrExplain(original, inputs, `the original model fails on validation input ${i + 1}`);
    const actual = await runOrExplain(optimized, inputs, `the optimized model fails on validation input ${i + 1}`);
    for (const reference of expected) {
      const candidate = actual.find((output) => output.name === reference.name);
      if (!candidate) throw new Error(`the optimized model has no output '${reference.name}'`);
      const entry = stats.get(reference.name) ?? { maxAbs: 0, maxRef: 0, agreed: 0, rows: 0, classes: isClassScores(reference) };
      stats.set(reference.name, entry);
      if (reference.datatype === 'BYTES') {
        // Strings are equal or not: any change is an unbounded error.
        const same = (reference.data as string[]).every((value, k) => value === (candidate.data as string[])[k]);
        if (!same) entry.maxAbs = Infinity;
        entry.maxRef = Math.max(entry.maxRef, 1);
        continue;
      }
      const a = numbers(reference);
      const b = numbers(candidate);
      if (a.length !== b.length) throw new Error(`output '${reference.name}' has ${b.length} elements in the optimized model and ${a.length} in the original`);
      for (let k = 0; k < a.length; k++) {
        entry.maxRef = Math.max(entry.maxRef, Math.abs(a[k]) || 0);
        const difference = Number.isNaN(a[k]) && Number.isNaN(b[k]) ? 0 : Math.abs(a[k] - b[k]);
        entry.maxAbs = Math.max(entry.maxAbs, Number.isNaN(difference) ? Infinity : difference);
      }
      if (entry.classes) {
        const [rows, classes] = reference.shape;
        for (let row = 0; row < rows; row++) {
          entry.rows++;
          if (argmax(a, row * classes, classes) === argmax(b, row * classes, classes)) entry.agreed++;
        }
      }
    }
  }
  return [...stats].map(([name, s]) => ({
    name,
    maxAbsoluteError: s.maxAbs,
    maxRelativeError: s.maxAbs === 0 ? 0 : s.maxRef === 0 ? Infinity : s.maxAbs / s.maxRef,
    ...(s.classes ? { top1Agreement: s.agreed / s.rows, rows: s.rows } : {}),
  }));
}

/** Why the optimized model may not replace the original, one reason per output over a limit; empty when it may. */
export function guardFailures(comparisons: readonly OutputComparison[], limits: GuardLimits): string[] {
  const failures: string[] = [];
  for (const output of comparisons) {
    if (limits.maxError !== undefined && !(output.maxRelativeError <= limits.maxError)) {
      failures.push(`output '${output.name}': relative error ${format(output.maxRelativeError)} is over --max-error ${limits.maxError}`);
    }
    if (limits.minAgreement !== undefined && output.top1Agreement !== undefined && output.top1Agreement < limits.minAgreement) {
      failures.push(`output '${output.name}': top-1 agreement ${format(output.top1Agreement)} is under --min-agreement ${limits.minAgreement}`);
    }
  }
  if (limits.minAgreement !== undefined && !comparisons.some((output) => output.top1Agreement !== undefined)) {
    failures.push('--min-agreement needs an output that scores classes ([rows, classes]); this model has none');
  }
  return failures;
}

/** Runs per second of each session on the requests, in turns, so that both see the same machine. */
export async function throughputs(sessions: readonly ort.InferenceSession[], requests: readonly NamedTensor[][], secondsEach = 0.25, rounds = 2): Promise<number[]> {
  const runs = sessions.map(() => 0);
  const spent = sessions.map(() => 0);
  for (let round = 0; round < rounds; round++) {
    for (const [s, session] of sessions.entries()) {
      const started = performance.now();
      let k = 0;
      while (performance.now() - started < secondsEach * 1000) await runInProcess(session, requests[k++ % requests.length]);
      runs[s] += k;
      spent[s] += (performance.now() - started) / 1000;
    }
  }
  return runs.map((count, s) => count / spent[s]);
}

export function format(value: number): string {
  return value === 0 || !Number.isFinite(value) ? String(value) : value.toPrecision(3);
}

async function runOrExplain(session: ort.InferenceSession, inputs: readonly NamedTensor[], what: string): Promise<NamedTensor[]> {
  try {
    return await runInProcess(session, inputs);
  } catch (error) {
    throw new Error(`${what}: ${(error as Error).message.split('\n')[0]}; give inputs it takes with --validate-data`);
  }
}

function isClassScores(output: NamedTensor): boolean {
  return output.shape.length === 2 && output.shape[1] >= 2 && output.datatype !== 'BYTES' && output.datatype !== 'BOOL';
}

/** A numeric tensor's values as numbers: FP16 data holds raw half-precision bits, 64-bit integers BigInts. */
function numbers(tensor: NamedTensor): Float64Array {
  const data = tensor.data as TypedArray;
  if (tensor.datatype === 'FP16') {
    const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
    return Float64Array.from({ length: data.length }, (_, i) => getFloat16(view, i * 2, true));
  }
  return Float64Array.from(data as ArrayLike<number | bigint>, Number);
}

function argmax(data: Float64Array, start: number, length: number): number {
  let best = 0;
  for (let i = 1; i < length; i++) if (data[start + i] > data[start + best]) best = i;
  return best;
}
