/**
 * `modelship profile`: a drift profile from reference data. Each line of the data file is one request, read by the
 * same codecs and checked by the same signature checks as a served request (so data the server would refuse is
 * refused here, with the same reason), then run through the model in-process to profile its outputs too.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { checkDriftProfile, readOnnxFile, type DriftProfile, type OnnxFileInfo } from '@modelship/contract';
import { ProfileBuilder } from './drift';
import * as ort from './model/onnxruntime';
import { signatureOf } from './model/signature-of';
import { readRequests, runInProcess } from './reference-data';

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
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 4 });
  try {
    const signature = signatureOf(session);
    const builder = new ProfileBuilder();
    for (const [i, inputs] of readRequests(dataPath, '--data', signature).entries()) {
      try {
        builder.add(inputs, await runInProcess(session, inputs));
      } catch (error) {
        throw new Error(`${dataPath} request ${i + 1}: ${(error as Error).message}`);
      }
    }
    const profile = checkDriftProfile(builder.build(file.sha256), 'the profile built');
    return {
      profile, rows: profile.rows, tensors: profile.tensors.length,
      features: profile.tensors.reduce((sum, tensor) => sum + tensor.features.length, 0),
    };
  } finally {
    await session.release();
  }
}

export function writeProfile(path: string, profile: DriftProfile): void {
  writeFileSync(path, `${JSON.stringify(profile, null, 2)}\n`);
}
