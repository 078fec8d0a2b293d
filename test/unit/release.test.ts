/**
 * The release machinery, checked without a release: the workflows pass actionlint (when it is installed; .ci/run
 * installs it), release.yml has the shape docs/release.md promises, and scripts/check-release-version.mjs accepts a
 * tag that matches the workspace packages and names the package and both versions when one does not.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { REPO_ROOT } from '../helpers/paths';

const WORKFLOWS = join(REPO_ROOT, '.github', 'workflows');
const SCRIPT = join(REPO_ROOT, 'scripts', 'check-release-version.mjs');
const onCi = !['', '0', 'false', undefined].includes(process.env.CI);

// The subset of a workflow these tests read.
interface Step { readonly uses?: string; readonly run?: string; readonly with?: Record<string, unknown>; readonly env?: Record<string, unknown> }
interface Job {
  readonly uses?: string;
  readonly needs?: string | string[];
  readonly permissions?: Record<string, string>;
  readonly steps?: Step[];
}
interface Workflow { readonly on: Record<string, unknown>; readonly jobs: Record<string, Job> }

const readWorkflow = (name: string) => parse(readFileSync(join(WORKFLOWS, name), 'utf8')) as Workflow;
const needs = (job: Job) => [job.needs ?? []].flat();
const stepIndex = (job: Job, predicate: (step: Step) => boolean, what: string) => {
  const index = (job.steps ?? []).findIndex(predicate);
  assert.ok(index >= 0, `no step ${what}`);
  return index;
};
const action = (name: string) => (step: Step) => step.uses?.split('@')[0] === name;
const runs = (pattern: RegExp) => (step: Step) => pattern.test(step.run ?? '');

/** The pinned build .ci/run installs, else one on PATH. */
function findActionlint(): string | undefined {
  const dirs = [join(REPO_ROOT, '.ci', 'bin'), ...(process.env.PATH ?? '').split(delimiter).filter(Boolean)];
  return dirs.map((dir) => join(dir, 'actionlint')).find((file) => {
    try {
      accessSync(file, constants.X_OK);
      return statSync(file).isFile();
    } catch {
      return false;
    }
  });
}

describe('the GitHub workflows', () => {
  const actionlint = findActionlint();
  const missing = 'actionlint is neither in .ci/bin nor on PATH; .ci/run installs it';
  it('pass actionlint', { skip: actionlint || onCi ? false : missing }, () => {
    assert.ok(actionlint, `${missing}, and under CI the workflows must be linted`);
    const files = readdirSync(WORKFLOWS).filter((f) => f.endsWith('.yml')).map((f) => join('.github', 'workflows', f));
    assert.ok(files.length > 0, 'no workflow files');
    const result = spawnSync(actionlint, ['-no-color', ...files], { cwd: REPO_ROOT, encoding: 'utf8' });
    assert.equal(result.error, undefined, `${actionlint}: ${result.error?.message}`);
    assert.equal(result.status, 0, `actionlint found problems:\n${result.stdout}${result.stderr}`);
  });

  it('pin every action to a major version', () => {
    for (const name of readdirSync(WORKFLOWS).filter((f) => f.endsWith('.yml'))) {
      for (const [id, job] of Object.entries(readWorkflow(name).jobs)) {
        for (const uses of [job.uses, ...(job.steps ?? []).map((s) => s.uses)]) {
          if (uses === undefined || uses.startsWith('./')) continue;
          assert.match(uses, /^[\w.-]+\/[\w.-]+@v\d+$/, `${name}, job ${id}: ${uses}`);
        }
      }
    }
  });
});

describe('release.yml', () => {
  const release = readWorkflow('release.yml');
  const { test, image, npm } = release.jobs;

  it('runs on a version tag only, after the same tests as CI', () => {
    assert.deepEqual(Object.keys(release.on), ['push']);
    assert.deepEqual(release.on.push, { tags: ['v*.*.*'] });
    assert.equal(test?.uses, './.github/workflows/ci.yml');
    assert.ok('workflow_call' in readWorkflow('ci.yml').on, 'ci.yml can be called');
    assert.ok(needs(image).includes('test') && needs(npm).includes('test'));
  });

  it('builds runtime/Dockerfile from the repository root for amd64 and arm64, once the tag matches the packages', () => {
    assert.equal(image.permissions?.packages, 'write');
    const build = stepIndex(image, action('docker/build-push-action'), 'building the image');
    const inputs = image.steps![build].with ?? {};
    assert.equal(inputs.file, 'runtime/Dockerfile');
    assert.equal(inputs.context, '.');
    assert.deepEqual(String(inputs.platforms).split(',').map((p) => p.trim()).sort(), ['linux/amd64', 'linux/arm64']);
    assert.equal(inputs.push, true);
    assert.ok(stepIndex(image, action('docker/setup-qemu-action'), 'setting up QEMU') < build);
    assert.ok(stepIndex(image, action('docker/login-action'), 'logging in') < build);
    assert.ok(stepIndex(image, runs(/check-release-version\.mjs/), 'checking the version') < build);
  });

  it('checks the version before publishing every workspace with provenance', () => {
    assert.equal(npm.permissions?.['id-token'], 'write', 'provenance needs the OIDC token');
    const setup = npm.steps![stepIndex(npm, action('actions/setup-node'), 'setting up Node')];
    assert.equal(setup.with?.['registry-url'], 'https://registry.npmjs.org');
    const check = stepIndex(npm, runs(/node scripts\/check-release-version\.mjs "\$GITHUB_REF_NAME"/), 'checking the version');
    const install = stepIndex(npm, runs(/^npm ci\b/), 'running npm ci');
    assert.equal(npm.steps![install].env?.ONNXRUNTIME_NODE_INSTALL, 'skip');
    const publish = stepIndex(npm, runs(/npm publish /), 'publishing');
    assert.ok(check < publish && install < publish);
    const command = npm.steps![publish].run!;
    for (const flag of ['--workspaces', '--access public', '--provenance']) assert.ok(command.includes(flag), `publish with ${flag}`);
    assert.equal(npm.steps![publish].env?.NODE_AUTH_TOKEN, '${{ secrets.NPM_TOKEN }}');
  });

  // npm publishes workspaces in the order the root package.json lists them, so a package must come after the
  // workspaces it depends on, or a release could stop with a dependent published and its dependency not.
  const root = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { workspaces?: string[] | { packages?: string[] } };
  const workspaces = Array.isArray(root.workspaces) ? root.workspaces : root.workspaces?.packages;
  it('publishes each workspace after the workspaces it depends on', { skip: workspaces ? false : 'the root package.json has no workspaces' }, () => {
    const names = workspaces!.map((dir) => (JSON.parse(readFileSync(join(REPO_ROOT, dir, 'package.json'), 'utf8')) as { name: string }).name);
    workspaces!.forEach((dir, index) => {
      const pkg = JSON.parse(readFileSync(join(REPO_ROOT, dir, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
      for (const field of ['dependencies', 'optionalDependencies', 'peerDependencies']) {
        for (const dep of Object.keys(pkg[field] ?? {}).filter((d) => names.includes(d))) {
          assert.ok(names.indexOf(dep) < index, `${dir} depends on ${dep}, which the root package.json's workspaces list after it`);
        }
      }
    });
  });
});

describe('scripts/check-release-version.mjs', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'modelship-release-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));
  let repos = 0;

  /** A repository of three workspaces; `overrides` replaces package.json fields per directory. */
  function repo(version: string, overrides: Record<string, Record<string, unknown>> = {}) {
    const dir = join(scratch, String(repos++));
    const packages: Record<string, Record<string, unknown>> = {
      '.': { name: 'root', private: true, workspaces: ['contract', 'runtime', 'lib'] },
      contract: { name: '@modelship/contract', version },
      runtime: { name: '@modelship/runtime', version, dependencies: { '@modelship/contract': version, yaml: '^2.9.1' } },
      lib: { name: 'modelship', version, dependencies: { '@modelship/contract': version }, peerDependencies: { cdk8s: '^2' } },
    };
    for (const [path, pkg] of Object.entries(packages)) {
      const file = join(dir, path, 'package.json');
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, JSON.stringify({ ...pkg, ...overrides[path] }, null, 2));
    }
    return dir;
  }

  function check(tag: string, dir: string) {
    const env = { ...process.env };
    delete env.NODE_TEST_CONTEXT; // would make the child report to this test runner
    const result = spawnSync(process.execPath, [SCRIPT, tag, dir], { encoding: 'utf8', env });
    return { status: result.status, stdout: result.stdout, stderr: result.stderr };
  }

  it('passes when every package and internal dependency is at the tag\'s version', () => {
    for (const version of ['1.2.3', '2.0.0-rc.1']) {
      const result = check(`v${version}`, repo(version));
      assert.equal(result.status, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`@modelship/contract, @modelship/runtime, modelship at ${version.replace(/\./g, '\\.')}`));
    }
  });

  it('names the package and both versions when a package is at another version', () => {
    const result = check('v1.2.4', repo('1.2.4', { lib: { version: '1.2.3' } }));
    assert.equal(result.status, 1);
    assert.match(result.stderr, /modelship \(lib\/package\.json\) is at version 1\.2\.3, but the tag v1\.2\.4 is version 1\.2\.4/);
    assert.doesNotMatch(result.stderr, /@modelship\/(contract|runtime)/, 'only the package that differs');
  });

  it('fails when an internal dependency is a range or another version', () => {
    const result = check('v1.2.3', repo('1.2.3', {
      runtime: { dependencies: { '@modelship/contract': '^1.2.3' } },
      lib: { peerDependencies: { '@modelship/contract': '1.2.2' } },
    }));
    assert.equal(result.status, 1);
    assert.match(result.stderr, /@modelship\/runtime \(runtime\/package\.json\) has @modelship\/contract \^1\.2\.3 in dependencies, but the release needs exactly 1\.2\.3/);
    assert.match(result.stderr, /modelship \(lib\/package\.json\) has @modelship\/contract 1\.2\.2 in peerDependencies/);
  });

  it('ignores devDependencies and private workspaces, which nobody installs from the registry', () => {
    const dir = repo('1.2.3', { lib: { devDependencies: { '@modelship/contract': '*' } } });
    mkdirSync(join(dir, 'examples'));
    writeFileSync(join(dir, 'examples', 'package.json'), JSON.stringify({ name: 'examples', private: true, version: '0.0.0' }));
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ private: true, workspaces: ['contract', 'runtime', 'lib', 'examples'] }));
    const result = check('v1.2.3', dir);
    assert.equal(result.status, 0, result.stderr);
  });

  it('refuses a tag that is not v<major>.<minor>.<patch>[-<prerelease>]', () => {
    const dir = repo('1.2.3');
    for (const tag of ['1.2.3', 'v1.2', 'v1.2.3+build.5', 'release-1.2.3']) {
      const result = check(tag, dir);
      assert.equal(result.status, 2, tag);
      assert.match(result.stderr, new RegExp(`tag '${tag.replace(/[.+]/g, '\\$&')}' is not v<major>`));
    }
  });
});
