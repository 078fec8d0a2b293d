/**
 * Tracing: the standard OpenTelemetry variables that turn on the runtime's request traces and send them to an OTLP
 * collector over HTTP. The runtime's SDK reads nothing else, and traces nothing unless an endpoint is set.
 */
import * as kplus from 'cdk8s-plus-27';
import { destinationUrl } from './network';

/** Where the runtime sends its traces, and how many requests it traces. */
export interface TracingOptions {
  /**
   * The OTLP/HTTP collector's base URL, http:// or https://, e.g. `http://otel-collector.observability.svc:4318`
   * (4318 is the port collectors listen on for OTLP/HTTP; without a port the scheme's, 80 or 443). No path: the
   * exporter appends `/v1/traces` itself. The NetworkPolicy lets the pods reach its port (on any host: a
   * NetworkPolicy cannot name hosts).
   */
  readonly endpoint: string;
  /**
   * Share of requests traced, from 0 to 1, decided per trace at the first service it enters. A request whose caller
   * sent a `traceparent` follows the caller's decision instead: a sampled parent is always traced here too, so one
   * trace is never cut off in the middle, and 0 traces only what callers sampled.
   * @default 0.1
   */
  readonly samplingRatio?: number;
  /**
   * The traces' `service.name`.
   * @default - the Service's name (`serviceName`, by default the model name as a DNS label), the name its metrics are selected by too
   */
  readonly serviceName?: string;
}

/** The exporter's protocol: OTLP as protobuf over HTTP, the one the runtime's exporter speaks. */
const OTLP_PROTOCOL = 'http/protobuf';
/** Follow a caller's sampled or unsampled `traceparent`; sample a share of the traces that start here. */
const SAMPLER = 'parentbased_traceidratio';
const DEFAULT_SAMPLING_RATIO = 0.1;

/** The variables `tracing` writes, and the prop that sets each, for messages. */
const WRITTEN = {
  // The pod's name and namespace from the downward API, so that OTEL_RESOURCE_ATTRIBUTES can refer to them.
  OTEL_RESOURCE_ATTRIBUTES_POD_NAME: undefined,
  OTEL_RESOURCE_ATTRIBUTES_POD_NAMESPACE: undefined,
  OTEL_EXPORTER_OTLP_ENDPOINT: 'tracing.endpoint',
  OTEL_EXPORTER_OTLP_PROTOCOL: undefined,
  OTEL_TRACES_SAMPLER: 'tracing.samplingRatio',
  OTEL_TRACES_SAMPLER_ARG: 'tracing.samplingRatio',
  OTEL_SERVICE_NAME: 'tracing.serviceName',
  OTEL_RESOURCE_ATTRIBUTES: undefined,
} as const satisfies Record<string, string | undefined>;

/** Variables that would override the written ones for traces alone: the SDK prefers a signal's own over the general. */
const TRACES_OVERRIDES = { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'tracing.endpoint', OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: undefined } as const;

/** The collector's URL, checked so that the exporter's own URL is `<endpoint>/v1/traces`. */
export function tracingEndpoint(value: string): URL {
  const url = destinationUrl('tracing.endpoint', value, 'they would sit in the pod spec in plain text; give the collector\'s credentials as env OTEL_EXPORTER_OTLP_HEADERS from a Secret (kplus.EnvValue.fromSecretValue)');
  // An empty path parses as '/'.
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw new Error(`'tracing.endpoint' ('${value}') must have no path, query or fragment: the exporter appends /v1/traces to it; give '${url.origin}'`);
  }
  return url;
}

/**
 * The runtime container's variables for `tracing`, in the order they must be written: the downward API ones before
 * OTEL_RESOURCE_ATTRIBUTES, which refers to them (`$(name)` expands only variables defined earlier in the list).
 */
export function tracingEnv(tracing: TracingOptions, defaultServiceName: string): Record<keyof typeof WRITTEN, kplus.EnvValue> {
  const ratio = tracing.samplingRatio ?? DEFAULT_SAMPLING_RATIO;
  if (typeof ratio !== 'number' || !Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    throw new Error(`'tracing.samplingRatio' (${ratio}) must be a number from 0 to 1, the share of requests traced (0.1 is one in ten); a caller's sampled traceparent is traced whatever it is`);
  }
  if (tracing.serviceName !== undefined && tracing.serviceName.trim() === '') throw new Error("'tracing.serviceName' must not be empty; leave it unset for the Service's name");
  const value = kplus.EnvValue.fromValue;
  return {
    OTEL_RESOURCE_ATTRIBUTES_POD_NAME: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_NAME),
    OTEL_RESOURCE_ATTRIBUTES_POD_NAMESPACE: kplus.EnvValue.fromFieldRef(kplus.EnvFieldPaths.POD_NAMESPACE),
    OTEL_EXPORTER_OTLP_ENDPOINT: value(tracingEndpoint(tracing.endpoint).origin),
    OTEL_EXPORTER_OTLP_PROTOCOL: value(OTLP_PROTOCOL),
    OTEL_TRACES_SAMPLER: value(SAMPLER),
    OTEL_TRACES_SAMPLER_ARG: value(String(ratio)),
    OTEL_SERVICE_NAME: value(tracing.serviceName ?? defaultServiceName),
    OTEL_RESOURCE_ATTRIBUTES: value('k8s.namespace.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAMESPACE),k8s.pod.name=$(OTEL_RESOURCE_ATTRIBUTES_POD_NAME)'),
  };
}

/**
 * The same variables in the Kubernetes API's own form, for objects whose containers cdk8s-plus does not build (a
 * KServe ServingRuntime): `{ name, value }`, or `{ name, valueFrom }` for the downward API ones.
 */
export function kubeTracingEnv(tracing: TracingOptions, defaultServiceName: string): { name: string; value?: string; valueFrom?: unknown }[] {
  return Object.entries(tracingEnv(tracing, defaultServiceName)).map(([name, env]) => (env.value !== undefined ? { name, value: env.value } : { name, valueFrom: env.valueFrom }));
}

/**
 * Refuses tracing variables given through `env`. A collector named there would get no NetworkPolicy egress and every
 * span would be dropped; with `tracing`, a variable it writes would be overridden without a word.
 */
export function checkTracingEnv(env: Record<string, kplus.EnvValue> | undefined, tracing: TracingOptions | undefined): void {
  const refused: Record<string, string | undefined> = tracing
    ? { ...WRITTEN, ...TRACES_OVERRIDES }
    : { OTEL_EXPORTER_OTLP_ENDPOINT: WRITTEN.OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: TRACES_OVERRIDES.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT };
  const name = Object.keys(env ?? {}).find((key) => Object.hasOwn(refused, key));
  if (name === undefined) return;
  const prop = refused[name];
  if (prop === 'tracing.endpoint') {
    throw new Error(`set the trace collector with 'tracing.endpoint', not env ${name}: the NetworkPolicy must allow its port`);
  }
  throw new Error(`env ${name} would override what 'tracing' writes; ${prop ? `set it with '${prop}'` : 'remove it from \'env\''}`);
}
