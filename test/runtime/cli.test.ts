/**
 * The `modelship` command as a user or a container runs it: `node bin/modelship.js ...` in a child process, judged
 * only by its exit code, stdout and stderr. Covers `inspect` on real models, `fetch` against a local HTTP server
 * (success, idempotence, digest mismatch, retries, permanent failures, env variables, a dropped connection) and
 * the contract that a bad flag or a bad model ends the process with a one-line reason on stderr.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { onnx } from 'onnx-proto';
import { expectExit, logLines, oneLineReason, retryWarnings, runCli } from '../helpers/cli-process';
import { sendBytes, sendHalfThenDrop, sendStatus, startFixtureServer, type FixtureServer } from '../helpers/http-fixture-server';
import { EXAMPLE_REPOSITORY, MODELS, REPO_ROOT } from '../helpers/paths';

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('modelship inspect', { concurrency: 4 }, () => {
  it('prints the OCR detection model\'s signature, IR, opset, sha256 and that it loads', async () => {
    const result = await runCli(['inspect', MODELS.ocrDetection]);
    expectExit(result, 0);
    assert.equal(result.stderr, '');
    const out = result.stdout;
    assert.match(out, /^\s+x\s+FP32\s+\[p2o\.DynamicDimension\.0, 3, p2o\.DynamicDimension\.1, p2o\.DynamicDimension\.2\]$/m);
    assert.match(out, /^\s+sigmoid_0\.tmp_0\s+FP32\s+\[p2o\.DynamicDimension\.\d+, 1, p2o\.DynamicDimension\.\d+, p2o\.DynamicDimension\.\d+\]$/m);
    assert.ok(out.indexOf('inputs') < out.indexOf('  x  ') && out.indexOf('outputs') < out.indexOf('sigmoid_0.tmp_0'), out);
    assert.match(out, /^ir_version\s+8$/m);
    assert.match(out, /^opset\s+ai\.onnx 11$/m);
    assert.equal(out.match(/^sha256\s+([0-9a-f]{64})$/m)?.[1], sha256(readFileSync(MODELS.ocrDetection)));
    assert.match(out, /^onnxruntime\s+loads \(onnxruntime-node \d+\.\d+\.\d+/m);
  });

  it('--json gives the same report as data', async () => {
    const result = await runCli(['inspect', MODELS.ocrDetection, '--json']);
    expectExit(result, 0);
    const report = JSON.parse(result.stdout);
    assert.equal(report.sha256, sha256(readFileSync(MODELS.ocrDetection)));
    assert.equal(report.path, MODELS.ocrDetection);
    assert.equal(report.irVersion, 8);
    assert.equal(report.opset, 11);
    assert.deepEqual(report.opsets, [{ domain: '', version: 11 }]);
    assert.equal(report.inputs.length, 1);
    assert.deepEqual(
      { name: report.inputs[0].name, datatype: report.inputs[0].datatype, shape: report.inputs[0].shape },
      { name: 'x', datatype: 'FP32', shape: ['p2o.DynamicDimension.0', 3, 'p2o.DynamicDimension.1', 'p2o.DynamicDimension.2'] },
    );
    assert.equal(report.outputs.length, 1);
    assert.equal(report.outputs[0].name, 'sigmoid_0.tmp_0');
    assert.equal(report.outputs[0].datatype, 'FP32');
    assert.equal(report.outputs[0].shape.length, 4);
    assert.equal(report.outputs[0].shape[1], 1);
    assert.equal(report.onnxruntime.loads, true);
  });

  it('shows the linear regression\'s producer and metadata, in text and JSON', async () => {
    const [text, json] = await Promise.all([
      runCli(['inspect', MODELS.linearRegression]),
      runCli(['inspect', '--json', MODELS.linearRegression]),
    ]);
    expectExit(text, 0);
    expectExit(json, 0);
    assert.match(text.stdout, /^producer\s+modelship-examples$/m);
    assert.match(text.stdout, /^metadata$/m);
    assert.match(text.stdout, /^ {2}source: make_linear_regression\.py$/m);
    assert.match(text.stdout, /^ {2}w: -?\d+(\.\d+)?(e-?\d+)?$/m);
    assert.match(text.stdout, /^ {2}b: -?\d+(\.\d+)?(e-?\d+)?$/m);
    assert.match(text.stdout, /^\s+x\s+FP32\s+\[batch, 1\]$/m);
    assert.match(text.stdout, /^\s+y_pred\s+FP32\s+\[batch, 1\]$/m);
    const report = JSON.parse(json.stdout);
    assert.equal(report.producerName, 'modelship-examples');
    assert.deepEqual(Object.keys(report.metadata).sort(), ['b', 'source', 'w']);
    assert.equal(report.metadata.source, 'make_linear_regression.py');
    assert.ok(Math.abs(Number(report.metadata.w) - 2) < 0.2, report.metadata.w);
    assert.equal(report.sha256, sha256(readFileSync(MODELS.linearRegression)));
    assert.equal(typeof report.opset, 'number');
    assert.equal(typeof report.irVersion, 'number');
  });

  it('fails on a corrupt file with one line naming it', async () => {
    const result = await runCli(['inspect', MODELS.corrupt]);
    expectExit(result, 1);
    const line = oneLineReason(result);
    assert.ok(line.includes(MODELS.corrupt), line);
    assert.equal(result.stdout, '');
  });

  it('says what a file that is not a model is instead (a text file named model.onnx, a PyTorch .pt)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'modelship-inspect-'));
    const text = join(dir, 'model.onnx');
    writeFileSync(text, 'hello world\n');
    // torch.save writes a zip archive whose first entry is <name>/data.pkl.
    const pt = join(dir, 'model.pt');
    const header = Buffer.alloc(30);
    header.write('PK\x03\x04', 0, 'latin1');
    header.writeUInt16LE('model/data.pkl'.length, 26);
    writeFileSync(pt, Buffer.concat([header, Buffer.from('model/data.pkl')]));
    try {
      const [fromText, fromPt] = await Promise.all([runCli(['inspect', text]), runCli(['inspect', pt])]);
      expectExit(fromText, 1);
      assert.equal(oneLineReason(fromText), `modelship: '${text}' is not an ONNX model: it is 12 bytes of text ('hello world'), not a model; point at the .onnx file an exporter wrote (torch.onnx.export, tf2onnx, skl2onnx)`);
      expectExit(fromPt, 1);
      assert.equal(oneLineReason(fromPt), `modelship: '${pt}' is not an ONNX model: it looks like a PyTorch checkpoint (a zip archive of 44 bytes); export it to ONNX with torch.onnx.export`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails on a missing path with one line', async () => {
    const missing = join(tmpdir(), 'modelship-no-such-dir', 'model.onnx');
    const result = await runCli(['inspect', missing]);
    expectExit(result, 1);
    const line = oneLineReason(result);
    assert.ok(line.includes(missing), line);
    assert.match(line, /ENOENT/);
  });

  it('fails on a directory with one line saying so', async () => {
    const result = await runCli(['inspect', EXAMPLE_REPOSITORY]);
    expectExit(result, 1);
    assert.equal(oneLineReason(result), `modelship: '${EXAMPLE_REPOSITORY}' is a directory; inspect takes the .onnx file`);
  });

  it('fails on a model onnxruntime cannot load: the report on stdout, one reason on stderr', async () => {
    // A well-formed ModelProto whose only node is an operator no opset defines: it decodes, but does not load.
    const dir = mkdtempSync(join(tmpdir(), 'modelship-inspect-'));
    const path = join(dir, 'unknown_op.onnx');
    const value = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimValue: 1 }] } } } });
    writeFileSync(path, onnx.ModelProto.encode({
      irVersion: 8, opsetImport: [{ domain: '', version: 17 }],
      graph: { name: 'g', node: [{ opType: 'NoSuchOp', input: ['x'], output: ['y'] }], input: [value('x')], output: [value('y')] },
    }).finish());
    try {
      const result = await runCli(['inspect', path]);
      expectExit(result, 1);
      assert.match(result.stdout, /^onnxruntime\s+FAILS TO LOAD .*NoSuchOp/m);
      const line = oneLineReason(result);
      assert.ok(line.includes(path), line);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('exits 2 with a usage line without a path or with two', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['inspect'], /modelship inspect PATH\.onnx/],
      [['inspect', MODELS.linearRegression, MODELS.corrupt], /modelship inspect PATH\.onnx/],
      [['inspect', '--bogus', MODELS.linearRegression], /--bogus/],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    results.forEach((result, i) => {
      expectExit(result, 2);
      assert.match(oneLineReason(result), cases[i][1]);
    });
  });
});

describe('modelship fetch', { concurrency: 4 }, () => {
  const model = readFileSync(MODELS.linearRegression);
  const digest = sha256(model);
  let tmp: string;
  const servers: FixtureServer[] = [];
  let cases = 0;
  /** A fresh dest path whose parent directories do not exist yet. */
  const newDest = () => join(tmp, `case-${++cases}`, 'my_model', '1', 'model.onnx');
  const serve = async (handler: Parameters<typeof startFixtureServer>[0]) => {
    const server = await startFixtureServer(handler);
    servers.push(server);
    return server;
  };
  const fetchArgs = (uri: string, dest: string, hex = digest) => ['fetch', '--uri', uri, '--sha256', hex, '--dest', dest];

  before(() => { tmp = mkdtempSync(join(tmpdir(), 'modelship-cli-')); });
  after(async () => {
    await Promise.all(servers.map((s) => s.close()));
    rmSync(tmp, { recursive: true, force: true });
  });

  it('downloads, verifies and writes the file, creating parent directories; a second run downloads nothing', async () => {
    const server = await serve((_req, res) => sendBytes(res, model));
    const dest = newDest();
    const first = await runCli(fetchArgs(`${server.url}/models/model.onnx`, dest));
    expectExit(first, 0);
    assert.equal(first.stderr, '');
    assert.deepEqual(readFileSync(dest), model);
    assert.deepEqual(readdirSync(dirname(dest)), ['model.onnx'], 'no partial or temporary file is left beside the model');
    assert.equal(server.requests, 1);
    assert.deepEqual(server.paths, ['/models/model.onnx']);

    const second = await runCli(fetchArgs(`${server.url}/models/model.onnx`, dest));
    expectExit(second, 0);
    assert.equal(server.requests, 1, 'the file in place already has the digest; nothing is downloaded');
    assert.deepEqual(readFileSync(dest), model);
    assert.deepEqual(readdirSync(dirname(dest)), ['model.onnx']);
  });

  it('accepts an upper-case digest', async () => {
    const server = await serve((_req, res) => sendBytes(res, model));
    const dest = newDest();
    expectExit(await runCli(fetchArgs(`${server.url}/m.onnx`, dest, digest.toUpperCase())), 0);
    assert.deepEqual(readFileSync(dest), model);
  });

  it('replaces a file at --dest whose digest is wrong', async () => {
    const server = await serve((_req, res) => sendBytes(res, model));
    const dest = newDest();
    mkdirSync(dirname(dest), { recursive: true });
    writeFileSync(dest, 'stale');
    expectExit(await runCli(fetchArgs(`${server.url}/m.onnx`, dest)), 0);
    assert.equal(server.requests, 1);
    assert.deepEqual(readFileSync(dest), model);
  });

  it('refuses a digest mismatch at once, naming both digests, and leaves nothing behind', async () => {
    const server = await serve((_req, res) => sendBytes(res, model));
    const dest = newDest();
    const wrong = 'ab'.repeat(32);
    const result = await runCli(fetchArgs(`${server.url}/m.onnx`, dest, wrong));
    expectExit(result, 1);
    const line = oneLineReason(result);
    assert.match(line, /sha256 mismatch/);
    assert.ok(line.includes(`expected ${wrong}`), line);
    assert.ok(line.includes(`received ${digest}`), line);
    assert.equal(server.requests, 1, 'a mismatch is not retried');
    assert.equal(existsSync(dest), false);
    assert.deepEqual(readdirSync(dirname(dest)), [], 'no partial file is left');
  });

  it('retries 500s with backoff and then succeeds', async () => {
    const server = await serve((_req, res, index) => (index < 2 ? sendStatus(res, 500) : sendBytes(res, model)));
    const dest = newDest();
    const result = await runCli([...fetchArgs(`${server.url}/m.onnx`, dest), '--retries', '3']);
    expectExit(result, 0);
    assert.equal(server.requests, 3);
    assert.deepEqual(readFileSync(dest), model);
    assert.deepEqual(readdirSync(dirname(dest)), ['model.onnx']);
    const warnings = retryWarnings(result.stdout);
    assert.equal(warnings.length, 2, result.stdout);
    assert.match(warnings[0], /HTTP 500/);
    // Backoff 500 ms then 1000 ms, each jittered down to half at most: at least 750 ms of waiting.
    assert.ok(result.milliseconds >= 750, `took ${result.milliseconds} ms`);
  });

  it('gives up after --retries on a server that keeps answering 500', async () => {
    const server = await serve((_req, res) => sendStatus(res, 500));
    const dest = newDest();
    const result = await runCli([...fetchArgs(`${server.url}/m.onnx`, dest), '--retries', '1']);
    expectExit(result, 1);
    const line = oneLineReason(result);
    assert.match(line, /HTTP 500/);
    assert.match(line, /after 2 attempts/);
    assert.equal(server.requests, 2);
    assert.equal(existsSync(dest), false);
  });

  it('does not retry a 404', async () => {
    const server = await serve((_req, res) => sendStatus(res, 404));
    const dest = newDest();
    const result = await runCli([...fetchArgs(`${server.url}/missing.onnx`, dest), '--retries', '3']);
    expectExit(result, 1);
    const line = oneLineReason(result);
    assert.match(line, /HTTP 404/);
    assert.ok(line.includes(`${server.url}/missing.onnx`), line);
    assert.equal(server.requests, 1);
    assert.equal(existsSync(dest), false);
  });

  it('does not retry a local write failure (a directory at --dest)', async () => {
    const server = await serve((_req, res) => sendBytes(res, model));
    const dest = newDest();
    mkdirSync(dest, { recursive: true });
    const result = await runCli([...fetchArgs(`${server.url}/m.onnx`, dest), '--retries', '3']);
    expectExit(result, 1);
    assert.match(oneLineReason(result), /EISDIR/);
    assert.equal(server.requests, 1);
  });

  it('keeps a pre-signed URL\'s query string out of its logs and errors', async () => {
    const server = await serve((_req, res) => sendStatus(res, 403));
    const result = await runCli(fetchArgs(`${server.url}/m.onnx?X-Amz-Signature=secret123`, newDest()));
    expectExit(result, 1);
    assert.match(oneLineReason(result), /HTTP 403/);
    assert.ok(!`${result.stdout}${result.stderr}`.includes('secret123'), 'the signature is not printed');
  });

  it('retries a connection dropped mid-body and leaves no partial file', async () => {
    const server = await serve((_req, res, index) => (index === 0 ? sendHalfThenDrop(res, model) : sendBytes(res, model)));
    const dest = newDest();
    const result = await runCli([...fetchArgs(`${server.url}/m.onnx`, dest), '--retries', '2']);
    expectExit(result, 0);
    assert.equal(server.requests, 2);
    assert.deepEqual(readFileSync(dest), model);
    assert.deepEqual(readdirSync(dirname(dest)), ['model.onnx']);
    assert.equal(retryWarnings(result.stdout).length, 1, result.stdout);
  });

  it('follows a redirect', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/old.onnx') { res.writeHead(302, { location: '/new.onnx' }); res.end(); } else sendBytes(res, model);
    });
    const dest = newDest();
    expectExit(await runCli(fetchArgs(`${server.url}/old.onnx`, dest)), 0);
    assert.deepEqual(server.paths, ['/old.onnx', '/new.onnx']);
    assert.deepEqual(readFileSync(dest), model);
  });

  it('gives up on a server that never answers after --timeout', async () => {
    const server = await serve(() => { /* never answers */ });
    const dest = newDest();
    const result = await runCli([...fetchArgs(`${server.url}/m.onnx`, dest), '--timeout', '1', '--retries', '0']);
    expectExit(result, 1);
    assert.match(oneLineReason(result), /timeout/i);
    assert.equal(server.requests, 1);
    assert.equal(existsSync(dest), false);
    assert.ok(result.milliseconds >= 1000, `took ${result.milliseconds} ms`);
  });

  it('names the network error when nothing listens', async () => {
    const server = await startFixtureServer(() => {});
    const { url } = server;
    await server.close();
    const result = await runCli([...fetchArgs(`${url}/m.onnx`, newDest()), '--retries', '0']);
    expectExit(result, 1);
    assert.match(oneLineReason(result), /ECONNREFUSED/);
  });

  it('reads MODELSHIP_FETCH_URI, MODELSHIP_FETCH_SHA256 and MODELSHIP_FETCH_DEST', async () => {
    const server = await serve((_req, res) => sendBytes(res, model));
    const dest = newDest();
    const result = await runCli(['fetch'], {
      env: { MODELSHIP_FETCH_URI: `${server.url}/env.onnx`, MODELSHIP_FETCH_SHA256: digest, MODELSHIP_FETCH_DEST: dest },
    });
    expectExit(result, 0);
    assert.deepEqual(server.paths, ['/env.onnx']);
    assert.deepEqual(readFileSync(dest), model);
  });

  it('prefers a flag over its environment variable', async () => {
    const server = await serve((_req, res) => sendBytes(res, model));
    const dest = newDest();
    const result = await runCli(['fetch', '--uri', `${server.url}/flag.onnx`], {
      env: { MODELSHIP_FETCH_URI: `${server.url}/env.onnx`, MODELSHIP_FETCH_SHA256: digest, MODELSHIP_FETCH_DEST: dest },
    });
    expectExit(result, 0);
    assert.deepEqual(server.paths, ['/flag.onnx']);
  });

  describe('bad flags exit 2 with one line and no request', { concurrency: 4 }, () => {
    let server: FixtureServer;
    before(async () => { server = await serve((_req, res) => sendBytes(res, model)); });
    after(() => { assert.equal(server.requests, 0); });

    const cases: Array<[string, (dest: string) => string[], RegExp, Record<string, string>?]> = [
      ['a non-http --uri', (dest) => ['fetch', '--uri', 'ftp://x', '--sha256', digest, '--dest', dest], /--uri.*http.*ftp:/],
      ['a --uri that is not a URL', (dest) => ['fetch', '--uri', 'not a url', '--sha256', digest, '--dest', dest], /--uri/],
      ['a short --sha256', (dest) => ['fetch', '--uri', `${server.url}/m.onnx`, '--sha256', 'abc', '--dest', dest], /--sha256.*64 hex.*'abc'/],
      ['a missing --dest', () => ['fetch', '--uri', `${server.url}/m.onnx`, '--sha256', digest], /--dest.*MODELSHIP_FETCH_DEST/],
      ['a missing --uri', (dest) => ['fetch', '--sha256', digest, '--dest', dest], /--uri.*MODELSHIP_FETCH_URI/],
      ['--retries out of range', (dest) => ['fetch', '--uri', `${server.url}/m.onnx`, '--sha256', digest, '--dest', dest, '--retries', '-1'], /--retries/],
      ['an unknown flag', (dest) => ['fetch', '--uri', `${server.url}/m.onnx`, '--sha256', digest, '--dest', dest, '--bogus'], /--bogus/],
      ['a bad MODELSHIP_FETCH_SHA256', (dest) => ['fetch', '--uri', `${server.url}/m.onnx`, '--dest', dest], /sha256.*'xyz'/, { MODELSHIP_FETCH_SHA256: 'xyz' }],
    ];
    for (const [name, args, reason, env] of cases) {
      it(name, async () => {
        const dest = newDest();
        const result = await runCli(args(dest), { env });
        expectExit(result, 2);
        assert.match(oneLineReason(result), reason);
        assert.equal(existsSync(dest), false);
      });
    }
  });
});

describe('modelship serve with bad flags', { concurrency: 4 }, () => {
  // Where a mistake could let the server start, it would bind free ports on loopback and be killed by the timeout.
  const safe = ['--host', '127.0.0.1', '--grpc-port', '0'];
  const cases: Array<[string, string[], RegExp, Record<string, string>?]> = [
    ['neither --model-repository nor --model', ['serve', ...safe, '--http-port', '0'], /--model-repository.*--model/],
    ['--http-port 70000', ['serve', ...safe, '--model-repository', EXAMPLE_REPOSITORY, '--http-port', '70000'], /--http-port.*0 to 65535.*70000/],
    ['--model-repository /nonexistent', ['serve', ...safe, '--http-port', '0', '--model-repository', '/nonexistent'], /\/nonexistent/],
    ['--model foo=/nonexistent.onnx', ['serve', ...safe, '--http-port', '0', '--model', 'foo=/nonexistent.onnx'], /\/nonexistent\.onnx/],
    ['--graph-optimization-level bogus', ['serve', ...safe, '--http-port', '0', '--model-repository', EXAMPLE_REPOSITORY, '--graph-optimization-level', 'bogus'],
      /--graph-optimization-level.*disabled, basic, extended, all.*bogus/],
    ['an unknown flag', ['serve', ...safe, '--http-port', '0', '--model-repository', EXAMPLE_REPOSITORY, '--bogus'], /--bogus/],
    ['MODELSHIP_HTTP_PORT=abc', ['serve', ...safe, '--model-repository', EXAMPLE_REPOSITORY], /MODELSHIP_HTTP_PORT.*'abc'/, { MODELSHIP_HTTP_PORT: 'abc' }],
    ['both --model-repository and --model', ['serve', ...safe, '--http-port', '0', '--model-repository', EXAMPLE_REPOSITORY, '--model', `m=${MODELS.linearRegression}`],
      /either/],
    ['--model-name without --model-dir', ['serve', ...safe, '--http-port', '0', '--model-name', 'fraud'], /--model-name 'fraud' names the model in --model-dir, which is missing: add --model-dir DIR/],
    ['--model-dir without --model-name', ['serve', ...safe, '--http-port', '0', '--model-dir', EXAMPLE_REPOSITORY], /--model-dir '.*' needs the name to serve it under: add --model-name NAME/],
    ['--model-dir /nonexistent', ['serve', ...safe, '--http-port', '0', '--model-dir', '/nonexistent', '--model-name', 'fraud'], /--model-dir '\/nonexistent' is not a directory/],
    ['--model-dir holding no model.onnx', ['serve', ...safe, '--http-port', '0', '--model-dir', EXAMPLE_REPOSITORY, '--model-name', 'fraud'], /--model-dir '.*' holds no model\.onnx: put the model at .*model\.onnx or in a version directory such as .*\/1\/model\.onnx/],
    ['both --model-repository and --model-dir', ['serve', ...safe, '--http-port', '0', '--model-repository', EXAMPLE_REPOSITORY, '--model-dir', EXAMPLE_REPOSITORY, '--model-name', 'fraud'],
      /not both --model-repository and --model-dir/],
    ['MODELSHIP_MODEL_DIR without a name', ['serve', ...safe, '--http-port', '0'], /--model-dir '\/mnt\/models' needs the name/, { MODELSHIP_MODEL_DIR: '/mnt/models' }],
  ];
  for (const [name, args, reason, env] of cases) {
    it(`exits 2 on ${name}`, async () => {
      const result = await runCli(args, { env });
      expectExit(result, 2);
      assert.match(oneLineReason(result), reason);
    });
  }
});

describe('modelship serve with a --model that cannot load', { concurrency: 4 }, () => {
  const start = ['serve', '--host', '127.0.0.1', '--http-port', '0', '--grpc-port', '0'];
  let dir: string;
  let text: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'modelship-serve-'));
    text = join(dir, 'model.onnx');
    writeFileSync(text, 'hello world\n');
    mkdirSync(join(dir, 'exported'));
    writeFileSync(join(dir, 'exported', 'model.onnx'), '');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('shuts down and exits 1 with the reason, instead of serving on never ready', async () => {
    const result = await runCli([...start, '--model', `x=${text}`]);
    expectExit(result, 1);
    assert.equal(oneLineReason(result), `modelship: --model 'x=${text}' failed to load: '${text}' is not an ONNX model: it is 12 bytes of text ('hello world'), not a model; point at the .onnx file an exporter wrote (torch.onnx.export, tf2onnx, skl2onnx)`);
    assert.ok(logLines(result.stdout).some((line) => line.msg === 'stopped'), 'the server shut down before exiting');
  });

  it('exits even when the other --model loads, naming only the one that failed', async () => {
    const result = await runCli([...start, '--model', `good=${MODELS.linearRegression}`, '--model', `bad=${MODELS.corrupt}`]);
    expectExit(result, 1);
    const line = oneLineReason(result);
    assert.match(line, /^modelship: --model 'bad=.*corrupt\.onnx' failed to load: '.*corrupt\.onnx' is not an ONNX model: it starts like an ONNX model but is damaged/);
    assert.ok(!line.includes('good'), line);
  });

  it('exits 2 at once on a directory, pointing at the file inside', async () => {
    const result = await runCli([...start, '--model', `x=${dir}/exported`]);
    expectExit(result, 2);
    assert.equal(oneLineReason(result), `modelship: --model 'x=${dir}/exported': '${dir}/exported' is a directory; did you mean --model x=${join(dir, 'exported', 'model.onnx')}?`);
    assert.equal(result.stdout, '', 'nothing started');
  });

  it('exits 2 on a path without NAME=, suggesting one', async () => {
    const result = await runCli([...start, '--model', text]);
    expectExit(result, 2);
    assert.equal(oneLineReason(result), `modelship: --model must be NAME=PATH.onnx, received '${text}' (for example --model model=${text})`);
  });
});

describe('modelship serve on a port that is taken', { concurrency: 4 }, () => {
  let holder: Server;
  let taken: number;
  before(async () => {
    holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
    taken = (holder.address() as AddressInfo).port;
  });
  after(() => new Promise<void>((resolve) => holder.close(() => resolve())));
  const serveOn = (http: number, grpc: number, env?: Record<string, string>) =>
    runCli(['serve', '--model', `m=${MODELS.linearRegression}`, '--host', '127.0.0.1', ...(http >= 0 ? ['--http-port', String(http)] : []), '--grpc-port', String(grpc)], { env });

  it('names --http-port and its variable, and what to do', async () => {
    const result = await serveOn(taken, 0);
    expectExit(result, 1);
    assert.equal(oneLineReason(result), `modelship: the HTTP port ${taken} (--http-port, MODELSHIP_HTTP_PORT) is already in use on 127.0.0.1: stop the process that holds it, or choose another port with --http-port (0 picks a free one)`);
  });

  it('says the same when the port came from MODELSHIP_HTTP_PORT', async () => {
    const result = await serveOn(-1, 0, { MODELSHIP_HTTP_PORT: String(taken) });
    expectExit(result, 1);
    assert.match(oneLineReason(result), /HTTP port \d+ \(--http-port, MODELSHIP_HTTP_PORT\) is already in use/);
  });

  it('names --grpc-port and its variable', async () => {
    const result = await serveOn(0, taken);
    expectExit(result, 1);
    assert.equal(oneLineReason(result), `modelship: the gRPC port ${taken} (--grpc-port, MODELSHIP_GRPC_PORT) is already in use on 127.0.0.1: stop the process that holds it, or choose another port with --grpc-port (0 picks a free one)`);
  });

  it('says when the gRPC port is the HTTP port', async () => {
    const free = createServer();
    await new Promise<void>((resolve) => free.listen(0, '127.0.0.1', resolve));
    const port = (free.address() as AddressInfo).port;
    await new Promise((resolve) => free.close(resolve));
    const result = await serveOn(port, port);
    expectExit(result, 1);
    assert.equal(oneLineReason(result), `modelship: the gRPC port ${port} (--grpc-port, MODELSHIP_GRPC_PORT) is also the HTTP port (--http-port): give REST and gRPC different ports`);
  });

  it('names --host when it is not an address of this machine', async () => {
    // 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never assigned to an interface.
    const result = await runCli(['serve', '--model', `m=${MODELS.linearRegression}`, '--host', '192.0.2.1', '--http-port', '0', '--grpc-port', '0']);
    expectExit(result, 1);
    assert.match(oneLineReason(result), /^modelship: cannot listen on --host 192\.0\.2\.1 \(MODELSHIP_HOST\): no network interface of this machine has that address/);
  });
});

describe('modelship itself', { concurrency: 4 }, () => {
  it('exits 2 on an unknown command', async () => {
    const result = await runCli(['bogus']);
    expectExit(result, 2);
    assert.match(oneLineReason(result), /unknown command 'bogus'/);
  });

  it('prints usage and exits 2 without a command, 0 with --help', async () => {
    const bare = await runCli([]);
    expectExit(bare, 2);
    assert.match(bare.stdout, /Usage:/);
    const help = await runCli(['--help']);
    expectExit(help, 0);
    assert.match(help.stdout, /modelship fetch --uri URI --sha256 HEX --dest PATH/);
    assert.match(help.stdout, /MODELSHIP_FETCH_URI/);
  });

  it('COMMAND --help (or -h, or help COMMAND) prints that command\'s usage and exits 0', async () => {
    const cases: Array<[string[], RegExp, RegExp]> = [
      [['serve', '--help'], /^ {2}modelship serve --model NAME=PATH\.onnx/m, /^ {2}--http-port .*MODELSHIP_HTTP_PORT$/m],
      [['serve', '--model-repository', EXAMPLE_REPOSITORY, '-h'], /^ {2}modelship serve --model-repository DIR/m, /^ {2}--max-response-bytes /m],
      [['inspect', '--help'], /^ {2}modelship inspect PATH\.onnx \[--json\]/m, /^ {2}--json +print the report as JSON$/m],
      [['fetch', '--help'], /^ {2}modelship fetch --uri URI/m, /^ {2}--sha256 .*MODELSHIP_FETCH_SHA256$/m],
      [['help', 'fetch'], /^ {2}modelship fetch --uri URI/m, /^ {2}--retries /m],
    ];
    const results = await Promise.all(cases.map(([args]) => runCli(args)));
    results.forEach((result, i) => {
      const [args, usage, option] = cases[i];
      expectExit(result, 0);
      assert.equal(result.stderr, '', args.join(' '));
      assert.match(result.stdout, usage, args.join(' '));
      assert.match(result.stdout, option, args.join(' '));
    });
    assert.ok(!results[0].stdout.includes('MODELSHIP_FETCH'), 'serve --help shows serve\'s options only');
    assert.ok(!results[3].stdout.includes('MODELSHIP_HTTP_PORT'), 'fetch --help shows fetch\'s options only');
  });

  it('--version prints the package.json version', async () => {
    const result = await runCli(['--version']);
    expectExit(result, 0);
    assert.equal(result.stdout, `${JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')).version}\n`);
    assert.equal(result.stderr, '');
  });
});
