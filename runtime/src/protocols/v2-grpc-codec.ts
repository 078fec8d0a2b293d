/**
 * OIP v2 ModelInfer messages (as @grpc/proto-loader hands them over) to and from the core's request and response.
 * Inputs come as raw_input_contents or as typed contents; outputs always go back as raw_output_contents, as
 * Triton's server answers and as Triton's client reads them (it reads no typed contents), KServe's client reads
 * both.
 */
import { badRequest } from '../errors';
import type { Codec, InferRequest, InferResponse, RequestedInput, TensorSource } from '../core/request';
import { type Datatype, elementCount, isDatatype } from '../tensor/datatypes';
import { jsonSource } from '../tensor/json';
import { decodeStringElement, rawFromTensor, rawSource } from '../tensor/raw';

// ---- Messages as @grpc/proto-loader hands them over (int64 as string, bytes as Buffer).

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
}

export interface ModelInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: InferOutputTensor[];
  raw_output_contents: Uint8Array[];
}

/** The typed field each datatype travels in. FP16 has none: it only travels as raw contents. */
const CONTENTS_FIELD: Readonly<Record<Datatype, ContentsField | undefined>> = {
  BOOL: 'bool_contents',
  UINT8: 'uint_contents', UINT16: 'uint_contents', UINT32: 'uint_contents', UINT64: 'uint64_contents',
  INT8: 'int_contents', INT16: 'int_contents', INT32: 'int_contents', INT64: 'int64_contents',
  FP16: undefined, FP32: 'fp32_contents', FP64: 'fp64_contents', BYTES: 'bytes_contents',
};

export const v2GrpcCodec: Codec<ModelInferRequest, { readonly id: string }, ModelInferResponse> = {
  name: 'v2-grpc',
  size: (request) => (request.raw_input_contents ?? []).reduce((sum, bytes) => sum + bytes.byteLength, 0),
  translate: (request) => ({ request: translateModelInfer(request), meta: { id: request.id ?? '' } }),
  // Raw contents are the tensors' own bytes: nothing to write out as text.
  textBytes: () => 0,
  encode: (response, meta) => ({
    model_name: response.model,
    model_version: String(response.version),
    id: meta.id,
    outputs: response.outputs.map((t) => ({ name: t.name, datatype: t.datatype, shape: [...t.shape] })),
    raw_output_contents: response.outputs.map(rawFromTensor),
  }),
};

/** A ModelInferRequest as the core's request: each input's data from its raw_input_contents entry or its typed contents. */
function translateModelInfer(request: ModelInferRequest): InferRequest {
  const inputs = request.inputs ?? [];
  const rawContents = request.raw_input_contents ?? [];
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
  const requested = inputs.map((input, i): RequestedInput => ({
    name: input.name,
    datatype: input.datatype,
    shape: (input.shape ?? []).map(Number),
    data: raw ? rawSource(rawContents[i]) : typedSource(input),
  }));
  const outputs = (request.outputs ?? []).map((output, index) => {
    if (!output.name) throw badRequest(`outputs[${index}] has no name`);
    return output.name;
  });
  return { inputs: requested, outputs };
}

function typedFieldsOf(contents: InferTensorContents | null | undefined): ContentsField[] {
  if (!contents) return [];
  return CONTENTS_FIELDS.filter((field) => (contents[field]?.length ?? 0) > 0);
}

/**
 * The elements of a typed input, read as JSON elements are (int64 as digit strings, BYTES as UTF-8 strings), after
 * checking that they are in the datatype's field and that there are as many as the shape needs.
 */
function typedSource(input: InferInputTensor): TensorSource {
  const elements = (datatype: Datatype, shape: readonly number[], where: string): unknown[] => {
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
    return values;
  };
  return {
    check: (datatype, shape, where) => { elements(datatype, shape, where); },
    decode: (datatype, shape, where) => {
      const values = elements(datatype, shape, where);
      const items = isDatatype(datatype) && datatype === 'BYTES'
        ? (values as Uint8Array[]).map((bytes, i) => decodeStringElement(bytes, `${where}: contents.bytes_contents[${i}]`))
        : values;
      return jsonSource(items).decode(datatype, shape, where);
    },
  };
}
