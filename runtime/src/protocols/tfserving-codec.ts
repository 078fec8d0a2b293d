/**
 * TF Serving `:predict` bodies to and from the core's request and response: the row form (`instances`) and the
 * columnar form (`inputs`), answered as `predictions` and `outputs`, nested as TF Serving nests them.
 */
import { badRequest } from '../errors';
import { MODEL_DATATYPE, type Codec, type InferRequest, type InferResponse, type RequestedInput } from '../core/request';
import { movableBytes } from '../core/movable';
import { dataBytes } from '../tensor/datatypes';
import { inferJsonShape, jsonNested, jsonRow, jsonSource } from '../tensor/json';
import { listNames, preview, type Signature, type TensorSpec } from '../tensor/signature';
import { isPlainObject, parseJsonBody } from './json-body';

export interface PredictMeta {
  readonly format: 'row' | 'columnar';
  /** Rows in the row format: every output must have this many. */
  readonly rows?: number;
}

/** The answer is JSON text, or its UTF-8 bytes when it was written on a codec thread. */
export const tfServingCodec: Codec<Uint8Array | undefined, PredictMeta, string | Uint8Array> = {
  name: 'tfserving-rest',
  size: (body) => body?.byteLength ?? 0,
  translate: (body, signature) => translatePredictBody(parseJsonBody(body), signature),
  encode: (response, meta) => encodePredictResponse(response, meta),
  textBytes: (response) => response.outputs.reduce((sum, t) => sum + dataBytes(t.data), 0),
  transferable: (body) => {
    if (!body) return { wire: body, transfer: [] };
    const { view, buffer } = movableBytes(body);
    return { wire: view, transfer: [buffer] };
  },
};

function translatePredictBody(body: unknown, signature: Signature): { request: InferRequest; meta: PredictMeta } {
  if (!isPlainObject(body)) throw badRequest(`the request body must be a JSON object with 'instances' or 'inputs', received ${preview(body)}`);
  const hasInstances = body.instances !== undefined;
  const hasInputs = body.inputs !== undefined;
  if (hasInstances === hasInputs) {
    throw badRequest(hasInstances ? "give either 'instances' (row format) or 'inputs' (columnar format), not both"
      : "the request body needs 'instances' (row format) or 'inputs' (columnar format)");
  }
  const values = hasInstances ? rowValues(body.instances, signature) : columnarValues(body.inputs, signature);
  const specs = new Map(signature.inputs.map((spec) => [spec.name, spec]));
  const inputs = [...values].map(([name, value]): RequestedInput => {
    const spec = specs.get(name);
    // An unknown name is the core's to refuse, before any shape: give it no shape to trip over first.
    const shape = spec ? columnFor(spec, inferJsonShape(value, `input '${name}'`)) : undefined;
    return { name, datatype: MODEL_DATATYPE, shape, data: jsonSource(value) };
  });
  return {
    // TF Serving has no `parameters`; KServe's v1 protocol carries an explanation's settings there.
    request: { inputs, parameters: body.parameters },
    meta: { format: hasInstances ? 'row' : 'columnar', rows: hasInstances ? (body.instances as unknown[]).length : undefined },
  };
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

/**
 * Row format: a list of instances, each a value (a model with one input) or an object keyed by input name; stacked
 * per input. An object is never a tensor's value, so instances that are objects are always read as keyed.
 */
function rowValues(instances: unknown, signature: Signature): Map<string, unknown> {
  if (!Array.isArray(instances) || instances.length === 0) {
    throw badRequest(`'instances' must be a non-empty list, received ${preview(instances)}`);
  }
  if (signature.inputs.length === 1 && !isPlainObject(instances[0])) return new Map([[signature.inputs[0].name, instances]]);
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

/** Columnar format: the tensor itself (a model with one input) or an object of tensors keyed by input name. */
function columnarValues(inputs: unknown, signature: Signature): Map<string, unknown> {
  if (isPlainObject(inputs)) return new Map(Object.entries(inputs));
  if (signature.inputs.length !== 1) {
    throw badRequest(`'inputs' must be an object keyed by input name (the model's inputs are ${listNames(signature.inputs)})`);
  }
  return new Map([[signature.inputs[0].name, inputs]]);
}

/** `{"predictions": ...}` (row) or `{"outputs": ...}` (columnar). */
function encodePredictResponse(response: InferResponse, meta: PredictMeta): string {
  const { outputs } = response;
  if (meta.format === 'columnar') {
    if (outputs.length === 1) return `{"outputs":${jsonNested(outputs[0])}}`;
    return `{"outputs":{${outputs.map((t) => `${JSON.stringify(t.name)}:${jsonNested(t)}`).join(',')}}}`;
  }
  const rows = meta.rows!;
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
