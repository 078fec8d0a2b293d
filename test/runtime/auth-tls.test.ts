/**
 * Bearer-token authentication and TLS, on the real runtime process over both protocols: missing, malformed, wrong
 * and rotated-out tokens are refused (401 / UNAUTHENTICATED) while health checks stay open; the token file is
 * rotated the way Kubernetes updates a Secret volume (a `..data` symlink swap) and the way a tool writes a file
 * atomically (temp + rename), with no restart; REST and gRPC speak TLS with a certificate from a generated CA.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readlinkSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { checkServerIdentity, type TLSSocket } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { Agent, request } from 'undici';
import type { FastifyReply, FastifyRequest } from 'fastify';
import pino from 'pino';
import { METRIC } from '@modelship/contract';
import { Authenticator, TokenFile, parseTokens } from '../../runtime/src/server/auth';
import { ServingCertificate } from '../../runtime/src/server/tls';
import { MODELS, REPO_ROOT } from '../helpers/paths';
import { startRuntime, type LogLine, type RuntimeProcess } from '../helpers/runtime-process';
import { sleep, waitFor } from '../helpers/wait';

const PROTO = join(REPO_ROOT, 'runtime', 'src', 'protocols', 'grpc_predict_v2.proto');
const definition = loadSync(PROTO, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const Service = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
type Client = InstanceType<grpc.ServiceClientConstructor>;
/** TLS clients name the server localhost (a DNS SAN): RFC 6066 has no IP addresses in SNI, and node warns about them. */
const TLS_TARGET = { 'grpc.ssl_target_name_override': 'localhost' };

const MODEL = ['--model', `my_model=${MODELS.linearRegression}`, '--no-warmup'];
const INFER = { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], data: [2] }] };
const GRPC_INFER = { model_name: 'my_model', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 1], contents: { fp32_contents: [2] } }] };

function rpc(client: Client, method: string, body: object, token?: string): Promise<any> {
  const metadata = new grpc.Metadata();
  if (token !== undefined) metadata.set('authorization', token);
  return new Promise((resolve, reject) => {
    (client[method] as Function).call(client, body, metadata, { deadline: Date.now() + 5000 },
      (error: grpc.ServiceError | null, response: unknown) => (error ? reject(error) : resolve(response)));
  });
}

async function grpcRefused(call: Promise<unknown>, code: grpc.status, details?: RegExp): Promise<void> {
  await assert.rejects(call, (error: grpc.ServiceError) => {
    assert.equal(grpc.status[error.code], grpc.status[code], error.details);
    if (details) assert.match(error.details, details);
    return true;
  });
}

async function http(url: string, options: { token?: string; header?: string; body?: unknown; dispatcher?: Agent } = {}) {
  const headers: Record<string, string> = {};
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  if (options.header !== undefined) headers.authorization = options.header;
  if (options.body !== undefined) headers['content-type'] = 'application/json';
  const response = await request(url, {
    method: options.body === undefined ? 'GET' : 'POST', headers, dispatcher: options.dispatcher,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
  });
  const text = await response.body.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch { /* /metrics is text */ }
  return { status: response.statusCode, headers: response.headers, body, text };
}

/**
 * How the tests wait for a rotation, picked up asynchronously: a probe every 100 ms, and a request that throws fails
 * the test at once rather than being tried again.
 */
const POLL = { intervalMs: 100, retryErrors: false };

/** Asserts that the runtime started listening exactly once on each protocol: it served throughout, never restarting. */
const listenedOnce = (runtime: RuntimeProcess) =>
  assert.deepEqual(runtime.logs.filter((line) => /^listening for /.test(line.msg)).map((line) => line.protocol).sort(), ['grpc', 'http'],
    'listening is logged once per protocol: no restart');

/** Writes a file the way an atomic writer does: a temporary file, then a rename over the old one. */
function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/**
 * A Kubernetes Secret volume, updated the way the kubelet does it: the files in a new `..<version>` directory, a
 * `..data_tmp -> ..<version>` symlink renamed over `..data`, the old version removed. The files the runtime reads
 * are symlinks through `..data` (`tokens -> ..data/tokens`), made once with `secretLinks`.
 */
function secretVolume(dir: string, version: string, files: Record<string, string | Buffer>): void {
  let previous: string | undefined;
  try {
    previous = readlinkSync(join(dir, '..data'));
  } catch { /* the first version */ }
  mkdirSync(join(dir, `..${version}`));
  for (const [name, content] of Object.entries(files)) writeFileSync(join(dir, `..${version}`, name), content);
  symlinkSync(`..${version}`, join(dir, '..data_tmp'));
  renameSync(join(dir, '..data_tmp'), join(dir, '..data'));
  if (previous !== undefined) rmSync(join(dir, previous), { recursive: true });
}

function secretLinks(dir: string, names: readonly string[]): void {
  for (const name of names) symlinkSync(`..data/${name}`, join(dir, name));
}

const tmp = mkdtempSync(join(tmpdir(), 'modelship-auth-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

describe('bearer tokens from a Secret volume, REST and gRPC (--auth-exempt health-and-metrics)', () => {
  const secret = join(tmp, 'secret');
  let runtime: RuntimeProcess;
  let client: Client;
  before(async () => {
    mkdirSync(secret);
    secretVolume(secret, 'v1', { tokens: '# rotated by ops\nalpha-token\n\n  beta-token  \n' });
    secretLinks(secret, ['tokens']);
    runtime = await startRuntime([...MODEL, '--auth-token-file', join(secret, 'tokens')]);
    client = new Service(`127.0.0.1:${runtime.grpcPort}`, grpc.credentials.createInsecure());
  });
  after(async () => {
    client?.close();
    await runtime?.stop();
  });

  it('refuses REST requests without, with a malformed, or with a wrong token, saying which, and never echoes it', async () => {
    const infer = `${runtime.url}/v2/models/my_model/infer`;
    const missing = await http(infer, { body: INFER });
    assert.equal(missing.status, 401);
    assert.equal(missing.headers['www-authenticate'], 'Bearer realm="modelship"');
    assert.match(missing.body.error, /missing credentials/);
    const basic = await http(infer, { body: INFER, header: 'Basic YWxwaGEtdG9rZW46' });
    assert.equal(basic.status, 401);
    assert.match(basic.body.error, /not a Bearer token/);
    const wrong = await http(infer, { body: INFER, token: 'gamma-token-secret' });
    assert.equal(wrong.status, 401);
    assert.match(wrong.body.error, /not accepted/);
    assert.ok(!wrong.text.includes('gamma-token-secret'), 'the token is not echoed');
    // A prefix of a good token, and the whole file line with its comment, are not tokens.
    assert.equal((await http(infer, { body: INFER, token: 'alpha' })).status, 401);
    assert.equal((await http(infer, { body: INFER, token: '#' })).status, 401);
    // Every protected route: metadata, model readiness, TF Serving, and unknown routes (401 before 404).
    for (const path of ['/v2', '/v2/models/my_model', '/v2/models/my_model/ready', '/v1/models/my_model', '/nope']) {
      assert.equal((await http(`${runtime.url}${path}`)).status, 401, path);
    }
    const log = JSON.stringify(runtime.logs);
    for (const token of ['alpha-token', 'beta-token', 'gamma-token-secret']) assert.ok(!log.includes(token), `${token} not logged`);
  });

  it('serves REST requests with either accepted token; the scheme is case-insensitive', async () => {
    const ok = await http(`${runtime.url}/v2/models/my_model/infer`, { body: INFER, token: 'alpha-token' });
    assert.equal(ok.status, 200, ok.text);
    assert.equal(ok.body.outputs.length, 1);
    assert.equal((await http(`${runtime.url}/v2`, { header: 'bearer beta-token' })).status, 200);
    assert.equal((await http(`${runtime.url}/v1/models/my_model:predict`, { body: { instances: [[1]] }, token: 'beta-token' })).status, 200);
  });

  it('leaves health and /metrics open, and counts no refused request against the model', async () => {
    for (const path of ['/v2/health/live', '/v2/health/ready', '/metrics']) assert.equal((await http(`${runtime.url}${path}`)).status, 200, path);
    const metrics = (await http(`${runtime.url}/metrics`)).text;
    const counted = metrics.split('\n').filter((line) => line.startsWith(METRIC.requests) && line.includes('model="my_model"'));
    assert.ok(counted.length > 0, 'the accepted requests are counted');
    assert.ok(counted.every((line) => !line.includes('code="401"')), counted.join('\n'));
  });

  it('refuses gRPC calls without or with a wrong token (UNAUTHENTICATED), and serves them with a good one', async () => {
    await grpcRefused(rpc(client, 'ModelInfer', GRPC_INFER), grpc.status.UNAUTHENTICATED, /missing credentials/);
    await grpcRefused(rpc(client, 'ServerMetadata', {}, 'Bearer wrong'), grpc.status.UNAUTHENTICATED, /not accepted/);
    await grpcRefused(rpc(client, 'ModelReady', { name: 'my_model' }, 'alpha-token'), grpc.status.UNAUTHENTICATED, /not a Bearer token/);
    const response = await rpc(client, 'ModelInfer', GRPC_INFER, 'Bearer alpha-token');
    assert.equal(response.model_name, 'my_model');
    assert.equal((await rpc(client, 'ServerMetadata', {}, 'Bearer beta-token')).name, 'modelship');
    // ServerLive and ServerReady are health checks, open like REST's.
    assert.equal((await rpc(client, 'ServerLive', {})).live, true);
    assert.equal((await rpc(client, 'ServerReady', {})).ready, true);
  });

  it('picks up a rotated Secret without a restart: the removed token is refused, the new one accepted', async () => {
    secretVolume(secret, 'v2', { tokens: 'beta-token\ndelta-token\n' });
    await waitFor('alpha-token to be refused', async () => (await http(`${runtime.url}/v2`, { token: 'alpha-token' })).status === 401 || undefined, 6000, POLL);
    assert.equal((await http(`${runtime.url}/v2`, { token: 'delta-token' })).status, 200);
    assert.equal((await http(`${runtime.url}/v2`, { token: 'beta-token' })).status, 200);
    await grpcRefused(rpc(client, 'ServerMetadata', {}, 'Bearer alpha-token'), grpc.status.UNAUTHENTICATED, /not accepted/);
    assert.equal((await rpc(client, 'ServerMetadata', {}, 'Bearer delta-token')).name, 'modelship');
    assert.equal(runtime.process.exitCode, null);
    listenedOnce(runtime);
  });
});

// ---- TLS

function openssl(args: string[], cwd: string): void {
  execFileSync('/usr/bin/openssl', args, { cwd, stdio: 'pipe' });
}

const EC_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

/** A self-signed CA, `<name>.crt` and `<name>.key` in `dir`. */
function makeCa(dir: string, name: string): void {
  openssl(['req', '-x509', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '1', '-subj', `/CN=modelship test ${name}`], dir);
}

/** A one-day server certificate for localhost and 127.0.0.1 that the CA `ca` signs, `<name>.crt` and `<name>.key`. */
function issueServerCertificate(dir: string, ca: string, name: string): void {
  openssl(['req', ...EC_KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'], dir);
  openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-CAcreateserial', '-days', '1',
    '-copy_extensions', 'copy', '-out', `${name}.crt`], dir);
}

/** A CA, a server certificate it signs, and an unrelated CA. */
function makeCertificates(dir: string): void {
  makeCa(dir, 'ca');
  makeCa(dir, 'other-ca');
  issueServerCertificate(dir, 'ca', 'server');
}

describe('TLS from certificate files, REST and gRPC, with bearer tokens (--auth-exempt health)', () => {
  const dir = join(tmp, 'tls');
  let runtime: RuntimeProcess;
  let ca: Buffer;
  let trusting: Agent;
  let httpsUrl: string;
  const tokenFile = join(dir, 'tokens');
  before(async () => {
    mkdirSync(dir);
    makeCertificates(dir);
    ca = readFileSync(join(dir, 'ca.crt'));
    trusting = new Agent({ connect: { ca, servername: 'localhost' } });
    writeFileSync(tokenFile, 'tls-token\n');
    runtime = await startRuntime([...MODEL, '--tls-cert-file', join(dir, 'server.crt'), '--tls-key-file', join(dir, 'server.key'),
      '--auth-token-file', tokenFile, '--auth-exempt', 'health'], { waitReady: false });
    httpsUrl = runtime.url.replace('http://', 'https://');
    await waitFor('ready over https', async () => (await http(`${httpsUrl}/v2/health/ready`, { dispatcher: trusting }).catch(() => undefined))?.status === 200 || undefined, 20_000, POLL);
  });
  after(async () => {
    await trusting?.close();
    await runtime?.stop();
  });

  it('serves REST over HTTPS to a client that trusts the CA; /metrics needs a token with --auth-exempt health', async () => {
    const ok = await http(`${httpsUrl}/v2/models/my_model/infer`, { body: INFER, token: 'tls-token', dispatcher: trusting });
    assert.equal(ok.status, 200, ok.text);
    assert.equal((await http(`${httpsUrl}/v2/health/live`, { dispatcher: trusting })).status, 200);
    assert.equal((await http(`${httpsUrl}/metrics`, { dispatcher: trusting })).status, 401);
    assert.equal((await http(`${httpsUrl}/metrics`, { token: 'tls-token', dispatcher: trusting })).status, 200);
    assert.equal((await http(`${httpsUrl}/v2/models/my_model/infer`, { body: INFER, dispatcher: trusting })).status, 401);
  });

  it('refuses plain HTTP on the TLS port and clients that do not trust the CA', async () => {
    await assert.rejects(fetch(`${runtime.url}/v2/health/live`));
    const untrusting = new Agent({ connect: { ca: readFileSync(join(dir, 'other-ca.crt')), servername: 'localhost' } });
    await assert.rejects(http(`${httpsUrl}/v2/health/live`, { dispatcher: untrusting }), /certificate|self.signed|verify/i);
    await untrusting.close();
    const wrongCa = new Service(`127.0.0.1:${runtime.grpcPort}`, grpc.credentials.createSsl(readFileSync(join(dir, 'other-ca.crt'))), TLS_TARGET);
    await grpcRefused(rpc(wrongCa, 'ServerLive', {}), grpc.status.UNAVAILABLE);
    wrongCa.close();
    const plaintext = new Service(`127.0.0.1:${runtime.grpcPort}`, grpc.credentials.createInsecure());
    await grpcRefused(rpc(plaintext, 'ServerLive', {}), grpc.status.UNAVAILABLE);
    plaintext.close();
  });

  it('serves gRPC over TLS to a client that trusts the CA, with the same token rules', async () => {
    const client = new Service(`127.0.0.1:${runtime.grpcPort}`, grpc.credentials.createSsl(ca), TLS_TARGET);
    try {
      assert.equal((await rpc(client, 'ServerReady', {})).ready, true);
      await grpcRefused(rpc(client, 'ModelInfer', GRPC_INFER), grpc.status.UNAUTHENTICATED, /missing credentials/);
      assert.equal((await rpc(client, 'ModelInfer', GRPC_INFER, 'Bearer tls-token')).model_name, 'my_model');
    } finally {
      client.close();
    }
  });

  it('fails closed when the token file is emptied, and recovers when a token is written (temp + rename)', async () => {
    writeAtomically(tokenFile, '# no tokens right now\n');
    await waitFor('tls-token to be refused', async () => (await http(`${httpsUrl}/v2`, { token: 'tls-token', dispatcher: trusting })).status === 401 || undefined, 6000, POLL);
    assert.ok(runtime.logs.some((line) => line.level >= 50 && /holds no token/.test(line.msg)), 'an error is logged');
    assert.equal((await http(`${httpsUrl}/v2/health/ready`, { dispatcher: trusting })).status, 200, 'health stays open');
    writeAtomically(tokenFile, 'next-token\n');
    await waitFor('next-token to be accepted', async () => (await http(`${httpsUrl}/v2`, { token: 'next-token', dispatcher: trusting })).status === 200 || undefined, 6000, POLL);
    assert.equal((await http(`${httpsUrl}/v2`, { token: 'tls-token', dispatcher: trusting })).status, 401);
  });
});

// ---- certificate renewal

/** A GET over a new HTTPS connection: its status and the SHA-256 fingerprint of the certificate served. */
function httpsGet(url: string, ca: Buffer): Promise<{ status: number; fingerprint: string }> {
  return new Promise((resolve, reject) => {
    const outgoing = httpsRequest(url, { ca, servername: 'localhost', agent: false }, (response) => {
      const fingerprint = (response.socket as TLSSocket).getPeerCertificate().fingerprint256;
      response.resume();
      response.on('end', () => resolve({ status: response.statusCode ?? 0, fingerprint }));
    });
    outgoing.on('error', reject);
    outgoing.end();
  });
}

/** A ServerLive call on a new gRPC channel (its own subchannel, so a new connection): the certificate's fingerprint. */
async function grpcFingerprint(port: number, ca: Buffer): Promise<string> {
  let seen: string | undefined;
  const credentials = grpc.credentials.createSsl(ca, null, null, {
    checkServerIdentity: (host, certificate) => {
      seen = certificate.fingerprint256;
      return checkServerIdentity(host, certificate);
    },
  });
  const client = new Service(`127.0.0.1:${port}`, credentials, { ...TLS_TARGET, 'grpc.use_local_subchannel_pool': 1 });
  try {
    assert.equal((await rpc(client, 'ServerLive', {})).live, true);
  } finally {
    client.close();
  }
  assert.ok(seen, 'the channel saw a certificate');
  return seen;
}

describe('a renewed certificate is served without a restart, REST and gRPC; a mismatched pair is refused', () => {
  const dir = join(tmp, 'renewal');
  const volume = join(dir, 'secret');
  let runtime: RuntimeProcess;
  let ca: Buffer;
  let httpsUrl: string;
  const fingerprint = (name: string) => new X509Certificate(readFileSync(join(dir, `${name}.crt`))).fingerprint256;
  const pair = (cert: string, key: string) => ({ 'tls.crt': readFileSync(join(dir, `${cert}.crt`)), 'tls.key': readFileSync(join(dir, `${key}.key`)) });
  const served = async () => ({
    rest: (await httpsGet(`${httpsUrl}/v2/health/live`, ca)).fingerprint,
    grpc: await grpcFingerprint(runtime.grpcPort, ca),
  });
  before(async () => {
    mkdirSync(volume, { recursive: true });
    makeCa(dir, 'ca');
    issueServerCertificate(dir, 'ca', 'a');
    issueServerCertificate(dir, 'ca', 'b');
    ca = readFileSync(join(dir, 'ca.crt'));
    // A kubernetes.io/tls Secret volume: tls.crt and tls.key are symlinks through ..data.
    secretVolume(volume, 'v1', pair('a', 'a'));
    secretLinks(volume, ['tls.crt', 'tls.key']);
    // Liveness answers at once; the model need not be ready for a handshake.
    runtime = await startRuntime([...MODEL, '--tls-cert-file', join(volume, 'tls.crt'), '--tls-key-file', join(volume, 'tls.key')], { waitReady: false });
    httpsUrl = runtime.url.replace('http://', 'https://');
  });
  after(() => runtime?.stop());

  it('serves certificate A on both doors at start, and logs which one', async () => {
    assert.deepEqual(await served(), { rest: fingerprint('a'), grpc: fingerprint('a') });
    const started = runtime.logs.find((line) => line.msg === 'serving the TLS certificate');
    assert.equal(started?.fingerprint256, fingerprint('a'));
    assert.match(String(started?.notAfter), /^\d{4}-\d\d-\d\dT/);
  });

  it('serves B to new connections within seconds of the kubelet swapping the volume, and logs it once', async () => {
    const before = new Service(`127.0.0.1:${runtime.grpcPort}`, grpc.credentials.createSsl(ca), { ...TLS_TARGET, 'grpc.use_local_subchannel_pool': 1 });
    try {
      assert.equal((await rpc(before, 'ServerLive', {})).live, true);
      secretVolume(volume, 'v2', pair('b', 'b'));
      await waitFor('HTTPS to serve B', async () => (await httpsGet(`${httpsUrl}/v2/health/live`, ca)).fingerprint === fingerprint('b') || undefined, 6000, POLL);
      assert.equal(await grpcFingerprint(runtime.grpcPort, ca), fingerprint('b'));
      assert.equal((await httpsGet(`${httpsUrl}/v2/health/live`, ca)).status, 200);
      // A channel connected before the renewal keeps its connection (and certificate A) and keeps working.
      assert.equal((await rpc(before, 'ServerLive', {})).live, true);
    } finally {
      before.close();
    }
    const renewed = runtime.logs.filter((line) => line.msg === 'serving a renewed TLS certificate');
    assert.equal(renewed.length, 1, JSON.stringify(renewed));
    assert.equal(renewed[0].fingerprint256, fingerprint('b'));
    assert.match(String(renewed[0].notAfter), /^\d{4}-\d\d-\d\dT/);
    assert.ok(!JSON.stringify(runtime.logs).includes('PRIVATE KEY'), 'no key in the log');
    assert.equal(runtime.process.exitCode, null);
    listenedOnce(runtime);
  });

  it("keeps serving B when the files hold a mismatched pair (A's key with B's certificate), with one warning", async () => {
    const warnings = () => runtime.logs.filter((line) => line.level === 40 && /ignoring the changed TLS files/.test(line.msg));
    secretVolume(volume, 'v3', pair('b', 'a'));
    await waitFor('a warning about the mismatched pair', () => warnings().length > 0 || undefined, 6000, POLL);
    assert.match(warnings()[0].msg, /key values mismatch/);
    assert.deepEqual(await served(), { rest: fingerprint('b'), grpc: fingerprint('b') });
    assert.equal(warnings().length, 1);
    assert.equal(runtime.logs.filter((line) => line.msg === 'serving a renewed TLS certificate').length, 1);
    assert.equal(runtime.process.exitCode, null);
  });

  it('exits promptly on SIGTERM with the files still watched', async () => {
    const started = Date.now();
    assert.equal(await runtime.stop(), 0);
    assert.ok(Date.now() - started < 5000, `exited after ${Date.now() - started} ms`);
  });
});

describe('ServingCertificate with files edited in place (not atomically)', () => {
  it('refuses a certificate written before its key and a half-written one, takes a complete pair, and stops on close', async () => {
    const dir = join(tmp, 'in-place');
    mkdirSync(dir);
    makeCa(dir, 'ca');
    issueServerCertificate(dir, 'ca', 'a');
    issueServerCertificate(dir, 'ca', 'b');
    const file = (name: string) => readFileSync(join(dir, name));
    const fingerprintOf = (cert: Buffer) => new X509Certificate(cert).fingerprint256;
    const [certFile, keyFile] = [join(dir, 'tls.crt'), join(dir, 'tls.key')];
    writeFileSync(certFile, file('a.crt'));
    writeFileSync(keyFile, file('a.key'));
    const lines: LogLine[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line) as LogLine) });
    const warnings = () => lines.filter((line) => line.level === 40);
    const renewals: string[] = [];
    const certificate = new ServingCertificate(certFile, keyFile, log, 200);
    try {
      certificate.onRenewal((pair) => renewals.push(fingerprintOf(pair.cert)));
      writeFileSync(certFile, file('b.crt'));
      await waitFor('a warning about the certificate without its key', () => warnings().length === 1 || undefined, 3000, POLL);
      assert.deepEqual(renewals, []);
      assert.equal(fingerprintOf(certificate.current.cert), fingerprintOf(file('a.crt')));
      writeFileSync(keyFile, file('b.key'));
      await waitFor('the renewal', () => renewals.length === 1 || undefined, 3000, POLL);
      assert.equal(renewals[0], fingerprintOf(file('b.crt')));
      writeFileSync(certFile, file('a.crt').subarray(0, 200));
      await waitFor('a warning about the half-written certificate', () => warnings().length === 2 || undefined, 3000, POLL);
      assert.equal(fingerprintOf(certificate.current.cert), fingerprintOf(file('b.crt')));
      assert.ok(!JSON.stringify(lines).includes('PRIVATE KEY'), 'no key in the log');
    } finally {
      certificate.close();
    }
    writeFileSync(certFile, file('a.crt'));
    writeFileSync(keyFile, file('a.key'));
    await sleep(500);
    assert.equal(renewals.length, 1, 'nothing is reloaded after close');
  });
});

describe('a wrong auth or TLS setting ends the start with a usage error', () => {
  for (const [name, args, message] of [
    ['a certificate without a key', ['--tls-cert-file', '/etc/hostname'], /--tls-cert-file and --tls-key-file go together/],
    ['an unreadable certificate', ['--tls-cert-file', '/nonexistent/tls.crt', '--tls-key-file', '/nonexistent/tls.key'], /cannot read --tls-cert-file/],
    ['a missing token file', ['--auth-token-file', '/nonexistent/tokens'], /cannot read --auth-token-file/],
    ['an unknown --auth-exempt', ['--auth-token-file', '/etc/hostname', '--auth-exempt', 'metrics'], /--auth-exempt must be one of health, health-and-metrics, none/],
  ] as const) {
    it(name, async () => {
      const runtime = startRuntime([...MODEL, ...args], { waitReady: false });
      await assert.rejects(runtime, message);
    });
  }
});

describe('which endpoints each --auth-exempt leaves open', () => {
  const dir = join(tmp, 'exempt');
  const log = pino({ level: 'silent' });
  const open = (auth: Authenticator, endpoint: string | undefined) => {
    let sent: number | undefined;
    let passed = false;
    const reply = { code(status: number) { sent = status; return reply; }, header: () => reply, type: () => reply, send: () => reply };
    auth.restHook({ routeOptions: { config: { endpoint } }, headers: {} } as unknown as FastifyRequest, reply as unknown as FastifyReply, () => { passed = true; });
    assert.equal(passed, sent === undefined);
    return passed;
  };
  for (const [exempt, openRoutes, openCalls] of [
    ['health-and-metrics', ['live', 'ready', 'metrics'], ['ServerLive', 'ServerReady']],
    ['health', ['live', 'ready'], ['ServerLive', 'ServerReady']],
    ['none', [], []],
  ] as const) {
    it(exempt, () => {
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(dir, 'tokens'), 'token\n');
      const auth = new Authenticator(new TokenFile(join(dir, 'tokens'), log), exempt);
      try {
        // Route kinds as the REST routes declare them (server/endpoints.ts); undefined is a 404.
        for (const route of ['live', 'ready', 'metrics', 'metadata', 'model-ready', 'inference', undefined]) {
          assert.equal(open(auth, route), (openRoutes as readonly (string | undefined)[]).includes(route), String(route));
        }
        for (const call of ['ServerLive', 'ServerReady', 'ModelReady', 'ServerMetadata', 'ModelInfer']) {
          assert.equal(auth.grpcRefusal(call, new grpc.Metadata()) === undefined, (openCalls as readonly string[]).includes(call), call);
        }
      } finally {
        auth.close();
      }
    });
  }

  it('reads one token per line, skipping blank lines and comments', () => {
    assert.deepEqual(parseTokens('# a comment\r\n a \n\n\tb\t\n#c\n'), ['a', 'b']);
  });
});
