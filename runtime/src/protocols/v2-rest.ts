/**
 * Open Inference Protocol v2 over REST (KServe's and Triton's HTTP API): health, server and model metadata, model
 * readiness and infer. Bytes to and from the core (v2-rest-codec.ts translates infer bodies); nothing else.
 * @see https://kserve.github.io/website/latest/modelserving/data_plane/v2_protocol/
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PATHS } from '@modelship/contract';
import { SERVER_NAME, type InferenceCore, type ModelMetadata } from '../core/inference';
import { BINARY_CONTENT_TYPE, BINARY_EXTENSION, binaryResponseBody, HEADER_LENGTH } from './binary-extension';
import { admitHook, explainAdmitHook, restAddressed } from './admit-hook';
import { jsonPayload } from './json-body';
import { v2RestCodec, type V2RestAnswer } from './v2-rest-codec';

interface VersionParams { model: string; version?: string }

export function registerV2Routes(app: FastifyInstance, core: InferenceCore, serverVersion: string): void {
  const metadata = { config: { endpoint: 'metadata' as const } };
  app.get('/v2', metadata, async () => ({ name: SERVER_NAME, version: serverVersion, extensions: [BINARY_EXTENSION] }));
  app.get(PATHS.live, { config: { endpoint: 'live' } }, async () => ({ live: true }));
  app.get(PATHS.ready, { config: { endpoint: 'ready' } }, async (_request, reply) => {
    const why = core.notReadyReason;
    return why === undefined ? { ready: true } : reply.code(503).send({ error: `not ready: ${why}` });
  });

  const modelMetadata = async (request: FastifyRequest<{ Params: VersionParams }>) =>
    v2ModelMetadata(core.modelMetadata(request.params.model, request.params.version));
  app.get<{ Params: VersionParams }>('/v2/models/:model', metadata, modelMetadata);
  app.get<{ Params: VersionParams }>('/v2/models/:model/versions/:version', metadata, modelMetadata);

  const ready = async (request: FastifyRequest<{ Params: VersionParams }>) => {
    core.checkModelReady(request.params.model, request.params.version);
    return { name: request.params.model, ready: true };
  };
  const modelReady = { config: { endpoint: 'model-ready' as const } };
  app.get<{ Params: VersionParams }>('/v2/models/:model/ready', modelReady, ready);
  app.get<{ Params: VersionParams }>('/v2/models/:model/versions/:version/ready', modelReady, ready);

  const infer = async (request: FastifyRequest<{ Params: VersionParams }>, reply: FastifyReply) => {
    const { headers } = request;
    const answer = await core.infer(v2RestCodec, {
      body: request.body as Buffer | undefined, headerLength: headers[HEADER_LENGTH], contentType: headers['content-type'],
    }, restAddressed(request, reply, request.params));
    return sendInferAnswer(reply, answer);
  };
  const admit = admitHook(core, (request) => request.params as VersionParams);
  const options = { config: { endpoint: 'inference' as const, binaryTensorData: true }, onRequest: [jsonWithoutContentType, admit] };
  app.post<{ Params: VersionParams }>('/v2/models/:model/infer', options, infer);
  app.post<{ Params: VersionParams }>('/v2/models/:model/versions/:version/infer', options, infer);

  // The infer body plus `parameters` that choose and tune the explainer (explain/parameters.ts); answered as JSON.
  const explain = async (request: FastifyRequest<{ Params: VersionParams }>, reply: FastifyReply) => {
    const { headers } = request;
    const answer = await core.explain(v2RestCodec, {
      body: request.body as Buffer | undefined, headerLength: headers[HEADER_LENGTH], contentType: headers['content-type'],
    }, restAddressed(request, reply, request.params));
    return reply.type('application/json').send(JSON.stringify(answer));
  };
  const admitExplanation = explainAdmitHook(core, (request) => request.params as VersionParams);
  const explainOptions = { ...options, onRequest: [jsonWithoutContentType, admitExplanation] };
  app.post<{ Params: VersionParams }>('/v2/models/:model/explain', explainOptions, explain);
  app.post<{ Params: VersionParams }>('/v2/models/:model/versions/:version/explain', explainOptions, explain);
}

/**
 * Triton's Python HTTP client sends infer bodies without a Content-Type. Such a body is read as what it is: binary
 * tensor data when the extension's header is there, JSON otherwise (as Triton's own server reads it).
 */
function jsonWithoutContentType(request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  const headers = request.raw.headers;
  if (headers['content-type'] === undefined) headers['content-type'] = headers[HEADER_LENGTH] === undefined ? 'application/json' : BINARY_CONTENT_TYPE;
  done();
}

function sendInferAnswer(reply: FastifyReply, answer: V2RestAnswer) {
  if (answer.binary.length === 0) return reply.type('application/json').send(jsonPayload(answer.json));
  const { body, headerLength, contentLength } = binaryResponseBody(answer.json, answer.binary);
  return reply.header(HEADER_LENGTH, String(headerLength)).header('content-length', String(contentLength)).type(BINARY_CONTENT_TYPE).send(body);
}

/** Model metadata as OIP v2 spells it, plus `state` (and `reason`) so a failed load is visible where users look first. */
export function v2ModelMetadata(metadata: ModelMetadata) {
  const { name, versions, platform, inputs, outputs, state, reason } = metadata;
  return { name, versions, platform, inputs, outputs, state, ...(reason ? { reason } : {}) };
}
