/**
 * `modelship inspect`: verifying a model before deploying it — what the file declares (signature, opsets, IR,
 * producer, metadata, sha256), whether `modelship optimize` made it and from what, and whether onnxruntime loads it.
 */
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import * as ort from './model/onnxruntime';
import { readOnnxFile, type OnnxFileInfo } from '@modelship/contract';
import { describeShape, type TensorSpec } from './tensor/signature';
import { describeOptimization, optimizationOf, type Optimization } from './optimize/provenance';

export interface InspectReport extends OnnxFileInfo {
  readonly path: string;
  /** What `modelship optimize` recorded in the file, when it made it. */
  readonly optimized?: Optimization;
  readonly onnxruntime: { readonly version: string; readonly loads: boolean; readonly loadMilliseconds?: number; readonly error?: string };
}

export async function inspectModel(path: string): Promise<InspectReport> {
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EISDIR') throw new Error(`'${path}' is a directory; inspect takes the .onnx file`);
    throw new Error(`cannot read '${path}': ${code ?? (error as Error).message}`);
  }
  let file: OnnxFileInfo;
  try {
    file = readOnnxFile(bytes);
  } catch (error) {
    throw new Error(`'${path}' is not an ONNX model: ${(error as Error).message}`);
  }
  const started = performance.now();
  let onnxruntime: InspectReport['onnxruntime'];
  try {
    const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 4 });
    onnxruntime = { version: ort.env.versions.node ?? ort.env.versions.common, loads: true, loadMilliseconds: Math.round(performance.now() - started) };
    await session.release();
  } catch (error) {
    onnxruntime = { version: ort.env.versions.node ?? ort.env.versions.common, loads: false, error: (error as Error).message.split('\n')[0] };
  }
  const optimized = optimizationOf(file.metadata);
  return { path, ...file, ...(optimized ? { optimized } : {}), onnxruntime };
}

export function formatReport(report: InspectReport): string {
  const tensor = (spec: TensorSpec) => `  ${spec.name}  ${spec.datatype ?? spec.ortType}  ${describeShape(spec.shape)}`;
  const lines = [
    `model        ${report.path}`,
    `sha256       ${report.sha256}`,
    `size         ${report.sizeBytes} bytes`,
    `ir_version   ${report.irVersion}`,
    `opset        ${report.opsets.map((o) => `${o.domain || 'ai.onnx'} ${o.version}`).join(', ')}`,
    `producer     ${[report.producerName, report.producerVersion].filter(Boolean).join(' ') || '(none)'}`,
    ...(report.domain ? [`domain       ${report.domain}`] : []),
    ...(report.modelVersion ? [`version      ${report.modelVersion}`] : []),
    ...(report.graphName ? [`graph        ${report.graphName}`] : []),
    ...(report.docString ? [`doc          ${report.docString.split('\n')[0]}`] : []),
    ...(report.optimized ? [`optimized    ${describeOptimization(report.optimized)}`] : []),
    'inputs', ...report.inputs.map(tensor),
    'outputs', ...report.outputs.map(tensor),
    ...(Object.keys(report.metadata).length ? ['metadata', ...Object.entries(report.metadata).map(([k, v]) => `  ${k}: ${v}`)] : []),
    report.onnxruntime.loads
      ? `onnxruntime  loads (onnxruntime-node ${report.onnxruntime.version}, ${report.onnxruntime.loadMilliseconds} ms)`
      : `onnxruntime  FAILS TO LOAD (onnxruntime-node ${report.onnxruntime.version}): ${report.onnxruntime.error}`,
  ];
  return lines.join('\n');
}
