/**
 * ModelSource.fromUri for the stores besides https (s3://, gs://, oci://) and ModelCredentials, synthesized in-process
 * and imported as users import them: what the fetch-model init container gets (args, env, mounts), what the pod
 * gets (its service account, a Secret volume only the init container mounts), the NetworkPolicy egress the fetch
 * needs, and the errors that name the prop, the value and the fix. That the runtime accepts what is written is
 * checked with the runtime's own parser here; that it fetches with it, against real servers, in
 * test/runtime/fetch-stores.test.ts.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { FETCH_SETTINGS, parseSettings } from '@modelship/contract';
import { ModelCredentials, ModelService, ModelSource, type FromUriOptions } from 'modelship';
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
