/** Puts a benchmark's tables into docs/benchmarks.md, between `<!-- bench[:section]:start -->` and its end marker. */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../test/helpers/paths';

export function writeReport(section: 'bench' | 'bench:memory' | 'bench:spinning' | 'bench:optimize', report: string): void {
  const path = join(REPO_ROOT, 'docs', 'benchmarks.md');
  const doc = readFileSync(path, 'utf8');
  const start = `<!-- ${section}:start -->`;
  const end = `<!-- ${section}:end -->`;
  if (!doc.includes(start) || !doc.includes(end)) throw new Error(`${path} lacks the ${start} / ${end} markers`);
  writeFileSync(path, `${doc.slice(0, doc.indexOf(start) + start.length)}\n${report}\n${doc.slice(doc.indexOf(end))}`);
}
