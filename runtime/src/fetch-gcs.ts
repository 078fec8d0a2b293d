/**
 * `gs://bucket/object`: a media download from the Cloud Storage JSON API, with an OAuth access token obtained the
 * way Google's client libraries do, from the same variables, so a pod set up for them works unchanged:
 * - GOOGLE_APPLICATION_CREDENTIALS: a service-account key file (a JWT signed here with node:crypto, traded at the
 *   key's token_uri) or an authorized-user file (its refresh token traded);
 * - else the application default credentials file, application_default_credentials.json in CLOUDSDK_CONFIG (or
 *   ~/.config/gcloud), read the same way: where ModelCredentials.fromSecret mounts a key, since a literal
 *   GOOGLE_APPLICATION_CREDENTIALS in a pod spec is what policy checkers flag as a leaked secret;
 * - else the metadata server: GKE Workload Identity or the node's service account (GCE_METADATA_HOST moves it, as
 *   for Google's libraries). With STORAGE_EMULATOR_HOST (an emulator, which takes no token) it is asked only when
 *   GCE_METADATA_HOST names it.
 */
import { createPrivateKey, sign } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { GcsModelUri } from '@modelship/contract';
import { UsageError } from './errors';
import { type Env, type ModelStore, PermanentError, oneLine, parseJson, readBody, request, statusError } from './fetch-http';

/** Reading objects is all fetch does, so that is all the token may do. */
const SCOPE = 'https://www.googleapis.com/auth/devstorage.read_only';
const DEFAULT_TOKEN_URI = 'https://oauth2.googleapis.com/token';
const METADATA_HOST = '169.254.169.254';
/** The metadata server answers at once or not at all: off Google Cloud nothing answers at that address. */
const METADATA_TIMEOUT_MS = 10_000;

/** STORAGE_EMULATOR_HOST as Google's libraries read it: a URL, or host:port meaning http. */
function emulatorUrl(env: Env): URL | undefined {
  const value = env.STORAGE_EMULATOR_HOST;
  if (!value) return undefined;
  try {
    const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(value) ? value : `http://${value}`);
    if (url.protocol === 'http:' || url.protocol === 'https:') return url;
  } catch {
    // Named below.
  }
  throw new UsageError(`STORAGE_EMULATOR_HOST '${value}' is not an emulator's address; give host:port or an http(s) URL`);
}

interface Token {
  readonly accessToken: string;
  /** Whose token it is, for errors: 'the service account x@p.iam.gserviceaccount.com (GOOGLE_APPLICATION_CREDENTIALS)'. */
  readonly who: string;
}

export class GcsStore implements ModelStore {
  private readonly emulator?: URL;

  constructor(private readonly location: GcsModelUri, private readonly env: Env) {
    this.emulator = emulatorUrl(env);
  }

  async open(signal: AbortSignal): Promise<Response> {
    const token = await this.token(signal);
    const base = this.emulator ? this.emulator.origin + this.emulator.pathname.replace(/\/+$/, '') : 'https://storage.googleapis.com';
    const url = `${base}/storage/v1/b/${encodeURIComponent(this.location.bucket)}/o/${encodeURIComponent(this.location.object)}?alt=media`;
    const response = await request(url, {
      signal, redirect: 'follow', headers: token ? { authorization: `Bearer ${token.accessToken}` } : {},
    }, this.emulator ? `the Cloud Storage emulator at ${this.emulator.origin} (STORAGE_EMULATOR_HOST)` : undefined);
    if (response.ok && response.body) return response;
    throw await this.explain(response, token);
  }

  private async explain(response: Response, token: Token | undefined): Promise<Error> {
    const text = await readBody(response);
    const json = parseJson(text) as { error?: { message?: string } } | undefined;
    const message = oneLine(json?.error?.message ?? text, 200);
    const { bucket, object } = this.location;
    const who = token?.who ?? 'no credentials (an emulator)';
    const fix: Record<number, string> = {
      401: `the token of ${who} was refused; check the credentials`,
      403: `${who} lacks storage.objects.get on gs://${bucket}/${object}; grant it roles/storage.objectViewer on the bucket`,
      404: `there is no object '${object}' in bucket '${bucket}' (or no such bucket); check the URI`,
    };
    // fake-gcs-server and proxies answer with the bare status text, which the status line already says.
    const said = message && message.toLowerCase() !== response.statusText.toLowerCase() ? `'${message}'` : '';
    return statusError(response, [said, fix[response.status]].filter(Boolean).join(': '));
  }

  // ---- credentials ---------------------------------------------------------------------------------------------------

  private async token(signal: AbortSignal): Promise<Token | undefined> {
    const path = this.env.GOOGLE_APPLICATION_CREDENTIALS;
    if (path) return this.tokenFromFile(path, 'GOOGLE_APPLICATION_CREDENTIALS', signal);
    const config = this.env.CLOUDSDK_CONFIG || join(this.env.HOME || homedir(), '.config', 'gcloud');
    const wellKnown = join(config, 'application_default_credentials.json');
    const text = await readFile(wellKnown, 'utf8').catch(() => undefined);
    if (text !== undefined) return this.tokenFromFile(wellKnown, this.env.CLOUDSDK_CONFIG ? 'CLOUDSDK_CONFIG' : 'the application default credentials', signal, text);
    // Google's libraries send no credentials to an emulator; a metadata server named outright is still asked.
    if (this.emulator && !this.env.GCE_METADATA_HOST) return undefined;
    return this.tokenFromMetadata(signal);
  }

  /** A credentials file; `source` names where its path came from, for errors. */
  private async tokenFromFile(path: string, source: string, signal: AbortSignal, read?: string): Promise<Token> {
    let text: string;
    try {
      text = read ?? await readFile(path, 'utf8');
    } catch (error) {
      throw new PermanentError(`cannot read ${source} '${path}': ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}; mount the service-account key there`);
    }
    const key = parseJson(text) as Record<string, string> | undefined;
    if (!key || typeof key !== 'object') throw new PermanentError(`${source} '${path}' is not JSON; it must be a service-account key file (gcloud iam service-accounts keys create)`);
    if (key.type === 'service_account') {
      if (!key.client_email || !key.private_key) {
        throw new PermanentError(`the service-account key in ${source} '${path}' lacks client_email or private_key; download the key again`);
      }
      const who = `the service account ${key.client_email} (${source})`;
      return { accessToken: await this.exchange(key.token_uri || DEFAULT_TOKEN_URI, jwtGrant(key, `${source} '${path}'`), who, signal), who };
    }
    if (key.type === 'authorized_user') {
      const who = `the user credentials of client ${key.client_id} (${source})`;
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: key.refresh_token ?? '', client_id: key.client_id ?? '', client_secret: key.client_secret ?? '' });
      return { accessToken: await this.exchange(key.token_uri || DEFAULT_TOKEN_URI, form, who, signal), who };
    }
    throw new PermanentError(`${source} '${path}' holds credentials of type '${key.type}'; modelship fetch takes a service-account key ('service_account') or GKE Workload Identity (remove the file)`);
  }

  /** Trades a signed assertion or a refresh token for an access token at an OAuth token endpoint. */
  private async exchange(tokenUri: string, form: URLSearchParams, who: string, signal: AbortSignal): Promise<string> {
    const response = await request(tokenUri, {
      method: 'POST', body: form, signal, headers: { 'content-type': 'application/x-www-form-urlencoded' },
    }, `the token endpoint ${tokenUri}`);
    const text = await readBody(response);
    const json = parseJson(text) as { access_token?: string; error?: string; error_description?: string } | undefined;
    if (!response.ok) {
      const reason = json?.error ? `${json.error}${json.error_description ? ` '${oneLine(json.error_description, 200)}'` : ''}` : `'${oneLine(text, 200)}'`;
      // invalid_grant: a deleted or disabled key, or a clock far off (the assertion's time window is an hour).
      throw statusError(response, `the token endpoint ${tokenUri} refused ${who}: ${reason}; check that the key exists and is enabled, and the node's clock`);
    }
    if (!json?.access_token) throw new Error(`the token endpoint ${tokenUri} answered without an access_token`);
    return json.access_token;
  }

  private async tokenFromMetadata(signal: AbortSignal): Promise<Token> {
    const host = this.env.GCE_METADATA_HOST || METADATA_HOST;
    const url = `http://${host}/computeMetadata/v1/instance/service-accounts/default/token?scopes=${encodeURIComponent(SCOPE)}`;
    let response: Response;
    try {
      response = await request(url, {
        headers: { 'metadata-flavor': 'Google' }, signal: AbortSignal.any([signal, AbortSignal.timeout(METADATA_TIMEOUT_MS)]),
      }, `the metadata server at ${host}`);
    } catch (error) {
      // Off Google Cloud this is where a missing key shows: say so, keeping whether another attempt may help.
      const hint = 'no GOOGLE_APPLICATION_CREDENTIALS or application default credentials are there either: mount a service-account key and point the variable at it, or run on GKE with Workload Identity';
      const message = `${(error as Error).message}; ${hint}`;
      throw error instanceof PermanentError ? new PermanentError(message) : new Error(message);
    }
    const text = await readBody(response);
    if (!response.ok) {
      throw statusError(response, `the metadata server at ${host} gave no token: '${oneLine(text, 200)}'; with Workload Identity, the pod's Kubernetes service account must be allowed to act as a Google service account (roles/iam.workloadIdentityUser)`);
    }
    const json = parseJson(text) as { access_token?: string } | undefined;
    if (!json?.access_token) throw new Error(`the metadata server at ${host} answered without an access_token`);
    return { accessToken: json.access_token, who: `the pod's Google identity (the metadata server at ${host})` };
  }
}

/** The OAuth 2.0 JWT bearer grant: an assertion signed with the service account's private key (RS256). */
function jwtGrant(key: Record<string, string>, file: string): URLSearchParams {
  const now = Math.floor(Date.now() / 1000);
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const header = encode({ alg: 'RS256', typ: 'JWT', ...(key.private_key_id ? { kid: key.private_key_id } : {}) });
  const claims = encode({ iss: key.client_email, scope: SCOPE, aud: key.token_uri || DEFAULT_TOKEN_URI, iat: now, exp: now + 3600 });
  let signature: string;
  try {
    signature = sign('sha256', Buffer.from(`${header}.${claims}`), createPrivateKey(key.private_key)).toString('base64url');
  } catch (error) {
    throw new PermanentError(`the private_key in ${file} cannot sign: ${(error as Error).message}; download the key again`);
  }
  return new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion: `${header}.${claims}.${signature}` });
}
