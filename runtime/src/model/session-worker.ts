/**
 * A worker thread that owns onnxruntime sessions. `session.run` blocks the thread it runs on for its whole
 * duration, so sessions live here and the main thread stays free to accept connections and answer probes.
 * Tensor buffers travel both ways as transferables, without a copy.
 */
import { readFile } from 'node:fs/promises';
import { performance } from 'node:perf_hooks';
import { parentPort } from 'node:worker_threads';
import * as ort from './onnxruntime';
import { DATATYPES, fromOrtType, type NamedTensor, type TensorData, transferListOf } from '../tensor/datatypes';
import type { Signature } from '../tensor/signature';
import { followsBatch, splitRows } from '../batcher/batch';
import type { DriftCounts, DriftSetup, ExecutedRun, LoadResult, RequestOutcome, RunResult, SessionSettings, WorkerReply, WorkerRequest } from './messages';
import { DRIFT_BINS, DRIFT_PROFILE_FILE_NAME, readOnnxFile, type DriftProfile, type OnnxFileInfo } from '@modelship/contract';
import { dirname } from 'node:path';
import { checkProfileAgainst, countRows, ProfileBuilder } from '../drift';
import { signatureOf } from './signature-of';

const sessions = new Map<string, ort.InferenceSession>();

/**
 * Each version's drift profile, or the baseline being collected until there is one. Counting happens here, where
 * the tensors already are after a run: the main thread only adds a few small integer arrays to its counters.
 */
interface DriftState {
  profile?: DriftProfile;
  baseline?: { readonly rows: number; readonly builder: ProfileBuilder };
}
const driftStates = new Map<string, DriftState>();

// onnxruntime prints its own coloured errors to stderr; failures reach the JSON log through the replies instead.
const ORT_LOG_FATAL_ONLY = 4;

async function load(key: string, path: string, settings: SessionSettings, setup: DriftSetup | undefined): Promise<LoadResult> {
  const started = performance.now();
  const bytes = await readFile(path);
  let file: OnnxFileInfo;
  try {
    file = readOnnxFile(bytes);
  } catch (error) {
    throw new Error(`'${path}' is not an ONNX model: ${(error as Error).message}`);
  }
  const session = await ort.InferenceSession.create(bytes, {
    // 0 means "let onnxruntime choose", which onnxruntime-node spells as leaving the option out.
    ...(settings.intraOpThreads ? { intraOpNumThreads: settings.intraOpThreads } : {}),
    ...(settings.interOpThreads ? { interOpNumThreads: settings.interOpThreads } : {}),
    // Session config entries: onnxruntime-node passes `extra` through, nested keys joined with dots.
    extra: { session: { intra_op: { allow_spinning: settings.intraOpSpinning === 'off' ? '0' : '1' } } },
    graphOptimizationLevel: settings.graphOptimizationLevel,
    executionMode: settings.executionMode,
    executionProviders: settings.executionProvider === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    logSeverityLevel: ORT_LOG_FATAL_ONLY,
  });
  const signature = signatureOf(session);
  // A profile that does not fit the model fails the load, before the session replaces a working one.
  const drift = setup && 'profile' in setup ? setup.profile : undefined;
  if (drift) checkProfileAgainst(drift, signature, `${dirname(path)}/${DRIFT_PROFILE_FILE_NAME}`);
  let warmupError: string | undefined;
  if (settings.warmup) {
    try {
      await session.run(warmupFeeds(signature));
    } catch (error) {
      warmupError = (error as Error).message;
    }
  }
  await sessions.get(key)?.release();
  sessions.set(key, session);
  if (drift) driftStates.set(key, { profile: drift });
  else if (setup && 'baselineRows' in setup && setup.baselineRows > 0) driftStates.set(key, { baseline: { rows: setup.baselineRows, builder: new ProfileBuilder() } });
  else driftStates.delete(key);
  return { file, signature, loadSeconds: (performance.now() - started) / 1000, warmupError };
}

/** Zeros for every input, dynamic dimensions set to 1: enough to make onnxruntime allocate and plan once. */
function warmupFeeds(signature: Signature): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  for (const spec of signature.inputs) {
    if (!spec.datatype || !spec.shape) throw new Error(`input '${spec.name}' has no declared type and shape`);
    const dims = spec.shape.map((dim) => (typeof dim === 'number' ? dim : 1));
    const count = dims.reduce((a, b) => a * b, 1);
    const info = DATATYPES[spec.datatype];
    const data: TensorData = info.array ? new info.array(count) : new Array<string>(count).fill('');
    feeds[spec.name] = new ort.Tensor(info.ort, data as ort.Tensor.DataType, dims);
  }
  return feeds;
}

async function runOnce(session: ort.InferenceSession, inputs: readonly NamedTensor[], outputNames: readonly string[]) {
  const feeds: Record<string, ort.Tensor> = {};
  for (const input of inputs) {
    feeds[input.name] = new ort.Tensor(DATATYPES[input.datatype].ort, input.data as ort.Tensor.DataType, input.shape);
  }
  const started = performance.now();
  const results = await session.run(feeds, outputNames as string[]);
  const seconds = (performance.now() - started) / 1000;
  const outputs = outputNames.map((name): NamedTensor => {
    const tensor = results[name];
    const info = fromOrtType(tensor.type);
    if (!info) throw new Error(`output '${name}' has onnxruntime type '${tensor.type}', which modelship cannot carry`);
    return { name, datatype: info.name, shape: [...tensor.dims], data: tensor.data as TensorData };
  });
  return { outputs, seconds };
}

/**
 * Runs a batch of requests, merged along dim 0 when there are several. If the merged run fails, or its outputs do
 * not follow the batch, each request runs alone on its own rows, so that one request's bad values never fail its
 * neighbours.
 */
async function run(key: string, inputs: readonly NamedTensor[], rows: readonly number[], outputNames: readonly string[], countDrift: boolean): Promise<RunResult> {
  const session = sessions.get(key);
  if (!session) throw new Error(`no session loaded for ${key}`);
  const driftOf = countDrift ? countServed : () => ({});
  if (rows.length === 1) return runEach(key, session, [inputs], outputNames, rows, driftOf);
  let merged: Awaited<ReturnType<typeof runOnce>> | undefined;
  try {
    merged = await runOnce(session, inputs, outputNames);
  } catch {
    // Fall through to one run per request, which tells each request its own error.
  }
  const total = rows.reduce((a, b) => a + b, 0);
  if (merged && followsBatch(merged.outputs, total)) {
    // The merged tensors hold every request's rows once: counting them is counting each request.
    const drift = driftOf(key, [{ inputs, outputs: merged.outputs }]);
    return { merged: merged.outputs, runs: [{ rows: total, seconds: merged.seconds }], ...drift };
  }
  const alone = await runEach(key, session, splitRows(inputs, rows)!, outputNames, rows, driftOf);
  return merged ? { ...alone, runs: [{ rows: total, seconds: merged.seconds }, ...alone.runs], unbatchable: true } : alone;
}

type DriftOf = typeof countServed;

async function runEach(key: string, session: ort.InferenceSession, batch: readonly (readonly NamedTensor[])[], outputNames: readonly string[], rows: readonly number[], driftOf: DriftOf): Promise<RunResult> {
  const outcomes: RequestOutcome[] = [];
  const runs: ExecutedRun[] = [];
  const served: { inputs: readonly NamedTensor[]; outputs: readonly NamedTensor[] }[] = [];
  for (const [i, inputs] of batch.entries()) {
    try {
      const result = await runOnce(session, inputs, outputNames);
      runs.push({ rows: rows[i], seconds: result.seconds });
      outcomes.push({ outputs: result.outputs });
      served.push({ inputs, outputs: result.outputs });
    } catch (error) {
      outcomes.push({ error: (error as Error).message });
    }
  }
  // Only requests that were answered count as served rows.
  return { outcomes, runs, ...driftOf(key, served) };
}

/**
 * The served rows of a run counted into the version's profile, or added to its baseline until that has its rows
 * (a run that completes the baseline is not counted against it: counting starts with the next one).
 */
function countServed(key: string, served: readonly { inputs: readonly NamedTensor[]; outputs: readonly NamedTensor[] }[]): Pick<RunResult, 'drift' | 'baselineProfile'> {
  const state = driftStates.get(key);
  if (!state || served.length === 0) return {};
  if (state.profile) {
    const counts: (Uint32Array | undefined)[] = state.profile.tensors.map(() => undefined);
    for (const [t, profiled] of state.profile.tensors.entries()) {
      for (const { inputs, outputs } of served) {
        const tensor = (profiled.kind === 'input' ? inputs : outputs).find((candidate) => candidate.name === profiled.name);
        if (!tensor) continue;
        countRows(profiled, tensor, counts[t] ??= new Uint32Array(profiled.features.length * DRIFT_BINS));
      }
    }
    return { drift: counts satisfies DriftCounts };
  }
  const baseline = state.baseline!;
  try {
    for (const { inputs, outputs } of served) baseline.builder.add(inputs, outputs, baseline.rows - baseline.builder.rows);
  } catch {
    // Rows whose features differ from the first ones cannot join the same profile; the baseline waits for others.
    return {};
  }
  if (baseline.builder.rows < baseline.rows) return {};
  const profile = baseline.builder.build();
  driftStates.set(key, { profile });
  return { baselineProfile: profile };
}

async function handle(message: WorkerRequest): Promise<[WorkerReply, ArrayBuffer[]]> {
  switch (message.op) {
    case 'load': {
      const result = await load(message.key, message.path, message.settings, message.drift);
      return [{ id: message.id, ok: true, result }, []];
    }
    case 'run': {
      const result = await run(message.key, message.inputs, message.rows, message.outputs, message.countDrift);
      const outputs = result.merged ?? result.outcomes!.flatMap((outcome) => ('outputs' in outcome ? outcome.outputs : []));
      return [{ id: message.id, ok: true, result }, transferListOf(outputs)];
    }
    case 'unload': {
      await sessions.get(message.key)?.release();
      sessions.delete(message.key);
      driftStates.delete(message.key);
      return [{ id: message.id, ok: true, result: null }, []];
    }
  }
}

parentPort!.on('message', (message: WorkerRequest) => {
  handle(message).then(
    ([reply, transfer]) => parentPort!.postMessage(reply, transfer),
    (error: unknown) => parentPort!.postMessage({ id: message.id, ok: false, error: (error as Error).message ?? String(error) } satisfies WorkerReply),
  );
});
