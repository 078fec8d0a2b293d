/**
 * `:explain` on the running server, through both doors: KernelSHAP exact against a linear model's closed form,
 * efficiency and seeded reproducibility on the tabular MLP, occlusion maps on the OCR detection model checked by
 * inference itself; explanations kept out of inference's queue time, metrics and drift counts; bounded by their
 * own queue, sample limit and deadline; and every bad parameter refused with a 400 that names it.
 */
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, before, describe, it } from 'node:test';
import { DRIFT_PROFILE_FORMAT, METRIC } from '@modelship/contract';
import { writeLinearModel } from '../helpers/linear-model';
import { MODELS } from '../helpers/paths';
import { randomFloats } from '../helpers/reference';
import { histogramOf, postJson, startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

const W = [0.5, -1.25, 2, 0.75, -0.5];
const B = 0.25;
const MEDIANS = [1, -2, 0.5, 3, -1];

/** A white 3×H×W page with a row of dark strokes, normalised as PP-OCR expects. */
function page(H: number, Wd: number): number[][][] {
  const mean = [0.485, 0.456, 0.406];
  const std = [0.229, 0.224, 0.225];
  return mean.map((m, c) => Array.from({ length: H }, (_, i) => Array.from({ length: Wd }, (_, j) => {
    const ink = i >= H * 0.3 && i < H * 0.45 && j >= Wd * 0.125 && j < Wd * 0.875 && j % 6 < 3;
    return ((ink ? 0 : 1) - m) / std[c];
  })));
}

function explainAt(runtime: RuntimeProcess, model: string, body: unknown) {
  return postJson(`${runtime.url}/v2/models/${model}/explain`, body);
}

describe(':explain', () => {
  let runtime: RuntimeProcess;
  let dir: string;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'modelship-explain-'));
    // The linear model in a repository, with a drift profile whose medians are MEDIANS.
    mkdirSync(join(dir, 'repo', 'lin', '1'), { recursive: true });
    writeLinearModel(join(dir, 'repo', 'lin', '1', 'model.onnx'), W, B);
    writeFileSync(join(dir, 'repo', 'lin', '1', 'profile.json'), JSON.stringify({
      format: DRIFT_PROFILE_FORMAT, rows: 100,
      tensors: [{
        name: 'x', kind: 'input',
        features: MEDIANS.map((median, index) => ({ index, edges: [-4, -3, -2, -1, 0, 1, 2, 3, 4].map((k) => median + k / 8), ratios: Array(10).fill(0.1) })),
      }],
    }));
    mkdirSync(join(dir, 'repo', 'my_model', '1'), { recursive: true });
    copyFileSync(MODELS.linearRegression, join(dir, 'repo', 'my_model', '1', 'model.onnx'));
    runtime = await startRuntime(['--model-repository', join(dir, 'repo'), '--session-workers', '1']);
  });
  after(async () => {
    assert.equal(await runtime.stop(), 0);
    rmSync(dir, { recursive: true, force: true });
  });

  it('gives w_i (x_i − baseline_i) for a linear model, exactly, with the baseline given as data or as zeros', async () => {
    const x = [1.5, 0.25, -2, 4, 0.5];
    const baseline = [0.5, -1, 1, 2, 0];
    for (const [given, base] of [[baseline, baseline], ['zeros', [0, 0, 0, 0, 0]]] as const) {
      const { status, body } = await explainAt(runtime, 'lin', {
        inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 5], data: x }], parameters: { explainer: 'kernel_shap', baseline: given },
      });
      assert.equal(status, 200, JSON.stringify(body));
      assert.equal(body.exact, true, 'five features: every coalition is evaluated');
      assert.equal(body.model_runs, 2 ** 5);
      assert.deepEqual(body.attributions.map((a: { name: string; shape: number[]; datatype: string }) => [a.name, a.shape, a.datatype]), [['x', [1, 5], 'FP64']]);
      body.attributions[0].data.forEach((phi: number, i: number) => assert.ok(Math.abs(phi - W[i] * (x[i] - base[i])) < 1e-4, `φ${i} = ${phi}, expected ${W[i] * (x[i] - base[i])}`));
      const f = (v: readonly number[]) => v.reduce((sum, vi, i) => sum + vi * W[i], B);
      assert.ok(Math.abs(body.prediction - f(x)) < 1e-4);
      assert.ok(Math.abs(body.base_value - f(base)) < 1e-4);
    }
  });

  it('takes the drift profile\'s medians as the baseline when the version has a profile', async () => {
    const x = [0, 0, 0, 0, 0];
    const { status, body } = await explainAt(runtime, 'lin', { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 5], data: x }] });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.explainer, 'kernel_shap', 'the default for a tabular input');
    body.attributions[0].data.forEach((phi: number, i: number) => assert.ok(Math.abs(phi - W[i] * (0 - MEDIANS[i])) < 1e-4, `φ${i} = ${phi}`));
  });

  it('explains the seed\'s one-feature regression from its TF Serving request: all of f(x) − f(0) is the feature\'s', async () => {
    const { status, body } = await postJson(`${runtime.url}/v1/models/my_model:explain`, { instances: [3.0] });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.exact, true);
    assert.equal(body.model_runs, 2, 'the input and the baseline, nothing else to perturb');
    assert.deepEqual(body.attributions.map((a: { shape: number[] }) => a.shape), [[1, 1]]);
    assert.ok(Math.abs(body.attributions[0].data[0] - (body.prediction - body.base_value)) < 1e-9);
    const { body: predicted } = await postJson(`${runtime.url}/v1/models/my_model:predict`, { instances: [3.0, 0] });
    assert.ok(Math.abs(predicted.predictions[0][0] - body.prediction) < 1e-6);
    assert.ok(Math.abs(predicted.predictions[1][0] - body.base_value) < 1e-6, 'no profile: the baseline is zeros');
  });

  it('refuses bad parameters with a 400 that names the parameter and the fix', async () => {
    const inputs = [{ name: 'x', datatype: 'FP32', shape: [1, 5], data: [1, 2, 3, 4, 5] }];
    const cases: Array<[unknown, RegExp]> = [
      [{ explainer: 'lime' }, /parameters\.explainer must be one of kernel_shap, occlusion, received "lime"/],
      [{ nsample: 10 }, /parameters\.nsample is not an explain parameter; use explainer, output, output_index, nsamples/],
      [{ nsamples: 1 }, /parameters\.nsamples must be an integer from 2 to 4096, received 1/],
      [{ nsamples: 5000 }, /nsamples is 5000, over this server's maximum of 4096 \(--max-explain-samples\)/],
      [{ output: 'z' }, /parameters\.output 'z' is not an output of model 'lin' version 1; its outputs are 'y'/],
      [{ output_index: 1 }, /parameters\.output_index is 1, but output 'y' has 1 element\(s\) per row \(a row of shape \[1\]\); choose 0 to 0/],
      [{ output_index: -1 }, /parameters\.output_index must be an integer from 0/],
      [{ baseline: [1, 2] }, /parameters\.baseline for input 'x' has 2 elements; the input has 5 \(shape \[1,5\]\)/],
      [{ baseline: { y: [1, 2, 3, 4, 5] } }, /parameters\.baseline has no data for input 'x'/],
      [{ baseline: 'median' }, /parameters\.baseline must be "profile", "zeros", a number/],
      [{ seed: 1.5 }, /parameters\.seed must be an integer from 0 to 4294967295/],
      [{ explainer: 'occlusion' }, /occlusion needs an image-like input \(one row of shape \[C, H, W\]\); model 'lin' version 1 has 'x' \[1,5\]: use "explainer": "kernel_shap"/],
      [[1], /'parameters' must be a JSON object/],
    ];
    for (const [parameters, message] of cases) {
      const { status, body } = await explainAt(runtime, 'lin', { inputs, parameters });
      assert.equal(status, 400, `${JSON.stringify(parameters)}: ${JSON.stringify(body)}`);
      assert.match(body.error, message);
    }
    const twoRows = await explainAt(runtime, 'lin', { inputs: [{ name: 'x', datatype: 'FP32', shape: [2, 5], data: Array(10).fill(0) }] });
    assert.equal(twoRows.status, 400);
    assert.match(twoRows.body.error, /an explanation is of one row: input 'x' has 2 rows \(shape \[2,5\]\); send one request per row/);
    // The request itself is checked as inference checks it.
    const wrong = await explainAt(runtime, 'lin', { inputs: [{ name: 'x', datatype: 'FP64', shape: [1, 5], data: [1, 2, 3, 4, 5] }] });
    assert.equal(wrong.status, 400);
    assert.match(wrong.body.error, /input 'x': expected datatype FP32, received FP64/);
    assert.equal((await explainAt(runtime, 'nope', { inputs })).status, 404);
  });

  it('counts explanations in their own metrics, apart from inference', async () => {
    const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
    const count = (code: string) => Number(new RegExp(`${METRIC.explainRequests}\\{model="lin",version="1",explainer="kernel_shap",code="${code}"\\} (\\d+)`).exec(metrics)?.[1] ?? 0);
    assert.ok(count('200') >= 3, metrics.split('\n').filter((l) => l.includes('explain')).join('\n'));
    assert.ok(count('400') >= 1);
    assert.match(metrics, new RegExp(`${METRIC.explainDuration}_count\\{model="lin",version="1",explainer="kernel_shap"\\} \\d+`));
    // Not one inference request was sent: the explanations' many runs are not inference requests or batches.
    assert.equal(histogramOf(metrics, METRIC.batchSize, 'lin').count, 0);
    assert.doesNotMatch(metrics, new RegExp(`${METRIC.requests}\\{model="lin"`));
  });
});

describe(':explain on the tabular MLP, by the v1 door too', () => {
  let runtime: RuntimeProcess;
  before(async () => {
    // A drift baseline that the explanations' thousands of perturbed rows would complete, were they counted.
    runtime = await startRuntime(['--model', `mlp=${MODELS.mlp}`, '--drift-baseline-rows', '500']);
  });
  after(async () => { assert.equal(await runtime.stop(), 0); });

  const x = Array.from(randomFloats(16, 7));

  it('satisfies efficiency, and the same seed gives the same attributions', async () => {
    const explain = async (seed: number) => {
      const { status, body } = await postJson(`${runtime.url}/v1/models/mlp:explain`, { instances: [x], parameters: { seed, output_index: 2 } });
      assert.equal(status, 200, JSON.stringify(body));
      return body;
    };
    const [a, b, c] = [await explain(1), await explain(1), await explain(2)];
    assert.equal(a.explainer, 'kernel_shap');
    assert.equal(a.output_index, 2);
    assert.equal(a.exact, false, '2^16 coalitions are more than the default budget');
    assert.equal(a.nsamples, 2 * 16 + 2048, 'the default budget, 2M + 2048');
    assert.equal(a.model_runs, a.nsamples + 2);
    const total = a.attributions[0].data.reduce((s: number, v: number) => s + v, 0);
    assert.ok(Math.abs(total - (a.prediction - a.base_value)) < 1e-6, `Σφ ${total} vs f(x) − f(baseline) ${a.prediction - a.base_value}`);
    assert.deepEqual(b.attributions, a.attributions, 'same seed, same attributions');
    assert.notDeepEqual(c.attributions, a.attributions, 'another seed samples other coalitions');
    // f(x) is what inference answers for the same row.
    const inferred = await postJson(`${runtime.url}/v1/models/mlp:predict`, { instances: [x] });
    assert.ok(Math.abs(inferred.body.predictions[0][2] - a.prediction) < 1e-6);
  });

  it('does not count perturbed rows as served traffic: the drift baseline is taken from served rows only', async () => {
    const { status, body } = await postJson(`${runtime.url}/v1/models/mlp:explain`, { instances: [x], parameters: { nsamples: 1000 } });
    assert.equal(status, 200, JSON.stringify(body));
    const taken = () => runtime.logs.filter((l) => /drift profile taken from the first 500 rows served/.test(l.msg));
    assert.equal(taken().length, 0, 'thousands of perturbed rows ran, but not one of the 500 baseline rows was served');
    const served = await postJson(`${runtime.url}/v1/models/mlp:predict`, { instances: Array.from({ length: 500 }, (_, i) => Array.from(randomFloats(16, 100 + i))) });
    assert.equal(served.status, 200);
    assert.equal(taken().length, 1, 'the 500 served rows complete the baseline');
  });
});

describe(':explain by occlusion on the OCR detection model, beside inference', () => {
  let runtime: RuntimeProcess;
  before(async () => {
    runtime = await startRuntime([
      '--model', `det=${MODELS.ocrDetection}`, '--session-workers', '1', '--max-explain-queue-size', '1',
      '--max-explain-samples', '20000', '--explain-timeout', '5',
    ]);
  });
  after(async () => { assert.equal(await runtime.stop(), 0); });

  const H = 64;
  const image = page(H, H);
  // An output pixel on the strokes: what the detector says about the text there.
  const outputIndex = 24 * H + 10;
  const infer = async (pixels: number[][][]) => {
    const { status, body } = await postJson(`${runtime.url}/v1/models/det:predict`, { instances: [pixels] });
    assert.equal(status, 200, JSON.stringify(body));
    return (body.predictions[0] as number[][][]).flat(2)[outputIndex];
  };
  const zeroTile = (ti: number, tj: number, size: number) => image.map((channel) => channel.map((row, i) => row.map((v, j) =>
    (Math.floor(i / size) === ti && Math.floor(j / size) === tj ? 0 : v))));

  it('returns an input-shaped map; zeroing the tile of largest attribution moves the output more than the smallest', async () => {
    const { status, body } = await postJson(`${runtime.url}/v1/models/det:explain`, { instances: [image], parameters: { output_index: outputIndex, patch: 16 } });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.explainer, 'occlusion', 'the default for an image input');
    assert.deepEqual(body.patch, [16, 16]);
    assert.deepEqual(body.stride, [16, 16]);
    assert.equal(body.model_runs, 16 + 2);
    const [map] = body.attributions;
    assert.deepEqual([map.name, map.shape, map.datatype, map.data.length], ['x', [1, 3, H, H], 'FP64', 3 * H * H]);
    const tiles = Array.from({ length: 16 }, (_, t) => ({ ti: Math.floor(t / 4), tj: t % 4, value: map.data[Math.floor(t / 4) * 16 * H + (t % 4) * 16] as number }));
    tiles.sort((a, b) => Math.abs(b.value) - Math.abs(a.value));
    const [largest, smallest] = [tiles[0], tiles.at(-1)!];
    const base = await infer(image);
    assert.ok(Math.abs(base - body.prediction) < 1e-5, `prediction ${body.prediction} vs inference ${base}`);
    const moved = (tile: { ti: number; tj: number }) => infer(zeroTile(tile.ti, tile.tj, 16)).then((y) => Math.abs(y - base));
    const [big, small] = [await moved(largest), await moved(smallest)];
    assert.ok(big > small, `zeroing the largest tile moves the output by ${big}, the smallest by ${small}`);
    assert.ok(Math.abs(big - Math.abs(largest.value)) < 1e-4, 'with non-overlapping patches a tile\'s attribution is f(x) minus f(tile occluded)');
  });

  it('runs behind inference: requests sent during a long explanation wait in the queue less than the 250 ms objective', async (t) => {
    const large = page(320, 320);
    const timed = async () => {
      const sent = performance.now();
      const { status } = await postJson(`${runtime.url}/v1/models/det:predict`, { instances: [large] });
      assert.equal(status, 200);
      return performance.now() - sent;
    };
    const alone: number[] = [];
    for (let i = 0; i < 5; i++) alone.push(await timed());
    const started = performance.now();
    // 40×40 positions of an 8-pixel patch on 320×320 with stride 8: 1602 images, seconds of compute.
    const explanation = postJson(`${runtime.url}/v1/models/det:explain`, { instances: [large], parameters: { patch: 8 } });
    // Time for its 6 MB body to arrive and be decoded, however busy the machine.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    // Only one explanation at a time here (--max-explain-queue-size 1): another is refused at once, with Retry-After.
    const refused = await postJson(`${runtime.url}/v1/models/det:explain`, { instances: [large] });
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.match(refused.body.error, /already running 1 explanation\(s\), its limit \(--max-explain-queue-size\); retry later/);
    assert.ok(refused.headers.get('retry-after'));
    const queueWaits = async () => {
      const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
      const bucket = (le: string) => Number(new RegExp(`${METRIC.queueDuration}_bucket\\{le="${le}",model="det",version="1"\\} (\\d+)`).exec(metrics)![1]);
      return { within250ms: bucket('0.25'), all: bucket('\\+Inf'), seconds: histogramOf(metrics, METRIC.queueDuration, 'det').sum };
    };
    const before = await queueWaits();
    const beside: number[] = [];
    for (let i = 0; i < 5; i++) beside.push(await timed());
    const waits = await queueWaits();
    // It cannot finish within --explain-timeout 5: its queued runs are withdrawn and it answers 503.
    const { status, body } = await explanation;
    const took = performance.now() - started;
    assert.equal(status, 503, JSON.stringify(body));
    assert.match(body.error, /did not finish within 5 s \(--explain-timeout\)/);
    const ms = (latencies: number[]) => latencies.map((l) => l.toFixed(0)).join(', ');
    t.diagnostic(`inference alone: ${ms(alone)} ms; beside the explanation: ${ms(beside)} ms, of which ${((waits.seconds - before.seconds) * 200).toFixed(1)} ms in the queue on average; the explanation answered after ${took.toFixed(0)} ms`);
    assert.ok(took < 8000, `answered ${took.toFixed(0)} ms after it was sent`);
    // Beside the explanation an inference waits in the queue for at most the one short run of it in progress, never
    // behind its hundreds of queued images: each of the five waited less than 250 ms, the default latency objective,
    // however busy the machine (the time it shares the CPU with the explanation is the benchmark's to state).
    assert.equal(waits.all - before.all, 5);
    assert.equal(waits.within250ms - before.within250ms, 5, `queue waits beside the explanation: ${waits.within250ms - before.within250ms} of 5 within 250 ms`);
    // And the model serves on: nothing of the withdrawn explanation is left ahead of inference.
    const sent = performance.now();
    await infer(image);
    assert.ok(performance.now() - sent < 1000);
    const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`${METRIC.explainRequests}\\{model="det",version="1",explainer="occlusion",code="503"\\} 1`));
    assert.match(metrics, new RegExp(`${METRIC.explainRequests}\\{model="det",version="1",explainer="none",code="429"\\} 1`));
  });
});

describe(':explain of integer, boolean and string inputs, and of a model without a batch dimension', () => {
  let runtime: RuntimeProcess;
  before(async () => { runtime = await startRuntime(['--model', `typed=${MODELS.typed}`, '--model', `fixed=${MODELS.staticBatch}`]); });
  after(async () => { assert.equal(await runtime.stop(), 0); });

  it('attributes an INT64 row sum to its ids, nothing to the BOOL mask, and keeps the string input as sent', async () => {
    const { status, body } = await explainAt(runtime, 'typed', {
      inputs: [
        { name: 'ids', datatype: 'INT64', shape: [1, 3], data: [5, -2, 7] },
        { name: 'mask', datatype: 'BOOL', shape: [1, 3], data: [true, false, true] },
        { name: 'text', datatype: 'BYTES', shape: [1], data: ['kept'] },
      ],
      parameters: { output: 'ids_sum', baseline: { ids: [1, 1, 1], mask: [0, 0, 0] } },
    });
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.exact, true, 'six features');
    assert.deepEqual(body.attributions.map((a: { name: string; shape: number[] }) => [a.name, a.shape]), [['ids', [1, 3]], ['mask', [1, 3]]]);
    assert.deepEqual(body.attributions[0].data.map((v: number) => Math.round(v * 1e6) / 1e6), [4, -3, 6]);
    assert.deepEqual(body.attributions[1].data.map((v: number) => Math.round(v * 1e6) / 1e6), [0, 0, 0]);
    assert.equal(body.prediction, 10);
    assert.equal(body.base_value, 3);
  });

  it('runs each perturbed input alone for a model with a fixed first dimension', async () => {
    const x = Array.from({ length: 12 }, (_, i) => (i % 2 === 0 ? i : -i) / 4);
    const { status, body } = await explainAt(runtime, 'fixed', {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [4, 3], data: x }], parameters: { output_index: 6, nsamples: 40 },
    });
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.attributions[0].shape, [4, 3], 'the whole request is the row');
    assert.equal(body.model_runs, 42);
    // y = relu(x): element 6 depends on x[6] alone, so it takes all of f(x) − f(0) and every other feature none.
    body.attributions[0].data.forEach((phi: number, i: number) => assert.ok(Math.abs(phi - (i === 6 ? 1.5 : 0)) < 1e-6, `φ${i} = ${phi}`));
    const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`${METRIC.explainRequests}\\{model="fixed",version="1",explainer="kernel_shap",code="200"\\} 1`));
  });
});

describe(':explain turned off', () => {
  let runtime: RuntimeProcess;
  before(async () => { runtime = await startRuntime(['--model', `mlp=${MODELS.mlp}`, '--max-explain-queue-size', '0']); });
  after(async () => { assert.equal(await runtime.stop(), 0); });

  it('answers 404 on both doors and says how to turn it on', async () => {
    for (const [url, body] of [
      [`${runtime.url}/v2/models/mlp/explain`, { inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: Array(16).fill(0) }] }],
      [`${runtime.url}/v1/models/mlp:explain`, { instances: [Array(16).fill(0)] }],
    ] as const) {
      const answer = await postJson(url, body);
      assert.equal(answer.status, 404);
      assert.match(answer.body.error, /explanations are turned off on this server \(--max-explain-queue-size 0\)/);
    }
  });
});
