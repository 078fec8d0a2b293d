/**
 * `modelship fetch` in the init container's view, without a container engine: bubblewrap with a read-only root, the
 * image's uid and gid, and the model volume at /models as a size-limited tmpfs (as a memory-backed emptyDir is).
 * After the CLI exits, the sandbox lists what is left under /models, so a test can check that a failed fetch leaves
 * no model.onnx and no temporary file, whatever store it read from. Shared by fetch-faults and fetch-stores.
 * A pod's init containers one after the other (fetch-model, then optimize-model) share a host directory as /models
 * instead, which outlives each sandbox as an emptyDir outlives each container.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { MODEL_REPOSITORY_PATH, RUNTIME_GID, RUNTIME_UID } from '@modelship/contract';
import { runProcess, type CliResult, type CliResultWithFd3 } from './cli-process';
import type { InitContainerRun } from './init-container';
import { REPO_ROOT } from './paths';
import { sandboxNode } from './sandbox';

const BWRAP = '/usr/bin/bwrap';

/**
 * bubblewrap arguments for the init container's view: a read-only root with the repo at /app, the image's uid and
 * gid, and the model volume at /models: a tmpfs of `models` bytes, or the host directory `models` bound writable.
 * The host network is shared, so servers on 127.0.0.1 are reachable. Files the fetch reads (a token, a key, a docker
 * config) are bound read-only at the same path inside, `binds` at the paths given, and a fresh writable tmpfs at each
 * of `scratch` (the container's own emptyDirs, such as /tmp).
 */
function sandbox(models: number | string, readOnlyFiles: readonly string[] = [], binds: ReadonlyArray<readonly [string, string]> = [], scratch: readonly string[] = []): string[] {
  // A bind needs its mount point made, which the host's /etc bound read-only would refuse (a pod mounts its Secrets
  // under /etc/modelship): with binds, /etc is the sandbox's own, with the few host files name lookups and TLS read.
  const etc = binds.length === 0 ? ['--ro-bind', '/etc', '/etc']
    : ['/etc/hosts', '/etc/resolv.conf', '/etc/nsswitch.conf', '/etc/passwd', '/etc/group', '/etc/ssl'].filter((f) => existsSync(f)).flatMap((f) => ['--ro-bind', f, f]);
  return ['--tmpfs', '/', '--ro-bind', '/usr', '/usr', '--ro-bind', '/lib', '/lib', ...etc,
    ...(existsSync('/lib64') ? ['--ro-bind', '/lib64', '/lib64'] : []), '--symlink', 'usr/bin', '/bin', ...sandboxNode(),
    '--ro-bind', REPO_ROOT, '/app', ...readOnlyFiles.flatMap((file) => ['--ro-bind', file, file]),
    ...binds.flatMap(([from, to]) => ['--ro-bind', from, to]),
    ...(typeof models === 'number' ? ['--size', String(models), '--tmpfs', MODEL_REPOSITORY_PATH] : ['--bind', models, MODEL_REPOSITORY_PATH]),
    ...scratch.flatMap((path) => ['--tmpfs', path]),
    '--proc', '/proc', '--dev', '/dev', '--remount-ro', '/',
    '--unshare-user', '--uid', String(RUNTIME_UID), '--gid', String(RUNTIME_GID), '--die-with-parent'];
}

/** Why the sandboxed tests cannot run here, or '' when they can: bwrap must exist and be allowed its namespaces. */
export function sandboxUnavailable(): string {
  if (!existsSync(BWRAP)) return `${BWRAP} is not installed (apt-get install bubblewrap)`;
  const probe = spawnSync(BWRAP, [...sandbox(64 * 1024), '/usr/bin/true'], { encoding: 'utf8', timeout: 10_000 });
  if (probe.status === 0) return '';
  const why = probe.error?.message ?? (probe.stderr.trim() || `exit code ${probe.status}`);
  return `bubblewrap cannot create a sandbox here (user or mount namespaces refused?): ${why}`;
}

/** A file or directory under /models after the fetch, as the sandbox reported it. */
export interface VolumeEntry { readonly path: string; readonly type: 'file' | 'dir'; readonly size?: number; readonly sha256?: string }

/**
 * Runs inside the sandbox after the CLI exits, before the tmpfs disappears: every entry under /models with its size
 * and digest, as JSON on stdout (redirected to fd 3).
 */
const LIST_VOLUME = `const fs = require('fs'), path = require('path'), crypto = require('crypto');
const walk = (dir) => fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
  const p = path.join(dir, e.name);
  if (e.isDirectory()) return [{ path: p, type: 'dir' }, ...walk(p)];
  const bytes = fs.readFileSync(p);
  return [{ path: p, type: 'file', size: bytes.length, sha256: crypto.createHash('sha256').update(bytes).digest('hex') }];
});
process.stdout.write(JSON.stringify(walk(${JSON.stringify(MODEL_REPOSITORY_PATH)})));`;

export interface SandboxOptions {
  /** Variables for the CLI (the sandbox starts from the test's cleaned environment). */
  readonly env?: Record<string, string>;
  /** Files to make readable inside at their own paths. */
  readonly readOnlyFiles?: readonly string[];
  /** Directories to mount read-only inside, [host path, path inside], as a pod's Secret volumes are. */
  readonly binds?: ReadonlyArray<readonly [string, string]>;
  /** Prefixes of the test's variables to leave out, as for runProcess. */
  readonly withoutEnv?: readonly string[];
  readonly timeoutMs: number;
}

/**
 * `modelship fetch ...` inside a sandbox whose /models holds `bytes`; then the listing of /models on fd 3, which
 * comes back as `fd3`: the sandbox's report of its destination file system, written after the CLI exited.
 */
export function fetchInSandbox(bytes: number, args: readonly string[], options: SandboxOptions): Promise<CliResultWithFd3> {
  const script = 'node /app/runtime/bin/modelship.js "$@"; code=$?; node -e "$LIST_VOLUME" >&3; exit $code';
  return runProcess(BWRAP, [...sandbox(bytes, options.readOnlyFiles, options.binds), '/bin/sh', '-c', script, 'modelship', ...args], {
    env: { ...options.env, LIST_VOLUME }, timeoutMs: options.timeoutMs, fd3: true, withoutEnv: options.withoutEnv,
  });
}

/** One init container's run in initContainersInSandbox. */
export interface InitContainerResult extends CliResult {
  readonly name: string;
}

/**
 * A pod's init containers as the kubelet runs them: one after the other, each in its own sandbox with its own env,
 * Secret volumes and emptyDirs, all sharing `modelsDir` as /models; the first that exits non-zero ends the run, and
 * the server would never start. Returns the result of each container that ran.
 */
export async function initContainersInSandbox(runs: readonly InitContainerRun[], modelsDir: string, options: Omit<SandboxOptions, 'env' | 'binds' | 'readOnlyFiles'> & { readonly env?: Record<string, string> }): Promise<InitContainerResult[]> {
  const results: InitContainerResult[] = [];
  for (const run of runs) {
    const result = await runProcess(BWRAP, [...sandbox(modelsDir, [], run.binds, run.scratch), '/opt/node/bin/node', '/app/runtime/bin/modelship.js', ...run.args], {
      env: { ...options.env, ...run.env }, timeoutMs: options.timeoutMs, withoutEnv: options.withoutEnv, label: run.name,
    });
    results.push({ name: run.name, ...result });
    if (result.code !== 0) break;
  }
  return results;
}
