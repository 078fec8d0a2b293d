/**
 * `modelship optimize` as a user runs it: real models in, files onnxruntime loads out, with the same signature and
 * answers within the documented tolerances; the guard's numbers checked against a comparison made here, a failing
 * guard leaving no file and exit code 1, and what was done readable by `modelship inspect`.
 */
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readOnnxFile } from '@modelship/contract';
import * as ort from '../../runtime/src/model/onnxruntime';
import { expectExit, oneLineReason, runCli } from '../helpers/cli-process';
import { MODELS } from '../helpers/paths';
import { randomFloats } from '../helpers/reference';
import { buildWideMlp } from '../helpers/wide-mlp';

const sha256Of = (path: string) => readOnnxFile(readFileSync(path)).sha256;
const signatureOf = (path: string) => {
  const file = readOnnxFile(readFileSync(path));
  return [file.inputs, file.outputs].map((specs) => specs.map((s) => [s.name, s.datatype, s.shape]));
};

/** Runs both files in-process on the same inputs and returns each output's largest absolute and relative error. */
async function compare(originalPath: string, optimizedPath: string, feeds: Array<Record<string, ort.Tensor>>) {
  const [a, b] = await Promise.all([originalPath, optimizedPath].map((path) => ort.InferenceSession.create(path)));
  const errors = new Map<string, { abs: number; ref: number }>();
  for (const feed of feeds) {
    const [x, y] = [await a.run(feed), await b.run(feed)];
    for (const name of a.outputNames) {
      const e = errors.get(name) ?? { abs: 0, ref: 0 };
      const xs = x[name].data as Float32Array;
      const ys = y[name].data as Float32Array;
      for (let i = 0; i < xs.length; i++) {
        e.ref = Math.max(e.ref, Math.abs(xs[i]));
        e.abs = Math.max(e.abs, Math.abs(xs[i] - ys[i]));
      }
      errors.set(name, e);
    }
  }
  await Promise.all([a.release(), b.release()]);
  return new Map([...errors].map(([name, e]) => [name, { abs: e.abs, rel: e.abs / e.ref }]));
}

describe('modelship optimize', () => {
  let dir: string;
  let wide: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'modelship-optimize-'));
    wide = buildWideMlp(join(dir, 'wide.onnx'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('saves onnxruntime\'s graph optimizations: same signature, same answers, and inspect names the source', async () => {
    const out = join(dir, 'det-basic.onnx');
    const result = await runCli(['optimize', MODELS.ocrDetection, '--out', out, '--level', 'basic', '--validate-samples', '4'], { timeoutMs: 120_000 });
    expectExit(result, 0);
    assert.match(result.stdout, /level basic: onnxruntime's graph optimizations saved\n/);
    assert.match(result.stdout, /validation  4 random input\(s\) from the unit normal/);
    assert.match(result.stdout, new RegExp(`wrote {7}${out.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.deepEqual(signatureOf(out), signatureOf(MODELS.ocrDetection));
    assert.deepEqual(readdirSync(dir).filter((name) => name.startsWith('.')), [], 'onnxruntime\'s saved graph, made beside --out, is gone');
    const inspect = await runCli(['inspect', out]);
    expectExit(inspect, 0);
    assert.match(inspect.stdout, new RegExp(`optimized {4}level basic by modelship \\d+\\.\\d+\\.\\d+, from sha256 ${sha256Of(MODELS.ocrDetection)}`));
    const image = new ort.Tensor('float32', randomFloats(3 * 64 * 64, 3), [1, 3, 64, 64]);
    const errors = await compare(MODELS.ocrDetection, out, [{ x: image }]);
    assert.ok(errors.get('sigmoid_0.tmp_0')!.abs < 1e-5, JSON.stringify([...errors]));
    const report = JSON.parse((await runCli(['inspect', out, '--json'])).stdout);
    assert.deepEqual(report.optimized, { source_sha256: sha256Of(MODELS.ocrDetection), level: 'basic', fp16: false, tool: report.optimized.tool });
  });

  it('says that extended and all are specific to the CPU', async () => {
    const result = await runCli(['optimize', MODELS.mlp, '--out', join(dir, 'mlp-all.onnx'), '--level', 'all']);
    expectExit(result, 0);
    assert.match(result.stdout, /level all: onnxruntime's graph optimizations saved \(specific to this CPU: optimize on the machine that serves, or use basic\)/);
    const json = JSON.parse((await runCli(['optimize', MODELS.mlp, '--out', join(dir, 'mlp-all.onnx'), '--level', 'extended', '--json'])).stdout);
    assert.equal(json.hardwareSpecific, true);
  });

  it('takes random validation inputs within the ranges of profile.json beside the model', async () => {
    const modelDir = mkdtempSync(join(dir, 'profiled-'));
    copyFileSync(MODELS.mlp, join(modelDir, 'model.onnx'));
    const data = join(modelDir, 'reference.jsonl');
    writeFileSync(data, Array.from({ length: 50 }, (_, i) => JSON.stringify([Array.from(randomFloats(16, i)).map((v) => v + 10)])).join('\n'));
    expectExit(await runCli(['profile', '--model', join(modelDir, 'model.onnx'), '--data', data, '--out', join(modelDir, 'profile.json')]), 0);
    const result = await runCli(['optimize', join(modelDir, 'model.onnx'), '--out', join(modelDir, 'out.onnx'), '--level', 'basic', '--json']);
    expectExit(result, 0);
    const report = JSON.parse(result.stdout);
    assert.equal(report.validation.source, `32 random input(s) within the ranges of ${join(modelDir, 'profile.json')}`);
  });

  it('reports the errors an independent comparison finds, on the user\'s validation data', async () => {
    const data = join(dir, 'wide.jsonl');
    const rows = Array.from({ length: 20 }, (_, i) => Array.from(randomFloats(256, 100 + i)));
    writeFileSync(data, rows.map((row) => JSON.stringify([row])).join('\n'));
    const out = join(dir, 'wide-int8.onnx');
    const result = await runCli(['optimize', wide, '--out', out, '--quantize', 'dynamic-int8', '--validate-data', data, '--json'], { timeoutMs: 120_000 });
    expectExit(result, 0);
    const report = JSON.parse(result.stdout);
    assert.equal(report.validation.source, `20 request(s) from ${data}`);
    const [y] = report.validation.outputs;
    const expected = (await compare(wide, out, rows.map((row) => ({ x: new ort.Tensor('float32', Float32Array.from(row), [1, 256]) })))).get('y')!;
    assert.ok(expected.abs > 0, 'int8 changes the answers a little');
    assert.ok(Math.abs(y.maxAbsoluteError - expected.abs) <= 1e-12 * Math.max(1, expected.abs), `${y.maxAbsoluteError} vs ${expected.abs}`);
    assert.ok(Math.abs(y.maxRelativeError - expected.rel) <= 1e-9 * expected.rel, `${y.maxRelativeError} vs ${expected.rel}`);
    assert.equal(y.rows, 20, 'y scores 10 classes per row');
    assert.ok(report.sizeBytes.after <= 0.35 * report.sizeBytes.before, JSON.stringify(report.sizeBytes));
    assert.equal(report.sizeBytes.before, statSync(wide).size);
    assert.equal(report.sizeBytes.after, statSync(out).size);
  });

  it('writes nothing and exits 1 when the guard fails, saying which output and which limit', async () => {
    const out = join(dir, 'refused.onnx');
    const result = await runCli(['optimize', wide, '--out', out, '--quantize', 'dynamic-int8', '--max-error', '1e-9', '--validate-samples', '8'], { timeoutMs: 120_000 });
    expectExit(result, 1);
    assert.match(oneLineReason(result), /the optimized model failed the guard, nothing written: output 'y': relative error \S+ is over --max-error 1e-9/);
    assert.match(result.stdout, /FAILED {6}output 'y'/);
    assert.equal(existsSync(out), false);
    assert.deepEqual(existsSync(`${join(dir, '.refused.onnx.partial')}`), false);
    const agreement = await runCli(['optimize', MODELS.ocrDetection, '--out', out, '--level', 'basic', '--min-agreement', '0.9', '--validate-samples', '2'], { timeoutMs: 120_000 });
    expectExit(agreement, 1);
    assert.match(oneLineReason(agreement), /--min-agreement needs an output that scores classes \(\[rows, classes\]\); this model has none/);
    assert.equal(existsSync(out), false);
  });

  it('asks for validation data when a model refuses generated inputs, and takes it for silero VAD', async () => {
    const out = join(dir, 'vad-fp16.onnx');
    const generated = await runCli(['optimize', MODELS.sileroVad, '--out', out, '--fp16', '--validate-samples', '2']);
    expectExit(generated, 1);
    assert.match(oneLineReason(generated), /the original model fails on validation input 1: .*; give inputs it takes with --validate-data/);
    assert.equal(existsSync(out), false);
    const data = join(dir, 'vad.jsonl');
    writeFileSync(data, Array.from({ length: 4 }, (_, i) => JSON.stringify([
      { name: 'input', datatype: 'FP32', shape: [1, 512], data: Array.from(randomFloats(512, 40 + i), (v) => v * 0.3) },
      { name: 'sr', datatype: 'INT64', shape: [], data: [16000] },
      { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: new Array(128).fill(0) },
      { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: new Array(128).fill(0) },
    ])).join('\n'));
    const result = await runCli(['optimize', MODELS.sileroVad, '--out', out, '--fp16', '--validate-data', data, '--max-error', '0.003', '--json']);
    expectExit(result, 0);
    const report = JSON.parse(result.stdout);
    assert.deepEqual(report.validation.outputs.map((o: { name: string }) => o.name), ['output', 'hn', 'cn']);
    assert.ok(report.sizeBytes.after < report.sizeBytes.before);
    assert.deepEqual(signatureOf(out), signatureOf(MODELS.sileroVad));
  });

  it('refuses bad command lines with exit code 2 and the fix', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['optimize', MODELS.mlp, '--out', join(dir, 'x.onnx')], /optimize needs at least one of --level, --quantize and --fp16/],
      [['optimize', MODELS.mlp, '--level', 'basic'], /optimize needs --out \(or MODELSHIP_OPTIMIZE_OUT\)/],
      [['optimize', '--out', join(dir, 'x.onnx'), '--fp16'], /optimize takes one model file: modelship optimize IN\.onnx --out OUT\.onnx/],
      [['optimize', MODELS.mlp, MODELS.mlp, '--out', join(dir, 'x.onnx'), '--fp16'], /optimize takes one model file/],
      [['optimize', MODELS.mlp, '--out', join(dir, 'x.onnx'), '--quantize', 'int4'], /--quantize must be one of dynamic-int8, received 'int4'/],
      [['optimize', MODELS.mlp, '--out', join(dir, 'x.onnx'), '--fp16', '--max-error=-1'], /--max-error must be a number from 0 to 1000000000, received '-1'/],
      [['optimize', MODELS.mlp, '--out', join(dir, 'x.onnx'), '--fp16', '--min-agreement', 'most'], /--min-agreement must be a number from 0 to 1, received 'most'/],
    ];
    for (const [args, message] of cases) {
      const result = await runCli(args);
      expectExit(result, 2);
      assert.match(oneLineReason(result), message);
    }
    const notAModel = await runCli(['optimize', join(dir, 'wide.jsonl'), '--out', join(dir, 'x.onnx'), '--fp16']);
    expectExit(notAModel, 1);
    assert.match(oneLineReason(notAModel), /is not an ONNX model/);
    assert.equal(existsSync(join(dir, 'x.onnx')), false);
  });
});
