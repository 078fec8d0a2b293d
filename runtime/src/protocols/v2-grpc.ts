/**
 * Open Inference Protocol v2 over gRPC (KServe's and Triton's `inference.GRPCInferenceService`): the six calls as
 * plain async functions over the common inference path. Requests decode into the same tensors, through the same
 * checks and with the same messages, as the REST door; errors carry the HTTP status that `grpcCodeOf` translates.
 * The transport (binding, tracking calls for the drain, writing errors) is server/grpc-server.ts.
 * @see https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/#grpc
 */
import { status as GrpcStatus } from '@grpc/grpc-js';
import { loadSync, type Options as ProtoLoaderOptions, type PackageDefinition } from '@grpc/proto-loader';
import { join } from 'node:path';
import { badRequest, InferenceError } from '../errors';
import type { InferenceService } from '../inference';
import type { ModelVersion } from '../model/model-version';
import { type Datatype, elementCount, isDatatype, type NamedTensor, type TypedArray } from '../tensor/datatypes';
import { tensorFromJson } from '../tensor/json';
import { decodeStringElement, rawFromTensor, tensorFromRaw } from '../tensor/raw';
import { checkInputNames, checkShape, preview, requireDatatype, type ShapeLimits, type Signature } from '../tensor/signature';
import { modelMetadata, SERVER_NAME } from './v2-rest';

/**
 * The .proto is read at start-up from the source tree: compiled code lives in build/runtime/src/protocols/, four
 * levels below the package root, and tsc does not copy .proto files into build/. An image must therefore ship
 * runtime/src/protocols/grpc_predict_v2.proto at the same place relative to build/.
 */
export const PROTO_PATH = join(__dirname, '..', '..', '..', '..', 'runtime', 'src', 'protocols', 'grpc_predict_v2.proto');

/** 64-bit integers as decimal strings so that they stay exact; unset fields as their defaults (empty lists, ''). */
export const PROTO_LOADER_OPTIONS: ProtoLoaderOptions = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

export const SERVICE_NAME = 'inference.GRPCInferenceService';

export function loadProtocolDefinition(): PackageDefinition {
  try {
    return loadSync(PROTO_PATH, PROTO_LOADER_OPTIONS);
  } catch (error) {
    throw new Error(`cannot load the gRPC protocol definition ${PROTO_PATH}: ${(error as Error).message.split('\n')[0]}`);
  }
}

// ---- Messages as @grpc/proto-loader hands them over with PROTO_LOADER_OPTIONS (int64 as string, bytes as Buffer).

type Int64 = string;

export interface InferParameter {
  readonly parameter_choice?: 'bool_param' | 'int64_param' | 'string_param';
  readonly bool_param?: boolean;
  readonly int64_param?: Int64 | number;
  readonly string_param?: string;
}

export interface InferTensorContents {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: (Int64 | number)[];
  uint_contents?: number[];
  uint64_contents?: (Int64 | number)[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Uint8Array[];
}
type ContentsField = keyof InferTensorContents;
const CONTENTS_FIELDS: readonly ContentsField[] = [
  'bool_contents', 'int_contents', 'int64_contents', 'uint_contents', 'uint64_contents', 'fp32_contents', 'fp64_contents', 'bytes_contents',
];

export interface InferInputTensor {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly (Int64 | number)[];
  readonly parameters?: Record<string, InferParameter>;
  readonly contents?: InferTensorContents | null;
}

export interface ModelInferRequest {
  readonly model_name: string;
  readonly model_version: string;
  readonly id: string;
  readonly parameters?: Record<string, InferParameter>;
  readonly inputs: readonly InferInputTensor[];
  readonly outputs: readonly { readonly name: string; readonly parameters?: Record<string, InferParameter> }[];
  readonly raw_input_contents: readonly Uint8Array[];
}

export interface InferOutputTensor {
  name: string;
  datatype: Datatype;
  shape: number[];
  contents?: InferTensorContents;
}

export interface ModelInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: InferOutputTensor[];
  raw_output_contents: Uint8Array[];
}

interface ModelRef { readonly name: string; readonly version: string }

/** The typed field each datatype travels in. FP16 has none: it only travels as raw contents. */
const CONTENTS_FIELD: Readonly<Record<Datatype, ContentsField | undefined>> = {
  BOOL: 'bool_contents',
  UINT8: 'uint_contents', UINT16: 'uint_contents', UINT32: 'uint_contents', UINT64: 'uint64_contents',
  INT8: 'int_contents', INT16: 'int_contents', INT32: 'int_contents', INT64: 'int64_contents',
  FP16: undefined, FP32: 'fp32_contents', FP64: 'fp64_contents', BYTES: 'bytes_contents',
};

// ---- Status mapping

/** The gRPC code for an HTTP status, as the runtime contract pairs them. */
export function grpcCodeOf(status: number): GrpcStatus {
  switch (status) {
    case 400: return GrpcStatus.INVALID_ARGUMENT;
    case 404: return GrpcStatus.NOT_FOUND;
    case 413:
    case 429: return GrpcStatus.RESOURCE_EXHAUSTED;
    case 503: return GrpcStatus.UNAVAILABLE;
    case 500: return GrpcStatus.INTERNAL;
    default: return GrpcStatus.UNKNOWN;
  }
}

/** The refusal of every call but the health checks once the drain has begun. */
export const shuttingDown = () => new InferenceError(503, 'the server is shutting down; retry on another replica', 1);

// ---- The calls

export interface V2GrpcHandlers {
  ServerLive(request: object): Promise<{ live: boolean }>;
  ServerReady(request: object): Promise<{ ready: boolean }>;
  ModelReady(request: ModelRef): Promise<{ ready: boolean }>;
  ServerMetadata(request: object): Promise<{ name: string; version: string; extensions: string[] }>;
  ModelMetadata(request: ModelRef): Promise<object>;
  ModelInfer(request: ModelInferRequest): Promise<ModelInferResponse>;
}

/** Calls that answer while the server drains (the rest are refused with UNAVAILABLE, see grpc-server.ts). */
export const HEALTH_CALLS: ReadonlySet<keyof V2GrpcHandlers> = new Set(['ServerLive', 'ServerReady', 'ModelReady']);

export function createV2GrpcHandlers(service: InferenceService, serverVersion: string): V2GrpcHandlers {
  const { registry } = service;
  return {
    async ServerLive() {
      return { live: true };
    },
    async ServerReady() {
      return { ready: service.isReady };
    },
    async ModelReady({ name, version }) {
      // Unknown model or version: NOT_FOUND. Known but loading, failed, or the server draining: ready = false.
      let target: ModelVersion;
      try {
        target = registry.resolve(name, version || undefined);
      } catch (error) {
        if (error instanceof InferenceError && error.status === 503) return { ready: false };
        throw error;
      }
      return { ready: !service.isDraining && target.state === 'READY' };
    },
    async ServerMetadata() {
      // The binary tensor data extension is a REST one; gRPC carries raw contents natively.
      return { name: SERVER_NAME, version: serverVersion, extensions: [] };
    },
    async ModelMetadata({ name, version }) {
      const model = registry.get(name);
      const target = registry.resolve(name, version || undefined);
      const { state: _state, reason: _reason, ...metadata } = modelMetadata(model, target);
      return metadata;
    },
    async ModelInfer(request) {
      return service.serve('grpc', request.model_name, request.model_version || undefined, async (target) => {
        const decoded = decodeModelInferRequest(request, target.signature, service.limits);
        const result = await service.run(target, decoded.inputs, decoded.outputs);
        return encodeModelInferResponse(target, request.id, result.outputs, decoded.raw);
      });
    },
  };
}

// ---- ModelInfer decoding

export interface DecodedModelInferRequest {
  readonly inputs: NamedTensor[];
  readonly outputs?: string[];
  /** True when the inputs came as raw_input_contents, so that the outputs go back as raw_output_contents. */
  readonly raw: boolean;
}

/**
 * Checks and decodes a ModelInferRequest against the model's signature, in the REST door's order: input names
 * before anything else, then each input's datatype, shape and element count, and only then the tensors.
 */
export function decodeModelInferRequest(request: ModelInferRequest, signature: Signature, limits: ShapeLimits): DecodedModelInferRequest {
  const inputs = request.inputs ?? [];
  const rawContents = request.raw_input_contents ?? [];
  checkInputNames(signature, inputs.map((input) => input.name));
  const raw = rawContents.length > 0;
  if (raw) {
    const typed = inputs.find((input) => typedFieldsOf(input.contents).length > 0);
    if (typed) {
      throw badRequest(`input '${typed.name}' has typed 'contents' but the request also carries raw_input_contents; `
        + 'send the data of every input one way, all raw or all typed');
    }
    if (rawContents.length !== inputs.length) {
      const entries = `${rawContents.length} ${rawContents.length === 1 ? 'entry' : 'entries'}`;
      const names = inputs.map((input) => `'${input.name}'`).join(', ');
      throw badRequest(`raw_input_contents has ${entries} for ${inputs.length} input${inputs.length === 1 ? '' : 's'} (${names}); `
        + 'send one entry per input, in the order of \'inputs\'');
    }
  }
  const specs = new Map(signature.inputs.map((spec) => [spec.name, spec]));
  // Every shape and element count is checked before any tensor is allocated.
  const checked = inputs.map((input) => {
    const spec = specs.get(input.name)!;
    const where = `input '${spec.name}'`;
    const expected = requireDatatype(spec);
    if (!isDatatype(input.datatype)) {
      throw badRequest(`${where}: 'datatype' must be one of BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BYTES; received ${preview(input.datatype)}`);
    }
    if (input.datatype !== expected) throw badRequest(`${where}: expected datatype ${expected}, received ${input.datatype}`);
    const shape = checkShape(spec, (input.shape ?? []).map(Number), limits);
    const elements = raw ? undefined : typedElements(input, expected, shape, where);
    return { datatype: expected, shape, where, elements };
  });
  const decoded = inputs.map((input, i): NamedTensor => {
    const { datatype, shape, where, elements } = checked[i];
    const tensor = raw ? tensorFromRaw(datatype, shape, rawContents[i], where) : tensorFromJson(datatype, shape, elements, where);
    return { name: input.name, ...tensor };
  });
  const outputs = (request.outputs ?? []).map((output, index) => {
    if (!output.name) throw badRequest(`outputs[${index}] has no name`);
    return output.name;
  });
  return { inputs: decoded, outputs: outputs.length > 0 ? outputs : undefined, raw };
}

function typedFieldsOf(contents: InferTensorContents | null | undefined): ContentsField[] {
  if (!contents) return [];
  return CONTENTS_FIELDS.filter((field) => (contents[field]?.length ?? 0) > 0);
}

/**
 * The elements of a typed input, as tensorFromJson reads them (int64 as digit strings, BYTES as UTF-8 strings),
 * after checking that they are in the datatype's field and that there are as many as the shape needs.
 */
function typedElements(input: InferInputTensor, datatype: Datatype, shape: readonly number[], where: string): unknown[] {
  const field = CONTENTS_FIELD[datatype];
  const expected = elementCount(shape);
  const present = typedFieldsOf(input.contents);
  const stray = present.find((f) => f !== field);
  if (!field) {
    if (expected === 0 && present.length === 0) return [];
    throw badRequest(`${where}: FP16 has no typed contents field; send FP16 tensors as raw_input_contents`
      + (stray ? ` (received contents.${stray})` : ''));
  }
  if (stray) throw badRequest(`${where}: ${datatype} elements go in contents.${field}, received contents.${stray}`);
  const values = (input.contents?.[field] ?? []) as unknown[];
  if (values.length !== expected) {
    throw badRequest(`${where}: shape [${shape.join(', ')}] needs ${expected} elements, contents.${field} has ${values.length}`);
  }
  if (field === 'bytes_contents') return (values as Uint8Array[]).map((bytes, i) => decodeStringElement(bytes, `${where}: contents.bytes_contents[${i}]`));
  return values;
}

// ---- ModelInfer encoding

/**
 * The response: raw_output_contents when the request was raw (what Triton's clients expect), typed contents
 * otherwise, except that an FP16 output with elements, which has no typed field, makes the whole response raw
 * (the protocol allows raw contents for all outputs or none).
 */
export function encodeModelInferResponse(target: ModelVersion, id: string, outputs: readonly NamedTensor[], raw: boolean): ModelInferResponse {
  const asRaw = raw || outputs.some((t) => CONTENTS_FIELD[t.datatype] === undefined && elementCount(t.shape) > 0);
  return {
    model_name: target.name,
    model_version: String(target.version),
    id: id ?? '',
    outputs: outputs.map((t) => ({
      name: t.name,
      datatype: t.datatype,
      shape: [...t.shape],
      ...(asRaw ? {} : { contents: typedContents(t) }),
    })),
    raw_output_contents: asRaw ? outputs.map(rawFromTensor) : [],
  };
}

function typedContents(tensor: NamedTensor): InferTensorContents {
  const field = CONTENTS_FIELD[tensor.datatype];
  if (!field) return {};
  const data = tensor.data;
  switch (tensor.datatype) {
    case 'BOOL':
      return { bool_contents: Array.from(data as Uint8Array, (v) => v !== 0) };
    case 'INT64':
    case 'UINT64':
      // Decimal strings: protobufjs writes them as exact 64-bit integers.
      return { [field]: Array.from(data as BigInt64Array, String) };
    case 'BYTES':
      return { bytes_contents: (data as string[]).map((s) => Buffer.from(s, 'utf8')) };
    default:
      return { [field]: Array.from(data as Exclude<TypedArray, BigInt64Array | BigUint64Array>) };
  }
}
