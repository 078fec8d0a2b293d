/**
 * Synth-time checks for values Kubernetes or the runtime would reject later, with messages that quote the prop,
 * the value and the fix (aws-cdk's rule): a bad value fails `cdk8s synth`, not a rollout.
 */
import type { Size } from 'cdk8s';
import type * as kplus from 'cdk8s-plus-27';
import type { IntegerSetting, NumberSetting, Setting } from '@modelship/contract';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const CPU = /^(\d+(\.\d+)?|\.\d+)(m)?$/;
const MEMORY = /^(\d+(\.\d+)?|\.\d+)([eE]\d+|Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/;
const SHA256 = /^[0-9a-f]{64}$/;

export function checkDnsLabel(prop: string, value: string): string {
  if (value.length > 63 || !DNS_LABEL.test(value)) {
    throw new Error(`'${prop}' ('${value}') must be a DNS label: at most 63 lower-case letters, digits and '-', starting and ending with a letter or digit`);
  }
  return value;
}

/** A model name: what the runtime accepts in URLs, and a valid label value (it labels every object). */
export function checkModelName(prop: string, value: string): string {
  if (!/^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$/.test(value)) {
    throw new Error(`'${prop}' ('${value}') must be 1 to 63 letters, digits, '_', '.' or '-', starting and ending with a letter or digit (it appears in URLs and labels)`);
  }
  return value;
}

/** A CPU prop as a quantity string: cdk8s-plus's Cpu, or a quantity string as given. */
export function cpuQuantity(value: string | kplus.Cpu): string {
  return typeof value === 'string' ? value : String(value.amount);
}

/** A memory or storage prop as a quantity string: cdk8s's Size in whole MiB or KiB, or a quantity string as given. */
export function byteQuantity(value: string | Size): string {
  if (typeof value === 'string') return value;
  const kibibytes = value.toKibibytes();
  return kibibytes % 1024 === 0 ? `${kibibytes / 1024}Mi` : `${kibibytes}Ki`;
}

/** A DNS name: dot-separated DNS labels, at most 253 characters, e.g. an Ingress host. */
export function checkDnsName(prop: string, value: string): string {
  if (value.length > 253 || !value.split('.').every((label) => label.length <= 63 && DNS_LABEL.test(label))) {
    throw new Error(`'${prop}' ('${value}') must be a DNS name of lower-case labels, e.g. 'fraud.models.example.com'`);
  }
  return value;
}

export function checkCpu(prop: string, value: string): string {
  if (!CPU.test(value) || Number.parseFloat(value) <= 0) {
    throw new Error(`'${prop}' ('${value}') is not a CPU quantity Kubernetes accepts; use cores ('2', '0.5') or millicores ('500m')`);
  }
  return value;
}

export function checkMemory(prop: string, value: string): string {
  return checkByteQuantity(prop, value, 'memory', "'512Mi', '2Gi' or '1G'");
}

/** An ephemeral-storage quantity: the same grammar as memory, named as storage so the message says what was meant. */
export function checkStorage(prop: string, value: string): string {
  return checkByteQuantity(prop, value, 'storage', "'256Mi', '2Gi' or '500M'");
}

function checkByteQuantity(prop: string, value: string, kind: string, examples: string): string {
  if (!MEMORY.test(value) || Number.parseFloat(value) <= 0) {
    throw new Error(`'${prop}' ('${value}') is not a ${kind} quantity Kubernetes accepts; use e.g. ${examples}`);
  }
  return value;
}

/** Bytes in a memory quantity, to compare a request with its limit. */
export function memoryBytes(value: string): number {
  const match = MEMORY.exec(value)!;
  const units: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
  const suffix = match[3] ?? '';
  const scale = /^[eE]\d+$/.test(suffix) ? 10 ** Number(suffix.slice(1)) : units[suffix] ?? 1;
  return Number.parseFloat(match[1]) * scale;
}

/** Cores in a CPU quantity. */
export function cpuCores(value: string): number {
  return value.endsWith('m') ? Number.parseFloat(value) / 1000 : Number.parseFloat(value);
}

export function checkSha256(prop: string, value: string): string {
  if (!SHA256.test(value)) {
    throw new Error(`'${prop}' ('${value}') must be the file's sha256 as 64 lower-case hex digits, e.g. from \`sha256sum model.onnx\``);
  }
  return value;
}

/** A prop that becomes a runtime flag must be within the flag's bounds (lib/contract/settings.ts). */
export function checkSetting(prop: string, value: number, setting: IntegerSetting | NumberSetting): number {
  const integer = setting.kind === 'integer';
  if (typeof value !== 'number' || !(integer ? Number.isInteger(value) : Number.isFinite(value)) || value < setting.min || value > setting.max) {
    throw new Error(`'${prop}' (${value}) must be ${integer ? 'an integer' : 'a number'} from ${setting.min} to ${setting.max} (the runtime's --${setting.flag})`);
  }
  return value;
}

/** A prop's value as its flag takes it, checked against the setting's bounds or choices. */
export function settingValue(prop: string, setting: Setting, value: number | string | boolean): string {
  switch (setting.kind) {
    case 'integer':
    case 'number':
      return String(checkSetting(prop, value as number, setting));
    case 'string':
      if (setting.choices && !setting.choices.includes(value as string)) {
        throw new Error(`'${prop}' ('${value}') must be one of ${setting.choices.map((c) => `'${c}'`).join(', ')}`);
      }
      return String(value);
    case 'boolean':
      return String(value);
    default:
      throw new Error(`'${prop}' is a list setting; it has its own prop`);
  }
}

export function checkPositiveInteger(prop: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`'${prop}' (${value}) must be a positive integer`);
  return value;
}

/** A key of a Secret or ConfigMap (`kind` says which, for the message): what the API server accepts as one. */
export function checkDataKey(prop: string, key: string, kind: 'a Secret' | 'a Secret or ConfigMap'): string {
  if (!/^[-._a-zA-Z0-9]+$/.test(key)) throw new Error(`'${prop}' ('${key}') must be ${kind} key: letters, digits, '-', '_' and '.'`);
  return key;
}
