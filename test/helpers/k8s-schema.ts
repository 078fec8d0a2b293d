/**
 * Offline, strict schema checks for synthesized Kubernetes manifests (no API server, no network).
 *
 * `validateManifest(obj)` returns readable problems, each `<json path>: <what is wrong>` (empty = valid);
 * `assertValidManifests(objs)` throws one error listing every problem of every object, prefixed `Kind/name`.
 *
 * Built-in kinds (any apiVersion/kind that both sources below know) get three checks:
 *  1. a strict walk over the model type maps of `@kubernetes/client-node` 1.4 (OpenAPI v1.34.0 models): every key
 *     must be a field of its model (unknown fields fail) and every value must have the model's type (string,
 *     integer with int32 range, number, boolean, RFC 3339 date, IntOrString, Quantity, base64 `byte`, arrays, maps).
 *  2. the precompiled JSON-schema validators of `kubernetes-models` 4.4.2, which is generated from the Kubernetes
 *     v1.27.1 OpenAPI spec: required fields, types, enums, formats (quantity, int-or-string, ...).
 *  3. the same 1.27 validators watched through a Proxy: an object whose schema lists properties but that has a key
 *     the validator never looked at holds a field unknown to 1.27 (this catches fields added after 1.27, which
 *     the 1.34 models of step 1 accept, e.g. `containers[].restartPolicy`).
 *
 * Custom resources (`CRD_PACKAGES`: KEDA, prometheus-operator) get steps 2 and 3 with the CRD models of
 * `@kubernetes-models/keda` / `@kubernetes-models/prometheus-operator` (their schemas do not set
 * additionalProperties, so step 3 is what rejects unknown fields there). Objects whose schema is free-form
 * (x-kubernetes-preserve-unknown-fields, maps) are not checked for unknown keys.
 *
 * Custom resources of groups with no model package (`VENDORED_CRDS`: the Gateway API, Flagger, Argo Rollouts, KServe) get steps 2 and 3 with the
 * `openAPIV3Schema` of an upstream CRD file vendored under test/fixtures/crds/<project>-<version>[-<channel>]/ (each
 * folder's README names the release), compiled with ajv. CEL rules (`x-kubernetes-validations`) are not evaluated.
 *
 * Anything else is a problem (`no schema for ...`), never silently valid.
 *
 * All those packages but kubernetes-models 4.4.2 are ES modules; they are loaded with a synchronous require(),
 * which Node has without flags since 20.19 (the project's CI runs Node 20.20).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as YAML from 'yaml';
import { REPO_ROOT } from './paths';

/** The Kubernetes version whose OpenAPI schema the `kubernetes-models` validators come from. */
export const KUBERNETES_SCHEMA_VERSION = '1.27';

/** API groups served by CRD model packages (npm names). Add a group here to validate more custom resources. */
export const CRD_PACKAGES: Readonly<Record<string, string>> = {
  'keda.sh': '@kubernetes-models/keda',
  'eventing.keda.sh': '@kubernetes-models/keda',
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
};

/**
 * API groups served by CRD files vendored from an upstream release: group -> folder under test/fixtures/crds, named
 * `<project>-<version>[-<channel>]`. Add a group here (and its folder) to validate more custom resources.
 */
export const VENDORED_CRDS: Readonly<Record<string, string>> = {
  'gateway.networking.k8s.io': 'gateway-api-v1.3.0-standard',
  'flagger.app': 'flagger-v1.44.0',
  'argoproj.io': 'argo-rollouts-v1.9.1',
  'serving.kserve.io': 'kserve-v0.20.0',
};

/**
 * client-node types Quantity fields as plain strings; the API also takes JSON numbers there. `Model.field` names
 * (client-node class names) whose values, or map values, are resource.Quantity.
 */
export const QUANTITY_FIELDS: ReadonlySet<string> = new Set([
  'V1ContainerStatus.allocatedResources',
  'V1EmptyDirVolumeSource.sizeLimit',
  'V1LimitRangeItem.default',
  'V1LimitRangeItem.defaultRequest',
  'V1LimitRangeItem.max',
  'V1LimitRangeItem.maxLimitRequestRatio',
  'V1LimitRangeItem.min',
  'V1NodeStatus.allocatable',
  'V1NodeStatus.capacity',
  'V1Overhead.podFixed',
  'V1PersistentVolumeClaimStatus.allocatedResources',
  'V1PersistentVolumeClaimStatus.capacity',
  'V1PersistentVolumeSpec.capacity',
  'V1PodSpec.overhead',
  'V1ResourceFieldSelector.divisor',
  'V1ResourceQuotaSpec.hard',
  'V1ResourceQuotaStatus.hard',
  'V1ResourceQuotaStatus.used',
  'V1ResourceRequirements.limits',
  'V1ResourceRequirements.requests',
  'V1VolumeResourceRequirements.limits',
  'V1VolumeResourceRequirements.requests',
  'V1CSIStorageCapacity.capacity',
  'V1CSIStorageCapacity.maximumVolumeSize',
  'V2HPAScalingRules.tolerance',
  'V2MetricTarget.averageValue',
  'V2MetricTarget.value',
  'V2MetricValueStatus.averageValue',
  'V2MetricValueStatus.value',
]);

type Segment = string | number;

interface Problem {
  path: Segment[];
  message: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Loading the model packages

interface AttributeType {
  name: string;
  baseName: string;
  type: string;
  format: string;
}

type ModelClass = { attributeTypeMap?: AttributeType[] };

/** An ajv error, as the precompiled validators report it. */
interface AjvError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/** A kubernetes-models class: `prototype.validate()` runs the compiled validator on `this` and throws on errors. */
interface KmClass {
  apiVersion?: unknown;
  kind?: unknown;
  prototype: { validate(this: unknown): void };
}

function loadModule(path: string): Record<string, unknown> {
  try {
    return require(path) as Record<string, unknown>;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ERR_REQUIRE_ESM') {
      throw new Error(`k8s-schema needs require() of ES modules (Node >= 20.19; this is ${process.version}): ${path}`);
    }
    throw error;
  }
}

const packageDirs = new Map<string, string>();
function packageDir(name: string): string {
  let dir = packageDirs.get(name);
  if (dir) return dir;
  for (const base of require.resolve.paths(name) ?? []) {
    if (existsSync(join(base, name, 'package.json'))) {
      dir = join(base, name);
      break;
    }
  }
  if (!dir) throw new Error(`k8s-schema: package ${name} is not installed (npm install)`);
  packageDirs.set(name, dir);
  return dir;
}

let clientNodeModels: Record<string, ModelClass> | undefined;
function clientNode(): Record<string, ModelClass> {
  clientNodeModels ??= loadModule(
    join(packageDir('@kubernetes/client-node'), 'dist', 'gen', 'models', 'ObjectSerializer.js'),
  ) as Record<string, ModelClass>;
  return clientNodeModels;
}

function kmClassIn(mod: Record<string, unknown> | undefined, apiVersion: string, kind: string): KmClass | undefined {
  const cls = mod?.[kind];
  if (typeof cls !== 'function') return undefined;
  const km = cls as unknown as KmClass;
  return km.apiVersion === apiVersion && km.kind === kind ? km : undefined;
}

const SAFE_SEGMENT = /^[A-Za-z0-9][A-Za-z0-9.-]*$/;
const SAFE_KIND = /^[A-Z][A-Za-z0-9]*$/;

/** The kubernetes-models (Kubernetes 1.27.1) class for a built-in kind. */
function kubernetesModelsClass(apiVersion: string, kind: string): KmClass | undefined {
  if (!apiVersion.split('/').every((s) => SAFE_SEGMENT.test(s)) || !SAFE_KIND.test(kind)) return undefined;
  let mod: Record<string, unknown> | undefined;
  try {
    mod = require(`kubernetes-models/${apiVersion}/${kind}`) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  return kmClassIn(mod, apiVersion, kind);
}

/** The CRD model class for a custom resource, from the package that `CRD_PACKAGES` names for its group. */
function crdClass(pkg: string, apiVersion: string, kind: string): KmClass | undefined {
  if (!apiVersion.split('/').every((s) => SAFE_SEGMENT.test(s)) || !SAFE_KIND.test(kind)) return undefined;
  const file = join(packageDir(pkg), ...apiVersion.split('/'), `${kind}.js`);
  if (!existsSync(file)) return undefined;
  return kmClassIn(loadModule(file), apiVersion, kind);
}

interface VendoredCrd {
  readonly spec: {
    readonly group: string;
    readonly names: { readonly kind: string };
    readonly versions: ReadonlyArray<{ readonly name: string; readonly served: boolean; readonly schema?: { readonly openAPIV3Schema?: object } }>;
  };
}

type AjvValidate = ((data: unknown) => boolean) & { errors?: AjvError[] | null };
type AjvInstance = { compile(schema: object): AjvValidate; addFormat(name: string, format: object): unknown };

let ajvInstance: AjvInstance | undefined;
/** One ajv for every vendored CRD: all errors (so that step 3 sees every key read), CRD formats, x- keywords allowed. */
function crdAjv(): AjvInstance {
  if (ajvInstance) return ajvInstance;
  const Ajv = (require('ajv') as { default: new (options: object) => AjvInstance }).default;
  const ajv = new Ajv({ allErrors: true, strict: false });
  ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= INT32[0] && n <= INT32[1] });
  ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
  ajv.addFormat('date-time', { type: 'string', validate: (s: string) => RFC3339.test(s) });
  return (ajvInstance = ajv);
}

const vendoredFolders = new Map<string, VendoredCrd[]>();
function vendoredCrds(folder: string): VendoredCrd[] {
  let crds = vendoredFolders.get(folder);
  if (crds) return crds;
  const dir = join(REPO_ROOT, 'test', 'fixtures', 'crds', folder);
  crds = readdirSync(dir).filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => YAML.parseAllDocuments(readFileSync(join(dir, f), 'utf8')).map((d) => d.toJS() as VendoredCrd));
  vendoredFolders.set(folder, crds);
  return crds;
}

/** The validator of a served version's openAPIV3Schema from a vendored CRD, in the shape of a kubernetes-models class. */
function vendoredCrdClass(folder: string, apiVersion: string, kind: string): KmClass | undefined {
  const [group, version] = apiVersion.split('/');
  const crd = vendoredCrds(folder).find((c) => c.spec.group === group && c.spec.names.kind === kind);
  const schema = crd?.spec.versions.find((v) => v.name === version && v.served)?.schema?.openAPIV3Schema;
  if (!schema) return undefined;
  const validate = crdAjv().compile(schema);
  return {
    apiVersion, kind,
    prototype: {
      validate(this: unknown) {
        if (!validate(this)) throw Object.assign(new Error(`${kind} does not match its CRD schema`), { errors: validate.errors ?? [] });
      },
    },
  };
}

const capitalize = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** client-node names kinds `V1Deployment`, or `CoreV1Event` / `EventsV1Event` where two groups share a name. */
function clientNodeTypeName(apiVersion: string, kind: string): string | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/', 2) : ['core', apiVersion];
  const models = clientNode();
  for (const name of [`${capitalize(group.split('.')[0])}${capitalize(version)}${kind}`, `${capitalize(version)}${kind}`]) {
    const attrs = models[name]?.attributeTypeMap;
    if (attrs?.some((a) => a.baseName === 'kind') && attrs.some((a) => a.baseName === 'apiVersion')) return name;
  }
  return undefined;
}

interface Schema {
  clientNodeType?: string;
  km: KmClass;
  /** label for unknown fields that only the kubernetes-models schema knows of */
  unknownSuffix: string;
}

const schemas = new Map<string, Schema | string>();

/** The schema for apiVersion+kind, or the reason there is none. */
function schemaFor(apiVersion: string, kind: string): Schema | string {
  const key = `${apiVersion} ${kind}`;
  let schema = schemas.get(key);
  if (schema !== undefined) return schema;
  const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
  const pkg = CRD_PACKAGES[group];
  const folder = VENDORED_CRDS[group];
  if (folder) {
    const km = vendoredCrdClass(folder, apiVersion, kind);
    schema = km ? { km, unknownSuffix: '' } : `no schema for ${apiVersion} ${kind} (not a served kind of the CRDs in test/fixtures/crds/${folder})`;
  } else if (pkg) {
    const km = crdClass(pkg, apiVersion, kind);
    schema = km ? { km, unknownSuffix: '' } : `no schema for ${apiVersion} ${kind} (not a kind of ${pkg})`;
  } else {
    const km = kubernetesModelsClass(apiVersion, kind);
    const clientNodeType = clientNodeTypeName(apiVersion, kind);
    if (km && clientNodeType) {
      schema = { km, clientNodeType, unknownSuffix: ` (not in the Kubernetes ${KUBERNETES_SCHEMA_VERSION} schema)` };
    } else if (clientNodeType) {
      schema = `no schema for ${apiVersion} ${kind} in Kubernetes ${KUBERNETES_SCHEMA_VERSION}`;
    } else if (km) {
      schema = `no schema for ${apiVersion} ${kind} (kubernetes-models has it, @kubernetes/client-node 1.4 does not: removed since ${KUBERNETES_SCHEMA_VERSION}?)`;
    } else {
      schema = `no schema for ${apiVersion} ${kind}`;
    }
  }
  schemas.set(key, schema);
  return schema;
}

// ---------------------------------------------------------------------------------------------------------------
// Paths and values in messages

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function formatPath(path: readonly Segment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (IDENTIFIER.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out || '(root)';
}

function parsePointer(pointer: string): string[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function valueAt(root: unknown, path: readonly Segment[]): unknown {
  let cur = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

/** Turns the string segments of a JSON pointer that index arrays into numbers, so paths print as `a[0]`. */
function typedPath(root: unknown, segs: readonly string[]): Segment[] {
  const out: Segment[] = [];
  let cur = root;
  for (const seg of segs) {
    const isIndex = Array.isArray(cur) && /^\d+$/.test(seg);
    out.push(isIndex ? Number(seg) : seg);
    cur = cur !== null && typeof cur === 'object' ? (cur as Record<string, unknown>)[seg] : undefined;
  }
  return out;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)}`;
  if (typeof value === 'number') return Number.isInteger(value) ? `integer ${value}` : `number ${value}`;
  if (typeof value === 'object') return 'object';
  return `${typeof value} ${String(value)}`;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0];
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j];
      dp[j] = Math.min(dp[j] + 1, dp[j - 1] + 1, prev + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length];
}

function unknownField(key: string, known: Iterable<string>, suffix = ''): string {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(key, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  const hint = best !== undefined && bestDistance <= Math.max(1, Math.min(3, Math.floor(key.length / 3))) ? ` (did you mean "${best}"?)` : '';
  return `unknown field${suffix}${hint}`;
}

// ---------------------------------------------------------------------------------------------------------------
// 1. Strict walk over @kubernetes/client-node model type maps

const ARRAY = /^Array<(.+)>$/;
const MAP = /^\{ \[key: string\]: (.+); \}$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const INT32 = [-(2 ** 31), 2 ** 31 - 1] as const;

interface WalkContext {
  models: Record<string, ModelClass>;
  problems: Problem[];
}

function walk(ctx: WalkContext, value: unknown, type: string, format: string, path: Segment[], quantity: boolean): void {
  const fail = (expected: string): void => {
    ctx.problems.push({ path, message: `expected ${expected}, got ${describe(value)}` });
  };
  const stripped = type.replace(/ \| (null|undefined)$/, '');
  if (stripped !== type) return walk(ctx, value, stripped, format, path, quantity);

  let m = ARRAY.exec(type);
  if (m) {
    if (!Array.isArray(value)) return fail('array');
    value.forEach((item, i) => walk(ctx, item, m![1], format, [...path, i], quantity));
    return;
  }
  m = MAP.exec(type);
  if (m) {
    if (!isPlainObject(value)) return fail('object (a map)');
    for (const [key, item] of Object.entries(value)) {
      if (item !== undefined) walk(ctx, item, m[1], format, [...path, key], quantity);
    }
    return;
  }
  switch (type) {
    case 'any':
      return;
    case 'string':
      if (quantity) {
        if (typeof value !== 'string' && !(typeof value === 'number' && Number.isFinite(value))) fail('quantity (string or number)');
        return;
      }
      if (typeof value !== 'string') return fail('string');
      if (format === 'byte' && !BASE64.test(value)) fail('base64 string');
      return;
    case 'number':
    case 'integer':
    case 'long':
    case 'double':
    case 'float':
      if (typeof value !== 'number' || !Number.isFinite(value)) return fail(format === 'int32' || format === 'int64' ? 'integer' : 'number');
      if ((format === 'int32' || format === 'int64') && !Number.isInteger(value)) return fail('integer');
      if (format === 'int32' && (value < INT32[0] || value > INT32[1])) fail('int32');
      return;
    case 'boolean':
      if (typeof value !== 'boolean') fail('boolean');
      return;
    case 'Date':
    case 'V1MicroTime':
      if (typeof value !== 'string' || !RFC3339.test(value)) fail('RFC 3339 date-time string');
      return;
    case 'IntOrString':
      if (typeof value !== 'string' && !(typeof value === 'number' && Number.isInteger(value))) fail('integer or string');
      return;
  }
  const model = ctx.models[type];
  const attrs = model?.attributeTypeMap;
  if (!attrs) {
    ctx.problems.push({ path, message: `k8s-schema: no client-node model ${type}` });
    return;
  }
  if (!isPlainObject(value)) return fail(`object (${type})`);
  for (const [key, item] of Object.entries(value)) {
    const attr = attrs.find((a) => a.baseName === key);
    if (!attr) {
      ctx.problems.push({ path: [...path, key], message: unknownField(key, attrs.map((a) => a.baseName)) });
      continue;
    }
    if (item === undefined || item === null) continue; // unset (the API server treats null as absent)
    walk(ctx, item, attr.type, attr.format, [...path, key], QUANTITY_FIELDS.has(`${type}.${key}`));
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 2 + 3. kubernetes-models validators, watched for the keys they read

/** Wraps objects in Proxies that record, per object, the string keys read from it. */
class ReadTracker {
  readonly reads = new WeakMap<object, Set<string>>();
  private readonly proxies = new WeakMap<object, object>();

  wrap<T>(value: T): T {
    if (value === null || typeof value !== 'object') return value;
    const target = value as unknown as object;
    let proxy = this.proxies.get(target);
    if (!proxy) {
      const reads = new Set<string>();
      this.reads.set(target, reads);
      proxy = new Proxy(target, {
        get: (t, key, receiver) => {
          if (typeof key === 'string') reads.add(key);
          return this.wrap(Reflect.get(t, key, receiver));
        },
        has: (t, key) => {
          if (typeof key === 'string') reads.add(key);
          return Reflect.has(t, key);
        },
      });
      this.proxies.set(target, proxy);
    }
    return proxy as T;
  }
}

/**
 * Keys of objects the validator looked into (it read at least one key: its schema lists properties) that it never
 * read: fields the schema does not have. Objects it did not look into are free-form and are not descended into.
 */
function unreadKeys(tracker: ReadTracker, value: unknown, path: Segment[], out: Problem[], suffix: string): void {
  if (Array.isArray(value)) {
    if (!tracker.reads.has(value)) return;
    value.forEach((item, i) => unreadKeys(tracker, item, [...path, i], out, suffix));
    return;
  }
  if (!isPlainObject(value)) return;
  const reads = tracker.reads.get(value);
  if (!reads || reads.size === 0) return;
  for (const [key, item] of Object.entries(value)) {
    if (item === undefined) continue;
    if (!reads.has(key)) out.push({ path: [...path, key], message: unknownField(key, reads, suffix) });
    else unreadKeys(tracker, item, [...path, key], out, suffix);
  }
}

function runValidator(km: KmClass, data: unknown, tracker: ReadTracker): AjvError[] {
  try {
    km.prototype.validate.call(tracker.wrap(data));
    return [];
  } catch (error) {
    const errors = (error as { errors?: AjvError[] }).errors;
    if (!Array.isArray(errors)) throw error;
    return errors;
  }
}

function ajvProblems(root: unknown, errors: AjvError[]): Problem[] {
  const byPath = new Map<string, AjvError[]>();
  for (const e of errors) {
    const list = byPath.get(e.instancePath) ?? [];
    list.push(e);
    byPath.set(e.instancePath, list);
  }
  const problems: Problem[] = [];
  const seen = new Set<string>();
  const add = (path: Segment[], message: string) => {
    const key = `${formatPath(path)}: ${message}`;
    if (!seen.has(key)) {
      seen.add(key);
      problems.push({ path, message });
    }
  };
  for (const [pointer, list] of byPath) {
    const path = typedPath(root, parsePointer(pointer));
    const value = valueAt(root, path);
    const alternatives = list.some((e) => e.keyword === 'oneOf' || e.keyword === 'anyOf');
    if (alternatives) {
      const options = list
        .filter((e) => e.keyword === 'type' || e.keyword === 'format')
        .map((e) => (e.keyword === 'type' ? String(e.params.type) : `string in ${String(e.params.format)} format`));
      add(path, `expected ${options.length ? [...new Set(options)].join(' or ') : 'a value matching the schema'}, got ${describe(value)}`);
    }
    for (const e of list) {
      if (alternatives && ['oneOf', 'anyOf', 'type', 'format'].includes(e.keyword)) continue;
      switch (e.keyword) {
        case 'required':
          add([...path, String(e.params.missingProperty)], 'missing required field');
          break;
        case 'type':
          add(path, `expected ${String(e.params.type).replace(/,null$/, '')}, got ${describe(value)}`);
          break;
        case 'enum':
          add(path, `must be one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}, got ${describe(value)}`);
          break;
        case 'format':
          add(path, `must be in ${String(e.params.format)} format, got ${describe(value)}`);
          break;
        case 'pattern':
          add(path, `must match the pattern ${String(e.params.pattern)}, got ${describe(value)}`);
          break;
        case 'additionalProperties':
          add([...path, String(e.params.additionalProperty)], 'unknown field');
          break;
        default:
          add(path, e.message ?? `fails ${e.keyword} ${JSON.stringify(e.params)}`);
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------------------------
// Public API

const isUnder = (path: string, prefix: string) =>
  path === prefix || path.startsWith(`${prefix}.`) || path.startsWith(`${prefix}[`) || prefix === '(root)';

/** Problems with one manifest object, each `<path>: <problem>`; empty when it is valid. */
export function validateManifest(obj: unknown): string[] {
  if (!isPlainObject(obj)) return [`(root): expected a Kubernetes object, got ${describe(obj)}`];
  const { apiVersion, kind } = obj;
  if (typeof apiVersion !== 'string' || typeof kind !== 'string' || !apiVersion || !kind) {
    return [
      ...(typeof apiVersion === 'string' && apiVersion ? [] : [`apiVersion: expected a non-empty string, got ${describe(apiVersion)}`]),
      ...(typeof kind === 'string' && kind ? [] : [`kind: expected a non-empty string, got ${describe(kind)}`]),
    ];
  }
  const schema = schemaFor(apiVersion, kind);
  if (typeof schema === 'string') return [`(root): ${schema}`];

  let data: Record<string, unknown>;
  try {
    data = structuredClone(obj); // own copy: no shared sub-objects, so reads are tracked per position
  } catch (error) {
    return [`(root): not plain JSON data (${(error as Error).message})`];
  }

  const first: Problem[] = [];
  if (schema.clientNodeType) {
    walk({ models: clientNode(), problems: first }, data, schema.clientNodeType, '', [], false);
  }
  const tracker = new ReadTracker();
  const errors = runValidator(schema.km, data, tracker);
  const later = ajvProblems(data, errors);
  unreadKeys(tracker, data, [], later, schema.unknownSuffix);

  const firstPaths = first.map((p) => formatPath(p.path));
  const lines = first.map((p, i) => `${firstPaths[i]}: ${p.message}`);
  for (const p of later) {
    const path = formatPath(p.path);
    if (firstPaths.some((f) => isUnder(path, f))) continue; // already reported by the client-node walk
    const line = `${path}: ${p.message}`;
    if (!lines.includes(line)) lines.push(line);
  }
  return lines;
}

function label(obj: unknown, index: number): string {
  if (!isPlainObject(obj)) return `#${index}`;
  const kind = typeof obj.kind === 'string' ? obj.kind : '(no kind)';
  const metadata = isPlainObject(obj.metadata) ? obj.metadata : {};
  const name = typeof metadata.name === 'string' ? metadata.name : `#${index}`;
  return `${kind}/${name}`;
}

/** Throws an Error listing every problem of every object (`Kind/name: path: problem`) unless all are valid. */
export function assertValidManifests(objs: readonly unknown[]): void {
  if (!Array.isArray(objs)) throw new TypeError('assertValidManifests: expected an array of manifest objects');
  const lines: string[] = [];
  let bad = 0;
  objs.forEach((obj, i) => {
    const problems = validateManifest(obj);
    if (problems.length) bad++;
    for (const p of problems) lines.push(`${label(obj, i)}: ${p}`);
  });
  if (lines.length) {
    throw new Error(
      `${lines.length} schema problem(s) in ${bad} of ${objs.length} manifest(s) (Kubernetes ${KUBERNETES_SCHEMA_VERSION}):\n  ${lines.join('\n  ')}`,
    );
  }
}
