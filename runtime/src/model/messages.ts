/** The messages between the main thread and a session worker thread. */
import type {
  DriftProfile, ExecutionMode, ExecutionProvider, GraphOptimizationLevel, OnnxFileInfo, Spinning,
} from '@modelship/contract';
import type { NamedTensor } from '../tensor/datatypes';
import type { Signature } from '../tensor/signature';

/** The model settings a session worker uses (the rest of ModelSettings stays on the main thread). */
export interface SessionSettings {
  readonly intraOpThreads: number;
  readonly intraOpSpinning: Spinning;
  readonly interOpThreads: number;
  readonly graphOptimizationLevel: GraphOptimizationLevel;
  readonly executionMode: ExecutionMode;
  readonly executionProvider: ExecutionProvider;
  readonly warmup: boolean;
}

export type WorkerRequest =
  | { readonly op: 'load'; readonly id: number; readonly key: string; readonly path: string; readonly settings: SessionSettings; readonly drift?: DriftSetup }
  /**
   * One run of one or more requests. Several arrive already merged along dim 0 (batcher/batch.ts), `rows` giving
   * each request's share: one buffer per input crosses the thread boundary however many requests the batch holds.
   */
  | {
    readonly op: 'run'; readonly id: number; readonly key: string; readonly inputs: readonly NamedTensor[]; readonly rows: readonly number[]; readonly outputs: readonly string[];
    /** False for an explanation's perturbed inputs: they are not served traffic, so no drift bin or baseline takes them. */
    readonly countDrift: boolean;
  }
  | { readonly op: 'unload'; readonly id: number; readonly key: string };

/**
 * What the worker counts served rows against: a profile read from profile.json, or none yet and the number of
 * rows to take one from (--drift-baseline-rows).
 */
export type DriftSetup = { readonly profile: DriftProfile } | { readonly baselineRows: number };

/**
 * A run's served rows per bin: one array per tensor of the profile, in its order, DRIFT_BINS counts per feature
 * (undefined for a tensor the run did not have, e.g. an output not asked for).
 */
export type DriftCounts = readonly (Uint32Array | undefined)[];

export interface LoadResult {
  readonly file: OnnxFileInfo;
  /** The signature as onnxruntime sees it (what requests are checked against). */
  readonly signature: Signature;
  readonly loadSeconds: number;
  /** Why warm-up failed, if it did: the model still serves, since warm-up inputs are guessed. */
  readonly warmupError?: string;
}

/** One request's outcome within a run: its outputs, or why it failed. */
export type RequestOutcome = { readonly outputs: readonly NamedTensor[] } | { readonly error: string };

export interface ExecutedRun {
  readonly rows: number;
  readonly seconds: number;
}

export interface RunResult {
  /**
   * The outputs of a merged run that followed the batch, for the main thread to split into each request's rows
   * (views, no copy); set instead of `outcomes`, so that one buffer per output comes back.
   */
  readonly merged?: readonly NamedTensor[];
  /** In the order of the run's requests, when they ran one by one (or there was only one). */
  readonly outcomes?: readonly RequestOutcome[];
  /** Every session.run that completed, with its rows and time: the metrics and the batch sizer read them. */
  readonly runs: readonly ExecutedRun[];
  /** Set when the model's outputs did not follow the merged batch, so it must not be batched again. */
  readonly unbatchable?: true;
  /** The run's rows counted into the drift profile's bins, when there is a profile. */
  readonly drift?: DriftCounts;
  /** The profile taken from the first --drift-baseline-rows rows, in the run that completed it. */
  readonly baselineProfile?: DriftProfile;
}

export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly result: LoadResult | RunResult | null }
  | { readonly id: number; readonly ok: false; readonly error: string };
