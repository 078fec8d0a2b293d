/** The messages between the main thread and a session worker thread. */
import type { ExecutionMode, ExecutionProvider, GraphOptimizationLevel } from '../../../lib/contract/settings';
import type { NamedTensor } from '../tensor/datatypes';
import type { Signature } from '../tensor/signature';
import type { OnnxFileInfo } from './onnx-file';

export interface SessionSettings {
  readonly intraOpThreads: number;
  readonly interOpThreads: number;
  readonly graphOptimizationLevel: GraphOptimizationLevel;
  readonly executionMode: ExecutionMode;
  readonly executionProvider: ExecutionProvider;
  readonly warmup: boolean;
}

export type WorkerRequest =
  | { readonly op: 'load'; readonly id: number; readonly key: string; readonly path: string; readonly settings: SessionSettings }
  | { readonly op: 'run'; readonly id: number; readonly key: string; readonly inputs: readonly NamedTensor[]; readonly outputs: readonly string[] }
  | { readonly op: 'unload'; readonly id: number; readonly key: string };

export interface LoadResult {
  readonly file: OnnxFileInfo;
  /** The signature as onnxruntime sees it (what requests are checked against). */
  readonly signature: Signature;
  readonly loadSeconds: number;
  /** Why warm-up failed, if it did: the model still serves, since warm-up inputs are guessed. */
  readonly warmupError?: string;
}

export interface RunResult {
  readonly outputs: readonly NamedTensor[];
  readonly computeSeconds: number;
}

export type WorkerReply =
  | { readonly id: number; readonly ok: true; readonly result: LoadResult | RunResult | null }
  | { readonly id: number; readonly ok: false; readonly error: string };
