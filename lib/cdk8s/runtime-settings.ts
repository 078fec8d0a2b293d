/**
 * The props that are runtime settings of the same name in @modelship/contract's table, shared by the constructs that
 * run the runtime (ModelService, KServeRuntime), and the flags they write.
 */
import {
  type ExecutionMode, type GraphOptimizationLevel, type LogLevel, SERVE_SETTINGS, type Setting, type Spinning,
} from '@modelship/contract';
import { settingValue } from './validation';

/** Runtime settings as props; each is written as its flag only when given, so the runtime's default holds. */
export interface RuntimeSettingsProps {
  /** Rows per merged run; 1 turns dynamic batching off. @default 32 */
  readonly maxBatchSize?: number;
  /** How long a request may wait for a batch to fill. @default 0 */
  readonly maxQueueDelayMicroseconds?: number;
  /** Requests that may wait per model version before 429s. @default 256 */
  readonly maxQueueSize?: number;
  /**
   * Explanations (`:explain`) per model version at once, before 429s; 0 turns `:explain` off (404), for a service
   * whose callers must not run many inferences with one request. @default 4
   */
  readonly maxExplainQueueSize?: number;
  /** Most perturbed inputs one explanation may run (KernelSHAP's `nsamples`, occlusion's patch positions). @default 4096 */
  readonly maxExplainSamples?: number;
  /** Seconds an explanation may take, its wait behind inference included, before 503. @default 60 */
  readonly explainTimeoutSeconds?: number;
  /**
   * Largest request body. @default - derived by the runtime from the container's memory limit (ModelService's
   * `memoryLimit`), so that one request cannot take more than its share of the pod's memory (at most 64 MiB;
   * docs/runtime.md, Memory per request)
   */
  readonly maxBodyBytes?: number;
  /** Largest answer in raw bytes. @default - derived by the runtime from the container's memory limit (at most 64 MiB) */
  readonly maxResponseBytes?: number;
  /** Seconds a client may take to send a whole request. @default 60 */
  readonly requestTimeoutSeconds?: number;
  /** onnxruntime inter-op threads. @default - onnxruntime's choice */
  readonly interOpThreads?: number;
  /** Whether intra-op threads spin waiting for work. @default 'auto' (off when the container has a CPU limit, as every ModelService's has) */
  readonly intraOpSpinning?: Spinning;
  /** onnxruntime graph optimizations. @default 'all' */
  readonly graphOptimizationLevel?: GraphOptimizationLevel;
  /** onnxruntime execution mode. @default 'sequential' */
  readonly executionMode?: ExecutionMode;
  /** Run the model once on zeros before reporting ready. @default true */
  readonly warmup?: boolean;
  /** @default 'info' */
  readonly logLevel?: LogLevel;
}

const SETTING_PROPS = [
  'maxBatchSize', 'maxQueueDelayMicroseconds', 'maxQueueSize', 'maxExplainQueueSize', 'maxExplainSamples', 'explainTimeoutSeconds',
  'maxBodyBytes', 'maxResponseBytes', 'requestTimeoutSeconds',
  'interOpThreads', 'intraOpSpinning', 'graphOptimizationLevel', 'executionMode', 'warmup', 'logLevel',
] as const satisfies ReadonlyArray<keyof RuntimeSettingsProps & keyof typeof SERVE_SETTINGS>;

/** `--flag=value` for each setting prop given, checked against the table's bounds and choices. */
export function settingArgs(props: RuntimeSettingsProps): string[] {
  return SETTING_PROPS.flatMap((prop) => {
    const value = props[prop];
    const setting: Setting = SERVE_SETTINGS[prop];
    return value === undefined ? [] : [`--${setting.flag}=${settingValue(prop, setting, value)}`];
  });
}
