/**
 * The packages as users get them: `npm pack` of each workspace, then installed into fresh projects outside the
 * repository. A cdk8s user installs the constructs alone, with no environment variable, and synthesizes a program
 * of their own without onnxruntime-node, fastify or gRPC in their node_modules; someone running the server installs
 * the runtime alone and serves the example model from it without cdk8s or Pulumi. The sizes of both installs are
 * reported (docs/packages.md quotes them).
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runProcess, type CliResult } from '../helpers/cli-process';
import { EXAMPLE_REPOSITORY, REPO_ROOT } from '../helpers/paths';
import { postJson, startRuntime } from '../helpers/runtime-process';

const WORKSPACES = ['contract', 'runtime', 'lib'] as const;
/** What only the runtime needs; none of it may reach a construct user's project. */
const RUNTIME_ONLY = ['onnxruntime-node', 'fastify', '@grpc/grpc-js', 'prom-client', 'pino'];
/** What only the constructs need; none of it may reach the runtime's install (or its image). */
const CONSTRUCTS_ONLY = ['cdk8s', 'cdk8s-plus-27', 'constructs', '@pulumi/pulumi', '@pulumi/kubernetes', 'modelship'];
const INSTALL_TIMEOUT_MS = 240_000;
/** What `cdk8s init typescript-app` writes into a new project. */
const CDK8S_TEMPLATE = join(REPO_ROOT, 'node_modules', 'cdk8s-cli', 'templates', 'typescript-app');

const scratch = mkdtempSync(join(tmpdir(), 'modelship-packages-'));
const tarballs: Record<(typeof WORKSPACES)[number], string> = { contract: '', runtime: '', lib: '' };

/**
 * npm as a user runs it: none of the test run's npm_* variables (its config and lifecycle) and no switch for
 * onnxruntime-node's install script unless given; npm's cache in the home directory stays shared.
 */
async function npm(args: readonly string[], cwd: string, env: Record<string, string> = {}): Promise<CliResult> {
  const result = await runProcess('npm', args, { cwd, env, withoutEnv: ['npm_', 'ONNXRUNTIME_NODE_INSTALL'], timeoutMs: INSTALL_TIMEOUT_MS });
  assert.equal(result.code, 0, `npm ${args.join(' ')} in ${cwd}\n${result.stdout}\n${result.stderr}`);
  return result;
}

function freshProject(name: string): string {
  const dir = join(scratch, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }, null, 2));
  return dir;
}

function duBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += duBytes(path);
    else if (entry.isFile()) total += statSync(path).size;
  }
  return total;
}

const mebibytes = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const installed = (project: string, name: string) => existsSync(join(project, 'node_modules', ...name.split('/'), 'package.json'));

before(async () => {
  const packed = await npm(['pack', '--json', '--pack-destination', scratch, ...WORKSPACES.flatMap((w) => ['--workspace', w])], REPO_ROOT);
  const files = JSON.parse(packed.stdout) as Array<{ name: string; filename: string; files: Array<{ path: string }> }>;
  for (const workspace of WORKSPACES) {
    const name = JSON.parse(readFileSync(join(REPO_ROOT, workspace, 'package.json'), 'utf8')).name as string;
    const entry = files.find((file) => file.name === name);
    assert.ok(entry, `npm pack produced ${name}`);
    packageNames[name] = workspace;
    tarballs[workspace] = join(scratch, entry.filename.replace(/^@/, '').replace('/', '-'));
    assert.ok(existsSync(tarballs[workspace]), tarballs[workspace]);
  }
  packedContents = files;
});
after(() => rmSync(scratch, { recursive: true, force: true }));

let packedContents: Array<{ name: string; files: Array<{ path: string }> }> = [];
const packageNames: Record<string, (typeof WORKSPACES)[number]> = {};
const workspaceOf = (name: string) => packageNames[name];

describe('the packed packages', () => {
  it('each ship the licence, declarations, and source maps that carry their sources, and no TypeScript sources', () => {
    for (const pack of packedContents) {
      const paths = pack.files.map((file) => file.path);
      assert.ok(paths.includes('LICENSE'), `${pack.name} ships LICENSE`);
      // A .ts beside its .d.ts would be what a user's compiler reads, under the user's settings.
      assert.deepEqual(paths.filter((path) => path.endsWith('.ts') && !path.endsWith('.d.ts')), [], `${pack.name} ships no .ts sources`);
      assert.ok(!paths.some((path) => path.includes('test/') || path.endsWith('.test.js')), `${pack.name} ships no tests`);
      const maps = paths.filter((path) => path.endsWith('.js.map'));
      assert.ok(maps.length > 0, `${pack.name} ships its maps`);
      const unpacked = join(scratch, 'unpacked', pack.name);
      mkdirSync(unpacked, { recursive: true });
      execFileSync('tar', ['-xzf', tarballs[workspaceOf(pack.name)], '-C', unpacked, '--strip-components=1']);
      for (const map of maps) {
        const { sources, sourcesContent } = JSON.parse(readFileSync(join(unpacked, map), 'utf8')) as { sources: string[]; sourcesContent?: string[] };
        assert.equal(sourcesContent?.length, sources.length, `${pack.name}: ${map} carries the source it maps to`);
        assert.ok(sourcesContent.every((text) => text.length > 0), map);
      }
    }
  });
});

describe('a cdk8s user\'s project with `npm install modelship`', () => {
  let project: string;
  before(async () => {
    project = freshProject('fraud-detection-infra');
    // The constructs' peers (cdk8s, cdk8s-plus-27, constructs) come with it: npm installs required peers. Node's
    // types as the cdk8s project template pins them.
    const nodeTypes = JSON.parse(readFileSync(join(CDK8S_TEMPLATE, 'package.json'), 'utf8')).devDependencies['@types/node'] as string;
    await npm(['install', '--no-audit', '--no-fund', '--prefer-offline', tarballs.contract, tarballs.lib, `@types/node@${nodeTypes}`], project);
  });

  it('installs none of the runtime\'s dependencies and no Pulumi', (t) => {
    for (const name of RUNTIME_ONLY) assert.ok(!installed(project, name), `${name} is not installed`);
    for (const name of ['@pulumi/pulumi', '@pulumi/kubernetes', '@modelship/runtime']) assert.ok(!installed(project, name), `${name} is not installed`);
    for (const name of ['modelship', '@modelship/contract', 'cdk8s', 'cdk8s-plus-27', 'constructs']) assert.ok(installed(project, name), `${name} is installed`);
    t.diagnostic(`constructs install (modelship with cdk8s, cdk8s-plus-27, constructs): ${mebibytes(duBytes(join(project, 'node_modules')))}`);
  });

  it('synthesizes the user\'s own TypeScript program, type-checked against the published declarations', async () => {
    writeFileSync(join(project, 'main.ts'), `
import { App, Chart } from 'cdk8s';
import { ModelAutoscaler, ModelMonitoring, ModelService, ModelSource, ScalingSignal } from 'modelship';

const app = new App();
const chart = new Chart(app, 'fraud-detection', { namespace: 'risk' });
const service = new ModelService(chart, 'fraud', {
  model: ModelSource.fromUri('https://models.example.com/fraud/3/model.onnx', { sha256: '${'a'.repeat(64)}' }),
});
new ModelAutoscaler(chart, 'scale', { service, maxReplicas: 4, signal: ScalingSignal.cpu(70) });
new ModelMonitoring(chart, 'monitoring', { service });
app.synth();
`);
    // The tsconfig.json `cdk8s init typescript-app` writes (strict, CommonJS, lib es2016, libraries' declarations
    // checked too), from the cdk8s-cli package itself; the repository's own TypeScript compiles with it.
    copyFileSync(join(CDK8S_TEMPLATE, 'tsconfig.json'), join(project, 'tsconfig.json'));
    const tsc = await runProcess(process.execPath, [join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], { cwd: project, timeoutMs: 120_000 });
    assert.equal(tsc.code, 0, tsc.stdout + tsc.stderr);
    const synth = await runProcess(process.execPath, ['main.js'], { cwd: project, timeoutMs: 60_000 });
    assert.equal(synth.code, 0, synth.stderr);
    const manifest = readFileSync(join(project, 'dist', 'fraud-detection.k8s.yaml'), 'utf8');
    for (const kind of ['Deployment', 'Service', 'NetworkPolicy', 'PodDisruptionBudget', 'HorizontalPodAutoscaler', 'ServiceMonitor', 'PrometheusRule']) {
      assert.match(manifest, new RegExp(`^kind: ${kind}$`, 'm'), `the synthesized manifest has a ${kind}`);
    }
    const version = JSON.parse(readFileSync(join(REPO_ROOT, 'lib', 'package.json'), 'utf8')).version as string;
    assert.match(manifest, new RegExp(`image: ghcr.io/modelship/runtime:${version.replace(/\./g, '\\.')}`), 'the default image is the package\'s version');
  });
});

describe('`npm install @modelship/runtime` alone', () => {
  let project: string;
  before(async () => {
    project = freshProject('model-server');
    // onnxruntime-node's install script would fetch CUDA binaries where an npm runs dependencies' scripts (npm 11.19
    // and later do not, unless allowed); the CPU binaries the runtime uses ship inside its npm package.
    await npm(['install', '--no-audit', '--no-fund', '--prefer-offline', tarballs.contract, tarballs.runtime], project, { ONNXRUNTIME_NODE_INSTALL: 'skip' });
  });

  it('installs nothing of the constructs', (t) => {
    for (const name of CONSTRUCTS_ONLY) assert.ok(!installed(project, name), `${name} is not installed`);
    assert.ok(installed(project, 'onnxruntime-node'));
    t.diagnostic(`runtime install (@modelship/runtime with onnxruntime-node, fastify, gRPC): ${mebibytes(duBytes(join(project, 'node_modules')))}`);
  });

  it('serves the example model from the installed bin', async () => {
    const runtime = await startRuntime(['--model-repository', EXAMPLE_REPOSITORY], { cli: join(project, 'node_modules', '@modelship', 'runtime', 'bin', 'modelship.js') });
    try {
      const answer = await postJson(`${runtime.url}/v1/models/my_model:predict`, { instances: [1.0, 2.0, 3.0] });
      assert.equal(answer.status, 200, JSON.stringify(answer.body));
      const predictions = (answer.body as { predictions: number[][] }).predictions.map(([y]) => y);
      assert.equal(predictions.length, 3);
      const slope = predictions[1] - predictions[0];
      assert.ok(Math.abs(slope - 2) < 0.2, `the example model is y ≈ 2x, slope ${slope}`);
    } finally {
      assert.equal(await runtime.stop(), 0);
    }
  });
});
