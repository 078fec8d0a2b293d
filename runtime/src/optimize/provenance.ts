/**
 * What `modelship optimize` did to a file, recorded in the file itself (a `metadata_props` entry), so that
 * `modelship inspect`, and anyone auditing a deployment, can tell an optimized model from the one that was trained
 * and find that one again by its sha256.
 */
import { OPTIMIZED_METADATA_KEY, type OptimizeLevel, type Quantize } from '@modelship/contract';
import type { onnx } from 'onnx-proto';

export interface Optimization {
  /** sha256 of the file it was made from. */
  readonly source_sha256: string;
  readonly level?: OptimizeLevel;
  readonly quantize?: Quantize;
  readonly fp16: boolean;
  /** The tool and its version, e.g. "modelship 0.1.0". */
  readonly tool: string;
}

/** Records `optimization` in the model's metadata_props, replacing an earlier record (a model optimized twice). */
export function recordOptimization(model: onnx.IModelProto, optimization: Optimization): void {
  const kept = (model.metadataProps ?? []).filter((entry) => entry.key !== OPTIMIZED_METADATA_KEY);
  model.metadataProps = [...kept, { key: OPTIMIZED_METADATA_KEY, value: JSON.stringify(optimization) }];
}

/** The record in a file's metadata, when it has a readable one. */
export function optimizationOf(metadata: Readonly<Record<string, string>>): Optimization | undefined {
  const value = metadata[OPTIMIZED_METADATA_KEY];
  if (value === undefined) return undefined;
  try {
    const parsed = JSON.parse(value) as Optimization;
    return typeof parsed?.source_sha256 === 'string' ? parsed : undefined;
  } catch {
    return undefined;
  }
}

/** One line: how, from which file, by what. */
export function describeOptimization(optimization: Optimization): string {
  const steps = [
    optimization.quantize && `quantize ${optimization.quantize}`,
    optimization.fp16 && 'fp16',
    optimization.level && `level ${optimization.level}`,
  ].filter(Boolean);
  return `${steps.join(', ') || 'nothing'} by ${optimization.tool}, from sha256 ${optimization.source_sha256}`;
}
