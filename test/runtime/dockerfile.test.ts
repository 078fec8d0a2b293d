/**
 * What the rest of the project relies on in the Dockerfile, checked without building it (image.test.ts builds and
 * runs it where buildah and podman are installed): the user the constructs' securityContext names, the entrypoint
 * and default command, the port, build inputs that exist, and an image that installs the runtime package alone.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { GRPC_PORT, HTTP_PORT, MODEL_REPOSITORY_PATH, RUNTIME_GID, RUNTIME_UID } from '@modelship/contract';
import { REPO_ROOT } from '../helpers/paths';

const dockerfile = readFileSync(join(REPO_ROOT, 'runtime', 'Dockerfile'), 'utf8');
const instructions = dockerfile.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
const finalStage = instructions.slice(instructions.findLastIndex((l) => l.startsWith('FROM ')));
const exec = (keyword: string) => JSON.parse(finalStage.find((l) => l.startsWith(`${keyword} `))!.slice(keyword.length + 1));

describe('runtime/Dockerfile', () => {
  it('runs as the non-root uid and gid of the contract', () => {
    assert.deepEqual(finalStage.filter((l) => l.startsWith('USER ')), [`USER ${RUNTIME_UID}:${RUNTIME_GID}`]);
    assert.notEqual(RUNTIME_UID, 0);
  });

  it('starts the modelship CLI serving the contract\'s model repository path', () => {
    assert.deepEqual(exec('ENTRYPOINT'), ['node', '/app/runtime/bin/modelship.js']);
    assert.deepEqual(exec('CMD'), ['serve', '--model-repository', MODEL_REPOSITORY_PATH]);
    assert.ok(finalStage.includes(`EXPOSE ${HTTP_PORT} ${GRPC_PORT}`));
  });

  it('copies only paths that exist, and the CLI it starts is one of them', () => {
    for (const copy of instructions.filter((l) => l.startsWith('COPY ') && !l.startsWith('COPY --from='))) {
      const sources = copy.split(/\s+/).slice(1, -1);
      for (const source of sources) assert.ok(existsSync(join(REPO_ROOT, source)), `${copy}: ${source} exists`);
    }
    assert.ok(finalStage.includes('COPY runtime/bin runtime/bin'));
    // The compiled packages land in /app at the paths the workspace links in node_modules point to.
    for (const copy of finalStage.filter((l) => l.startsWith('COPY --from=build /src/'))) {
      const [, , source, target] = copy.split(/\s+/);
      assert.equal(source.replace('/src/', ''), target, copy);
      assert.ok(existsSync(join(REPO_ROOT, target)), `${target} exists`);
    }
    assert.ok(finalStage.includes('COPY --from=build /src/runtime/src runtime/src'), 'the compiled runtime and its gRPC proto are in the image');
    assert.ok(existsSync(join(REPO_ROOT, 'runtime', 'src', 'protocols', 'grpc_predict_v2.proto')));
  });

  it('installs only the runtime workspace\'s production dependencies into the image', () => {
    const install = instructions.find((l) => l.startsWith('RUN npm ci') && l.includes('--omit=dev'));
    assert.ok(install, 'a production install');
    assert.match(install, /--workspace=@modelship\/runtime/);
    assert.ok(finalStage.includes('COPY --from=install /src/node_modules node_modules'));
    assert.ok(!finalStage.some((l) => /COPY .*\blib\b/.test(l)), 'nothing of the constructs reaches the final stage');
  });

  it('runs no install script unless the CUDA provider is asked for', () => {
    assert.match(dockerfile, /ARG EXECUTION_PROVIDER=cpu/);
    for (const npmCi of instructions.filter((l) => l.includes('npm ci'))) assert.match(npmCi, /--ignore-scripts/);
    assert.match(dockerfile, /--onnxruntime-node-install=cuda12/);
  });
});
