/**
 * ModelSource.fromUri for the stores besides https (s3://, gs://, oci://), ModelCredentials and `optimize`, synthesized in-process
 * and imported as users import them: what the fetch-model init container gets (args, env, mounts), what the pod
 * gets (its service account, a Secret volume only the init container mounts), the NetworkPolicy egress the fetch
 * needs, and the errors that name the prop, the value and the fix. That the runtime accepts what is written is
 * checked with the runtime's own parser here; that it fetches with it, against real servers, in
 * test/runtime/fetch-stores.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { FETCH_SETTINGS, OPTIMIZE_SETTINGS, parseSettings } from '@modelship/contract';
import { ModelCredentials, ModelService, ModelSource, type FromUriOptions, type ModelOptimization } from 'modelship';
import { checkFetchOptions } from '../../runtime/src/fetch';
import { MODELS } from '../helpers/paths';
import { assertValidManifests } from '../helpers/k8s-schema';
import { key, runChecks, type Manifest } from '../helpers/manifest-policy';

const SHA = 'a'.repeat(64);
const DNS = { ports: [{ port: 53, protocol: 'UDP' }, { port: 53, protocol: 'TCP' }] };
const tcp = (port: number, cidr?: string) => ({ ...(cidr ? { to: [{ ipBlock: { cidr } }] } : {}), ports: [{ port, protocol: 'TCP' }] });

function synth(uri: string, options: Omit<FromUriOptions, 'sha256'> = {}, build?: (chart: Chart) => ModelSource): Manifest[] {
  const chart = new Chart(Testing.app(), 'test', { namespace: 'ml' });
  new ModelService(chart, 'fraud', { model: build?.(chart) ?? ModelSource.fromUri(uri, { sha256: SHA, ...options }) });
  return Testing.synth(chart) as Manifest[];
}
const pod = (objects: Manifest[]) => objects.find((o) => o.kind === 'Deployment')!.spec.template.spec;
const init = (objects: Manifest[]) => pod(objects).initContainers[0];
const egress = (objects: Manifest[]) => objects.find((o) => o.kind === 'NetworkPolicy')!.spec.egress;
const envOf = (objects: Manifest[]) => Object.fromEntries((init(objects).env ?? []).map((e: { name: string; value?: string; valueFrom?: unknown }) => [e.name, e.value ?? e.valueFrom]));
const fromSecret = (name: string, key: string) => ({ secretKeyRef: { name, key, optional: false } });

describe('ModelSource.fromUri s3://', () => {
  it('with ModelCredentials.fromSecret: the keys as AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the Secret, egress to 443', () => {
    const objects = synth('s3://models/fraud/3/model.onnx', { credentials: ModelCredentials.fromSecret('s3-reader') });
    assert.deepEqual(init(objects).args, ['fetch', '--uri', 's3://models/fraud/3/model.onnx', '--sha256', SHA, '--dest', '/models/fraud/1/model.onnx']);
    assert.deepEqual(envOf(objects), { AWS_ACCESS_KEY_ID: fromSecret('s3-reader', 'AWS_ACCESS_KEY_ID'), AWS_SECRET_ACCESS_KEY: fromSecret('s3-reader', 'AWS_SECRET_ACCESS_KEY') });
    assert.deepEqual(egress(objects), [DNS, tcp(443)]);
    assert.equal(pod(objects).serviceAccountName, undefined);
    assertValidManifests(objects);
  });

  it('with the Secret\'s own key names, a session token, an S3-compatible endpoint and a region; egress to the endpoint\'s port', () => {
    const objects = synth('s3://models/fraud/3/model.onnx', {
      credentials: ModelCredentials.fromSecret('minio', { accessKeyIdKey: 'accesskey', secretAccessKeyKey: 'secretkey', sessionTokenKey: 'token' }),
      endpoint: 'http://minio.storage.svc:9000', region: 'auto',
    });
    assert.deepEqual(envOf(objects), {
      AWS_ACCESS_KEY_ID: fromSecret('minio', 'accesskey'), AWS_SECRET_ACCESS_KEY: fromSecret('minio', 'secretkey'), AWS_SESSION_TOKEN: fromSecret('minio', 'token'),
      AWS_ENDPOINT_URL_S3: 'http://minio.storage.svc:9000', AWS_REGION: 'auto',
    });
    assert.deepEqual(egress(objects), [DNS, tcp(9000)]);
  });

  it('with ModelCredentials.fromServiceAccount: the pod runs as it (IRSA, EKS Pod Identity), token still not mounted; egress to STS and the Pod Identity agent', () => {
    const objects = synth('s3://models/fraud/3/model.onnx', { credentials: ModelCredentials.fromServiceAccount('model-reader') });
    assert.equal(pod(objects).serviceAccountName, 'model-reader');
    assert.equal(pod(objects).automountServiceAccountToken, false);
    assert.equal(init(objects).env, undefined, 'the identity webhook injects the variables');
    assert.deepEqual(egress(objects), [DNS, tcp(443), tcp(80, '169.254.170.23/32'), tcp(80, 'fd00:ec2::23/128')]);
  });

  it('without credentials: no variables, so fetch uses what the pod has (its namespace\'s default service account)', () => {
    const objects = synth('s3://models/fraud/3/model.onnx');
    assert.equal(init(objects).env, undefined);
    assert.equal(pod(objects).serviceAccountName, undefined);
  });
});

describe('ModelSource.fromUri gs://', () => {
  it('with ModelCredentials.fromSecret: the key file mounted read-only for the init container only, as the application default credentials', () => {
    const objects = synth('', {}, (chart) => ModelSource.fromUri('gs://models/fraud/3/model.onnx', {
      sha256: SHA, credentials: ModelCredentials.fromSecret(kplus.Secret.fromSecretName(chart, 'Key', 'gcs-reader')),
    }));
    assert.deepEqual(envOf(objects), { CLOUDSDK_CONFIG: '/etc/modelship/model-credentials' });
    assert.deepEqual(init(objects).volumeMounts.find((m: { name: string }) => m.name === 'model-credentials'), { mountPath: '/etc/modelship/model-credentials', name: 'model-credentials', readOnly: true });
    assert.deepEqual(pod(objects).volumes.find((v: { name: string }) => v.name === 'model-credentials'), {
      name: 'model-credentials', secret: { secretName: 'gcs-reader', defaultMode: 0o440, items: [{ key: 'key.json', path: 'application_default_credentials.json' }] },
    });
    assert.ok(!pod(objects).containers[0].volumeMounts.some((m: { name: string }) => m.name === 'model-credentials'), 'the runtime container does not see the key');
    assert.deepEqual(egress(objects), [DNS, tcp(443)]);
    assertValidManifests(objects);
  });

  it('with ModelCredentials.fromServiceAccount (GKE Workload Identity): egress to the metadata server, and an emulator endpoint', () => {
    const objects = synth('gs://models/fraud/3/model.onnx', { credentials: ModelCredentials.fromServiceAccount('model-reader'), endpoint: 'http://fake-gcs.storage.svc:4443' });
    assert.equal(pod(objects).serviceAccountName, 'model-reader');
    assert.deepEqual(envOf(objects), { STORAGE_EMULATOR_HOST: 'http://fake-gcs.storage.svc:4443' });
    assert.deepEqual(egress(objects), [DNS, tcp(4443), tcp(80, '169.254.169.254/32'), tcp(988, '169.254.169.252/32')]);
  });

  it('takes another key of the Secret with \'key\'', () => {
    const objects = synth('gs://models/m.onnx', { credentials: ModelCredentials.fromSecret('sa', { key: 'credentials.json' }) });
    assert.deepEqual(pod(objects).volumes.find((v: { name: string }) => v.name === 'model-credentials').secret.items, [{ key: 'credentials.json', path: 'application_default_credentials.json' }]);
  });
});

describe('ModelSource.fromUri oci://', () => {
  it('with ModelCredentials.fromSecret: the kubernetes.io/dockerconfigjson Secret mounted as config.json, DOCKER_CONFIG its directory', () => {
    const objects = synth('oci://ghcr.io/acme/fraud:3', { credentials: ModelCredentials.fromSecret('ghcr-pull') });
    assert.deepEqual(envOf(objects), { DOCKER_CONFIG: '/etc/modelship/model-credentials' });
    assert.deepEqual(pod(objects).volumes.find((v: { name: string }) => v.name === 'model-credentials').secret.items, [{ key: '.dockerconfigjson', path: 'config.json' }]);
    assert.deepEqual(egress(objects), [DNS, tcp(443)]);
  });

  it('with plainHttp and a port: --plain-http, egress to that port only; anonymous without credentials', () => {
    const objects = synth('oci://registry.registry.svc:5000/models/fraud@sha256:' + 'b'.repeat(64), { plainHttp: true });
    assert.deepEqual(init(objects).args.slice(-2), ['--plain-http', 'true']);
    assert.equal(init(objects).env, undefined);
    assert.deepEqual(egress(objects), [DNS, tcp(5000)]);
    assert.deepEqual(egress(synth('oci://registry.example.com:8443/m:1')), [DNS, tcp(8443), tcp(443)], 'the token service and blob storage are https elsewhere');
  });
});

describe('what fromUri writes, the runtime accepts', () => {
  const cases: Array<[string, Omit<FromUriOptions, 'sha256'>]> = [
    ['s3://models/fraud/3/model.onnx', { credentials: ModelCredentials.fromSecret('k'), endpoint: 'https://s3.example.com', region: 'eu-west-1' }],
    ['gs://models/dir/model.onnx', { credentials: ModelCredentials.fromSecret('k'), endpoint: 'http://fake-gcs:4443' }],
    ['oci://localhost:5000/models/fraud:3', { credentials: ModelCredentials.fromSecret('k'), plainHttp: true }],
    ['oci://docker.io/acme/fraud@sha256:' + 'c'.repeat(64), {}],
    ['https://models.example.com/m.onnx', {}],
  ];
  for (const [uri, options] of cases) {
    it(uri, () => {
      const container = init(synth(uri, options));
      const env = Object.fromEntries((container.env ?? []).map((e: { name: string; value?: string }) => [e.name, e.value ?? 'from-a-secret']));
      const settings = parseSettings(FETCH_SETTINGS, container.args.slice(1), env);
      assert.doesNotThrow(() => checkFetchOptions({ ...settings, uri: settings.uri!, sha256: settings.sha256!, dest: settings.dest! }, env));
    });
  }
});

describe('credentials and the manifest checks', () => {
  it('add no kube-score or Polaris finding (no literal secret in env, the token still not mounted)', () => {
    const failing = (objects: Manifest[]) => runChecks(objects).filter((f) => !f.passed).map((f) => `${key(f)} ${f.object}`).sort();
    const baseline = failing(synth('https://models.example.com/m.onnx'));
    for (const [uri, credentials] of [
      ['s3://models/m.onnx', ModelCredentials.fromSecret('k')], ['s3://models/m.onnx', ModelCredentials.fromServiceAccount('sa')],
      ['gs://models/m.onnx', ModelCredentials.fromSecret('k')], ['gs://models/m.onnx', ModelCredentials.fromServiceAccount('sa')],
      ['oci://ghcr.io/acme/m:1', ModelCredentials.fromSecret('k')],
    ] as const) {
      assert.deepEqual(failing(synth(uri, { credentials })), baseline, `${uri} with ${credentials.constructor.name}`);
    }
  });
});

describe('ModelSource.fromUri and ModelCredentials refuse, naming the prop, the value and the fix', () => {
  const refuse = (build: () => unknown, message: string | RegExp) => assert.throws(build, typeof message === 'string' ? { message } : message);
  const fromUri = (uri: string, options: Omit<FromUriOptions, 'sha256'> = {}) => () => ModelSource.fromUri(uri, { sha256: SHA, ...options });

  it('URIs fetch would refuse', () => {
    refuse(fromUri('ftp://models/m.onnx'), "ModelSource.fromUri: 'ftp://models/m.onnx' must be https://, http://, s3://, gs:// or oci://, not ftp://");
    refuse(fromUri('s3://models'), "ModelSource.fromUri: 's3://models' names no object: write s3://models/<key of the model file>");
    refuse(fromUri('gs://Models/m.onnx'), /'Models' is not a Cloud Storage bucket name/);
    refuse(fromUri('oci://ghcr.io/acme/fraud'), /'oci:\/\/ghcr.io\/acme\/fraud' names no tag or digest: add :<tag> or @sha256:<digest>/);
  });

  it('credentials that do not apply to the scheme', () => {
    refuse(fromUri('https://m/x.onnx', { credentials: ModelCredentials.fromSecret('k') }),
      "ModelSource.fromUri: 'credentials' (ModelCredentials.fromSecret('k')) does not apply to https:// URIs; give a pre-signed URL, or use s3://, gs:// or oci://");
    refuse(fromUri('oci://ghcr.io/a/m:1', { credentials: ModelCredentials.fromServiceAccount('sa') }),
      "ModelSource.fromUri: 'credentials' (ModelCredentials.fromServiceAccount('sa')) does not apply to oci:// URIs; modelship fetch reads registry credentials from a docker config: use ModelCredentials.fromSecret with a kubernetes.io/dockerconfigjson Secret");
    refuse(fromUri('s3://models/m.onnx', { credentials: ModelCredentials.fromSecret('k', { key: 'key.json' }) }),
      "ModelSource.fromUri: ModelCredentials.fromSecret('k') was given 'key' ('key.json'), which does not apply to s3:// URIs; for s3:// use 'accessKeyIdKey', 'secretAccessKeyKey' and 'sessionTokenKey'");
    refuse(fromUri('gs://models/m.onnx', { credentials: ModelCredentials.fromSecret('k', { accessKeyIdKey: 'id', secretAccessKeyKey: 'secret' }) }),
      "ModelSource.fromUri: ModelCredentials.fromSecret('k') was given 'accessKeyIdKey' ('id'), 'secretAccessKeyKey' ('secret'), which do not apply to gs:// URIs; for gs:// use 'key'");
  });

  it('options for another scheme, and malformed ones', () => {
    refuse(fromUri('oci://ghcr.io/a/m:1', { endpoint: 'https://ghcr.io' }),
      "ModelSource.fromUri: 'endpoint' (\"https://ghcr.io\") applies to s3:// and gs:// URIs only, not oci://; the oci:// URI names the registry");
    refuse(fromUri('gs://models/m.onnx', { region: 'eu-west-1' }), "ModelSource.fromUri: 'region' (\"eu-west-1\") applies to s3:// URIs only, not gs://; remove it");
    refuse(fromUri('s3://models/m.onnx', { plainHttp: true }),
      "ModelSource.fromUri: 'plainHttp' (true) applies to oci:// URIs only, not s3://; write the endpoint's http:// URL in 'endpoint'");
    refuse(fromUri('s3://models/m.onnx', { endpoint: 'minio:9000' }),
      "ModelSource.fromUri: 'endpoint' ('minio:9000') must be an http:// or https:// URL without query or credentials, e.g. 'http://minio.storage.svc:9000'");
    refuse(fromUri('s3://models/m.onnx', { region: 'EU West' }), "ModelSource.fromUri: 'region' ('EU West') is not a region name; use e.g. 'eu-west-1'");
  });

  it('names that are no Kubernetes object names or Secret keys', () => {
    refuse(() => ModelCredentials.fromSecret('S3_Keys'), /^Error: ModelCredentials.fromSecret \('S3_Keys'\) is not a Kubernetes object name/);
    refuse(() => ModelCredentials.fromServiceAccount('model reader'), /ModelCredentials.fromServiceAccount \('model reader'\) is not a Kubernetes object name/);
    refuse(() => ModelCredentials.fromSecret('k', { key: 'a/b' }), "'key' ('a/b') must be a Secret key: letters, digits, '-', '_' and '.'");
  });
});

describe('ModelSource.fromFile on a file that is not a model', () => {
  const synthFile = (path: string) => () => {
    const chart = new Chart(Testing.app(), 'test');
    new ModelService(chart, 'm', { model: ModelSource.fromFile(path) });
  };

  it('says what it read, how many bytes, and the fix, without protobuf\'s internals', () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelship-fromfile-'));
    try {
      // A hostname, and three bytes protobuf reads past their end ('index out of range: 3 + 10 > 3').
      const hostname = join(dir, 'hostname');
      writeFileSync(hostname, 'vm\n');
      const binary = join(dir, 'binary');
      writeFileSync(binary, Buffer.from([0x00, 0x00, 0x20]));
      refuseWith(synthFile(hostname), `ModelSource.fromFile: '${hostname}' is not an ONNX model: it is 3 bytes of text ('vm'), not a model; point at the .onnx file an exporter wrote (torch.onnx.export, tf2onnx, skl2onnx)`);
      refuseWith(synthFile(binary), `ModelSource.fromFile: '${binary}' is not an ONNX model: its 3 bytes start with 00 00 20, which is no model format modelship knows; point at the .onnx file an exporter wrote (torch.onnx.export, tf2onnx, skl2onnx)`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('/etc/hostname itself', { skip: existsSync('/etc/hostname') ? false : 'no /etc/hostname here' }, () => {
    const size = statSync('/etc/hostname').size;
    assert.throws(synthFile('/etc/hostname'), (error: Error) => {
      assert.match(error.message, /^ModelSource\.fromFile: '\/etc\/hostname' is not an ONNX model: /);
      assert.ok(error.message.includes(`${size} byte`), `names the size (${size}): ${error.message}`);
      assert.ok(!/protobuf|index out of range/.test(error.message), error.message);
      return true;
    });
  });
});

function refuseWith(build: () => unknown, message: string): void {
  assert.throws(build, { message });
}

describe('drift profiles beside the model', () => {
  const PROFILE_SHA = 'd'.repeat(64);
  const feature = { index: 0, edges: [1, 2, 3, 4, 5, 6, 7, 8, 9], ratios: Array(10).fill(0.1) };
  const mlpProfile = (tensors: unknown[] = [{ name: 'x', kind: 'input', features: [feature] }, { name: 'y', kind: 'output', features: [feature] }], extra = {}) =>
    JSON.stringify({ format: 'modelship.drift-profile/v1', rows: 10, tensors, ...extra });
  const withFile = <T>(text: string, body: (path: string) => T): T => {
    const dir = mkdtempSync(join(tmpdir(), 'modelship-profile-'));
    try {
      const path = join(dir, 'profile.json');
      writeFileSync(path, text);
      return body(path);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  const serviceOf = (model: ModelSource) => {
    const chart = new Chart(Testing.app(), 'test', { namespace: 'ml' });
    const service = new ModelService(chart, 'fraud', { model });
    return { service, objects: Testing.synth(chart) as Manifest[] };
  };

  it('fromUri: a second init container fetches the profile beside the model, digest-checked, with the same credentials and flags', () => {
    const objects = synth('oci://registry.registry.svc:5000/models/fraud:3', {
      plainHttp: true, credentials: ModelCredentials.fromSecret('k'), profile: { uri: 'oci://registry.registry.svc:5000/models/fraud-profile:3', sha256: PROFILE_SHA },
    });
    const [model, profile] = pod(objects).initContainers;
    assert.equal(model.name, 'fetch-model');
    assert.equal(profile.name, 'fetch-profile');
    assert.deepEqual(profile.args, ['fetch', '--uri', 'oci://registry.registry.svc:5000/models/fraud-profile:3', '--sha256', PROFILE_SHA, '--dest', '/models/fraud/1/profile.json', '--plain-http', 'true']);
    assert.deepEqual(profile.env, model.env);
    assert.deepEqual(profile.volumeMounts, model.volumeMounts);
    assertValidManifests(objects);
    // What it writes, the runtime's fetch accepts: it checks the digest of any file, not only of models.
    const env = Object.fromEntries((profile.env ?? []).map((e: { name: string; value?: string }) => [e.name, e.value ?? 'from-a-secret']));
    const settings = parseSettings(FETCH_SETTINGS, profile.args.slice(1), env);
    assert.doesNotThrow(() => checkFetchOptions({ ...settings, uri: settings.uri!, sha256: settings.sha256!, dest: settings.dest! }, env));
    assert.equal(serviceOf(ModelSource.fromUri('https://m.example.com/m.onnx', { sha256: SHA, profile: { uri: 'https://m.example.com/profile.json', sha256: PROFILE_SHA } })).service.hasDriftProfile, true);
    assert.equal(serviceOf(ModelSource.fromUri('https://m.example.com/m.onnx', { sha256: SHA })).service.hasDriftProfile, false);
    assert.equal(pod(synth('https://m.example.com/m.onnx')).initContainers.length, 1);
  });

  it('fromUri refuses a profile in another store or without a digest', () => {
    assert.throws(() => ModelSource.fromUri('s3://models/m.onnx', { sha256: SHA, profile: { uri: 'https://x.example.com/profile.json', sha256: PROFILE_SHA } }),
      /'profile\.uri' \('https:\/\/x\.example\.com\/profile\.json'\) is a https:\/\/ URI, the model's is s3:\/\/; put the profile in the same store as the model/);
    assert.throws(() => ModelSource.fromUri('s3://models/m.onnx', { sha256: SHA, profile: { uri: 's3://models/profile.json', sha256: 'nope' } }), /'profile\.sha256'/);
  });

  it('fromFile: the profile in the model\'s ConfigMap, checked against the signature', () => {
    withFile(mlpProfile(), (path) => {
      const { service, objects } = serviceOf(ModelSource.fromFile(MODELS.mlp, { profile: path }));
      const configMap = objects.find((o) => o.kind === 'ConfigMap')!;
      assert.deepEqual(JSON.parse(configMap.data['profile.json']).tensors.map((t: { name: string }) => t.name), ['x', 'y']);
      assert.ok(configMap.binaryData['model.onnx']);
      assert.equal(service.hasDriftProfile, true);
      assert.equal(service.driftProfile?.tensors.length, 2);
      assertValidManifests(objects);
    });
    assert.equal(serviceOf(ModelSource.fromFile(MODELS.mlp)).service.hasDriftProfile, false);
  });

  it('fromFile refuses a profile that is not one, or not this model\'s', () => {
    withFile('{', (path) => assert.throws(() => serviceOf(ModelSource.fromFile(MODELS.mlp, { profile: path })), /'profile' \('.*profile\.json'\) is not JSON/));
    withFile(mlpProfile([]).replace('"rows":10', '"rows":0'), (path) => assert.throws(() => serviceOf(ModelSource.fromFile(MODELS.mlp, { profile: path })), /'rows' \(0\) must be a positive integer; write it with `modelship profile`/));
    withFile(mlpProfile([{ name: 'z', kind: 'input', features: [feature] }]), (path) => assert.throws(() => serviceOf(ModelSource.fromFile(MODELS.mlp, { profile: path })),
      /names tensor 'z', which the model does not have \(inputs: x; outputs: y\)/));
    withFile(mlpProfile([{ name: 'y', kind: 'input', features: [feature] }]), (path) => assert.throws(() => serviceOf(ModelSource.fromFile(MODELS.mlp, { profile: path })),
      /calls tensor 'y' an input, but it is an output of the model/));
    withFile(mlpProfile(undefined, { modelSha256: 'e'.repeat(64) }), (path) => assert.throws(() => serviceOf(ModelSource.fromFile(MODELS.mlp, { profile: path })),
      /was made for the model with sha256 e{64}, not this one/));
    assert.throws(() => serviceOf(ModelSource.fromFile(MODELS.mlp, { profile: '/nonexistent/profile.json' })), /'profile' \('\/nonexistent\/profile\.json'\) cannot be read: ENOENT/);
  });

  it('fromImage and fromPersistentVolumeClaim: { profile: true } says one lies beside the model', () => {
    assert.equal(serviceOf(ModelSource.fromImage('r/m:1', { profile: true })).service.hasDriftProfile, true);
    assert.equal(serviceOf(ModelSource.fromImage('r/m:1')).service.hasDriftProfile, false);
    const chart = new Chart(Testing.app(), 'test', { namespace: 'ml' });
    const claim = kplus.PersistentVolumeClaim.fromClaimName(chart, 'Claim', 'models-pvc');
    assert.equal(new ModelService(chart, 'fraud', { model: ModelSource.fromPersistentVolumeClaim(claim, 'repo', { profile: true }) }).hasDriftProfile, true);
    assert.throws(() => ModelSource.fromImage('r/m:1', { profile: 'yes' as unknown as boolean }), /ModelSource\.fromImage: 'profile' \("yes"\) must be true/);
  });
});

describe('ModelSource.fromUri with optimize', () => {
  const PROFILE_SHA = 'd'.repeat(64);
  const URI = 'https://models.example.com/fraud/3/model.onnx';
  const optimized = (optimize: ModelOptimization, options: Omit<FromUriOptions, 'sha256' | 'optimize'> = {}) => synth(URI, { ...options, optimize });
  const byName = (objects: Manifest[], name: string) => pod(objects).initContainers.find((c: { name: string }) => c.name === name);
  const volume = (objects: Manifest[], name: string) => pod(objects).volumes.find((v: { name: string }) => v.name === name);
  const storage = (container: { resources: { requests: Record<string, string>; limits: Record<string, string> } }) =>
    [container.resources.requests['ephemeral-storage'], container.resources.limits['ephemeral-storage']];

  it('fetch-model verifies into source.onnx, then optimize-model writes model.onnx from it, with flags from the optimize settings table', () => {
    const objects = optimized({ level: 'all', quantize: 'dynamic-int8', fp16: true, maxError: 0.01, minAgreement: 0.99, validateSamples: 64 });
    const [fetch, optimize] = pod(objects).initContainers;
    assert.deepEqual(pod(objects).initContainers.map((c: { name: string }) => c.name), ['fetch-model', 'optimize-model']);
    assert.deepEqual(fetch.args, ['fetch', `--${FETCH_SETTINGS.uri.flag}`, URI, `--${FETCH_SETTINGS.sha256.flag}`, SHA, `--${FETCH_SETTINGS.dest.flag}`, '/models/fraud/1/source.onnx']);
    assert.deepEqual(optimize.args, [
      'optimize', '/models/fraud/1/source.onnx', `--${OPTIMIZE_SETTINGS.out.flag}=/models/fraud/1/model.onnx`,
      `--${OPTIMIZE_SETTINGS.level.flag}=all`, `--${OPTIMIZE_SETTINGS.quantize.flag}=dynamic-int8`, `--${OPTIMIZE_SETTINGS.fp16.flag}=true`,
      `--${OPTIMIZE_SETTINGS.validateSamples.flag}=64`, `--${OPTIMIZE_SETTINGS.maxError.flag}=0.01`, `--${OPTIMIZE_SETTINGS.minAgreement.flag}=0.99`,
    ]);
    // The runtime's own parser takes every flag after IN, with the values meant.
    assert.deepEqual(parseSettings(OPTIMIZE_SETTINGS, optimize.args.slice(2), {}), {
      out: '/models/fraud/1/model.onnx', level: 'all', quantize: 'dynamic-int8', fp16: true, validateData: undefined, validateSamples: 64, maxError: 0.01, minAgreement: 0.99, json: false,
    });
    // Only what was asked: the rest is left to modelship optimize's defaults.
    assert.deepEqual(byName(optimized({ quantize: 'dynamic-int8' }), 'optimize-model').args.slice(3), [`--${OPTIMIZE_SETTINGS.quantize.flag}=dynamic-int8`]);
    assert.deepEqual(byName(optimized({ fp16: true, maxError: 1e-7 }), 'optimize-model').args.slice(3), [`--${OPTIMIZE_SETTINGS.fp16.flag}=true`, `--${OPTIMIZE_SETTINGS.maxError.flag}=1e-7`]);
    assert.equal(parseSettings(OPTIMIZE_SETTINGS, [`--${OPTIMIZE_SETTINGS.maxError.flag}=1e-7`], {}).maxError, 1e-7);
    // Without optimize, nothing changes: fetch-model writes model.onnx itself.
    assert.deepEqual(pod(synth(URI)).initContainers.map((c: { name: string; args: string[] }) => [c.name, c.args.at(-1)]), [['fetch-model', '/models/fraud/1/model.onnx']]);
    assertValidManifests(objects);
  });

  it('with a drift profile: fetch-profile puts it in the version directory, beside source.onnx for the guard and model.onnx for the server, before optimize-model runs', () => {
    const objects = optimized({ level: 'extended' }, { profile: { uri: 'https://models.example.com/fraud/3/profile.json', sha256: PROFILE_SHA } });
    const containers = pod(objects).initContainers;
    assert.deepEqual(containers.map((c: { name: string }) => c.name), ['fetch-model', 'fetch-profile', 'optimize-model']);
    const profile = containers[1].args.at(-1);
    assert.equal(profile, '/models/fraud/1/profile.json');
    assert.equal(dirname(profile), dirname(containers[0].args.at(-1)), 'beside source.onnx');
    assert.equal(dirname(profile), dirname(containers[2].args.find((a: string) => a.startsWith(`--${OPTIMIZE_SETTINGS.out.flag}=`)).split('=')[1]), 'beside model.onnx');
    assertValidManifests(objects);
  });

  it('optimize-model runs hardened as fetch-model does: the same image and security context, the model volume writable, its own /tmp, the runtime\'s CPU and memory', () => {
    const objects = optimized({ quantize: 'dynamic-int8' });
    const fetch = byName(objects, 'fetch-model');
    const optimize = byName(objects, 'optimize-model');
    const runtime = pod(objects).containers[0];
    assert.equal(optimize.image, fetch.image);
    assert.equal(optimize.image, runtime.image);
    assert.deepEqual(optimize.securityContext, fetch.securityContext);
    assert.deepEqual(optimize.securityContext, {
      allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, privileged: false,
      readOnlyRootFilesystem: true, runAsGroup: 10001, runAsNonRoot: true, runAsUser: 10001,
    });
    assert.deepEqual(optimize.volumeMounts, [{ mountPath: '/models', name: 'models' }, { mountPath: '/tmp', name: 'optimize-tmp' }]);
    assert.deepEqual(volume(objects, 'optimize-tmp').emptyDir, { sizeLimit: '64Mi' });
    assert.ok(!runtime.volumeMounts.some((m: { name: string }) => m.name === 'optimize-tmp'), 'the server does not see optimize-model\'s scratch space');
    assert.deepEqual(runtime.volumeMounts.find((m: { name: string }) => m.name === 'models'), { mountPath: '/models', name: 'models', readOnly: true });
    assert.equal(optimize.env, undefined, 'no store credentials: it reads only the verified file');
    // It loads the model as the server does, so it gets the server's CPU and memory (the pod reserves no more for it).
    assert.deepEqual(optimize.resources, {
      requests: { 'cpu': runtime.resources.requests.cpu, 'memory': runtime.resources.requests.memory, 'ephemeral-storage': '64Mi' },
      limits: { 'cpu': runtime.resources.limits.cpu, 'memory': runtime.resources.limits.memory, 'ephemeral-storage': '64Mi' },
    });
    const custom = pod((() => {
      const chart = new Chart(Testing.app(), 'test', { namespace: 'ml' });
      new ModelService(chart, 'fraud', { model: ModelSource.fromUri(URI, { sha256: SHA, optimize: { fp16: true } }), cpuRequest: '1', cpuLimit: '4', memoryRequest: '3Gi', memoryLimit: '6Gi' });
      return Testing.synth(chart) as Manifest[];
    })()).initContainers.find((c: { name: string }) => c.name === 'optimize-model');
    assert.deepEqual(custom.resources.requests, { 'cpu': '1', 'memory': '3Gi', 'ephemeral-storage': '64Mi' });
    assert.deepEqual(custom.resources.limits, { 'cpu': '4', 'memory': '6Gi', 'ephemeral-storage': '64Mi' });
    assert.deepEqual(fetch.resources.limits, { 'cpu': '1', 'memory': '512Mi', 'ephemeral-storage': '64Mi' }, 'fetch-model keeps its own');
    assertValidManifests(objects);
  });

  it('counts both files and optimize-model\'s /tmp against the pod\'s ephemeral storage', () => {
    const objects = optimized({ quantize: 'dynamic-int8' }, { sizeLimit: '500Mi' });
    assert.deepEqual(volume(objects, 'models').emptyDir, { sizeLimit: '1000Mi' }, 'source.onnx and model.onnx, each up to sizeLimit');
    // 2 x 500Mi, optimize-model's 64Mi /tmp, and the server's 256Mi for its /tmp and logs.
    assert.deepEqual(storage(pod(objects).containers[0]), ['1320Mi', '1320Mi']);
    assert.throws(() => (() => {
      const chart = new Chart(Testing.app(), 'test', { namespace: 'ml' });
      new ModelService(chart, 'fraud', { model: ModelSource.fromUri(URI, { sha256: SHA, sizeLimit: '500Mi', optimize: { fp16: true } }), ephemeralStorageLimit: '1Gi' });
    })(), { message: "'ephemeralStorageLimit' (1Gi) must be at least 1128Mi, room for the model's emptyDirs (1064Mi, from ModelSource.fromUri's 'sizeLimit', twice it with 'optimize') and /tmp (64Mi), or the kubelet evicts the pod; raise it or lower 'sizeLimit'" });
  });

  it('adds no kube-score or Polaris finding, and a valid Deployment', () => {
    const failing = (objects: Manifest[]) => runChecks(objects).filter((f) => !f.passed).map((f) => `${key(f)} ${f.object}`).sort();
    const objects = optimized({ level: 'all', quantize: 'dynamic-int8', maxError: 0.05 }, { profile: { uri: 'https://models.example.com/fraud/3/profile.json', sha256: PROFILE_SHA } });
    assert.deepEqual(failing(objects), failing(synth(URI)));
    assertValidManifests(objects);
  });

  it('refuses, at synth, an optimize that changes nothing or is out of the settings\' bounds, naming the prop, the value and the fix', () => {
    const refuse = (optimize: unknown, message: string) => assert.throws(() => ModelSource.fromUri(URI, { sha256: SHA, optimize: optimize as ModelOptimization }), { message });
    const nothing = "set 'level' ('basic', 'extended', 'all'), 'quantize' ('dynamic-int8') or 'fp16: true', or remove 'optimize'";
    refuse({}, `ModelSource.fromUri: 'optimize' ({}) changes nothing; ${nothing}`);
    refuse({ fp16: false, maxError: 0.1 }, `ModelSource.fromUri: 'optimize' ({"fp16":false,"maxError":0.1}) changes nothing; ${nothing}`);
    refuse(null, "ModelSource.fromUri: 'optimize' (null) must be an object, e.g. { quantize: 'dynamic-int8' }");
    refuse({ level: 'max' }, "ModelSource.fromUri: 'optimize.level' ('max') must be one of 'basic', 'extended', 'all'");
    refuse({ quantize: 'int4' }, "ModelSource.fromUri: 'optimize.quantize' ('int4') must be one of 'dynamic-int8'");
    refuse({ quantize: 'dynamic-int8', fp16: 'yes' }, "ModelSource.fromUri: 'optimize.fp16' (\"yes\") must be true or false");
    refuse({ quantize: 'dynamic-int8', maxError: -0.1 }, "ModelSource.fromUri: 'optimize.maxError' (-0.1) must be a number from 0 to 1000000000 (the runtime's --max-error)");
    refuse({ quantize: 'dynamic-int8', maxError: Number.NaN }, "ModelSource.fromUri: 'optimize.maxError' (NaN) must be a number from 0 to 1000000000 (the runtime's --max-error)");
    refuse({ quantize: 'dynamic-int8', minAgreement: 1.5 }, "ModelSource.fromUri: 'optimize.minAgreement' (1.5) must be a number from 0 to 1 (the runtime's --min-agreement)");
    refuse({ quantize: 'dynamic-int8', validateSamples: 0 }, "ModelSource.fromUri: 'optimize.validateSamples' (0) must be an integer from 1 to 100000 (the runtime's --validate-samples)");
    refuse({ quantize: 'dynamic-int8', validateSamples: 2.5 }, "ModelSource.fromUri: 'optimize.validateSamples' (2.5) must be an integer from 1 to 100000 (the runtime's --validate-samples)");
  });
});
