/** `modelship optimize`'s report as text: what was done, what it saves, what it costs, and the guard's verdict. */
import { format } from './guard';
import type { OptimizeReport } from './optimize';

export function formatOptimizeReport(report: OptimizeReport): string {
  const ratio = (after: number, before: number) => `${(after / before).toFixed(2)}x`;
  const { before, after } = report.sizeBytes;
  const speed = report.runsPerSecond;
  const lines = [
    `optimized   ${report.input} (sha256 ${report.optimization.source_sha256})`,
    ...report.steps.map((step) => `  ${step}`),
    `size        ${before} -> ${after} bytes (${ratio(after, before)})`,
    `throughput  ${speed.before.toFixed(1)} -> ${speed.after.toFixed(1)} runs/s in-process on the validation inputs (${ratio(speed.after, speed.before)}), measured in turns in this run`,
    `validation  ${report.validation.source}`,
    ...report.validation.outputs.map((output) => `  output '${output.name}': max absolute error ${format(output.maxAbsoluteError)}, max relative error ${format(output.maxRelativeError)}`
      + (output.top1Agreement !== undefined ? `, top-1 unchanged in ${format(output.top1Agreement)} of ${output.rows} row(s)` : '')),
    report.written
      ? `wrote       ${report.out}`
      : `FAILED      ${report.failures.join('; ')}: nothing written to ${report.out}`,
  ];
  return lines.join('\n');
}
