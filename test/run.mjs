// Runs every compiled test file under test/ with node's test runner. Node's `node --test` did not expand globs
// before Node 21, so the files are listed here. Pass substrings to run only matching files: `node test/run.mjs tensor`.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = import.meta.dirname ?? new URL('.', import.meta.url).pathname;
// tsc compiles in place; a .test.js whose .test.ts was deleted or renamed is a stale leftover, not a test.
const compiledFrom = (file) => existsSync(file.replace(/\.js$/, '.ts'));
const walk = (dir) => readdirSync(dir, { withFileTypes: true })
  .flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.name.endsWith('.test.js') ? [join(dir, e.name)] : []));
const filters = process.argv.slice(2);
const files = walk(root).filter(compiledFrom)
  .filter((f) => filters.length === 0 || filters.some((x) => relative(root, f).includes(x))).sort();
if (files.length === 0) {
  console.error(`no compiled test files under ${root}${filters.length ? ` matching ${filters.join(', ')}` : ''}; run \`npm run build\` first`);
  process.exit(1);
}
const result = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...files], { stdio: 'inherit' });
process.exit(result.status ?? 1);
