/**
 * ModelCanary: a new model version rolled out by a progressive-delivery tool that shifts traffic to it step by step
 * and rolls it back when its requests fail or slow down, judged by the SLO expressions ModelMonitoring records.
 *
 * With Flagger (the default), a Flagger `Canary` (Gateway API provider) targets the ModelService's Deployment, and
 * two `MetricTemplate`s hold the checks. Flagger then owns the traffic split: it copies the Deployment to
 * `<deployment>-primary` (stable), creates the Services `<name>`, `<name>-primary` and `<name>-canary` and the
 * HTTPRoute `<name>`, and moves that route's weights; a ModelRoute must not route the same service as well.
 * With Argo Rollouts, an `AnalysisTemplate` holds the same checks for a Rollout the team already has.
 */
import { ApiObject, Lazy } from 'cdk8s';
import { Construct } from 'constructs';
import { HTTP_PORT, PORT_NAME } from '@modelship/contract';
import { canaryChecks, versionSelector, type CanaryCheck } from './canary-analysis';
import { LABEL_KEYS } from './labels';
import type { LatencyObjective } from './model-monitoring';
import { checkGateway, checkHostnames, type GatewayReference } from './model-route';
import type { ModelService } from './model-service';
import { DEFAULT_AVAILABILITY_OBJECTIVE, DEFAULT_LATENCY_OBJECTIVE, round } from './rules/slo';
import { checkDnsLabel, checkPositiveInteger } from './validation';

const FLAGGER_API_VERSION = 'flagger.app/v1beta1';
const ARGO_ROLLOUTS_API_VERSION = 'argoproj.io/v1alpha1';

/** Where Flagger's window placeholder goes: Flagger replaces it with the metric's interval. */
const FLAGGER_INTERVAL_PLACEHOLDER = '{{ interval }}';

/** The Prometheus Operator's governing Service for a Prometheus in the kube-prometheus-stack's usual namespace. */
export const DEFAULT_PROMETHEUS_ADDRESS = 'http://prometheus-operated.monitoring:9090';

/** The progressive-delivery tool that runs the canary. */
export class CanaryEngine {
  /**
   * Flagger with its Gateway API provider (`gatewayapi:v1`): a `Canary` and two `MetricTemplate`s. Flagger drives
   * the HTTPRoute itself, so nothing else is needed but the Gateway. The default.
   */
  static readonly FLAGGER = new CanaryEngine('flagger');
  /**
   * Argo Rollouts: an `AnalysisTemplate` with the same checks, for a `Rollout` (written by the team, not by this
   * construct) to reference from its canary steps. The weights are the Rollout's `steps`, so the weight props and
   * `gateway` are refused.
   */
  static readonly ARGO_ROLLOUTS = new CanaryEngine('argo-rollouts');

  private constructor(readonly name: 'flagger' | 'argo-rollouts') {}
}

export interface ModelCanaryProps {
  /**
   * The ModelService whose new versions are rolled out: change its `modelVersion` (or model) and the tool shifts
   * traffic from the running version to the new one. Its chart needs a namespace.
   */
  readonly service: ModelService;
  /** @default CanaryEngine.FLAGGER */
  readonly engine?: CanaryEngine;
  /** The Gateway the HTTPRoute Flagger creates attaches to. Required with Flagger; refused with Argo Rollouts. */
  readonly gateway?: GatewayReference;
  /** Host names the HTTPRoute answers for. @default - every host name of the Gateway's listener */
  readonly hostnames?: string[];
  /**
   * The Canary's (or AnalysisTemplate's) name; with Flagger also the name of the route and the Services it creates.
   * @default - the construct's id
   */
  readonly name?: string;
  /**
   * Percent of the traffic added to the canary at each step, from 1 to 100.
   * @default 10
   */
  readonly stepWeight?: number;
  /**
   * The canary's largest share in percent; after a passing check at this weight the new version is promoted and
   * takes all the traffic.
   * @default 50
   */
  readonly maxWeight?: number;
  /**
   * Explicit weights in percent, increasing, each from 1 to 100, instead of `stepWeight` and `maxWeight`, e.g.
   * `[1, 5, 25, 50]`; the last is the largest share before promotion.
   * @default - `stepWeight` steps up to `maxWeight`
   */
  readonly stepWeights?: number[];
  /**
   * Time between steps, and the window each check reads (a Prometheus duration such as '1m' or '30s').
   * @default '1m'
   */
  readonly interval?: string;
  /**
   * Failed checks after which the canary is rolled back (Flagger's `threshold`; for Argo Rollouts each metric's
   * `failureLimit` is one less).
   * @default 5
   */
  readonly maxFailedChecks?: number;
  /**
   * Percent of the canary's requests that must not fail with a server error, in each interval.
   * @default 99.9 - ModelMonitoring's default availability objective
   */
  readonly availabilityObjective?: number;
  /**
   * Requests faster than the threshold must be at least `percent` of the canary's requests, in each interval.
   * @default { thresholdSeconds: 0.25, percent: 99 } - ModelMonitoring's default latency objective
   */
  readonly latencyObjective?: LatencyObjective;
  /** The Prometheus the tool queries. @default DEFAULT_PROMETHEUS_ADDRESS */
  readonly prometheusAddress?: string;
}

export class ModelCanary extends Construct {
  /** Flagger's Canary. */
  readonly canary?: ApiObject;
  /** Flagger's MetricTemplates, one per check. */
  readonly metricTemplates: ApiObject[] = [];
  /** Argo Rollouts' AnalysisTemplate. */
  readonly analysisTemplate?: ApiObject;
  /** The checks the analysis runs, with the PromQL each queries. */
  readonly checks: readonly CanaryCheck[];
  readonly canaryName: string;

  constructor(scope: Construct, id: string, props: ModelCanaryProps) {
    super(scope, id);
    this.canaryName = props.name !== undefined ? checkDnsLabel('name', props.name) : checkIdAsName(id);
    const engine = props.engine ?? CanaryEngine.FLAGGER;
    const service = props.service;
    const version = service.modelVersion;
    if (version === undefined) {
      throw new Error(`'service' ModelService '${service.node.path}' serves the version directories its model source holds, so the canary's version is not known at synth time; give the ModelService a source with one version and 'modelVersion'`);
    }
    const interval = checkInterval(props.interval ?? '1m');
    const maxFailedChecks = checkPositiveInteger('maxFailedChecks', props.maxFailedChecks ?? 5);
    const objectives = {
      availabilityPercent: props.availabilityObjective ?? DEFAULT_AVAILABILITY_OBJECTIVE,
      latency: props.latencyObjective ?? DEFAULT_LATENCY_OBJECTIVE,
    };
    const selector = versionSelector(service.seriesSelector, service.modelName, String(version));
    const address = checkAddress(props.prometheusAddress ?? DEFAULT_PROMETHEUS_ADDRESS);
    const labels = { [LABEL_KEYS.managedBy]: 'modelship' };

    if (engine === CanaryEngine.ARGO_ROLLOUTS) {
      const refused = (['gateway', 'hostnames', 'stepWeight', 'maxWeight', 'stepWeights'] as const).filter((p) => props[p] !== undefined);
      if (refused.length > 0) {
        throw new Error(`${refused.map((p) => `'${p}'`).join(', ')} ${refused.length > 1 ? 'are' : 'is'} for Flagger; with CanaryEngine.ARGO_ROLLOUTS the Rollout's own canary 'steps' and traffic routing set the weights and the route: remove ${refused.length > 1 ? 'them' : 'it'}`);
      }
      this.checks = canaryChecks(selector, objectives, interval);
      this.analysisTemplate = new ApiObject(this, 'AnalysisTemplate', {
        apiVersion: ARGO_ROLLOUTS_API_VERSION, kind: 'AnalysisTemplate', metadata: { name: this.canaryName, labels },
        spec: {
          metrics: this.checks.map((check) => ({
            name: check.name, interval,
            successCondition: `result[0] >= ${round(check.min)}`,
            // Argo fails the analysis when failures exceed the limit; Flagger rolls back when they reach its threshold.
            failureLimit: maxFailedChecks - 1,
            provider: { prometheus: { address, query: check.query } },
          })),
        },
      });
      return;
    }

    if (props.gateway === undefined) {
      throw new Error("'gateway' is missing: Flagger attaches the HTTPRoute it creates to a Gateway; give { name, namespace? }, or use engine: CanaryEngine.ARGO_ROLLOUTS");
    }
    const flaggerServices = [this.canaryName, `${this.canaryName}-primary`, `${this.canaryName}-canary`];
    if (flaggerServices.includes(service.serviceName)) {
      // Flagger would take over the ModelService's own Service, which the ServiceMonitor and clients rely on.
      throw new Error(`the canary's name ('${this.canaryName}') makes Flagger create the Services ${flaggerServices.map((n) => `'${n}'`).join(', ')}, and the ModelService's Service is '${service.serviceName}', which Flagger would take over; give the canary another 'name', e.g. '${service.serviceName}-rollout'`);
    }
    const gateway = checkGateway(props.gateway);
    const hostnames = checkHostnames(props.hostnames);
    const weights = checkWeights(props);
    this.node.addValidation({ validate: () => kedaRefused(service) });
    this.checks = canaryChecks(selector, objectives, FLAGGER_INTERVAL_PLACEHOLDER);
    for (const check of this.checks) {
      this.metricTemplates.push(new ApiObject(this, `MetricTemplate-${check.name}`, {
        apiVersion: FLAGGER_API_VERSION, kind: 'MetricTemplate', metadata: { name: `${this.canaryName}-${check.name}`, labels },
        spec: { provider: { type: 'prometheus', address }, query: check.query },
      }));
    }
    this.canary = new ApiObject(this, 'Canary', {
      apiVersion: FLAGGER_API_VERSION, kind: 'Canary', metadata: { name: this.canaryName, labels },
      spec: {
        provider: 'gatewayapi:v1',
        targetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: service.deployment.name },
        // Read at synth: the service's autoscaler may be created after the canary.
        autoscalerRef: Lazy.any({ produce: () => autoscalerRefOf(service) }),
        service: {
          name: this.canaryName,
          // The container's port: Flagger's Services forward to the same port number, whatever the ModelService's
          // own Service exposes (80 for a load balancer).
          port: HTTP_PORT,
          portName: PORT_NAME.http,
          ...(hostnames ? { hosts: hostnames } : {}),
          gatewayRefs: [{
            name: gateway.name,
            ...(gateway.namespace !== undefined ? { namespace: gateway.namespace } : {}),
            ...(gateway.sectionName !== undefined ? { sectionName: gateway.sectionName } : {}),
          }],
          // Flagger renames the primary's pod labels, so the ModelService's Service selects only the canary's pods;
          // with the ModelService's labels, the primary Service is scraped by the same ServiceMonitor too.
          primary: { labels: { ...service.labels } },
        },
        analysis: {
          interval,
          threshold: maxFailedChecks,
          ...weights,
          metrics: this.checks.map((check, i) => ({
            name: check.name,
            templateRef: { name: this.metricTemplates[i].name },
            thresholdRange: { min: round(check.min) },
            interval,
          })),
        },
      },
    });
  }
}

/**
 * Flagger gives the primary an HPA of its own, copied from the one named here; without it the service's HPA would
 * go on scaling the canary's Deployment, which Flagger scales to zero between rollouts.
 */
function autoscalerRefOf(service: ModelService) {
  const hpa = service.autoscaler?.hpa;
  return hpa && { apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', name: hpa.name };
}

/**
 * A KEDA ScaledObject needs Flagger's per-trigger queries for the primary's copy, which ModelCanary does not write:
 * refused rather than half-done. Checked at synth, since the autoscaler may come after the canary.
 */
function kedaRefused(service: ModelService): string[] {
  const autoscaler = service.autoscaler;
  return autoscaler !== undefined && autoscaler.hpa === undefined
    ? [`ModelService '${service.node.path}' is scaled by a KEDA ScaledObject, whose primary copy Flagger builds only with per-trigger queries that ModelCanary does not write; scale the service with an HPA (ScalingSignal.cpu() or ScalingSignal.inFlightRequestsWithPrometheusAdapter()) while Flagger rolls it out, or use engine: CanaryEngine.ARGO_ROLLOUTS`]
    : [];
}

function checkIdAsName(id: string): string {
  if (id.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(id)) {
    throw new Error(`the canary is named after the construct's id ('${id}'), which is not a DNS label (at most 63 lower-case letters, digits and '-'); give 'name', e.g. 'ocr'`);
  }
  return id;
}

/** A Prometheus duration both tools read: a whole number of seconds, minutes or hours. */
function checkInterval(interval: string): string {
  if (!/^[1-9][0-9]*[smh]$/.test(interval)) {
    throw new Error(`'interval' ('${interval}') must be a duration such as '30s', '1m' or '2h' (a positive whole number and s, m or h)`);
  }
  return interval;
}

function checkAddress(address: string): string {
  if (!/^https?:\/\/[^\s/]+(\/\S*)?$/.test(address)) {
    throw new Error(`'prometheusAddress' ('${address}') must be an http(s) URL of the Prometheus API, e.g. '${DEFAULT_PROMETHEUS_ADDRESS}'`);
  }
  return address;
}

/** Flagger's weight fields: explicit `stepWeights`, or `stepWeight` up to `maxWeight`. */
function checkWeights(props: ModelCanaryProps): { stepWeights: number[] } | { stepWeight: number; maxWeight: number } {
  const percent = (prop: string, value: number) => {
    if (!Number.isInteger(value) || value < 1 || value > 100) throw new Error(`'${prop}' (${value}) must be a whole percentage from 1 to 100`);
    return value;
  };
  if (props.stepWeights !== undefined) {
    if (props.stepWeight !== undefined || props.maxWeight !== undefined) {
      throw new Error(`'stepWeights' ([${props.stepWeights.join(', ')}]) replaces 'stepWeight' and 'maxWeight'; give either the list or the step and maximum`);
    }
    if (props.stepWeights.length === 0) throw new Error("'stepWeights' is empty; give the canary's shares in increasing order, e.g. [1, 5, 25, 50]");
    props.stepWeights.forEach((w, i) => {
      percent(`stepWeights[${i}]`, w);
      if (i > 0 && w <= props.stepWeights![i - 1]) {
        throw new Error(`'stepWeights' ([${props.stepWeights!.join(', ')}]) must increase: entry ${i} (${w}) is not above the one before (${props.stepWeights![i - 1]})`);
      }
    });
    return { stepWeights: [...props.stepWeights] };
  }
  const stepWeight = percent('stepWeight', props.stepWeight ?? 10);
  const maxWeight = percent('maxWeight', props.maxWeight ?? 50);
  if (stepWeight > maxWeight) {
    throw new Error(`'stepWeight' (${stepWeight}) must be less than or equal to 'maxWeight' (${maxWeight}); lower the step or raise the maximum`);
  }
  return { stepWeight, maxWeight };
}
