/**
 * The checks every request passes against the model's signature, whatever door it came in by, in one order:
 * input names, then each input's datatype, shape and data size, then the requested outputs — and only then are
 * the tensors allocated and decoded.
 */
import { isDatatype, type Datatype } from '../tensor/datatypes';
import { checkInputNames, checkOutputNames, checkShape, preview, requireDatatype, type ShapeLimits, type Signature, type TensorSpec } from '../tensor/signature';
import { badRequest } from '../errors';
import { MODEL_DATATYPE, type DecodedRequest, type InferRequest } from './request';

export function decodeRequest(request: InferRequest, signature: Signature, limits: ShapeLimits): DecodedRequest {
  checkInputNames(signature, request.inputs.map((input) => input.name));
  const specs = new Map(signature.inputs.map((spec) => [spec.name, spec]));
  const checked = request.inputs.map((input) => {
    const spec = specs.get(input.name)!;
    const where = `input '${spec.name}'`;
    const datatype = checkDatatype(spec, input.datatype, where);
    const shape = checkShape(spec, input.shape, limits);
    input.data.check(datatype, shape, where);
    return { input, datatype, shape, where };
  });
  const outputs = checkOutputNames(signature, request.outputs);
  const inputs = checked.map(({ input, datatype, shape, where }) =>
    ({ name: input.name, datatype, shape, data: input.data.decode(datatype, shape, where) }));
  return { inputs, outputs, parameters: request.parameters };
}

/** The input's datatype: the model's, which the request must name exactly when it names one. */
function checkDatatype(spec: TensorSpec, requested: unknown, where: string): Datatype {
  const expected = requireDatatype(spec);
  if (requested === MODEL_DATATYPE) return expected;
  if (!isDatatype(requested)) {
    throw badRequest(`${where}: 'datatype' must be one of BOOL, UINT8..UINT64, INT8..INT64, FP16, FP32, FP64, BYTES; received ${preview(requested)}`);
  }
  if (requested !== expected) throw badRequest(`${where}: expected datatype ${expected}, received ${requested}`);
  return expected;
}
