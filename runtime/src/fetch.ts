/**
 * `modelship fetch`: the init container's step. Downloads a model from an http(s) URL, an S3 bucket (s3://), a
 * Cloud Storage bucket (gs://) or an OCI registry (oci://) into a temporary file beside the destination while
 * hashing it, checks the sha256, and renames it into place, so the server never sees a partial or tampered file.
 * Transient failures (network, timeouts, 408/429/5xx) are retried with exponential backoff, whatever the store.
 * Each store only opens the model as a response (fetch-http.ts, fetch-s3.ts, fetch-gcs.ts, fetch-oci.ts); the
 * hashing, the atomic write and the retries are here, once.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { type ModelUri, parseModelUri } from '@modelship/contract';
import type { Logger } from 'pino';
import { UsageError } from './errors';
import { redactUri } from './redact-uri';
import { type Env, HttpStore, type ModelStore, PermanentError } from './fetch-http';
import { GcsStore } from './fetch-gcs';
import { OciStore } from './fetch-oci';
import { S3Store } from './fetch-s3';

export interface FetchOptions {
  readonly uri: string;
  readonly sha256: string;
  readonly dest: string;
  /** Retries after the first attempt. @default 4 */
  readonly retries?: number;
  /** Seconds one attempt may take. @default 300 */
  readonly timeoutSeconds?: number;
  /** First backoff in milliseconds; doubles each retry, capped at 10 s. @default 500 */
  readonly backoffMilliseconds?: number;
  /** oci:// only: talk to the registry over http instead of https. @default false */
  readonly plainHttp?: boolean;
}

/** Local file-system failures: the next attempt would meet the same disk. */
const PERMANENT_FS_ERRORS = new Set(['ENOSPC', 'EDQUOT', 'EACCES', 'EPERM', 'EROFS', 'EISDIR', 'ENOTDIR', 'EEXIST', 'ENAMETOOLONG']);

/**
 * Checks the options and the store's variables before anything is requested (a usage error, exit 2), and returns
 * the store the URI names.
 */
export function checkFetchOptions(options: FetchOptions, env: Env = process.env): ModelStore {
  let uri: ModelUri;
  try {
    uri = parseModelUri(options.uri);
  } catch (error) {
    throw new UsageError(`--uri (MODELSHIP_FETCH_URI) ${(error as Error).message}`);
  }
  if (!/^[0-9a-f]{64}$/i.test(options.sha256)) {
    throw new UsageError(`--sha256 (MODELSHIP_FETCH_SHA256) must be 64 hex digits, received '${options.sha256}'`);
  }
  if (!options.dest) throw new UsageError('--dest (MODELSHIP_FETCH_DEST) is required');
  if (options.plainHttp && uri.scheme !== 'oci') {
    const where = uri.scheme === 's3' ? ' in AWS_ENDPOINT_URL_S3' : uri.scheme === 'gs' ? ' in STORAGE_EMULATOR_HOST' : '';
    throw new UsageError(`--plain-http (MODELSHIP_FETCH_PLAIN_HTTP) applies to oci:// only; for ${uri.scheme}:// write the http:// URL${where}`);
  }
  switch (uri.scheme) {
    case 's3':
      return new S3Store(uri, env);
    case 'gs':
      return new GcsStore(uri, env);
    case 'oci':
      return new OciStore(uri, options.sha256.toLowerCase(), options.plainHttp ?? false, env);
    default:
      return new HttpStore(options.uri);
  }
}

export async function fetchModel(options: FetchOptions, log: Logger, env: Env = process.env): Promise<void> {
  const store = checkFetchOptions(options, env);
  const expected = options.sha256.toLowerCase();
  const source = redactUri(options.uri);
  if (await fileHasDigest(options.dest, expected)) {
    log.info({ dest: options.dest }, `${options.dest} already holds sha256 ${expected}; nothing to fetch`);
    return;
  }
  await mkdir(dirname(options.dest), { recursive: true });
  const retries = options.retries ?? 4;
  const backoff = options.backoffMilliseconds ?? 500;
  for (let attempt = 0; ; attempt++) {
    try {
      await download(store, options, expected);
      log.info({ uri: source, dest: options.dest, sha256: expected }, `fetched ${source}`);
      return;
    } catch (error) {
      const last = attempt >= retries || error instanceof PermanentError;
      if (last) throw new Error(`fetch ${source} failed${attempt > 0 ? ` after ${attempt + 1} attempts` : ''}: ${(error as Error).message}`);
      const delay = Math.min(10_000, backoff * 2 ** attempt) * (0.5 + Math.random() / 2);
      log.warn({ uri: source, attempt: attempt + 1, delayMs: Math.round(delay) }, `attempt ${attempt + 1} failed, retrying: ${(error as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

async function download(store: ModelStore, options: FetchOptions, expected: string): Promise<void> {
  const response = await store.open(AbortSignal.timeout((options.timeoutSeconds ?? 300) * 1000));
  const partial = join(dirname(options.dest), `.${basename(options.dest)}.partial-${process.pid}`);
  const total = contentLength(response);
  const hash = createHash('sha256');
  let received = 0;
  const file = createWriteStream(partial);
  try {
    await pipeline(
      Readable.fromWeb(response.body! as unknown as WebReadableStream<Uint8Array>),
      new Transform({ transform(chunk: Buffer, _encoding, done) { hash.update(chunk); received += chunk.byteLength; done(null, chunk); } }),
      file,
    );
    const actual = hash.digest('hex');
    if (actual !== expected) throw new PermanentError(`sha256 mismatch: expected ${expected}, received ${actual}`);
    await rename(partial, options.dest);
  } catch (error) {
    // Close before removing: an unlinked file still holds its blocks while a descriptor is open, and the free
    // space reported below should be what the next attempt (or an operator) will actually find.
    if (!file.closed) await new Promise((resolve) => file.close(resolve));
    await rm(partial, { force: true });
    throw await explainFailure(error as Error, options.dest, { received, written: file.bytesWritten, total });
  }
}

interface Progress {
  /** Body bytes that arrived from the server. */
  readonly received: number;
  /** Bytes that reached the temporary file. */
  readonly written: number;
  /** Content-Length, when the server sent one. */
  readonly total?: number;
}

function contentLength(response: Response): number | undefined {
  const header = response.headers.get('content-length');
  return header !== null && /^\d+$/.test(header) ? Number(header) : undefined;
}

const ofTotal = (bytes: number, total?: number) => `${bytes} of ${total ?? 'an unknown number of'} bytes`;

/**
 * Turns a failed transfer into an error that says what to fix: a local file-system error names --dest (with the
 * sizes when the disk is full, so the volume can be sized) and is mostly permanent; anything else broke the stream
 * from the server (a dropped connection, a timeout) and is worth another attempt.
 */
async function explainFailure(error: Error, dest: string, progress: Progress): Promise<Error> {
  if (error instanceof PermanentError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    const what = code === 'ENOSPC' ? 'no space left on device' : 'disk quota exceeded';
    const free = await freeBytes(dirname(dest));
    return new PermanentError(`cannot write ${dest}: ${what} (${code}) after writing ${ofTotal(progress.written, progress.total)}` +
      `${free === undefined ? '' : `; ${free} bytes are free there`}`);
  }
  if (code && PERMANENT_FS_ERRORS.has(code)) return new PermanentError(`cannot write ${dest}: ${code} (${error.message})`);
  // Other local errors (EIO, EMFILE, ...) may pass, so they are retried, but named as local, not as the network.
  if ((error as NodeJS.ErrnoException).syscall) return new Error(`cannot write ${dest}: ${error.message}`);
  // undici reports a body cut short as TypeError('terminated') whose cause says why ('other side closed').
  const reason = (error as Error & { cause?: Error }).cause?.message ?? error.message;
  return new Error(`download interrupted after ${ofTotal(progress.received, progress.total)}: ${reason}`);
}

/** Bytes an unprivileged writer may still use on the file system holding `dir`, if it can be asked. */
async function freeBytes(dir: string): Promise<number | undefined> {
  try {
    const fs = await statfs(dir);
    return fs.bavail * fs.bsize;
  } catch {
    return undefined;
  }
}

async function fileHasDigest(path: string, expected: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isFile()) return false;
  } catch {
    return false;
  }
  const hash = createHash('sha256');
  await pipeline(createReadStream(path), hash);
  return hash.digest('hex') === expected;
}
