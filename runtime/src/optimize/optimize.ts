/**
 * `modelship optimize`: a smaller or faster model file, proven to answer as the original before it is written.
 * Steps, in this order: dynamic int8 quantization (a rewrite of standard MatMul and Gemm nodes, which the graph
 * optimizations would otherwise fuse out of reach), onnxruntime's graph optimizations saved at the asked level, then
 * float16 storage of the float weights that remain (after the optimizations, whose constant folding would turn them
 * back into float). The model's signature never changes; the guard (guard.ts) runs both models and the file is
 * written only when it passes, atomically, with a record of what was done (provenance.ts).
 */
import { existsSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { onnx } from 'onnx-proto';
import {
  checkDriftProfile, DRIFT_PROFILE_FILE_NAME, readOnnxFile, UsageError, type OnnxFileInfo, type OptimizeLevel, type Quantize,
} from '@modelship/contract';
import * as ort from '../model/onnxruntime';
import { signatureOf } from '../model/signature-of';
import { convertToFloat16 } from './float16';
import { compareModels, guardFailures, throughputs, validationInputs, type OutputComparison } from './guard';
import { recordOptimization, type Optimization } from './provenance';
import { quantizeDynamicInt8 } from './quantize-dynamic';
import type { RewriteReport } from './rewrite-report';

export interface OptimizeOptions {
  readonly input: string;
  readonly out: string;
  readonly level?: OptimizeLevel;
  readonly quantize?: Quantize;
  readonly fp16: boolean;
  readonly validateData?: string;
  readonly validateSamples: number;
  readonly maxError?: number;
  readonly minAgreement?: number;
  /** The tool and version recorded in the file, e.g. "modelship 0.1.0". */
  readonly tool: string;
}

export interface OptimizeReport {
  readonly input: string;
  readonly out: string;
  /** False when the guard failed: nothing was written. */
  readonly written: boolean;
  readonly optimization: Optimization;
  /** What each step did, and what it left alone and why. */
  readonly steps: readonly string[];
  /** Whether the file holds optimizations specific to this machine's CPU (levels extended and all). */
  readonly hardwareSpecific: boolean;
  readonly sizeBytes: { readonly before: number; readonly after: number };
  /** In-process runs per second on the validation inputs, one session each, taking turns. */
  readonly runsPerSecond: { readonly before: number; readonly after: number };
  readonly validation: { readonly source: string; readonly outputs: readonly OutputComparison[] };
  /** Why the guard refused the optimized model; empty when it passed. */
  readonly failures: readonly string[];
}

/** Levels whose saved graphs carry layouts and kernels chosen for the CPU they ran on. */
const HARDWARE_SPECIFIC_LEVELS: readonly OptimizeLevel[] = ['extended', 'all'];
const QUIET = { logSeverityLevel: 4 } as const;

export async function optimizeModel(options: OptimizeOptions): Promise<OptimizeReport> {
  if (!options.level && !options.quantize && !options.fp16) {
    throw new UsageError('optimize needs at least one of --level, --quantize and --fp16');
  }
  const { bytes, file } = readModel(options.input);
  const model = onnx.ModelProto.decode(bytes);
  const steps: string[] = [];
  if (options.quantize === 'dynamic-int8') steps.push(describe(`quantize ${options.quantize}`, quantizeDynamicInt8(model)));
  let optimized: onnx.ModelProto = model;
  if (options.level) {
    optimized = await saveGraphOptimizations(optimized, options.level, dirname(options.out));
    steps.push(`level ${options.level}: onnxruntime's graph optimizations saved${HARDWARE_SPECIFIC_LEVELS.includes(options.level) ? ' (specific to this CPU: optimize on the machine that serves, or use basic)' : ''}`);
  }
  if (options.fp16) steps.push(describe('fp16', convertToFloat16(optimized)));
  const optimization: Optimization = {
    source_sha256: file.sha256, ...(options.level ? { level: options.level } : {}),
    ...(options.quantize ? { quantize: options.quantize } : {}), fp16: options.fp16, tool: options.tool,
  };
  recordOptimization(optimized, optimization);
  const result = onnx.ModelProto.encode(optimized).finish();
  checkSameSignature(file, readOnnxFile(result));

  const original = await ort.InferenceSession.create(bytes, QUIET);
  let candidate: ort.InferenceSession;
  try {
    candidate = await ort.InferenceSession.create(result, QUIET);
  } catch (error) {
    await original.release();
    throw new Error(`the optimized model does not load in onnxruntime (nothing written): ${(error as Error).message.split('\n')[0]}`);
  }
  try {
    const inputs = validationInputs(signatureOf(original), {
      dataPath: options.validateData, profile: profileBeside(options.input), samples: options.validateSamples,
    });
    const outputs = await compareModels(original, candidate, inputs.requests);
    const failures = guardFailures(outputs, { maxError: options.maxError, minAgreement: options.minAgreement });
    const [before, after] = await throughputs([original, candidate], inputs.requests);
    if (failures.length === 0) writeAtomically(options.out, result);
    return {
      input: options.input, out: options.out, written: failures.length === 0, optimization, steps,
      hardwareSpecific: options.level !== undefined && HARDWARE_SPECIFIC_LEVELS.includes(options.level),
      sizeBytes: { before: bytes.byteLength, after: result.byteLength },
      runsPerSecond: { before, after },
      validation: { source: inputs.source, outputs },
      failures,
    };
  } finally {
    await Promise.all([original.release(), candidate.release()]);
  }
}

function readModel(path: string): { bytes: Buffer; file: OnnxFileInfo } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new Error(code === 'EISDIR' ? `'${path}' is a directory; optimize takes the .onnx file` : `cannot read '${path}': ${code ?? (error as Error).message}`);
  }
  try {
    return { bytes, file: readOnnxFile(bytes) };
  } catch (error) {
    throw new Error(`'${path}' is not an ONNX model: ${(error as Error).message}`);
  }
}

function describe(step: string, report: RewriteReport): string {
  return `${step}: ${report.rewritten} rewritten${report.skipped.length ? `; left alone: ${report.skipped.join('; ')}` : ''}`;
}

/**
 * The model as onnxruntime saves it after its graph optimizations at `level` (optimizedModelFilePath). The file goes
 * in a directory made beside the output, not in /tmp: in a pod /tmp is a small emptyDir, while the output's volume
 * was sized for the model, and the file is gone before the output is written.
 */
async function saveGraphOptimizations(model: onnx.ModelProto, level: OptimizeLevel, besideOutput: string): Promise<onnx.ModelProto> {
  let dir: string;
  try {
    dir = mkdtempSync(join(besideOutput, '.modelship-optimize-'));
  } catch (error) {
    throw new Error(`cannot write beside --out in '${besideOutput}': ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
  try {
    const saved = join(dir, 'optimized.onnx');
    const session = await ort.InferenceSession.create(onnx.ModelProto.encode(model).finish(), {
      ...QUIET, graphOptimizationLevel: level, optimizedModelFilePath: saved,
    });
    await session.release();
    return onnx.ModelProto.decode(readFileSync(saved));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every rewrite keeps the signature; a difference here is a bug, and no file is written. */
function checkSameSignature(before: OnnxFileInfo, after: OnnxFileInfo): void {
  const spell = (file: OnnxFileInfo) => JSON.stringify([file.inputs, file.outputs].map((specs) => specs.map((s) => [s.name, s.datatype, s.shape])));
  if (spell(before) !== spell(after)) {
    throw new Error(`the optimized model's signature differs from the original's (nothing written): ${spell(after)} instead of ${spell(before)}`);
  }
}

/** The drift profile beside the input, whose ranges random validation inputs take; none when absent or unreadable. */
function profileBeside(input: string) {
  const path = join(dirname(input), DRIFT_PROFILE_FILE_NAME);
  if (!existsSync(path)) return undefined;
  try {
    return { profile: checkDriftProfile(JSON.parse(readFileSync(path, 'utf8')), path), path };
  } catch {
    return undefined;
  }
}

/** Written beside its destination and renamed over it, so that a reader never sees half a model. */
function writeAtomically(path: string, bytes: Uint8Array): void {
  const partial = join(dirname(path), `.${basename(path)}.partial`);
  try {
    writeFileSync(partial, bytes);
    renameSync(partial, path);
  } catch (error) {
    rmSync(partial, { force: true });
    throw new Error(`cannot write --out '${path}': ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
  }
}
