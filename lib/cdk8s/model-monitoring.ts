/**
 * ModelMonitoring: how Prometheus scrapes a ModelService (ServiceMonitor or PodMonitor), the recording rules and
 * alerts of its SLOs and resources (PrometheusRule), a Grafana dashboard, and the same scrape config and rules as
 * plain Prometheus files for clusters without the Prometheus Operator.
 */
import { ApiObject } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import * as YAML from 'yaml';
import { PATHS, PORT_NAME } from '../contract/runtime';
import { selectorLabels } from './labels';
import type { ModelAutoscaler } from './model-autoscaler';
import type { ModelService } from './model-service';
import { dashboardJson } from './dashboards/model-dashboard';
import { ALERT, alertRules, DEFAULT_ALERT_DURATIONS, type AlertDurations } from './rules/alerts';
import { availabilitySlo, latencySlo, sloRecordingRules, type RuleGroup } from './rules/slo';

export interface LatencyObjective {
  /** Requests faster than this count as good; a bucket boundary of the runtime's latency histogram. */
  readonly thresholdSeconds: number;
  /** Share of requests that must be faster, in percent. */
  readonly percent: number;
}

export interface ModelMonitoringProps {
  readonly service: ModelService;
  /** Adds ModelServiceAutoscalerMaxedOut for its HPA. @default - no autoscaler alert */
  readonly autoscaler?: ModelAutoscaler;
  /** Percent of requests that must not fail with a server error (5xx, both protocols). @default 99.9 */
  readonly availabilityObjective?: number;
  /** @default { thresholdSeconds: 0.25, percent: 99 } */
  readonly latencyObjective?: LatencyObjective;
  /** Share of the CPU limit above which ModelServiceHighCPU fires (the seed's MyModelHighCPUUsage). @default 0.8 */
  readonly cpuThreshold?: number;
  /** Share of the memory limit above which ModelServiceMemoryNearLimit fires. @default 0.9 */
  readonly memoryThreshold?: number;
  /** `for` durations per alert (Prometheus durations, e.g. '5m'). @default DEFAULT_ALERT_DURATIONS */
  readonly alertFor?: Partial<AlertDurations>;
  /** Where the runbooks live; each alert links `<base>/<AlertName>.md`. @default the runbooks in this repository's docs */
  readonly runbookBaseUrl?: string;
  /** @default '30s' */
  readonly scrapeInterval?: string;
  /** Scrape the pods directly with a PodMonitor instead of a ServiceMonitor. @default false */
  readonly podMonitor?: boolean;
  /**
   * Labels for the ServiceMonitor/PodMonitor and PrometheusRule; kube-prometheus-stack only picks up objects
   * labelled `release: <its release name>`.
   * @default - none
   */
  readonly extraLabels?: Readonly<Record<string, string>>;
  /** A Grafana dashboard in a ConfigMap labelled `grafana_dashboard: "1"` for the Grafana sidecar. @default true */
  readonly dashboard?: boolean;
  /**
   * Also a ConfigMap with the scrape config and rule file for a Prometheus without the Operator.
   * @default false
   */
  readonly plainPrometheusFiles?: boolean;
}

export const DEFAULT_RUNBOOK_BASE_URL = 'https://github.com/modelship/modelship/blob/main/docs/runbooks';

export class ModelMonitoring extends Construct {
  /** The rule groups, as a `groups:` file holds them. */
  readonly ruleGroups: RuleGroup[];
  readonly monitor: ApiObject;
  readonly prometheusRule: ApiObject;
  readonly dashboard?: kplus.ConfigMap;
  private readonly scrapeIntervalValue: string;
  private readonly serviceName: string;
  private readonly namespace?: string;

  constructor(scope: Construct, id: string, props: ModelMonitoringProps) {
    super(scope, id);
    const service = props.service;
    const selector = service.seriesSelector;
    this.serviceName = selector.service;
    this.namespace = selector.namespace;
    const labels: Record<string, string> = { ...(selector.namespace ? { namespace: selector.namespace } : {}), service: selector.service };
    const latency = props.latencyObjective ?? { thresholdSeconds: 0.25, percent: 99 };
    const slos = {
      availability: availabilitySlo(selector, props.availabilityObjective ?? 99.9),
      latency: latencySlo(selector, latency.percent, latency.thresholdSeconds),
    };
    const cpuThreshold = checkShare('cpuThreshold', props.cpuThreshold ?? 0.8);
    const memoryThreshold = checkShare('memoryThreshold', props.memoryThreshold ?? 0.9);
    const durations = { ...DEFAULT_ALERT_DURATIONS, ...props.alertFor };
    for (const [name, value] of Object.entries(durations)) {
      if (!/^(\d+(ms|s|m|h|d|w|y))+$/.test(value)) throw new Error(`'alertFor.${name}' ('${value}') must be a Prometheus duration such as '5m' or '1h30m'`);
    }
    this.scrapeIntervalValue = props.scrapeInterval ?? '30s';
    if (!/^(\d+(ms|s|m|h))+$/.test(this.scrapeIntervalValue)) throw new Error(`'scrapeInterval' ('${this.scrapeIntervalValue}') must be a Prometheus duration such as '30s'`);

    const deploymentName = service.deployment.name;
    const prefix = `modelship-${selector.service}`;
    this.ruleGroups = [
      { name: `${prefix}-slo`, rules: [...sloRecordingRules(slos.availability, labels), ...sloRecordingRules(slos.latency, labels)] },
      {
        name: `${prefix}-alerts`,
        rules: alertRules({
          selector, labels, cpuThreshold, memoryThreshold, durations, deploymentName,
          podPattern: `${deploymentName}-[a-z0-9]+-[a-z0-9]+`, containerName: service.deployment.containers[0].name,
          hpaName: hpaNameOf(props.autoscaler), mayScaleToZero: props.autoscaler?.minReplicas === 0, runbookBaseUrl: props.runbookBaseUrl ?? DEFAULT_RUNBOOK_BASE_URL,
        }, slos),
      },
    ];

    const objectLabels = { ...service.labels, ...props.extraLabels };
    const endpoint = { port: PORT_NAME.http, path: PATHS.metrics, interval: this.scrapeIntervalValue };
    this.monitor = props.podMonitor
      ? new ApiObject(this, 'PodMonitor', {
        apiVersion: 'monitoring.coreos.com/v1', kind: 'PodMonitor', metadata: { labels: objectLabels },
        // A PodMonitor adds no `service` label, and every rule selects on it: add it as a ServiceMonitor would.
        spec: { selector: { matchLabels: selectorLabels(service.labels) }, podMetricsEndpoints: [{ ...endpoint, relabelings: [{ action: 'replace', targetLabel: 'service', replacement: selector.service }] }] },
      })
      : new ApiObject(this, 'ServiceMonitor', {
        apiVersion: 'monitoring.coreos.com/v1', kind: 'ServiceMonitor', metadata: { labels: objectLabels },
        spec: { selector: { matchLabels: selectorLabels(service.labels) }, endpoints: [endpoint] },
      });
    this.prometheusRule = new ApiObject(this, 'PrometheusRule', {
      apiVersion: 'monitoring.coreos.com/v1', kind: 'PrometheusRule', metadata: { labels: objectLabels },
      spec: { groups: this.ruleGroups },
    });
    if (props.plainPrometheusFiles) {
      new kplus.ConfigMap(this, 'PrometheusFiles', { metadata: { labels: objectLabels }, data: this.prometheusFiles() });
    }
    if (props.dashboard ?? true) {
      this.dashboard = new kplus.ConfigMap(this, 'Dashboard', {
        metadata: { labels: { ...service.labels, grafana_dashboard: '1' } },
        data: { [`${selector.service}.json`]: JSON.stringify(dashboardJson(service, selector, slos)) },
      });
    }
  }

  /** The rule groups as a plain Prometheus rule file (`rule_files:`), the seed's setup. */
  rulesFile(): string {
    return YAML.stringify({ groups: this.ruleGroups });
  }

  /**
   * A plain Prometheus scrape config for clusters without the Operator: Kubernetes endpoints discovery kept to
   * this Service's `http` port, with the `namespace`, `service` and `pod` labels the Operator would add, so the
   * same rules work on both.
   */
  scrapeConfig(): Record<string, unknown> {
    return {
      job_name: this.namespace ? `${this.namespace}/${this.serviceName}` : this.serviceName,
      scrape_interval: this.scrapeIntervalValue,
      metrics_path: PATHS.metrics,
      kubernetes_sd_configs: [{ role: 'endpoints', ...(this.namespace ? { namespaces: { names: [this.namespace] } } : {}) }],
      relabel_configs: [
        { source_labels: ['__meta_kubernetes_service_name', '__meta_kubernetes_endpoint_port_name'], regex: `${this.serviceName};${PORT_NAME.http}`, action: 'keep' },
        { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
        { source_labels: ['__meta_kubernetes_service_name'], target_label: 'service' },
        { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
      ],
    };
  }

  /** `prometheus.yml`'s scrape part and the rule file, for a Prometheus configured by hand. */
  prometheusFiles(): { readonly 'scrape-config.yaml': string; readonly 'rules.yaml': string } {
    return { 'scrape-config.yaml': YAML.stringify({ scrape_configs: [this.scrapeConfig()] }), 'rules.yaml': this.rulesFile() };
  }
}

function checkShare(prop: string, value: number): number {
  if (!(value > 0 && value <= 1)) throw new Error(`'${prop}' (${value}) must be a share between 0 and 1, e.g. 0.8 for 80%`);
  return value;
}

/** The HPA kube-state-metrics reports for an autoscaler: its own, or the one KEDA creates for a ScaledObject. */
function hpaNameOf(autoscaler: ModelAutoscaler | undefined): string | undefined {
  if (!autoscaler) return undefined;
  if (autoscaler.hpa) return autoscaler.hpa.name;
  return autoscaler.scaledObject ? `keda-hpa-${autoscaler.scaledObject.name}` : undefined;
}

export { ALERT };
