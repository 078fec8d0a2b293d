/**
 * Payload logging, off by default: a sampled, size-capped JSON record of an inference's input and output tensors
 * on stdout, for debugging and drift analysis, with named tensors redacted. One place for every protocol, since
 * every request reaches the same run path with the same decoded tensors.
 */
import type { Logger } from 'pino';
import { elementCount, type NamedTensor } from './tensor/datatypes';
import { jsonElements } from './tensor/json';

export interface PayloadLogSettings {
  /** Percent of inferences recorded; 0 turns logging off. */
  readonly percent: number;
  /** Most bytes of tensor data per record, shared between its tensors. */
  readonly maxBytes: number;
  /** Tensor names whose data is never written. */
  readonly redact: readonly string[];
}

interface TensorRecord {
  readonly name: string;
  readonly datatype: string;
  readonly shape: readonly number[];
  readonly data: string;
  readonly truncated?: true;
}

export class PayloadLogger {
  private readonly redact: Set<string>;

  constructor(private readonly settings: PayloadLogSettings, private readonly log: Logger) {
    this.redact = new Set(settings.redact);
  }

  /** Whether to record this inference; decided before the run, since input buffers move to the worker. */
  sample(): boolean {
    return this.settings.percent > 0 && Math.random() * 100 < this.settings.percent;
  }

  /** A size-capped rendering of tensors, taken while their data is still on this thread. */
  capture(tensors: readonly NamedTensor[], share: number): TensorRecord[] {
    const budget = Math.max(16, Math.floor(this.settings.maxBytes * share / Math.max(1, tensors.length)));
    return tensors.map((tensor) => {
      const base = { name: tensor.name, datatype: tensor.datatype, shape: [...tensor.shape] };
      if (this.redact.has(tensor.name)) return { ...base, data: '[redacted]' };
      const count = elementCount(tensor.shape);
      // Two bytes per element is the shortest any element renders; take no more elements than could fit.
      const text = jsonElements(tensor, 0, Math.min(count, Math.ceil(budget / 2)));
      return text.length > budget || count > Math.ceil(budget / 2)
        ? { ...base, data: text.slice(0, budget), truncated: true as const }
        : { ...base, data: text };
    });
  }

  write(model: string, version: number, inputs: TensorRecord[], outputs: readonly NamedTensor[]): void {
    this.log.info({ payload: { model, version: String(version), inputs, outputs: this.capture(outputs, 0.5) } }, 'inference payload');
  }
}
