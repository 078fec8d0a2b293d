/**
 * Open Inference Protocol v2 over REST (KServe's and Triton's HTTP API): health, server and model metadata, model
 * readiness and infer. Decodes into the common inference path and encodes its result; nothing else.
 * @see https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import { PLATFORM } from '../../../lib/contract/runtime';
import { badRequest } from '../errors';
import type { InferenceService } from '../inference';
import type { ModelVersion } from '../model/model-version';
import type { Model } from '../model/registry';
import { isDatatype, type NamedTensor } from '../tensor/datatypes';
import { jsonElements, tensorFromJson } from '../tensor/json';
import { checkInputNames, checkShape, preview, publicShape, requireDatatype, type ShapeLimits, type Signature, type TensorSpec } from '../tensor/signature';
import { isPlainObject, parseJsonBody } from './json-body';

export const SERVER_NAME = 'modelship';

interface VersionParams { model: string; version?: string }

export function registerV2Routes(app: FastifyInstance, service: InferenceService, serverVersion: string): void {
  app.get('/v2', async () => ({ name: SERVER_NAME, version: serverVersion, extensions: [] }));
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

  const infer = async (params: VersionParams, body: unknown) =>
    service.serve('rest', params.model, params.version, async (target) => {
      const request = decodeInferRequest(parseJsonBody(body as Buffer), target.signature, service.limits);
      const result = await service.run(target, request.inputs, request.outputs);
      return encodeInferResponse(target, request.id, result.outputs);
    });
  const send = (reply: FastifyReply, json: string) => reply.type('application/json').send(json);
  app.post<{ Params: VersionParams }>('/v2/models/:model/infer', async (request, reply) => send(reply, await infer(request.params, request.body)));
  app.post<{ Params: VersionParams }>('/v2/models/:model/versions/:version/infer', async (request, reply) => send(reply, await infer(request.params, request.body)));
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
}

/** Checks and decodes an OIP v2 infer request body against the model's signature. */
export function decodeInferRequest(body: unknown, signature: Signature, limits: ShapeLimits): DecodedInferRequest {
  if (!isPlainObject(body)) throw badRequest(`the request body must be a JSON object with 'inputs', received ${preview(body)}`);
  const { id, inputs, outputs } = body;
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
  // Every shape is checked before any tensor is allocated.
  const shapes = named.map((input) => {
    const spec = specs.get(input.name as string)!;
    const where = `input '${spec.name}'`;
    const expected = requireDatatype(spec);
    if (!isDatatype(input.datatype)) {
      throw badRequest(`${where}: 'datatype' must be one of BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BYTES; received ${preview(input.datatype)}`);
    }
    if (input.datatype !== expected) throw badRequest(`${where}: expected datatype ${expected}, received ${input.datatype}`);
    if (isPlainObject(input.parameters) && (input.parameters.binary_data_size !== undefined)) {
      throw badRequest(`${where}: binary tensor data is not accepted by this server yet; send 'data' as JSON`);
    }
    return checkShape(spec, input.shape, limits);
  });
  const decoded = named.map((input, i): NamedTensor => {
    const name = input.name as string;
    return { name, ...tensorFromJson(input.datatype as NamedTensor['datatype'], shapes[i], input.data, `input '${name}'`) };
  });
  return { id, inputs: decoded, outputs: decodeRequestedOutputs(outputs) };
}

function decodeRequestedOutputs(outputs: unknown): string[] | undefined {
  if (outputs === undefined) return undefined;
  if (!Array.isArray(outputs)) throw badRequest(`'outputs' must be an array of {"name": ...}, received ${preview(outputs)}`);
  return outputs.map((output, index) => {
    if (!isPlainObject(output) || typeof output.name !== 'string') {
      throw badRequest(`outputs[${index}] must be an object with a string 'name', received ${preview(output)}`);
    }
    return output.name;
  });
}

/** The response as JSON text, written directly so that typed arrays and 64-bit integers need no intermediate arrays. */
export function encodeInferResponse(target: ModelVersion, id: string | undefined, outputs: readonly NamedTensor[]): string {
  const tensors = outputs.map((t) =>
    `{"name":${JSON.stringify(t.name)},"datatype":"${t.datatype}","shape":[${t.shape.join(',')}],"data":[${jsonElements(t)}]}`);
  const idField = id === undefined ? '' : `"id":${JSON.stringify(id)},`;
  return `{"model_name":${JSON.stringify(target.name)},"model_version":"${target.version}",${idField}"outputs":[${tensors.join(',')}]}`;
}
