/**
 * Open Inference Protocol v2 over REST (KServe's and Triton's HTTP API): health, server and model metadata, model
 * readiness and infer. Decodes into the common inference path and encodes its result; nothing else.
 * @see https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/
 */
import type { FastifyInstance, FastifyReply, FastifyRequest, RouteShorthandOptions } from 'fastify';
import { PLATFORM } from '../../../lib/contract/runtime';
import { badRequest } from '../errors';
import type { InferenceService } from '../inference';
import type { ModelVersion } from '../model/model-version';
import type { Model } from '../model/registry';
import { isDatatype, type NamedTensor } from '../tensor/datatypes';
import { jsonElements, tensorFromJson } from '../tensor/json';
import { rawFromTensor, tensorFromRaw } from '../tensor/raw';
import { checkInputNames, checkShape, preview, publicShape, requireDatatype, type ShapeLimits, type Signature, type TensorSpec } from '../tensor/signature';
import {
  BINARY_CONTENT_TYPE, BINARY_EXTENSION, BinaryInputs, type BinaryOutputs, binaryResponseBody, HEADER_LENGTH,
  isBinaryOutput, NO_BINARY_OUTPUTS, outputBinaryData, requestBinaryOutput, splitInferBody,
} from './binary-extension';
import { isPlainObject } from './json-body';
import { admitHook } from './admit-hook';

export const SERVER_NAME = 'modelship';

interface VersionParams { model: string; version?: string }

export function registerV2Routes(app: FastifyInstance, service: InferenceService, serverVersion: string): void {
  app.get('/v2', async () => ({ name: SERVER_NAME, version: serverVersion, extensions: [BINARY_EXTENSION] }));
  app.get('/v2/health/live', async () => ({ live: true }));
  app.get('/v2/health/ready', async (_request, reply) => {
    if (service.isReady) return { ready: true };
    const why = service.isDraining ? 'the server is shutting down'
      : service.registry.loadingCount > 0 ? `${service.registry.loadingCount} model version(s) still loading`
        : 'no model version could be loaded';
    return reply.code(503).send({ error: `not ready: ${why}` });
  });

  const metadata = async (params: VersionParams) => {
    const model = service.registry.get(params.model);
    const target = service.registry.resolve(params.model, params.version);
    return modelMetadata(model, target);
  };
  app.get<{ Params: VersionParams }>('/v2/models/:model', async (request) => metadata(request.params));
  app.get<{ Params: VersionParams }>('/v2/models/:model/versions/:version', async (request) => metadata(request.params));

  const ready = async (params: VersionParams) => {
    const target = service.registry.resolve(params.model, params.version);
    target.requireReady();
    return { name: target.name, ready: true };
  };
  app.get<{ Params: VersionParams }>('/v2/models/:model/ready', async (request) => ready(request.params));
  app.get<{ Params: VersionParams }>('/v2/models/:model/versions/:version/ready', async (request) => ready(request.params));

  const infer = async (request: FastifyRequest<{ Params: VersionParams }>) =>
    service.serve('rest', request.params.model, request.params.version, async (target) => {
      const body = splitInferBody(request.body as Buffer | undefined, request.headers[HEADER_LENGTH], request.headers['content-type']);
      const decoded = decodeInferRequest(body.json, target.signature, service.limits, body.binary);
      const result = await service.run(target, decoded.inputs, decoded.outputs);
      return encodeInferResponse(target, decoded.id, result.outputs, decoded.binaryOutputs);
    });
  const admit = admitHook(service, (request) => request.params as VersionParams);
  const options: RouteShorthandOptions = { config: { binaryTensorData: true }, onRequest: [binaryWithoutContentType, admit] };
  app.post<{ Params: VersionParams }>('/v2/models/:model/infer', options, async (request, reply) => sendInferResponse(reply, await infer(request)));
  app.post<{ Params: VersionParams }>('/v2/models/:model/versions/:version/infer', options, async (request, reply) => sendInferResponse(reply, await infer(request)));
}

/**
 * Triton's Python HTTP client sends binary requests without a Content-Type. With the extension's header present, such
 * a body is read as application/octet-stream; without it, a body without a Content-Type is still refused (415).
 */
function binaryWithoutContentType(request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  const headers = request.raw.headers;
  if (headers['content-type'] === undefined && headers[HEADER_LENGTH] !== undefined) headers['content-type'] = BINARY_CONTENT_TYPE;
  done();
}

function sendInferResponse(reply: FastifyReply, response: EncodedInferResponse) {
  if (response.binary.length === 0) return reply.type('application/json').send(response.json);
  const { body, headerLength, contentLength } = binaryResponseBody(response.json, response.binary);
  return reply.header(HEADER_LENGTH, String(headerLength)).header('content-length', String(contentLength)).type(BINARY_CONTENT_TYPE).send(body);
}

function tensorMetadata(spec: TensorSpec) {
  return { name: spec.name, datatype: spec.datatype ?? spec.ortType.toUpperCase(), shape: publicShape(spec) };
}

/** Model metadata, plus `state` (and `reason`) so a failed load is visible where users look first. */
export function modelMetadata(model: Model, target: ModelVersion) {
  return {
    name: model.name,
    versions: model.versions.map((v) => String(v.version)),
    platform: PLATFORM,
    inputs: target.loaded?.signature.inputs.map(tensorMetadata) ?? [],
    outputs: target.loaded?.signature.outputs.map(tensorMetadata) ?? [],
    state: target.state,
    ...(target.reason ? { reason: target.reason } : {}),
  };
}

export interface DecodedInferRequest {
  readonly id?: string;
  readonly inputs: NamedTensor[];
  readonly outputs?: string[];
  /** Which outputs to answer as binary data (the binary tensor data extension). */
  readonly binaryOutputs: BinaryOutputs;
}

/**
 * Checks and decodes an OIP v2 infer request body against the model's signature. `binary` is the part of the body
 * after the JSON header when the request uses the binary tensor data extension (Inference-Header-Content-Length):
 * inputs with `parameters.binary_data_size` take their bytes from it, in order, and the rest read `data`.
 */
export function decodeInferRequest(body: unknown, signature: Signature, limits: ShapeLimits, binary?: Buffer): DecodedInferRequest {
  if (!isPlainObject(body)) throw badRequest(`the request body must be a JSON object with 'inputs', received ${preview(body)}`);
  const { id, inputs, outputs, parameters } = body;
  if (id !== undefined && typeof id !== 'string') throw badRequest(`'id' must be a string, received ${preview(id)}`);
  // An empty list is fine for a model without inputs; for any other, the name check lists what is missing.
  if (!Array.isArray(inputs)) throw badRequest(`'inputs' must be an array of tensors, received ${preview(inputs)}`);
  inputs.forEach((input, index) => {
    if (!isPlainObject(input) || typeof input.name !== 'string') {
      throw badRequest(`inputs[${index}] must be an object with a string 'name', received ${preview(input)}`);
    }
  });
  const named = inputs as Record<string, unknown>[];
  checkInputNames(signature, named.map((input) => input.name as string));
  const specs = new Map(signature.inputs.map((spec) => [spec.name, spec]));
  const binaryInputs = new BinaryInputs(binary);
  const raw: (Buffer | undefined)[] = [];
  // Every shape, and the binary data sizes adding up to the body, are checked before any tensor is allocated.
  const shapes = named.map((input) => {
    const spec = specs.get(input.name as string)!;
    const where = `input '${spec.name}'`;
    const expected = requireDatatype(spec);
    if (!isDatatype(input.datatype)) {
      throw badRequest(`${where}: 'datatype' must be one of BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BYTES; received ${preview(input.datatype)}`);
    }
    if (input.datatype !== expected) throw badRequest(`${where}: expected datatype ${expected}, received ${input.datatype}`);
    const shape = checkShape(spec, input.shape, limits);
    raw.push(binaryInputs.take(input, where));
    return shape;
  });
  binaryInputs.finish();
  const requested = decodeRequestedOutputs(outputs);
  const binaryOutputs: BinaryOutputs = { all: requestBinaryOutput(parameters), byName: requested.binary };
  const decoded = named.map((input, i): NamedTensor => {
    const name = input.name as string;
    const datatype = input.datatype as NamedTensor['datatype'];
    const where = `input '${name}'`;
    const bytes = raw[i];
    return { name, ...(bytes ? tensorFromRaw(datatype, shapes[i], bytes, where) : tensorFromJson(datatype, shapes[i], input.data, where)) };
  });
  return { id, inputs: decoded, outputs: requested.names, binaryOutputs };
}

function decodeRequestedOutputs(outputs: unknown): { names?: string[]; binary: Map<string, boolean> } {
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

export interface EncodedInferResponse {
  /** The JSON response, or with binary outputs its JSON header. */
  readonly json: string;
  /** The bytes of the outputs answered as binary data, in the order of the JSON's outputs; empty for plain JSON. */
  readonly binary: readonly Uint8Array[];
}

/**
 * The response as JSON text, written directly so that typed arrays and 64-bit integers need no intermediate arrays.
 * Outputs chosen by `binaryOutputs` carry `parameters.binary_data_size` instead of `data`, and their bytes (views of
 * the output tensors, no copy) are returned alongside.
 */
export function encodeInferResponse(target: ModelVersion, id: string | undefined, outputs: readonly NamedTensor[], binaryOutputs = NO_BINARY_OUTPUTS): EncodedInferResponse {
  const binary: Uint8Array[] = [];
  const tensors = outputs.map((t) => {
    const head = `{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}]`;
    if (!isBinaryOutput(binaryOutputs, t.name)) return `${head},"data":[${jsonElements(t)}]}`;
    const bytes = rawFromTensor(t);
    binary.push(bytes);
    return `${head},"parameters":{"binary_data_size":${bytes.byteLength}}}`;
  });
  const idField = id === undefined ? '' : `"id":${JSON.stringify(id)},`;
  return { json: `{"model_name":${JSON.stringify(target.name)},"model_version":"${target.version}",${idField}"outputs":[${tensors.join(',')}]}`, binary };
}
