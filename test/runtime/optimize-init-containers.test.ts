/**
 * ModelSource.fromUri with `optimize`, run as the pod would run it: the init containers ModelService synthesizes,
 * taken from the manifest in their order (fetch-model, then optimize-model), each in a sandbox shaped like its
 * container (read-only root, the image's uid, its own /tmp), sharing one /models directory as they share the
 * emptyDir. What they leave is what the server would load; when the guard refuses, the server would never start.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import { MODEL_FILE_NAME, OPTIMIZED_METADATA_KEY, readOnnxFile } from '@modelship/contract';
import { ModelService, ModelSource, type ModelOptimization } from 'modelship';
import * as ort from '../../runtime/src/model/onnxruntime';
import { oneLineReason } from '../helpers/cli-process';
import { initContainersInSandbox, sandboxUnavailable, type InitContainerResult } from '../helpers/fetch-sandbox';
import { sendBytes, startFixtureServer, type FixtureServer } from '../helpers/http-fixture-server';
import { initContainerRuns } from '../helpers/init-container';
import { MODELS } from '../helpers/paths';

/** The tabular MLP: its MatMul weights are what dynamic-int8 quantizes. */
const MLP = readFileSync(MODELS.mlp);
const MLP_SHA256 = createHash('sha256').update(MLP).digest('hex');
/** Each container's deadline: optimizing and checking a small model takes seconds. */
const TIMEOUT_MS = 60_000;

const reason = sandboxUnavailable();

describe('fromUri with optimize: the pod\'s init containers, in order', { skip: reason || false, concurrency: 1 }, () => {
  let server: FixtureServer;
  let tmp: string;
  let pods = 0;
  before(async () => {
    server = await startFixtureServer((_req, res) => sendBytes(res, MLP));
    tmp = mkdtempSync(join(tmpdir(), 'modelship-optimize-pod-'));
  });
  after(async () => {
    await server.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  /** Synthesizes a ModelService for the MLP behind the fixture server and runs its init containers; /models on the host. */
  async function runPod(optimize: ModelOptimization): Promise<{ results: InitContainerResult[]; versionDir: string }> {
    const chart = new Chart(Testing.app(), 'models', { namespace: 'ml' });
    new ModelService(chart, 'fraud', { model: ModelSource.fromUri(`${server.url}/mlp.onnx`, { sha256: MLP_SHA256, optimize }) });
    const pod = join(tmp, `pod-${++pods}`);
    const models = join(pod, 'models');
    mkdirSync(models, { recursive: true });
    const runs = initContainerRuns(Testing.synth(chart), {}, pod);
    assert.deepEqual(runs.map((r) => r.name), ['fetch-model', 'optimize-model']);
    const results = await initContainersInSandbox(runs, models, { env: { HOME: '/tmp' }, timeoutMs: TIMEOUT_MS });
    return { results, versionDir: join(models, 'fraud', '1') };
  }

  const describeRun = (results: readonly InitContainerResult[]) =>
    results.map((r) => `${r.name}: exit ${r.code}${r.code === 0 ? '' : ` (stderr: ${r.stderr.trim()})`}`).join('; ');

  it('fetches and verifies the model, optimizes it on the node, and leaves a model.onnx that loads and answers', async () => {
    const { results, versionDir } = await runPod({ quantize: 'dynamic-int8', maxError: 0.5 });
    assert.deepEqual(results.map((r) => [r.name, r.code]), [['fetch-model', 0], ['optimize-model', 0]], describeRun(results));
    assert.deepEqual(readdirSync(versionDir).sort(), [MODEL_FILE_NAME, 'source.onnx'], 'the verified download and the optimized model, nothing half-made');
    assert.equal(createHash('sha256').update(readFileSync(join(versionDir, 'source.onnx'))).digest('hex'), MLP_SHA256);
    const optimizedPath = join(versionDir, MODEL_FILE_NAME);
    const optimized = readOnnxFile(readFileSync(optimizedPath));
    assert.notEqual(optimized.sha256, MLP_SHA256, 'model.onnx is not the download');
    assert.ok(optimized.metadata[OPTIMIZED_METADATA_KEY], `model.onnx records what optimize did under '${OPTIMIZED_METADATA_KEY}'`);
    assert.deepEqual(optimized.inputs, readOnnxFile(MLP).inputs, 'the server sees the same inputs');
    assert.deepEqual(optimized.outputs, readOnnxFile(MLP).outputs, 'and the same outputs');
    // The server's onnxruntime loads it and answers a batch.
    const session = await ort.InferenceSession.create(optimizedPath, { logSeverityLevel: 4 });
    const rows = 3;
    const output = await session.run({ x: new ort.Tensor('float32', Float32Array.from({ length: rows * 16 }, (_, i) => Math.sin(i)), [rows, 16]) });
    assert.deepEqual(output.y.dims, [rows, 4]);
    assert.ok((output.y.data as Float32Array).every(Number.isFinite));
  });

  it('stops the pod at optimize-model when the guard refuses (dynamic-int8 with maxError 0): exit 1, no model.onnx, the server never starts', async () => {
    const { results, versionDir } = await runPod({ quantize: 'dynamic-int8', maxError: 0 });
    assert.deepEqual(results.map((r) => [r.name, r.code]), [['fetch-model', 0], ['optimize-model', 1]], describeRun(results));
    assert.ok(oneLineReason(results[1]).length > 0, 'optimize-model says why on stderr, which `kubectl logs <pod> -c optimize-model` shows');
    assert.ok(!existsSync(join(versionDir, MODEL_FILE_NAME)), 'no model.onnx for the server to load');
    assert.deepEqual(readdirSync(versionDir), ['source.onnx'], 'only the verified download: no partial or temporary file');
  });
});
