/** The JSON tensor codec on its own: counts before allocation, element checks, and exact encodings. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { InferenceError } from '../../runtime/src/errors';
import { DATATYPES, type Datatype, elementCount, type Tensor } from '../../runtime/src/tensor/datatypes';
import { inferJsonShape, jsonElements, jsonNested, jsonRow, tensorFromJson } from '../../runtime/src/tensor/json';
import { rawFromTensor, tensorFromRaw } from '../../runtime/src/tensor/raw';
import { checkShape, type TensorSpec } from '../../runtime/src/tensor/signature';

const rejects = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (error: unknown) => error instanceof InferenceError && error.status === 400 && pattern.test(error.message));

describe('tensorFromJson', () => {
  it('accepts flat and nested data in row-major order', () => {
    const flat = tensorFromJson('INT32', [2, 2], [1, 2, 3, 4], 'x');
    const nested = tensorFromJson('INT32', [2, 2], [[1, 2], [3, 4]], 'x');
    assert.deepEqual(Array.from(flat.data as Int32Array), [1, 2, 3, 4]);
    assert.deepEqual(Array.from(nested.data as Int32Array), [1, 2, 3, 4]);
  });

  it('refuses a count that does not fit the shape, naming both', () => {
    rejects(() => tensorFromJson('FP32', [2, 3], [1, 2, 3], "input 'x'"), /input 'x'.*\[2, 3\] needs 6 elements, 'data' has 3/);
  });

  it('checks each element\'s type and range', () => {
    rejects(() => tensorFromJson('UINT8', [1], [256], 'x'), /element 0 is 256, expected an integer from 0 to 255 for UINT8/);
    rejects(() => tensorFromJson('INT32', [1], [1.5], 'x'), /expected an integer/);
    rejects(() => tensorFromJson('BOOL', [1], [1], 'x'), /expected true or false/);
    rejects(() => tensorFromJson('FP32', [2], [1, 'one'], 'x'), /element 1 is "one", expected a number/);
    rejects(() => tensorFromJson('BYTES', [1], [7], 'x'), /expected a string/);
    rejects(() => tensorFromJson('UINT64', [1], ['18446744073709551616'], 'x'), /UINT64/);
  });

  it('keeps 64-bit integers given as digit strings exact', () => {
    const t = tensorFromJson('INT64', [2], ['9223372036854775807', '-9223372036854775808'], 'x');
    assert.deepEqual(Array.from(t.data as BigInt64Array), [9223372036854775807n, -9223372036854775808n]);
    assert.equal(jsonElements(t), '9223372036854775807,-9223372036854775808');
  });

  it('spells non-finite floats and negative zero so that JSON can carry them', () => {
    const t = tensorFromJson('FP32', [4], ['NaN', 'Infinity', '-Infinity', 1.5], 'x');
    assert.equal(jsonElements(t), '"NaN","Infinity","-Infinity",1.5');
    assert.equal(jsonElements({ datatype: 'FP64', shape: [2], data: Float64Array.from([-0, 0]) }), '-0,0');
    const half = tensorFromJson('FP16', [3], [0.5, 65504, 'NaN'], 'x');
    assert.deepEqual(Array.from(half.data as Uint16Array), [0x3800, 0x7bff, 0x7e00]);
    assert.equal(jsonElements(half), '0.5,65504,"NaN"');
  });

  it('takes a bare value for a scalar', () => {
    assert.deepEqual(Array.from(tensorFromJson('FP64', [], 3, 'x').data as Float64Array), [3]);
  });
});

describe('shapes', () => {
  const spec: TensorSpec = { name: 'x', datatype: 'FP32', ortType: 'float32', shape: ['batch', 3] };
  const limits = { maxTensorElements: 1000, maxResponseBytes: 64 * 1024 * 1024 };

  it('checks rank, static dims and the element limit before anything is allocated', () => {
    assert.deepEqual(checkShape(spec, [5, 3], limits), [5, 3]);
    rejects(() => checkShape(spec, [5], limits), /expected rank 2 \[batch, 3\], received rank 1 \[5\]/);
    rejects(() => checkShape(spec, [5, 4], limits), /dim 1 must be 3/);
    rejects(() => checkShape(spec, [-1, 3], limits), /non-negative integers/);
    rejects(() => checkShape(spec, [1.5, 3], limits), /non-negative integers/);
    rejects(() => checkShape(spec, [2 ** 40, 3], limits), /dim 0 of shape \[1099511627776, 3\] exceeds the limit of 1000/);
    rejects(() => checkShape(spec, [0, 3], { ...limits, maxTensorElements: 2 }), /dim 1 .* exceeds the limit of 2/);
    rejects(() => checkShape(spec, [400, 3], limits), /more elements than the limit of 1000/);
    rejects(() => checkShape(spec, 'big', limits), /'shape' must be an array/);
  });

  it('infers TF Serving shapes and refuses ragged nesting', () => {
    assert.deepEqual(inferJsonShape([[1, 2, 3], [4, 5, 6]], 'x'), [2, 3]);
    assert.deepEqual(inferJsonShape(7, 'x'), []);
    rejects(() => inferJsonShape([[1, 2], [3]], 'x'), /ragged/);
    rejects(() => inferJsonShape([[1, 2], 3], 'x'), /ragged/);
  });

  it('encodes nested output and rows as TF Serving nests them', () => {
    const t = { datatype: 'INT32' as const, shape: [2, 2, 1], data: Int32Array.from([1, 2, 3, 4]) };
    assert.equal(jsonNested(t), '[[[1],[2]],[[3],[4]]]');
    assert.equal(jsonRow(t, 1), '[[3],[4]]');
    assert.equal(jsonRow({ datatype: 'BOOL', shape: [2], data: Uint8Array.from([1, 0]) }, 1), 'false');
  });
});

/** The recursive encoder jsonNested replaced: one call per sub-array. The new one must spell every tensor the same. */
function nestedByRecursion(tensor: Tensor, axis = 0, offset = 0): string {
  const { shape } = tensor;
  if (shape.length === 0) return jsonElements(tensor, 0, 1);
  const stride = elementCount(shape.slice(axis + 1));
  if (axis === shape.length - 1) return `[${jsonElements(tensor, offset, offset + shape[axis])}]`;
  const parts = new Array<string>(shape[axis]);
  for (let i = 0; i < shape[axis]; i++) parts[i] = nestedByRecursion(tensor, axis + 1, offset + i * stride);
  return `[${parts.join(',')}]`;
}

describe('nested encoding', () => {
  const tensorOf = (datatype: Datatype, shape: number[], seed: number): Tensor => {
    const count = elementCount(shape);
    const info = DATATYPES[datatype];
    const values = Array.from({ length: count }, (_, i) => ((i * 7919 + seed) % 23) - 11);
    if (info.kind === 'string') return { datatype, shape, data: values.map((v) => `a,"${v}"]`) };
    const data = new info.array!(count);
    values.forEach((v, i) => {
      if (info.kind === 'bigint') (data as BigInt64Array)[i] = BigInt(v < 0 && datatype === 'UINT64' ? -v : v);
      else if (info.kind === 'float') (data as Float32Array)[i] = v === 5 ? Number.NaN : v === -7 ? -0 : v / 3;
      else (data as Int32Array)[i] = v < 0 && datatype.startsWith('U') ? -v : v;
    });
    return { datatype, shape, data };
  };

  it('spells every shape and datatype as the recursive encoder did, rows and sub-arrays too', () => {
    const datatypes = Object.keys(DATATYPES) as Datatype[];
    fc.assert(fc.property(
      fc.constantFrom(...datatypes), fc.array(fc.integer({ min: 0, max: 5 }), { minLength: 0, maxLength: 5 }), fc.nat(),
      (datatype, shape, seed) => {
        const tensor = tensorOf(datatype, shape, seed);
        assert.equal(jsonNested(tensor), nestedByRecursion(tensor));
        if (shape.length > 0 && shape[0] > 0) {
          const row = seed % shape[0];
          const stride = elementCount(shape.slice(1));
          assert.equal(jsonRow(tensor, row), shape.length === 1 ? jsonElements(tensor, row, row + 1) : nestedByRecursion(tensor, 1, row * stride));
        }
      }), { seed: 20261126, numRuns: 500 });
  });

  it('spells tensors larger than one formatting step the same', () => {
    for (const shape of [[70_000, 1], [3, 40_000], [2, 300, 130], [200_001]]) {
      const tensor = tensorOf('FP32', shape, 1);
      assert.equal(jsonNested(tensor), nestedByRecursion(tensor), `shape [${shape}]`);
    }
  });
});

describe('raw tensors', () => {
  it('round-trips BYTES as length-prefixed UTF-8 and refuses bytes that are not UTF-8', () => {
    const strings = ['', 'héllo', '日本'];
    const raw = rawFromTensor({ datatype: 'BYTES', shape: [3], data: strings });
    assert.deepEqual(tensorFromRaw('BYTES', [3], raw, 'x').data, strings);
    const invalid = Uint8Array.from([1, 0, 0, 0, 0xff]);
    rejects(() => tensorFromRaw('BYTES', [1], invalid, "input 'x'"), /input 'x': raw BYTES element 0 is not valid UTF-8/);
    rejects(() => tensorFromRaw('FP32', [2], new Uint8Array(7), "input 'x'"), /needs 8 bytes of raw data, received 7/);
  });
});

describe('limits that a small request cannot dodge', () => {
  const spec: TensorSpec = { name: 'x', datatype: 'INT64', ortType: 'int64', shape: ['a', 'b', 'c'] };
  const roomy = 1 << 30;

  it('counts a zero dim as one, so [N, 0] is held to the element limit', () => {
    assert.deepEqual(checkShape(spec, [5, 0, 2], { maxTensorElements: 10, maxResponseBytes: roomy }), [5, 0, 2]);
    rejects(() => checkShape(spec, [5, 0, 3], { maxTensorElements: 10, maxResponseBytes: roomy }), /more elements than the limit of 10/);
  });

  it('holds an input without elements to what fits --max-response-bytes at 8 bytes an element', () => {
    const limits = { maxTensorElements: roomy, maxResponseBytes: 80 };
    assert.deepEqual(checkShape(spec, [10, 0, 1], limits), [10, 0, 1]);
    assert.deepEqual(checkShape(spec, [5, 0, 2], limits), [5, 0, 2]);
    assert.deepEqual(checkShape(spec, [0, 0, 0], limits), [0, 0, 0]);
    rejects(() => checkShape(spec, [11, 0, 1], limits),
      /^input 'x': shape \[11, 0, 1\] holds no elements but spans 11 along its nonzero dims, more than the 10 an empty input may span \(--max-response-bytes 80 \/ 8 bytes.*raise --max-response-bytes$/);
    // The nonzero dims multiply: reducing [3, 0, 4] over its empty axis answers 3 × 4 elements.
    rejects(() => checkShape(spec, [3, 0, 4], limits), /shape \[3, 0, 4\] holds no elements but spans 12 /);
    // An input with elements is bounded by the body that carries them, not by this rule.
    assert.deepEqual(checkShape(spec, [11, 1, 1], limits), [11, 1, 1]);
  });

  it('refuses strings onnxruntime would alter', () => {
    rejects(() => tensorFromJson('BYTES', [1], ['a\u0000b'], 'x'), /NUL/);
    rejects(() => tensorFromJson('BYTES', [1], ['\ud800'], 'x'), /lone surrogate/);
  });
});
