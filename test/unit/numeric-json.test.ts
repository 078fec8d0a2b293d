/**
 * Large arrays of numbers read from a body's bytes (tensor/numeric-json.ts) must be indistinguishable from what
 * JSON.parse makes: the same numbers to the last bit, the same shapes, and the same errors, for every form.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { parseJsonBody } from '../../runtime/src/protocols/json-body';
import type { Datatype } from '../../runtime/src/tensor/datatypes';
import { inferJsonShape, tensorFromJson } from '../../runtime/src/tensor/json';
import { InferenceError } from '../../runtime/src/errors';
import { MIN_BLOCK_ELEMENTS, numericBlockOf, parseJsonWithNumericBlocks, weighParsedJson } from '../../runtime/src/tensor/numeric-json';

const parseBlocks = (text: string) => parseJsonWithNumericBlocks(Buffer.from(text), JSON.parse);

/** What a decode gives: the tensor's elements, or the error's message. */
function outcome(decode: () => { data: unknown }): unknown {
  try {
    const { data } = decode();
    return Array.from(data as ArrayLike<unknown>);
  } catch (error) {
    return (error as Error).message;
  }
}

/** Decodes `value` the way TF Serving's doors do (shape from the nesting), then as a v2 input of that shape. */
function decodeBoth(value: unknown, datatype: Datatype): unknown[] {
  let shape: number[];
  try {
    shape = inferJsonShape(value, "input 'x'");
  } catch (error) {
    return [(error as Error).message];
  }
  return [shape, outcome(() => tensorFromJson(datatype, shape, value, "input 'x'")), outcome(() => tensorFromJson(datatype, [shape.reduce((a, b) => a * b, 1)], value, "input 'x'"))];
}

/** JSON number texts in the forms clients write: shortest doubles, fixed and exponent forms, long digit runs. */
const numberText = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }).map((v) => JSON.stringify(v)),
  fc.float({ noNaN: true, noDefaultInfinity: true }).map((v) => JSON.stringify(v)),
  fc.integer({ min: -1000, max: 1000 }).map(String),
  fc.tuple(fc.integer({ min: -99999, max: 99999 }), fc.integer({ min: -330, max: 330 }), fc.constantFrom('e', 'E', 'e+', 'E-')).map(([m, e, sign]) => `${m}${sign}${sign.length === 2 ? Math.abs(e) : e}`),
  fc.tuple(fc.integer({ min: 0, max: 9 }), fc.stringMatching(/^[0-9]{1,30}$/)).map(([i, f]) => `${i}.${f}`),
  fc.stringMatching(/^-?[1-9][0-9]{14,25}$/),
  fc.constantFrom('0', '-0', '0.0', '-0.0', '1e400', '-1e400', '1e-400', '4.9e-324', '1.7976931348623157e308', '9007199254740993', '0.1', '1E2'),
);

describe('numeric blocks', () => {
  it('read every number as JSON.parse does, to the bit', () => {
    fc.assert(fc.property(fc.array(numberText, { minLength: 1, maxLength: 200 }), (texts) => {
      // Enough numbers to span several of the windows in which long numbers are read as text.
      const padded = Array.from({ length: 8 * MIN_BLOCK_ELEMENTS }, (_, i) => texts[i % texts.length]);
      const text = `{"data":[${padded.join(',')}]}`;
      const viaBlocks = parseBlocks(text) as { data: unknown[] };
      assert.ok(numericBlockOf(viaBlocks.data), 'the array became a block');
      const expected = (JSON.parse(text) as { data: number[] }).data;
      const got = Array.from(tensorFromJson('FP64', [expected.length], viaBlocks.data, 'x').data as Float64Array);
      got.forEach((value, i) => assert.ok(Object.is(value, expected[i]), `${padded[i]}: ${value} ≠ ${expected[i]}`));
    }), { seed: 1126, numRuns: 200 });
  });

  it('give the same shapes, elements and errors as JSON.parse for every datatype and nesting', () => {
    const datatypes: Datatype[] = ['FP32', 'FP64', 'FP16', 'INT8', 'UINT8', 'INT32', 'INT64', 'UINT64', 'BOOL', 'BYTES'];
    // Rectangles of small numbers, sometimes spoilt: a string, NaN as text, a ragged row, an out-of-range value.
    const body = fc.record({
      dims: fc.array(fc.integer({ min: 1, max: 12 }), { minLength: 1, maxLength: 3 }),
      spoil: fc.constantFrom('none', 'none', 'string', 'nan', 'ragged', 'big', 'fraction', 'deep'),
      at: fc.nat(),
      datatype: fc.constantFrom(...datatypes),
      wrap: fc.constantFrom('instances', 'objects', 'data'),
    });
    fc.assert(fc.property(body, ({ dims, spoil, at, datatype, wrap }) => {
      const rows = Math.ceil(MIN_BLOCK_ELEMENTS / dims.reduce((a, b) => a * b, 1)) + 1;
      const shape = [rows, ...dims];
      const count = shape.reduce((a, b) => a * b, 1);
      const leaves: unknown[] = Array.from({ length: count }, (_, i) => (i * 37) % 100 - 50);
      const spoilt = at % count;
      if (spoil === 'string') leaves[spoilt] = 'one';
      if (spoil === 'nan') leaves[spoilt] = 'NaN';
      if (spoil === 'big') leaves[spoilt] = 3e9;
      if (spoil === 'fraction') leaves[spoilt] = 0.25;
      if (spoil === 'deep') leaves[spoilt] = [1];
      const nest = (offset: number, axis: number): unknown => {
        if (axis === shape.length) return leaves[offset];
        const stride = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
        const items = Array.from({ length: shape[axis] }, (_, i) => nest(offset + i * stride, axis + 1));
        const holdsSpoilt = axis === shape.length - 1 && spoilt >= offset && spoilt < offset + shape[axis];
        return spoil === 'ragged' && holdsSpoilt ? items.slice(1) : items;
      };
      const tensor = nest(0, 0) as unknown[];
      const value = wrap === 'objects' ? { instances: tensor.map((row) => ({ x: row })) } : { [wrap]: tensor };
      const text = JSON.stringify(value);
      const pick = (parsed: any) => (wrap === 'objects' ? parsed.instances.map((row: any) => row.x) : parsed[wrap]);
      assert.deepEqual(decodeBoth(pick(parseBlocks(text)), datatype), decodeBoth(pick(JSON.parse(text)), datatype));
    }), { seed: 2611, numRuns: 300 });
  });

  it('stack rows that are blocks of different shapes with the errors of arrays that differ the same way', () => {
    const block = (dims: number[]): unknown => (dims.length === 0 ? 1.5 : Array.from({ length: dims[0] }, () => block(dims.slice(1))));
    const cases = [[[2, 600], [2, 600]], [[2, 600], [3, 600]], [[2, 600], [2, 601]], [[2, 600], [2, 600, 1]], [[2, 600, 1], [2, 600]], [[1200], [2, 600]], [[2, 600], [1200]]];
    for (const shapes of cases) {
      const text = JSON.stringify({ instances: shapes.map((dims) => ({ x: block(dims) })) });
      const rowsOf = (parsed: any) => parsed.instances.map((row: any) => row.x);
      const viaBlocks = rowsOf(parseBlocks(text));
      assert.ok(viaBlocks.every((row: unknown) => numericBlockOf(row)), `rows of [${shapes.join('], [')}] are blocks`);
      assert.deepEqual(decodeBoth(viaBlocks, 'FP32'), decodeBoth(rowsOf(JSON.parse(text)), 'FP32'), `rows of [${shapes.join('], [')}]`);
    }
  });

  it('look like the arrays JSON.parse makes to the code that reads them', () => {
    const rows = Array.from({ length: 600 }, (_, i) => [i, -i - 1]);
    const view = (parseBlocks(JSON.stringify({ instances: rows })) as { instances: unknown[] }).instances;
    assert.ok(numericBlockOf(view));
    assert.equal(Array.isArray(view), true);
    assert.equal(view.length, 600);
    assert.deepEqual(view[599], [599, -600]);
    assert.deepEqual(view[3], [3, -4]);
    assert.equal(view.every((row) => typeof row === 'object' && !Array.isArray(row)), false);
    assert.equal(JSON.stringify(view), JSON.stringify(rows));
    assert.deepEqual([...view].map((row) => (row as number[])[1]), rows.map((row) => row[1]));
    assert.throws(() => { 'use strict'; (view as unknown[])[0] = 1; }, TypeError);
  });

  it('leave small arrays, strings and everything around the numbers to JSON.parse', () => {
    const numbers = Array.from({ length: MIN_BLOCK_ELEMENTS }, (_, i) => i / 8);
    const text = JSON.stringify({ id: 'a [1, 2] "quoted" \\ text', shape: [1, MIN_BLOCK_ELEMENTS], nested: { data: numbers }, small: [1, 2, 3], strings: ['x', '[', ']'] });
    const parsed = parseBlocks(text) as any;
    assert.deepEqual(JSON.parse(JSON.stringify(parsed)), JSON.parse(text));
    assert.equal(numericBlockOf(parsed.small), undefined);
    assert.equal(numericBlockOf(parsed.shape), undefined);
    assert.ok(numericBlockOf(parsed.nested.data));
  });

  it('report a body that is not JSON as JSON.parse reports the body as sent', () => {
    const numbers = Array.from({ length: MIN_BLOCK_ELEMENTS * 40 }, (_, i) => i).join(',');
    for (const text of [`{"data":[${numbers}],}`, `{"data":[${numbers}]`, `{"data":[${numbers},]}`, `{"data":[${numbers}] "x"}`, `{"data":[${numbers.replace(',5,', ',05,')}]}`]) {
      const expected = (() => { try { JSON.parse(text); return 'parsed'; } catch (error) { return (error as Error).message; } })();
      assert.throws(() => parseBlocks(text), (error: Error) => error.message === expected);
      assert.throws(() => parseJsonBody(Buffer.from(text)), (error: Error) => error.message === `the request body is not valid JSON: ${expected}`);
    }
  });

  it('cannot reach a prototype through a key that holds numbers', () => {
    const numbers = Array.from({ length: MIN_BLOCK_ELEMENTS * 40 }, (_, i) => i).join(',');
    const parsed = parseJsonBody(Buffer.from(`{"__proto__":[${numbers}],"constructor":{"prototype":[${numbers}]},"a":1}`)) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
    assert.equal(Object.hasOwn(parsed, '__proto__'), false);
    assert.equal(({} as Record<string, unknown>).length, undefined);
    assert.equal(parsed.a, 1);
  });

  it('weigh the bytes JSON.parse reads against a derived body limit, and only those', () => {
    const numbers = Array.from({ length: 20 * MIN_BLOCK_ELEMENTS }, (_, i) => i % 10).join(",");
    const numeric = `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,${20 * MIN_BLOCK_ELEMENTS}],"data":[${numbers}]}]}`;
    const generic = `{"instances":[${Array.from({ length: 4000 }, (_, i) => `{"x":[${i % 10}]}`).join(',')}]}`;
    const limit = Math.max(Buffer.byteLength(numeric), Buffer.byteLength(generic)) + 1024;
    try {
      weighParsedJson(limit, 4);
      assert.ok(numericBlockOf((parseJsonBody(Buffer.from(numeric)) as any).inputs[0].data), 'a body of numbers passes at the limit');
      assert.throws(() => parseJsonBody(Buffer.from(generic)), (error: unknown) => error instanceof InferenceError && error.status === 413
        && new RegExp(`the request body's ${Buffer.byteLength(generic)} bytes of JSON other than arrays of at least ${MIN_BLOCK_ELEMENTS} numbers take 4 times .* over the limit of ${limit} bytes \\(--max-body-bytes`).test(error.message));
      weighParsedJson(4 * Buffer.byteLength(generic), 4);
      assert.equal((parseJsonBody(Buffer.from(generic)) as any).instances.length, 4000, 'and JSON.parse\'s bytes pass at a quarter of it');
    } finally {
      weighParsedJson(Number.POSITIVE_INFINITY, 1);
    }
  });
});
