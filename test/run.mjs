// Runs every compiled test file under build/test with node's test runner. Node 20's `node --test` does not expand
// globs, so the files are listed here. Pass substrings to run only matching files: `node test/run.mjs tensor`.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, '..', 'build', 'test');
const walk = (dir) => readdirSync(dir, { withFileTypes: true })
  .flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : []));
const filters = process.argv.slice(2);
const files = walk(root).filter((f) => filters.length === 0 || filters.some((x) => relative(root, f).includes(x))).sort();
if (files.length === 0) {
  console.error(`no test files under ${root}${filters.length ? ` matching ${filters.join(', ')}` : ''}`);
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
