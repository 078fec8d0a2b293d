/**
 * `modelship fetch` from the stores users keep models in, each a real server of its protocol on 127.0.0.1: S3
 * (moto: SigV4 verified by botocore, IAM policies, STS for IRSA), Cloud Storage (fake-gcs-server's JSON API) and an
 * OCI registry (Debian's docker-registry, with the token flow, htpasswd, or no auth). Where a server cannot show
 * what fetch sent, or cannot fail on cue, a recording proxy stands in front of it; only the token endpoints of
 * Google and the EKS credentials agent are fixtures. Judged as in cli.test.ts: exit code, one line on stderr, and
 * what is left at --dest. Every store keeps the https guarantees: the digest verified, nothing partial left, transient
 * failures retried, and a one-line reason that names the fix.
 *
 * The servers come from test/stores/install.sh (moto, fake-gcs-server) and apt (docker-registry, openssl); without
 * them these tests skip, and under CI they fail.
 */
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, randomBytes, verify } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import { MODEL_FILE_NAME, MODEL_REPOSITORY_PATH } from '@modelship/contract';
import { ModelCredentials, ModelService, ModelSource, type FromUriOptions } from 'modelship';
import { expectExit, oneLineReason, retryWarnings, runCli, type CliResult } from '../helpers/cli-process';
import { fetchInSandbox, sandboxUnavailable, type VolumeEntry } from '../helpers/fetch-sandbox';
import { startFixtureServer, type FixtureServer } from '../helpers/http-fixture-server';
import { initContainerRun, type Secrets } from '../helpers/init-container';
import {
  HTPASSWD_USER, type GcsServer, type MotoServer, type Proxy, type Registry, startFakeGcs, startMoto, startProxy, startRegistry, storeUnavailable,
} from '../helpers/model-stores';
import { MODELS } from '../helpers/paths';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const MiB = 1024 * 1024;
/** A real model, as users store them. */
const MODEL = readFileSync(MODELS.linearRegression);
const DIGEST = sha256(MODEL);
/** Another file, for the wrong-content cases. */
const OTHER = randomBytes(2048);
/** Bigger than the sandbox's small volume; random, so nothing along the way can compress it. */
const BIG = randomBytes(3 * MiB);
const TIMEOUT_MS = 20_000;

/** A store's "try again later": a 503 with the store's own error body. */
function unavailable(res: ServerResponse, contentType: string, body: string): true {
  res.writeHead(503, { 'content-type': contentType });
  res.end(body);
  return true;
}

/** A model download that dies after 10 bytes, as a dropped connection does. */
function cutShort(res: ServerResponse): true {
  res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': MODEL.length });
  res.write(MODEL.subarray(0, 10), () => setTimeout(() => res.socket?.destroy(), 20));
  return true;
}
/** The test machine's own cloud and registry settings must not reach the CLI. */
const STORE_VARIABLES = ['AWS_', 'GOOGLE_', 'GCE_', 'STORAGE_EMULATOR_HOST', 'DOCKER_CONFIG', 'CLOUDSDK_'];

/** Skip without the servers on a developer's machine; fail under CI, where .ci/run installs them. */
const skipUnless = (store: 's3' | 'gcs' | 'oci') => {
  const reason = storeUnavailable(store);
  return reason && !process.env.CI ? `${reason} (under CI this fails instead)` : false;
};
const sandboxReason = sandboxUnavailable();

let tmp: string;
let cases = 0;
before(() => { tmp = mkdtempSync(join(tmpdir(), 'modelship-fetch-stores-')); });
after(() => rmSync(tmp, { recursive: true, force: true }));
/** A fresh dest path whose parent directories do not exist yet. */
const newDest = () => join(tmp, `case-${++cases}`, 'my_model', '1', MODEL_FILE_NAME);
const fetchArgs = (uri: string, dest: string, digest = DIGEST) => ['fetch', '--uri', uri, '--sha256', digest, '--dest', dest];
const fetchWith = (env: Record<string, string>, args: readonly string[]) =>
  runCli(args, { env: { HOME: tmp, ...env }, withoutEnv: STORE_VARIABLES, timeoutMs: TIMEOUT_MS });

function expectModel(result: CliResult, dest: string, bytes: Uint8Array = MODEL): void {
  expectExit(result, 0);
  assert.equal(result.stderr, '');
  assert.deepEqual(readFileSync(dest), Buffer.from(bytes));
  assert.deepEqual(readdirSync(dirname(dest)), [MODEL_FILE_NAME], 'no partial or temporary file is left beside the model');
}

/** A failure that is not retried: exit 1, one line, no retry warning, and nothing at --dest. */
function expectPermanent(result: CliResult, dest: string): string {
  expectExit(result, 1);
  const line = oneLineReason(result);
  assert.deepEqual(retryWarnings(result.stdout), [], `not retried: ${line}`);
  assert.ok(!/attempts/.test(line), line);
  assert.equal(existsSync(dest), false, 'no model.onnx');
  if (existsSync(dirname(dest))) assert.deepEqual(readdirSync(dirname(dest)), [], 'no temporary file');
  return line;
}

/** The full-disk case in the sandbox, for any store: ENOSPC named with the sizes, nothing left on the volume. */
async function expectFullDisk(uri: string, env: Record<string, string>, readOnlyFiles: readonly string[] = []): Promise<void> {
  const dest = `${MODEL_REPOSITORY_PATH}/my_model/1/${MODEL_FILE_NAME}`;
  const result = await fetchInSandbox(2 * MiB, [...fetchArgs(uri, dest, sha256(BIG)), '--retries', '3'], {
    env: { HOME: '/tmp', ...env }, readOnlyFiles, withoutEnv: STORE_VARIABLES, timeoutMs: TIMEOUT_MS,
  });
  expectExit(result, 1);
  const line = oneLineReason(result);
  assert.match(line, new RegExp(`cannot write ${dest}: no space left on device \\(ENOSPC\\) after writing \\d+ of ${BIG.length} bytes; \\d+ bytes are free there`), line);
  assert.deepEqual(retryWarnings(result.stdout), [], 'a full disk is not retried');
  const left: VolumeEntry[] = JSON.parse(result.fd3);
  assert.deepEqual(left.filter((e) => e.type === 'file'), [], 'no model.onnx, whole or partial, and no temporary file');
}

/**
 * The fetch-model init container that ModelService synthesizes for `uri`, run in the sandbox as the pod would run
 * it: its args, its env with the Secrets' keys resolved, its Secret volumes mounted where it mounts them. It must
 * leave exactly the model at /models/<name>/<version>/model.onnx.
 */
async function expectInitContainerFetches(uri: string, options: Omit<FromUriOptions, 'sha256'>, secrets: Secrets): Promise<void> {
  const chart = new Chart(Testing.app(), 'models', { namespace: 'ml' });
  new ModelService(chart, 'fraud', { model: ModelSource.fromUri(uri, { sha256: DIGEST, ...options }) });
  const run = initContainerRun(Testing.synth(chart), secrets, join(tmp, `pod-${++cases}`));
  const result = await fetchInSandbox(8 * MiB, run.args, { env: { HOME: '/tmp', ...run.env }, binds: run.binds, withoutEnv: STORE_VARIABLES, timeoutMs: TIMEOUT_MS });
  expectExit(result, 0);
  const files = (JSON.parse(result.fd3) as VolumeEntry[]).filter((e) => e.type === 'file');
  assert.deepEqual(files, [{ path: `${MODEL_REPOSITORY_PATH}/fraud/1/${MODEL_FILE_NAME}`, type: 'file', size: MODEL.length, sha256: DIGEST }], 'the model and nothing else');
}

// ---- S3 ----------------------------------------------------------------------------------------------------------------

describe('modelship fetch s3:// (moto)', { skip: skipUnless('s3'), concurrency: 1 }, () => {
  let moto: MotoServer;
  const proxies: Proxy[] = [];
  const fixtures: FixtureServer[] = [];
  const ODD_KEY = 'odd dir/ü+(1)!=&\'*.onnx';
  before(async () => {
    moto = await startMoto({ 'models/fraud/3/model.onnx': MODEL, [`models/${ODD_KEY}`]: MODEL, 'models/big.onnx': BIG });
  });
  after(async () => {
    await Promise.all([...proxies, ...fixtures].map((s) => s.close()));
    await moto?.close();
  });
  const proxy = async (intercept?: Parameters<typeof startProxy>[1]) => {
    const p = await startProxy(moto.endpoint, intercept);
    proxies.push(p);
    return p;
  };
  const keys = ([id, secret]: readonly [string, string]) => ({ AWS_ACCESS_KEY_ID: id, AWS_SECRET_ACCESS_KEY: secret });

  it('downloads with the keys in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from AWS_ENDPOINT_URL_S3, signed; a second run downloads nothing', async () => {
    const front = await proxy();
    const dest = newDest();
    const env = { ...keys(moto.reader), AWS_ENDPOINT_URL_S3: front.url };
    expectModel(await fetchWith(env, fetchArgs('s3://models/fraud/3/model.onnx', dest)), dest);
    assert.equal(front.requests.length, 1);
    assert.equal(front.requests[0].url, '/models/fraud/3/model.onnx', 'path-style on a custom endpoint');
    assert.match(String(front.requests[0].headers.authorization), new RegExp(`^AWS4-HMAC-SHA256 Credential=${moto.reader[0]}/\\d{8}/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=[0-9a-f]{64}$`));
    expectModel(await fetchWith(env, fetchArgs('s3://models/fraud/3/model.onnx', dest)), dest);
    assert.equal(front.requests.length, 1, 'the file in place already has the digest; nothing is downloaded');
  });

  it('reads a key with spaces, non-ASCII and reserved characters, with AWS_ENDPOINT_URL and AWS_REGION', async () => {
    const dest = newDest();
    expectModel(await fetchWith({ ...keys(moto.reader), AWS_ENDPOINT_URL: moto.endpoint, AWS_REGION: 'eu-west-1' }, fetchArgs(`s3://models/${ODD_KEY}`, dest)), dest);
  });

  it('says which identity lacks s3:GetObject on which object on a 403, without retrying', async () => {
    const dest = newDest();
    const result = await fetchWith({ ...keys(moto.nobody), AWS_ENDPOINT_URL_S3: moto.endpoint }, [...fetchArgs('s3://models/fraud/3/model.onnx', dest), '--retries', '3']);
    const line = expectPermanent(result, dest);
    assert.equal(line, `modelship: fetch s3://models/fraud/3/model.onnx failed: HTTP 403 FORBIDDEN: AccessDenied: the access key ${moto.nobody[0]} (AWS_ACCESS_KEY_ID) lacks s3:GetObject on arn:aws:s3:::models/fraud/3/model.onnx, `
      + 'or the object does not exist and it may not list the bucket; allow s3:GetObject in the identity\'s IAM policy or the bucket policy, and check the key');
  });

  it('names the missing key and the missing bucket on a 404, without retrying', async () => {
    const env = { ...keys(moto.reader), AWS_ENDPOINT_URL_S3: moto.endpoint };
    const [key, bucket] = [newDest(), newDest()];
    const [noKey, noBucket] = await Promise.all([
      fetchWith(env, [...fetchArgs('s3://models/fraud/4/model.onnx', key), '--retries', '3']),
      fetchWith(env, [...fetchArgs('s3://no-such-bucket/model.onnx', bucket), '--retries', '3']),
    ]);
    assert.match(expectPermanent(noKey, key), /HTTP 404 .*: NoSuchKey: there is no object 'fraud\/4\/model\.onnx' in bucket 'models'; check the key in the URI$/);
    assert.match(expectPermanent(noBucket, bucket), new RegExp(`HTTP 404 .*: NoSuchBucket: there is no bucket 'no-such-bucket' at ${moto.endpoint} \\(AWS_ENDPOINT_URL_S3\\); check the bucket name and the endpoint$`));
  });

  it('says the secret does not match the key (SignatureDoesNotMatch), and names an unknown key', async () => {
    const [wrongSecret, unknownKey] = [newDest(), newDest()];
    const [a, b] = await Promise.all([
      fetchWith({ AWS_ACCESS_KEY_ID: moto.reader[0], AWS_SECRET_ACCESS_KEY: 'not-the-secret', AWS_ENDPOINT_URL_S3: moto.endpoint }, fetchArgs('s3://models/fraud/3/model.onnx', wrongSecret)),
      fetchWith({ AWS_ACCESS_KEY_ID: 'AKIANOSUCHKEY0000000', AWS_SECRET_ACCESS_KEY: 'x', AWS_ENDPOINT_URL_S3: moto.endpoint }, fetchArgs('s3://models/fraud/3/model.onnx', unknownKey)),
    ]);
    assert.match(expectPermanent(a, wrongSecret), new RegExp(`HTTP 403 .*: SignatureDoesNotMatch: the secret access key does not belong to the access key ${moto.reader[0]} \\(AWS_ACCESS_KEY_ID\\); check AWS_SECRET_ACCESS_KEY$`));
    assert.match(expectPermanent(b, unknownKey), /HTTP 403 .*: InvalidAccessKeyId: the store does not know the access key AKIANOSUCHKEY0000000 \(AWS_ACCESS_KEY_ID\); check the key and AWS_ENDPOINT_URL_S3$/);
  });

  it('refuses other content at once, naming both digests, and leaves nothing', async () => {
    const dest = newDest();
    const wrong = sha256(OTHER);
    const result = await fetchWith({ ...keys(moto.reader), AWS_ENDPOINT_URL_S3: moto.endpoint }, fetchArgs('s3://models/fraud/3/model.onnx', dest, wrong));
    assert.match(expectPermanent(result, dest), new RegExp(`sha256 mismatch: expected ${wrong}, received ${DIGEST}$`));
  });

  it('retries S3\'s 503 SlowDown and a body cut short, then succeeds', async () => {
    const front = await proxy((_req, res, index) => {
      if (index === 0) return unavailable(res, 'application/xml', '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
      return index === 1 && cutShort(res);
    });
    const dest = newDest();
    const result = await fetchWith({ ...keys(moto.reader), AWS_ENDPOINT_URL_S3: front.url }, [...fetchArgs('s3://models/fraud/3/model.onnx', dest), '--retries', '3']);
    expectModel(result, dest);
    const warnings = retryWarnings(result.stdout);
    assert.equal(warnings.length, 2, result.stdout);
    assert.match(warnings[0], /HTTP 503 Service Unavailable: SlowDown 'Please reduce your request rate\.'/);
    assert.match(warnings[1], new RegExp(`download interrupted after 10 of ${MODEL.length} bytes`));
    assert.equal(front.requests.length, 3);
  });

  it('without credentials says which variables to set, and requests nothing', async () => {
    const front = await proxy();
    const dest = newDest();
    const line = expectPermanent(await fetchWith({ AWS_ENDPOINT_URL_S3: front.url }, [...fetchArgs('s3://models/fraud/3/model.onnx', dest), '--retries', '3']), dest);
    assert.match(line, /failed: no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \(from a Secret\), or AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE \(IRSA/);
    assert.equal(front.requests.length, 0);
  });

  it('exits 2 before any request on half a key pair, a bad endpoint or an s3:// URI without a key', async () => {
    const cases: Array<[Record<string, string>, string, RegExp]> = [
      [{ AWS_ACCESS_KEY_ID: 'AKIA' }, 's3://models/m.onnx', /^modelship: AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not; set both, or neither$/],
      [{ AWS_ROLE_ARN: 'arn:aws:iam::1:role/r' }, 's3://models/m.onnx', /AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not/],
      [{ AWS_ENDPOINT_URL_S3: 'minio:9000' }, 's3://models/m.onnx', /AWS_ENDPOINT_URL_S3 'minio:9000' must be an http:\/\/ or https:\/\/ URL/],
      [{}, 's3://models', /'s3:\/\/models' names no object: write s3:\/\/models\/<key of the model file>/],
      [{}, 's3://Models/m.onnx', /'Models' is not an S3 bucket name/],
    ];
    const results = await Promise.all(cases.map(([env, uri]) => fetchWith(env, fetchArgs(uri, newDest()))));
    results.forEach((result, i) => {
      expectExit(result, 2);
      assert.match(oneLineReason(result), cases[i][2]);
    });
  });

  it('IRSA: trades the token in AWS_WEB_IDENTITY_TOKEN_FILE at STS for the role\'s credentials, and signs with their session token', async () => {
    const front = await proxy();
    const token = join(tmp, 'irsa-token');
    writeFileSync(token, 'eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6bWw6bW9kZWwtcmVhZGVyIn0.c2ln\n');
    const dest = newDest();
    await moto.freeActions(1);
    const result = await fetchWith({ AWS_ROLE_ARN: moto.readerRole, AWS_WEB_IDENTITY_TOKEN_FILE: token, AWS_ENDPOINT_URL: front.url }, fetchArgs('s3://models/fraud/3/model.onnx', dest));
    expectModel(result, dest);
    assert.deepEqual(front.requests.map((r) => r.method), ['POST', 'GET'], 'STS, then the object');
    assert.match(String(front.requests[1].headers.authorization), /^AWS4-HMAC-SHA256 Credential=\w+\/\d{8}\/us-east-1\/s3\/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,/);
    assert.ok(front.requests[1].headers['x-amz-security-token'], 'the session token is sent');
  });

  it('IRSA with a role that may not read: the 403 names the role', async () => {
    const token = join(tmp, 'irsa-token-2');
    writeFileSync(token, 'eyJhbGciOiJSUzI1NiJ9.e30.c2ln');
    const dest = newDest();
    await moto.freeActions(1);
    const line = expectPermanent(await fetchWith({ AWS_ROLE_ARN: moto.nobodyRole, AWS_WEB_IDENTITY_TOKEN_FILE: token, AWS_ENDPOINT_URL: moto.endpoint }, fetchArgs('s3://models/fraud/3/model.onnx', dest)), dest);
    assert.match(line, new RegExp(`AccessDenied: the role ${moto.nobodyRole} \\(AWS_ROLE_ARN, assumed with AWS_WEB_IDENTITY_TOKEN_FILE\\) lacks s3:GetObject on arn:aws:s3:::models/fraud/3/model\\.onnx`));
  });

  /** A role's temporary credentials, real ones from moto's STS, so that moto checks what is signed with them. */
  const temporaryCredentials = async () => {
    await moto.freeActions(1);
    const sts = await fetch(moto.endpoint, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ Action: 'AssumeRoleWithWebIdentity', Version: '2011-06-15', RoleArn: moto.readerRole, RoleSessionName: 'test', WebIdentityToken: 'eyJ9.e30.c2ln' }),
    }).then((r) => r.text());
    return (tag: string) => new RegExp(`<${tag}>([^<]+)</${tag}>`).exec(sts)![1];
  };

  it('signs with temporary keys and their AWS_SESSION_TOKEN', async () => {
    const field = await temporaryCredentials();
    const dest = newDest();
    expectModel(await fetchWith({
      AWS_ACCESS_KEY_ID: field('AccessKeyId'), AWS_SECRET_ACCESS_KEY: field('SecretAccessKey'), AWS_SESSION_TOKEN: field('SessionToken'), AWS_ENDPOINT_URL_S3: moto.endpoint,
    }, fetchArgs('s3://models/fraud/3/model.onnx', dest)), dest);
  });

  it('EKS Pod Identity: credentials from AWS_CONTAINER_CREDENTIALS_FULL_URI, authorized by the token file', async () => {
    // The agent hands out a role's temporary credentials.
    const field = await temporaryCredentials();
    const seen: string[] = [];
    const agent = await startFixtureServer((req, res) => {
      seen.push(String(req.headers.authorization));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        AccessKeyId: field('AccessKeyId'), SecretAccessKey: field('SecretAccessKey'), Token: field('SessionToken'), Expiration: new Date(Date.now() + 3600_000).toISOString(),
      }));
    });
    fixtures.push(agent);
    const token = join(tmp, 'pod-identity-token');
    writeFileSync(token, 'pod-identity-token-value');
    const dest = newDest();
    const result = await fetchWith({
      AWS_CONTAINER_CREDENTIALS_FULL_URI: `${agent.url}/v1/credentials`, AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE: token, AWS_ENDPOINT_URL_S3: moto.endpoint,
    }, fetchArgs('s3://models/fraud/3/model.onnx', dest));
    expectModel(result, dest);
    assert.deepEqual(seen, ['pod-identity-token-value']);
  });

  it('fills no disk: a full volume fails at once with the sizes and leaves nothing', { skip: sandboxReason || false }, async () => {
    await expectFullDisk('s3://models/big.onnx', { ...keys(moto.reader), AWS_ENDPOINT_URL_S3: moto.endpoint });
  });

  it('runs what ModelSource.fromUri synthesizes with ModelCredentials.fromSecret, endpoint and region', { skip: sandboxReason || false }, async () => {
    await expectInitContainerFetches('s3://models/fraud/3/model.onnx', {
      credentials: ModelCredentials.fromSecret('model-store', { accessKeyIdKey: 'access-key', secretAccessKeyKey: 'secret-key' }), endpoint: moto.endpoint, region: 'us-east-1',
    }, { 'model-store': { 'access-key': moto.reader[0], 'secret-key': moto.reader[1] } });
  });
});

// ---- Cloud Storage ---------------------------------------------------------------------------------------------------

describe('modelship fetch gs:// (fake-gcs-server)', { skip: skipUnless('gcs'), concurrency: 4 }, () => {
  let gcs: GcsServer;
  const servers: Array<Proxy | FixtureServer> = [];
  const ODD_OBJECT = 'fraud/3/ü (1)+x=&.onnx';
  before(async () => {
    gcs = await startFakeGcs({ 'models/fraud/3/model.onnx': MODEL, [`models/${ODD_OBJECT}`]: MODEL, 'models/big.onnx': BIG });
  });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    await gcs?.close();
  });
  const proxy = async (intercept?: Parameters<typeof startProxy>[1]) => {
    const p = await startProxy(gcs.endpoint, intercept);
    servers.push(p);
    return p;
  };

  /** A service-account key file, with its token_uri at a fixture that checks the signed JWT as Google's does. */
  const serviceAccount = async (refuse = false) => {
    const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const email = 'model-reader@test-project.iam.gserviceaccount.com';
    const grants: Array<Record<string, unknown>> = [];
    const tokenEndpoint = await startFixtureServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (c: string) => { body += c; }).on('end', () => {
        const form = new URLSearchParams(body);
        const [header, claims, signature] = (form.get('assertion') ?? '').split('.');
        const valid = verify('sha256', Buffer.from(`${header}.${claims}`), publicKey, Buffer.from(signature ?? '', 'base64url'));
        grants.push({ grantType: form.get('grant_type'), valid, header: JSON.parse(Buffer.from(header, 'base64url').toString()), claims: JSON.parse(Buffer.from(claims, 'base64url').toString()) });
        res.writeHead(refuse || !valid ? 400 : 200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(refuse || !valid ? { error: 'invalid_grant', error_description: 'Invalid JWT Signature.' } : { access_token: 'ya29.test-access-token', expires_in: 3599, token_type: 'Bearer' }));
      });
    });
    servers.push(tokenEndpoint);
    const path = join(tmp, `sa-${++cases}.json`);
    writeFileSync(path, JSON.stringify({
      type: 'service_account', project_id: 'test-project', private_key_id: 'key-1', client_email: email,
      private_key: privateKey.export({ type: 'pkcs8', format: 'pem' }), token_uri: `${tokenEndpoint.url}/token`,
    }));
    return { path, email, grants, tokenUri: `${tokenEndpoint.url}/token` };
  };

  it('downloads from STORAGE_EMULATOR_HOST (host:port) without a token, an object name with slashes and odd characters', async () => {
    const front = await proxy();
    const dest = newDest();
    expectModel(await fetchWith({ STORAGE_EMULATOR_HOST: front.host }, fetchArgs(`gs://models/${ODD_OBJECT}`, dest)), dest);
    assert.equal(front.requests.length, 1);
    assert.equal(front.requests[0].url, `/storage/v1/b/models/o/${encodeURIComponent(ODD_OBJECT)}?alt=media`);
    assert.equal(front.requests[0].headers.authorization, undefined, 'an emulator gets no token');
  });

  it('names the missing object on a 404, without retrying', async () => {
    const dest = newDest();
    const line = expectPermanent(await fetchWith({ STORAGE_EMULATOR_HOST: gcs.endpoint }, [...fetchArgs('gs://models/fraud/4/model.onnx', dest), '--retries', '3']), dest);
    assert.equal(line, 'modelship: fetch gs://models/fraud/4/model.onnx failed: HTTP 404 Not Found: there is no object \'fraud/4/model.onnx\' in bucket \'models\' (or no such bucket); check the URI');
  });

  it('with a service-account key in GOOGLE_APPLICATION_CREDENTIALS: a JWT signed RS256 for read-only storage, its access token sent', async () => {
    const key = await serviceAccount();
    const front = await proxy();
    const dest = newDest();
    expectModel(await fetchWith({ GOOGLE_APPLICATION_CREDENTIALS: key.path, STORAGE_EMULATOR_HOST: front.url }, fetchArgs('gs://models/fraud/3/model.onnx', dest)), dest);
    assert.equal(key.grants.length, 1);
    const grant = key.grants[0] as { grantType: string; valid: boolean; header: Record<string, unknown>; claims: Record<string, number | string> };
    assert.equal(grant.grantType, 'urn:ietf:params:oauth:grant-type:jwt-bearer');
    assert.equal(grant.valid, true, 'signed with the key\'s private key');
    assert.deepEqual(grant.header, { alg: 'RS256', typ: 'JWT', kid: 'key-1' });
    assert.equal(grant.claims.iss, key.email);
    assert.equal(grant.claims.aud, key.tokenUri);
    assert.equal(grant.claims.scope, 'https://www.googleapis.com/auth/devstorage.read_only');
    assert.equal(Number(grant.claims.exp) - Number(grant.claims.iat), 3600);
    assert.equal(front.requests[0].headers.authorization, 'Bearer ya29.test-access-token');
  });

  it('names the service account and the fix when the token endpoint refuses its key, without retrying', async () => {
    const key = await serviceAccount(true);
    const dest = newDest();
    const line = expectPermanent(await fetchWith({ GOOGLE_APPLICATION_CREDENTIALS: key.path, STORAGE_EMULATOR_HOST: gcs.endpoint }, [...fetchArgs('gs://models/fraud/3/model.onnx', dest), '--retries', '3']), dest);
    assert.ok(line.endsWith(`HTTP 400 Bad Request: the token endpoint ${key.tokenUri} refused the service account ${key.email} (GOOGLE_APPLICATION_CREDENTIALS): invalid_grant 'Invalid JWT Signature.'; check that the key exists and is enabled, and the node's clock`), line);
  });

  it('says which file is missing when GOOGLE_APPLICATION_CREDENTIALS names none', async () => {
    const dest = newDest();
    const missing = join(tmp, 'no-such-key.json');
    const line = expectPermanent(await fetchWith({ GOOGLE_APPLICATION_CREDENTIALS: missing, STORAGE_EMULATOR_HOST: gcs.endpoint }, fetchArgs('gs://models/fraud/3/model.onnx', dest)), dest);
    assert.ok(line.endsWith(`cannot read GOOGLE_APPLICATION_CREDENTIALS '${missing}': ENOENT; mount the service-account key there`), line);
  });

  it('workload identity: a token from the metadata server (GCE_METADATA_HOST), asked with Metadata-Flavor: Google', async () => {
    const asked: Array<{ url: string; flavor: string }> = [];
    const metadata = await startFixtureServer((req, res) => {
      asked.push({ url: req.url ?? '', flavor: String(req.headers['metadata-flavor']) });
      res.writeHead(200, { 'content-type': 'application/json', 'metadata-flavor': 'Google' });
      res.end(JSON.stringify({ access_token: 'ya29.workload-identity', expires_in: 3599, token_type: 'Bearer' }));
    });
    servers.push(metadata);
    const front = await proxy();
    const dest = newDest();
    expectModel(await fetchWith({ GCE_METADATA_HOST: metadata.url.slice('http://'.length), STORAGE_EMULATOR_HOST: front.url }, fetchArgs('gs://models/fraud/3/model.onnx', dest)), dest);
    assert.deepEqual(asked, [{ url: `/computeMetadata/v1/instance/service-accounts/default/token?scopes=${encodeURIComponent('https://www.googleapis.com/auth/devstorage.read_only')}`, flavor: 'Google' }]);
    assert.equal(front.requests[0].headers.authorization, 'Bearer ya29.workload-identity');
  });

  it('says which identity lacks storage.objects.get on a 403 (as Cloud Storage answers it), without retrying', async () => {
    const key = await serviceAccount();
    const front = await proxy((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 403, message: `${key.email} does not have storage.objects.get access to the Google Cloud Storage object.`, errors: [{ reason: 'forbidden' }] } }));
      return true;
    });
    const dest = newDest();
    const line = expectPermanent(await fetchWith({ GOOGLE_APPLICATION_CREDENTIALS: key.path, STORAGE_EMULATOR_HOST: front.url }, [...fetchArgs('gs://models/fraud/3/model.onnx', dest), '--retries', '3']), dest);
    assert.ok(line.endsWith(`HTTP 403 Forbidden: '${key.email} does not have storage.objects.get access to the Google Cloud Storage object.': the service account ${key.email} (GOOGLE_APPLICATION_CREDENTIALS) lacks storage.objects.get on gs://models/fraud/3/model.onnx; grant it roles/storage.objectViewer on the bucket`), line);
  });

  it('retries a 503 and a body cut short, then succeeds', async () => {
    const front = await proxy((_req, res, index) => {
      if (index === 0) return unavailable(res, 'application/json', JSON.stringify({ error: { code: 503, message: 'Backend Error' } }));
      return index === 1 && cutShort(res);
    });
    const dest = newDest();
    const result = await fetchWith({ STORAGE_EMULATOR_HOST: front.url }, [...fetchArgs('gs://models/fraud/3/model.onnx', dest), '--retries', '3']);
    expectModel(result, dest);
    const warnings = retryWarnings(result.stdout);
    assert.equal(warnings.length, 2, result.stdout);
    assert.match(warnings[0], /HTTP 503 Service Unavailable: 'Backend Error'/);
    assert.match(warnings[1], /download interrupted after 10 of/);
  });

  it('fills no disk: a full volume fails at once with the sizes and leaves nothing', { skip: sandboxReason || false }, async () => {
    await expectFullDisk('gs://models/big.onnx', { STORAGE_EMULATOR_HOST: gcs.endpoint });
  });

  it('reads the key as the application default credentials in CLOUDSDK_CONFIG, named in errors as such', async () => {
    const key = await serviceAccount();
    const config = join(tmp, `cloudsdk-${++cases}`);
    mkdirSync(config);
    writeFileSync(join(config, 'application_default_credentials.json'), readFileSync(key.path));
    const front = await proxy();
    const dest = newDest();
    expectModel(await fetchWith({ CLOUDSDK_CONFIG: config, STORAGE_EMULATOR_HOST: front.url }, fetchArgs('gs://models/fraud/3/model.onnx', dest)), dest);
    assert.equal(front.requests[0].headers.authorization, 'Bearer ya29.test-access-token');
    const refused = await serviceAccount(true);
    writeFileSync(join(config, 'application_default_credentials.json'), readFileSync(refused.path));
    const refusedDest = newDest();
    const line = expectPermanent(await fetchWith({ CLOUDSDK_CONFIG: config, STORAGE_EMULATOR_HOST: gcs.endpoint }, fetchArgs('gs://models/fraud/3/model.onnx', refusedDest)), refusedDest);
    assert.match(line, new RegExp(`refused the service account ${refused.email} \\(CLOUDSDK_CONFIG\\): invalid_grant`));
  });

  it('runs what ModelSource.fromUri synthesizes with ModelCredentials.fromSecret (a mounted key) and an emulator endpoint', { skip: sandboxReason || false }, async () => {
    const key = await serviceAccount();
    const front = await proxy();
    await expectInitContainerFetches('gs://models/fraud/3/model.onnx', { credentials: ModelCredentials.fromSecret('gcs-key'), endpoint: front.url },
      { 'gcs-key': { 'key.json': readFileSync(key.path) } });
    assert.equal(key.grants.length, 1);
    assert.equal(front.requests[0].headers.authorization, 'Bearer ya29.test-access-token', 'the mounted key\'s token');
  });
});

// ---- OCI ---------------------------------------------------------------------------------------------------------------

describe('modelship fetch oci:// (docker-registry)', { skip: skipUnless('oci'), concurrency: 4 }, () => {
  let tokenRegistry: Registry;
  let basicRegistry: Registry;
  let openRegistry: Registry;
  const proxies: Proxy[] = [];
  let fraudDigest: string;
  before(async () => {
    [tokenRegistry, basicRegistry, openRegistry] = await Promise.all([
      startRegistry({ kind: 'token', users: { alice: { password: 'alice-password', pull: true }, bob: { password: 'bob-password', pull: false }, dave: { password: 'dave-password', pull: true } } }),
      startRegistry({ kind: 'basic' }),
      startRegistry({ kind: 'none' }),
    ]);
    fraudDigest = await tokenRegistry.push('models/fraud', '3', [{ title: 'model.onnx', bytes: MODEL }]);
    await tokenRegistry.push('models/multi', '1', [{ title: 'README.md', bytes: Buffer.from('# fraud model\n') }, { title: 'model.onnx', bytes: MODEL }]);
    await tokenRegistry.push('models/packed', '1', [{ title: 'models', bytes: OTHER, mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip' }]);
    await basicRegistry.push('models/fraud', '3', [{ title: 'model.onnx', bytes: MODEL }]);
    await openRegistry.push('models/fraud', '3', [{ title: 'model.onnx', bytes: MODEL }]);
    await openRegistry.push('models/big', '1', [{ title: 'model.onnx', bytes: BIG }]);
  });
  after(async () => {
    await Promise.all(proxies.map((p) => p.close()));
    await Promise.all([tokenRegistry, basicRegistry, openRegistry].map((r) => r?.close()));
  });

  /** A DOCKER_CONFIG directory whose config.json holds `auths`, as a mounted kubernetes.io/dockerconfigjson Secret does. */
  const dockerConfig = (auths: Record<string, Record<string, string>>) => {
    const dir = join(tmp, `docker-config-${++cases}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths }));
    return dir;
  };
  const login = (registry: string, user: string, password: string) =>
    dockerConfig({ [registry]: { auth: Buffer.from(`${user}:${password}`).toString('base64') } });
  const plain = (dest: string, uri: string, digest = DIGEST) => [...fetchArgs(uri, dest, digest), '--plain-http', 'true'];

  it('pulls a tag with the credentials in DOCKER_CONFIG through the token flow (Basic to the token service, pull scope)', async () => {
    const dest = newDest();
    // dave is this test's alone, so that the token requests of the tests running beside it do not count.
    const basic = `Basic ${Buffer.from('dave:dave-password').toString('base64')}`;
    expectModel(await fetchWith({ DOCKER_CONFIG: login(tokenRegistry.host, 'dave', 'dave-password') }, plain(dest, `oci://${tokenRegistry.host}/models/fraud:3`)), dest);
    const asked = tokenRegistry.tokenRequests.filter((r) => r.authorization === basic);
    assert.deepEqual(asked, [{ method: 'GET', scope: 'repository:models/fraud:pull', authorization: basic }], 'one token for the manifest and the blob');
  });

  it('pulls by manifest digest, and with a refresh token (identitytoken) traded by POST', async () => {
    const [byDigest, byRefresh] = [newDest(), newDest()];
    const [a, b] = await Promise.all([
      fetchWith({ DOCKER_CONFIG: login(`https://${tokenRegistry.host}`, 'alice', 'alice-password') }, plain(byDigest, `oci://${tokenRegistry.host}/models/fraud@${fraudDigest}`)),
      fetchWith({ DOCKER_CONFIG: dockerConfig({ [tokenRegistry.host]: { identitytoken: 'refresh-alice' } }) }, plain(byRefresh, `oci://${tokenRegistry.host}/models/fraud:3`)),
    ]);
    expectModel(a, byDigest);
    expectModel(b, byRefresh);
    assert.ok(tokenRegistry.tokenRequests.some((r) => r.method === 'POST' && r.scope === 'repository:models/fraud:pull'), 'the refresh token went by POST');
  });

  it('picks the model out of a multi-file artifact by its digest', async () => {
    const dest = newDest();
    expectModel(await fetchWith({ DOCKER_CONFIG: login(tokenRegistry.host, 'alice', 'alice-password') }, plain(dest, `oci://${tokenRegistry.host}/models/multi:1`)), dest);
  });

  it('refuses before downloading when the model layer has another digest, naming both', async () => {
    const front = await startProxy(`http://${openRegistry.host}`);
    proxies.push(front);
    const dest = newDest();
    const wrong = sha256(OTHER);
    const line = expectPermanent(await fetchWith({}, plain(dest, `oci://${front.host}/models/fraud:3`, wrong)), dest);
    assert.ok(line.endsWith(`failed: sha256 mismatch: expected ${wrong}, but the model layer of ${front.host}/models/fraud:3 is sha256:${DIGEST}; the tag '3' may now point at another model, or the expected sha256 is wrong`), line);
    assert.deepEqual(front.requests.map((r) => r.url), ['/v2/models/fraud/manifests/3'], 'the manifest only, no blob');
  });

  it('says to push the file itself when the artifact holds an archive', async () => {
    const dest = newDest();
    const line = expectPermanent(await fetchWith({ DOCKER_CONFIG: login(tokenRegistry.host, 'alice', 'alice-password') }, plain(dest, `oci://${tokenRegistry.host}/models/packed:1`)), dest);
    assert.match(line, /the artifact holds an archive; push the \.onnx file itself \(oras push REF model\.onnx\), not a directory$/);
  });

  it('without credentials says the registry wants some and how to mount them, without retrying', async () => {
    const dest = newDest();
    const line = expectPermanent(await fetchWith({}, [...plain(dest, `oci://${tokenRegistry.host}/models/fraud:3`), '--retries', '3']), dest);
    assert.ok(line.endsWith(`failed: ${tokenRegistry.host} wants credentials to pull models/fraud (or the repository does not exist) and there are none: no docker config at ${join(tmp, '.docker', 'config.json')}; mount a kubernetes.io/dockerconfigjson Secret and set DOCKER_CONFIG to its directory`), line);
  });

  it('names the config entry the token service refused (a wrong password), and a user without pull', async () => {
    const [wrong, denied] = [newDest(), newDest()];
    const wrongConfig = login(tokenRegistry.host, 'alice', 'not-her-password');
    const [a, b] = await Promise.all([
      fetchWith({ DOCKER_CONFIG: wrongConfig }, plain(wrong, `oci://${tokenRegistry.host}/models/fraud:3`)),
      fetchWith({ DOCKER_CONFIG: login(tokenRegistry.host, 'bob', 'bob-password') }, plain(denied, `oci://${tokenRegistry.host}/models/fraud:3`)),
    ]);
    assert.match(expectPermanent(a, wrong), new RegExp(`HTTP 401 Unauthorized: the token service http://127\\.0\\.0\\.1:\\d+ refused the credentials from the docker config ${join(wrongConfig, 'config.json')} \\("auths" entry '${tokenRegistry.host}'\\) for repository:models/fraud:pull: .*incorrect username or password.*; check the user name and password \\(or token\\) in the Secret$`));
    assert.match(expectPermanent(b, denied), /HTTP 401 Unauthorized: the manifest of .*models\/fraud:3: UNAUTHORIZED .*: .* refused the credentials for models\/fraud; check the user name and password \(or token\) in the Secret$/);
  });

  it('names a tag that does not exist', async () => {
    const dest = newDest();
    const line = expectPermanent(await fetchWith({}, plain(dest, `oci://${openRegistry.host}/models/fraud:4`)), dest);
    assert.ok(line.endsWith(`HTTP 404 Not Found: the manifest of ${openRegistry.host}/models/fraud:4: MANIFEST_UNKNOWN: there is no tag '4' in ${openRegistry.host}/models/fraud; check the reference`), line);
  });

  it('sends Basic credentials to a registry that asks for them (htpasswd, as ECR does), and says when there are none', async () => {
    const [withLogin, without] = [newDest(), newDest()];
    const [a, b] = await Promise.all([
      fetchWith({ DOCKER_CONFIG: login(basicRegistry.host, HTPASSWD_USER.name, HTPASSWD_USER.password) }, plain(withLogin, `oci://${basicRegistry.host}/models/fraud:3`)),
      fetchWith({}, plain(without, `oci://${basicRegistry.host}/models/fraud:3`)),
    ]);
    expectModel(a, withLogin);
    assert.match(expectPermanent(b, without), /wants credentials to pull models\/fraud .* and there are none/);
  });

  it('pulls anonymously from a registry without auth, with no docker config at all', async () => {
    const dest = newDest();
    expectModel(await fetchWith({}, plain(dest, `oci://${openRegistry.host}/models/fraud:3`)), dest);
  });

  it('retries a 503 on the manifest and a blob cut short, then succeeds', async () => {
    const front = await startProxy(`http://${openRegistry.host}`, (req, res, index) => {
      if (index === 0) return unavailable(res, 'application/json', JSON.stringify({ errors: [{ code: 'UNAVAILABLE', message: 'service unavailable' }] }));
      return Boolean(req.url?.includes('/blobs/')) && front.requests.filter((r) => r.url.includes('/blobs/')).length === 1 && cutShort(res);
    });
    proxies.push(front);
    const dest = newDest();
    const result = await fetchWith({}, [...plain(dest, `oci://${front.host}/models/fraud:3`), '--retries', '3']);
    expectModel(result, dest);
    const warnings = retryWarnings(result.stdout);
    assert.equal(warnings.length, 2, result.stdout);
    assert.match(warnings[0], /HTTP 503 Service Unavailable: the manifest of .*: UNAVAILABLE 'service unavailable'/);
    assert.match(warnings[1], /download interrupted after 10 of/);
  });

  it('exits 2 on an oci:// URI without a tag, and on --plain-http for another scheme', async () => {
    const [noTag, plainS3] = await Promise.all([
      fetchWith({}, fetchArgs(`oci://${openRegistry.host}/models/fraud`, newDest())),
      fetchWith({}, [...fetchArgs('s3://models/m.onnx', newDest()), '--plain-http', 'true']),
    ]);
    expectExit(noTag, 2);
    assert.match(oneLineReason(noTag), /names no tag or digest: add :<tag> or @sha256:<digest>/);
    expectExit(plainS3, 2);
    assert.match(oneLineReason(plainS3), /--plain-http \(MODELSHIP_FETCH_PLAIN_HTTP\) applies to oci:\/\/ only; for s3:\/\/ write the http:\/\/ URL in AWS_ENDPOINT_URL_S3/);
  });

  it('fills no disk: a full volume fails at once with the sizes and leaves nothing', { skip: sandboxReason || false }, async () => {
    await expectFullDisk(`oci://${openRegistry.host}/models/big:1`, { MODELSHIP_FETCH_PLAIN_HTTP: 'true' });
  });

  it('runs what ModelSource.fromUri synthesizes with ModelCredentials.fromSecret (a kubernetes.io/dockerconfigjson Secret) and plainHttp', { skip: sandboxReason || false }, async () => {
    const dockerconfigjson = JSON.stringify({ auths: { [tokenRegistry.host]: { username: 'alice', password: 'alice-password', auth: Buffer.from('alice:alice-password').toString('base64') } } });
    await expectInitContainerFetches(`oci://${tokenRegistry.host}/models/fraud:3`, { credentials: ModelCredentials.fromSecret('registry-pull'), plainHttp: true },
      { 'registry-pull': { '.dockerconfigjson': dockerconfigjson } });
  });
});
