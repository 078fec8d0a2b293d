/**
 * `oci://registry/repository:tag` or `oci://registry/repository@sha256:...`: a model pushed to an OCI registry as
 * an artifact whose layer is the file itself (`oras push registry/repository:tag model.onnx` makes one), pulled over
 * the distribution API: the manifest, then the layer's blob. Credentials come from a docker config.json
 * (DOCKER_CONFIG, else ~/.docker), the file a kubernetes.io/dockerconfigjson Secret holds; registries that want a
 * token get one from the token service their 401 names (the bearer flow of Docker Hub, GHCR, Harbor, Artifact
 * Registry...), the others (ECR) take the credentials as Basic auth.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DOCKER_HUB_NAMES as DOCKER_HUB, type OciModelUri } from '@modelship/contract';
import { type Env, type ModelStore, PermanentError, oneLine, parseJson, readBody, request, statusError } from './fetch-http';

const MANIFEST_TYPES = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;
const TITLE = 'org.opencontainers.image.title';

/** What a docker config.json holds for one registry. */
interface RegistryCredentials {
  readonly username?: string;
  readonly password?: string;
  /** A refresh token (`docker login` with an identity provider), traded at the token service. */
  readonly identityToken?: string;
  /** A bearer token to send as it is. */
  readonly registryToken?: string;
  /** The file and entry it came from, for errors. */
  readonly source: string;
}

interface DockerConfigLookup {
  readonly credentials?: RegistryCredentials;
  /** Why there are none, for the error when the registry wants some. */
  readonly none: string;
}

/** The host a config.json `auths` key names: keys may be URLs (`https://index.docker.io/v1/`) or host[:port]. */
const authsKeyHost = (key: string) => key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '').toLowerCase();

async function dockerConfigCredentials(env: Env, registry: string): Promise<DockerConfigLookup> {
  const dir = env.DOCKER_CONFIG || join(env.HOME || homedir(), '.docker');
  const path = join(dir, 'config.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    // Without DOCKER_CONFIG a missing file only means anonymous pulls; with it, the mount is wrong.
    if (code === 'ENOENT' && !env.DOCKER_CONFIG) return { none: `no docker config at ${path}` };
    throw new PermanentError(`cannot read the docker config ${path}${env.DOCKER_CONFIG ? ' (DOCKER_CONFIG)' : ''}: ${code ?? (error as Error).message}`);
  }
  const config = parseJson(text) as Record<string, unknown> | undefined;
  if (!config || typeof config !== 'object') throw new PermanentError(`the docker config ${path} is not JSON; it must hold {"auths": {...}} as a kubernetes.io/dockerconfigjson Secret does`);
  // The older .dockercfg layout has the registries at the top level.
  const auths = (config.auths ?? (config.credsStore || config.credHelpers ? {} : config)) as Record<string, Record<string, string>>;
  const hub = DOCKER_HUB.has(registry);
  const entry = Object.entries(auths).find(([key]) => {
    const host = authsKeyHost(key);
    return host === registry.toLowerCase() || (hub && DOCKER_HUB.has(host));
  });
  if (!entry) {
    const helper = (config.credHelpers as Record<string, string> | undefined)?.[registry] ?? config.credsStore;
    const none = helper
      ? `the docker config ${path} names the credential helper '${helper}' for ${registry}, which cannot run here; put the credentials in its "auths" (a kubernetes.io/dockerconfigjson Secret does)`
      : `the docker config ${path} has no "auths" entry for ${registry}`;
    return { none };
  }
  const [key, value] = entry;
  const source = `the docker config ${path} ("auths" entry '${key}')`;
  let { username, password } = value;
  if (value.auth) {
    const decoded = Buffer.from(value.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) throw new PermanentError(`${source} has an "auth" that is not base64 of user:password`);
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  return { credentials: { username, password, identityToken: value.identitytoken, registryToken: value.registrytoken, source }, none: '' };
}

/** The parameters of a `WWW-Authenticate: Bearer realm="...",service="...",scope="..."` challenge. */
function parseChallenge(header: string): { scheme: string; params: Record<string, string> } {
  const scheme = header.trim().split(/\s+/, 1)[0].toLowerCase();
  const params: Record<string, string> = {};
  for (const match of header.slice(scheme.length).matchAll(/(\w+)=(?:"([^"]*)"|([^\s,]*))/g)) params[match[1].toLowerCase()] = match[2] ?? match[3];
  return { scheme, params };
}

interface Layer {
  readonly mediaType?: string;
  readonly digest?: string;
  readonly size?: number;
  readonly annotations?: Record<string, string>;
}

export class OciStore implements ModelStore {
  private readonly base: string;
  /** The Authorization header the registry accepted last (a bearer token lasts for the manifest and the blob). */
  private authorization?: string;
  /** What the docker config held for this registry, once a 401 made fetch look. */
  private lookup?: DockerConfigLookup;

  constructor(private readonly ref: OciModelUri, private readonly expectedSha256: string, plainHttp: boolean, private readonly env: Env) {
    this.base = `${plainHttp ? 'http' : 'https'}://${ref.apiHost}`;
  }

  private get name(): string {
    const { registry, repository, reference } = this.ref;
    return `${registry}/${repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
  }

  async open(signal: AbortSignal): Promise<Response> {
    this.authorization = undefined;
    this.lookup = undefined;
    const layer = await this.chooseLayer(signal);
    const response = await this.send(`${this.base}/v2/${this.ref.repository}/blobs/${layer.digest}`, {}, signal);
    if (response.ok && response.body) return response;
    throw await this.explain(response, `layer ${layer.digest}`);
  }

  /**
   * The layer that is the model: the one whose digest is the expected sha256 (an artifact's layer is the file
   * itself, so its digest is the file's). Refused before any download when no layer has it: the tag points at
   * another model, or the artifact packs the file in an archive.
   */
  private async chooseLayer(signal: AbortSignal): Promise<Layer> {
    const url = `${this.base}/v2/${this.ref.repository}/manifests/${this.ref.reference}`;
    const response = await this.send(url, { accept: Object.values(MANIFEST_TYPES).join(', ') }, signal);
    if (!response.ok) throw await this.explain(response, 'the manifest');
    const text = await readBody(response, 4 * 1024 * 1024);
    if (this.ref.reference.startsWith('sha256:')) {
      const actual = `sha256:${createHash('sha256').update(text).digest('hex')}`;
      if (actual !== this.ref.reference) throw new PermanentError(`the registry answered ${this.name} with a manifest whose digest is ${actual}`);
    }
    const manifest = parseJson(text) as { mediaType?: string; layers?: Layer[]; blobs?: Layer[] } | undefined;
    const type = manifest?.mediaType ?? response.headers.get('content-type') ?? '';
    if (type.startsWith(MANIFEST_TYPES.ociIndex) || type.startsWith(MANIFEST_TYPES.dockerList)) {
      throw new PermanentError(`${this.name} is an image index (a manifest per platform), not an artifact; push the model with 'oras push ${this.name} model.onnx' or name one manifest by its digest`);
    }
    const layers = manifest?.layers ?? manifest?.blobs;
    if (!Array.isArray(layers) || layers.length === 0) throw new PermanentError(`the manifest of ${this.name} lists no layers; push the model with 'oras push ${this.name} model.onnx'`);
    const wanted = `sha256:${this.expectedSha256}`;
    const layer = layers.find((l) => l.digest === wanted);
    if (layer) return layer;
    const listed = layers.map((l) => `${l.annotations?.[TITLE] ? `'${l.annotations[TITLE]}' ` : ''}${l.digest}${l.mediaType?.includes('tar+gzip') || l.mediaType?.includes('tar+zstd') ? ' (a compressed archive)' : ''}`).join(', ');
    const only = layers.length === 1 ? layers[0] : layers.find((l) => l.annotations?.[TITLE] === 'model.onnx');
    const archive = layers.some((l) => /tar\+(gzip|zstd)$/.test(l.mediaType ?? '') || l.annotations?.['io.deis.oras.content.unpack'] === 'true');
    const why = archive
      ? 'the artifact holds an archive; push the .onnx file itself (oras push REF model.onnx), not a directory'
      : `${this.ref.reference.startsWith('sha256:') ? 'the' : `the tag '${this.ref.reference}' may now point at another model, or the`} expected sha256 is wrong`;
    throw new PermanentError(`sha256 mismatch: expected ${this.expectedSha256}, but ${only ? `the model layer of ${this.name} is ${only.digest}` : `no layer of ${this.name} has it (layers: ${listed})`}; ${why}`);
  }

  /**
   * A GET with the registry's authorization: anonymous first, then, on a 401, what the challenge asks for (a token
   * from its token service, or Basic credentials), and the request once more.
   */
  private async send(url: string, headers: Record<string, string>, signal: AbortSignal): Promise<Response> {
    const get = () => request(url, { signal, redirect: 'follow', headers: this.authorization ? { ...headers, authorization: this.authorization } : headers }, `the registry ${this.ref.registry}`);
    const first = await get();
    if (first.status !== 401) return first;
    await first.body?.cancel();
    this.authorization = await this.authorize(first.headers.get('www-authenticate') ?? '', signal);
    return get();
  }

  private async authorize(header: string, signal: AbortSignal): Promise<string> {
    const lookup = await dockerConfigCredentials(this.env, this.ref.registry);
    this.lookup = lookup;
    const credentials = lookup.credentials;
    const none = () => this.noCredentials(lookup);
    const { scheme, params } = parseChallenge(header);
    if (credentials?.registryToken) return `Bearer ${credentials.registryToken}`;
    if (scheme === 'basic') {
      if (!credentials?.username) throw none();
      return `Basic ${Buffer.from(`${credentials.username}:${credentials.password ?? ''}`).toString('base64')}`;
    }
    if (scheme !== 'bearer' || !params.realm) throw new PermanentError(`${this.ref.registry} answered 401 with the challenge '${oneLine(header, 200)}', which is neither Bearer nor Basic`);
    const scope = params.scope ?? `repository:${this.ref.repository}:pull`;
    const realm = new URL(params.realm);
    let response: Response;
    if (credentials?.identityToken) {
      // A refresh token is traded with a POST, as `docker login` with an identity provider does.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: credentials.identityToken, service: params.service ?? '', scope, client_id: 'modelship' });
      response = await request(realm, { method: 'POST', body: form, signal, headers: { 'content-type': 'application/x-www-form-urlencoded' } }, `the token service ${realm.origin}`);
    } else {
      if (params.service) realm.searchParams.set('service', params.service);
      realm.searchParams.set('scope', scope);
      const basic = credentials?.username ? { authorization: `Basic ${Buffer.from(`${credentials.username}:${credentials.password ?? ''}`).toString('base64')}` } : undefined;
      response = await request(realm, { signal, headers: basic }, `the token service ${realm.origin}`);
    }
    const text = await readBody(response);
    if (!response.ok) {
      if ((response.status === 401 || response.status === 403) && !credentials) throw none();
      throw statusError(response, `the token service ${realm.origin} refused ${credentials ? `the credentials from ${credentials.source}` : 'an anonymous token'} for ${scope}: '${oneLine(text, 200)}'${credentials ? '; check the user name and password (or token) in the Secret' : ''}`);
    }
    const json = parseJson(text) as { token?: string; access_token?: string } | undefined;
    const token = json?.token ?? json?.access_token;
    if (!token) throw new Error(`the token service ${realm.origin} answered without a token`);
    return `Bearer ${token}`;
  }

  private noCredentials(lookup: DockerConfigLookup): PermanentError {
    return new PermanentError(`${this.ref.registry} wants credentials to pull ${this.ref.repository} (or the repository does not exist) and there are none: ${lookup.none}; `
      + 'mount a kubernetes.io/dockerconfigjson Secret and set DOCKER_CONFIG to its directory');
  }

  /** A distribution API error as one line: its code, and what to fix. */
  private async explain(response: Response, what: string): Promise<Error> {
    // An anonymous token that grants nothing: the registry wants credentials, and none were found.
    if ((response.status === 401 || response.status === 403) && this.lookup && !this.lookup.credentials) {
      await response.body?.cancel();
      return this.noCredentials(this.lookup);
    }
    const text = await readBody(response);
    const errors = (parseJson(text) as { errors?: Array<{ code?: string; message?: string }> } | undefined)?.errors ?? [];
    const code = errors[0]?.code ?? '';
    const message = errors[0]?.message ?? oneLine(text, 200);
    const authorized = this.authorization ? 'the credentials' : 'an anonymous pull';
    const fixes: Record<string, string> = {
      MANIFEST_UNKNOWN: `there is no ${this.ref.reference.startsWith('sha256:') ? 'manifest' : 'tag'} '${this.ref.reference}' in ${this.ref.registry}/${this.ref.repository}; check the reference`,
      NAME_UNKNOWN: `there is no repository ${this.ref.repository} in ${this.ref.registry}; check the URI`,
      BLOB_UNKNOWN: `the manifest of ${this.name} lists ${what}, which the registry does not have; push the artifact again`,
      DENIED: `${authorized} may not pull ${this.ref.repository}; grant the pull permission to the account in the Secret`,
      UNAUTHORIZED: `${this.ref.registry} refused ${authorized} for ${this.ref.repository}; check the user name and password (or token) in the Secret`,
    };
    let fix = fixes[code];
    if (!fix && response.status === 404) fix = `${this.ref.registry} has no ${what} for ${this.name}; check the reference`;
    if (!fix && (response.status === 401 || response.status === 403)) fix = fixes[response.status === 401 ? 'UNAUTHORIZED' : 'DENIED'];
    return statusError(response, [`${what} of ${this.name}`, [code, message && message.toLowerCase() !== code.toLowerCase().replace(/_/g, ' ') ? `'${oneLine(message, 200)}'` : ''].filter(Boolean).join(' '), fix].filter(Boolean).join(': '));
  }
}
