/** JSON request bodies: parsed safely, with errors that say what was wrong and where. */
import sjson from 'secure-json-parse';
import { badRequest } from '../errors';
import { parseJsonWithNumericBlocks } from '../tensor/numeric-json';

/** Bodies from this size on have their large arrays of numbers read from the bytes (tensor/numeric-json.ts). */
const SCAN_FROM_BYTES = 32 * 1024;

/**
 * Parses a body as JSON. `__proto__` and `constructor.prototype` keys are dropped rather than honoured, so no
 * request can reach an object's prototype.
 */
export function parseJsonBody(body: Uint8Array | string | undefined): unknown {
  if (typeof body === 'object' && body.byteLength >= SCAN_FROM_BYTES) return parseJsonWithNumericBlocks(body, parseJsonText);
  return parseJsonText(typeof body === 'string' ? body : body ? Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8') : '');
}

function parseJsonText(text: string): unknown {
  if (text.trim() === '') throw badRequest('the request body is empty; expected a JSON object');
  try {
    return mayReachPrototype(text) ? sjson.parse(text, undefined, { protoAction: 'remove', constructorAction: 'remove' }) : JSON.parse(text);
  } catch (error) {
    throw badRequest(`the request body is not valid JSON: ${(error as Error).message}`);
  }
}

/**
 * Whether a text could carry a `__proto__` or `constructor` key. secure-json-parse scans the whole text with
 * regular expressions, a noticeable share of a multi-megabyte tensor body's parse; a text that spells neither word and
 * has no `\u` escape, the only other way to spell a key, is as safe under plain JSON.parse.
 */
function mayReachPrototype(text: string): boolean {
  return text.includes('__proto__') || text.includes('constructor') || text.includes('\\u');
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A JSON answer as fastify sends it: text, or the UTF-8 bytes a codec thread wrote (as a Buffer, without a copy). */
export function jsonPayload(json: string | Uint8Array): string | Buffer {
  return typeof json === 'string' ? json : Buffer.from(json.buffer, json.byteOffset, json.byteLength);
}
