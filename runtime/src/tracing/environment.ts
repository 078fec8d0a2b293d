/**
 * Tracing is configured only by OpenTelemetry's standard variables, so that a platform team's collector settings
 * (often injected into every pod) apply unchanged. This reads and checks them once at start-up: a variable the
 * runtime cannot honour ends the start with the variable, its value and what it accepts, instead of a silent
 * fallback that would leave the team without the traces it asked for.
 */
import { UsageError } from '@modelship/contract';

/** The samplers OTEL_TRACES_SAMPLER names, as the OpenTelemetry SDKs spell them. */
export const SAMPLERS = [
  'always_on', 'always_off', 'traceidratio', 'parentbased_always_on', 'parentbased_always_off', 'parentbased_traceidratio',
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

/** The one OTLP transport the runtime ships: protobuf over HTTP (port 4318), what collectors accept by default. */
export const OTLP_PROTOCOL = 'http/protobuf';

export interface TracingConfig {
  /** Where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as given, or OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces. */
  readonly endpoint: string;
  readonly sampler: SamplerName;
  /** The share of new traces kept by the ratio samplers. */
  readonly ratio: number;
  /** The batch span processor's settings (OTEL_BSP_*); undefined leaves the SDK's default. */
  readonly batch: {
    readonly scheduledDelayMillis?: number;
    readonly maxQueueSize?: number;
    readonly maxExportBatchSize?: number;
    readonly exportTimeoutMillis?: number;
  };
}

type Environment = Readonly<Record<string, string | undefined>>;

/** The tracing configuration the environment asks for; undefined when tracing is off (no endpoint, or disabled). */
export function tracingConfig(env: Environment = process.env): TracingConfig | undefined {
  if (parseBoolean(env, 'OTEL_SDK_DISABLED')) return undefined;
  const exporter = value(env, 'OTEL_TRACES_EXPORTER');
  if (exporter === 'none') return undefined;
  const endpoint = tracesEndpoint(env);
  if (endpoint === undefined) return undefined;
  if (exporter !== undefined && exporter !== 'otlp') {
    throw new UsageError(`OTEL_TRACES_EXPORTER is '${exporter}'; this runtime exports traces over OTLP only: set it to 'otlp' (or 'none' to turn tracing off)`);
  }
  for (const name of ['OTEL_EXPORTER_OTLP_TRACES_PROTOCOL', 'OTEL_EXPORTER_OTLP_PROTOCOL']) {
    const protocol = value(env, name);
    if (protocol !== undefined && protocol !== OTLP_PROTOCOL) {
      throw new UsageError(`${name} is '${protocol}'; this runtime sends OTLP as ${OTLP_PROTOCOL} only: set it to '${OTLP_PROTOCOL}' and point the endpoint at the collector's HTTP port (4318 by default)`);
    }
  }
  const sampler = value(env, 'OTEL_TRACES_SAMPLER') ?? 'parentbased_always_on';
  if (!(SAMPLERS as readonly string[]).includes(sampler)) {
    throw new UsageError(`OTEL_TRACES_SAMPLER is '${sampler}'; use one of ${SAMPLERS.join(', ')}`);
  }
  return {
    endpoint,
    sampler: sampler as SamplerName,
    ratio: samplerRatio(env, sampler),
    batch: {
      scheduledDelayMillis: positiveInteger(env, 'OTEL_BSP_SCHEDULE_DELAY'),
      maxQueueSize: positiveInteger(env, 'OTEL_BSP_MAX_QUEUE_SIZE'),
      maxExportBatchSize: positiveInteger(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE'),
      exportTimeoutMillis: positiveInteger(env, 'OTEL_BSP_EXPORT_TIMEOUT'),
    },
  };
}

function tracesEndpoint(env: Environment): string | undefined {
  const signal = value(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const base = value(env, 'OTEL_EXPORTER_OTLP_ENDPOINT');
  const [name, raw] = signal !== undefined ? ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', signal] : ['OTEL_EXPORTER_OTLP_ENDPOINT', base];
  if (raw === undefined) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError(`${name} is '${raw}', not a URL; give the collector's OTLP/HTTP address, e.g. http://otel-collector.observability:4318`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`${name} is '${raw}'; OTLP/HTTP needs an http:// or https:// URL, e.g. http://otel-collector.observability:4318`);
  }
  // The signal-specific variable is the full URL; the general one is a base to which the signal's path is added.
  return signal !== undefined ? url.href : `${url.href.replace(/\/$/, '')}/v1/traces`;
}

function samplerRatio(env: Environment, sampler: string): number {
  const raw = value(env, 'OTEL_TRACES_SAMPLER_ARG');
  if (raw === undefined || !sampler.endsWith('traceidratio')) return 1;
  const ratio = Number(raw);
  if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
    throw new UsageError(`OTEL_TRACES_SAMPLER_ARG is '${raw}'; with ${sampler} it is the share of traces kept, a number from 0 to 1 (0.1 keeps one in ten)`);
  }
  return ratio;
}

function positiveInteger(env: Environment, name: string): number | undefined {
  const raw = value(env, name);
  if (raw === undefined) return undefined;
  const parsed = Number(raw);
  if (!Number.isInteger(parsed) || parsed <= 0) throw new UsageError(`${name} is '${raw}'; it must be a whole number above 0`);
  return parsed;
}

function parseBoolean(env: Environment, name: string): boolean {
  const raw = value(env, name)?.toLowerCase();
  if (raw === undefined || raw === 'false') return false;
  if (raw === 'true') return true;
  throw new UsageError(`${name} is '${raw}'; use true or false`);
}

/** A variable's value; an empty one counts as unset, as the OpenTelemetry SDKs read them. */
function value(env: Environment, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
}
