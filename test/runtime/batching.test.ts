/**
 * Dynamic batching: concurrent requests merged into shared runs must each get exactly their own rows back, equal
 * to running them alone in-process; models that cannot batch run request by request; one bad request never fails
 * the requests it was merged with.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as ort from '../../runtime/src/model/onnxruntime';
import { METRIC } from '@modelship/contract';
import { MODELS } from '../helpers/paths';
import { randomFloats, referenceSession, runReference } from '../helpers/reference';
import { performance } from 'node:perf_hooks';
import { histogramOf, postJson, startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

describe('dynamic batching', () => {
  let runtime: RuntimeProcess;
  before(async () => {
    runtime = await startRuntime([
      '--model', `mlp=${MODELS.mlp}`, '--model', `first=${MODELS.firstRows}`, '--model', `gather=${MODELS.gatherRows}`,
      '--model', `det=${MODELS.ocrDetection}`, '--model', `vad=${MODELS.sileroVad}`,
      '--session-workers', '1', '--max-queue-size', '1000',
    ]);
  });
  after(async () => { assert.equal(await runtime.stop(), 0); });

  const infer = (model: string, inputs: unknown[]) => postJson(`${runtime.url}/v2/models/${model}/infer`, { inputs });

  it('gives each of 400 concurrent requests its own rows, equal to running it alone', async () => {
    const requests = Array.from({ length: 400 }, (_, i) => {
      const rows = 1 + (i % 3);
      return { rows, x: randomFloats(rows * 16, 1000 + i) };
    });
    const served = await Promise.all(requests.map(({ rows, x }) => infer('mlp', [{ name: 'x', datatype: 'FP32', shape: [rows, 16], data: Array.from(x) }])));
    for (const [i, { rows, x }] of requests.entries()) {
      assert.equal(served[i].status, 200, JSON.stringify(served[i].body));
      const expected = await runReference(MODELS.mlp, { x: new ort.Tensor('float32', x, [rows, 16]) });
      assert.deepEqual(served[i].body.outputs[0].shape, [rows, 4]);
      assert.deepEqual(served[i].body.outputs[0].data, Array.from(expected.y.data as Float32Array), `request ${i}`);
    }
    const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
    const batches = histogramOf(metrics, METRIC.batchSize, 'mlp');
    const rowsSent = requests.reduce((sum, r) => sum + r.rows, 0);
    assert.equal(batches.sum, rowsSent, 'every row ran exactly once');
    assert.ok(batches.count < requests.length, `requests were merged: ${batches.count} runs for ${requests.length} requests`);
    assert.ok(runtime.logs.some((l) => l.model === 'mlp' && l.batching === true));
  });

  it('runs a model whose outputs do not follow the batch one request at a time, and says so', async () => {
    const inputs = Array.from({ length: 40 }, (_, i) => ({ x: randomFloats(6, 50 + i), k: 1 + (i % 2) }));
    const served = await Promise.all(inputs.map(({ x, k }) => infer('first', [
      { name: 'x', datatype: 'FP32', shape: [2, 3], data: Array.from(x) },
      { name: 'k', datatype: 'INT64', shape: [2], data: [k, k] },
    ])));
    for (const [i, { x, k }] of inputs.entries()) {
      assert.equal(served[i].status, 200);
      assert.deepEqual(served[i].body.outputs[0].shape, [k, 3]);
      assert.deepEqual(served[i].body.outputs[0].data, Array.from(x.subarray(0, 3 * k)), `request ${i}`);
    }
    assert.ok(runtime.logs.some((l) => l.model === 'first' && /do not follow a merged batch/.test(l.msg)));
  });

  it('fails only the bad request of a merged batch', async () => {
    const requests = Array.from({ length: 60 }, (_, i) => ({ x: randomFloats(4, 300 + i), index: i === 17 ? 9 : i % 4 }));
    const served = await Promise.all(requests.map(({ x, index }) => infer('gather', [
      { name: 'x', datatype: 'FP32', shape: [1, 4], data: Array.from(x) },
      { name: 'i', datatype: 'INT64', shape: [1, 1], data: [index] },
    ])));
    for (const [i, { x, index }] of requests.entries()) {
      if (i === 17) {
        assert.equal(served[i].status, 500);
        assert.match(served[i].body.error, /model 'gather'.*failed to execute/);
      } else {
        assert.equal(served[i].status, 200, `request ${i}: ${JSON.stringify(served[i].body)}`);
        assert.deepEqual(served[i].body.outputs[0].data, [x[index]]);
      }
    }
  });

  it('merges only images of the same size', async () => {
    const sizes = [[32, 32], [64, 32], [32, 32], [32, 64], [64, 32], [32, 32]];
    const images = sizes.map(([h, w], i) => ({ dims: [1, 3, h, w], pixels: randomFloats(3 * h * w, 700 + i) }));
    const served = await Promise.all(images.map(({ dims, pixels }) => infer('det', [{ name: 'x', datatype: 'FP32', shape: dims, data: Array.from(pixels) }])));
    for (const [i, { dims, pixels }] of images.entries()) {
      const expected = await runReference(MODELS.ocrDetection, { x: new ort.Tensor('float32', pixels, dims) });
      assert.equal(served[i].status, 200, JSON.stringify(served[i].body));
      const output = served[i].body.outputs[0];
      assert.deepEqual(output.shape, [...expected['sigmoid_0.tmp_0'].dims]);
      const reference = Array.from(expected['sigmoid_0.tmp_0'].data as Float32Array);
      const worst = Math.max(...reference.map((v, j) => Math.abs(v - output.data[j])));
      assert.ok(worst <= 1e-6, `image ${i}: largest difference ${worst}`);
    }
  });

  it('does not batch a model with state tensors', async () => {
    assert.ok(runtime.logs.some((l) => l.model === 'vad' && l.batching === false));
    const state = Array.from({ length: 128 }, () => 0);
    const served = await Promise.all(Array.from({ length: 8 }, (_, i) => infer('vad', [
      { name: 'input', datatype: 'FP32', shape: [1, 256], data: Array.from(randomFloats(256, i)) },
      { name: 'sr', datatype: 'INT64', shape: [], data: [16000] },
      { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: state },
      { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: state },
    ])));
    for (const response of served) assert.equal(response.status, 200);
    const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
    const batches = histogramOf(metrics, METRIC.batchSize, 'vad');
    assert.equal(batches.sum, batches.count, 'every vad run holds one request');
  });
});

describe('batch sizes learned from compute time', () => {
  let runtime: RuntimeProcess;
  before(async () => {
    // A head request waits up to 20 ms for others, so runs hold what the sizer allows rather than what happened to
    // arrive while the last run computed: how fast requests arrive depends on the machine and what else it runs.
    runtime = await startRuntime([
      '--model', `det=${MODELS.ocrDetection}`, '--model', `mlp=${MODELS.mlp}`, '--max-queue-size', '1000',
      '--max-queue-delay-microseconds', '20000',
    ]);
  });
  after(async () => { assert.equal(await runtime.stop(), 0); });

  /** An OIP v2 binary request for one 1×3×320×320 image. */
  const imageRequest = (seed: number) => {
    const pixels = randomFloats(3 * 320 * 320, seed);
    const header = Buffer.from(JSON.stringify({ inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 3, 320, 320], parameters: { binary_data_size: pixels.byteLength } }] }));
    return { body: Buffer.concat([header, Buffer.from(pixels.buffer)]), headerLength: header.byteLength };
  };
  // Made before the requests are sent: generating them while the server runs would slow the runs the sizer learns from.
  const images = Array.from({ length: 80 }, (_, seed) => imageRequest(seed));
  const postImage = async (seed: number) => {
    const { body, headerLength } = images[seed];
    const response = await fetch(`${runtime.url}/v2/models/det/infer`, {
      method: 'POST', body,
      headers: { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(headerLength) },
    });
    await response.arrayBuffer();
    return response.status;
  };

  /**
   * The first batch size whose cost per image is clearly above the cheapest smaller size, measured in-process on this
   * machine: on a CPU it comes somewhere between 2 and 16 images for 320×320, depending on the CPU and its load.
   * "Clearly" is 25%: the sizer judges by 10%, and this measurement and the sizer's own each move by about 10%, so a
   * size within 25% may be one the sizer rightly found no dearer.
   */
  async function firstCostlierBatch(): Promise<{ size: number; perImageMs: Record<number, number> }> {
    const session = await referenceSession(MODELS.ocrDetection);
    const image = randomFloats(3 * 320 * 320, 1);
    const sizes = [1, 2, 4, 8, 16];
    const feeds = sizes.map((size) => {
      const data = new Float32Array(image.length * size);
      for (let i = 0; i < size; i++) data.set(image, i * image.length);
      return { x: new ort.Tensor('float32', data, [size, 3, 320, 320]) };
    });
    // The sizes take turns, round after round, and each keeps its fastest run: a burst of load from the other test
    // files running beside this one then slows every size alike instead of the one measured at that moment.
    const fastest = sizes.map(() => Infinity);
    for (let round = 0; round < 6; round++) {
      for (const [i, feed] of feeds.entries()) {
        const started = performance.now();
        await session.run(feed);
        fastest[i] = Math.min(fastest[i], performance.now() - started);
      }
    }
    const perImageMs: Record<number, number> = {};
    for (const [i, size] of sizes.entries()) {
      perImageMs[size] = fastest[i] / size;
      if (perImageMs[size] > Math.min(...Object.values(perImageMs)) * 1.25) return { size, perImageMs };
    }
    return { size: 32, perImageMs };
  }

  it('stops merging 320×320 images before the batch size whose cost per image rises on this CPU, and keeps merging tiny MLP rows', async (t) => {
    const costlier = await firstCostlierBatch();
    t.diagnostic(`in-process ms per image by batch size: ${JSON.stringify(costlier.perImageMs)}; first costlier: ${costlier.size}`);
    // Sixteen requests always waiting: without the sizer, runs would hold as many images as are queued.
    for (let round = 0; round < 5; round++) {
      const statuses = await Promise.all(Array.from({ length: 16 }, (_, i) => postImage(round * 16 + i)));
      assert.deepEqual(new Set(statuses), new Set([200]));
    }
    const mlp = await Promise.all(Array.from({ length: 400 }, (_, i) => postJson(`${runtime.url}/v2/models/mlp/infer`, {
      inputs: [{ name: 'x', datatype: 'FP32', shape: [1, 16], data: Array.from(randomFloats(16, i)) }],
    })));
    assert.ok(mlp.every((response) => response.status === 200));
    const metrics = await (await fetch(`${runtime.url}/metrics`)).text();
    const det = histogramOf(metrics, METRIC.batchSize, 'det');
    const tiny = histogramOf(metrics, METRIC.batchSize, 'mlp');
    t.diagnostic(`images per run ${(det.sum / det.count).toFixed(2)}, MLP rows per run ${(tiny.sum / tiny.count).toFixed(2)}`);
    assert.equal(det.sum, 80, 'every image ran once');
    assert.ok(det.sum / det.count < costlier.size, `images per run: ${(det.sum / det.count).toFixed(2)} over ${det.count} runs; ${costlier.size} images per run cost more per image in-process`);
    // The sizer ramps up three runs per size class; had it stopped at the class of 4 rows or below, no run would
    // hold more than 7 rows.
    assert.ok(tiny.sum / tiny.count > 7, `MLP rows per run: ${(tiny.sum / tiny.count).toFixed(2)} over ${tiny.count} runs`);
  });
});
