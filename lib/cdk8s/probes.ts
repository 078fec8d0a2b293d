/**
 * How the kubelet probes the runtime, one definition for ModelService's Deployment and KServe's ServingRuntime:
 * readiness on `/v2/health/ready` (ready once every model loaded and warmed up; 503 from SIGTERM on, so endpoints
 * drop the pod while it drains), liveness on `/v2/health/live`, which stays 200 while draining.
 */
import { HTTP_PORT, PATHS } from '@modelship/contract';

export interface ProbeTiming {
  readonly periodSeconds: number;
  readonly failureThreshold: number;
}

/**
 * Slow model loads must not count as failed liveness: the startup probe allows 5 minutes. It counts from the
 * runtime container's start, after the init containers: a model download spends none of it.
 */
export const STARTUP: ProbeTiming = { periodSeconds: 5, failureThreshold: 60 };
export const READINESS: ProbeTiming = { periodSeconds: 5, failureThreshold: 2 };
export const LIVENESS: ProbeTiming = { periodSeconds: 10, failureThreshold: 3 };
export const PROBE_TIMEOUT_SECONDS = 2;

/** The three probes as the JSON of a container, for containers cdk8s-plus does not build. */
export function kubeProbes(): Record<'startupProbe' | 'readinessProbe' | 'livenessProbe', object> {
  const probe = (path: string, timing: ProbeTiming) => ({ httpGet: { path, port: HTTP_PORT }, ...timing, timeoutSeconds: PROBE_TIMEOUT_SECONDS });
  return { startupProbe: probe(PATHS.ready, STARTUP), readinessProbe: probe(PATHS.ready, READINESS), livenessProbe: probe(PATHS.live, LIVENESS) };
}
