/**
 * Helpers the graph rewrites share, on onnx-proto's ModelProto: the default-domain opset, reading float tensors
 * whichever field holds them, names no other value uses, and walking subgraphs (If, Loop, Scan bodies).
 */
import { onnx } from 'onnx-proto';

export const DataType = onnx.TensorProto.DataType;

/** The default-domain ('' / ai.onnx) opset the model imports, undefined when it imports none. */
export function defaultOpset(model: onnx.IModelProto): number | undefined {
  const entry = (model.opsetImport ?? []).find((o) => (o.domain ?? '') === '' || o.domain === 'ai.onnx');
  return entry ? Number(entry.version) : undefined;
}

/** The number of elements a tensor of these dims holds (1 for a scalar). */
export function elementCount(dims: ReadonlyArray<number | Long> | null | undefined): number {
  return (dims ?? []).reduce<number>((n, d) => n * Number(d), 1);
}

type Long = { toNumber(): number };

/** Whether the tensor's bytes live in a file beside the model, which the rewrites do not read or write. */
export function isExternal(tensor: onnx.ITensorProto): boolean {
  return tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL || (tensor.externalData ?? []).length > 0;
}

/**
 * The values of a FLOAT tensor, from `floatData` or from `rawData` (little-endian, as the format defines it
 * whatever the machine), or undefined when the tensor is not FLOAT or stored outside the file.
 */
export function readFloats(tensor: onnx.ITensorProto): Float32Array | undefined {
  if (tensor.dataType !== DataType.FLOAT || isExternal(tensor)) return undefined;
  const raw = tensor.rawData;
  if (raw && raw.length > 0) {
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    const values = new Float32Array(raw.byteLength / 4);
    for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(i * 4, true);
    return values;
  }
  return Float32Array.from(tensor.floatData ?? []);
}

/** A FLOAT tensor holding `values`, in `rawData` (the compact form exporters write). */
export function floatTensor(name: string, dims: readonly number[], values: Float32Array): onnx.ITensorProto {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return { name, dataType: DataType.FLOAT, dims: [...dims], rawData: bytes };
}

/** The graphs held in a node's attributes (If's branches, Loop's and Scan's bodies). */
export function subgraphsOf(node: onnx.INodeProto): onnx.IGraphProto[] {
  return (node.attribute ?? []).flatMap((a) => [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]);
}

/** Every node of the graph and, depth first, of its subgraphs, with the node holding each subgraph. */
export function* allNodes(graph: onnx.IGraphProto, owner?: onnx.INodeProto): Generator<{ node: onnx.INodeProto; owner?: onnx.INodeProto }> {
  for (const node of graph.node ?? []) {
    yield { node, owner };
    for (const sub of subgraphsOf(node)) yield* allNodes(sub, node);
  }
}

/** The names read anywhere in the graph: node inputs (subgraphs included, which may read outer names) and outputs. */
export function namesRead(graph: onnx.IGraphProto): Set<string> {
  const read = new Set<string>();
  const visit = (g: onnx.IGraphProto) => {
    for (const output of g.output ?? []) read.add(output.name ?? '');
    for (const node of g.node ?? []) {
      for (const input of node.input ?? []) read.add(input);
      subgraphsOf(node).forEach(visit);
    }
  };
  visit(graph);
  return read;
}

/**
 * Hands out value and node names no part of the model uses yet, so that a rewrite's new initializers and
 * intermediate values cannot capture or shadow an existing one (subgraph names included).
 */
export class UniqueNames {
  private readonly taken = new Set<string>();

  constructor(model: onnx.IModelProto) {
    const visit = (g: onnx.IGraphProto) => {
      for (const t of g.initializer ?? []) this.taken.add(t.name ?? '');
      for (const v of [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])]) this.taken.add(v.name ?? '');
      for (const node of g.node ?? []) {
        this.taken.add(node.name ?? '');
        for (const name of [...(node.input ?? []), ...(node.output ?? [])]) this.taken.add(name);
        subgraphsOf(node).forEach(visit);
      }
    };
    if (model.graph) visit(model.graph);
  }

  /** `base`, or `base_2`, `base_3`, ... when taken; the name is taken from then on. */
  fresh(base: string): string {
    let name = base;
    for (let i = 2; this.taken.has(name); i++) name = `${base}_${i}`;
    this.taken.add(name);
    return name;
  }
}

/** Cast(to=FLOAT), the node both rewrites use to hand consumers a float value under its original name. */
export function castToFloat(name: string, input: string, output: string): onnx.INodeProto {
  return { name, opType: 'Cast', input: [input], output: [output], attribute: [intAttribute('to', DataType.FLOAT)] };
}

export function intAttribute(name: string, value: number): onnx.IAttributeProto {
  return { name, type: onnx.AttributeProto.AttributeType.INT, i: value };
}

/** A node's INT or FLOAT attribute, or `fallback` when the node does not set it. */
export function attributeValue(node: onnx.INodeProto, name: string, fallback: number): number {
  const attribute = (node.attribute ?? []).find((a) => a.name === name);
  if (!attribute) return fallback;
  return attribute.type === onnx.AttributeProto.AttributeType.FLOAT ? Number(attribute.f ?? 0) : Number(attribute.i ?? 0);
}

/** How a note names a node: its op type and its name, or its first output when it has none. */
export function describeNode(node: onnx.INodeProto): string {
  return `${node.opType} '${node.name || node.output?.[0] || '?'}'`;
}
