/**
 * The official Open Inference Protocol v2 Python clients, installed unchanged from PyPI (test/clients/requirements.txt,
 * installed into .venv-clients by test/clients/install.sh, which .ci/run runs), against the real runtime: Triton's
 * tritonclient (sync HTTP, asyncio HTTP, gRPC) and KServe's InferenceRESTClient and InferenceGRPCClient. Each client
 * runs in one Python process (test/clients/<client>.py) that executes the steps planned here and reports what the
 * client returned or raised; every tensor must equal in-process onnxruntime's answer byte for byte, with the dtype
 * and shape numpy users get, and every error must carry the runtime's own message.
 *
 * Set OFFICIAL_CLIENTS_PYTHON to use another interpreter that has the clients, or OFFICIAL_CLIENTS_SKIP=1 to skip
 * this file on purpose; without the clients and without the skip, every test here fails saying how to install them.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import * as ort from '../../runtime/src/model/onnxruntime';
import { runProcess } from '../helpers/cli-process';
import { MODELS, REPO_ROOT } from '../helpers/paths';
import { randomFloats, runReference } from '../helpers/reference';
import { startRuntime, type RuntimeProcess } from '../helpers/runtime-process';

const PYTHON = process.env.OFFICIAL_CLIENTS_PYTHON ?? join(REPO_ROOT, '.venv-clients', 'bin', 'python');
const SKIP = process.env.OFFICIAL_CLIENTS_SKIP === '1' ? 'OFFICIAL_CLIENTS_SKIP=1' : false;
const DRIVERS = join(REPO_ROOT, 'test', 'clients');

type Values = Uint8Array | Uint16Array | Uint32Array | BigUint64Array | Int8Array | Int16Array | Int32Array | BigInt64Array | Float32Array | Float64Array | string[];

interface Input {
  readonly name: string;
  readonly datatype: string;
  readonly ortType: ort.Tensor.Type;
  readonly shape: number[];
  readonly values: Values;
}

/** A request the steps send: a model, its inputs, and the outputs asked for (all of the model's, unless an error is expected). */
interface Case {
  readonly model: string;
  readonly path: string;
  readonly inputs: readonly Input[];
  /** Set when the runtime must refuse the request (the test asks the runtime for its message itself). */
  readonly refused?: true;
}

const f32 = (values: number[]) => Float32Array.from(values);
const input = (name: string, datatype: string, ortType: ort.Tensor.Type, shape: number[], values: Values): Input => ({ name, datatype, ortType, shape, values });

const CASES: Record<string, Case> = {
  mlp: { model: 'mlp', path: MODELS.mlp, inputs: [input('x', 'FP32', 'float32', [3, 16], randomFloats(48, 11))] },
  typed: {
    model: 'typed', path: MODELS.typed, inputs: [
      input('ids', 'INT64', 'int64', [2, 3], BigInt64Array.of(1n, -2n, 3n, 2n ** 40n, -(2n ** 40n), 0n)),
      input('mask', 'BOOL', 'bool', [2, 3], Uint8Array.of(1, 0, 1, 0, 0, 1)),
      input('text', 'BYTES', 'string', [2], ['héllo wörld', '日本語 🚀 "quoted" \\ and \n']),
    ],
  },
  // Identity per datatype, all in one request. Values JSON carries exactly too (64-bit integers within 2^53, finite
  // floats, no -0), since the same values go as JSON and as binary.
  all: {
    model: 'all', path: MODELS.identityAll, inputs: [
      input('in_bool', 'BOOL', 'bool', [3], Uint8Array.of(1, 0, 1)),
      input('in_uint8', 'UINT8', 'uint8', [3], Uint8Array.of(0, 255, 7)),
      input('in_uint16', 'UINT16', 'uint16', [3], Uint16Array.of(0, 65535, 300)),
      input('in_uint32', 'UINT32', 'uint32', [3], Uint32Array.of(0, 4294967295, 70000)),
      input('in_uint64', 'UINT64', 'uint64', [3], BigUint64Array.of(0n, 2n ** 53n - 1n, 12345n)),
      input('in_int8', 'INT8', 'int8', [3], Int8Array.of(-128, 127, -1)),
      input('in_int16', 'INT16', 'int16', [3], Int16Array.of(-32768, 32767, -1)),
      input('in_int32', 'INT32', 'int32', [3], Int32Array.of(-(2 ** 31), 2 ** 31 - 1, -1)),
      input('in_int64', 'INT64', 'int64', [3], BigInt64Array.of(-(2n ** 53n) + 1n, 2n ** 53n - 1n, -1n)),
      // FP16 bits: 1, -2, 65504.
      input('in_fp16', 'FP16', 'float16', [3], Uint16Array.of(0x3c00, 0xc000, 0x7bff)),
      input('in_fp32', 'FP32', 'float32', [3], f32([0.1, -1e30, 3.4028234663852886e38])),
      input('in_fp64', 'FP64', 'float64', [3], Float64Array.of(0.1, -1e-300, 1.7976931348623157e308)),
      input('in_bytes', 'BYTES', 'string', [3], ['héllo', '', '日本語']),
    ],
  },
  // A real model and a larger tensor: 1.2 MB in, 400 KB out.
  det: { model: 'det', path: MODELS.ocrDetection, inputs: [input('x', 'FP32', 'float32', [1, 3, 320, 320], randomFloats(3 * 320 * 320, 320))] },
  unknownInput: { model: 'mlp', path: MODELS.mlp, refused: true, inputs: [input('nope', 'FP32', 'float32', [3, 16], randomFloats(48, 12))] },
  wrongShape: { model: 'mlp', path: MODELS.mlp, refused: true, inputs: [input('x', 'FP32', 'float32', [3, 15], randomFloats(45, 13))] },
};

type Op = 'live' | 'ready' | 'model_ready' | 'server_metadata' | 'model_metadata' | 'infer' | 'infer_contents';
interface Step {
  readonly id: string;
  readonly op: Op;
  readonly model?: string;
  readonly case?: string;
  /** REST: json | binary; gRPC: raw | contents. */
  readonly in?: string;
  readonly out?: string;
}

const probe = (op: Op, model?: string): Step => ({ id: model ? `${op} ${model}` : op, op, model });
const rest = (name: string, inMode: 'json' | 'binary', outMode: 'json' | 'binary' = inMode): Step =>
  ({ id: `infer ${name}: ${inMode === outMode ? inMode : `${inMode} in, ${outMode} out`}`, op: 'infer', case: name, in: inMode, out: outMode });
const grpcStep = (name: string, inMode: 'raw' | 'contents', op: Op = 'infer'): Step =>
  ({ id: `${op === 'infer_contents' ? 'stub' : 'infer'} ${name}: ${inMode}`, op, case: name, in: inMode });

const TRITON_HTTP_STEPS: Step[] = [
  probe('live'), probe('ready'), probe('model_ready', 'mlp'), probe('server_metadata'), probe('model_metadata', 'mlp'),
  rest('mlp', 'json'), rest('mlp', 'binary'), rest('mlp', 'json', 'binary'), rest('mlp', 'binary', 'json'),
  rest('typed', 'json'), rest('typed', 'binary'), rest('all', 'json'), rest('all', 'binary'),
  rest('det', 'binary'), rest('det', 'binary', 'json'),
  rest('unknownInput', 'json'), rest('unknownInput', 'binary'), rest('wrongShape', 'json'), rest('wrongShape', 'binary'),
];

interface Client {
  readonly label: string;
  readonly driver: string;
  readonly protocol: 'rest' | 'grpc';
  readonly steps: readonly Step[];
}

const CLIENTS: Record<string, Client> = {
  triton_http: { label: "Triton's HTTP client (tritonclient.http)", driver: 'triton_http.py', protocol: 'rest', steps: TRITON_HTTP_STEPS },
  triton_http_aio: { label: "Triton's asyncio HTTP client (tritonclient.http.aio)", driver: 'triton_http_aio.py', protocol: 'rest', steps: TRITON_HTTP_STEPS },
  triton_grpc: {
    label: "Triton's gRPC client (tritonclient.grpc)", driver: 'triton_grpc.py', protocol: 'grpc', steps: [
      probe('live'), probe('ready'), probe('model_ready', 'mlp'), probe('server_metadata'), probe('model_metadata', 'mlp'),
      grpcStep('mlp', 'raw'), grpcStep('typed', 'raw'), grpcStep('all', 'raw'), grpcStep('det', 'raw'),
      // Typed contents in, read with tritonclient's InferResult: the answer must be raw_output_contents regardless.
      grpcStep('mlp', 'contents', 'infer_contents'), grpcStep('typed', 'contents', 'infer_contents'),
      grpcStep('unknownInput', 'raw'), grpcStep('wrongShape', 'raw'),
    ],
  },
  kserve_rest: {
    label: "KServe's REST client (kserve.InferenceRESTClient)", driver: 'kserve_rest.py', protocol: 'rest', steps: [
      probe('live'), probe('ready'), probe('model_ready', 'mlp'),
      rest('mlp', 'json'), rest('mlp', 'binary'), rest('typed', 'json'), rest('typed', 'binary'),
      // KServe sends FP16 binary even here (it refuses FP16 in JSON): one request mixing JSON and binary inputs.
      rest('all', 'json'), rest('all', 'binary'), rest('det', 'binary'),
      rest('unknownInput', 'json'), rest('unknownInput', 'binary'), rest('wrongShape', 'json'),
    ],
  },
  kserve_grpc: {
    label: "KServe's gRPC client (kserve.InferenceGRPCClient)", driver: 'kserve_grpc.py', protocol: 'grpc', steps: [
      probe('live'), probe('ready'), probe('model_ready', 'mlp'),
      grpcStep('mlp', 'contents'), grpcStep('mlp', 'raw'), grpcStep('typed', 'contents'), grpcStep('typed', 'raw'),
      // FP16 has no typed contents field, and OIP v2 forbids mixing raw and typed inputs: identity_all goes raw only.
      grpcStep('all', 'raw'), grpcStep('det', 'raw'),
      grpcStep('unknownInput', 'contents'), grpcStep('wrongShape', 'raw'),
    ],
  },
};

/** Raw little-endian bytes of a tensor's values (BYTES: each element's UTF-8 bytes, compared one by one). */
const rawOf = (values: Values) => (Array.isArray(values) ? Buffer.alloc(0) : Buffer.from(values.buffer, values.byteOffset, values.byteLength));

/** The numpy dtype each client's as_numpy gives for a datatype. */
const NUMPY_DTYPE: Record<string, string> = {
  BOOL: 'bool', UINT8: 'uint8', UINT16: 'uint16', UINT32: 'uint32', UINT64: 'uint64', INT8: 'int8', INT16: 'int16',
  INT32: 'int32', INT64: 'int64', FP16: 'float16', FP32: 'float32', FP64: 'float64', BYTES: 'object',
};
const DATATYPE_OF: Partial<Record<ort.Tensor.Type, string>> = {
  bool: 'BOOL', uint8: 'UINT8', uint16: 'UINT16', uint32: 'UINT32', uint64: 'UINT64', int8: 'INT8', int16: 'INT16',
  int32: 'INT32', int64: 'INT64', float16: 'FP16', float32: 'FP32', float64: 'FP64', string: 'BYTES',
};

/** What a driver reports for one output: as_numpy's dtype, shape and bytes. */
interface Observed {
  readonly dtype: string;
  readonly shape: number[];
  readonly b64?: string;
  readonly items?: string[];
}
interface StepResult {
  readonly value?: unknown;
  readonly error?: string;
  readonly where?: string;
}
interface Report {
  readonly packages: Record<string, string>;
  readonly results: Record<string, StepResult>;
}
/** A driver's run: its report, or why there is none. */
type Run = { readonly report: Report } | { readonly failure: string };

describe('the official Python clients drive the runtime', () => {
  let runtime: RuntimeProcess;
  let dir: string;
  const expected = new Map<string, Record<string, ort.Tensor>>();
  /** The runtime's message for each refused case, asked for directly as application/json. */
  const messages = new Map<string, string>();
  const runs = new Map<string, Run>();
  /** Why the setup failed (no clients, no runtime): every test fails with it rather than being cancelled. */
  let setupError: Error | undefined;

  before(async () => {
    if (SKIP) return;
    try {
      await setUp();
    } catch (error) {
      setupError = error as Error;
    }
  });

  async function setUp() {
    if (!existsSync(PYTHON)) {
      throw new Error(`no Python with the official clients at ${PYTHON}: run test/clients/install.sh (.ci/run does), `
        + 'set OFFICIAL_CLIENTS_PYTHON to an interpreter that has tritonclient[http,grpc] and kserve, or set OFFICIAL_CLIENTS_SKIP=1 to skip these tests');
    }
    runtime = await startRuntime([
      '--model', `mlp=${MODELS.mlp}`, '--model', `typed=${MODELS.typed}`, '--model', `all=${MODELS.identityAll}`,
      '--model', `det=${MODELS.ocrDetection}`,
    ]);
    for (const [name, c] of Object.entries(CASES)) {
      if (c.refused) {
        const response = await fetch(`${runtime.url}/v2/models/${c.model}/infer`, {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: c.inputs.map((i) => ({ name: i.name, datatype: i.datatype, shape: i.shape, data: Array.from(i.values as Float32Array) })) }),
        });
        const body = await response.json() as { error: string };
        assert.equal(response.status, 400, `${name}: ${JSON.stringify(body)}`);
        messages.set(name, body.error);
      } else {
        expected.set(name, await runReference(c.path, Object.fromEntries(c.inputs.map((i) => [i.name, new ort.Tensor(i.ortType, i.values as ort.Tensor.DataType, i.shape)]))));
      }
    }
    dir = mkdtempSync(join(tmpdir(), 'modelship-clients-'));
    const plan = {
      http: runtime.url.replace(/^http:\/\//, ''),
      grpc: `127.0.0.1:${runtime.grpcPort}`,
      cases: Object.fromEntries(Object.entries(CASES).map(([name, c]) => [name, {
        model: c.model,
        inputs: c.inputs.map((i) => ({
          name: i.name, datatype: i.datatype, shape: i.shape,
          ...(Array.isArray(i.values) ? { strings: i.values } : { b64: rawOf(i.values).toString('base64') }),
        })),
        outputs: c.refused ? [] : Object.keys(expected.get(name)!),
      }])),
      steps: Object.fromEntries(Object.entries(CLIENTS).map(([client, { steps }]) => [client, steps])),
    };
    writeFileSync(join(dir, 'plan.json'), JSON.stringify(plan));
    // One process per client, all at once: Triton's and KServe's gRPC stubs both define `package inference`, so
    // they cannot share an interpreter anyway.
    await Promise.all(Object.entries(CLIENTS).map(async ([client, { driver }]) => {
      const reportPath = join(dir, `${client}.json`);
      const result = await runProcess(PYTHON, [join(DRIVERS, driver), join(dir, 'plan.json'), client, reportPath], {
        env: { PYTHONDONTWRITEBYTECODE: '1' }, timeoutMs: 120_000,
      }).catch((error: Error) => ({ code: -1, stdout: '', stderr: error.message }));
      runs.set(client, result.code === 0 && existsSync(reportPath)
        ? { report: JSON.parse(readFileSync(reportPath, 'utf8')) as Report }
        : { failure: `${driver} exited with ${result.code} (test/clients/install.sh installs the clients it imports)\n${result.stderr.slice(-4000)}` });
    }));
  }

  after(async () => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    if (runtime) assert.equal(await runtime.stop(), 0);
  });

  /** The step's result; fails with the driver's stderr when the driver itself did not finish. */
  function resultOf(client: string, step: Step): StepResult {
    const run = runs.get(client);
    assert.ok(run, `${client} did not run`);
    if ('failure' in run) assert.fail(run.failure);
    const result = run.report.results[step.id];
    assert.ok(result, `${client} reported nothing for '${step.id}'`);
    return result;
  }

  function valueOf(client: string, step: Step): unknown {
    const result = resultOf(client, step);
    assert.equal(result.error, undefined, `the client raised ${result.error}\n${result.where ?? ''}`);
    return result.value;
  }

  function checkProbe(client: Client, name: string, step: Step) {
    const value = valueOf(name, step) as any;
    switch (step.op) {
      case 'live': case 'ready': case 'model_ready':
        assert.equal(value, true);
        return;
      case 'server_metadata':
        assert.equal(value.name, 'modelship');
        assert.equal(typeof value.version, 'string');
        // The extension is a REST one; Triton's gRPC ServerMetadata may list it or not.
        if (client.protocol === 'rest') assert.ok(value.extensions.includes('binary_tensor_data'), JSON.stringify(value));
        return;
      case 'model_metadata': {
        // Over gRPC, as_json gives int64 dims as strings (protobuf's JSON mapping).
        const tensors = (list: Array<{ name: string; datatype: string; shape: Array<number | string> }>) =>
          list.map((t) => ({ name: t.name, datatype: t.datatype, shape: t.shape.map(Number) }));
        assert.equal(value.name, 'mlp');
        assert.deepEqual(value.versions, ['1']);
        assert.equal(value.platform, 'onnx_onnxv1');
        assert.deepEqual(tensors(value.inputs), [{ name: 'x', datatype: 'FP32', shape: [-1, 16] }]);
        assert.deepEqual(tensors(value.outputs), [{ name: 'y', datatype: 'FP32', shape: [-1, 4] }]);
        return;
      }
      default:
        assert.fail(`not a probe: ${step.op}`);
    }
  }

  function checkInfer(name: string, step: Step) {
    const reference = expected.get(step.case!)!;
    const outputs = valueOf(name, step) as Record<string, Observed | null>;
    assert.deepEqual(Object.keys(outputs).sort(), Object.keys(reference).sort());
    for (const [output, tensor] of Object.entries(reference)) {
      const observed = outputs[output];
      assert.ok(observed, `as_numpy('${output}') returned None`);
      const datatype = DATATYPE_OF[tensor.type]!;
      assert.deepEqual({ dtype: observed.dtype, shape: observed.shape }, { dtype: NUMPY_DTYPE[datatype], shape: [...tensor.dims] }, `output '${output}'`);
      if (datatype === 'BYTES') {
        assert.deepEqual(observed.items!.map((b) => Buffer.from(b, 'base64').toString('utf8')), tensor.data as string[], `output '${output}'`);
      } else {
        const served = Buffer.from(observed.b64!, 'base64');
        const want = rawOf(tensor.data as Values);
        assert.ok(served.equals(want), `output '${output}' differs from onnxruntime's (${served.length} vs ${want.length} bytes; first elements served ${served.subarray(0, 16).toString('hex')}, expected ${want.subarray(0, 16).toString('hex')})`);
      }
    }
  }

  function checkRefusal(client: Client, name: string, step: Step) {
    const result = resultOf(name, step);
    assert.ok(result.error, `the client raised nothing and returned ${String(JSON.stringify(result.value)).slice(0, 300)}`);
    const message = messages.get(step.case!)!;
    assert.ok(result.error.includes(message), `the client's error does not carry the runtime's message\n  client:  ${result.error}\n  runtime: ${message}`);
    if (client.protocol === 'rest') assert.match(result.error, /\b400\b/);
    else assert.match(result.error, /INVALID_ARGUMENT/);
  }

  for (const [name, client] of Object.entries(CLIENTS)) {
    describe(client.label, () => {
      for (const step of client.steps) {
        it(step.id, { skip: SKIP }, () => {
          if (setupError) throw setupError;
          if (step.case === undefined) checkProbe(client, name, step);
          else if (CASES[step.case].refused) checkRefusal(client, name, step);
          else checkInfer(name, step);
        });
      }
    });
  }
});
