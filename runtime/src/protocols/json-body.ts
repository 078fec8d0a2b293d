/** JSON request bodies: parsed safely, with errors that say what was wrong and where. */
import sjson from 'secure-json-parse';
import { badRequest } from '../errors';

/**
 * Parses a body as JSON. `__proto__` and `constructor.prototype` keys are dropped rather than honoured, so no
 * request can reach an object's prototype.
 */
export function parseJsonBody(body: Buffer | string | undefined): unknown {
  const text = typeof body === 'string' ? body : body?.toString('utf8') ?? '';
  if (text.trim() === '') throw badRequest('the request body is empty; expected a JSON object');
  try {
    return sjson.parse(text, undefined, { protoAction: 'remove', constructorAction: 'remove' });
  } catch (error) {
    throw badRequest(`the request body is not valid JSON: ${(error as Error).message}`);
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
