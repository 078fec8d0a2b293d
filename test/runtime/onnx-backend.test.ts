/**
 * The ONNX backend node test cases from Debian's libonnx-testdata, served: every case onnxruntime-node passes
 * in-process must also pass when its inputs travel to the real runtime as OIP v2 JSON and its outputs come back
 * the same way. This exercises every datatype the protocol carries (BOOL, INT8..UINT64, FP16, FP32, FP64, BYTES),
 * NaN and ±Infinity, 64-bit integers beyond 2^53, scalars, empty tensors and multi-input/multi-output models.
 *
 * Excluded, and counted as not representable: models with a sequence, optional or other non-tensor input or
 * output, and a tensor type OIP v2 has no datatype for (bfloat16, float8, int4, complex). A model without inputs
 * (test_constant) is served with an empty 'inputs' list. Cases that fail in-process (ops onnxruntime does not
 * implement, random ops, missing locales, tolerance near zero) are counted and not served.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  type BackendCase, compareOutputs, fromV2Output, listNodeCases, loadCase, NODE_CASES, ONNX_TESTDATA, parseJsonExact,
  runInProcess, v2RequestJson,
} from '../helpers/onnx-testdata';
import { getJson, startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

const CONCURRENCY = 8;
/** At least this share of the representable cases must pass in-process, or the decoding here is broken. */
const MIN_IN_PROCESS_SHARE = 0.9;

interface Counts {
  total: number;
  representable: number;
  failInProcess: number;
  passInProcess: number;
}

describe('ONNX backend node test cases from libonnx-testdata, served over OIP v2 JSON', () => {
  const counts: Counts = { total: 0, representable: 0, failInProcess: 0, passInProcess: 0 };
  const unrepresentable = new Map<string, string>();
  const failedInProcess = new Map<string, string>();
  const passing: BackendCase[] = [];
  let repository: string | undefined;
  let runtime: RuntimeProcess | undefined;
  let inProcessMs = 0;

  // Checked in each test rather than thrown from the hook, so that a missing package shows up as failed tests.
  const requireTestdata = () => assert.ok(existsSync(NODE_CASES),
    `${ONNX_TESTDATA} is missing: install Debian's ONNX backend test data with 'apt-get install libonnx-testdata'`);

  before(async () => {
    if (!existsSync(NODE_CASES)) return;
    const started = Date.now();
    for (const name of listNodeCases()) {
      counts.total++;
      const c = loadCase(name);
      if (c.unrepresentable) {
        unrepresentable.set(name, c.unrepresentable);
        continue;
      }
      counts.representable++;
      const problem = await runInProcess(c);
      if (problem) {
        counts.failInProcess++;
        failedInProcess.set(name, problem);
      } else {
        counts.passInProcess++;
        passing.push(c);
      }
    }
    inProcessMs = Date.now() - started;

    repository = mkdtempSync(join(tmpdir(), 'modelship-onnx-backend-'));
    for (const c of passing) {
      mkdirSync(join(repository, c.name, '1'), { recursive: true });
      symlinkSync(c.modelPath, join(repository, c.name, '1', 'model.onnx'));
    }
    if (passing.length > 0) {
      runtime = await startRuntime(['--model-repository', repository, '--session-workers', '2'], { timeoutMs: 120_000 });
    }
  });

  after(async () => {
    if (runtime) assert.equal(await runtime.stop(), 0, `the runtime did not drain cleanly: ${runtime.stderr.join('\n')}`);
    if (repository) rmSync(repository, { recursive: true, force: true });
  });

  it('passes, served, every case that onnxruntime-node passes in-process', async (t) => {
    requireTestdata();
    assert.ok(counts.total > 0, `no cases under ${NODE_CASES}`);
    assert.ok(counts.passInProcess >= MIN_IN_PROCESS_SHARE * counts.representable,
      `only ${counts.passInProcess} of ${counts.representable} representable cases pass in-process:\n${describeFailures(failedInProcess)}`);
    assert.ok(runtime, 'the runtime was not started');

    const started = Date.now();
    const failedServed = new Map<string, string>();
    let next = 0;
    const worker = async () => {
      while (next < passing.length) {
        const c = passing[next++];
        const problem = await serveCase(runtime!.url, c);
        if (problem) failedServed.set(c.name, problem);
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const servedMs = Date.now() - started;
    const passServed = passing.length - failedServed.size;

    const summary = `onnx backend node cases: ${counts.total} total, ${counts.representable} representable, `
      + `${counts.passInProcess} pass in-process, ${passServed} pass served`;
    console.log(summary);
    t.diagnostic(summary);
    t.diagnostic(`${counts.total - counts.representable} not representable in OIP v2 JSON: ${[...unrepresentable].map(([n, why]) => `${n} (${why})`).join(', ')}`);
    t.diagnostic(`${counts.failInProcess} fail in-process, not served: ${[...failedInProcess.keys()].join(', ')}`);
    t.diagnostic(`in-process ${inProcessMs} ms; served ${passing.length} cases in ${servedMs} ms with ${CONCURRENCY} requests in flight`);

    if (failedServed.size > 0) {
      assert.fail(`${failedServed.size} of ${passing.length} cases pass in-process but fail served:\n${describeFailures(failedServed)}`);
    }
  });

  it('reports metadata that matches each model\'s declared signature', async () => {
    requireTestdata();
    assert.ok(runtime, 'the runtime was not started');
    // A spread of datatypes: FP32, BOOL, INT64 outputs, FP16, BYTES, UINT64, multiple outputs, symbolic dims.
    const wanted = ['test_add', 'test_and2d', 'test_argmax_default_axis_example', 'test_cast_FLOAT_to_FLOAT16',
      'test_cast_STRING_to_FLOAT', 'test_max_uint64', 'test_unique_sorted_with_axis', 'test_nonzero_example'];
    const chosen = passing.filter((c) => wanted.includes(c.name));
    assert.ok(chosen.length >= 4, `expected most of ${wanted.join(', ')} to pass in-process, got ${chosen.map((c) => c.name).join(', ')}`);
    for (const c of chosen) {
      const { status, body } = await getJson(`${runtime.url}/v2/models/${c.name}`);
      assert.equal(status, 200, `${c.name}: ${JSON.stringify(body)}`);
      assert.deepEqual(body, {
        name: c.name, versions: ['1'], platform: 'onnx_onnxv1', state: 'READY',
        inputs: c.declaredInputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
        outputs: c.declaredOutputs.map(({ name, datatype, shape }) => ({ name, datatype, shape })),
      }, `${c.name}: metadata`);
      const ready = await getJson(`${runtime.url}/v2/models/${c.name}/versions/1/ready`);
      assert.deepEqual(ready, { status: 200, body: { name: c.name, ready: true } });
    }
  });
});

/** Sends one case's inputs as OIP v2 JSON and compares what comes back; undefined when it passes. */
async function serveCase(url: string, c: BackendCase): Promise<string | undefined> {
  let status = 0;
  let text = '';
  try {
    const response = await fetch(`${url}/v2/models/${c.name}/infer`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: v2RequestJson(c),
    });
    status = response.status;
    text = await response.text();
    if (status !== 200) return `status ${status}: ${excerpt(text)}`;
    // Parsed so that the exact digits of INT64/UINT64 outputs beyond 2^53 survive.
    const body = parseJsonExact(text) as { model_name: string; model_version: string; outputs: { name: string; datatype: string; shape: unknown; data: unknown }[] };
    if (body.model_name !== c.name || body.model_version !== '1') return `answered as ${body.model_name} version ${body.model_version}`;
    const names = body.outputs.map((o) => o.name);
    const declared = c.declaredOutputs.map((o) => o.name);
    if (names.join('\n') !== declared.join('\n')) return `outputs [${names.join(', ')}], the model declares [${declared.join(', ')}]`;
    const outputs = new Map(body.outputs.map((o) => [o.name, fromV2Output(o)]));
    return compareOutputs(c, (name) => outputs.get(name));
  } catch (error) {
    return `status ${status}: ${(error as Error).message.split('\n')[0]}${text ? `; body ${excerpt(text)}` : ''}`;
  }
}

function excerpt(text: string): string {
  return text.length > 300 ? `${text.slice(0, 297)}...` : text;
}

function describeFailures(failures: ReadonlyMap<string, string>): string {
  return [...failures].map(([name, problem]) => `  ${name}: ${problem}`).join('\n');
}
