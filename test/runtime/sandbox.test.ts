/**
 * The runtime runs the way the synthesized pod says it will: under bubblewrap, with a read-only root, the image's
 * non-root uid and gid, only /tmp writable and the model repository read-only at /models, started with the
 * Dockerfile's entrypoint and the Deployment container's args.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import { ModelService, ModelSource } from 'modelship';
import { MODEL_REPOSITORY_PATH, RUNTIME_GID, RUNTIME_UID } from '@modelship/contract';
import { cleanEnv } from '../helpers/cli-process';
import { EXAMPLE_REPOSITORY, REPO_ROOT } from '../helpers/paths';
import { sandboxNode } from '../helpers/sandbox';
import { waitFor } from '../helpers/wait';

const BWRAP = '/usr/bin/bwrap';

function podSpec() {
  const chart = new Chart(Testing.app(), 'seed', { namespace: 'models' });
  new ModelService(chart, 'my-model', { modelName: 'my_model', model: ModelSource.fromImage('registry/seed:1') });
  const deployment = (Testing.synth(chart) as any[]).find((o) => o.kind === 'Deployment');
  return deployment.spec.template.spec;
}

function entrypoint(): string[] {
  const line = readFileSync(join(REPO_ROOT, 'runtime', 'Dockerfile'), 'utf8').split('\n').find((l) => l.startsWith('ENTRYPOINT '))!;
  return JSON.parse(line.slice('ENTRYPOINT '.length));
}

describe('the runtime in a sandbox shaped like its pod', () => {
  it('serves with a read-only root, uid and gid 10001, only /tmp writable and /models read-only', async () => {
    assert.ok(existsSync(BWRAP), 'bubblewrap is missing: apt-get install bubblewrap (.ci/run installs it)');
    const spec = podSpec();
    const container = spec.containers[0];
    assert.equal(container.securityContext.runAsUser, RUNTIME_UID);
    assert.equal(container.securityContext.readOnlyRootFilesystem, true);
    const [node, cli] = entrypoint();
    assert.equal(cli, '/app/runtime/bin/modelship.js');
    const root = ['--tmpfs', '/', '--ro-bind', '/usr', '/usr', '--ro-bind', '/lib', '/lib', '--ro-bind', '/etc', '/etc',
      ...(existsSync('/lib64') ? ['--ro-bind', '/lib64', '/lib64'] : []), '--symlink', 'usr/bin', '/bin', ...sandboxNode(),
      // The image's /app, and the pod's volumes: the repository read-only, an emptyDir at /tmp.
      '--ro-bind', REPO_ROOT, '/app', '--ro-bind', EXAMPLE_REPOSITORY, MODEL_REPOSITORY_PATH, '--tmpfs', '/tmp',
      '--proc', '/proc', '--dev', '/dev', '--remount-ro', '/',
      '--unshare-user', '--uid', String(container.securityContext.runAsUser), '--gid', String(container.securityContext.runAsGroup), '--die-with-parent'];
    // The probe script runs first inside the same sandbox, to show what the process may and may not do there.
    const probe = `const fs=require('fs');const w=(p)=>{try{fs.writeFileSync(p,'x');return 'writable'}catch(e){return e.code}};` +
      `console.log(JSON.stringify({uid:process.getuid(),gid:process.getgid(),root:w('/x'),app:w('/app/x'),models:w('/models/x'),tmp:w('/tmp/x')}))`;
    const facts = await new Promise<string>((resolve, reject) => {
      const child = spawn(BWRAP, [...root, '/usr/bin/env', node, '-e', probe], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (c) => { out += c; });
      child.stderr.on('data', (c) => { err += c; });
      child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`bwrap probe exited ${code}: ${err}`))));
    });
    assert.deepEqual(JSON.parse(facts), { uid: RUNTIME_UID, gid: RUNTIME_GID, root: 'EROFS', app: 'EROFS', models: 'EROFS', tmp: 'writable' });

    const server = spawn(BWRAP, [...root, '/usr/bin/env', node, cli, ...container.args], {
      env: cleanEnv({ MODELSHIP_HTTP_PORT: '0', MODELSHIP_GRPC_PORT: '0', MODELSHIP_HOST: '127.0.0.1' }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    try {
      const port = await new Promise<number>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no listening line within 20 s')), 20_000);
        createInterface({ input: server.stdout! }).on('line', (line) => {
          try {
            const entry = JSON.parse(line);
            if (entry.protocol === 'http' && entry.port) { clearTimeout(timer); resolve(entry.port); }
          } catch { /* not a log line */ }
        });
        server.on('exit', (code) => reject(new Error(`runtime exited ${code}`)));
      });
      // A refused connection or a 503 is tried again, every 100 ms for 10 s.
      await waitFor('the runtime to be ready inside the sandbox', async () => (await fetch(`http://127.0.0.1:${port}/v2/health/ready`)).status === 200 || undefined, 10_000, 100);
      const response = await fetch(`http://127.0.0.1:${port}/v1/models/my_model:predict`, { method: 'POST', body: '{"instances": [1.0, 2.0, 3.0]}', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
      assert.equal(response.status, 200);
      assert.equal(((await response.json()) as { predictions: number[][] }).predictions.length, 3);
      // The kubelet signals the container's process, not a wrapper: find the runtime inside bwrap and stop it.
      process.kill(descendantRunning(server.pid!, cli), 'SIGTERM');
      const [code] = await once(server, 'close');
      assert.equal(code, 0, 'drains and exits 0 inside the sandbox');
    } finally {
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    }
  });
});

/** The pid of the process below `ancestor` whose command line mentions `needle`. */
function descendantRunning(ancestor: number, needle: string): number {
  const parentOf = (pid: number) => Number(readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ')[1]);
  for (const entry of readdirSync('/proc').filter((e) => /^\d+$/.test(e))) {
    const pid = Number(entry);
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(needle)) continue;
      for (let p = pid, depth = 0; p > 1 && depth < 5; p = parentOf(p), depth++) if (parentOf(p) === ancestor) return pid;
    } catch {
      // the process ended while we looked
    }
  }
  throw new Error(`no process under ${ancestor} runs ${needle}`);
}
