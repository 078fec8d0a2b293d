/**
 * `modelship profile`: a drift profile from reference data. Each line of the data file is one request, read by the
 * same codecs and checked by the same signature checks as a served request (so data the server would refuse is
 * refused here, with the same reason), then run through the model in-process to profile its outputs too.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { checkDriftProfile, readOnnxFile, SERVE_SETTINGS, type DriftProfile, type OnnxFileInfo } from '@modelship/contract';
import { decodeRequest } from './core/decode';
import type { InferRequest } from './core/request';
import { ProfileBuilder } from './drift';
import * as ort from './model/onnxruntime';
import { signatureOf } from './model/signature-of';
import { isPlainObject } from './protocols/json-body';
import { tfServingCodec } from './protocols/tfserving-codec';
import { v2RestCodec } from './protocols/v2-rest-codec';
import { DATATYPES, fromOrtType, type NamedTensor } from './tensor/datatypes';
import type { Signature } from './tensor/signature';

export interface ProfileSummary {
  readonly profile: DriftProfile;
  readonly rows: number;
  readonly tensors: number;
  readonly features: number;
}

export async function profileModel(modelPath: string, dataPath: string): Promise<ProfileSummary> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(modelPath);
  } catch (error) {
    throw new Error(`cannot read --model '${modelPath}': ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  let file: OnnxFileInfo;
  try {
    file = readOnnxFile(bytes);
  } catch (error) {
    throw new Error(`'${modelPath}' is not an ONNX model: ${(error as Error).message}`);
  }
  let text: string;
  try {
    text = readFileSync(dataPath, 'utf8');
  } catch (error) {
    throw new Error(`cannot read --data '${dataPath}': ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 4 });
  try {
    const signature = signatureOf(session);
    const builder = new ProfileBuilder();
    const lines = text.split('\n');
    for (const [i, line] of lines.entries()) {
      if (line.trim() === '') continue;
      const where = `${dataPath} line ${i + 1}`;
      try {
        const inputs = decodeLine(line, signature);
        builder.add(inputs, await run(session, inputs));
      } catch (error) {
        throw new Error(`${where}: ${(error as Error).message}`);
      }
    }
    if (builder.rows === 0) throw new Error(`--data '${dataPath}' holds no reference rows (one request per line: a v2 'inputs' array or a TF Serving 'instances' array)`);
    const profile = checkDriftProfile(builder.build(file.sha256), 'the profile built');
    return {
      profile, rows: profile.rows, tensors: profile.tensors.length,
      features: profile.tensors.reduce((sum, tensor) => sum + tensor.features.length, 0),
    };
  } finally {
    await session.release();
  }
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

async function run(session: ort.InferenceSession, inputs: readonly NamedTensor[]): Promise<NamedTensor[]> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of inputs) feeds[input.name] = new ort.Tensor(DATATYPES[input.datatype].ort, input.data as ort.Tensor.DataType, input.shape);
  const results = await session.run(feeds);
  return session.outputNames.flatMap((name): NamedTensor[] => {
    const tensor = results[name];
    const info = fromOrtType(tensor.type);
    return info ? [{ name, datatype: info.name, shape: [...tensor.dims], data: tensor.data as NamedTensor['data'] }] : [];
  });
}

export function writeProfile(path: string, profile: DriftProfile): void {
  writeFileSync(path, `${JSON.stringify(profile, null, 2)}\n`);
}
