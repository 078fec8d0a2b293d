/**
 * Dynamic int8 quantization of MatMul and Gemm weights, in the operator pattern onnxruntime's own
 * `quantize_dynamic` emits, so onnxruntime runs it with its integer kernels:
 *
 *   DynamicQuantizeLinear(A) -> A_q (uint8), A_scale, A_zero_point
 *   MatMulInteger(A_q, B_q, A_zero_point, B_zero_point) -> int32
 *   Cast(to=FLOAT), Mul by Mul(A_scale, B_scale), then Add(bias) for a Gemm with C
 *
 * The last node writes the original node's output name, so consumers are untouched. Several MatMuls reading the
 * same A share one DynamicQuantizeLinear.
 *
 * Weights (B) are stored as symmetric int8 (zero point 0, values in -127..127) with one scale per output column:
 * a column's largest magnitude maps to 127. Per-column scales keep a column of small weights from losing its
 * precision to one large weight elsewhere in the matrix, at the cost of N floats per weight. A Gemm's alpha is
 * folded into the scales, transB=1 weights are transposed offline, and C × beta is added after the product.
 *
 * What stays in float, each listed in the report:
 * - weights with fewer than MIN_QUANTIZED_ELEMENTS (256) elements: the int8 copy saves at most 768 bytes, less
 *   than the four nodes and the scales it adds cost in run time and file size;
 * - a Gemm with transA=1, and any B that is not a rank-2 FLOAT initializer of the main graph (computed at run time,
 *   also declared as a graph input so callers may override it, or stored outside the file);
 * - Conv and ConvTranspose: onnxruntime's CPU ConvInteger takes uint8 weights only, not the int8 ones here, and
 *   there is no integer ConvTranspose;
 * - MatMul and Gemm inside If, Loop and Scan bodies: only the main graph is rewritten.
 *
 * Initializers the rewrite leaves unread are removed. Models below opset 11 are refused: DynamicQuantizeLinear and
 * MatMulInteger do not exist there.
 *
 * Accuracy the tests hold it to (relative error = max |a − b| / max |a| over an output, about three times what was
 * measured): within 0.03 on a wide MLP (256→1024→1024→10) and on a small tabular one, with the same top-1 class on
 * at least 97% of the wide MLP's rows; the file shrinks to 0.35× or less (int8 weights are a quarter of float32).
 */
import { onnx } from 'onnx-proto';
import {
  allNodes, attributeValue, castToFloat, DataType, defaultOpset, describeNode, elementCount, floatTensor, isExternal, namesRead,
  readFloats, UniqueNames,
} from './graph';
import type { RewriteReport } from './rewrite-report';

/** Weights smaller than this stay in float (see the module comment). */
export const MIN_QUANTIZED_ELEMENTS = 256;

/** The first opset with DynamicQuantizeLinear and MatMulInteger. */
const MIN_OPSET = 11;

/** Rewrites `model` in place: MatMul and Gemm with float weights become the int8 pattern above. */
export function quantizeDynamicInt8(model: onnx.ModelProto): RewriteReport {
  const opset = defaultOpset(model);
  if (opset === undefined || opset < MIN_OPSET) {
    throw new Error(
      `dynamic int8 quantization needs opset ${MIN_OPSET} or later (DynamicQuantizeLinear and MatMulInteger), but the model `
      + `imports opset ${opset ?? 'none'} of the default domain; convert the model to opset ≥ ${MIN_OPSET} first `
      + '(e.g. onnx.version_converter.convert_version(model, 13) in Python, or re-export it with a newer opset)',
    );
  }
  const graph = model.graph;
  if (!graph) return { rewritten: 0, skipped: ['the model has no graph'] };
  const rewriter = new Int8Rewriter(model, graph);
  graph.node = (graph.node ?? []).flatMap((node) => rewriter.rewrite(node));
  rewriter.removeUnreadInitializers();
  return { rewritten: rewriter.rewritten, skipped: [...rewriter.skipped, ...notesOnOtherNodes(graph)] };
}

/** A weight ready to quantize: B as a [K, N] row-major matrix (transposed if the Gemm said so), times alpha. */
interface Weight {
  readonly name: string;
  readonly values: Float32Array;
  readonly rows: number;
  readonly columns: number;
}

/** The tensors a quantized weight became, shared by every node using the same weight the same way. */
interface QuantizedWeight {
  readonly values: string;
  readonly scale: string;
}

/** DynamicQuantizeLinear's three outputs for one A. */
interface QuantizedInput {
  readonly values: string;
  readonly scale: string;
  readonly zeroPoint: string;
}

class Int8Rewriter {
  rewritten = 0;
  readonly skipped: string[] = [];
  private readonly names: UniqueNames;
  private readonly initializers: Map<string, onnx.ITensorProto>;
  private readonly graphInputs: Set<string>;
  private readonly quantizedInputs = new Map<string, QuantizedInput>();
  private readonly quantizedWeights = new Map<string, QuantizedWeight>();
  /** Initializers a rewritten node read: removed at the end if nothing reads them any more. */
  private readonly replaced = new Set<string>();
  private weightZeroPoint: string | undefined;

  constructor(model: onnx.ModelProto, private readonly graph: onnx.IGraphProto) {
    this.names = new UniqueNames(model);
    this.initializers = new Map((graph.initializer ?? []).map((t) => [t.name ?? '', t]));
    this.graphInputs = new Set((graph.input ?? []).map((v) => v.name ?? ''));
  }

  /** The nodes that replace `node`: the int8 pattern, or the node itself when it stays float. */
  rewrite(node: onnx.INodeProto): onnx.INodeProto[] {
    if (node.opType !== 'MatMul' && node.opType !== 'Gemm') return [node];
    if (node.domain) return [node];
    const weight = this.weightOf(node);
    if (typeof weight === 'string') {
      this.skipped.push(`${describeNode(node)}: ${weight}, left in float`);
      return [node];
    }
    this.rewritten++;
    return this.quantizedNodes(node, weight);
  }

  /** The node's weight as a [K, N] matrix, or why it is not quantized. */
  private weightOf(node: onnx.INodeProto): Weight | string {
    const [a, b] = node.input ?? [];
    if (!a || !b) return 'fewer than two inputs';
    const isGemm = node.opType === 'Gemm';
    if (isGemm && attributeValue(node, 'transA', 0) !== 0) return 'transA=1';
    const tensor = this.initializers.get(b);
    if (!tensor) return `B '${b}' is computed at run time, not a stored weight`;
    if (this.graphInputs.has(b)) return `B '${b}' is also a graph input, which callers may override`;
    if (tensor.dataType !== DataType.FLOAT) return `B '${b}' is ${DataType[tensor.dataType ?? 0] ?? tensor.dataType}, not FLOAT`;
    if (isExternal(tensor)) return `B '${b}' is stored outside the model file`;
    const dims = (tensor.dims ?? []).map(Number);
    if (dims.length !== 2) return `B '${b}' has rank ${dims.length}, not 2`;
    const count = elementCount(dims);
    if (count < MIN_QUANTIZED_ELEMENTS) return `B '${b}' has ${count} elements, fewer than ${MIN_QUANTIZED_ELEMENTS}, too few for int8 to pay`;
    const stored = readFloats(tensor)!;
    const transposed = isGemm && attributeValue(node, 'transB', 0) !== 0;
    const alpha = isGemm ? attributeValue(node, 'alpha', 1) : 1;
    const [rows, columns] = transposed ? [dims[1], dims[0]] : [dims[0], dims[1]];
    const values = new Float32Array(count);
    for (let k = 0; k < rows; k++) {
      for (let n = 0; n < columns; n++) values[k * columns + n] = alpha * (transposed ? stored[n * rows + k] : stored[k * columns + n]);
    }
    return { name: `${b}${transposed ? '|T' : ''}${alpha !== 1 ? `|${alpha}` : ''}`, values, rows, columns };
  }

  private quantizedNodes(node: onnx.INodeProto, weight: Weight): onnx.INodeProto[] {
    const [a, b, c] = node.input ?? [];
    const output = node.output?.[0] ?? '';
    const base = node.name || output;
    const nodes: onnx.INodeProto[] = [];
    let input = this.quantizedInputs.get(a);
    if (!input) {
      input = { values: this.names.fresh(`${a}_quantized`), scale: this.names.fresh(`${a}_scale`), zeroPoint: this.names.fresh(`${a}_zero_point`) };
      this.quantizedInputs.set(a, input);
      nodes.push({
        name: this.names.fresh(`${a}_DynamicQuantizeLinear`), opType: 'DynamicQuantizeLinear', input: [a], output: [input.values, input.scale, input.zeroPoint],
      });
    }
    const quantized = this.quantizeWeight(weight, b);
    this.replaced.add(b);
    const product = this.names.fresh(`${base}_MatMulInteger_output`);
    const asFloat = this.names.fresh(`${base}_MatMulInteger_float`);
    const scale = this.names.fresh(`${base}_scale`);
    const bias = c ? this.biasOf(node, c, nodes) : undefined;
    const scaled = bias ? this.names.fresh(`${base}_unbiased`) : output;
    nodes.push(
      { name: this.names.fresh(`${base}_MatMulInteger`), opType: 'MatMulInteger', input: [input.values, quantized.values, input.zeroPoint, this.zeroPoint()], output: [product] },
      castToFloat(this.names.fresh(`${base}_Cast`), product, asFloat),
      { name: this.names.fresh(`${base}_scale_Mul`), opType: 'Mul', input: [input.scale, quantized.scale], output: [scale] },
      { name: this.names.fresh(`${base}_Mul`), opType: 'Mul', input: [asFloat, scale], output: [scaled] },
    );
    if (bias) nodes.push({ name: this.names.fresh(`${base}_bias_Add`), opType: 'Add', input: [scaled, bias], output: [output] });
    return nodes;
  }

  /** Symmetric per-column int8: column n's largest magnitude maps to ±127. */
  private quantizeWeight(weight: Weight, original: string): QuantizedWeight {
    const known = this.quantizedWeights.get(weight.name);
    if (known) return known;
    const { values, rows, columns } = weight;
    const scales = new Float32Array(columns);
    for (let i = 0; i < values.length; i++) {
      const n = i % columns;
      scales[n] = Math.max(scales[n], Math.abs(values[i]));
    }
    // An all-zero column quantizes to zeros whatever its scale; 1 keeps the division finite.
    for (let n = 0; n < columns; n++) scales[n] = scales[n] > 0 ? scales[n] / 127 : 1;
    const quantized = new Int8Array(values.length);
    for (let i = 0; i < values.length; i++) quantized[i] = Math.max(-127, Math.min(127, Math.round(values[i] / scales[i % columns])));
    const result = { values: this.names.fresh(`${original}_quantized`), scale: this.names.fresh(`${original}_scale`) };
    this.addInitializer({ name: result.values, dataType: DataType.INT8, dims: [rows, columns], rawData: new Uint8Array(quantized.buffer) });
    this.addInitializer(floatTensor(result.scale, [columns], scales));
    this.quantizedWeights.set(weight.name, result);
    return result;
  }

  /** The value to add after the product: C, or C × beta (folded into a copy when C is stored, else a Mul node). */
  private biasOf(node: onnx.INodeProto, c: string, nodes: onnx.INodeProto[]): string {
    const beta = attributeValue(node, 'beta', 1);
    if (beta === 1) return c;
    const base = node.name || node.output?.[0] || c;
    const stored = this.initializers.get(c);
    const values = stored && !this.graphInputs.has(c) ? readFloats(stored) : undefined;
    if (stored && values) {
      const name = this.names.fresh(`${c}_times_beta`);
      this.addInitializer(floatTensor(name, (stored.dims ?? []).map(Number), values.map((v) => v * beta)));
      this.replaced.add(c);
      return name;
    }
    const betaName = this.names.fresh(`${base}_beta`);
    this.addInitializer(floatTensor(betaName, [], Float32Array.of(beta)));
    const scaled = this.names.fresh(`${base}_bias_times_beta`);
    nodes.push({ name: this.names.fresh(`${base}_beta_Mul`), opType: 'Mul', input: [c, betaName], output: [scaled] });
    return scaled;
  }

  /** The one int8 zero point (0) all quantized weights share. */
  private zeroPoint(): string {
    if (!this.weightZeroPoint) {
      this.weightZeroPoint = this.names.fresh('weight_zero_point');
      this.addInitializer({ name: this.weightZeroPoint, dataType: DataType.INT8, dims: [], rawData: new Uint8Array(1) });
    }
    return this.weightZeroPoint;
  }

  private addInitializer(tensor: onnx.ITensorProto): void {
    (this.graph.initializer ??= []).push(tensor);
  }

  /** Drops the float weights (and biases) the rewrite replaced, unless something else still reads them. */
  removeUnreadInitializers(): void {
    const read = namesRead(this.graph);
    const unread = new Set([...this.replaced].filter((name) => !read.has(name) && !this.graphInputs.has(name)));
    this.graph.initializer = (this.graph.initializer ?? []).filter((t) => !unread.has(t.name ?? ''));
    // A shape annotation for a value that no longer exists would describe nothing.
    this.graph.valueInfo = (this.graph.valueInfo ?? []).filter((v) => !unread.has(v.name ?? ''));
  }
}

/** Why the other nodes that hold weights stay float: convolutions, and MatMul/Gemm in subgraphs. */
function notesOnOtherNodes(graph: onnx.IGraphProto): string[] {
  const notes: string[] = [];
  const convolutions = new Map<string, number>();
  for (const { node, owner } of allNodes(graph)) {
    if (node.opType === 'Conv' || node.opType === 'ConvTranspose') {
      convolutions.set(node.opType, (convolutions.get(node.opType) ?? 0) + 1);
    } else if (owner && (node.opType === 'MatMul' || node.opType === 'Gemm')) {
      notes.push(`${describeNode(node)} inside ${describeNode(owner)}: only the main graph is rewritten, left in float`);
    }
  }
  const why: Record<string, string> = {
    Conv: "onnxruntime's CPU ConvInteger does not take int8 weights",
    ConvTranspose: 'onnxruntime has no integer ConvTranspose',
  };
  for (const [opType, count] of convolutions) notes.push(`${count} ${opType} node${count === 1 ? '' : 's'} left in float: ${why[opType]}`);
  return notes;
}
