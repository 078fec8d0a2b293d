/**
 * There is no container engine here, so the Dockerfile is checked for what the rest of the project relies on:
 * the user the constructs' securityContext names, the entrypoint and default command, the port, and build inputs
 * that exist in the repository.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { GRPC_PORT, HTTP_PORT, MODEL_REPOSITORY_PATH, RUNTIME_GID, RUNTIME_UID } from '../../lib/contract/runtime';
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
    assert.deepEqual(exec('ENTRYPOINT'), ['node', '/app/bin/modelship.js']);
    assert.deepEqual(exec('CMD'), ['serve', '--model-repository', MODEL_REPOSITORY_PATH]);
    assert.ok(finalStage.includes(`EXPOSE ${HTTP_PORT} ${GRPC_PORT}`));
  });

  it('copies only paths that exist, and the CLI it starts is one of them', () => {
    const buildStage = instructions.slice(0, instructions.findLastIndex((l) => l.startsWith('FROM ')));
    for (const copy of buildStage.filter((l) => l.startsWith('COPY '))) {
      const sources = copy.split(/\s+/).slice(1, -1);
      for (const source of sources) assert.ok(existsSync(join(REPO_ROOT, source)), `${copy}: ${source} exists`);
    }
    assert.ok(finalStage.some((l) => l === 'COPY --from=build /src/bin bin'));
    assert.ok(existsSync(join(REPO_ROOT, 'bin', 'modelship.js')));
    // Files the compiled runtime reads at start-up must reach the final stage at the path it reads them from.
    for (const copy of finalStage.filter((l) => l.startsWith('COPY --from=build /src/runtime/'))) {
      const [, , source, target] = copy.split(/\s+/);
      assert.equal(source.replace('/src/', ''), target, copy);
      assert.ok(existsSync(join(REPO_ROOT, target)), `${target} exists`);
    }
    assert.ok(finalStage.some((l) => l.includes('grpc_predict_v2.proto')), 'the gRPC proto is in the image');
  });

  it('skips the CUDA download unless the CUDA provider is asked for', () => {
    assert.match(dockerfile, /ARG EXECUTION_PROVIDER=cpu/);
    assert.match(dockerfile, /ONNXRUNTIME_NODE_INSTALL=skip npm ci/);
    assert.match(dockerfile, /--onnxruntime-node-install=cuda12/);
  });
});
