// Removes what tsc compiled in place (each .js, .d.ts and .js.map beside a .ts), leaving the sources and the few
// hand-written .js files git tracks. `npm run build` writes them again.
import { execFileSync } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';

const ignored = execFileSync('git', ['ls-files', '--others', '--ignored', '--exclude-standard', '--directory',
  'contract', 'runtime', 'lib', 'test', 'bench', 'examples'], { encoding: 'utf8' }).split('\n');
const compiled = ignored.filter((path) => /\.(js|d\.ts|js\.map)$/.test(path) && !path.includes('node_modules/'));
for (const path of compiled) if (existsSync(path)) rmSync(path);
console.log(`removed ${compiled.length} compiled files`);
