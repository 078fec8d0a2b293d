/**
 * What every model store of `modelship fetch` shares: the HTTP request that turns network failures into errors
 * worth retrying or not, the status classes that decide the same for an answer, and the one-line reason an error
 * body gives. Each store (http(s), s3://, gs://, oci://) opens the model as one streamed response; fetch.ts hashes
 * it and writes it into place the same way whatever the store.
 */

/** The environment a store reads its endpoint and credentials from (process.env, or a test's). */
export type Env = Readonly<Record<string, string | undefined>>;

/** A failure that retrying will not fix (digest mismatch, 403, 404, full disk, a missing credential). */
export class PermanentError extends Error {}

/** Opens a model's bytes: a 2xx response with a body, or an error (a {@link PermanentError} when retrying is futile). */
export interface ModelStore {
  open(signal: AbortSignal): Promise<Response>;
}

/** 408, 429 and 5xx: the store is busy or failing for a while, and the same request may pass later. */
export const isTransientStatus = (status: number) => status === 408 || status === 429 || status >= 500;

/**
 * `fetch` with network failures explained: undici reports them as TypeError('fetch failed') with the reason as its
 * cause (`connect ECONNREFUSED ...`), which is worth another attempt. A TypeError without a cause is a request that
 * can never be made (a port fetch refuses, a malformed header), and retrying it would only delay the failure.
 * `what` names the server in the message, e.g. 'the token service at https://oauth2.googleapis.com/token'.
 */
export async function request(url: string | URL, init: RequestInit, what?: string): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (error) {
    const cause = (error as Error & { cause?: Error }).cause;
    const reason = cause?.message ?? (error as Error).message;
    const message = what ? `${what} did not answer: ${reason}` : reason;
    if (!cause && (error as Error).name === 'TypeError') throw new PermanentError(message);
    throw new Error(message);
  }
}

/** An error for a non-2xx answer: permanent unless {@link isTransientStatus}, its message `HTTP <status> <text>: <detail>`. */
export function statusError(response: Response, detail?: string): Error {
  const message = `HTTP ${response.status} ${response.statusText}`.trim() + (detail ? `: ${detail}` : '');
  return isTransientStatus(response.status) ? new Error(message) : new PermanentError(message);
}

/**
 * The answer's body as text, at most 64 KiB of it (an error page is short; a wrong answer must not fill memory),
 * or '' when it cannot be read.
 */
export async function readBody(response: Response, limit = 64 * 1024): Promise<string> {
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      chunks.push(chunk);
      size += chunk.byteLength;
      if (size >= limit) break;
    }
  } catch {
    // A body cut short still says what arrived.
  } finally {
    await response.body.cancel().catch(() => undefined);
  }
  return Buffer.concat(chunks).subarray(0, limit).toString('utf8');
}

/** JSON from a body, or undefined when it is not JSON. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** Text on one line and short enough for a log line or an error: servers put newlines and whole pages in errors. */
export function oneLine(text: string, max = 300): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max)}...` : line;
}

/** The http(s) store: a plain GET, following redirects. A pre-signed URL carries its own authorization. */
export class HttpStore implements ModelStore {
  constructor(private readonly url: string) {}

  async open(signal: AbortSignal): Promise<Response> {
    const response = await request(this.url, { signal, redirect: 'follow' });
    if (!response.ok || !response.body) {
      await response.body?.cancel();
      throw statusError(response);
    }
    return response;
  }
}
