/**
 * Drift end to end: `modelship profile` on reference JSON lines, the runtime loading that profile beside
 * model.onnx and counting every served row into its bins, bad data and bad profiles refused with their reason, and
 * the baseline taken from the first rows served.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { binOf, checkDriftProfile, DRIFT_BINS, METRIC, type DriftProfile } from '@modelship/contract';
import * as ort from '../../runtime/src/model/onnxruntime';
import { expectExit, oneLineReason, runCli } from '../helpers/cli-process';
import { MODELS } from '../helpers/paths';
import { histogramOf, postJson, startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

const WIDTH = 16;

/** Deterministic rows of 16 values, float32-exact so the test and the server see the same numbers. */
function rowsOf(count: number, seed: number, shift = 0): number[][] {
  let state = seed;
  const next = () => {
    state = (state * 16807) % 2147483647;
    return Math.fround((state / 2147483647) * 2 - 1 + shift);
  };
  return Array.from({ length: count }, () => Array.from({ length: WIDTH }, next));
}

/** Requests of 5 rows each: most as v2 `inputs` lines, the last as a TF Serving `instances` line. */
function referenceRequests(): number[][][] {
  return Array.from({ length: 8 }, (_, i) => rowsOf(5, 100 + i));
}

function jsonLines(requests: readonly number[][][]): string {
  return requests.map((rows, i) => JSON.stringify(i === requests.length - 1 ? rows
    : [{ name: 'x', datatype: 'FP32', shape: [rows.length, WIDTH], data: rows.flat() }])).join('\n') + '\n';
}

/** The model's outputs for some rows, computed here in-process. */
async function outputsOf(session: ort.InferenceSession, rows: readonly number[][]): Promise<number[][]> {
  const result = await session.run({ x: new ort.Tensor('float32', Float32Array.from(rows.flat()), [rows.length, WIDTH]) });
  const y = result.y;
  const width = y.dims[1];
  return Array.from({ length: rows.length }, (_, r) => [...(y.data as Float32Array).slice(r * width, (r + 1) * width)]);
}

/** Served counts per tensor/feature/bin, from /metrics. */
async function scrapeDrift(runtime: RuntimeProcess, metric: string, model: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${runtime.url}/metrics`)).text();
  const found = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${metric}{`)) continue;
    const labels = Object.fromEntries([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (labels.model !== model) continue;
    found.set(`${labels.tensor}/${labels.feature}/${labels.bin}`, Number(line.slice(line.lastIndexOf(' ') + 1)));
  }
  return found;
}

/** The counts a profile's bins get from rows of x and y, counted here with the contract's binOf. */
function expectedCounts(profile: DriftProfile, x: readonly number[][], y: readonly number[][]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const tensor of profile.tensors) {
    const rows = tensor.name === 'x' ? x : y;
    for (const feature of tensor.features) {
      for (let bin = 0; bin < DRIFT_BINS; bin++) counts.set(`${tensor.name}/${feature.index}/${bin}`, 0);
      for (const row of rows) {
        const key = `${tensor.name}/${feature.index}/${binOf(feature.edges, row[feature.index])}`;
        counts.set(key, counts.get(key)! + 1);
      }
    }
  }
  return counts;
}

async function infer(runtime: RuntimeProcess, model: string, rows: readonly number[][]): Promise<void> {
  const answer = await postJson(`${runtime.url}/v2/models/${model}/infer`, {
    inputs: [{ name: 'x', datatype: 'FP32', shape: [rows.length, WIDTH], data: rows.flat() }],
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
}

/** identity_all's inputs, rank 1 (["n"]) of every datatype: 20 rows, values 0..19 shuffled. */
const RANK1_VALUES = [7, 3, 19, 0, 12, 5, 16, 1, 9, 14, 2, 18, 6, 11, 4, 17, 8, 13, 10, 15];
const RANK1_INPUTS = [
  ['bool', 'BOOL'], ['uint8', 'UINT8'], ['uint16', 'UINT16'], ['uint32', 'UINT32'], ['uint64', 'UINT64'], ['int8', 'INT8'],
  ['int16', 'INT16'], ['int32', 'INT32'], ['int64', 'INT64'], ['fp16', 'FP16'], ['fp32', 'FP32'], ['fp64', 'FP64'], ['bytes', 'BYTES'],
].map(([suffix, datatype]) => ({
  name: `in_${suffix}`, datatype, shape: [RANK1_VALUES.length],
  data: datatype === 'BOOL' ? RANK1_VALUES.map((v) => v % 2 === 1) : datatype === 'BYTES' ? RANK1_VALUES.map(String) : RANK1_VALUES,
}));

describe('drift', () => {
  const dir = mkdtempSync(join(tmpdir(), 'modelship-drift-'));
  const repository = join(dir, 'models');
  const requests = referenceRequests();
  const reference = requests.flat();
  let session: ort.InferenceSession;
  let profile: DriftProfile;
  let runtime: RuntimeProcess | undefined;

  const version = (model: string) => {
    const path = join(repository, model, '1');
    mkdirSync(path, { recursive: true });
    copyFileSync(MODELS.mlp, join(path, 'model.onnx'));
    return path;
  };

  before(async () => {
    session = await ort.InferenceSession.create(MODELS.mlp);
    writeFileSync(join(dir, 'reference.jsonl'), jsonLines(requests));
    const result = await runCli(['profile', '--model', MODELS.mlp, '--data', join(dir, 'reference.jsonl'), '--out', join(dir, 'profile.json')]);
    expectExit(result, 0);
    assert.match(result.stdout, /^profiled 40 row\(s\): 2 tensor\(s\), 20 feature\(s\) \(input 'x' 16, output 'y' 4\)/);
    profile = checkDriftProfile(JSON.parse(readFileSync(join(dir, 'profile.json'), 'utf8')), 'profile.json');

    writeFileSync(join(version('profiled'), 'profile.json'), JSON.stringify(profile));
    version('baseline');
    writeFileSync(join(version('bad_format'), 'profile.json'), JSON.stringify({ ...profile, format: 'v0' }));
    writeFileSync(join(version('bad_tensor'), 'profile.json'), JSON.stringify({ ...profile, tensors: [{ ...profile.tensors[0], name: 'z' }] }));
    writeFileSync(join(dir, 'rank1.jsonl'), `${JSON.stringify(RANK1_INPUTS)}\n`);
    expectExit(await runCli(['profile', '--model', MODELS.identityAll, '--data', join(dir, 'rank1.jsonl'), '--out', join(dir, 'rank1.json')]), 0);
    const rank1 = join(repository, 'rank1', '1');
    mkdirSync(rank1, { recursive: true });
    copyFileSync(MODELS.identityAll, join(rank1, 'model.onnx'));
    copyFileSync(join(dir, 'rank1.json'), join(rank1, 'profile.json'));
    runtime = await startRuntime(['--model-repository', repository, '--drift-baseline-rows', '20', '--max-queue-delay-microseconds', '20000']);
  });

  after(async () => {
    await runtime?.stop();
    await session?.release();
    rmSync(dir, { recursive: true, force: true });
  });

  it('profile writes the deciles of every input and output feature and the share of the reference rows in each bin', async () => {
    assert.equal(profile.rows, reference.length);
    const y = (await Promise.all(requests.map((rows) => outputsOf(session, rows)))).flat();
    for (const tensor of profile.tensors) {
      const rows = tensor.name === 'x' ? reference : y;
      assert.equal(tensor.features.length, rows[0].length);
      for (const feature of tensor.features) {
        const sorted = rows.map((row) => row[feature.index]).sort((a, b) => a - b);
        const edges = Array.from({ length: DRIFT_BINS - 1 }, (_, k) => sorted[Math.floor(((k + 1) * sorted.length) / DRIFT_BINS)]);
        assert.deepEqual(feature.edges, edges, `${tensor.name} feature ${feature.index}`);
      }
    }
    const counts = expectedCounts(profile, reference, y);
    for (const tensor of profile.tensors) {
      for (const feature of tensor.features) {
        assert.deepEqual(feature.ratios, feature.ratios.map((_, bin) => counts.get(`${tensor.name}/${feature.index}/${bin}`)! / reference.length));
      }
    }
  });

  it('the runtime exports the loaded profile\'s shares and counts served rows as an independent count does', async () => {
    const ratios = await scrapeDrift(runtime!, METRIC.driftReferenceRatio, 'profiled');
    assert.equal(ratios.size, 20 * DRIFT_BINS, 'features × 10 series');
    for (const tensor of profile.tensors) {
      for (const feature of tensor.features) {
        feature.ratios.forEach((ratio, bin) => assert.equal(ratios.get(`${tensor.name}/${feature.index}/${bin}`), ratio));
      }
    }
    // Reference rows first: the profile scores its own rows with its own shares.
    for (const rows of requests) await infer(runtime!, 'profiled', rows);
    const served = await scrapeDrift(runtime!, METRIC.driftBins, 'profiled');
    const y = (await Promise.all(requests.map((rows) => outputsOf(session, rows)))).flat();
    assert.deepEqual(served, expectedCounts(profile, reference, y));
    for (const [key, count] of served) assert.equal(count / reference.length, ratios.get(key), key);

    // Then shifted rows, all at once so that they share runs (the queue waits 20 ms to fill a batch): each row
    // still counts once.
    const shifted = Array.from({ length: 6 }, (_, i) => rowsOf(3, 900 + i, 0.5));
    await Promise.all(shifted.map((rows) => infer(runtime!, 'profiled', rows)));
    const batches = histogramOf(await (await fetch(`${runtime!.url}/metrics`)).text(), METRIC.batchSize, 'profiled');
    assert.equal(batches.sum, reference.length + 18);
    assert.ok(batches.count < requests.length + shifted.length, `some requests shared a run (${batches.count} runs)`);
    const after = await scrapeDrift(runtime!, METRIC.driftBins, 'profiled');
    const all = [...requests, ...shifted];
    const allY = (await Promise.all(all.map((rows) => outputsOf(session, rows)))).flat();
    assert.deepEqual(after, expectedCounts(profile, all.flat(), allY));
  });

  it('rank-1 tensors are one feature each, BigInt data included; FP16 and BYTES are not profiled', async () => {
    const rank1 = JSON.parse(readFileSync(join(dir, 'rank1.json'), 'utf8')) as DriftProfile;
    const names = rank1.tensors.map((t) => t.name).sort();
    const numeric = ['bool', 'fp32', 'fp64', 'int16', 'int32', 'int64', 'int8', 'uint16', 'uint32', 'uint64', 'uint8'];
    assert.deepEqual(names, [...numeric.map((t) => `in_${t}`), ...numeric.map((t) => `out_${t}`)].sort());
    const int64 = rank1.tensors.find((t) => t.name === 'out_int64')!;
    assert.deepEqual(int64.features.map((f) => f.index), [0]);
    assert.deepEqual(int64.features[0].edges, [2, 4, 6, 8, 10, 12, 14, 16, 18]);
    assert.deepEqual(int64.features[0].ratios, new Array(DRIFT_BINS).fill(0.1));
    const answer = await postJson(`${runtime!.url}/v2/models/rank1/infer`, { inputs: RANK1_INPUTS });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    const served = await scrapeDrift(runtime!, METRIC.driftBins, 'rank1');
    for (const tensor of rank1.tensors) {
      tensor.features[0].ratios.forEach((ratio, bin) => assert.equal(served.get(`${tensor.name}/0/${bin}`), ratio * RANK1_VALUES.length, `${tensor.name} bin ${bin}`));
    }
  });

  it('a bad profile fails its version\'s load with the reason, and the other models serve', async () => {
    const failed = (model: string) => runtime!.logs.find((line) => line.model === model && /failed to load/.test(line.msg))?.msg;
    assert.match(failed('bad_format') ?? '', /bad_format\/1\/profile\.json: 'format' is "v0", expected 'modelship\.drift-profile\/v1'/);
    assert.match(failed('bad_tensor') ?? '', /bad_tensor\/1\/profile\.json: the model has no input 'z'/);
    const answer = await postJson(`${runtime!.url}/v2/models/bad_format/infer`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, WIDTH], data: reference[0] }] });
    assert.equal(answer.status, 503);
    assert.match(JSON.stringify(answer.body), /profile\.json/);
  });

  it('without a profile, --drift-baseline-rows takes one from the first rows served, logs it once, then counts', async () => {
    // 4 requests of 5 rows make the 20 baseline rows; the 5th request is the first one counted.
    for (const rows of requests.slice(0, 4)) await infer(runtime!, 'baseline', rows);
    const taken = runtime!.logs.filter((line) => line.model === 'baseline' && /drift profile taken from the first 20 rows served/.test(line.msg));
    assert.equal(taken.length, 1);
    // The baseline is the profile `modelship profile` makes of the same rows.
    writeFileSync(join(dir, 'first20.jsonl'), requests.slice(0, 4).map((rows) => JSON.stringify(rows)).join('\n'));
    expectExit(await runCli(['profile', '--model', MODELS.mlp, '--data', join(dir, 'first20.jsonl'), '--out', join(dir, 'first20.json')]), 0);
    const first20 = JSON.parse(readFileSync(join(dir, 'first20.json'), 'utf8')) as DriftProfile;
    const ratios = await scrapeDrift(runtime!, METRIC.driftReferenceRatio, 'baseline');
    for (const tensor of first20.tensors) {
      for (const feature of tensor.features) feature.ratios.forEach((ratio, bin) => assert.equal(ratios.get(`${tensor.name}/${feature.index}/${bin}`), ratio));
    }
    const before = await scrapeDrift(runtime!, METRIC.driftBins, 'baseline');
    assert.ok([...before.values()].every((count) => count === 0), 'the baseline rows are not counted against themselves');
    await infer(runtime!, 'baseline', requests[4]);
    await infer(runtime!, 'baseline', requests[5]);
    const served = await scrapeDrift(runtime!, METRIC.driftBins, 'baseline');
    const y = (await Promise.all(requests.slice(4, 6).map((rows) => outputsOf(session, rows)))).flat();
    assert.deepEqual(served, expectedCounts(first20, requests.slice(4, 6).flat(), y));
    assert.equal(runtime!.logs.filter((line) => line.model === 'baseline' && /drift profile taken/.test(line.msg)).length, 1);
  });

  it('profile refuses bad data with one line naming the line and the reason', async () => {
    const run = async (text: string | undefined, args: string[] = []) => {
      const data = join(dir, 'bad.jsonl');
      if (text !== undefined) writeFileSync(data, text);
      return runCli(['profile', '--model', MODELS.mlp, '--data', data, '--out', join(dir, 'bad.json'), ...args]);
    };
    const good = JSON.stringify(requests[0]);
    const cases: [string, RegExp][] = [
      [`${good}\n{not json\n`, /bad\.jsonl line 2: not JSON/],
      [`${good}\n\n{"inputs": []}\n`, /line 3: expected a v2 'inputs' array or a TF Serving 'instances' array/],
      [JSON.stringify([{ name: 'x', datatype: 'FP32', shape: [1, 15], data: new Array(15).fill(0) }]), /line 1: input 'x': expected shape \[batch, 16\], received \[1, 15\]/],
      [JSON.stringify([{ name: 'x', datatype: 'INT32', shape: [1, 16], data: new Array(16).fill(0) }]), /line 1: input 'x': expected datatype FP32, received INT32/],
      [JSON.stringify([{ name: 'w', datatype: 'FP32', shape: [1, 16], data: new Array(16).fill(0) }]), /line 1: .*'w'/],
      [JSON.stringify([[1, 2, 3]]), /line 1: input 'x'/],
      ['\n\n', /--data '.*bad\.jsonl' holds no requests \(one per line/],
    ];
    for (const [text, pattern] of cases) {
      const result = await run(text);
      expectExit(result, 1);
      assert.match(oneLineReason(result), pattern);
    }
    const missing = await runCli(['profile', '--model', MODELS.mlp, '--out', join(dir, 'bad.json')]);
    expectExit(missing, 2);
    assert.match(oneLineReason(missing), /profile needs --data/);
    const help = await runCli(['--help']);
    assert.match(help.stdout, /modelship profile --model PATH\.onnx --data FILE --out profile\.json/);
  });
});
