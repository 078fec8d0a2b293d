/**
 * Tensors in JSON: OIP v2's flat-or-nested `data`, TF Serving's nested arrays, and back. Counts are checked
 * against the declared shape before the typed array is allocated; every element is type- and range-checked.
 * Floats that JSON cannot spell travel as the strings "NaN", "Infinity" and "-Infinity".
 */
import { getFloat16, setFloat16 } from '@petamoriken/float16';
import { badRequest } from '../errors';
import { DATATYPES, type Datatype, type DatatypeInfo, elementCount, type Tensor, type TensorData, type TypedArray } from './datatypes';
import { numericBlockOf } from './numeric-json';
import { MAX_RANK, preview } from './signature';
import type { TensorSource } from '../core/request';

const NON_FINITE: Readonly<Record<string, number>> = { NaN: Number.NaN, Infinity: Infinity, '-Infinity': -Infinity };
const INTEGER_TEXT = /^-?\d{1,20}$/;

/** Counts the leaves of a flat or nested array without allocating. Returns -1 when nesting is too deep. */
function countLeaves(value: unknown[], depth = 0): number {
  if (depth > MAX_RANK) return -1;
  const block = numericBlockOf(value);
  if (block) return depth + block.shape.length - 1 > MAX_RANK ? -1 : block.count;
  let count = 0;
  for (const item of value) {
    if (!Array.isArray(item)) {
      count++;
      continue;
    }
    const inner = countLeaves(item, depth + 1);
    if (inner < 0) return -1;
    count += inner;
  }
  return count;
}

/** Throws a 400 unless `data` (flat or nested, or a bare value for a scalar) holds exactly the shape's elements. */
function checkJsonData(shape: readonly number[], data: unknown, where: string): unknown[] {
  const expected = elementCount(shape);
  if (!Array.isArray(data)) {
    // A scalar tensor may be given as a bare value, as TF Serving's columnar form does.
    if (shape.length === 0 && data !== undefined && data !== null) return [data];
    throw badRequest(`${where}: 'data' must be an array, received ${preview(data)}`);
  }
  const received = countLeaves(data);
  if (received < 0) throw badRequest(`${where}: 'data' is nested deeper than ${MAX_RANK} levels`);
  if (received !== expected) {
    throw badRequest(`${where}: shape [${shape.join(', ')}] needs ${expected} elements, 'data' has ${received}`);
  }
  return data;
}

/** Elements given as JSON (OIP v2 `data`, TF Serving's nested lists, gRPC's typed contents read the same way). */
export function jsonSource(data: unknown): TensorSource {
  return {
    check: (_datatype, shape, where) => { checkJsonData(shape, data, where); },
    decode: (datatype, shape, where) => tensorFromJson(datatype, shape, data, where).data,
  };
}

/**
 * Fills a new tensor of `datatype` and `shape` from a flat or nested JSON array. `where` names the input in errors.
 */
export function tensorFromJson(datatype: Datatype, shape: readonly number[], data: unknown, where: string): Tensor {
  const items = checkJsonData(shape, data, where);
  const info = DATATYPES[datatype];
  const expected = elementCount(shape);
  const target: TensorData = info.array ? new info.array(expected) : new Array<string>(expected);
  const write = elementWriter(info, target, where);
  let index = 0;
  const visit = (items: unknown[]): void => {
    const block = numericBlockOf(items);
    if (block) {
      // Straight from the body's bytes into the typed array, through the same element checks.
      block.forEachNumber(write, index);
      index += block.count;
      return;
    }
    for (const item of items) {
      if (Array.isArray(item)) visit(item);
      else write(index++, item);
    }
  };
  visit(items);
  return { datatype, shape, data: target };
}

type Writer = (index: number, value: unknown) => void;

function elementWriter(info: DatatypeInfo, target: TensorData, where: string): Writer {
  const fail = (index: number, value: unknown, expected: string): never => {
    throw badRequest(`${where}: element ${index} is ${preview(value)}, expected ${expected} for ${info.name}`);
  };
  switch (info.kind) {
    case 'float': {
      const array = target as Float32Array | Float64Array;
      return (i, v) => {
        if (typeof v === 'number') array[i] = v;
        else if (typeof v === 'string' && Object.hasOwn(NON_FINITE, v)) array[i] = NON_FINITE[v];
        else fail(i, v, 'a number');
      };
    }
    case 'half': {
      const view = new DataView((target as Uint16Array).buffer);
      return (i, v) => {
        if (typeof v === 'number') setFloat16(view, i * 2, v, true);
        else if (typeof v === 'string' && Object.hasOwn(NON_FINITE, v)) setFloat16(view, i * 2, NON_FINITE[v], true);
        else fail(i, v, 'a number');
      };
    }
    case 'int': {
      const array = target as TypedArray as Int32Array;
      const min = info.min as number;
      const max = info.max as number;
      return (i, v) => {
        if (typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max) array[i] = v;
        else fail(i, v, `an integer from ${min} to ${max}`);
      };
    }
    case 'bigint': {
      const array = target as BigInt64Array | BigUint64Array;
      const min = info.min as bigint;
      const max = info.max as bigint;
      return (i, v) => {
        // JSON numbers beyond 2^53 have already lost precision in the parser; digits in a string stay exact.
        let value: bigint | undefined;
        if (typeof v === 'number' && Number.isInteger(v)) value = BigInt(v);
        else if (typeof v === 'string' && INTEGER_TEXT.test(v)) value = BigInt(v);
        if (value === undefined || value < min || value > max) fail(i, v, `an integer from ${min} to ${max}`);
        array[i] = value as bigint;
      };
    }
    case 'bool': {
      const array = target as Uint8Array;
      return (i, v) => {
        if (typeof v === 'boolean') array[i] = v ? 1 : 0;
        else fail(i, v, 'true or false');
      };
    }
    case 'string': {
      const array = target as string[];
      return (i, v) => {
        if (typeof v !== 'string') fail(i, v, 'a string');
        // onnxruntime holds string elements as C strings: a NUL would silently cut the element short.
        else if (v.includes('\0')) fail(i, '(a string with a NUL character)', 'a string without NUL characters');
        // A lone surrogate has no UTF-8 form: it would come back as U+FFFD.
        else if (!(v as string & { isWellFormed(): boolean }).isWellFormed()) fail(i, '(a string with a lone surrogate)', 'well-formed Unicode text');
        else array[i] = v;
      };
    }
  }
}

/**
 * The shape of a nested JSON array (TF Serving's form), checking that it is not ragged. A non-array is a scalar.
 */
export function inferJsonShape(value: unknown, where: string): number[] {
  const shape: number[] = [];
  let probe = value;
  while (Array.isArray(probe)) {
    if (shape.length >= MAX_RANK) throw badRequest(`${where}: nested deeper than ${MAX_RANK} levels`);
    const block = numericBlockOf(probe);
    if (block) {
      if (shape.length + block.shape.length > MAX_RANK) throw badRequest(`${where}: nested deeper than ${MAX_RANK} levels`);
      shape.push(...block.shape);
      break;
    }
    shape.push(probe.length);
    probe = probe[0];
  }
  const check = (item: unknown, axis: number): void => {
    const block = numericBlockOf(item);
    if (block) {
      checkBlock(block.shape, axis);
      return;
    }
    if (axis === shape.length) {
      if (Array.isArray(item)) throw badRequest(`${where}: ragged nesting, more levels than [${shape.join(', ')}]`);
      return;
    }
    if (!Array.isArray(item) || item.length !== shape[axis]) {
      throw badRequest(`${where}: ragged nesting, every level ${axis} array must have ${shape[axis]} items like the first (shape [${shape.join(', ')}])`);
    }
    for (const inner of item) check(inner, axis + 1);
  };
  // A block is a rectangle: the first place it differs from `shape` is where the walk above would have stopped.
  const checkBlock = (dims: readonly number[], axis: number): void => {
    for (let k = 0; ; k++) {
      const at = axis + k;
      if (at === shape.length) {
        if (k < dims.length) throw badRequest(`${where}: ragged nesting, more levels than [${shape.join(', ')}]`);
        return;
      }
      if (k >= dims.length || dims[k] !== shape[at]) {
        throw badRequest(`${where}: ragged nesting, every level ${at} array must have ${shape[at]} items like the first (shape [${shape.join(', ')}])`);
      }
    }
  };
  check(value, 0);
  return shape;
}

/**
 * Elements formatted per step when a tensor's text is built. Each step makes temporary arrays and strings that are
 * garbage as soon as the step's text is appended; a step this small keeps them in V8's young generation, which is
 * collected at once, rather than in its large-object space, which is collected late.
 */
const CHUNK_ELEMENTS = 4096;
/** Rows narrower than this are formatted a chunk at a time rather than one call per row. */
const NARROW_ROW = 64;

/** JSON text of the elements `[start, end)` of a tensor's flat data, without the brackets. */
export function jsonElements(tensor: Tensor, start = 0, end = elementCount(tensor.shape)): string {
  let text = elementsText(tensor, start, Math.min(end, start + CHUNK_ELEMENTS));
  for (let from = start + CHUNK_ELEMENTS; from < end; from += CHUNK_ELEMENTS) text = appendText(text, elementsText(tensor, from, Math.min(end, from + CHUNK_ELEMENTS)));
  return text;
}

/**
 * `text` and `more` joined by a comma, as a rope: V8 links the two strings instead of copying them, and the whole
 * answer is copied once, when it is written out. A join would copy it once more while every step's text is alive.
 */
function appendText(text: string, more: string): string {
  return text + ',' + more;
}

function elementsText(tensor: Tensor, start: number, end: number): string {
  const info = DATATYPES[tensor.datatype];
  const data = tensor.data;
  switch (info.kind) {
    case 'float': {
      const values = (data as Float32Array).subarray(start, end);
      // JSON.stringify of a plain array is about 3× faster than TypedArray.join, and spells every double the same
      // shortest way; but it writes NaN and ±Infinity as null and -0 as 0, so those take the slow path.
      if (!hasNonJsonFloat(values)) return JSON.stringify(Array.from(values)).slice(1, -1);
      return Array.from(values, jsonFloat).join(',');
    }
    case 'half': {
      const bits = data as Uint16Array;
      const view = new DataView(bits.buffer, bits.byteOffset, bits.byteLength);
      const parts = new Array<string>(end - start);
      for (let i = start; i < end; i++) parts[i - start] = jsonFloat(getFloat16(view, i * 2, true));
      return parts.join(',');
    }
    case 'int':
      return JSON.stringify(Array.from((data as Int32Array).subarray(start, end))).slice(1, -1);
    case 'bigint':
      // BigInt's toString has no 'n' suffix, so 64-bit integers come out with every digit exact.
      return (data as BigInt64Array).subarray(start, end).join(',');
    case 'bool':
      return Array.from((data as Uint8Array).subarray(start, end), (v) => (v ? 'true' : 'false')).join(',');
    case 'string':
      return (data as string[]).slice(start, end).map((s) => JSON.stringify(s)).join(',');
  }
}

function jsonFloat(value: number): string {
  if (Object.is(value, -0)) return '-0';
  return Number.isFinite(value) ? String(value) : `"${value}"`;
}

/** True when a value JSON cannot spell as a plain number is present: NaN, ±Infinity or -0. */
function hasNonJsonFloat(values: Float32Array | Float64Array): boolean {
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v - v !== 0 || (v === 0 && 1 / v < 0)) return true;
  }
  return false;
}

/** The text of each element in `[start, end)` (end > start), for assembling rows. */
function elementTexts(tensor: Tensor, start: number, end: number): string[] {
  if (DATATYPES[tensor.datatype].kind === 'string') return (tensor.data as string[]).slice(start, end).map((s) => JSON.stringify(s));
  // No other kind's element text holds a comma.
  return elementsText(tensor, start, end).split(',');
}

const OPENING = Array.from({ length: MAX_RANK + 1 }, (_, n) => '['.repeat(n));
const CLOSING = Array.from({ length: MAX_RANK + 1 }, (_, n) => ']'.repeat(n));

/**
 * JSON text of a tensor as a nested array following its shape (TF Serving's form); a scalar as a bare value. With
 * `axis` and `offset`, the sub-array at that flat offset whose shape is the tensor's from `axis` on.
 *
 * Built a chunk of innermost rows at a time, each row with the brackets that open before it and close after it,
 * rather than by recursion: a recursive build makes a few objects per row, and a tensor of millions of short rows
 * (a [-1, 1] output) then took seconds and gigabytes of heap for text a fraction of that size.
 */
export function jsonNested(tensor: Tensor, axis = 0, offset = 0): string {
  const { shape } = tensor;
  if (shape.length === 0) return jsonElements(tensor, 0, 1);
  const dims = shape.slice(axis);
  const width = dims[dims.length - 1];
  // rowsUnder[a]: the innermost rows under one array at axis a; a row starts an array at each axis it is a multiple of.
  const rowsUnder: number[] = [];
  for (let a = dims.length - 2; a >= 0; a--) rowsUnder.unshift(dims[a] * (rowsUnder[0] ?? 1));
  const rows = rowsUnder[0] ?? 1;
  if (rows === 0) return nestedEmpty(dims);
  // Rows between the starts of two innermost enclosing arrays need no brackets but their own.
  const segment = rowsUnder.at(-1) ?? rows;
  const arraysStartingAt = (row: number): number => {
    if (row % segment !== 0) return 0;
    let count = 0;
    for (const under of rowsUnder) if (row % under === 0) count++;
    return count;
  };
  const narrow = width > 0 && width < NARROW_ROW;
  const rowsPerChunk = Math.max(1, Math.floor(CHUNK_ELEMENTS / Math.max(1, width)));
  let text: string | undefined;
  for (let first = 0; first < rows; first += rowsPerChunk) {
    const end = Math.min(rows, first + rowsPerChunk);
    const texts = narrow ? elementTexts(tensor, offset + first * width, offset + end * width) : undefined;
    const pieces: string[] = [];
    for (let row = first; row < end;) {
      const opening = arraysStartingAt(row);
      const open = OPENING[opening] ?? '['.repeat(opening);
      if (width === 1 && texts !== undefined) {
        // A run of one-element rows up to the next enclosing array's end, in one join: [a],[b],[c].
        const last = Math.min(end, (Math.floor(row / segment) + 1) * segment);
        const closing = arraysStartingAt(last);
        const run = row === first && last === end ? texts : texts.slice(row - first, last - first);
        pieces.push(`${open}[${run.join('],[')}]${CLOSING[closing] ?? ']'.repeat(closing)}`);
        row = last;
        continue;
      }
      const at = row - first;
      const start = offset + row * width;
      const elements = width === 0 ? ''
        : texts === undefined ? jsonElements(tensor, start, start + width) : texts.slice(at * width, (at + 1) * width).join(',');
      // The arrays that end after this row are those that start at the next one (all of them after the last row).
      const closing = arraysStartingAt(row + 1);
      pieces.push(`${open}[${elements}]${CLOSING[closing] ?? ']'.repeat(closing)}`);
      row++;
    }
    const chunk = pieces.join(',');
    text = text === undefined ? chunk : appendText(text, chunk);
  }
  return text!;
}

/** A tensor without elements: brackets down to the first zero dim. */
function nestedEmpty(dims: readonly number[]): string {
  if (dims.length <= 1 || dims[0] === 0) return '[]';
  const inner = nestedEmpty(dims.slice(1));
  return `[${new Array<string>(dims[0]).fill(inner).join(',')}]`;
}

/** One row (index along the first axis) of a tensor as nested JSON. */
export function jsonRow(tensor: Tensor, row: number): string {
  const rowShape = tensor.shape.slice(1);
  const stride = elementCount(rowShape);
  if (rowShape.length === 0) return jsonElements(tensor, row, row + 1);
  return jsonNested(tensor, 1, row * stride);
}
