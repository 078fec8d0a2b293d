#!/usr/bin/env node
// The `modelship` command. The TypeScript beside it is compiled in place (src/*.js): by the published package, or by
// `npm ci` / `npm run build` at the repository root.
'use strict';
let cli;
try {
  cli = require('../src/cli.js');
} catch (error) {
  // Only cli.js itself missing means an uncompiled tree; a dependency cli.js cannot find is that dependency's error.
  if (error.code !== 'MODULE_NOT_FOUND' || !String(error.message).split('\n')[0].includes('src/cli.js')) throw error;
  process.stderr.write('modelship: the compiled runtime (src/cli.js) is missing; run `npm run build` at the repository root\n');
  process.exit(1);
}
cli.main(process.argv.slice(2)).then((code) => process.exit(code));
