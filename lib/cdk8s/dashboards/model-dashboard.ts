/**
 * The Grafana dashboard of a ModelService: traffic, errors, latency, the queue and batches, replicas, resources
 * against limits, error budget left, and explanations — every query built from the contract's metric names.
 */
import { createHash } from 'node:crypto';
import { LABEL, METRIC } from '@modelship/contract';
import type { ModelService } from '../model-service';
import { containerMatchers, deploymentMatchers, errorRatio, histogramQuantile, inFlightTotal, latencyQuantile, matchers, requestRate, type SeriesSelector } from '../promql';
import { driftPsiRecord, type DriftRuleOptions } from '../rules/drift';
import { recordedErrorRatio, round, type Slo } from '../rules/slo';

interface Panel { title: string; unit: string; targets: Array<{ expr: string; legendFormat: string }>; description?: string; threshold?: number; fullWidth?: boolean }

/** The explanation panels' description: why their traffic and latency are absent from the error budget panel. */
const EXPLANATIONS_OUTSIDE_SLO = 'Explanations (:explain) run at a lower priority than inference and are not counted in the availability or latency objective.';

/** The service's Deployment, pods and runtime container, as the alerts select them (AlertContext). */
export interface DashboardWorkload {
  readonly deploymentName: string;
  readonly podPattern: string;
  readonly containerName: string;
}

export function dashboardJson(service: ModelService, selector: SeriesSelector, workload: DashboardWorkload, slos: { availability: Slo; latency: Slo }, drift?: DriftRuleOptions) {
  const m = matchers(selector);
  const pods = containerMatchers(selector, workload.podPattern, workload.containerName);
  const budgetLeft = (slo: Slo) => `1 - (${recordedErrorRatio(slo, selector, '3d')} / ${round(1 - slo.objective)})`;
  // With per-version SLOs, the panels that judge a version split by the same labels, so that a canary's traffic,
  // errors, latency and budget sit next to the stable version's instead of inside them.
  const by = slos.availability.by;
  const perVersion = by.includes(LABEL.version);
  const legend = (text: string) => (perVersion ? `{{${LABEL.model}}} v{{${LABEL.version}}} ${text}` : text);
  const panels: Panel[] = [
    { title: 'Requests per second', unit: 'reqps', targets: [{ expr: `sum by (${[...by, LABEL.protocol, LABEL.code].join(', ')}) (rate(${METRIC.requests}${m}[5m]))`, legendFormat: legend('{{protocol}} {{code}}') }, { expr: requestRate(selector, '5m', by), legendFormat: legend('total') }] },
    { title: 'Server error ratio', unit: 'percentunit', targets: [{ expr: errorRatio(selector, '5m', by), legendFormat: legend('5xx share') }] },
    { title: 'Latency', unit: 's', targets: [0.5, 0.95, 0.99].map((q) => ({ expr: latencyQuantile(selector, q, '5m', by), legendFormat: legend(`p${q * 100}`) })) },
    { title: 'Queue time and compute time (p99)', unit: 's', targets: [{ expr: histogramQuantile(METRIC.queueDuration, selector, 0.99), legendFormat: 'queue' }, { expr: histogramQuantile(METRIC.computeDuration, selector, 0.99), legendFormat: 'compute per batch' }] },
    { title: 'Mean batch size', unit: 'short', targets: [{ expr: `sum(rate(${METRIC.batchSize}_sum${m}[5m])) / sum(rate(${METRIC.batchSize}_count${m}[5m]))`, legendFormat: 'rows per run' }] },
    { title: 'In flight and queued', unit: 'short', targets: [{ expr: inFlightTotal(selector), legendFormat: 'in flight' }, { expr: `sum(${METRIC.queueDepth}${m})`, legendFormat: 'queued' }] },
    { title: 'Replicas', unit: 'short', targets: [{ expr: `sum(up${m})`, legendFormat: 'scraped up' }, { expr: `kube_deployment_status_replicas_available{${deploymentMatchers(selector, workload.deploymentName)}}`, legendFormat: 'available' }] },
    { title: 'CPU against limit', unit: 'percentunit', targets: [{ expr: `sum by (pod) (rate(container_cpu_usage_seconds_total{${pods}}[5m])) / sum by (pod) (kube_pod_container_resource_limits{${pods},resource="cpu"})`, legendFormat: '{{pod}}' }] },
    { title: 'Memory against limit', unit: 'percentunit', targets: [{ expr: `max by (pod) (container_memory_working_set_bytes{${pods}}) / max by (pod) (kube_pod_container_resource_limits{${pods},resource="memory"})`, legendFormat: '{{pod}}' }] },
    { title: 'Error budget left (3 days)', unit: 'percentunit', targets: [{ expr: budgetLeft(slos.availability), legendFormat: legend('availability') }, { expr: budgetLeft(slos.latency), legendFormat: legend('latency') }] },
    // Explanations have series of their own, which the SLO rules never read: each runs many perturbed inputs at a
    // lower priority than inference, so its latency says nothing about the latency objective.
    {
      title: 'Explanations per second', unit: 'reqps', description: EXPLANATIONS_OUTSIDE_SLO,
      targets: [{ expr: `sum by (${LABEL.explainer}, ${LABEL.code}) (rate(${METRIC.explainRequests}${m}[5m]))`, legendFormat: `{{${LABEL.explainer}}} {{${LABEL.code}}}` }],
    },
    {
      title: 'Explanation latency', unit: 's', description: EXPLANATIONS_OUTSIDE_SLO,
      targets: [0.5, 0.99].map((q) => ({ expr: histogramQuantile(METRIC.explainDuration, selector, q, '5m', [LABEL.explainer]), legendFormat: `{{${LABEL.explainer}}} p${q * 100}` })),
    },
  ];
  // The drift row: one line per feature, full width (a model may have many), with the alerts' threshold drawn in.
  if (drift) {
    panels.push({
      title: `Drift: PSI per feature over ${drift.window} (alert above ${drift.threshold})`, unit: 'short', threshold: drift.threshold, fullWidth: true,
      targets: [{ expr: `${driftPsiRecord(drift.window)}${matchers(selector)}`, legendFormat: '{{tensor}}[{{feature}}] v{{version}}' }],
    });
  }
  let y = 0;
  const positions = panels.map((p, i) => {
    const previous = panels[i - 1];
    // Half-width panels two to a row; a full-width one starts a row of its own.
    if (i > 0 && (p.fullWidth || previous.fullWidth || (i % 2 === 0))) y += 8;
    return { h: 8, w: p.fullWidth ? 24 : 12, x: p.fullWidth ? 0 : (i % 2) * 12, y };
  });
  return {
    title: `Model ${service.modelName} (${selector.service})`,
    uid: dashboardUid(selector),
    tags: ['modelship'],
    schemaVersion: 39,
    time: { from: 'now-6h', to: 'now' },
    panels: panels.map((p, i) => ({
      id: i + 1, type: 'timeseries', title: p.title, ...(p.description === undefined ? {} : { description: p.description }),
      datasource: { type: 'prometheus', uid: '${datasource}' },
      gridPos: positions[i],
      fieldConfig: {
        defaults: {
          unit: p.unit,
          ...(p.threshold === undefined ? {} : {
            thresholds: { mode: 'absolute', steps: [{ color: 'green', value: null }, { color: 'red', value: p.threshold }] },
            custom: { thresholdsStyle: { mode: 'line' } },
          }),
        },
        overrides: [],
      },
      targets: p.targets.map((t, j) => ({ refId: String.fromCharCode(65 + j), ...t })),
    })),
    templating: { list: [{ name: 'datasource', type: 'datasource', query: 'prometheus' }] },
  };
}

/** Grafana refuses a dashboard uid longer than this. */
const GRAFANA_UID_MAX = 40;

/**
 * The dashboard's uid: unique per (namespace, service), at most 40 characters. Generated service names share long
 * prefixes (`<chart>-<id>-service-<hash>`), so a cut-off name alone makes two services one dashboard, each
 * overwriting the other; a hash of the whole identity keeps them apart, and the readable start says whose it is.
 */
function dashboardUid(selector: SeriesSelector): string {
  const hash = createHash('sha256').update(`${selector.namespace ?? ''}/${selector.service}`).digest('hex').slice(0, 10);
  const readable = `modelship-${selector.service}`.slice(0, GRAFANA_UID_MAX - hash.length - 1).replace(/-+$/, '');
  return `${readable}-${hash}`;
}

/**
 * The dashboard's key in its ConfigMap, which the Grafana sidecar uses as the file name, in one folder for every
 * namespace it watches: named after the uid, so the same service name in two namespaces is two files. Not
 * `<namespace>-<service>`: a Pulumi program may give the namespace as an Output, unknown while the objects are built,
 * and a key cannot be filled in later as values are.
 */
export function dashboardFileName(selector: SeriesSelector): string {
  return `${dashboardUid(selector)}.json`;
}
