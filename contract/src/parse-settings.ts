/**
 * Reads argv and environment variables against a settings table (settings.ts): the runtime parses its command
 * line with it, and the constructs read back the flags a container was given with the same code.
 */
import { parseArgs } from 'node:util';
import type { Setting } from './settings';
import { UsageError } from './usage-error';

type ValueOf<S extends Setting> = S extends { kind: 'integer' } ? number
  : S extends { kind: 'number'; default: number } ? number
  : S extends { kind: 'number' } ? number | undefined
  : S extends { kind: 'string'; choices: readonly (infer C)[] } ? C
  : S extends { kind: 'boolean' } ? boolean
  : S extends { kind: 'list' } ? string[]
  : S extends { default: string } ? string : string | undefined;

/** The parsed values of a settings table. */
export type SettingsOf<T extends Record<string, Setting>> = { -readonly [K in keyof T]: ValueOf<T[K]> };

/** Parses argv against a settings table, with the environment as fallback and the table's defaults last. */
export function parseSettings<T extends Record<string, Setting>>(table: T, argv: readonly string[], env: Readonly<Record<string, string | undefined>>): SettingsOf<T> {
  return parseCommandLine(table, argv, env, false).settings;
}

/** parseSettings for a command that also takes operands (`modelship optimize IN.onnx --out ...`): they come back in order. */
export function parseCommandLine<T extends Record<string, Setting>>(
  table: T, argv: readonly string[], env: Readonly<Record<string, string | undefined>>, allowPositionals = true,
): { settings: SettingsOf<T>; positionals: string[] } {
  const options: Record<string, { type: 'string' | 'boolean'; multiple?: boolean }> = {};
  for (const setting of Object.values(table)) {
    options[setting.flag] = { type: 'string', multiple: setting.kind === 'list' };
    // node:util parseArgs has no negated booleans on Node 20; --no-warmup is spelled out.
    if (setting.kind === 'boolean') options[`no-${setting.flag}`] = { type: 'boolean' };
  }
  let values: Record<string, unknown>;
  let positionals: string[];
  try {
    // A boolean given bare (`--fp16`) means true; `--fp16 false`, `--fp16=false` and `--no-fp16` still say false.
    const booleans = new Set(Object.values(table).filter((setting) => setting.kind === 'boolean').map((setting) => `--${setting.flag}`));
    const args = argv.map((arg, i) => (booleans.has(arg) && !BOOLEAN_WORDS.has(String(argv[i + 1]).toLowerCase()) ? `${arg}=true` : arg));
    ({ values, positionals } = parseArgs({ args, options, strict: true, allowPositionals }));
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]);
  }
  const settings: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(table)) {
    if (setting.kind === 'boolean' && values[`no-${setting.flag}`]) {
      settings[key] = false;
      continue;
    }
    const fromFlag = values[setting.flag];
    const source = fromFlag !== undefined ? `--${setting.flag}` : setting.env;
    const raw = fromFlag ?? env[setting.env];
    settings[key] = raw === undefined || raw === '' ? defaultOf(setting) : parseSetting(setting, raw as string | string[], source);
  }
  return { settings: settings as SettingsOf<T>, positionals };
}

const TRUE_WORDS = ['true', '1', 'yes'];
const FALSE_WORDS = ['false', '0', 'no'];
const BOOLEAN_WORDS = new Set([...TRUE_WORDS, ...FALSE_WORDS]);

function defaultOf(setting: Setting): unknown {
  return setting.kind === 'list' ? [] : setting.default;
}

/** Parses one raw value against its setting; `source` names the flag or variable in error messages. */
export function parseSetting(setting: Setting, raw: string | string[], source: string): unknown {
  switch (setting.kind) {
    case 'list': {
      const items = Array.isArray(raw) ? raw : raw.split(',');
      return items.map((item) => item.trim()).filter((item) => item.length > 0);
    }
    case 'integer':
      return checkInteger(setting.min, setting.max, Array.isArray(raw) ? raw[0] : raw, source);
    case 'number':
      return checkNumber(setting.min, setting.max, Array.isArray(raw) ? raw[0] : raw, source);
    case 'boolean': {
      const value = String(raw).toLowerCase();
      if (TRUE_WORDS.includes(value)) return true;
      if (FALSE_WORDS.includes(value)) return false;
      throw new UsageError(`${source} must be true or false, received '${raw}'`);
    }
    case 'string': {
      const value = String(raw);
      if (setting.choices && !setting.choices.includes(value)) {
        throw new UsageError(`${source} must be one of ${setting.choices.join(', ')}, received '${value}'`);
      }
      return value;
    }
  }
}

/** A decimal number within a setting's bounds, from a flag's text or a number. */
export function checkNumber(min: number, max: number, raw: unknown, source: string): number {
  const value = typeof raw === 'number' ? raw : /^-?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i.test(String(raw).trim()) ? Number(raw) : Number.NaN;
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new UsageError(`${source} must be a number from ${min} to ${max}, received '${raw}'`);
  }
  return value;
}

/** An integer within a setting's bounds, from a flag's text or a config file's number. */
export function checkInteger(min: number, max: number, raw: unknown, source: string): number {
  const value = typeof raw === 'number' ? raw : /^-?\d+$/.test(String(raw).trim()) ? Number(raw) : Number.NaN;
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new UsageError(`${source} must be an integer from ${min} to ${max}, received '${raw}'`);
  }
  return value;
}
