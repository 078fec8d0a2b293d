/**
 * `node bench/compare.js [--a ROOT] [--a-args="..."] [--b ROOT] [--b-args="..."] [--rounds 3]`: two runtimes
 * measured alternating, a fresh process each round, so that a change in the machine's speed during the run falls on
 * both alike. Between separate `npm run bench` runs this shared machine moves by up to a third; this is how a row that
 * looks slower is checked. ROOT is a checkout with its own build (e.g. a `git worktree` of an older commit after
 * `npm ci && npx tsc -p tsconfig.json`); the default is this one. Measures the tiny MLP over v2 JSON at 64
 * connections and OCR detection 320×320 over v2 binary at concurrency 1, 3 s each.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { MODELS, REPO_ROOT } from '../test/helpers/paths';
import { randomFloats } from '../test/helpers/reference';
import { binarySender, HttpClient, jsonSender, ok, type TensorInput } from './clients';
import { closedLoop } from './load';

const { values } = parseArgs({
  options: {
    a: { type: 'string', default: REPO_ROOT }, 'a-args': { type: 'string', default: '' },
    b: { type: 'string', default: REPO_ROOT }, 'b-args': { type: 'string', default: '' },
    rounds: { type: 'string', default: '3' },
  },
});

const CELLS = [
  { label: 'tiny MLP, v2 JSON, 64 connections', model: `m=${MODELS.mlp}`, form: 'JSON', concurrency: 64, input: { name: 'x', shape: [1, 16], data: randomFloats(16, 1) } },
  { label: 'OCR detection 320×320, v2 binary, concurrency 1', model: `m=${MODELS.ocrDetection}`, form: 'binary', concurrency: 1, input: { name: 'x', shape: [1, 3, 320, 320], data: randomFloats(3 * 320 * 320, 2) } },
] as const;

async function measure(root: string, args: string[], cell: (typeof CELLS)[number]): Promise<number> {
  const child = spawn(process.execPath, [join(resolve(root), 'runtime', 'bin', 'modelship.js'), 'serve', '--model', cell.model, '--http-port', '0', '--grpc-port', '0', '--host', '127.0.0.1', '--max-queue-size', '1024', ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((done, fail) => {
      child.stdout!.on('data', (chunk: Buffer) => {
        const found = /"protocol":"http"[^\n]*"port":(\d+)/.exec(chunk.toString());
        if (found) done(Number(found[1]));
      });
      child.once('exit', (code) => fail(new Error(`the runtime in ${root} exited with ${code}`)));
    });
    const url = `http://127.0.0.1:${port}`;
    while ((await fetch(`${url}/v2/health/ready`).catch(() => undefined))?.status !== 200) await new Promise((r) => setTimeout(r, 100));
    const client = new HttpClient(url, cell.concurrency);
    const input = cell.input as TensorInput;
    const send = cell.form === 'JSON' ? jsonSender(client, '/v2/models/m/infer', input) : binarySender(client, '/v2/models/m/infer', input);
    const result = await closedLoop(ok(send), cell.concurrency, 3);
    await client.close();
    return result.ok / result.seconds;
  } finally {
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

async function main(): Promise<void> {
  const sides = [['a', values.a, values['a-args']], ['b', values.b, values['b-args']]] as const;
  for (const cell of CELLS) {
    const results: Record<string, number[]> = { a: [], b: [] };
    for (let round = 0; round < Number(values.rounds); round++) {
      for (const [name, root, args] of sides) results[name].push(await measure(root, args.split(' ').filter(Boolean), cell));
    }
    const show = (name: 'a' | 'b') => results[name].map((rps) => rps.toFixed(1)).join(', ');
    process.stdout.write(`${cell.label}: a ${show('a')} req/s; b ${show('b')} req/s\n`);
  }
}

main().catch((error) => {
  process.stderr.write(`bench:compare failed: ${(error as Error).stack}\n`);
  process.exit(1);
});
