/**
 * Requests read from a file rather than the network — one per line, a v2 `inputs` array or a TF Serving `instances`
 * array — decoded by the same codecs and checked by the same signature checks as a served request (so data the
 * server would refuse is refused here, with the same reason), and run in-process. `modelship profile` builds a
 * drift profile from them; `modelship optimize` compares two models on them.
 */
import { readFileSync } from 'node:fs';
import { SERVE_SETTINGS } from '@modelship/contract';
import { decodeRequest } from './core/decode';
import type { InferRequest } from './core/request';
import * as ort from './model/onnxruntime';
import { isPlainObject } from './protocols/json-body';
import { tfServingCodec } from './protocols/tfserving-codec';
import { v2RestCodec } from './protocols/v2-rest-codec';
import { DATATYPES, fromOrtType, type NamedTensor } from './tensor/datatypes';
import type { Signature } from './tensor/signature';

/** Every request of a data file (`flag` names where its path came from), decoded; an error names the file and line. */
export function readRequests(path: string, flag: string, signature: Signature): NamedTensor[][] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${flag} '${path}': ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const requests: NamedTensor[][] = [];
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    try {
      requests.push(decodeLine(line, signature));
    } catch (error) {
      throw new Error(`${path} line ${i + 1}: ${(error as Error).message}`);
    }
  }
  if (requests.length === 0) throw new Error(`${flag} '${path}' holds no requests (one per line: a v2 'inputs' array or a TF Serving 'instances' array)`);
  return requests;
}

/** A served request's limits: data the server would refuse as too large is refused here too. */
const LIMITS = { maxTensorElements: SERVE_SETTINGS.maxTensorElements.default, maxResponseBytes: 2048 * 1024 * 1024 };

/**
 * One line as the decoded inputs of a request. An array of objects each with a 'name' and 'data' is a v2 `inputs`
 * array; any other array is TF Serving `instances` (rows, or objects keyed by input name).
 */
function decodeLine(line: string, signature: Signature): NamedTensor[] {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    throw new Error(`not JSON: ${(error as Error).message}`);
  }
  if (!Array.isArray(value) || value.length === 0) throw new Error("expected a v2 'inputs' array or a TF Serving 'instances' array");
  const v2 = value.every((item) => isPlainObject(item) && typeof item.name === 'string' && 'data' in item);
  const body = Buffer.from(JSON.stringify(v2 ? { inputs: value } : { instances: value }));
  const request: InferRequest = v2
    ? v2RestCodec.translate({ body, contentType: 'application/json' }, signature).request
    : tfServingCodec.translate(body, signature).request;
  return decodeRequest(request, signature, LIMITS).inputs;
}

/** The session's outputs for decoded inputs, as served tensors (outputs of a type the protocols cannot carry left out). */
export async function runInProcess(session: ort.InferenceSession, inputs: readonly NamedTensor[]): Promise<NamedTensor[]> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of inputs) feeds[input.name] = new ort.Tensor(DATATYPES[input.datatype].ort, input.data as ort.Tensor.DataType, input.shape);
  const results = await session.run(feeds);
  return session.outputNames.flatMap((name): NamedTensor[] => {
    const tensor = results[name];
    const info = fromOrtType(tensor.type);
    return info ? [{ name, datatype: info.name, shape: [...tensor.dims], data: tensor.data as NamedTensor['data'] }] : [];
  });
}

