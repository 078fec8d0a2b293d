/**
 * What each kind of endpoint gets from the transports, in one table that the HTTP and gRPC servers both read: which
 * `--auth-exempt` choices leave it open without a token, and whether it answers on connections opened after
 * SIGTERM. Every REST route names its kind in its config; every gRPC call is mapped here.
 */
import type { AuthExempt } from './auth';

export type EndpointKind = 'live' | 'ready' | 'model-ready' | 'metadata' | 'metrics' | 'inference';

export interface EndpointPolicy {
  /** The --auth-exempt choices under which it needs no token. */
  readonly openWith: readonly AuthExempt[];
  /**
   * Answered on connections opened after SIGTERM: the kubelet's probes and Prometheus' scrapes keep working
   * through the drain (liveness stays 200, readiness says 503). Everything else is answered only on connections
   * that were open before the signal.
   */
  readonly answersWhileDraining: boolean;
}

export const ENDPOINT_POLICY: Readonly<Record<EndpointKind, EndpointPolicy>> = {
  live: { openWith: ['health', 'health-and-metrics'], answersWhileDraining: true },
  ready: { openWith: ['health', 'health-and-metrics'], answersWhileDraining: true },
  // Names which models are served, so it is not open to anyone; a draining server answers it (not ready).
  'model-ready': { openWith: [], answersWhileDraining: true },
  metrics: { openWith: ['health-and-metrics'], answersWhileDraining: true },
  metadata: { openWith: [], answersWhileDraining: false },
  inference: { openWith: [], answersWhileDraining: false },
};

export const GRPC_ENDPOINTS = {
  ServerLive: 'live',
  ServerReady: 'ready',
  ModelReady: 'model-ready',
  ServerMetadata: 'metadata',
  ModelMetadata: 'metadata',
  ModelInfer: 'inference',
} as const satisfies Record<string, EndpointKind>;

export type GrpcCall = keyof typeof GRPC_ENDPOINTS;

declare module 'fastify' {
  interface FastifyContextConfig {
    /** The route's kind in ENDPOINT_POLICY; routes without one (404s) are treated as 'metadata'. */
    endpoint?: EndpointKind;
  }
}

/** The policy of a REST route, from its config. */
export function policyOf(kind: EndpointKind | undefined): EndpointPolicy {
  return ENDPOINT_POLICY[kind ?? 'metadata'];
}
