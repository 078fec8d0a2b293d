/**
 * The model URI grammar both sides share (contract/src/model-uri.ts): what each scheme parses to, Docker's registry
 * rule for oci://, and messages that say how to write the URI.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseModelUri } from '@modelship/contract';

const DIGEST = `sha256:${'a'.repeat(64)}`;

describe('parseModelUri', () => {
  it('s3:// and gs://: the bucket, and the key or object taken literally', () => {
    assert.deepEqual(parseModelUri('s3://models/fraud/3/model.onnx'), { scheme: 's3', bucket: 'models', key: 'fraud/3/model.onnx' });
    assert.deepEqual(parseModelUri('s3://my.bucket/a b/ü#1?.onnx'), { scheme: 's3', bucket: 'my.bucket', key: 'a b/ü#1?.onnx' });
    assert.deepEqual(parseModelUri('gs://models/dir/model.onnx'), { scheme: 'gs', bucket: 'models', object: 'dir/model.onnx' });
  });

  it('oci://: registry, repository and reference, with Docker Hub\'s names and library/', () => {
    assert.deepEqual(parseModelUri('oci://ghcr.io/acme/fraud:3'), { scheme: 'oci', registry: 'ghcr.io', apiHost: 'ghcr.io', port: undefined, repository: 'acme/fraud', reference: '3' });
    assert.deepEqual(parseModelUri(`oci://localhost:5000/fraud:v1@${DIGEST}`), { scheme: 'oci', registry: 'localhost:5000', apiHost: 'localhost:5000', port: 5000, repository: 'fraud', reference: DIGEST });
    assert.deepEqual(parseModelUri('oci://docker.io/fraud:1'), { scheme: 'oci', registry: 'docker.io', apiHost: 'registry-1.docker.io', port: undefined, repository: 'library/fraud', reference: '1' });
    assert.deepEqual(parseModelUri('oci://acme/fraud:1'), { scheme: 'oci', registry: 'docker.io', apiHost: 'registry-1.docker.io', port: undefined, repository: 'acme/fraud', reference: '1' });
  });

  it('https:// as a URL', () => {
    const uri = parseModelUri('https://models.example.com/m.onnx?sig=x');
    assert.equal(uri.scheme, 'https');
    assert.equal(uri.scheme === 'https' && uri.url.host, 'models.example.com');
  });

  it('refuses what fetch cannot read, saying how to write it', () => {
    const cases: Array<[string, RegExp]> = [
      ['models/m.onnx', /'models\/m\.onnx' is not a URL; write https:\/\/\.\.\., s3:\/\/BUCKET\/KEY/],
      ['ftp://h/m.onnx', /must be https:\/\/, http:\/\/, s3:\/\/, gs:\/\/ or oci:\/\/, not ftp:\/\//],
      ['s3://models/', /names no object: write s3:\/\/models\/<key of the model file>/],
      ['s3://ab/m.onnx', /'ab' is not an S3 bucket name/],
      ['gs://models', /names no object: write gs:\/\/models\/<name of the model file>/],
      ['oci://ghcr.io/acme/fraud', /names no tag or digest/],
      ['oci://ghcr.io/Acme/fraud:1', /has the repository 'Acme\/fraud'/],
      ['oci://ghcr.io/acme/fraud@sha256:abc', /has the digest 'sha256:abc'/],
      ['oci://ghcr.io', /names no repository/],
      ['oci://ghcr.io:99999/acme/fraud:1', /has the port 99999/],
    ];
    for (const [uri, message] of cases) assert.throws(() => parseModelUri(uri), message, uri);
  });
});
