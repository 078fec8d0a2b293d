/**
 * What the explainers share: the model as an async batch function, running rows through it in batches, a seeded
 * PRNG, and argument checks whose errors name the parameter.
 */

/**
 * The model being explained, as the explainers see it: one scalar (the output being explained) per input row, in
 * order. Each row is a full input (a feature vector, or a flattened tensor). The server runs these through its queue.
 */
export type BatchFunction = (rows: Float64Array[]) => Promise<Float64Array | ArrayLike<number>>;

/** Runs rows through f in batches of at most batchSize; checks that f answers one finite number per row. */
export async function runBatched(f: BatchFunction, rows: Float64Array[], batchSize: number, what: string): Promise<Float64Array> {
  const out = new Float64Array(rows.length);
  for (let start = 0; start < rows.length; start += batchSize) {
    const chunk = rows.slice(start, start + batchSize);
    const answer = await f(chunk);
    checkAnswer(answer, chunk.length, what);
    out.set(answer as ArrayLike<number>, start);
  }
  return out;
}

export function checkAnswer(answer: ArrayLike<number> | undefined, expected: number, what: string): void {
  if (answer == null || typeof answer.length !== 'number') {
    throw new TypeError(`${what}: the model function must resolve to one number per row, got ${String(answer)}`);
  }
  if (answer.length !== expected) {
    throw new RangeError(`${what}: the model function answered ${answer.length} values for ${expected} rows`);
  }
  for (let i = 0; i < answer.length; i++) {
    if (!Number.isFinite(answer[i])) {
      throw new RangeError(`${what}: the model function answered ${answer[i]} for row ${i}; attributions need finite outputs`);
    }
  }
}

/** mulberry32: a small, well-known 32-bit PRNG; uniform floats in [0, 1), the same sequence for the same seed. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
}

export function checkPositiveInteger(value: unknown, name: string, min = 1): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new RangeError(`${name} must be an integer >= ${min}, got ${String(value)}`);
  }
  return value;
}

export function checkFiniteVector(value: unknown, name: string): Float64Array {
  if (!(value instanceof Float64Array || value instanceof Float32Array || Array.isArray(value))) {
    throw new TypeError(`${name} must be a Float64Array (or Float32Array / number[]), got ${typeof value}`);
  }
  const out = Float64Array.from(value as ArrayLike<number>);
  const bad = out.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw new RangeError(`${name}[${bad}] is ${out[bad]}; it must be finite`);
  return out;
}
