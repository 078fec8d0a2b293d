/**
 * Large arrays of numbers in a JSON body, read from the body's bytes straight into a tensor's typed array.
 *
 * `JSON.parse` makes a JavaScript value of every element before the tensor exists: the body becomes a string, each
 * number a slot of an array, and each innermost list an array object of its own, so that a body of short rows
 * (TF Serving's `{"instances": [[0.5], [1.5], ...]}`) took many times its own size in memory before a single
 * element reached the tensor. Here the body's bytes are scanned once for arrays that hold only numbers, nested as a
 * rectangle of at least MIN_BLOCK_ELEMENTS; the rest of the body (names, shapes, datatypes, small arrays) is parsed
 * by JSON.parse as before, with each such array replaced by a placeholder. Each placeholder then becomes a
 * read-only array view (a NumericBlock behind a Proxy): protocol code can test it with Array.isArray, read its
 * length and index it as it would the array JSON.parse makes, while tensor/json.ts reads its numbers from the bytes
 * into the typed array the shape calls for, with the same checks and errors as for any other element.
 *
 * Anything else — strings such as "NaN", ragged nesting, a malformed number — leaves that array to JSON.parse, so
 * every check and error message stays the one the rest of the runtime gives; a body that is not valid JSON is
 * parsed again as a whole, so that its error names positions in the body as sent.
 */
import { randomBytes } from 'node:crypto';
import { InferenceError } from '../errors';
import { MAX_RANK } from './signature';

/** Arrays with fewer numbers than this are left to JSON.parse: the view only pays for itself on large ones. */
export const MIN_BLOCK_ELEMENTS = 1024;

const OPEN = 0x5b; // [
const CLOSE = 0x5d; // ]
const COMMA = 0x2c;
const MINUS = 0x2d;
const PLUS = 0x2b;
const DOT = 0x2e;
const ZERO = 0x30;
const NINE = 0x39;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const isDigit = (c: number) => c >= ZERO && c <= NINE;
const isSpace = (c: number) => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/** An array of numbers in a body: where it lies and the rectangle its nesting forms. */
export class NumericBlock {
  constructor(
    readonly bytes: Buffer,
    /** Offset of its '['. */
    readonly start: number,
    /** Offset just past its ']'. */
    readonly end: number,
    readonly shape: readonly number[],
    readonly count: number,
  ) {}

  /**
   * Calls `write` with each number in row-major order, as JSON.parse would have read it. Stops at the first
   * exception `write` throws (an element of the wrong range), which propagates.
   */
  forEachNumber(write: (index: number, value: number) => void, firstIndex = 0): void {
    const bytes = this.bytes;
    let index = firstIndex;
    for (let from = this.start; from < this.end;) {
      // Numbers the exact path cannot read are read from text: a window of it at a time, made only when needed
      // and cut between numbers, costs one string per window instead of one per number.
      let to = Math.min(this.end, from + TEXT_WINDOW_BYTES);
      while (to < this.end && isNumberByte(bytes[to])) to++;
      let text: string | undefined;
      for (let i = from; i < to;) {
        const c = bytes[i];
        if (c === MINUS || isDigit(c)) {
          let value = readNumber(bytes, i);
          if (value !== value) {
            text ??= bytes.toString('latin1', from, to);
            value = Number(text.slice(i - from, numberEnd - from));
          }
          write(index++, value);
          i = numberEnd;
        } else i++;
      }
      from = to;
    }
  }
}

/** Bytes of block text turned into a string at once when numbers must be read from text. */
const TEXT_WINDOW_BYTES = 64 * 1024;
const isNumberByte = (c: number) => isDigit(c) || c === MINUS || c === PLUS || c === DOT || c === 0x65 || c === 0x45;

/** Where the last readNumber stopped; a module variable so that reading a number allocates nothing. */
let numberEnd = 0;

const EXACT_POWERS_OF_TEN = Array.from({ length: 23 }, (_, k) => 10 ** k);
/** Decimal digits an integer below 2^53 always holds exactly. */
const EXACT_DIGITS = 15;

/**
 * The number whose (already validated) JSON text starts at `i`, when the exact path can read it: integer digits
 * below 2^53 scaled by an exact power of ten round once, correctly, as JSON.parse rounds them. NaN (which no JSON
 * number is) when the number is longer: the caller then reads its text with Number(), as JSON.parse's own
 * conversion does. Sets numberEnd either way.
 */
function readNumber(bytes: Uint8Array, i: number): number {
  const negative = bytes[i] === MINUS;
  if (negative) i++;
  let mantissa = 0;
  let digits = 0;
  let scale = 0;
  let c = bytes[i];
  while (isDigit(c)) {
    mantissa = mantissa * 10 + (c - ZERO);
    if (mantissa !== 0) digits++;
    c = bytes[++i];
  }
  if (c === DOT) {
    c = bytes[++i];
    while (isDigit(c)) {
      mantissa = mantissa * 10 + (c - ZERO);
      if (mantissa !== 0) digits++;
      scale--;
      c = bytes[++i];
    }
  }
  if (c === 0x65 || c === 0x45) {
    c = bytes[++i];
    const negativeExponent = c === MINUS;
    if (c === MINUS || c === PLUS) c = bytes[++i];
    let exponent = 0;
    while (isDigit(c)) {
      if (exponent < 1e6) exponent = exponent * 10 + (c - ZERO);
      c = bytes[++i];
    }
    scale += negativeExponent ? -exponent : exponent;
  }
  numberEnd = i;
  if (digits > EXACT_DIGITS || scale < -22 || scale > 22) return Number.NaN;
  const value = scale < 0 ? mantissa / EXACT_POWERS_OF_TEN[-scale] : mantissa * EXACT_POWERS_OF_TEN[scale];
  return negative ? -value : value;
}

/** The number whose JSON text starts at `i`, by either path. */
function numberAt(bytes: Buffer, i: number): number {
  const value = readNumber(bytes, i);
  return value === value ? value : Number(bytes.toString('latin1', i, numberEnd));
}

/** The offset just past a valid JSON number starting at `i`, or -1. */
function skipNumber(bytes: Uint8Array, i: number): number {
  if (bytes[i] === MINUS) i++;
  if (bytes[i] === ZERO) i++;
  else if (isDigit(bytes[i])) while (isDigit(bytes[i])) i++;
  else return -1;
  if (bytes[i] === DOT) {
    i++;
    if (!isDigit(bytes[i])) return -1;
    while (isDigit(bytes[i])) i++;
  }
  if (bytes[i] === 0x65 || bytes[i] === 0x45) {
    i++;
    if (bytes[i] === MINUS || bytes[i] === PLUS) i++;
    if (!isDigit(bytes[i])) return -1;
    while (isDigit(bytes[i])) i++;
  }
  return i;
}

type Scan = { readonly ok: true; readonly end: number; readonly shape: number[]; readonly count: number } | { readonly ok: false; readonly failedAt: number };

/**
 * Reads the array starting at `start` as a rectangle of numbers: every leaf a number at the same depth, every
 * array at one depth as long as the first. Says where it stopped when the array is anything else.
 */
function scanBlock(bytes: Uint8Array, start: number, limit: number): Scan {
  const shape: number[] = [];
  const counts: number[] = [];
  let rank = -1;
  let depth = 0;
  let count = 0;
  /** True where a value (a number or an array) must come next, false where ',' or ']' must. */
  let wantValue = true;
  let i = start;
  while (i < limit) {
    const c = bytes[i];
    if (isSpace(c)) {
      i++;
    } else if (c === OPEN) {
      if (!wantValue || (rank !== -1 && depth >= rank) || depth >= MAX_RANK) return { ok: false, failedAt: i };
      counts[depth++] = 0;
      i++;
    } else if (c === CLOSE) {
      const level = depth - 1;
      const items = counts[level];
      // An empty array, a trailing comma, or a length unlike the first array at this depth.
      if (wantValue || items === 0 || (shape[level] !== undefined && shape[level] !== items)) return { ok: false, failedAt: i };
      shape[level] = items;
      depth--;
      i++;
      if (depth === 0) return { ok: true, end: i, shape, count };
      counts[depth - 1]++;
      wantValue = false;
    } else if (c === COMMA) {
      if (wantValue) return { ok: false, failedAt: i };
      wantValue = true;
      i++;
    } else if (c === MINUS || isDigit(c)) {
      if (!wantValue) return { ok: false, failedAt: i };
      if (rank === -1) rank = depth;
      if (depth !== rank) return { ok: false, failedAt: i };
      const next = skipNumber(bytes, i);
      if (next < 0) return { ok: false, failedAt: i };
      counts[depth - 1]++;
      count++;
      wantValue = false;
      i = next;
    } else {
      return { ok: false, failedAt: i };
    }
    if (wantValue === false && depth > 0 && i < limit && bytes[i] !== COMMA && bytes[i] !== CLOSE && !isSpace(bytes[i])) {
      return { ok: false, failedAt: i };
    }
  }
  return { ok: false, failedAt: limit };
}

/** The large arrays of numbers in a body, in order, outside strings; each array is read at most twice. */
function findBlocks(bytes: Buffer): NumericBlock[] {
  const blocks: NumericBlock[] = [];
  const limit = bytes.length;
  // After a failed scan, arrays that start before where it failed are not tried again: linear time on any body.
  let retryFrom = 0;
  for (let i = 0; i < limit; i++) {
    const c = bytes[i];
    if (c === QUOTE) {
      for (i++; i < limit && bytes[i] !== QUOTE; i++) if (bytes[i] === BACKSLASH) i++;
    } else if (c === OPEN && i >= retryFrom) {
      const scan = scanBlock(bytes, i, limit);
      if (!scan.ok) {
        retryFrom = scan.failedAt;
      } else if (scan.count >= MIN_BLOCK_ELEMENTS) {
        blocks.push(new NumericBlock(bytes, i, scan.end, scan.shape, scan.count));
        i = scan.end - 1;
      } else {
        retryFrom = scan.end;
      }
    }
  }
  return blocks;
}

const views = new WeakMap<object, NumericBlock>();

/** The block behind a value, when the value is one of the array views made here. */
export function numericBlockOf(value: unknown): NumericBlock | undefined {
  return typeof value === 'object' && value !== null ? views.get(value) : undefined;
}

/** How a body's bytes that JSON.parse reads are weighed against the body limit; unset, they are not. */
let weighing: { readonly maxBodyBytes: number; readonly weight: number } | undefined;

/**
 * Counts the bytes of a body that JSON.parse reads (all but its large arrays of numbers) `weight` times against
 * `maxBodyBytes`: JSON.parse makes a JavaScript value of every element, and costs that many times more memory per
 * byte than the arrays read from the bytes. A limit derived from the container's memory (config.ts) sets this, so
 * that a body of any form stays within the memory its limit was derived from; an explicit limit does not.
 */
export function weighParsedJson(maxBodyBytes: number, weight: number): void {
  weighing = { maxBodyBytes, weight };
}

/** The weighing in force on this thread, for the codec threads that parse bodies too. */
export function parsedJsonWeighing(): { readonly maxBodyBytes: number; readonly weight: number } | undefined {
  return weighing;
}

function checkWeight(body: Buffer, blocks: readonly NumericBlock[]): void {
  if (!weighing) return;
  const parsed = blocks.reduce((bytes, block) => bytes - (block.end - block.start), body.byteLength);
  const weighed = body.byteLength + (weighing.weight - 1) * parsed;
  if (weighed > weighing.maxBodyBytes) {
    throw new InferenceError(413, `the request body's ${parsed} bytes of JSON other than arrays of at least ${MIN_BLOCK_ELEMENTS} numbers `
      + `take ${weighing.weight} times the memory of other bytes to read; counted so, the body is ${weighed} bytes, over the limit of ${weighing.maxBodyBytes} bytes `
      + '(--max-body-bytes, derived from the container\'s memory limit). Send tensors as arrays of numbers, or as binary data');
  }
}

/**
 * Parses a JSON body, with its large arrays of numbers as views over the bytes (see the top of this file). `parse`
 * is the parser for the rest of the text (and for the whole body when that text is not valid JSON).
 */
export function parseJsonWithNumericBlocks(bytes: Uint8Array, parse: (text: string) => unknown): unknown {
  const body = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const blocks = findBlocks(body);
  checkWeight(body, blocks);
  if (blocks.length === 0) return parse(body.toString('utf8'));
  const marker = `${randomBytes(12).toString('hex')}#`;
  const parts: Buffer[] = [];
  let from = 0;
  blocks.forEach((block, index) => {
    parts.push(body.subarray(from, block.start), Buffer.from(`"${marker}${index}"`));
    from = block.end;
  });
  parts.push(body.subarray(from));
  let parsed: unknown;
  try {
    parsed = parse(Buffer.concat(parts).toString('utf8'));
  } catch {
    // The error must name positions in the body as sent, not in the text with placeholders.
    return parse(body.toString('utf8'));
  }
  return substitute(parsed, marker, blocks);
}

/** Replaces each placeholder string in a parsed value by its block's view, without recursion. */
function substitute(root: unknown, marker: string, blocks: readonly NumericBlock[]): unknown {
  const viewOf = (value: unknown) =>
    (typeof value === 'string' && value.startsWith(marker) ? blockView(blocks[Number(value.slice(marker.length))]) : undefined);
  const top = viewOf(root);
  if (top) return top;
  const pending: unknown[] = [root];
  while (pending.length > 0) {
    const node = pending.pop();
    if (typeof node !== 'object' || node === null) continue;
    const record = node as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      const value = record[key];
      const view = viewOf(value);
      // Defined, not assigned: assigning to a key named __proto__ would set the object's prototype.
      if (view) Object.defineProperty(record, key, { value: view, writable: true, enumerable: true, configurable: true });
      else if (typeof value === 'object' && value !== null) pending.push(value);
    }
  }
  return root;
}

/** A read-only array over a block: its length and items as JSON.parse's array would have them. */
function blockView(block: NumericBlock): unknown[] {
  const length = block.shape[0];
  const rowShape = block.shape.slice(1);
  const rowCount = block.count / length;
  // Items are found by reading from the start: remember where the last one ended, so a walk in order is linear.
  let cursor = { index: 0, at: block.start + 1 };
  const item = (index: number): unknown => {
    if (index < cursor.index) cursor = { index: 0, at: block.start + 1 };
    const bytes = block.bytes;
    let at = cursor.at;
    for (let k = cursor.index; ; k++) {
      while (bytes[at] === COMMA || isSpace(bytes[at])) at++;
      let value: unknown;
      if (bytes[at] === OPEN) {
        const begin = at;
        for (let depth = 0; ; at++) {
          if (bytes[at] === OPEN) depth++;
          else if (bytes[at] === CLOSE && --depth === 0) break;
        }
        at++;
        if (k === index) value = blockView(new NumericBlock(bytes, begin, at, rowShape, rowCount));
      } else {
        const number = numberAt(bytes, at);
        at = numberEnd;
        if (k === index) value = number;
      }
      if (k === index) {
        cursor = { index: index + 1, at };
        return value;
      }
    }
  };
  const isIndex = (key: string | symbol): boolean => typeof key === 'string' && /^(?:0|[1-9]\d*)$/.test(key) && Number(key) < length;
  const view = new Proxy<unknown[]>([], {
    get(target, key, receiver) {
      if (key === 'length') return length;
      if (isIndex(key)) return item(Number(key as string));
      // Only error messages render a block (preview): as the plain array it stands for.
      if (key === 'toJSON') return () => toPlainArray(block);
      return Reflect.get(target, key, receiver);
    },
    has: (target, key) => isIndex(key) || Reflect.has(target, key),
    getOwnPropertyDescriptor(target, key) {
      if (key === 'length') return { value: length, writable: true, enumerable: false, configurable: false };
      if (isIndex(key)) return { value: item(Number(key as string)), writable: false, enumerable: true, configurable: true };
      return Reflect.getOwnPropertyDescriptor(target, key);
    },
    ownKeys: (target) => [...Array.from({ length }, (_, i) => String(i)), ...Reflect.ownKeys(target)],
    set: () => false,
    defineProperty: () => false,
    deleteProperty: () => false,
  });
  views.set(view, block);
  return view;
}

/** The nested plain array a block stands for. */
function toPlainArray(block: NumericBlock): unknown[] {
  const flat = new Array<number>(block.count);
  block.forEachNumber((index, value) => { flat[index] = value; });
  const nest = (offset: number, axis: number): unknown[] => {
    const size = block.shape[axis];
    if (axis === block.shape.length - 1) return flat.slice(offset, offset + size);
    const stride = block.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    return Array.from({ length: size }, (_, i) => nest(offset + i * stride, axis + 1));
  };
  return nest(0, 0);
}
