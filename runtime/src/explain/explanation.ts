/**
 * One explanation of one served request: picks the explainer and what it explains, checks everything against the
 * model before the first run, runs the perturbed inputs through the model version's explain queue (one run at a
 * time, sized by the batch sizer that inference uses, so an explanation's run costs no more than an inference
 * batch), and writes the answer.
 */
import { EXPLAINER, type DriftProfile, type Explainer } from '@modelship/contract';
import type { BatchSizer } from '../batcher/batch-sizer';
import type { JobOptions } from '../batcher/run-queue';
import { badRequest, InferenceError } from '../errors';
import type { ModelVersion } from '../model/model-version';
import { elementCount, type NamedTensor, type TypedArray } from '../tensor/datatypes';
import { listNames } from '../tensor/signature';
import type { BatchFunction } from './common';
import { FeatureLayout, isNumeric } from './features';
import { kernelShap } from './kernel-shap';
import { occlusion } from './occlusion';
import type { BaselineChoice, ExplainParameters } from './parameters';

/** KernelSHAP holds every coalition's row (nsamples × M numbers, twice over in the regression): M is bounded. */
export const MAX_KERNEL_SHAP_FEATURES = 512;
/** The shap package's default budget beyond exact enumeration: 2M + 2048 coalitions. */
const SAMPLED_BUDGET_BASE = 2048;
/** Bytes of perturbed images occlusion builds at once (each row is a whole image, as 8-byte numbers). */
const OCCLUSION_ROW_BYTES = 16 * 1024 * 1024;
/**
 * How long one run of perturbed rows may take, at the learned cost per row: inference that arrives meanwhile waits
 * for it, so it is kept short against latency objectives of tens to hundreds of milliseconds (one row still runs
 * when a single row takes longer).
 */
const EXPLAIN_RUN_SECONDS = 0.025;
/** Default occlusion patch: an eighth of the image's shorter side, so about 64 positions. */
const OCCLUSION_PATCHES_PER_SIDE = 8;

export interface ExplanationAnswer {
  readonly model_name: string;
  readonly model_version: string;
  readonly explainer: Explainer;
  readonly output: string;
  readonly output_index: number;
  /** The model's value of output[output_index] for the request. */
  readonly prediction: number;
  /** The same for the baseline (every feature absent, or the whole image occluded). */
  readonly base_value: number;
  /** One tensor per explained input, shaped like it; KernelSHAP's sum to prediction − base_value. */
  readonly attributions: readonly { name: string; shape: number[]; datatype: 'FP64'; data: number[] }[];
  /** Rows the model ran for this explanation. */
  readonly model_runs: number;
  /** KernelSHAP: coalitions evaluated, and whether that was all of them (then the values are exact Shapley values). */
  readonly nsamples?: number;
  readonly exact?: boolean;
  /** Occlusion: patch and stride as [height, width]. */
  readonly patch?: readonly [number, number];
  readonly stride?: readonly [number, number];
}

export interface ExplainLimits {
  /** --max-explain-samples */
  readonly maxSamples: number;
}

/** The explainer a request gets: as asked, else occlusion when an input is an image, else KernelSHAP. */
export function explainerFor(target: ModelVersion, inputs: readonly NamedTensor[], parameters: ExplainParameters): Explainer {
  if (parameters.explainer) return parameters.explainer;
  return inputs.some((input) => imageShape(input, target.queue.batching)) ? EXPLAINER.occlusion : EXPLAINER.kernelShap;
}

export async function explain(
  target: ModelVersion, inputs: readonly NamedTensor[], parameters: ExplainParameters, limits: ExplainLimits, job: JobOptions,
): Promise<ExplanationAnswer> {
  const batched = target.queue.batching;
  if (batched) {
    for (const input of inputs) {
      if (input.shape[0] !== 1) {
        throw badRequest(`an explanation is of one row: input '${input.name}' has ${input.shape[0]} rows (shape [${input.shape}]); send one request per row`);
      }
    }
  }
  const output = outputOf(target, parameters);
  const explainer = explainerFor(target, inputs, parameters);
  const model: ModelOf = (layout) => modelFunction(target, inputs, layout, output, parameters.outputIndex, job);
  const common = { model_name: target.name, model_version: String(target.version), explainer, output, output_index: parameters.outputIndex };
  return explainer === EXPLAINER.kernelShap
    ? { ...common, ...await explainKernelShap(target, inputs, parameters, limits, batched, model) }
    : { ...common, ...await explainOcclusion(target, inputs, parameters, limits, batched, model) };
}

function outputOf(target: ModelVersion, parameters: ExplainParameters): string {
  const outputs = target.signature.outputs;
  const name = parameters.output ?? outputs[0]?.name;
  const spec = outputs.find((candidate) => candidate.name === name);
  if (!spec) throw badRequest(`parameters.output '${name}' is not an output of ${target.key}; its outputs are ${listNames(outputs)}`);
  if (!isNumeric(spec.datatype)) {
    throw badRequest(`output '${name}' is ${spec.datatype ?? 'of an unknown type'}; explanations need a numeric output (FP32, FP64 or an integer type): name one with parameters.output`);
  }
  return name!;
}

/** The model function for the inputs a layout explains. */
type ModelOf = (layout: FeatureLayout) => BatchFunction;

async function explainKernelShap(
  target: ModelVersion, inputs: readonly NamedTensor[], parameters: ExplainParameters, limits: ExplainLimits, batched: boolean, model: ModelOf,
) {
  const explained = inputs.filter((input) => isNumeric(input.datatype)).map((input) => input.name);
  if (explained.length === 0) throw badRequest(`${target.key} has no numeric input to attribute to; KernelSHAP perturbs numbers`);
  const layout = new FeatureLayout(inputs, explained, batched);
  const M = layout.size;
  if (M > MAX_KERNEL_SHAP_FEATURES) {
    throw badRequest(`kernel_shap explains at most ${MAX_KERNEL_SHAP_FEATURES} features and this request has ${M}; use "explainer": "occlusion" for images and other large tensors`);
  }
  const exactCount = M <= 20 ? 2 ** M - 2 : Infinity;
  // At least 2, which kernelShap asks of any budget: one feature has no coalition besides the empty and full ones.
  const nsamples = parameters.nsamples ?? Math.max(2, Math.min(limits.maxSamples, exactCount, 2 * M + SAMPLED_BUDGET_BASE));
  if (nsamples < exactCount && nsamples < 2 * (M - 1)) {
    throw badRequest(`parameters.nsamples (${nsamples}) must be at least 2·(M − 1) = ${2 * (M - 1)} for ${M} features${2 * (M - 1) > limits.maxSamples ? `, which is over this server's maximum of ${limits.maxSamples} (--max-explain-samples)` : ''}`);
  }
  const baseline = baselineVector(layout, parameters.baseline, target.profile);
  // The model function splits rows into runs itself, so KernelSHAP hands it every row at once.
  const result = await kernelShap(model(layout), layout.vector(), baseline, { nsamples, seed: parameters.seed });
  return {
    prediction: result.prediction,
    base_value: result.baseValue,
    attributions: layout.explained.map(({ tensor, offset }) => attribution(tensor, result.attributions.subarray(offset, offset + elementCount(tensor.shape)))),
    model_runs: result.modelRuns,
    nsamples: result.modelRuns - 2,
    exact: result.exact,
  };
}

async function explainOcclusion(
  target: ModelVersion, inputs: readonly NamedTensor[], parameters: ExplainParameters, limits: ExplainLimits, batched: boolean, model: ModelOf,
) {
  const images = inputs.filter((input) => imageShape(input, batched));
  const name = parameters.input ?? images[0]?.name;
  const input = inputs.find((candidate) => candidate.name === name);
  if (!input) {
    throw badRequest(name === undefined
      ? `occlusion needs an image-like input (one row of shape [C, H, W]); ${target.key} has ${describeShapes(inputs)}: use "explainer": "kernel_shap"`
      : `parameters.input '${name}' is not an input of the request; its inputs are ${listNames(inputs)}`);
  }
  const shape = imageShape(input, batched);
  if (!shape) throw badRequest(`occlusion needs input '${name}' to be image-like (one row of shape [C, H, W]), received shape [${input.shape}] of ${input.datatype}`);
  const [H, W] = shape.slice(-2);
  const side = Math.max(1, Math.ceil(Math.min(H, W) / OCCLUSION_PATCHES_PER_SIDE));
  const patch = parameters.patch ?? [side, side];
  const stride = parameters.stride ?? patch;
  if (patch[0] > H || patch[1] > W) throw badRequest(`parameters.patch (${patch[0]}×${patch[1]}) is larger than input '${name}' (${H}×${W})`);
  const positions = positionsAlong(H, patch[0], stride[0]) * positionsAlong(W, patch[1], stride[1]);
  if (positions > limits.maxSamples) {
    throw badRequest(`a ${patch[0]}×${patch[1]} patch with stride ${stride[0]}×${stride[1]} occludes ${H}×${W} at ${positions} positions, over this server's maximum of ${limits.maxSamples} (--max-explain-samples): raise parameters.stride or parameters.patch`);
  }
  const layout = new FeatureLayout(inputs, [input.name], batched);
  const baseline = baselineVector(layout, parameters.baseline, target.profile);
  const rowsAtOnce = Math.max(1, Math.floor(OCCLUSION_ROW_BYTES / (layout.size * 8)));
  const result = await occlusion(model(layout), layout.vector(), shape, { patch, stride, baseline, batchSize: rowsAtOnce });
  return {
    prediction: result.prediction,
    base_value: result.baseValue,
    attributions: [attribution(input, result.attributions)],
    model_runs: result.modelRuns,
    patch,
    stride,
  };
}

/**
 * The model as the explainers see it: perturbed rows in, the explained output element out, one number per row.
 * Rows go to the explain queue one run at a time, each waiting behind any inference queued for the model, in runs
 * as large as the batch sizer allows (it learns from these runs too) and short enough (EXPLAIN_RUN_SECONDS).
 */
function modelFunction(
  target: ModelVersion, inputs: readonly NamedTensor[], layout: FeatureLayout, output: string, outputIndex: number, job: JobOptions,
): BatchFunction {
  return async (rows) => {
    const values = new Float64Array(rows.length);
    for (let start = 0; start < rows.length;) {
      const count = layout.batched ? Math.min(rows.length - start, rowsPerRun(target.queue.sizers.for(inputs))) : 1;
      const { outputs } = await target.explainQueue.submit(layout.tensorsFor(rows.slice(start, start + count)), [output], job);
      readOutput(outputs[0], count, outputIndex, layout.batched, values, start);
      start += count;
    }
    return values;
  };
}

function rowsPerRun(sizer: BatchSizer): number {
  const perRow = sizer.secondsPerRow;
  return perRow === undefined ? sizer.limit : Math.max(1, Math.min(sizer.limit, Math.floor(EXPLAIN_RUN_SECONDS / perRow)));
}

/** Copies output[outputIndex] of each of `rows` rows into `values` from `start`, checking the index against the output. */
function readOutput(tensor: NamedTensor, rows: number, outputIndex: number, batched: boolean, values: Float64Array, start: number): void {
  if (batched && tensor.shape[0] !== rows) {
    throw new InferenceError(500, `output '${tensor.name}' has shape [${tensor.shape}] for ${rows} perturbed rows: its first dimension does not follow the batch, which explanations need`);
  }
  const row = batched ? tensor.shape.slice(1) : tensor.shape;
  const perRow = elementCount(row);
  if (outputIndex >= perRow) {
    throw badRequest(`parameters.output_index is ${outputIndex}, but output '${tensor.name}' has ${perRow} element(s)${batched ? ` per row (a row of shape [${row}])` : ` (shape [${row}])`}; choose 0 to ${perRow - 1}`);
  }
  const data = tensor.data as TypedArray;
  for (let k = 0; k < rows; k++) values[start + k] = Number(data[k * perRow + outputIndex]);
}

/** The shape occlusion works on: the row [C, H, W] of a batched input, or the whole [C, H, W] / [1, C, H, W]. */
function imageShape(input: NamedTensor, batched: boolean): number[] | undefined {
  if (!isNumeric(input.datatype)) return undefined;
  const row = batched ? input.shape.slice(1) : input.shape;
  return row.length === 3 || (row.length === 4 && row[0] === 1) ? [...row] : undefined;
}

/** How many positions a patch takes along one side (occlusion.ts adds one flush with the border when needed). */
function positionsAlong(extent: number, size: number, step: number): number {
  return Math.floor((extent - size) / step) + 1 + ((extent - size) % step === 0 ? 0 : 1);
}

/**
 * The baseline of the explained inputs, in the layout's order. Unless asked, the drift profile's medians when the
 * version has a profile of every explained input, else zeros.
 */
function baselineVector(layout: FeatureLayout, choice: BaselineChoice | undefined, profile: DriftProfile | undefined): Float64Array {
  const profiled = (name: string) => profile?.tensors.find((tensor) => tensor.kind === 'input' && tensor.name === name);
  const chosen = choice ?? (layout.explained.every(({ tensor }) => profiled(tensor.name)) ? { kind: 'profile' } as const : { kind: 'zeros' } as const);
  const vector = new Float64Array(layout.size);
  if (chosen.kind === 'zeros') return vector;
  if (chosen.kind === 'value') return vector.fill(chosen.value);
  for (const { tensor, offset } of layout.explained) {
    const count = elementCount(tensor.shape);
    if (chosen.kind === 'data') {
      const data = chosen.byInput.get(tensor.name) ?? (layout.explained.length === 1 ? chosen.byInput.get(undefined) : undefined);
      if (!data) {
        throw badRequest(`parameters.baseline has no data for input '${tensor.name}'; give {"${tensor.name}": [...]} for every explained input (${listNames(layout.explained.map((e) => e.tensor))})`);
      }
      if (data.length !== count) throw badRequest(`parameters.baseline for input '${tensor.name}' has ${data.length} elements; the input has ${count} (shape [${tensor.shape}])`);
      vector.set(data, offset);
      continue;
    }
    const features = profiled(tensor.name)?.features;
    if (!features) {
      throw badRequest(`parameters.baseline is "profile", but the version's drift profile has no input '${tensor.name}' (or there is no profile.json): use "zeros" or give the baseline's data`);
    }
    // The profile's features run along axis 1 (the whole value for rank 1); its 5th of 9 inner edges is the median.
    const stride = elementCount(tensor.shape.slice(2));
    for (let i = 0; i < count; i++) {
      const index = tensor.shape.length === 1 ? 0 : Math.floor(i / stride) % tensor.shape[1];
      const feature = features.find((candidate) => candidate.index === index);
      if (!feature) throw badRequest(`the drift profile of input '${tensor.name}' has no feature ${index}: use "zeros" or give the baseline's data`);
      vector[offset + i] = feature.edges[4];
    }
  }
  return vector;
}

function attribution(tensor: NamedTensor, values: Float64Array) {
  return { name: tensor.name, shape: [...tensor.shape], datatype: 'FP64' as const, data: Array.from(values) };
}

function describeShapes(inputs: readonly NamedTensor[]): string {
  return inputs.map((input) => `'${input.name}' [${input.shape}]`).join(', ');
}
