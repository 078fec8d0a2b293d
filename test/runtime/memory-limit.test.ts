/**
 * The runtime in a container with the example pod's memory limit (512Mi): the byte limits it derives from that
 * memory let through the largest request of each form, and the process's peak stays within the memory; a byte more
 * is refused. Where this machine lets us make one, the runtime runs in a real cgroup whose limit the kernel enforces
 * (an OOM kill, as in a pod); elsewhere it reads a fake cgroup tree and the peak is checked against the limit alone.
 */
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it, type TestContext } from 'node:test';
import { memoryDerivedLimits, PARSED_JSON_WEIGHT } from '../../runtime/src/config';
import { fakeCgroupTree, memoryCgroup, type TestCgroup } from '../helpers/cgroup';
import { MODELS, REPO_ROOT } from '../helpers/paths';
import { randomFloats } from '../helpers/reference';
import { startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

const MiB = 1024 * 1024;
const MEMORY = 512 * MiB;
const LIMITS = memoryDerivedLimits({ memoryBytes: MEMORY, memoryLimited: true });
const MODEL_ARGS = ['--model', `lin=${MODELS.linearRegression}`, '--model', `mean=${MODELS.mean}`];

function status(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) * 1024;
}

/**
 * Resets the process's peak RSS to its current RSS (clear_refs 5, where this process may write it), so that the next
 * peak is one request's; returns that RSS. Without the reset, the rise measured from it includes older peaks.
 */
function resetPeak(pid: number): number {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
  } catch {
    // Not ours to reset: the check below is then stricter than it needs to be, never looser.
  }
  return status(pid, 'VmRSS');
}

/**
 * A JSON body of exactly `bytes` bytes: `count` items of `item`'s fixed width (short numbers: the most elements per
 * byte), wrapped, then padded with spaces (JSON allows them after the value).
 */
function jsonOfSize(bytes: number, wrap: (items: string, count: number) => string, item = (i: number) => `0.${i % 10}`): string {
  const width = item(0).length;
  const count = Math.floor((bytes - wrap('', 0).length - 32 + 1) / (width + 1));
  const body = wrap(Array.from({ length: count }, (_, i) => item(i)).join(','), count);
  assert.ok(body.length <= bytes && body.length > bytes - 64, `${body.length} bytes for ${bytes}`);
  return body.padEnd(bytes, ' ');
}

/**
 * A JSON body whose one large array of numbers (the `[items]` that `wrap` places) makes it as large as a derived
 * limit allows: the bytes around the array count PARSED_JSON_WEIGHT times (tensor/numeric-json.ts), so the body is
 * padded to within a few weighed bytes of `limit`.
 */
function numbersAtLimit(limit: number, wrap: (items: string, count: number) => string, item = (i: number) => `0.${i % 10}`): string {
  const extra = PARSED_JSON_WEIGHT - 1;
  const width = item(0).length;
  const count = Math.floor((limit - (extra + 1) * (wrap('', 0).length + 64)) / (width + 1));
  const items = Array.from({ length: count }, (_, i) => item(i)).join(',');
  const body = wrap(items, count);
  const around = body.length - (items.length + 2);
  const weighed = body.length + extra * around;
  const padding = Math.floor((limit - weighed) / (extra + 1));
  assert.ok(padding >= 0 && padding < 1000, `padding ${padding}`);
  return body + ' '.repeat(padding);
}

async function post(runtime: RuntimeProcess, path: string, body: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }) {
  const response = await fetch(`${runtime.url}${path}`, { method: 'POST', headers, body });
  const text = await response.text();
  return { status: response.status, text };
}

function binaryBody(values: Float32Array, shape: number[], jsonAnswer: boolean, padTo?: number): { body: Buffer; headers: Record<string, string> } {
  let header = JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape, parameters: { binary_data_size: values.byteLength } }], parameters: { binary_data_output: !jsonAnswer } });
  // JSON allows trailing spaces: they pad the header so that the whole body is exactly `padTo` bytes.
  if (padTo !== undefined) header = header.padEnd(padTo - values.byteLength, ' ');
  const head = Buffer.from(header);
  return {
    body: Buffer.concat([head, Buffer.from(values.buffer, values.byteOffset, values.byteLength)]),
    headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(head.byteLength) },
  };
}

const definition = loadSync(join(REPO_ROOT, 'runtime', 'src', 'protocols', 'grpc_predict_v2.proto'), { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
const Service = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;

function grpcInfer(port: number, request: object): Promise<grpc.status> {
  const client = new Service(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': -1, 'grpc.max_receive_message_length': -1 });
  return new Promise((resolve) => {
    (client as unknown as Record<string, Function>).ModelInfer(request, (error: grpc.ServiceError | null) => {
      client.close();
      resolve(error ? error.code : grpc.status.OK);
    });
  });
}

/** A ModelInfer request of FP32 typed contents whose serialized size is about `bytes` (5 bytes per element). */
function typedContentsRequest(bytes: number): object {
  const count = Math.floor(bytes / 4) - 64;
  return { model_name: 'mean', inputs: [{ name: 'x', datatype: 'FP32', shape: [1, count], contents: { fp32_contents: Array.from(randomFloats(count, 7)) } }] };
}

describe(`the runtime within a ${MEMORY / MiB} MiB memory limit`, () => {
  let cgroup: TestCgroup | undefined;
  let fakeRoot: string | undefined;
  let runtime: RuntimeProcess;

  before(async () => {
    cgroup = memoryCgroup(MEMORY);
    if (!cgroup) fakeRoot = fakeCgroupTree(mkdtempSync(join(tmpdir(), 'modelship-cgroup-')), { memoryBytes: MEMORY });
    runtime = await startRuntime(MODEL_ARGS, cgroup ? { cgroups: [cgroup.procs] } : { env: { MODELSHIP_TEST_CGROUP_ROOT: fakeRoot! } });
  });
  after(async () => {
    assert.equal(await runtime.stop(), 0);
    assert.equal(cgroup?.oomKills() ?? 0, 0, 'the kernel killed nothing in the cgroup');
    cgroup?.remove();
    if (fakeRoot) rmSync(fakeRoot, { recursive: true, force: true });
  });

  /**
   * Sends one request (`send`) and checks the process's peak during it: within the memory, and its rise within the
   * half of what the runtime leaves that one request is promised (config.ts).
   */
  const withinMemory = async (t: TestContext, what: string, send: () => Promise<void>) => {
    const pid = runtime.process.pid!;
    const before = resetPeak(pid);
    await send();
    const peak = status(pid, 'VmHWM');
    t.diagnostic(`${what}: peak RSS ${(peak / MiB).toFixed(0)} MiB, ${((peak - before) / MiB).toFixed(0)} MiB over the ${(before / MiB).toFixed(0)} MiB before it; cgroup charged at most ${((cgroup?.peakBytes() ?? Number.NaN) / MiB).toFixed(0)} MiB`);
    assert.ok(peak <= MEMORY, `${what}: peak RSS ${peak} exceeds the limit ${MEMORY}`);
    assert.ok(peak - before <= (MEMORY - 128 * MiB) / 2, `${what}: one request took ${peak - before} bytes, more than half of what the runtime leaves`);
    const charged = cgroup?.peakBytes();
    if (charged !== undefined) assert.ok(charged <= MEMORY, `${what}: the cgroup was charged ${charged}`);
  };

  it('derives its limits from the memory limit and says so at start-up', () => {
    const sizing = runtime.logs.find((line) => typeof line.msg === 'string' && line.msg.startsWith('sized for'));
    assert.ok(sizing, 'a sizing line is logged');
    assert.equal(sizing.memoryLimited, true);
    assert.equal(sizing.memoryBytes, MEMORY);
    assert.equal(sizing.maxBodyBytes, LIMITS.maxBodyBytes);
    assert.equal(sizing.maxGrpcMessageBytes, LIMITS.maxGrpcMessageBytes);
    assert.equal(sizing.maxResponseBytes, LIMITS.maxResponseBytes);
    assert.ok(LIMITS.maxBodyBytes < 64 * MiB, 'below the fixed default of a pod without a limit');
  });

  it('accepts a JSON body of numbers at the limit, in each form, within memory', async (t) => {
    const v2 = numbersAtLimit(LIMITS.maxBodyBytes, (numbers, count) => `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,${count}],"data":[${numbers}]}]}`);
    assert.ok(Buffer.byteLength(v2) > LIMITS.maxBodyBytes - 1024);
    await withinMemory(t, 'v2 JSON', async () => assert.equal((await post(runtime, '/v2/models/mean/infer', v2)).status, 200));
    const rows = numbersAtLimit(LIMITS.maxBodyBytes, (items) => `{"inputs":[${items}]}`, (i) => `[0.${i % 10}]`);
    await withinMemory(t, 'TF Serving rows of one number', async () => assert.equal((await post(runtime, '/v1/models/mean:predict', rows)).status, 200));
  });

  it('weighs JSON that JSON.parse reads four times: accepts it at a quarter of the limit, within memory, and refuses more with 413', async (t) => {
    const quarter = Math.floor(LIMITS.maxBodyBytes / PARSED_JSON_WEIGHT) - 64;
    // A string among the numbers leaves the whole array to JSON.parse, as does a ragged row.
    const strings = jsonOfSize(quarter, (items, count) => `{"inputs":[{"name":"x","datatype":"FP32","shape":[1,${count}],"data":[${items}]}]}`, (i) => (i % 10 === 9 ? '"NaN"' : `0.${i % 10}25`));
    await withinMemory(t, 'v2 JSON with "NaN" strings', async () => assert.equal((await post(runtime, '/v2/models/mean/infer', strings)).status, 200));
    const ragged = jsonOfSize(quarter, (items) => `{"inputs":[${items}]}`, (i) => (i % 100 === 99 ? '[0,1]' : `[0.${i % 10}]`));
    await withinMemory(t, 'TF Serving ragged rows', async () => assert.match((await post(runtime, '/v1/models/mean:predict', ragged)).text, /ragged nesting/));
    const answer = await post(runtime, '/v1/models/mean:predict', jsonOfSize(quarter + 4096, (items) => `{"instances":[${items}]}`, (i) => `{"x":[0.${i % 10}]}`));
    assert.equal(answer.status, 413);
    assert.match(answer.text, /take 4 times the memory of other bytes to read; counted so, the body is \d+ bytes, over the limit of \d+ bytes \(--max-body-bytes/);
  });

  it('refuses the issue\'s request (TF Serving instances for a [-1, 1] model) at the body limit before encoding its answer, within memory', async (t) => {
    const instances = numbersAtLimit(LIMITS.maxBodyBytes, (numbers) => `{"instances":[${numbers}]}`);
    await withinMemory(t, 'TF Serving instances', async () => {
      const answer = await post(runtime, '/v1/models/lin:predict', instances);
      assert.equal(answer.status, 400);
      assert.match(answer.text, /over the limit of \d+ \(--max-response-bytes\)/);
    });
  });

  it('answers the largest output it allows as JSON, within memory', async (t) => {
    const count = LIMITS.maxResponseBytes / 4;
    const { body, headers } = binaryBody(randomFloats(count, 3), [count, 1], true);
    await withinMemory(t, 'a JSON answer at the output limit', async () => {
      const answer = await post(runtime, '/v2/models/lin/infer', body, headers);
      assert.equal(answer.status, 200);
      assert.equal((JSON.parse(answer.text) as { outputs: Array<{ data: number[] }> }).outputs[0].data.length, count);
    });
  });

  it('accepts a binary body of exactly the limit and a gRPC message at its own limit, within memory', async (t) => {
    const count = Math.floor((LIMITS.maxBodyBytes - 1024) / 4);
    const { body, headers } = binaryBody(randomFloats(count, 5), [1, count], false, LIMITS.maxBodyBytes);
    assert.equal(body.byteLength, LIMITS.maxBodyBytes);
    await withinMemory(t, 'v2 binary', async () => assert.equal((await post(runtime, '/v2/models/mean/infer', body, headers)).status, 200));
    const typed = typedContentsRequest(LIMITS.maxGrpcMessageBytes - 1024);
    await withinMemory(t, 'gRPC typed contents', async () => assert.equal(await grpcInfer(runtime.grpcPort, typed), grpc.status.OK));
  });

  it('refuses a byte more with 413, and a larger gRPC message with RESOURCE_EXHAUSTED', async () => {
    const over = jsonOfSize(LIMITS.maxBodyBytes + 1, (numbers) => `{"instances":[${numbers}]}`);
    const answer = await post(runtime, '/v1/models/lin:predict', over);
    assert.equal(answer.status, 413);
    assert.match(answer.text, new RegExp(`limit of ${LIMITS.maxBodyBytes} bytes \\(--max-body-bytes\\)`));
    assert.equal(await grpcInfer(runtime.grpcPort, typedContentsRequest(LIMITS.maxGrpcMessageBytes + 4096)), grpc.status.RESOURCE_EXHAUSTED);
  });
});

describe('the same request with the fixed limits of a pod without a memory limit', () => {
  // Only a real cgroup can show this: the kernel ends the process, as it did the example pod.
  const cgroup = memoryCgroup(MEMORY);
  after(() => cgroup?.remove());

  it('gets the runtime OOM-killed: why the limits follow the memory', { skip: cgroup ? false : 'no memory cgroup can be made on this machine' }, async () => {
    const fixed = String(64 * MiB);
    const runtime = await startRuntime([...MODEL_ARGS, '--max-body-bytes', fixed, '--max-response-bytes', fixed], { cgroups: [cgroup!.procs] });
    const body = jsonOfSize(40 * 1000 * 1000, (numbers) => `{"instances":[${numbers}]}`);
    await fetch(`${runtime.url}/v1/models/lin:predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).catch(() => undefined);
    await runtime.exited;
    assert.equal(runtime.process.signalCode, 'SIGKILL');
    assert.ok(cgroup!.oomKills()! >= 1, 'the kernel\'s OOM killer ended it');
  });
});
