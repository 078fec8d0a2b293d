/** The batch sizer: batches grow while a larger size class costs no more per row, and stop where it does; a queue keeps one per row shape. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BatchSizer } from '../../runtime/src/batcher/batch-sizer';
import { RunQueue } from '../../runtime/src/batcher/run-queue';
import type { NamedTensor } from '../../runtime/src/tensor/datatypes';

/** Runs batches as large as the sizer allows, `rounds` times, costing what `seconds(rows)` says. */
function drive(sizer: BatchSizer, seconds: (rows: number) => number, rounds = 40): number[] {
  const sizes: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const rows = sizer.nextLimit();
    sizer.record(rows, seconds(rows));
    sizes.push(rows);
  }
  return sizes;
}

describe('BatchSizer', () => {
  it('starts at one row, then tries the next size class once one row is judged (three runs)', () => {
    const sizer = new BatchSizer(32);
    assert.equal(sizer.limit, 1);
    sizer.record(1, 0.001);
    sizer.record(1, 0.001);
    assert.equal(sizer.limit, 1, 'two runs are not enough to judge class 1');
    sizer.record(1, 0.001);
    assert.equal(sizer.limit, 3, 'class 2 (2-3 rows) is tried next');
  });

  it('starts from the smallest size class that occurs, when every request has several rows', () => {
    const sizer = new BatchSizer(32);
    for (let i = 0; i < 3; i++) sizer.record(2, 0.002);
    assert.equal(sizer.limit, 7, 'class 4 (4-7 rows) is tried next');
    for (let i = 0; i < 2; i++) sizer.record(4, 0.006);
    assert.equal(sizer.limit, 7, 'two runs are not enough to judge class 4');
    sizer.record(4, 0.006);
    assert.equal(sizer.limit, 2, 'class 4 costs more per row than class 2');
  });

  it('grows to max_batch_size when a run has a fixed cost (a small MLP)', () => {
    const sizer = new BatchSizer(32);
    const sizes = drive(sizer, (rows) => 0.0001 + rows * 0.000005);
    assert.equal(sizer.limit, 32);
    assert.deepEqual(sizes.slice(0, 16), [1, 1, 1, 3, 3, 3, 7, 7, 7, 15, 15, 15, 31, 31, 31, 32], 'each class is measured three times, then the next is tried');
  });

  it('stops where the cost per row starts to rise (a convolutional model on a CPU)', () => {
    // Costs shaped like OCR detection at 320×320 (a one-off in-process measurement; `npm run bench` has its 4- and
    // 16-image rows): 19, 40, 89, 213 and 553 ms for 1, 2, 4, 8 and 16 rows.
    const measured: Record<number, number> = { 1: 0.019, 2: 0.040, 3: 0.064, 4: 0.089, 8: 0.213, 16: 0.553 };
    const sizer = new BatchSizer(32);
    const sizes = drive(sizer, (rows) => measured[rows] ?? rows * 0.03);
    // Class 2 is tried with runs of 3 rows, 12% more per row than one row: the limit is 1.
    assert.equal(sizer.limit, 1);
    assert.ok(sizes.slice(6).every((rows) => rows === 1), `batches after learning: ${sizes.join(',')}`);
  });

  it('keeps growing past a plateau up to the class where it turns', () => {
    // Per row: 1 → 10, 2 → 6, 4 → 4, 8 → 5 (25% worse): batches stop at 4 rows.
    const perRow: Record<number, number> = { 1: 10, 2: 6, 4: 4, 8: 5, 16: 5 };
    const sizer = new BatchSizer(64);
    drive(sizer, (rows) => rows * perRow[2 ** Math.floor(Math.log2(rows))]);
    assert.equal(sizer.limit, 4);
  });

  it('does not grow on one slow early run of a smaller class', () => {
    // A cold first run of one row made two rows look cheaper per row; under sustained load no batch of one row would
    // run again to correct it, so the class is judged on three runs before anything larger is tried.
    const sizer = new BatchSizer(8);
    sizer.record(1, 0.050);
    assert.equal(sizer.limit, 1);
    sizer.record(1, 0.010);
    sizer.record(1, 0.010);
    for (let i = 0; i < 3; i++) sizer.record(2, 0.030);
    assert.equal(sizer.limit, 1, 'two rows cost 15 ms per row against 10 for one');
  });

  it('ignores a slow outlier: the estimate is the fastest recent run', () => {
    const sizer = new BatchSizer(8);
    for (let i = 0; i < 4; i++) sizer.record(1, 0.010);
    sizer.record(2, 0.100); // e.g. onnxruntime allocating for a new shape, or a busy machine
    assert.equal(sizer.limit, 3, 'one slow run does not stop growth');
    sizer.record(2, 0.012);
    sizer.record(2, 0.013);
    assert.equal(sizer.limit, 7, 'the normal runs of the class decide');
  });

  it('caps growth once a class is slower per row in all of its first runs', () => {
    const sizer = new BatchSizer(8);
    sizer.record(1, 0.010);
    for (let i = 0; i < 3; i++) sizer.record(2, 0.030);
    assert.equal(sizer.limit, 1);
  });

  it('probes one class larger now and then, and follows a cost that has changed', () => {
    const sizer = new BatchSizer(16);
    let batchIsCheap = false;
    const sizes = drive(sizer, (rows) => (batchIsCheap ? 0.010 + rows * 0.001 : rows * 0.010 * (rows > 1 ? 1.5 : 1)), 70);
    assert.equal(sizer.limit, 1);
    // Three runs of one row, three trial batches of class 2 (sizes 1-3), then one row per run but for a single probe
    // within 64 batches.
    assert.equal(sizes.slice(6).filter((rows) => rows > 1).length, 1, `a probe ran one larger batch: ${sizes.join(',')}`);
    batchIsCheap = true;
    drive(sizer, (rows) => 0.010 + rows * 0.001, 64 * 8 * 4);
    assert.equal(sizer.limit, 16, 'after enough probes the cheaper batches win');
  });

  it('never exceeds max_batch_size, also when it is not a power of two', () => {
    for (const max of [1, 2, 3, 12, 100]) {
      const sizer = new BatchSizer(max);
      const sizes = drive(sizer, (rows) => 0.001 + rows * 0.00001, 200);
      assert.ok(sizes.every((rows) => rows >= 1 && rows <= max), `max ${max}: ${sizes.join(',')}`);
      assert.equal(sizer.limit, max);
    }
  });

  it('keeps a class that costs up to 10% more per row (noise), but tries nothing larger', () => {
    const sizer = new BatchSizer(8);
    for (let i = 0; i < 3; i++) sizer.record(1, 0.010);
    for (let i = 0; i < 3; i++) sizer.record(2, 0.0216); // 8% more per row
    assert.equal(sizer.limit, 3, 'class 2 stays allowed, class 4 is not tried');
  });

  it('ignores runs without a usable time', () => {
    const sizer = new BatchSizer(8);
    sizer.record(1, 0);
    sizer.record(0, 0.01);
    sizer.record(2, Number.NaN);
    assert.equal(sizer.limit, 1);
  });
});

describe('RunQueue batch limits per row shape', () => {
  const tensor = (rows: number, width: number): NamedTensor => ({ name: 'x', datatype: 'FP32', shape: [rows, width], data: new Float32Array(rows * width) });

  it('caps the shape whose batches cost more per row without capping another shape of the same model', () => {
    const queue = new RunQueue('m:1', 1000, { maxBatchSize: 32, maxQueueDelayMicroseconds: 0 }, { notify() {} }, { depth() {}, run() {}, unbatchable() {} });
    queue.setBatching(true);
    // Wide rows: 10 ms for one, 30 ms per row for two. Narrow rows: a fixed 1 ms per run.
    for (let i = 0; i < 3; i++) queue.recordRun(1, 0.010, [tensor(1, 1000)]);
    for (let i = 0; i < 3; i++) queue.recordRun(2, 0.060, [tensor(2, 1000)]);
    for (let i = 0; i < 3; i++) queue.recordRun(1, 0.001, [tensor(1, 10)]);
    for (let i = 0; i < 3; i++) queue.recordRun(2, 0.001, [tensor(2, 10)]);
    for (let i = 0; i < 8; i++) void queue.submit([tensor(1, 1000)], ['y']);
    assert.equal(queue.takeBatch()?.size, 1, 'wide rows run one at a time');
    assert.equal(queue.takeBatch()?.size, 1);
    for (let i = 0; i < 6; i++) queue.takeBatch();
    for (let i = 0; i < 8; i++) void queue.submit([tensor(1, 10)], ['y']);
    assert.equal(queue.takeBatch()?.size, 7, 'narrow rows merge up to the next class to try (4-7 rows)');
  });
});
