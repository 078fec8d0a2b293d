#!/usr/bin/env node
// The `modelship` command. The TypeScript is compiled to build/ by `npm ci` (the `prepare` script) or `npm run build`.
'use strict';
let cli;
try {
  cli = require('../build/runtime/src/cli.js');
} catch (error) {
  if (error.code !== 'MODULE_NOT_FOUND' || !String(error.message).includes('cli.js')) throw error;
  process.stderr.write('modelship: build/ is missing; run `npm run build` first\n');
  process.exit(1);
}
cli.main(process.argv.slice(2)).then((code) => process.exit(code));
