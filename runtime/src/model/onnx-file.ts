/**
 * What an .onnx file says about itself (IR version, opsets, producer, metadata, declared inputs and outputs),
 * decoded from the ModelProto with onnx-proto. Used by `modelship inspect` and for `modelship_model_info`.
 */
import { createHash } from 'node:crypto';
import { onnx } from 'onnx-proto';
import { fromOnnxType } from '../tensor/datatypes';
import type { Dim, TensorSpec } from '../tensor/signature';

export interface OpsetImport {
  readonly domain: string;
  readonly version: number;
}

export interface OnnxFileInfo {
  readonly sha256: string;
  readonly sizeBytes: number;
  readonly irVersion: number;
  readonly opsets: readonly OpsetImport[];
  /** The default-domain ('' / ai.onnx) opset, the one people mean by "opset". */
  readonly opset: number | undefined;
  readonly producerName: string;
  readonly producerVersion: string;
  readonly domain: string;
  readonly modelVersion: number;
  readonly docString: string;
  readonly graphName: string;
  readonly metadata: Readonly<Record<string, string>>;
  /** Graph inputs that are not initializers, as declared in the file. */
  readonly inputs: readonly TensorSpec[];
  readonly outputs: readonly TensorSpec[];
}

const ONNX_TYPE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(onnx.TensorProto.DataType).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v, k.toLowerCase()]),
);

/** Decodes the model; throws with protobuf's reason when the bytes are not a ModelProto. */
export function readOnnxFile(bytes: Uint8Array): OnnxFileInfo {
  const model = onnx.ModelProto.decode(bytes);
  if (!model.graph) throw new Error('the file holds no graph (not an ONNX model?)');
  const opsets = (model.opsetImport ?? []).map((o) => ({ domain: o.domain ?? '', version: Number(o.version) }));
  const initializers = new Set((model.graph.initializer ?? []).map((t) => t.name));
  return {
    sha256: createHash('sha256').update(bytes).digest('hex'),
    sizeBytes: bytes.byteLength,
    irVersion: Number(model.irVersion),
    opsets,
    opset: opsets.find((o) => o.domain === '' || o.domain === 'ai.onnx')?.version,
    producerName: model.producerName ?? '',
    producerVersion: model.producerVersion ?? '',
    domain: model.domain ?? '',
    modelVersion: Number(model.modelVersion ?? 0),
    docString: model.docString ?? '',
    graphName: model.graph.name ?? '',
    metadata: Object.fromEntries((model.metadataProps ?? []).map((p) => [p.key ?? '', p.value ?? ''])),
    inputs: (model.graph.input ?? []).filter((v) => !initializers.has(v.name)).map(valueInfoSpec),
    outputs: (model.graph.output ?? []).map(valueInfoSpec),
  };
}

function valueInfoSpec(value: onnx.IValueInfoProto): TensorSpec {
  const tensorType = value.type?.tensorType;
  const name = value.name ?? '';
  if (!tensorType) return { name, datatype: undefined, ortType: describeNonTensor(value.type), shape: undefined };
  const elemType = tensorType.elemType ?? 0;
  const shape: Dim[] | undefined = tensorType.shape
    ? (tensorType.shape.dim ?? []).map((d) => (d.dimValue != null && d.dimParam == null ? Number(d.dimValue) : d.dimParam ?? ''))
    : undefined;
  return { name, datatype: fromOnnxType(elemType)?.name, ortType: ONNX_TYPE_NAMES[elemType] ?? `type ${elemType}`, shape };
}

function describeNonTensor(type: onnx.ITypeProto | null | undefined): string {
  if (type?.sequenceType) return 'sequence';
  if (type?.mapType) return 'map';
  return 'unknown';
}
