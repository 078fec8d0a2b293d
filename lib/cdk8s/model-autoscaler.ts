/**
 * ModelAutoscaler: scales a ModelService's Deployment — on CPU with an `autoscaling/v2` HPA by default (works with
 * metrics-server alone), or on the runtime's in-flight requests per pod through KEDA or prometheus-adapter.
 */
import { ApiObject, Duration } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { METRIC } from '@modelship/contract';
import type { ModelService } from './model-service';
import { httpUrl } from './network';
import * as promql from './promql';
import { checkPositiveInteger } from './validation';

/** What the autoscaler scales on. */
export class ScalingSignal {
  /**
   * Average CPU use as a share of the request.
   * @param utilization percent of the CPU request, default 70
   */
  static cpu(utilization = 70): ScalingSignal {
    if (!Number.isInteger(utilization) || utilization < 1 || utilization > 100) {
      throw new Error(`ScalingSignal.cpu: utilization (${utilization}) must be an integer percentage from 1 to 100`);
    }
    return new ScalingSignal({ kind: 'cpu', utilization });
  }

  /**
   * In-flight requests per pod (`modelship_inference_in_flight_requests`) through a KEDA ScaledObject with a
   * prometheus trigger. KEDA may scale to zero (minReplicas 0) only with an `activation` query: at zero no pod
   * reports the in-flight gauge, so something that exists without pods must say when to start one.
   */
  static inFlightRequestsWithKeda(options: KedaInFlightOptions): ScalingSignal {
    return new ScalingSignal({
      kind: 'keda',
      target: checkTarget(options.target),
      prometheusAddress: checkPrometheusAddress(options.prometheusAddress),
      activation: options.activation && checkActivation(options.activation),
    });
  }

  /**
   * In-flight requests per pod as an HPA Pods metric, served by prometheus-adapter; the adapter rule it needs is
   * synthesized as a ConfigMap (`rules`), to merge into the adapter's configuration.
   */
  static inFlightRequestsWithPrometheusAdapter(options: InFlightOptions): ScalingSignal {
    return new ScalingSignal({ kind: 'adapter', target: checkTarget(options.target) });
  }

  private constructor(readonly config:
    | { readonly kind: 'cpu'; readonly utilization: number }
    | { readonly kind: 'keda'; readonly target: number; readonly prometheusAddress: string; readonly activation?: Required<KedaActivation> }
    | { readonly kind: 'adapter'; readonly target: number }) {}
}

export interface InFlightOptions {
  /** In-flight requests per pod to aim for. */
  readonly target: number;
}

/** What wakes a service that KEDA scaled to zero. */
export interface KedaActivation {
  /**
   * PromQL (an instant vector) on a metric that exists while the service has no pod, such as the requests an ingress
   * controller or API gateway counted for it, or the length of the queue its clients fill. KEDA starts one pod
   * while any of its series is above `threshold`; from then on the in-flight requests decide.
   */
  readonly query: string;
  /**
   * The value `query` must exceed for KEDA to start the first pod.
   * @default 0
   */
  readonly threshold?: number;
}

export interface KedaInFlightOptions extends InFlightOptions {
  /** The Prometheus KEDA queries, e.g. 'http://prometheus-operated.monitoring.svc:9090'. */
  readonly prometheusAddress: string;
  /**
   * What brings the service back from zero; required with `minReplicas: 0`, refused otherwise.
   * @default - no activation: the service never scales to zero
   */
  readonly activation?: KedaActivation;
}

/** An http(s) URL: KEDA accepts an empty or relative address and then fails on every poll, out of sight. */
function checkPrometheusAddress(address: string): string {
  if (!httpUrl(address)) {
    throw new Error(`'prometheusAddress' ('${address}') must be the http(s) URL of the Prometheus KEDA queries, e.g. 'http://prometheus-operated.monitoring.svc:9090'`);
  }
  return address;
}

function checkActivation(activation: KedaActivation): Required<KedaActivation> {
  const query = activation.query.trim();
  if (query === '') {
    throw new Error("'activation.query' ('') must be PromQL on a metric that exists while the service has no pod, e.g. the requests your ingress counts for it");
  }
  const threshold = activation.threshold ?? 0;
  if (!Number.isFinite(threshold) || threshold < 0) {
    throw new Error(`'activation.threshold' (${threshold}) must be a number of 0 or more: KEDA starts the first pod while 'activation.query' is above it`);
  }
  return { query, threshold };
}

function checkTarget(target: number): number {
  if (!(target > 0)) throw new Error(`in-flight 'target' (${target}) must be a positive number of requests per pod`);
  return target;
}

export interface ModelAutoscalerProps {
  readonly service: ModelService;
  /** @default 2 */
  readonly minReplicas?: number;
  /** @default 10 */
  readonly maxReplicas?: number;
  /** @default ScalingSignal.cpu(70) */
  readonly signal?: ScalingSignal;
  /**
   * Seconds the autoscaler looks back before scaling down, so a short lull does not shed capacity.
   * @default 300
   */
  readonly scaleDownStabilizationSeconds?: number;
  /**
   * Seconds before scaling up: 0 reacts to the first sign of load.
   * @default 0
   */
  readonly scaleUpStabilizationSeconds?: number;
}

/**
 * Scale behaviour: up fast (double, or +4 pods, every 15 s, whichever is more), down slowly (at most 10% a minute
 * after the stabilization window), since a model server that scaled down too early pays for it in cold starts.
 */
export class ModelAutoscaler extends Construct {
  /** The HPA (CPU or prometheus-adapter signal). */
  readonly hpa?: kplus.HorizontalPodAutoscaler;
  /** The KEDA ScaledObject (KEDA signal). */
  readonly scaledObject?: ApiObject;
  /** The ModelService this scales. */
  readonly service: ModelService;
  readonly minReplicas: number;
  readonly maxReplicas: number;

  constructor(scope: Construct, id: string, props: ModelAutoscalerProps) {
    super(scope, id);
    const signal = (props.signal ?? ScalingSignal.cpu()).config;
    const minReplicas = props.minReplicas ?? 2;
    const maxReplicas = props.maxReplicas ?? 10;
    const lowest = signal.kind === 'keda' ? 0 : 1;
    if (!Number.isInteger(minReplicas) || minReplicas < lowest) {
      throw new Error(`'minReplicas' (${minReplicas}) must be an integer of at least ${lowest}${lowest === 0 ? '' : ' (only KEDA can scale to zero)'}`);
    }
    if (signal.kind === 'keda') checkWayBack(minReplicas, signal.activation);
    checkPositiveInteger('maxReplicas', maxReplicas);
    if (minReplicas > maxReplicas) {
      throw new Error(`'minReplicas' (${minReplicas}) must be less than or equal to 'maxReplicas' (${maxReplicas})`);
    }
    if (props.service.hasFixedReplicas) {
      throw new Error(`ModelService '${props.service.node.path}' has fixed 'replicas'; remove them to let ModelAutoscaler '${this.node.path}' scale it`);
    }
    const scaleDown = props.scaleDownStabilizationSeconds ?? 300;
    const scaleUp = props.scaleUpStabilizationSeconds ?? 0;
    for (const [name, value] of [['scaleDownStabilizationSeconds', scaleDown], ['scaleUpStabilizationSeconds', scaleUp]] as const) {
      if (!Number.isInteger(value) || value < 0 || value > 3600) throw new Error(`'${name}' (${value}) must be an integer from 0 to 3600`);
    }
    this.service = props.service;
    this.minReplicas = minReplicas;
    this.maxReplicas = maxReplicas;
    props.service._registerAutoscaler(this);
    if (maxReplicas > 1) props.service.ensureDisruptionBudget();

    const deployment = props.service.deployment;
    if (signal.kind === 'keda') {
      deployment.markHasAutoscaler();
      this.scaledObject = new ApiObject(this, 'ScaledObject', {
        apiVersion: 'keda.sh/v1alpha1',
        kind: 'ScaledObject',
        metadata: { labels: props.service.labels },
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: deployment.name },
          minReplicaCount: minReplicas,
          maxReplicaCount: maxReplicas,
          advanced: { horizontalPodAutoscalerConfig: { behavior: behavior(scaleUp, scaleDown) } },
          triggers: [{
            type: 'prometheus',
            metadata: {
              serverAddress: signal.prometheusAddress,
              // KEDA divides by the replica count (AverageValue), so the query is the service's total.
              query: promql.inFlightTotal(props.service.seriesSelector),
              threshold: String(signal.target),
            },
          }, ...(signal.activation ? [activationTrigger(signal.prometheusAddress, signal.activation)] : [])],
        },
      });
      return;
    }
    const metric = signal.kind === 'cpu'
      ? kplus.Metric.resourceCpu(kplus.MetricTarget.averageUtilization(signal.utilization))
      : kplus.Metric.pods({ name: METRIC.inFlight, target: kplus.MetricTarget.averageValue(signal.target) });
    this.hpa = new kplus.HorizontalPodAutoscaler(this, 'Hpa', {
      metadata: { labels: props.service.labels },
      target: deployment,
      minReplicas,
      maxReplicas,
      metrics: [metric],
      scaleUp: { stabilizationWindow: Duration.seconds(scaleUp), strategy: kplus.ScalingStrategy.MAX_CHANGE, policies: SCALING_POLICIES.scaleUp.map(kplusPolicy) },
      scaleDown: { stabilizationWindow: Duration.seconds(scaleDown), strategy: kplus.ScalingStrategy.MAX_CHANGE, policies: SCALING_POLICIES.scaleDown.map(kplusPolicy) },
    });
    if (signal.kind === 'adapter') {
      const prometheusAdapterRule = {
        seriesQuery: `${METRIC.inFlight}{namespace!="",pod!=""}`,
        resources: { overrides: { namespace: { resource: 'namespace' }, pod: { resource: 'pod' } } },
        name: { matches: `^${METRIC.inFlight}$`, as: METRIC.inFlight },
        metricsQuery: 'sum(<<.Series>>{<<.LabelMatchers>>}) by (<<.GroupBy>>)',
      };
      new kplus.ConfigMap(this, 'PrometheusAdapterRule', {
        metadata: { labels: props.service.labels },
        data: { 'rules.yaml': toYamlRules([prometheusAdapterRule]) },
      });
    }
  }
}

/**
 * At zero no pod exports the in-flight gauge, so its trigger reads nothing and can never start the first pod; a
 * scale to zero without another way back strands the service until someone scales it by hand.
 */
function checkWayBack(minReplicas: number, activation: Required<KedaActivation> | undefined): void {
  if (minReplicas === 0 && !activation) {
    throw new Error("'minReplicas' (0) has no way back from zero: with no pod running nothing reports in-flight requests, so KEDA would never start one. "
      + "Give ScalingSignal.inFlightRequestsWithKeda an 'activation' query on a metric that exists without pods (e.g. the requests your ingress counts for the service), or set 'minReplicas' to 1 or more");
  }
  if (minReplicas > 0 && activation) {
    throw new Error(`'activation' only wakes a service from zero, but 'minReplicas' (${minReplicas}) keeps it above zero: remove 'activation', or set 'minReplicas' to 0`);
  }
}

/**
 * The trigger that starts the first pod. Its query is 1 while the activation query is above the threshold and 0
 * otherwise, against a threshold of 1: KEDA activates on it, and it asks the HPA for one replica at most, so it wakes
 * the service without competing with the in-flight trigger's count. `max` makes one series of many, as KEDA needs.
 */
function activationTrigger(serverAddress: string, activation: Required<KedaActivation>) {
  return {
    type: 'prometheus',
    metadata: {
      serverAddress,
      query: `max((${activation.query}) > bool ${activation.threshold})`,
      threshold: '1',
      activationThreshold: '0',
      // No series at all (the activation metric not scraped yet) reads as 0: asleep, not an error.
      ignoreNullValues: 'true',
    },
  };
}

interface ScalingPolicy {
  readonly type: 'Percent' | 'Pods';
  readonly value: number;
  readonly periodSeconds: number;
}

/**
 * The HPA's scaling policies, one table for both the HPA (cdk8s-plus) and KEDA's (raw `behavior`); with
 * `selectPolicy: Max` the policy that allows the most change applies.
 */
const SCALING_POLICIES: { readonly scaleUp: readonly ScalingPolicy[]; readonly scaleDown: readonly ScalingPolicy[] } = {
  scaleUp: [{ type: 'Percent', value: 100, periodSeconds: 15 }, { type: 'Pods', value: 4, periodSeconds: 15 }],
  scaleDown: [{ type: 'Percent', value: 10, periodSeconds: 60 }],
};

/** The `behavior` of an `autoscaling/v2` HPA spec, as KEDA takes it. */
function behavior(scaleUp: number, scaleDown: number) {
  return {
    scaleUp: { stabilizationWindowSeconds: scaleUp, selectPolicy: 'Max', policies: SCALING_POLICIES.scaleUp.map((p) => ({ ...p })) },
    scaleDown: { stabilizationWindowSeconds: scaleDown, selectPolicy: 'Max', policies: SCALING_POLICIES.scaleDown.map((p) => ({ ...p })) },
  };
}

/** The same policy for cdk8s-plus's HorizontalPodAutoscaler. */
function kplusPolicy(policy: ScalingPolicy): kplus.ScalingPolicy {
  return {
    replicas: policy.type === 'Percent' ? kplus.Replicas.percent(policy.value) : kplus.Replicas.absolute(policy.value),
    duration: Duration.seconds(policy.periodSeconds),
  };
}

function toYamlRules(rules: Record<string, unknown>[]): string {
  // JSON is YAML: the adapter reads this as its `rules:` list.
  return `${JSON.stringify({ rules }, null, 2)}\n`;
}
