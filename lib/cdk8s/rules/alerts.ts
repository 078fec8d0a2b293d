/**
 * The alert rules of a ModelService, named by the constructs contract. Resource alerts read the standard cAdvisor
 * and kube-state-metrics series, scoped to this service's pods by the Deployment's pod-name pattern.
 */
import { LABEL, METRIC } from '@modelship/contract';
import { containerMatchers, deploymentMatchers, matchers, namespaceMatchers, type SeriesSelector } from '../promql';
import { driftAlertExpr, type DriftRuleOptions } from './drift';
import { shadowErrorAlertExpr, shadowPsiAlertExpr, type ShadowRuleOptions } from './shadow';
import { burnRateAlertExprs, type Rule, type Slo } from './slo';

export const ALERT = {
  errorBudgetBurn: 'ModelServiceErrorBudgetBurn',
  latencyBudgetBurn: 'ModelServiceLatencyBudgetBurn',
  highCpu: 'ModelServiceHighCPU',
  memoryNearLimit: 'ModelServiceMemoryNearLimit',
  oomKilled: 'ModelServiceOOMKilled',
  down: 'ModelServiceDown',
  modelNotReady: 'ModelServiceModelNotReady',
  crashLooping: 'ModelServiceCrashLooping',
  replicasMismatch: 'ModelServiceReplicasMismatch',
  autoscalerMaxedOut: 'ModelServiceAutoscalerMaxedOut',
  inputDrift: 'ModelServiceInputDrift',
  predictionDrift: 'ModelServicePredictionDrift',
  shadowDiverges: 'ModelServiceShadowDiverges',
} as const;
export type AlertName = (typeof ALERT)[keyof typeof ALERT];

/** How long each condition must hold before its alert fires. */
export type AlertDurations = Readonly<Record<AlertName | 'ModelServiceErrorBudgetBurnTicket' | 'ModelServiceLatencyBudgetBurnTicket', string>>;

export const DEFAULT_ALERT_DURATIONS: AlertDurations = {
  ModelServiceErrorBudgetBurn: '2m',
  ModelServiceErrorBudgetBurnTicket: '15m',
  ModelServiceLatencyBudgetBurn: '2m',
  ModelServiceLatencyBudgetBurnTicket: '15m',
  ModelServiceHighCPU: '5m',
  ModelServiceMemoryNearLimit: '5m',
  ModelServiceOOMKilled: '0m',
  ModelServiceDown: '2m',
  ModelServiceModelNotReady: '5m',
  ModelServiceCrashLooping: '5m',
  ModelServiceReplicasMismatch: '15m',
  ModelServiceAutoscalerMaxedOut: '15m',
  // Drift is a trend, not an outage: half an hour of a shifted hour-long window is a shift, not a burst of odd requests.
  ModelServiceInputDrift: '30m',
  ModelServicePredictionDrift: '30m',
  // A shadow's answers are discarded, so its divergence hurts no one yet: a quarter of the window, not a blip.
  ModelServiceShadowDiverges: '15m',
};

export interface AlertContext {
  readonly selector: SeriesSelector;
  /** Matches the service's pods: `<deployment>-<replicaset hash>-<pod hash>` (promql.podNamePattern). */
  readonly podPattern: string;
  readonly deploymentName: string;
  readonly containerName: string;
  /** An autoscaler (an HPA, or KEDA's) targets the Deployment: watch it for ModelServiceAutoscalerMaxedOut. */
  readonly autoscaled: boolean;
  readonly cpuThreshold: number;
  readonly memoryThreshold: number;
  readonly durations: AlertDurations;
  readonly runbookBaseUrl: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Drift alerts, when ModelMonitoring's `drift` is on. */
  readonly drift?: DriftRuleOptions;
  /** The comparison with the primary, when ModelMonitoring's `shadow` names one. */
  readonly shadow?: ShadowRuleOptions;
}

export function alertRules(context: AlertContext, slos: { availability: Slo; latency: Slo }): Rule[] {
  const { selector, durations, labels } = context;
  const container = containerMatchers(selector, context.podPattern, context.containerName);
  const deployment = deploymentMatchers(selector, context.deploymentName);
  const who = `${labels.service}${selector.namespace ? ` in ${selector.namespace}` : ''}`;
  const alert = (name: AlertName, expr: string, severity: string, summary: string, description: string, forKey: keyof AlertDurations = name): Rule => ({
    alert: name,
    expr,
    for: durations[forKey],
    labels: { ...labels, severity },
    annotations: { summary, description, runbook_url: `${context.runbookBaseUrl}/${name}.md` },
  });
  const burn = (name: AlertName, slo: Slo, what: string) => {
    const exprs = burnRateAlertExprs(slo, selector);
    const percent = `${Number((slo.objective * 100).toPrecision(6))}%`;
    // Per version, the alert names the version whose own requests burn the budget: a canary's, not the service's.
    const whose = slo.by.includes(LABEL.version) ? `model {{ $labels.${LABEL.model} }} version {{ $labels.${LABEL.version} }} of ${who}` : who;
    return [
      alert(name, exprs.critical, 'critical', `${whose} is burning its ${what} error budget fast`,
        `The ${what} SLO (${percent}) of ${whose} is burning its error budget at 6× or more; at this rate the month's budget is gone in days. Error ratio over the long window: {{ $value | humanizePercentage }}.`),
      alert(name, exprs.warning, 'warning', `${whose} is burning its ${what} error budget`,
        `The ${what} SLO (${percent}) of ${whose} has been burning its error budget faster than it refills for hours.`, `${name}Ticket` as keyof AlertDurations),
    ];
  };
  const rules: Rule[] = [
    ...burn(ALERT.errorBudgetBurn, slos.availability, 'availability'),
    ...burn(ALERT.latencyBudgetBurn, slos.latency, 'latency'),
    alert(ALERT.highCpu,
      `sum by (namespace, pod) (rate(container_cpu_usage_seconds_total{${container}}[5m])) / sum by (namespace, pod) (kube_pod_container_resource_limits{${container},resource="cpu"}) > ${context.cpuThreshold}`,
      'warning', `A pod of ${who} uses most of its CPU limit`,
      `Pod {{ $labels.pod }} has used {{ $value | humanizePercentage }} of its CPU limit for ${durations.ModelServiceHighCPU}; requests queue and latency grows. Scale out or raise the limit.`),
    alert(ALERT.memoryNearLimit,
      `max by (namespace, pod) (container_memory_working_set_bytes{${container}}) / max by (namespace, pod) (kube_pod_container_resource_limits{${container},resource="memory"}) > ${context.memoryThreshold}`,
      'warning', `A pod of ${who} is close to its memory limit`,
      `Pod {{ $labels.pod }}'s working set is {{ $value | humanizePercentage }} of its memory limit; past it the kernel kills the process.`),
    alert(ALERT.oomKilled,
      `increase(kube_pod_container_status_restarts_total{${container}}[10m]) > 0 and on (namespace, pod, container) max by (namespace, pod, container) (kube_pod_container_status_last_terminated_reason{${container},reason="OOMKilled"}) == 1`,
      'warning', `A pod of ${who} was killed for running out of memory`,
      `Container {{ $labels.container }} of pod {{ $labels.pod }} was OOM-killed and restarted; every request in flight on it was lost.`),
    alert(ALERT.down,
      // Scaled to zero on purpose (KEDA), no target is expected: quiet while kube-state-metrics reports that the
      // Deployment wants no pod. `unless`, not `and ... > 0`: without kube-state-metrics the alert still fires when the
      // service is down, rather than never.
      `(sum(up${matchers(selector)}) or vector(0)) == 0 unless on () (sum(kube_deployment_spec_replicas{${deployment}}) == 0)`,
      'critical', `No pod of ${who} is being scraped as up`,
      `Prometheus has no up target for ${who}: the service is down, or not scraped at all.`),
    alert(ALERT.modelNotReady,
      `${METRIC.modelReady}${matchers(selector)} == 0`,
      'critical', `A model of ${who} cannot serve`,
      `Model {{ $labels.model }} version {{ $labels.version }} on pod {{ $labels.pod }} is not ready: its file is missing or corrupt, or it failed to load. The runtime log names the reason.`),
    alert(ALERT.crashLooping,
      // Both sides keep the same labels, so a container matching both conditions is one alert, not two.
      `max by (namespace, pod, container) (kube_pod_container_status_waiting_reason{${container},reason="CrashLoopBackOff"}) == 1 or max by (namespace, pod, container) (increase(kube_pod_container_status_restarts_total{${container}}[15m])) > 2`,
      'warning', `A pod of ${who} is crash-looping`,
      `Container {{ $labels.container }} of pod {{ $labels.pod }} keeps restarting.`),
    alert(ALERT.replicasMismatch,
      `kube_deployment_spec_replicas{${deployment}} != kube_deployment_status_replicas_available{${deployment}}`,
      'warning', `${who} runs fewer replicas than it should`,
      `Deployment ${context.deploymentName} wants {{ printf "%.0f" $value }} replicas that are not all available: pods cannot be scheduled, pulled or made ready.`),
  ];
  if (context.autoscaled) {
    // The HPA is found by what it scales (kube-state-metrics' info series names the target), not by its own name:
    // KEDA names the HPA it creates, and the rule need not know which autoscaler the service has, or when it comes.
    const hpa = namespaceMatchers(selector, []);
    const target = namespaceMatchers(selector, ['scaletargetref_kind="Deployment"', `scaletargetref_name="${context.deploymentName}"`]);
    rules.push(alert(ALERT.autoscalerMaxedOut,
      // An autoscaler with min = max always sits at its maximum: that is its configuration, not an alert.
      `kube_horizontalpodautoscaler_status_current_replicas{${hpa}} >= kube_horizontalpodautoscaler_spec_max_replicas{${hpa}} and on (namespace, horizontalpodautoscaler) (kube_horizontalpodautoscaler_spec_max_replicas{${hpa}} > kube_horizontalpodautoscaler_spec_min_replicas{${hpa}}) and on (namespace, horizontalpodautoscaler) kube_horizontalpodautoscaler_info{${target}}`,
      'warning', `The autoscaler of ${who} is pinned at its maximum`,
      `HPA {{ $labels.horizontalpodautoscaler }} has run at its maximum of {{ $value }} replicas for ${durations.ModelServiceAutoscalerMaxedOut}: demand exceeds what it may add. Raise maxReplicas or the per-pod capacity.`));
  }
  if (context.drift) rules.push(...driftAlerts(context.drift, alert, who));
  if (context.shadow) rules.push(...shadowAlerts(context.shadow, alert, who));
  return rules;
}

type AlertBuilder = (name: AlertName, expr: string, severity: string, summary: string, description: string) => Rule;

/**
 * The runtime's drift metrics do not say whether a tensor is an input or an output (the contract fixes their labels),
 * so the model's signature, when the source read it at synth, splits them; without it, every tensor is one alert.
 */
function driftAlerts(drift: DriftRuleOptions, alert: AlertBuilder, who: string): Rule[] {
  const feature = 'feature {{ $labels.feature }} of tensor {{ $labels.tensor }} (model {{ $labels.model }} version {{ $labels.version }})';
  const psi = `PSI {{ printf "%.2f" $value }} over ${drift.window}, above ${drift.threshold}`;
  const input = (tensors?: readonly string[]) => alert(ALERT.inputDrift, driftAlertExpr(drift, tensors), 'warning',
    `What ${who} is asked no longer looks like its reference data`,
    `The distribution of ${feature} served by ${who} has moved away from its drift profile: ${psi}. Predictions on data unlike the training data may be wrong without any error.`);
  if (!drift.tensors) return [input()];
  const rules: Rule[] = [];
  if (drift.tensors.inputs.length > 0) rules.push(input(drift.tensors.inputs));
  if (drift.tensors.outputs.length > 0) {
    rules.push(alert(ALERT.predictionDrift, driftAlertExpr(drift, drift.tensors.outputs), 'warning',
      `What ${who} predicts no longer looks like its reference`,
      `The distribution of ${feature}, an output of ${who}, has moved away from its drift profile: ${psi}. The inputs, the world or the model changed.`));
  }
  return rules;
}

/**
 * One alert name for both ways a shadow can differ from its primary, each its own rule told apart by a `divergence`
 * label (`predictions` or `errors`, for routing and silencing): a shadow that both predicts otherwise and fails more
 * is two alerts, not one that hides the second cause.
 */
function shadowAlerts(shadow: ShadowRuleOptions, alert: AlertBuilder, who: string): Rule[] {
  const divergence = (rule: Rule, kind: 'predictions' | 'errors'): Rule => ({ ...rule, labels: { ...rule.labels, divergence: kind } });
  const primary = `${shadow.primary.service}${shadow.primary.namespace ? ` in ${shadow.primary.namespace}` : ''}`;
  const rules: Rule[] = [];
  if (shadow.distributions) {
    rules.push(divergence(alert(ALERT.shadowDiverges, shadowPsiAlertExpr(shadow), 'warning',
      `${who} predicts unlike ${primary}, which it shadows`,
      `For the same requests, feature {{ $labels.feature }} of tensor {{ $labels.tensor }} (model {{ $labels.model }}) served by ${who} is distributed unlike ${primary}'s: PSI {{ printf "%.2f" $value }} over ${shadow.window}, above ${shadow.psiThreshold}. Promoting the shadow would change what clients get.`), 'predictions'));
  }
  rules.push(divergence(alert(ALERT.shadowDiverges, shadowErrorAlertExpr(shadow), 'warning',
    `${who} fails more often than ${primary}, which it shadows`,
    `For the same requests, model {{ $labels.model }} on ${who} answered with a server error {{ $value | humanizePercentage }} more often than on ${primary} over ${shadow.window} (more than ${Number((shadow.errorRatioThreshold * 100).toPrecision(6))}% apart). Promoting the shadow would add these errors.`), 'errors'));
  return rules;
}
