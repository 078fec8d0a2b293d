/**
 * Learns how large a merged run is still worth it. Batching pays when a run's fixed cost dominates (a small MLP:
 * 16 rows cost little more than one), but on a CPU a convolutional model's per-row cost can grow with the batch,
 * once its activations outgrow the caches (OCR detection on the benchmark machine: see the in-process batch rows
 * of docs/benchmarks.md), and merging then lowers throughput. So the sizer compares the measured compute time per row of each
 * power-of-two size class, and lets batches grow only while a larger class costs less per row than the one below
 * it (see `limit`); `max_batch_size` stays the ceiling. A model version keeps one sizer per row shape (BatchSizers),
 * which its inference queue reads to size batches and explanations read to size their runs of perturbed rows.
 */
import type { NamedTensor } from '../tensor/datatypes';

/** Samples kept per size class; the estimate is their minimum, which ignores runs slowed by a busy machine or by onnxruntime allocating for a new shape. */
const SAMPLES_PER_CLASS = 8;
/** Runs a class needs before it can stop growth: one run can be slow for reasons that have nothing to do with its size. */
const SAMPLES_TO_JUDGE = 3;
/** How much more per row a class must cost to stop growth: closer costs are within what noise does to the minimum. */
const WORSE_BY = 1.1;
/** Every this many batches at a learned limit, one may be a class larger, so a cost that has changed is noticed. */
const PROBE_EVERY = 64;

export class BatchSizer {
  /** Per size class (1, 2, 4, ...): the latest seconds-per-row samples. */
  private readonly samples = new Map<number, number[]>();
  private batchesSinceProbe = 0;

  constructor(private readonly maxBatchSize: number) {}

  /** Records one session.run of `rows` rows that took `seconds`. */
  record(rows: number, seconds: number): void {
    // A single request larger than max_batch_size runs alone whatever the limit, so its cost decides nothing.
    if (rows < 1 || rows > this.maxBatchSize || !(seconds > 0)) return;
    const size = sizeClass(rows);
    const kept = this.samples.get(size) ?? [];
    kept.push(seconds / rows);
    if (kept.length > SAMPLES_PER_CLASS) kept.shift();
    this.samples.set(size, kept);
  }

  /**
   * The most rows the learned costs allow in one run: the largest class reached by steps that each cost less per
   * row, plus the next class, if it is not yet measured often enough to judge (that is how larger batches get tried
   * at all) or costs no more than 10% more per row; a class is grown past only once it is judged itself. Where a
   * class costs more, the limit is the power of two below it.
   */
  get limit(): number {
    // Classes below the smallest measured one may never occur (every request has that many rows): start there.
    if (this.samples.size === 0) return 1;
    let size = Math.min(...this.samples.keys());
    while (size * 2 <= this.maxBatchSize) {
      // A class is compared only once it is judged itself: growth decided against one early run (a cold cache, a
      // busy moment) would stick, since under sustained load the batches then never run that small again.
      const current = this.cost(size)!;
      if (!current.judged) break;
      const here = current.cost;
      const next = this.cost(size * 2);
      if (next !== undefined && next.judged && next.cost > here * WORSE_BY) return size;
      size *= 2;
      // Not judged yet: try it. No cheaper per row: keep it (it was within noise) but try nothing larger, since
      // trying a larger class costs runs that are probably slower per row.
      if (next === undefined || !next.judged || next.cost >= here) break;
    }
    return size * 2 > this.maxBatchSize ? this.maxBatchSize : size * 2 - 1;
  }

  /** The limit for the next batch: `limit`, except that now and then a capped model tries one class larger. */
  nextLimit(): number {
    const limit = this.limit;
    if (limit >= this.maxBatchSize) return limit;
    if (++this.batchesSinceProbe < PROBE_EVERY) return limit;
    this.batchesSinceProbe = 0;
    return Math.min(this.maxBatchSize, sizeClass(limit) * 4 - 1);
  }

  /**
   * The learned seconds per row of batches at the limit: the cost of the largest size class measured that the
   * limit allows; undefined before any run.
   */
  get secondsPerRow(): number | undefined {
    const limit = this.limit;
    const measured = [...this.samples.keys()].filter((size) => size <= limit);
    return measured.length === 0 ? undefined : this.cost(Math.max(...measured))!.cost;
  }

  private cost(size: number): { readonly cost: number; readonly judged: boolean } | undefined {
    const kept = this.samples.get(size);
    return kept && kept.length > 0 ? { cost: Math.min(...kept), judged: kept.length >= SAMPLES_TO_JUDGE } : undefined;
  }
}

/** Row shapes whose batch costs are remembered. */
const MAX_ROW_SHAPES = 64;

/**
 * One batch sizer per row shape (the inputs' dims after the first): how a batch's cost grows depends on the size
 * of its rows (a 640×640 image outgrows the caches sooner than a 64×64 one), and a batch only ever holds one shape.
 */
export class BatchSizers {
  private readonly sizers = new Map<string, BatchSizer>();

  constructor(private readonly maxBatchSize: number) {}

  for(inputs: readonly NamedTensor[]): BatchSizer {
    const key = inputs.map((input) => input.shape.slice(1).join('x')).join('|');
    let sizer = this.sizers.get(key);
    if (!sizer) {
      // Bounded, since clients choose the shapes: the oldest sizer goes and its shape learns again if it returns.
      if (this.sizers.size >= MAX_ROW_SHAPES) this.sizers.delete(this.sizers.keys().next().value!);
      sizer = new BatchSizer(this.maxBatchSize);
      this.sizers.set(key, sizer);
    }
    return sizer;
  }
}

/** The power of two at or below `rows`. */
function sizeClass(rows: number): number {
  return 2 ** Math.floor(Math.log2(rows));
}
