/**
 * TensorFlow Serving's REST API, so the requests people already send to TF Serving work unchanged:
 * `:predict` in the row (`instances`) and columnar (`inputs`) forms, model status and model metadata.
 * @see https://www.tensorflow.org/tfx/serving/api_rest
 */
import type { FastifyInstance } from 'fastify';
import { badRequest, notFound } from '../errors';
import type { InferenceService } from '../inference';
import type { ModelVersion } from '../model/model-version';
import type { Model } from '../model/registry';
import { DATATYPES, type NamedTensor } from '../tensor/datatypes';
import { inferJsonShape, jsonNested, jsonRow, tensorFromJson } from '../tensor/json';
import { checkInputNames, checkShape, listNames, preview, publicShape, requireDatatype, type ShapeLimits, type Signature, type TensorSpec } from '../tensor/signature';
import { admitHook } from './admit-hook';
import { isPlainObject, parseJsonBody } from './json-body';

/** `my_model:predict`, `my_model/versions/3:predict` */
const PREDICT_PATH = /^([^/:]+)(?:\/versions\/([^/:]+))?:([A-Za-z]+)$/;

interface VersionParams { model: string; version?: string }

export function registerTfServingRoutes(app: FastifyInstance, service: InferenceService): void {
  // Refuse before the body is read when the answer is already known (see InferenceService.admit).
  const admit = admitHook(service, (request) => {
    const match = PREDICT_PATH.exec((request.params as { '*': string })['*']);
    return match ? { model: match[1], version: match[2] } : undefined;
  });
  app.post<{ Params: { '*': string } }>('/v1/models/*', { onRequest: admit }, async (request, reply) => {
    const match = PREDICT_PATH.exec(request.params['*']);
    if (!match) throw notFound(`no route for POST ${request.url}; expected /v1/models/<model>[/versions/<version>]:predict`);
    const [, model, version, method] = match;
    if (method !== 'predict') throw badRequest(`':${method}' is not supported; this server answers ':predict'`);
    const json = await service.serve('rest', model, version, async (target) => {
      const predict = decodePredictRequest(parseJsonBody(request.body as Buffer), target.signature, service.limits);
      const result = await service.run(target, predict.inputs);
      return encodePredictResponse(predict, result.outputs);
    });
    return reply.type('application/json').send(json);
  });

  const status = async (params: VersionParams) => {
    const model = service.registry.get(params.model);
    const versions = params.version === undefined ? model.versions : [service.registry.resolve(params.model, params.version)];
    return { model_version_status: versions.map(versionStatus) };
  };
  app.get<{ Params: VersionParams }>('/v1/models/:model', async (request) => status(request.params));
  app.get<{ Params: VersionParams }>('/v1/models/:model/versions/:version', async (request) => status(request.params));

  const metadata = async (params: VersionParams) => {
    const model = service.registry.get(params.model);
    return modelMetadata(model, service.registry.resolve(params.model, params.version));
  };
  app.get<{ Params: VersionParams }>('/v1/models/:model/metadata', async (request) => metadata(request.params));
  app.get<{ Params: VersionParams }>('/v1/models/:model/versions/:version/metadata', async (request) => metadata(request.params));
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

function modelMetadata(model: Model, target: ModelVersion) {
  const signature = target.signature;
  return {
    model_spec: { name: model.name, signature_name: '', version: String(target.version) },
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

export interface DecodedPredictRequest {
  readonly format: 'row' | 'columnar';
  /** Rows in the row format: every output must have this many. */
  readonly rows?: number;
  readonly inputs: NamedTensor[];
}

/** Checks and decodes a `:predict` body against the model's signature; every shape is checked before allocation. */
export function decodePredictRequest(body: unknown, signature: Signature, limits: ShapeLimits): DecodedPredictRequest {
  if (!isPlainObject(body)) throw badRequest(`the request body must be a JSON object with 'instances' or 'inputs', received ${preview(body)}`);
  const hasInstances = body.instances !== undefined;
  const hasInputs = body.inputs !== undefined;
  if (hasInstances === hasInputs) {
    throw badRequest(hasInstances ? "give either 'instances' (row format) or 'inputs' (columnar format), not both"
      : "the request body needs 'instances' (row format) or 'inputs' (columnar format)");
  }
  const values = hasInstances ? rowValues(body.instances, signature) : columnarValues(body.inputs, signature);
  checkInputNames(signature, [...values.keys()]);
  const prepared = signature.inputs.map((spec) => {
    const value = values.get(spec.name);
    const where = `input '${spec.name}'`;
    const datatype = requireDatatype(spec);
    const shape = columnFor(spec, inferJsonShape(value, where));
    return { spec, value, datatype, shape: checkShape(spec, shape, limits) };
  });
  const inputs = prepared.map(({ spec, value, datatype, shape }): NamedTensor =>
    ({ name: spec.name, ...tensorFromJson(datatype, shape, value, `input '${spec.name}'`) }));
  return { format: hasInstances ? 'row' : 'columnar', rows: hasInstances ? (body.instances as unknown[]).length : undefined, inputs };
}

/**
 * TF Serving users send a [-1, 1] input as a list of scalars (`{"instances": [1.0, 2.0, 3.0]}`) and mean a column;
 * when the data is one rank short of a model input whose last dim is 1, add that dim.
 */
function columnFor(spec: TensorSpec, shape: number[]): number[] {
  const declared = spec.shape;
  if (declared && declared.length === shape.length + 1 && declared.at(-1) === 1) return [...shape, 1];
  return shape;
}

/** Row format: a list of instances, each a value (one input) or an object keyed by input name; stacked per input. */
function rowValues(instances: unknown, signature: Signature): Map<string, unknown> {
  if (!Array.isArray(instances) || instances.length === 0) {
    throw badRequest(`'instances' must be a non-empty list, received ${preview(instances)}`);
  }
  const single = signature.inputs.length === 1 ? signature.inputs[0].name : undefined;
  const raw = single !== undefined && !instances.every((i) => isPlainObject(i) && Object.hasOwn(i, single));
  if (raw) return new Map([[single!, instances]]);
  const values = new Map<string, unknown[]>();
  instances.forEach((instance, row) => {
    if (!isPlainObject(instance)) {
      throw badRequest(`instances[${row}] must be an object keyed by input name (the model's inputs are ${listNames(signature.inputs)}), received ${preview(instance)}`);
    }
    for (const [name, value] of Object.entries(instance)) {
      if (!values.has(name)) {
        if (row > 0) throw badRequest(`instances[${row}] has input '${name}' that instances[0] lacks`);
        values.set(name, []);
      }
      values.get(name)!.push(value);
    }
    for (const [name, list] of values) {
      if (list.length !== row + 1) throw badRequest(`instances[${row}] lacks input '${name}'`);
    }
  });
  return values;
}

/** Columnar format: the tensor itself (one input) or an object of tensors keyed by input name. */
function columnarValues(inputs: unknown, signature: Signature): Map<string, unknown> {
  const names = new Set(signature.inputs.map((spec) => spec.name));
  const keyed = isPlainObject(inputs) && (signature.inputs.length !== 1 || Object.keys(inputs).some((k) => names.has(k)));
  if (keyed) return new Map(Object.entries(inputs as Record<string, unknown>));
  if (signature.inputs.length !== 1) {
    throw badRequest(`'inputs' must be an object keyed by input name (the model's inputs are ${listNames(signature.inputs)})`);
  }
  return new Map([[signature.inputs[0].name, inputs]]);
}

/** `{"predictions": ...}` (row) or `{"outputs": ...}` (columnar), nested as TF Serving nests them. */
export function encodePredictResponse(request: DecodedPredictRequest, outputs: readonly NamedTensor[]): string {
  if (request.format === 'columnar') {
    if (outputs.length === 1) return `{"outputs":${jsonNested(outputs[0])}}`;
    return `{"outputs":{${outputs.map((t) => `${JSON.stringify(t.name)}:${jsonNested(t)}`).join(',')}}}`;
  }
  const rows = request.rows!;
  for (const output of outputs) {
    if (output.shape[0] !== rows) {
      throw badRequest(`the row format needs every output to have ${rows} rows (one per instance), but output '${output.name}' has shape [${output.shape.join(', ')}]; use the columnar 'inputs' format`);
    }
  }
  if (outputs.length === 1) return `{"predictions":${jsonNested(outputs[0])}}`;
  const predictions = Array.from({ length: rows }, (_, row) =>
    `{${outputs.map((t) => `${JSON.stringify(t.name)}:${jsonRow(t, row)}`).join(',')}}`);
  return `{"predictions":[${predictions.join(',')}]}`;
}
