/**
 * In-process onnxruntime, the reference every served answer is compared with, and conversions between the
 * protocol's JSON form and onnxruntime tensors.
 */
import * as ort from '../../runtime/src/model/onnxruntime';

const sessions = new Map<string, Promise<ort.InferenceSession>>();

export function referenceSession(path: string): Promise<ort.InferenceSession> {
  let session = sessions.get(path);
  if (!session) {
    session = ort.InferenceSession.create(path, { logSeverityLevel: 4 });
    sessions.set(path, session);
  }
  return session;
}

export async function runReference(path: string, feeds: Record<string, ort.Tensor>): Promise<Record<string, ort.Tensor>> {
  const session = await referenceSession(path);
  return session.run(feeds);
}

/** Deterministic pseudo-random floats in [-1, 1) (mulberry32), so failures reproduce. */
export function randomFloats(count: number, seed: number): Float32Array {
  const out = new Float32Array(count);
  let a = seed >>> 0;
  for (let i = 0; i < count; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

/** A served v2 output's data as a plain number array, decoding the non-finite spellings. */
export function servedNumbers(data: unknown[]): number[] {
  return data.map((v) => (typeof v === 'string' ? Number(v) : (v as number)));
}
