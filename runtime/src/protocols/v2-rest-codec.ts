/**
 * OIP v2 infer bodies over REST, JSON or with the binary tensor data extension, to and from the core's request and
 * response. Only the wire form is read here; the checks against the model's signature are the core's.
 */
import { badRequest } from '../errors';
import type { Codec, InferRequest, InferResponse, RequestedInput } from '../core/request';
import { movableBytes } from '../core/movable';
import { dataBytes } from '../tensor/datatypes';
import { jsonElements, jsonSource } from '../tensor/json';
import { rawFromTensor, rawSource } from '../tensor/raw';
import { preview } from '../tensor/signature';
import {
  BinaryInputs, type BinaryOutputs, isBinaryOutput, outputBinaryData, requestBinaryOutput, splitInferBody,
} from './binary-extension';
import { isPlainObject } from './json-body';

/** An infer request as it arrived: the body and the two headers that say how to read it. */
export interface V2RestWire {
  readonly body: Uint8Array | undefined;
  /** Inference-Header-Content-Length, when the body carries binary tensor data after a JSON header. */
  readonly headerLength?: string | string[];
  readonly contentType?: string;
}

export interface V2RestMeta {
  readonly id?: string;
  /** Which outputs to answer as binary data (the binary tensor data extension). */
  readonly binaryOutputs: BinaryOutputs;
}

export interface V2RestAnswer {
  /** The JSON answer, or with binary outputs its JSON header (bytes when encoded on a codec thread). */
  readonly json: string | Uint8Array;
  /** The bytes of the outputs answered as binary data, in the order of the JSON's outputs; empty for plain JSON. */
  readonly binary: readonly Uint8Array[];
}

export const v2RestCodec: Codec<V2RestWire, V2RestMeta, V2RestAnswer> = {
  name: 'v2-rest',
  // What must be parsed as JSON: the JSON header alone when binary data follows it (copying that is cheap anywhere).
  size: (wire) => Math.min(wire.body?.byteLength ?? 0, jsonHeaderLength(wire.headerLength) ?? Infinity),
  translate: (wire) => translateInferBody(wire),
  encode: (response, meta) => encodeInferResponse(response, meta),
  textBytes: (response, meta) => response.outputs.reduce((sum, t) => sum + (isBinaryOutput(meta.binaryOutputs, t.name) ? 0 : dataBytes(t.data)), 0),
  transferable: (wire) => {
    if (!wire.body) return { wire, transfer: [] };
    const { view, buffer } = movableBytes(wire.body);
    return { wire: { ...wire, body: view }, transfer: [buffer] };
  },
};

/** The Inference-Header-Content-Length as a number, when it is one (splitInferBody says what is wrong with it otherwise). */
function jsonHeaderLength(header: string | string[] | undefined): number | undefined {
  return typeof header === 'string' && /^\d{1,16}$/.test(header) ? Number(header) : undefined;
}

/**
 * An OIP v2 infer body as the core's request. Inputs with `parameters.binary_data_size` take their bytes from the
 * binary part after the JSON header, in order; the rest read `data`.
 */
function translateInferBody(wire: V2RestWire): { request: InferRequest; meta: V2RestMeta } {
  const body = splitInferBody(wire.body, wire.headerLength, wire.contentType);
  const json = body.json;
  if (!isPlainObject(json)) throw badRequest(`the request body must be a JSON object with 'inputs', received ${preview(json)}`);
  const { id, inputs, outputs, parameters } = json;
  if (id !== undefined && typeof id !== 'string') throw badRequest(`'id' must be a string, received ${preview(id)}`);
  // An empty list is fine for a model without inputs; for any other, the name check lists what is missing.
  if (!Array.isArray(inputs)) throw badRequest(`'inputs' must be an array of tensors, received ${preview(inputs)}`);
  inputs.forEach((input, index) => {
    if (!isPlainObject(input) || typeof input.name !== 'string') {
      throw badRequest(`inputs[${index}] must be an object with a string 'name', received ${preview(input)}`);
    }
  });
  const binaryInputs = new BinaryInputs(body.binary);
  const requested = (inputs as Record<string, unknown>[]).map((input): RequestedInput => {
    const bytes = binaryInputs.take(input, `input '${input.name as string}'`);
    return { name: input.name as string, datatype: input.datatype, shape: input.shape, data: bytes ? rawSource(bytes) : jsonSource(input.data) };
  });
  binaryInputs.finish();
  const asked = requestedOutputs(outputs);
  return {
    request: { inputs: requested, outputs: asked.names, parameters },
    meta: { id, binaryOutputs: { all: requestBinaryOutput(parameters), byName: asked.binary } },
  };
}

function requestedOutputs(outputs: unknown): { names?: string[]; binary: Map<string, boolean> } {
  const binary = new Map<string, boolean>();
  if (outputs === undefined) return { binary };
  if (!Array.isArray(outputs)) throw badRequest(`'outputs' must be an array of {"name": ...}, received ${preview(outputs)}`);
  const names = outputs.map((output, index) => {
    if (!isPlainObject(output) || typeof output.name !== 'string') {
      throw badRequest(`outputs[${index}] must be an object with a string 'name', received ${preview(output)}`);
    }
    const flag = outputBinaryData(output, `output '${output.name}'`);
    if (flag !== undefined) binary.set(output.name, flag);
    return output.name;
  });
  return { names, binary };
}

/**
 * The answer as JSON text, written directly so that typed arrays and 64-bit integers need no intermediate arrays.
 * Outputs chosen by `binaryOutputs` carry `parameters.binary_data_size` instead of `data`, and their bytes (views of
 * the output tensors, no copy) are returned alongside.
 */
function encodeInferResponse(response: InferResponse, meta: V2RestMeta): V2RestAnswer {
  const binary: Uint8Array[] = [];
  const tensors = response.outputs.map((t) => {
    const head = `{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}]`;
    if (!isBinaryOutput(meta.binaryOutputs, t.name)) return `${head},"data":[${jsonElements(t)}]}`;
    const bytes = rawFromTensor(t);
    binary.push(bytes);
    return `${head},"parameters":{"binary_data_size":${bytes.byteLength}}}`;
  });
  const idField = meta.id === undefined ? '' : `"id":${JSON.stringify(meta.id)},`;
  return { json: `{"model_name":${JSON.stringify(response.model)},"model_version":"${response.version}",${idField}"outputs":[${tensors.join(',')}]}`, binary };
}
