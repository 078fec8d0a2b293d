/**
 * Errors that carry the HTTP status they map to. Every layer below the protocol doors throws these, so each door
 * only translates a status into its own wire form (an HTTP status with `{"error"}`, or a gRPC code).
 */
export class InferenceError extends Error {
  constructor(
    readonly status: 400 | 404 | 405 | 413 | 415 | 429 | 500 | 503,
    message: string,
    /** Seconds a client should wait before retrying (429, 503). */
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
    this.name = 'InferenceError';
  }
}

export const badRequest = (message: string) => new InferenceError(400, message);
export const notFound = (message: string) => new InferenceError(404, message);

// Shared with the settings parser in @modelship/contract, which throws it for a wrong flag or variable.
export { UsageError } from '@modelship/contract';
