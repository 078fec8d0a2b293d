/**
 * The real runtime image: built from runtime/Dockerfile with buildah (test/image/build-image.sh) and run with podman
 * the way its pod runs it: read-only root, uid and gid 10001, an emptyDir-like tmpfs at /tmp, no privilege
 * escalation, one CPU and 512 MiB, the model repository read-only at /models. Other suites run the code; this one
 * finds what only the image can get wrong: a missing file, the wrong Node, the wrong user, dev-only packages.
 *
 * Needs root, buildah and podman (.ci/run installs them). Without them it skips, saying so, except under CI (the
 * CI variable set), where it fails: CI must not pass without having built and run the image. The first run also
 * builds the base image (~2-3 min, test/image/base-image.sh); later runs rebuild only the runtime image (~75-110 s).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { request } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from 'onnxruntime-node';
import { HTTP_PORT, MODEL_REPOSITORY_PATH, PATHS, RUNTIME_GID, RUNTIME_UID } from '@modelship/contract';
import { logLines, runProcess, type CliResult } from '../helpers/cli-process';
import { EXAMPLE_REPOSITORY, MODELS, REPO_ROOT } from '../helpers/paths';
import { freePort } from '../helpers/prometheus';
import { runReference } from '../helpers/reference';
import { waitFor } from '../helpers/wait';

const IMAGE = 'localhost/modelship-runtime:test';
const SCRIPTS = join(REPO_ROOT, 'test', 'image');
/** The base image the first time (~2-3 min) plus the build (~75-110 s), with room for a slow CI machine. */
const BUILD_TIMEOUT_MS = 10 * 60_000;
/** What the pod's resources give the container; the runtime sizes itself from them. */
const CPUS = 1;
const MEMORY_BYTES = 512 * 1024 * 1024;
/** The example's own request, byte for byte. */
const PREDICT_REQUEST = '{"instances": [1.0, 2.0, 3.0]}';
/** What `curl -d` labels its body with, as the example's curl command sends it. */
const CURL_CONTENT_TYPE = 'application/x-www-form-urlencoded';

/**
 * One request on a connection of its own, closed after the answer, as curl sends it. (fetch keeps connections open
 * for reuse, and the drain treats connections from before SIGTERM differently from new ones.)
 */
function send(url: string, options: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    request(url, { method: options.method ?? 'GET', headers: options.headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; });
      res.on('end', () => resolve({ status: res.statusCode!, body }));
      res.on('error', reject);
    }).on('error', reject).end(options.body);
  });
}

/** Why this machine cannot build and run the image, or undefined when it can. */
function unavailable(): string | undefined {
  const missing = ['buildah', 'podman'].filter((tool) => spawnSync(tool, ['--version'], { stdio: 'ignore' }).error);
  if (missing.length > 0) {
    return `${missing.join(' and ')} not installed: apt-get install -y buildah podman runc debootstrap fuse-overlayfs slirp4netns uidmap (.ci/run does)`;
  }
  // Building the base image needs debootstrap and chroot, and rootless podman needs subordinate ids set up.
  if (process.getuid?.() !== 0) return 'building and running the image needs root';
  return undefined;
}

const reason = unavailable();

describe('the runtime image, built from runtime/Dockerfile and run as its pod runs it', {
  skip: reason !== undefined && !process.env.CI ? `${reason} (under CI this fails instead)` : false,
}, () => {
  /** podman's settings for this machine (test/image/podman-env.sh), passed to every podman command. */
  let env: Record<string, string>;
  let imageSize: number;
  let port: number;
  const containers: string[] = [];
  /** The serving container, started in before(); its name. */
  let container: string;

  const podman = async (args: readonly string[], timeoutMs = 60_000): Promise<CliResult> =>
    runProcess('podman', args, { env, timeoutMs });
  /** Runs podman and returns its stdout, failing with podman's own words when it exits non-zero. */
  const podmanOk = async (args: readonly string[], timeoutMs?: number): Promise<string> => {
    const result = await podman(args, timeoutMs);
    assert.equal(result.code, 0, `podman ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
    return result.stdout;
  };
  const exec = (command: readonly string[]) => podman(['exec', container, ...command]);

  /**
   * Why the image was not built and started, if it was not. A failing before() would only cancel the tests (and a
   * run can end with "fail 0"); instead the first test fails with this error in full and the others name it.
   */
  let setupError: Error | undefined;
  const requireSetup = () => {
    if (setupError) throw new Error(`the image was not built and started (see the first test): ${setupError.message.split('\n')[0]}`);
  };

  before(async () => {
    try {
      await setup();
    } catch (error) {
      setupError = error as Error;
    }
  }, { timeout: BUILD_TIMEOUT_MS + 3 * 60_000 });

  async function setup(): Promise<void> {
    if (reason) throw new Error(`${reason}; CI installs them and runs as root, so this test must run there`);
    const conf = await runProcess(join(SCRIPTS, 'podman-env.sh'), []);
    assert.equal(conf.code, 0, conf.stderr);
    env = { CONTAINERS_CONF: conf.stdout.trim() };

    const build = await runProcess(join(SCRIPTS, 'build-image.sh'), [], {
      env: { ...env, IMAGE_TEST_TAG: IMAGE }, timeoutMs: BUILD_TIMEOUT_MS, label: 'test/image/build-image.sh',
    });
    // The build log is long; its end says what failed.
    assert.equal(build.code, 0, `test/image/build-image.sh exited ${build.code}:\n${build.stderr.split('\n').slice(-40).join('\n')}`);
    imageSize = Number(/^image size: (\d+)$/m.exec(build.stdout)?.[1]);

    // The container's name says which test run left it, should one outlive the run.
    container = `modelship-image-test-${process.pid}`;
    containers.push(container);
    port = await freePort();
    await podmanOk([
      'run', '-d', '--name', container,
      // The pod's securityContext: readOnlyRootFilesystem, runAsUser/runAsGroup, allowPrivilegeEscalation: false.
      '--read-only', '--user', `${RUNTIME_UID}:${RUNTIME_GID}`, '--security-opt', 'no-new-privileges',
      // The pod's emptyDir at /tmp, its resource limits, and the model volume mounted read-only.
      '--tmpfs', '/tmp', '--cpus', String(CPUS), '--memory', String(MEMORY_BYTES),
      '-v', `${EXAMPLE_REPOSITORY}:${MODEL_REPOSITORY_PATH}:ro`,
      '-p', `127.0.0.1:${port}:${HTTP_PORT}`,
      IMAGE,
    ]);
    await waitFor('the container to answer readiness with 200', async () =>
      (await send(`http://127.0.0.1:${port}${PATHS.ready}`)).status === 200 || undefined, 30_000, 200).catch(async (error: Error) => {
      // Say why it never got ready: the container's own output.
      const logs = await podman(['logs', container]);
      throw new Error(`${error.message}\ncontainer stdout:\n${logs.stdout}\ncontainer stderr:\n${logs.stderr}`);
    });
  }

  after(async () => {
    // Containers outlive this process; remove them whether the tests passed, failed or never got to run them.
    for (const name of containers) await podman(['rm', '-f', '-t', '0', name]).catch(() => undefined);
  });

  it('builds, runs as uid and gid 10001 by default, and its size is reported', async (t) => {
    if (setupError) throw setupError;
    assert.ok(imageSize > 0, 'build-image.sh printed the image size');
    t.diagnostic(`image ${IMAGE}: ${imageSize} bytes (${(imageSize / 1e6).toFixed(0)} MB)`);
    assert.equal((await podmanOk(['image', 'inspect', '--format', '{{.Config.User}}', IMAGE])).trim(), `${RUNTIME_UID}:${RUNTIME_GID}`);
  });

  it('answers the example\'s curl request with y = 2x + about 0.5', async () => {
    requireSetup();
    // curl -d '{"instances": [1.0, 2.0, 3.0]}' -X POST http://localhost:PORT/v1/models/my_model:predict
    const response = await send(`http://localhost:${port}/v1/models/my_model:predict`, {
      method: 'POST', headers: { 'content-type': CURL_CONTENT_TYPE }, body: PREDICT_REQUEST,
    });
    assert.equal(response.status, 200, response.body);
    const { predictions } = JSON.parse(response.body) as { predictions: number[][] };
    assert.equal(predictions.length, 3);
    for (const row of predictions) assert.ok(row.length === 1 && Number.isFinite(row[0]), `a single number per instance: ${JSON.stringify(row)}`);
    // The model was fitted to y = 2x + U(0, 1): the slope is near 2 and the intercept near 0.5.
    const slope = predictions[1][0] - predictions[0][0];
    assert.ok(Math.abs(slope - 2) < 0.2, `slope ${slope}`);
    const intercept = predictions[0][0] - 2 * 1;
    assert.ok(intercept > 0 && intercept < 1, `intercept ${intercept}`);
    // The same numbers as onnxruntime in this process: the image's Node and onnxruntime change nothing.
    const reference = await runReference(MODELS.linearRegression, { x: new ort.Tensor('float32', Float32Array.from([1, 2, 3]), [3, 1]) });
    assert.deepEqual(predictions, Array.from(reference.y_pred.data as Float32Array, (y) => [y]));
  });

  it('sizes itself from the container\'s CPU and memory limits', async () => {
    requireSetup();
    const sized = logLines(await podmanOk(['logs', container])).find((entry) => entry.msg.startsWith('sized for'));
    assert.ok(sized, 'the runtime logs how it sized itself');
    assert.equal(sized.cpus, CPUS);
    assert.equal(sized.cpuLimited, true);
    assert.equal(sized.memoryBytes, MEMORY_BYTES);
    assert.equal(sized.memoryLimited, true);
  });

  it('runs as uid and gid 10001 on a read-only root, with only /tmp writable and /models read-only', async () => {
    requireSetup();
    assert.equal((await exec(['id', '-u'])).stdout.trim(), String(RUNTIME_UID));
    assert.equal((await exec(['id', '-g'])).stdout.trim(), String(RUNTIME_GID));
    // Each path written once; the error code says why a write failed (EROFS: the file system, not permissions).
    const probe = 'const fs=require("fs");const w=(p)=>{try{fs.writeFileSync(p,"x");return "writable"}catch(e){return e.code}};'
      + 'console.log(JSON.stringify({root:w("/x"),app:w("/app/x"),code:w("/app/runtime/bin/modelship.js"),models:w("/models/x"),tmp:w("/tmp/x")}))';
    const result = await exec(['node', '-e', probe]);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), { root: 'EROFS', app: 'EROFS', code: 'EROFS', models: 'EROFS', tmp: 'writable' });
  });

  it('serves from pid 1 with no capabilities and no way to gain privileges', async () => {
    requireSetup();
    // pid 1 is what `podman stop` and the kubelet signal: it must be the runtime itself, not a shell around it.
    const cmdline = (await exec(['cat', '/proc/1/cmdline'])).stdout.split('\0').filter(Boolean);
    assert.deepEqual(cmdline, ['node', '/app/runtime/bin/modelship.js', 'serve', '--model-repository', MODEL_REPOSITORY_PATH]);
    const status = (await exec(['cat', '/proc/1/status'])).stdout;
    const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)$`, 'm').exec(status)?.[1];
    // A non-root user keeps none of the capabilities podman grants by default (they stay in the bounding set only).
    assert.equal(BigInt(`0x${field('CapEff')}`), 0n, 'no effective capabilities');
    assert.equal(BigInt(`0x${field('CapPrm')}`), 0n, 'no permitted capabilities');
    assert.equal(BigInt(`0x${field('CapAmb')}`), 0n, 'no ambient capabilities');
    assert.equal(field('NoNewPrivs'), '1', 'no_new_privs: setuid binaries cannot raise privileges');
    assert.match(status, new RegExp(`^Uid:\\s+${RUNTIME_UID}\\s+${RUNTIME_UID}\\s+${RUNTIME_UID}\\s+${RUNTIME_UID}$`, 'm'));
    assert.match(status, new RegExp(`^Gid:\\s+${RUNTIME_GID}\\s+${RUNTIME_GID}\\s+${RUNTIME_GID}\\s+${RUNTIME_GID}$`, 'm'));
  });

  it('runs Node 24', async () => {
    requireSetup();
    assert.match((await exec(['node', '--version'])).stdout.trim(), /^v24\./);
  });

  it('holds only the runtime package: nothing of the constructs, cdk8s or Pulumi, and no compiler', async () => {
    requireSetup();
    const result = await exec(['node', '-e',
      'const fs=require("fs");console.log(JSON.stringify(["cdk8s","cdk8s-plus-27","constructs","@pulumi","modelship","typescript","/app/lib"].filter((d)=>fs.existsSync(d.startsWith("/")?d:"/app/node_modules/"+d))))']);
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(JSON.parse(result.stdout), [], 'construct libraries in the runtime image');
  });

  // Last: it stops the container the tests above use.
  it('on podman stop (SIGTERM), answers a request still arriving, then exits 0 after draining', { timeout: 90_000 }, async () => {
    requireSetup();
    // A request whose body is half sent when the signal comes: in flight from the server's point of view.
    const half = PREDICT_REQUEST.length >> 1;
    let sendRest!: () => void;
    const answer = new Promise<{ status: number; connection?: string; body: string }>((resolve, reject) => {
      const req = request(`http://127.0.0.1:${port}/v1/models/my_model:predict`, {
        method: 'POST', agent: false,
        headers: { 'content-type': CURL_CONTENT_TYPE, 'content-length': Buffer.byteLength(PREDICT_REQUEST) },
      }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (chunk: string) => { body += chunk; });
        res.on('end', () => resolve({ status: res.statusCode!, connection: res.headers.connection, body }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.write(PREDICT_REQUEST.slice(0, half));
      sendRest = () => req.end(PREDICT_REQUEST.slice(half));
    });
    // Awaited below; should an assertion fail first, after() removes the container and resets this connection.
    answer.catch(() => undefined);
    // Until the headers have reached the runtime, the request is not in flight yet; this is ample over loopback.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const stopped = podman(['stop', '-t', '30', container], 60_000);
    const draining = await waitFor('the runtime to log that it is draining', async () =>
      logLines((await podman(['logs', container])).stdout).find((entry) => /^SIGTERM: draining/.test(entry.msg)), 15_000, 100);
    assert.equal(draining.inFlight, 1, 'the half-sent request counts as in flight');
    // A new connection while draining: readiness says 503 so the Service stops sending traffic here.
    assert.equal((await send(`http://127.0.0.1:${port}${PATHS.ready}`)).status, 503);
    sendRest();
    const answered = await answer;
    assert.equal(answered.status, 200, answered.body);
    assert.equal((JSON.parse(answered.body) as { predictions: number[][] }).predictions.length, 3);
    assert.equal(answered.connection, 'close', 'answered while draining: the client is told to reconnect elsewhere');

    const stop = await stopped;
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal((await podmanOk(['inspect', '--format', '{{.State.ExitCode}}', container])).trim(), '0');
    const stoppedLine = logLines(await podmanOk(['logs', container])).find((entry) => entry.msg === 'stopped');
    assert.equal(stoppedLine?.drained, true, 'the runtime logs a complete drain');
  });
});
