/**
 * Float16 storage of a model's float weights: each FLOAT initializer of the main graph, and each FLOAT tensor a
 * main-graph Constant node holds (exporters such as paddle2onnx write all weights as Constants), is stored as
 * FLOAT16 under a new name and followed by Cast(to=FLOAT) that produces the original name. Every consumer,
 * subgraphs reading the value from the outer scope included, still sees the same float value under the same name,
 * the graph's inputs and outputs do not change, and the model computes in float as before: only the weights lose
 * precision (11 significant bits), and the file roughly halves. The Casts of initializers come first in the node
 * list, a Constant's Cast right after the Constant, so the order stays topological.
 *
 * Left in float:
 * - tensors with fewer than MIN_CONVERTED_ELEMENTS (256) elements: they save at most 512 bytes each, and shapes,
 *   scales and thresholds (Resize scales, Clip bounds) are often among them;
 * - initializers also declared as graph inputs: they are defaults callers may override with float values;
 * - dynamic quantization scales (an initializer multiplied with a DynamicQuantizeLinear scale): they are small, and
 *   rounding them would add error to every value of the quantized product;
 * - tensors stored outside the model file.
 * Finite values beyond float16's range are clamped to ±65504 (float16 would round them to infinity); the report
 * says how many per tensor.
 *
 * Accuracy the tests hold it to (relative error = max |a − b| / max |a| over an output, about three times what was
 * measured): within 0.002 on the wide and the tabular MLP, 0.003 on silero VAD's outputs and state, and 0.04 on the
 * OCR detection model's probability map, whose sigmoid is steep at the edges of text; the wide MLP's and the OCR
 * detection model's files shrink to 0.55× or less.
 */
import { endianness } from 'node:os';
import { Float16Array } from '@petamoriken/float16';
import { onnx } from 'onnx-proto';
import { castToFloat, DataType, elementCount, isExternal, readFloats, UniqueNames } from './graph';
import type { RewriteReport } from './rewrite-report';

/** Tensors smaller than this stay in float (see the module comment). */
export const MIN_CONVERTED_ELEMENTS = 256;

/** The largest finite float16. */
const FLOAT16_MAX = 65504;

/** Rewrites `model` in place: float weights stored as FLOAT16, cast back to float where they are read. */
export function convertToFloat16(model: onnx.ModelProto): RewriteReport {
  const graph = model.graph;
  if (!graph) return { rewritten: 0, skipped: ['the model has no graph'] };
  const names = new UniqueNames(model);
  const graphInputs = new Set((graph.input ?? []).map((v) => v.name ?? ''));
  const scales = quantizationScales(graph);
  const skipped: string[] = [];
  let rewritten = 0;
  let small = 0;

  /** The tensor as FLOAT16 under a fresh name, or undefined when it stays float. */
  const convert = (tensor: onnx.ITensorProto, what: string): onnx.ITensorProto | undefined => {
    if (tensor.dataType !== DataType.FLOAT) return undefined;
    const name = tensor.name ?? '';
    if (elementCount(tensor.dims) < MIN_CONVERTED_ELEMENTS) {
      small++;
      return undefined;
    }
    if (isExternal(tensor)) {
      skipped.push(`${what} '${name}': stored outside the model file, left in float`);
      return undefined;
    }
    const { bytes, clamped } = toFloat16(readFloats(tensor)!);
    if (clamped > 0) skipped.push(`${what} '${name}': ${clamped} value${clamped === 1 ? '' : 's'} beyond float16's range clamped to ±${FLOAT16_MAX}`);
    rewritten++;
    return { name: names.fresh(`${name}_float16`), dataType: DataType.FLOAT16, dims: tensor.dims, rawData: bytes };
  };

  const leadingCasts: onnx.INodeProto[] = [];
  graph.initializer = (graph.initializer ?? []).map((tensor) => {
    const name = tensor.name ?? '';
    if (tensor.dataType !== DataType.FLOAT) return tensor;
    if (graphInputs.has(name)) {
      skipped.push(`initializer '${name}': also a graph input (an overridable default), left in float`);
      return tensor;
    }
    if (scales.has(name)) {
      skipped.push(`initializer '${name}': a dynamic quantization scale, left in float to keep the int8 product's accuracy`);
      return tensor;
    }
    const half = convert(tensor, 'initializer');
    if (!half) return tensor;
    leadingCasts.push(castToFloat(names.fresh(`${name}_Cast`), half.name!, name));
    return half;
  });

  const nodes: onnx.INodeProto[] = [];
  for (const node of graph.node ?? []) {
    nodes.push(node);
    const value = node.opType === 'Constant' && !node.domain ? (node.attribute ?? []).find((a) => a.name === 'value' && a.t) : undefined;
    const output = node.output?.[0];
    if (!value?.t || !output) continue;
    const half = convert({ ...value.t, name: output }, 'Constant');
    if (!half) continue;
    value.t = { ...half, name: undefined };
    node.output = [half.name!];
    nodes.push(castToFloat(names.fresh(`${output}_Cast`), half.name!, output));
  }
  graph.node = [...leadingCasts, ...nodes];

  if (small > 0) skipped.push(`${small} float tensor${small === 1 ? '' : 's'} with fewer than ${MIN_CONVERTED_ELEMENTS} elements left in float: too small to pay`);
  return { rewritten, skipped };
}

/** The values as little-endian float16 bytes, finite values beyond ±65504 clamped, with how many were. */
function toFloat16(values: Float32Array): { bytes: Uint8Array; clamped: number } {
  let clamped = 0;
  const inRange = values.map((v) => {
    if (!Number.isFinite(v) || Math.abs(v) <= FLOAT16_MAX) return v;
    clamped++;
    return Math.sign(v) * FLOAT16_MAX;
  });
  // Float16Array holds the bits in the machine's byte order; ONNX stores them little-endian.
  const bits = Buffer.from(new Float16Array(inRange).buffer);
  if (endianness() === 'BE') bits.swap16();
  return { bytes: new Uint8Array(bits.buffer, bits.byteOffset, bits.byteLength), clamped };
}

/**
 * Initializers used as dynamic quantization scales: an input of a Mul whose other input is a DynamicQuantizeLinear
 * scale (the pattern quantizeDynamicInt8 and onnxruntime's quantize_dynamic write).
 */
function quantizationScales(graph: onnx.IGraphProto): Set<string> {
  const inputScales = new Set((graph.node ?? []).filter((n) => n.opType === 'DynamicQuantizeLinear').map((n) => n.output?.[1] ?? ''));
  const scales = new Set<string>();
  for (const node of graph.node ?? []) {
    const inputs = node.input ?? [];
    if (node.opType !== 'Mul' || !inputs.some((i) => inputScales.has(i))) continue;
    for (const input of inputs) if (!inputScales.has(input)) scales.add(input);
  }
  return scales;
}
