/**
 * Real servers of the protocols `modelship fetch` reads models from, started on 127.0.0.1 for one test file and
 * stopped after it: moto's S3 (SigV4 checked by botocore, IAM policies and STS), fake-gcs-server (Cloud Storage's
 * JSON API) and Debian's docker-registry (the CNCF distribution registry, with token or htpasswd auth). Test data
 * goes in through each server's own API, never by writing its files. Also a recording proxy to put in front of one
 * of them, to see the headers fetch sends or to inject a fault.
 *
 * test/stores/install.sh installs moto and fake-gcs-server; .ci/run installs docker-registry and openssl with apt.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { createHash, createPrivateKey, randomUUID, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT } from './paths';
import { waitFor } from './wait';

export const STORE_PROGRAMS = {
  moto: process.env.MOTO_SERVER ?? join(REPO_ROOT, '.venv-stores', 'bin', 'moto_server'),
  motoPython: join(REPO_ROOT, '.venv-stores', 'bin', 'python'),
  fakeGcs: process.env.FAKE_GCS_SERVER ?? join(REPO_ROOT, '.ci', 'bin', 'fake-gcs-server'),
  registry: '/usr/bin/docker-registry',
  openssl: '/usr/bin/openssl',
} as const;

/** Why a store's tests cannot run here ('' when they can), with the command that installs what is missing. */
export function storeUnavailable(store: 's3' | 'gcs' | 'oci'): string {
  const missing = (path: string, how: string) => (existsSync(path) ? '' : `${path} is missing (${how})`);
  switch (store) {
    case 's3': return missing(STORE_PROGRAMS.moto, 'test/stores/install.sh');
    case 'gcs': return missing(STORE_PROGRAMS.fakeGcs, 'test/stores/install.sh');
    case 'oci': return missing(STORE_PROGRAMS.registry, 'apt-get install docker-registry') || missing(STORE_PROGRAMS.openssl, 'apt-get install openssl');
  }
}

export async function freePort(): Promise<number> {
  const server = createNetServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const children = new Set<ChildProcess>();
// A test process that ends without its after() hooks must not leave servers behind.
process.once('exit', () => { for (const child of children) child.kill('SIGKILL'); });

/** Starts a server process and waits until `ready` answers; its output is kept for the error when it never does. */
async function startProcess(command: string, args: readonly string[], ready: string, env?: NodeJS.ProcessEnv): Promise<{ child: ChildProcess; stop(): Promise<void> }> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  children.add(child);
  let output = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => { output = (output + chunk).slice(-4000); });
  child.stderr!.setEncoding('utf8').on('data', (chunk: string) => { output = (output + chunk).slice(-4000); });
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    children.delete(child);
  };
  try {
    await waitFor(`${command} to answer ${ready}`, async () => {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${output}`);
      await fetch(ready, { signal: AbortSignal.timeout(1000) });
      return true;
    }, 30_000, 50);
  } catch (error) {
    await stop();
    throw new Error(`${(error as Error).message}\n${output}`);
  }
  return { child, stop };
}

// ---- S3: moto --------------------------------------------------------------------------------------------------------

export interface MotoServer {
  /** The endpoint, for AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL. */
  readonly endpoint: string;
  /** Access key id and secret of a user allowed s3:GetObject on every bucket made. */
  readonly reader: readonly [string, string];
  /** Of a user allowed nothing. */
  readonly nobody: readonly [string, string];
  /** A role for web identity allowed s3:GetObject, and one allowed nothing. */
  readonly readerRole: string;
  readonly nobodyRole: string;
  /**
   * Lets the next `count` actions through without auth, then checks every signature and policy again. moto checks
   * STS's AssumeRoleWithWebIdentity like a signed call and fails it for lacking a signature, though AWS takes it
   * unsigned; one free action lets it pass while the S3 request after it is checked.
   */
  freeActions(count: number): Promise<void>;
  close(): Promise<void>;
}

/** moto with `objects` ('bucket/key' → bytes) in place and auth on. */
export async function startMoto(objects: Record<string, Uint8Array>): Promise<MotoServer> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const server = await startProcess(STORE_PROGRAMS.moto, ['-H', '127.0.0.1', '-p', String(port)], `${endpoint}/moto-api/`);
  try {
    const input = JSON.stringify({ objects: Object.fromEntries(Object.entries(objects).map(([path, bytes]) => [path, Buffer.from(bytes).toString('base64')])) });
    const setup = JSON.parse(execFileSync(STORE_PROGRAMS.motoPython, [join(REPO_ROOT, 'test', 'stores', 'moto_setup.py'), endpoint], { input, encoding: 'utf8', timeout: 60_000 }));
    const freeActions = async (count: number) => {
      const response = await fetch(`${endpoint}/moto-api/reset-auth`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: String(count) });
      if (!response.ok) throw new Error(`moto reset-auth: HTTP ${response.status}`);
    };
    await freeActions(0);
    return { endpoint, ...setup, freeActions, close: server.stop };
  } catch (error) {
    await server.stop();
    throw error;
  }
}

// ---- Cloud Storage: fake-gcs-server ----------------------------------------------------------------------------------

export interface GcsServer {
  /** http://127.0.0.1:PORT, for STORAGE_EMULATOR_HOST. */
  readonly endpoint: string;
  close(): Promise<void>;
}

/** fake-gcs-server in memory, with `objects` ('bucket/object' → bytes) uploaded through the JSON API. */
export async function startFakeGcs(objects: Record<string, Uint8Array>): Promise<GcsServer> {
  const port = await freePort();
  const endpoint = `http://127.0.0.1:${port}`;
  const server = await startProcess(STORE_PROGRAMS.fakeGcs,
    ['-scheme', 'http', '-host', '127.0.0.1', '-port', String(port), '-backend', 'memory', '-log-level', 'error'], `${endpoint}/storage/v1/b`);
  try {
    const buckets = new Set<string>();
    for (const [path, bytes] of Object.entries(objects)) {
      const slash = path.indexOf('/');
      const bucket = path.slice(0, slash);
      if (!buckets.has(bucket)) {
        await ok(fetch(`${endpoint}/storage/v1/b?project=test`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: bucket }) }), `create bucket ${bucket}`);
        buckets.add(bucket);
      }
      const name = encodeURIComponent(path.slice(slash + 1));
      await ok(fetch(`${endpoint}/upload/storage/v1/b/${bucket}/o?uploadType=media&name=${name}`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: bytes }), `upload ${path}`);
    }
  } catch (error) {
    await server.stop();
    throw error;
  }
  return { endpoint, close: server.stop };
}

async function ok(pending: Promise<Response>, what: string): Promise<Response> {
  const response = await pending;
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status} ${await response.text()}`);
  return response;
}

// ---- OCI: docker-registry --------------------------------------------------------------------------------------------

/** A file of an artifact, pushed as one layer as `oras push REF file` does. */
export interface ArtifactFile {
  readonly title: string;
  readonly bytes: Uint8Array;
  /** @default 'application/vnd.oci.image.layer.v1.tar', what oras gives a file unless told */
  readonly mediaType?: string;
}

export interface Registry {
  /** 127.0.0.1:PORT, the registry part of an oci:// URI. */
  readonly host: string;
  /** What the token service was asked: the Authorization it got ('' for none) and the scope. */
  readonly tokenRequests: ReadonlyArray<{ readonly authorization: string; readonly scope: string; readonly method: string }>;
  /** Pushes an artifact as oras does (an OCI image manifest, an empty config, a layer per file); returns the manifest digest. */
  push(repository: string, tag: string, files: readonly ArtifactFile[]): Promise<string>;
  close(): Promise<void>;
}

export type RegistryAuth =
  /** The token flow of Docker Hub, GHCR, Harbor: a 401 names a token service, which takes Basic credentials. */
  | { readonly kind: 'token'; readonly users: Record<string, { readonly password: string; readonly pull: boolean }> }
  /** htpasswd: Basic credentials on every request, as ECR takes them. */
  | { readonly kind: 'basic' }
  | { readonly kind: 'none' };

/** The one htpasswd user: the registry reads only bcrypt, which node:crypto lacks, so the hash is made once, here. */
export const HTPASSWD_USER = { name: 'carol', password: 'carol-password', bcrypt: '$2b$04$lVXDAo0ZyyGJPuczWiobZupFQVgXeqvtibk4Qtp0YNPk3rS5SKdFi' } as const;

const digestOf = (bytes: Uint8Array) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
const SERVICE = 'modelship-test-registry';
const ISSUER = 'modelship-test-token-service';

export async function startRegistry(auth: RegistryAuth): Promise<Registry> {
  const dir = mkdtempSync(join(tmpdir(), 'modelship-registry-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const tokenRequests: Array<{ authorization: string; scope: string; method: string }> = [];
  let tokenServer: Server | undefined;
  let mint: ((access: Array<{ type: string; name: string; actions: string[] }>) => string) | undefined;
  let authConfig = '';
  if (auth.kind === 'token') {
    // The registry trusts tokens whose x5c certificate chains to its root bundle: a self-signed one serves as both.
    execFileSync(STORE_PROGRAMS.openssl, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', join(dir, 'token.key'),
      '-out', join(dir, 'token.crt'), '-days', '1', '-subj', '/CN=modelship-test-token'], { stdio: 'ignore' });
    const key = createPrivateKey(readFileSync(join(dir, 'token.key')));
    const certificate = new X509Certificate(readFileSync(join(dir, 'token.crt'))).raw.toString('base64');
    mint = (access) => jwt(key, certificate, access);
    tokenServer = createServer((req, res) => tokenService(req, res, auth.users, mint!, tokenRequests));
    tokenServer.listen(0, '127.0.0.1');
    await once(tokenServer, 'listening');
    const realm = `http://127.0.0.1:${(tokenServer.address() as AddressInfo).port}/token`;
    authConfig = `auth:\n  token:\n    realm: ${realm}\n    service: ${SERVICE}\n    issuer: ${ISSUER}\n    rootcertbundle: ${join(dir, 'token.crt')}\n`;
  } else if (auth.kind === 'basic') {
    writeFileSync(join(dir, 'htpasswd'), `${HTPASSWD_USER.name}:${HTPASSWD_USER.bcrypt}\n`);
    authConfig = `auth:\n  htpasswd:\n    realm: modelship-test\n    path: ${join(dir, 'htpasswd')}\n`;
  }
  writeFileSync(join(dir, 'config.yml'), `version: 0.1
log: { level: error, accesslog: { disabled: true } }
storage: { filesystem: { rootdirectory: ${join(dir, 'data')} } }
http: { addr: ${host}, secret: modelship-test }
${authConfig}`);
  const server = await startProcess(STORE_PROGRAMS.registry, ['serve', join(dir, 'config.yml')], `http://${host}/v2/`);

  const pushAuthorization = (repository: string) => {
    if (auth.kind === 'token') return `Bearer ${mint!([{ type: 'repository', name: repository, actions: ['pull', 'push'] }])}`;
    if (auth.kind === 'basic') return `Basic ${Buffer.from(`${HTPASSWD_USER.name}:${HTPASSWD_USER.password}`).toString('base64')}`;
    return undefined;
  };
  const push = async (repository: string, tag: string, files: readonly ArtifactFile[]): Promise<string> => {
    const authorization = pushAuthorization(repository);
    const headers = (extra: Record<string, string> = {}) => ({ ...extra, ...(authorization ? { authorization } : {}) });
    const upload = async (bytes: Uint8Array) => {
      const started = await ok(fetch(`http://${host}/v2/${repository}/blobs/uploads/`, { method: 'POST', headers: headers() }), `start upload to ${repository}`);
      const location = new URL(started.headers.get('location')!, `http://${host}`);
      location.searchParams.set('digest', digestOf(bytes));
      await ok(fetch(location, { method: 'PUT', headers: headers({ 'content-type': 'application/octet-stream' }), body: bytes }), `upload to ${repository}`);
    };
    // oras 1.x: an empty JSON config, the artifact type on the manifest, a title annotation per file.
    const config = Buffer.from('{}');
    await upload(config);
    for (const file of files) await upload(file.bytes);
    const manifest = Buffer.from(JSON.stringify({
      schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: 'application/vnd.unknown.artifact.v1',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: digestOf(config), size: config.length, data: config.toString('base64') },
      layers: files.map((file) => ({
        mediaType: file.mediaType ?? 'application/vnd.oci.image.layer.v1.tar', digest: digestOf(file.bytes), size: file.bytes.byteLength,
        annotations: { 'org.opencontainers.image.title': file.title },
      })),
      annotations: { 'org.opencontainers.image.created': new Date().toISOString() },
    }));
    await ok(fetch(`http://${host}/v2/${repository}/manifests/${tag}`, {
      method: 'PUT', headers: headers({ 'content-type': 'application/vnd.oci.image.manifest.v1+json' }), body: manifest,
    }), `push the manifest of ${repository}:${tag}`);
    return digestOf(manifest);
  };

  return {
    host, tokenRequests, push,
    async close() {
      await server.stop();
      if (tokenServer) {
        tokenServer.closeAllConnections();
        await new Promise((resolve) => tokenServer!.close(resolve));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A registry token: a JWT signed RS256 with the certificate in its x5c header, as the registry verifies it. */
function jwt(key: KeyObject, certificate: string, access: Array<{ type: string; name: string; actions: string[] }>): string {
  const now = Math.floor(Date.now() / 1000);
  const encode = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const head = `${encode({ typ: 'JWT', alg: 'RS256', x5c: [certificate] })}.${encode({
    iss: ISSUER, sub: 'test', aud: SERVICE, exp: now + 300, nbf: now - 10, iat: now, jti: randomUUID(), access,
  })}`;
  return `${head}.${sign('sha256', Buffer.from(head), key).toString('base64url')}`;
}

/**
 * The token service: Basic credentials (or a refresh token `refresh-<user>` posted as docker does) of a known user
 * get the scope they ask for when that user may pull, an empty grant otherwise; no credentials get an empty grant;
 * wrong ones a 401, as Docker Hub answers them.
 */
function tokenService(req: IncomingMessage, res: ServerResponse, users: Record<string, { password: string; pull: boolean }>,
  mint: (access: Array<{ type: string; name: string; actions: string[] }>) => string, log: Array<{ authorization: string; scope: string; method: string }>): void {
  let body = '';
  req.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; }).on('end', () => {
    const url = new URL(req.url ?? '/', 'http://token');
    const form = new URLSearchParams(req.method === 'POST' ? body : '');
    const scope = form.get('scope') ?? url.searchParams.get('scope') ?? '';
    const authorization = req.headers.authorization ?? '';
    log.push({ authorization, scope, method: req.method ?? '' });
    let user: string | undefined;
    if (req.method === 'POST') {
      user = /^refresh-(.+)$/.exec(form.get('refresh_token') ?? '')?.[1];
      if (!user || !users[user]) return answer(res, 401, { details: 'invalid refresh token' });
    } else if (authorization.startsWith('Basic ')) {
      const [name, ...rest] = Buffer.from(authorization.slice(6), 'base64').toString('utf8').split(':');
      if (users[name]?.password !== rest.join(':')) return answer(res, 401, { details: 'incorrect username or password' });
      user = name;
    }
    const access = scope && user && users[user].pull
      ? [{ type: scope.split(':')[0], name: scope.split(':')[1], actions: ['pull'] }]
      : [];
    answer(res, 200, { token: mint(access), access_token: mint(access), expires_in: 300 });
  });
}

function answer(res: ServerResponse, status: number, body: object): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

// ---- a proxy in front of a server ----------------------------------------------------------------------------------

export interface ProxiedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
}

export interface Proxy {
  readonly url: string;
  /** Host:port, for variables that take no scheme. */
  readonly host: string;
  readonly requests: readonly ProxiedRequest[];
  close(): Promise<void>;
}

/**
 * An HTTP proxy to `target` that records every request; `intercept` may answer one itself (return true) to inject
 * a fault, and sees the request's index from 0.
 */
export async function startProxy(target: string, intercept?: (req: IncomingMessage, res: ServerResponse, index: number) => boolean): Promise<Proxy> {
  const requests: ProxiedRequest[] = [];
  const to = new URL(target);
  const server = createServer((req, res) => {
    const index = requests.length;
    requests.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers });
    if (intercept?.(req, res, index)) return;
    // The Host header passes unchanged: a SigV4 signature covers the host the client addressed, the proxy.
    const upstream = httpRequest({ host: to.hostname, port: to.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`, host: `127.0.0.1:${port}`, requests,
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
