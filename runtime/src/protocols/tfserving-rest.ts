/**
 * TensorFlow Serving's REST API, so the requests people already send to TF Serving work unchanged:
 * `:predict` in the row (`instances`) and columnar (`inputs`) forms, model status and model metadata; and KServe's
 * v1 `:explain`, the same body plus `parameters`.
 * Bytes to and from the core (tfserving-codec.ts translates predict bodies); nothing else.
 * @see https://www.tensorflow.org/tfx/serving/api_rest
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { badRequest, InferenceError, notFound } from '../errors';
import type { InferenceCore, ModelMetadata } from '../core/inference';
import type { ModelVersion } from '../model/model-version';
import { DATATYPES } from '../tensor/datatypes';
import { publicShape, type TensorSpec } from '../tensor/signature';
import { admitHook, explainAdmitHook, restAddressed } from './admit-hook';
import { jsonPayload } from './json-body';
import { tfServingCodec } from './tfserving-codec';

/** `my_model:predict`, `my_model/versions/3:predict` */
const PREDICT_PATH = /^([^/:]+)(?:\/versions\/([^/:]+))?:([A-Za-z]+)$/;
/** A `:method` suffix on a path segment. */
const METHOD_SUFFIX = /:([A-Za-z]+)$/;

interface VersionParams { model: string; version?: string }

export function registerTfServingRoutes(app: FastifyInstance, core: InferenceCore): void {
  // Refuse before the body is read when the answer is already known (see InferenceCore.admit).
  const addressed = (method: string) => (request: FastifyRequest) => {
    const match = PREDICT_PATH.exec((request.params as { '*': string })['*']);
    return match && match[3] === method ? { model: match[1], version: match[2] } : undefined;
  };
  const onRequest = [admitHook(core, addressed('predict')), explainAdmitHook(core, addressed('explain'))];
  app.post<{ Params: { '*': string } }>('/v1/models/*', { config: { endpoint: 'inference' }, onRequest }, async (request, reply) => {
    const match = PREDICT_PATH.exec(request.params['*']);
    if (!match) throw notFound(`no route for POST ${request.url}; expected /v1/models/<model>[/versions/<version>]:predict (or :explain)`);
    const [, model, version, method] = match;
    const body = request.body as Buffer | undefined;
    if (method === 'explain') {
      const answer = await core.explain(tfServingCodec, body, restAddressed(request, reply, { model, version }));
      return reply.type('application/json').send(JSON.stringify(answer));
    }
    if (method !== 'predict') throw badRequest(`':${method}' is not supported; this server answers ':predict' and ':explain'`);
    const json = await core.infer(tfServingCodec, body, restAddressed(request, reply, { model, version }));
    return reply.type('application/json').send(jsonPayload(json));
  });

  const metadata = { config: { endpoint: 'metadata' as const } };
  const status = async (request: FastifyRequest<{ Params: VersionParams }>) => {
    const { model, version } = refuseMethodSuffix(request);
    const versions = version === undefined ? core.registry.get(model).versions : [core.registry.resolve(model, version)];
    return { model_version_status: versions.map(versionStatus) };
  };
  app.get<{ Params: VersionParams }>('/v1/models/:model', metadata, status);
  app.get<{ Params: VersionParams }>('/v1/models/:model/versions/:version', metadata, status);

  const modelMetadata = async (request: FastifyRequest<{ Params: VersionParams }>) => {
    const { model, version } = refuseMethodSuffix(request);
    return tfModelMetadata(core.modelMetadata(model, version));
  };
  app.get<{ Params: VersionParams }>('/v1/models/:model/metadata', metadata, modelMetadata);
  app.get<{ Params: VersionParams }>('/v1/models/:model/versions/:version/metadata', metadata, modelMetadata);
}

/** `GET .../my_model:predict` is a request for predict with the wrong method, not for a model named 'my_model:predict'. */
function refuseMethodSuffix(request: FastifyRequest<{ Params: VersionParams }>): VersionParams {
  const { model, version } = request.params;
  const suffix = METHOD_SUFFIX.exec(version ?? model);
  if (suffix) {
    throw new InferenceError(405, `':${suffix[1]}' takes POST, received ${request.method}: send the request body with POST to ${request.url.split('?')[0]}`);
  }
  return { model, version };
}

const TF_STATE = { READY: 'AVAILABLE', LOADING: 'LOADING', UNAVAILABLE: 'END', UNLOADING: 'UNLOADING' } as const;

function versionStatus(version: ModelVersion) {
  return {
    version: String(version.version),
    state: TF_STATE[version.state],
    status: version.reason ? { error_code: 'UNKNOWN', error_message: version.reason } : { error_code: 'OK', error_message: '' },
  };
}

function tensorInfo(spec: TensorSpec) {
  return {
    dtype: spec.datatype ? DATATYPES[spec.datatype].tf : 'DT_INVALID',
    tensor_shape: spec.shape
      ? { dim: publicShape(spec).map((size) => ({ size: String(size), name: '' })), unknown_rank: false }
      : { dim: [], unknown_rank: true },
    name: spec.name,
  };
}

/** Model metadata as TF Serving spells it: one `serving_default` signature; 503 unless the version has loaded. */
function tfModelMetadata(metadata: ModelMetadata) {
  if (!metadata.signature) {
    throw new InferenceError(503, `model '${metadata.name}' version ${metadata.version} is not ready (${metadata.state.toLowerCase()}${metadata.reason ? `: ${metadata.reason}` : ''})`);
  }
  const { signature } = metadata;
  return {
    model_spec: { name: metadata.name, signature_name: '', version: String(metadata.version) },
    metadata: {
      signature_def: {
        signature_def: {
          serving_default: {
            inputs: Object.fromEntries(signature.inputs.map((s) => [s.name, tensorInfo(s)])),
            outputs: Object.fromEntries(signature.outputs.map((s) => [s.name, tensorInfo(s)])),
            method_name: 'tensorflow/serving/predict',
          },
        },
      },
    },
  };
}
