/**
 * The `modelship` command: serve | inspect | fetch | profile | optimize. A wrong flag or an unusable model ends the process with a
 * one-line reason on stderr and a non-zero exit code (2 for usage, 1 for everything else).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { FETCH_SETTINGS, OPTIMIZE_SETTINGS, PROFILE_SETTINGS, SERVE_SETTINGS, type Setting } from '@modelship/contract';
import { parseCommandLine, parseSettings } from '@modelship/contract';
import { PARSED_JSON_WEIGHT, parseServeSettings, type ResolvedServeSettings, type ServeSettings, withMemoryLimits } from './config';
import { UsageError } from './errors';
import { fetchModel } from './fetch';
import { formatReport, inspectModel } from './inspect';
import { profileModel, writeProfile } from './profile';
import { formatOptimizeReport } from './optimize/format-report';
import { optimizeModel } from './optimize/optimize';
import { createLogger } from './logger';
import { containerResources, type ContainerResources } from './resources';
import { spinningFor } from './model/registry';
import { serve, type LoadFailure } from './serve';
import { weighParsedJson } from './tensor/numeric-json';

// The runtime package's version, from its package.json one level above src/ (the same path for .ts and .js).
const VERSION: string = JSON.parse(readFileSync(join(__dirname, '..', 'package.json'), 'utf8')).version;

const COMMANDS = {
  serve: `  modelship serve --model-repository DIR [options]     serve <model>/<version>/model.onnx from DIR
  modelship serve --model NAME=PATH.onnx [...]          serve files as version 1, without a repository
  modelship serve --model-dir DIR --model-name NAME     serve one model from DIR/model.onnx or DIR/<version>/model.onnx (KServe's /mnt/models)`,
  inspect: '  modelship inspect PATH.onnx [--json]                  signature, opsets, IR, producer, metadata, sha256',
  fetch: '  modelship fetch --uri URI --sha256 HEX --dest PATH    download and verify a model (init container)',
  profile: '  modelship profile --model PATH.onnx --data FILE --out profile.json   drift profile from reference inputs (JSON lines)',
  optimize: '  modelship optimize IN.onnx --out OUT.onnx [--level L] [--quantize dynamic-int8] [--fp16]   smaller or faster, checked against IN',
} as const;

/** Each command's own help, for `modelship COMMAND --help` and `modelship help COMMAND`. */
const COMMAND_USAGE: Record<keyof typeof COMMANDS, string> = {
  serve: `Usage:\n${COMMANDS.serve}\n\nOptions:\n${describe(SERVE_SETTINGS)}\n`,
  inspect: `Usage:\n${COMMANDS.inspect}\n\nOptions:\n  --${'json'.padEnd(26)} print the report as JSON\n`,
  fetch: `Usage:\n${COMMANDS.fetch}\n\nOptions:\n${describe(FETCH_SETTINGS)}\n`,
  profile: `Usage:\n${COMMANDS.profile}\n\nOptions:\n${describe(PROFILE_SETTINGS)}\n`,
  optimize: `Usage:\n${COMMANDS.optimize}\n\nOptions:\n${describe(OPTIMIZE_SETTINGS)}\n`,
};

const USAGE = `modelship ${VERSION}

Usage:
${COMMANDS.serve}
${COMMANDS.inspect}
${COMMANDS.fetch}
${COMMANDS.profile}
${COMMANDS.optimize}

serve options:
${describe(SERVE_SETTINGS)}

fetch options:
${describe(FETCH_SETTINGS)}

profile options:
${describe(PROFILE_SETTINGS)}

optimize options:
${describe(OPTIMIZE_SETTINGS)}
`;

function describe(table: Record<string, Setting>): string {
  return Object.values(table).map((s) => {
    const fallback = 'default' in s && s.default !== undefined && s.default !== '' ? ` (default ${s.default})` : '';
    const choices = s.kind === 'string' && s.choices ? ` [${s.choices.join('|')}]` : '';
    return `  --${s.flag.padEnd(26)} ${s.description}${choices}${fallback}; env ${s.env}`;
  }).join('\n');
}

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (Object.hasOwn(COMMANDS, command ?? '') && (rest.includes('--help') || rest.includes('-h'))) {
      process.stdout.write(COMMAND_USAGE[command as keyof typeof COMMANDS]);
      return 0;
    }
    switch (command) {
      case 'serve':
        return await runServe(rest);
      case 'inspect':
        return await runInspect(rest);
      case 'fetch':
        return await runFetch(rest);
      case 'profile':
        return await runProfile(rest);
      case 'optimize':
        return await runOptimize(rest);
      case '--version':
      case 'version':
        process.stdout.write(`${VERSION}\n`);
        return 0;
      case 'help':
        if (rest.length > 0) {
          if (!Object.hasOwn(COMMANDS, rest[0])) throw new UsageError(`no help for '${rest[0]}'; commands are serve, inspect, fetch, profile and optimize`);
          process.stdout.write(COMMAND_USAGE[rest[0] as keyof typeof COMMANDS]);
          return 0;
        }
        process.stdout.write(USAGE);
        return 0;
      case undefined:
      case '--help':
      case '-h':
        process.stdout.write(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command '${command}'; expected serve, inspect, fetch, profile or optimize (see modelship --help)`);
    }
  } catch (error) {
    process.stderr.write(`modelship: ${(error as Error).message.split('\n')[0]}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}

async function runServe(argv: readonly string[]): Promise<number> {
  const parsed = parseServeSettings(argv);
  const log = createLogger(parsed.logLevel as Parameters<typeof createLogger>[0]);
  const resources = containerResources();
  const settings = withMemoryLimits(parsed, resources);
  // A derived body limit holds for JSON that JSON.parse reads only if its bytes count for what they cost.
  if (parsed.maxBodyBytes === 0 && resources.memoryLimited) weighParsedJson(settings.maxBodyBytes, PARSED_JSON_WEIGHT);
  const server = await serve(settings, log, VERSION);
  // Once the flags and models have passed their checks: a start that fails on them prints its one line and nothing else.
  logSizing(log, parsed, settings, resources);
  const signal = new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  // A model named with --model (or --model-dir) is one the user asked for by hand: if it cannot load, serving on
  // (live, never ready, answering 503) only hides the mistake, so the start fails as a bad flag does. A repository serves the models
  // that load and reports the others, so that one broken model does not take the rest down.
  const failures = settings.modelRepository ? signal
    : server.loaded.then<string | readonly LoadFailure[]>((failed) => (failed.length > 0 ? failed : signal));
  const stop = await Promise.race([signal, failures]);
  if (typeof stop !== 'string') {
    await server.shutdown('a model given with --model failed to load');
    const flag = (f: LoadFailure) => (settings.modelDir !== undefined ? `--model-dir '${settings.modelDir}' (version ${f.version})`
      : `--model '${settings.model.find((pair) => pair.startsWith(`${f.name}=`)) ?? f.name}'`);
    throw new Error(stop.map((f) => `${flag(f)} failed to load: ${f.reason.split('\n')[0]}`).join('; '));
  }
  const drained = await server.shutdown(stop);
  return drained ? 0 : 1;
}

/** What the server sized itself by, and what it derived: the first thing to check when a pod is throttled or killed. */
function logSizing(log: ReturnType<typeof createLogger>, parsed: ServeSettings, settings: ResolvedServeSettings, resources: ContainerResources): void {
  const source = (limited: boolean) => (limited ? 'the cgroup limit' : 'the machine, no cgroup limit');
  const weighed = parsed.maxBodyBytes === 0 && resources.memoryLimited;
  const derived = (key: 'maxBodyBytes' | 'maxResponseBytes') => (parsed[key] !== 0 ? 'set' : resources.memoryLimited ? 'derived from the memory limit' : 'the default without a memory limit');
  log.info({
    cgroup: resources.cgroup, cpus: resources.cpus, cpuLimited: resources.cpuLimited, memoryBytes: resources.memoryBytes, memoryLimited: resources.memoryLimited,
    intraOpThreads: settings.intraOpThreads || resources.cpus, intraOpSpinning: spinningFor(settings.intraOpSpinning, resources),
    maxBodyBytes: settings.maxBodyBytes, parsedJsonWeight: weighed ? PARSED_JSON_WEIGHT : 1, maxGrpcMessageBytes: settings.maxGrpcMessageBytes, maxResponseBytes: settings.maxResponseBytes,
  }, `sized for ${resources.cpus} CPU(s) (${source(resources.cpuLimited)}) and ${resources.memoryBytes} bytes of memory (${source(resources.memoryLimited)}): `
    + `${settings.intraOpThreads || resources.cpus} intra-op thread(s) per session${parsed.intraOpThreads === 0 ? ' (one per CPU)' : ''}, spinning ${spinningFor(settings.intraOpSpinning, resources)}${parsed.intraOpSpinning === 'auto' ? (resources.cpuLimited ? ' (auto: under a CPU limit)' : ' (auto: no CPU limit)') : ''}; `
    + `bodies up to ${settings.maxBodyBytes} bytes${weighed ? ` (JSON outside large arrays of numbers counting ${PARSED_JSON_WEIGHT} times)` : ''} `
    + `and gRPC messages up to ${settings.maxGrpcMessageBytes} (${derived('maxBodyBytes')}), `
    + `answers up to ${settings.maxResponseBytes} bytes of output (${derived('maxResponseBytes')})`);
}

async function runInspect(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: [...argv], options: { json: { type: 'boolean' } }, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]);
  }
  if (parsed.positionals.length !== 1) throw new UsageError('inspect takes one model file: modelship inspect PATH.onnx [--json]');
  const report = await inspectModel(parsed.positionals[0]);
  process.stdout.write(parsed.values.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatReport(report)}\n`);
  if (!report.onnxruntime.loads) {
    throw new Error(`'${report.path}' does not load in onnxruntime-node ${report.onnxruntime.version}: ${report.onnxruntime.error}`);
  }
  return 0;
}

async function runFetch(argv: readonly string[]): Promise<number> {
  const settings = parseSettings(FETCH_SETTINGS, argv, process.env);
  for (const key of ['uri', 'sha256', 'dest'] as const) {
    if (!settings[key]) throw new UsageError(`fetch needs --${FETCH_SETTINGS[key].flag} (or ${FETCH_SETTINGS[key].env})`);
  }
  await fetchModel({ ...settings, uri: settings.uri!, sha256: settings.sha256!, dest: settings.dest! }, createLogger('info', 'modelship-fetch'));
  return 0;
}

async function runProfile(argv: readonly string[]): Promise<number> {
  const settings = parseSettings(PROFILE_SETTINGS, argv, process.env);
  for (const key of ['model', 'data', 'out'] as const) {
    if (!settings[key]) throw new UsageError(`profile needs --${PROFILE_SETTINGS[key].flag} (or ${PROFILE_SETTINGS[key].env})`);
  }
  const summary = await profileModel(settings.model!, settings.data!);
  writeProfile(settings.out!, summary.profile);
  const tensors = summary.profile.tensors.map((t) => `${t.kind} '${t.name}' ${t.features.length}`).join(', ');
  process.stdout.write(`profiled ${summary.rows} row(s): ${summary.tensors} tensor(s), ${summary.features} feature(s) (${tensors}) -> ${settings.out}\n`);
  return 0;
}

/** Exit code 1, and no file, when the guard refuses the optimized model: an init container then keeps its pod from starting. */
async function runOptimize(argv: readonly string[]): Promise<number> {
  const { settings, positionals } = parseCommandLine(OPTIMIZE_SETTINGS, argv, process.env);
  if (positionals.length !== 1) throw new UsageError(`optimize takes one model file: ${COMMANDS.optimize.trim().split('   ')[0]}`);
  if (!settings.out) throw new UsageError(`optimize needs --${OPTIMIZE_SETTINGS.out.flag} (or ${OPTIMIZE_SETTINGS.out.env})`);
  const report = await optimizeModel({
    input: positionals[0], out: settings.out, level: settings.level, quantize: settings.quantize, fp16: settings.fp16,
    validateData: settings.validateData, validateSamples: settings.validateSamples, maxError: settings.maxError,
    minAgreement: settings.minAgreement, tool: `modelship ${VERSION}`,
  });
  process.stdout.write(settings.json ? `${JSON.stringify(report, null, 2)}\n` : `${formatOptimizeReport(report)}\n`);
  if (!report.written) throw new Error(`the optimized model failed the guard, nothing written: ${report.failures.join('; ')}`);
  return 0;
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
