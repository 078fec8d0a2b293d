/** The drift binning and profile math: deciles, shares, feature values by rank, and counting served rows. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { binOf, checkDriftProfile, DRIFT_BINS, type DriftTensor } from '@modelship/contract';
import { checkProfileAgainst, countRows, decileEdges, featureValue, ProfileBuilder, profileFeature, rowsAndFeatures } from '../../runtime/src/drift';
import type { NamedTensor, TypedArray } from '../../runtime/src/tensor/datatypes';

/** A deterministic pseudo-random sequence in [-1, 1), so failures reproduce. */
function values(count: number, seed = 7): number[] {
  let state = seed;
  return Array.from({ length: count }, () => {
    state = (state * 16807) % 2147483647;
    return (state / 2147483647) * 2 - 1;
  });
}

/** The bins of values, counted the plain way: a linear scan of the edges, not binOf's search. */
function plainCounts(edges: readonly number[], data: readonly number[]): number[] {
  const counts = new Array<number>(DRIFT_BINS).fill(0);
  for (const value of data) {
    if (Number.isNaN(value)) continue;
    let bin = 0;
    while (bin < edges.length && value >= edges[bin]) bin++;
    counts[bin]++;
  }
  return counts;
}

describe('drift profile math', () => {
  it('takes the nearest-rank deciles as edges and the share of values in each bin as ratios', () => {
    const data = Array.from({ length: 100 }, (_, i) => i);
    assert.deepEqual(decileEdges(data), [10, 20, 30, 40, 50, 60, 70, 80, 90]);
    const feature = profileFeature(0, data)!;
    assert.deepEqual(feature.ratios, new Array(DRIFT_BINS).fill(0.1));
  });

  it('scores its own reference values with ratios equal to its own', () => {
    const data = values(997);
    const feature = profileFeature(3, data)!;
    assert.equal(feature.index, 3);
    const counts = plainCounts(feature.edges, data);
    assert.deepEqual(counts.map((c) => c / data.length), feature.ratios);
    assert.ok(Math.abs(feature.ratios.reduce((a, b) => a + b, 0) - 1) < 1e-12);
  });

  it('keeps ties in one bin and leaves NaN out of every bin', () => {
    const feature = profileFeature(0, [1, 1, 1, 1, NaN, 2])!;
    // Five finite values: decile k is the value at rank floor(k * 5 / 10).
    assert.deepEqual(feature.edges, [1, 1, 1, 1, 1, 1, 1, 2, 2]);
    assert.deepEqual(feature.ratios, [0, 0, 0, 0, 0, 0, 0, 0.8, 0, 0.2]);
    assert.equal(profileFeature(0, [NaN, Infinity]), undefined, 'no finite value, no deciles');
    assert.equal(binOf(feature.edges, NaN), undefined);
  });

  it('reads a rank-1 value, a rank-2 column and the mean of a rank-3 row over the remaining axes', () => {
    const rank1: NamedTensor = { name: 'a', datatype: 'FP64', shape: [3], data: new Float64Array([5, 6, 7]) };
    assert.equal(featureValue(rank1.data as TypedArray, rowsAndFeatures(rank1.shape)!, 2, 0), 7);
    const rank2: NamedTensor = { name: 'b', datatype: 'INT64', shape: [2, 3], data: new BigInt64Array([1n, 2n, 3n, 4n, 5n, 6n]) };
    assert.equal(featureValue(rank2.data as TypedArray, rowsAndFeatures(rank2.shape)!, 1, 2), 6);
    // [rows 2, features 2, 3]: row 1, feature 0 is elements 6..8.
    const rank3: NamedTensor = { name: 'c', datatype: 'FP32', shape: [2, 2, 3], data: new Float32Array([0, 0, 0, 1, 1, 1, 3, 6, 9, 2, 2, 2]) };
    assert.equal(featureValue(rank3.data as TypedArray, rowsAndFeatures(rank3.shape)!, 1, 0), 6);
    assert.equal(featureValue(rank3.data as TypedArray, rowsAndFeatures(rank3.shape)!, 0, 1), 1);
  });

  it('counts rank-1 and rank-3 rows into the bins an independent count finds', () => {
    const rows = 50;
    const flat = values(rows * 2 * 4, 11).map(Math.fround);
    const rank3: NamedTensor = { name: 'img', datatype: 'FP32', shape: [rows, 2, 4], data: new Float32Array(flat) };
    const rank1: NamedTensor = { name: 'score', datatype: 'FP32', shape: [rows], data: new Float32Array(values(rows, 13)) };
    const builder = new ProfileBuilder();
    builder.add([rank3], [rank1]);
    const profile = checkDriftProfile(builder.build(), 'built');
    assert.equal(profile.rows, rows);
    assert.deepEqual(profile.tensors.map((t) => [t.name, t.kind, t.features.length]), [['img', 'input', 2], ['score', 'output', 1]]);
    const [img, score] = profile.tensors as DriftTensor[];

    const imgCounts = new Uint32Array(2 * DRIFT_BINS);
    countRows(img, rank3, imgCounts);
    for (const feature of [0, 1]) {
      // The mean of each row's 4 values of the feature, worked out here from the flat data.
      const means = Array.from({ length: rows }, (_, r) => flat.slice((r * 2 + feature) * 4, (r * 2 + feature + 1) * 4).reduce((a, b) => a + b, 0) / 4);
      const expected = plainCounts(img.features[feature].edges, means);
      assert.deepEqual([...imgCounts.subarray(feature * DRIFT_BINS, (feature + 1) * DRIFT_BINS)], expected);
      assert.deepEqual(expected.map((c) => c / rows), img.features[feature].ratios, 'its own rows score its own ratios');
    }
    const scoreCounts = new Uint32Array(DRIFT_BINS);
    countRows(score, rank1, scoreCounts);
    assert.deepEqual([...scoreCounts], plainCounts(score.features[0].edges, [...(rank1.data as Float32Array)]));
  });

  it('takes only the rows it is given room for, and refuses rows whose features changed', () => {
    const builder = new ProfileBuilder();
    const x = (rows: number, width: number): NamedTensor => ({ name: 'x', datatype: 'FP32', shape: [rows, width], data: new Float32Array(rows * width) });
    builder.add([x(5, 3)], [], 3);
    assert.equal(builder.rows, 3);
    assert.throws(() => builder.add([x(2, 4)], []), /input 'x' has 4 feature\(s\) \(dim 1\), where earlier rows had 3/);
    const strings: NamedTensor = { name: 's', datatype: 'BYTES', shape: [2], data: ['a', 'b'] };
    builder.add([x(2, 3), strings], []);
    assert.deepEqual(builder.build().tensors.map((t) => t.name), ['x'], 'BYTES is not profiled');
  });

  it('refuses a profile that names a tensor or feature the model does not have', () => {
    const profile = checkDriftProfile({
      format: 'modelship.drift-profile/v1', rows: 1,
      tensors: [{ name: 'x', kind: 'input', features: [{ index: 16, edges: [1, 2, 3, 4, 5, 6, 7, 8, 9], ratios: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0] }] }],
    }, 'p');
    const signature = { inputs: [{ name: 'x', datatype: 'FP32' as const, ortType: 'float32', shape: ['batch', 16] }], outputs: [] };
    assert.throws(() => checkProfileAgainst(profile, signature, 'p'), /input 'x' has 16 feature\(s\) \(dim 1\); the profile names feature 16/);
    assert.throws(() => checkProfileAgainst({ ...profile, tensors: [{ ...profile.tensors[0], kind: 'output' }] }, signature, 'p'), /the model has no output 'x'/);
  });
});
