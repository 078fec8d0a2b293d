/**
 * ModelMonitoring: how Prometheus scrapes a ModelService (ServiceMonitor or PodMonitor), the recording rules and
 * alerts of its SLOs and resources (PrometheusRule), a Grafana dashboard, and the same scrape config and rules as
 * plain Prometheus files for clusters without the Prometheus Operator.
 */
import { ApiObject, Lazy } from 'cdk8s';
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import * as YAML from 'yaml';
import { parseSettings, PATHS, PORT_NAME, SERVE_SETTINGS } from '@modelship/contract';
import { selectorLabels } from './labels';
import { checkDataKey } from './validation';
import type { ModelAutoscaler } from './model-autoscaler';
import type { ModelService } from './model-service';
import { dashboardFileName, dashboardJson } from './dashboards/model-dashboard';
import { podNamePattern } from './promql';
import { ALERT, alertRules, DEFAULT_ALERT_DURATIONS, type AlertContext, type AlertDurations } from './rules/alerts';
import { DEFAULT_DRIFT_THRESHOLD, DEFAULT_DRIFT_WINDOW, driftRecordingRules, type DriftRuleOptions } from './rules/drift';
import { shadowOptions, type ShadowComparisonOptions } from './shadow-comparison';
import { shadowRecordingRules, type ShadowRuleOptions } from './rules/shadow';
import { availabilitySlo, DEFAULT_AVAILABILITY_OBJECTIVE, DEFAULT_LATENCY_OBJECTIVE, latencySlo, PER_VERSION_LABELS, sloRecordingRules, type RuleGroup, type Slo } from './rules/slo';

export interface LatencyObjective {
  /** Requests faster than this count as good; a bucket boundary of the runtime's latency histogram. */
  readonly thresholdSeconds: number;
  /**
   * Percent (not a fraction: 99, not 0.99) of requests that must be faster. Above 93.0556, as for
   * `availabilityObjective`: below it the 14.4x burn-rate page could never fire.
   */
  readonly percent: number;
}

/** Where the scraper finds the certificate authority that signed the runtime's certificate. */
interface CaReference {
  readonly kind: 'secret' | 'configMap';
  readonly name: string;
  readonly key: string;
}

export interface ScrapeTlsOptions {
  /**
   * The name the runtime's certificate must carry as a DNS SAN. Prometheus scrapes pod IPs, so without it the
   * hostname check would need the pod IPs in the certificate.
   * @default '<service>.<namespace>.svc' ('<service>' when the chart has no namespace)
   */
  readonly serverName?: string;
}

export interface ScrapeTlsFromServiceSecretOptions extends ScrapeTlsOptions {
  /**
   * The key of the ModelService's `tlsSecret` holding the CA certificate. `'tls.crt'` pins the certificate itself
   * (for a self-signed certificate without `ca.crt`); scrapes then fail after a renewal for as long as Prometheus
   * and the pods disagree on the certificate (until both have the renewed Secret).
   * @default 'ca.crt'
   */
  readonly caKey?: string;
}

export interface ScrapeTlsFromCaOptions extends ScrapeTlsOptions {
  /** @default 'ca.crt' */
  readonly key?: string;
}

/**
 * How Prometheus verifies the runtime's certificate when the ModelService serves TLS (`tlsSecret`). The scrape
 * always uses `scheme: https` then; this chooses the trust anchor and the name checked.
 */
export class ScrapeTls {
  /**
   * The CA from the ModelService's own `tlsSecret` (cert-manager writes `ca.crt` there for CA and self-signed
   * issuers), checked against the Service's DNS name. The default.
   */
  static fromServiceSecret(options: ScrapeTlsFromServiceSecretOptions = {}): ScrapeTls {
    const key = checkSecretKey('caKey', options.caKey ?? 'ca.crt');
    return new ScrapeTls((service) => {
      const name = service.tlsSecretName;
      if (!name) throw new Error("'scrapeTls' (ScrapeTls.fromServiceSecret) needs a ModelService with 'tlsSecret'");
      return { ca: { kind: 'secret', name, key } };
    }, options.serverName);
  }

  /** A CA certificate in a Secret of the ModelService's namespace (e.g. a cert-manager CA issuer's Secret). */
  static fromCaSecret(secret: kplus.ISecret, options: ScrapeTlsFromCaOptions = {}): ScrapeTls {
    const key = checkSecretKey('key', options.key ?? 'ca.crt');
    return new ScrapeTls(() => ({ ca: { kind: 'secret', name: secret.name, key } }), options.serverName);
  }

  /** A CA bundle in a ConfigMap of the ModelService's namespace (e.g. one trust-manager distributes). */
  static fromCaConfigMap(configMap: kplus.IConfigMap, options: ScrapeTlsFromCaOptions = {}): ScrapeTls {
    const key = checkSecretKey('key', options.key ?? 'ca.crt');
    return new ScrapeTls(() => ({ ca: { kind: 'configMap', name: configMap.name, key } }), options.serverName);
  }

  /**
   * Encrypts without verifying the certificate: anyone who can intercept pod traffic can read the metrics (and a
   * scrape token). Only where no CA is available, e.g. a certificate the runtime's operators cannot share.
   */
  static insecureSkipVerify(): ScrapeTls {
    return new ScrapeTls(() => ({ insecureSkipVerify: true }), undefined);
  }

  private constructor(
    private readonly resolveCa: (service: ModelService) => { readonly ca?: CaReference; readonly insecureSkipVerify?: boolean },
    private readonly serverName: string | undefined,
  ) {}

  /** @internal */
  _bind(service: ModelService): ResolvedScrapeTls {
    const { ca, insecureSkipVerify } = this.resolveCa(service);
    if (insecureSkipVerify) return { insecureSkipVerify: true };
    const { namespace, service: name } = service.seriesSelector;
    return { ca, serverName: this.serverName ?? (namespace ? `${name}.${namespace}.svc` : name) };
  }
}

interface ResolvedScrapeTls {
  readonly ca?: CaReference;
  readonly serverName?: string;
  readonly insecureSkipVerify?: boolean;
}

/** Directories where a Prometheus without the Operator mounts Secrets and ConfigMaps (the Operator's own layout). */
export interface PlainPrometheusMounts {
  /** `<dir>/<secret name>/<key>`. @default '/etc/prometheus/secrets' */
  readonly secretsDirectory?: string;
  /** `<dir>/<config map name>/<key>`. @default '/etc/prometheus/configmaps' */
  readonly configMapsDirectory?: string;
}

/**
 * Drift alerts: the population stability index (PSI) of each feature of each tensor the drift profile describes,
 * served rows over `window` against the profile's reference shares (< 0.1 stable, 0.1–0.25 moderate, > 0.25
 * significant).
 */
export interface DriftMonitoringOptions {
  /**
   * Record the PSI and alert on it. On without a profile, the rules find no series and stay quiet.
   * @default - true when the service's model source has a drift profile (`service.hasDriftProfile`), false otherwise
   */
  readonly enabled?: boolean;
  /** The PSI above which ModelServiceInputDrift and ModelServicePredictionDrift fire. @default 0.25 */
  readonly threshold?: number;
  /**
   * The window the served distribution is counted over, a Prometheus duration. It names the recorded series,
   * `modelship:drift_psi:<window>`, so that no reader takes one window's PSI for another's. Shorter windows react
   * faster and wobble more on little traffic.
   * @default '1h'
   */
  readonly window?: string;
  /**
   * How long the PSI must stay above the threshold before the alerts fire; the same as
   * `alertFor.ModelServiceInputDrift` and `alertFor.ModelServicePredictionDrift` (give one or the other).
   * @default '30m'
   */
  readonly for?: string;
}

export interface ModelMonitoringProps {
  readonly service: ModelService;
  /**
   * The ModelAutoscaler of `service`. Rarely needed: ModelServiceAutoscalerMaxedOut is added when any autoscaler
   * targets the service's Deployment (a ModelAutoscaler registers itself; a cdk8s-plus HorizontalPodAutoscaler marks
   * the Deployment), found whether it was created before or after this construct; the rule finds the HPA by the
   * Deployment it scales, so it needs no autoscaler's name. ModelServiceDown stays quiet while the Deployment is
   * held at zero replicas on purpose.
   * @default - whatever autoscaler targets `service`; without one, no autoscaler alert
   */
  readonly autoscaler?: ModelAutoscaler;
  /**
   * Percent (not a fraction: 99.9, not 0.999) of requests that must not fail with a server error (5xx, both
   * protocols). Above 93.0556: below it the 14.4x burn-rate page would need more than 100% errors and never fire.
   * @default 99.9
   */
  readonly availabilityObjective?: number;
  /** @default { thresholdSeconds: 0.25, percent: 99 } */
  readonly latencyObjective?: LatencyObjective;
  /**
   * Record the SLO ratios and raise the burn-rate alerts per model version (`by (model, version)`, labels the runtime
   * puts on every series) rather than once for the whole service. Each version is then judged on its own requests:
   * while one service's pods serve two versions (a rolling update of the model, or a model repository serving both),
   * a new version failing on its share of the traffic is not diluted by the other's volume, and an alert names the
   * version it is about. The rule and alert names stay the same; the series and alerts gain `model` and `version`
   * labels. A service serving one version has one series, as without it. The dashboard's traffic, error, latency and
   * budget panels show the versions side by side.
   * @default true
   */
  readonly perVersion?: boolean;
  /** Share of the CPU limit above which ModelServiceHighCPU fires. @default 0.8 */
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
   * How the scrape verifies the runtime's certificate; only with a ModelService that has `tlsSecret`, whose
   * /metrics is then scraped with `scheme: https`. Not `insecureSkipVerify` by default: an unverified scrape
   * would send a scrape token to whoever answers.
   * @default - with `tlsSecret`: ScrapeTls.fromServiceSecret(), the `ca.crt` of that Secret and the Service's DNS
   * name; without: plain http
   */
  readonly scrapeTls?: ScrapeTls;
  /**
   * A Secret holding the bearer token Prometheus sends on each scrape (`authorization` of the ServiceMonitor or
   * PodMonitor), for a runtime whose /metrics needs one (`--auth-exempt health` or `none`). ModelService leaves
   * /metrics open (the runtime's default `--auth-exempt health-and-metrics`), so this is needed only when the
   * runtime's flags or environment were changed; synth fails if they close /metrics without it. The key must hold
   * exactly one token that is also a line of the ModelService's `authTokenKey` (it may be another key of the same
   * Secret as `authTokenSecret`).
   * @default - no token sent
   */
  readonly scrapeTokenSecret?: kplus.ISecret;
  /** The key of `scrapeTokenSecret` holding the token. @default 'token' */
  readonly scrapeTokenKey?: string;
  /**
   * Labels for the ServiceMonitor/PodMonitor and PrometheusRule; kube-prometheus-stack only picks up objects
   * labelled `release: <its release name>`.
   * @default - none
   */
  readonly extraLabels?: Readonly<Record<string, string>>;
  /**
   * Drift alerts and the PSI recording rule. The rules split inputs from outputs by the model's signature when the
   * source read it at synth (ModelSource.fromFile); otherwise ModelServiceInputDrift covers every tensor.
   * @default - on when the service's model source has a drift profile, with threshold 0.25, window '1h', for '30m'
   */
  readonly drift?: DriftMonitoringOptions;
  /**
   * This service is a shadow of another (ModelRoute's `mirror`: it receives a copy of `of`'s requests and its answers
   * are discarded): record how its predictions and its server errors compare with `of`'s, per model, and alert with
   * ModelServiceShadowDiverges when they differ. The predictions are compared when both services' model sources have
   * a drift profile (the runtime counts outputs into the profile's bins only then), and the two profiles must bin the
   * same way; otherwise only the error ratios are. `of` must be scraped (its own ModelMonitoring) for its series to
   * exist.
   * @default - not a shadow: no comparison
   */
  readonly shadow?: ShadowComparisonOptions;
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
  readonly monitor: ApiObject;
  readonly prometheusRule: ApiObject;
  readonly dashboard?: kplus.ConfigMap;
  private readonly scrapeIntervalValue: string;
  private readonly serviceName: string;
  private readonly namespace?: string;
  private readonly tls?: ResolvedScrapeTls;
  private readonly token?: { readonly name: string; readonly key: string };
  /** Everything the alert rules need but the autoscaler, which is looked up when the rules are written. */
  private readonly alertContext: Omit<AlertContext, 'autoscaled'>;
  private readonly slos: { readonly availability: Slo; readonly latency: Slo };
  /** The drift rules' settings, when drift is on. */
  readonly drift?: DriftRuleOptions;
  /** The shadow comparison's settings, when `shadow` names the primary. */
  readonly shadow?: ShadowRuleOptions;
  private readonly service: ModelService;

  constructor(scope: Construct, id: string, props: ModelMonitoringProps) {
    super(scope, id);
    const service = props.service;
    const selector = service.seriesSelector;
    this.serviceName = selector.service;
    this.namespace = selector.namespace;
    const labels: Record<string, string> = { ...(selector.namespace ? { namespace: selector.namespace } : {}), service: selector.service };
    const latency = props.latencyObjective ?? DEFAULT_LATENCY_OBJECTIVE;
    const sloBy = (props.perVersion ?? true) ? PER_VERSION_LABELS : [];
    const slos = {
      availability: availabilitySlo(selector, props.availabilityObjective ?? DEFAULT_AVAILABILITY_OBJECTIVE, sloBy),
      latency: latencySlo(selector, latency.percent, latency.thresholdSeconds, sloBy),
    };
    this.slos = slos;
    this.service = service;
    if (props.autoscaler && props.autoscaler.service !== service) {
      throw new Error(`'autoscaler' (ModelAutoscaler '${props.autoscaler.node.path}') scales ModelService '${props.autoscaler.service.node.path}', not '${service.node.path}': pass the autoscaler of '${service.node.path}', or leave 'autoscaler' out and let it be found`);
    }
    const cpuThreshold = checkShare('cpuThreshold', props.cpuThreshold ?? 0.8);
    const memoryThreshold = checkShare('memoryThreshold', props.memoryThreshold ?? 0.9);
    const drift = driftOptions(props.drift, service);
    this.drift = drift;
    const shadow = props.shadow && shadowOptions(props.shadow, service, labels);
    this.shadow = shadow;
    const durations = { ...DEFAULT_ALERT_DURATIONS, ...driftDurations(props), ...props.alertFor };
    for (const [name, value] of Object.entries(durations)) {
      if (!/^(\d+(ms|s|m|h|d|w|y))+$/.test(value)) throw new Error(`'alertFor.${name}' ('${value}') must be a Prometheus duration such as '5m' or '1h30m'`);
    }
    this.scrapeIntervalValue = props.scrapeInterval ?? '30s';
    if (!/^(\d+(ms|s|m|h))+$/.test(this.scrapeIntervalValue)) throw new Error(`'scrapeInterval' ('${this.scrapeIntervalValue}') must be a Prometheus duration such as '30s'`);

    // The pods and container the resource alerts and the dashboard's panels both select.
    const deploymentName = service.deployment.name;
    const workload = { deploymentName, podPattern: podNamePattern(deploymentName), containerName: service.deployment.containers[0].name };
    this.alertContext = {
      selector, labels, cpuThreshold, memoryThreshold, durations, ...workload, runbookBaseUrl: props.runbookBaseUrl ?? DEFAULT_RUNBOOK_BASE_URL, drift, shadow,
    };

    if (props.scrapeTls && !service.tlsEnabled) {
      throw new Error("'scrapeTls' needs a ModelService with 'tlsSecret': without it the runtime serves plain http; remove 'scrapeTls' or give the service a 'tlsSecret'");
    }
    this.tls = service.tlsEnabled ? (props.scrapeTls ?? ScrapeTls.fromServiceSecret())._bind(service) : undefined;
    if (props.scrapeTokenSecret) {
      this.token = { name: props.scrapeTokenSecret.name, key: checkSecretKey('scrapeTokenKey', props.scrapeTokenKey ?? 'token') };
    } else if (props.scrapeTokenKey !== undefined) {
      throw new Error(`'scrapeTokenKey' ('${props.scrapeTokenKey}') needs 'scrapeTokenSecret'`);
    }
    // The runtime's flags and environment may still change (escape hatches): check them at synth time.
    this.node.addValidation({
      validate: () => (this.token || !metricsNeedToken(service)
        ? []
        : [`the runtime's /metrics needs a bearer token (--${SERVE_SETTINGS.authExempt.flag} is not health-and-metrics), but 'scrapeTokenSecret' is not set: Prometheus would get 401 on every scrape`]),
    });

    const objectLabels = { ...service.labels, ...props.extraLabels };
    const endpoint = {
      port: PORT_NAME.http, path: PATHS.metrics, interval: this.scrapeIntervalValue,
      ...(this.tls ? { scheme: 'https', tlsConfig: operatorTlsConfig(this.tls) } : {}),
      ...(this.token ? { authorization: { type: 'Bearer', credentials: this.token } } : {}),
    };
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
      // Written at synth, when every construct of the app exists: an autoscaler created after this is in them.
      spec: Lazy.any({ produce: () => ({ groups: this.ruleGroups }) }),
    });
    if (props.plainPrometheusFiles) {
      // Each file made by its own producer, at synth: the rules depend on the service's autoscaler.
      new kplus.ConfigMap(this, 'PrometheusFiles', {
        metadata: { labels: objectLabels },
        data: { 'scrape-config.yaml': Lazy.any({ produce: () => this.scrapeConfigFile() }), 'rules.yaml': Lazy.any({ produce: () => this.rulesFile() }) },
      });
    }
    if (props.dashboard ?? true) {
      this.dashboard = new kplus.ConfigMap(this, 'Dashboard', {
        metadata: { labels: { ...service.labels, grafana_dashboard: '1' } },
        data: { [dashboardFileName(selector)]: JSON.stringify(dashboardJson(service, selector, workload, slos, drift)) },
      });
    }
  }

  /** The service's ModelAutoscaler, which registers itself on the service (a given one is that one, checked above). */
  get autoscaler(): ModelAutoscaler | undefined {
    return this.service.autoscaler;
  }

  /**
   * The rule groups, as a `groups:` file holds them; read at synth (or any time after the app is built), since they
   * depend on the service's autoscaler.
   */
  get ruleGroups(): RuleGroup[] {
    const prefix = `modelship-${this.alertContext.selector.service}`;
    const { labels } = this.alertContext;
    return [
      { name: `${prefix}-slo`, rules: [...sloRecordingRules(this.slos.availability, labels), ...sloRecordingRules(this.slos.latency, labels)] },
      // Like the SLO records, the PSI is recorded in its own group ahead of the alerts that read it (the order promtool
      // is told to evaluate in; Prometheus runs groups side by side, so an alert may read the previous evaluation's PSI).
      ...(this.drift ? [{ name: `${prefix}-drift`, rules: driftRecordingRules(this.drift) }] : []),
      ...(this.shadow ? [{ name: `${prefix}-shadow`, rules: shadowRecordingRules(this.shadow) }] : []),
      {
        name: `${prefix}-alerts`,
        rules: alertRules({ ...this.alertContext, autoscaled: this.service.deployment.hasAutoscaler }, this.slos),
      },
    ];
  }

  /** The rule groups as a plain Prometheus rule file (`rule_files:`), for a Prometheus without the Operator. */
  rulesFile(): string {
    return YAML.stringify({ groups: this.ruleGroups });
  }

  /**
   * A plain Prometheus scrape config for clusters without the Operator: Kubernetes endpoints discovery kept to
   * this Service's `http` port, with the `namespace`, `service` and `pod` labels the Operator would add, so the
   * same rules work on both. With TLS or a scrape token, the CA and token are read from files where Prometheus
   * must mount the Secrets or ConfigMaps (`mounts`).
   */
  scrapeConfig(mounts: PlainPrometheusMounts = {}): Record<string, unknown> {
    const secrets = mounts.secretsDirectory ?? '/etc/prometheus/secrets';
    const configMaps = mounts.configMapsDirectory ?? '/etc/prometheus/configmaps';
    const tls = this.tls;
    const caFile = tls?.ca && `${tls.ca.kind === 'secret' ? secrets : configMaps}/${tls.ca.name}/${tls.ca.key}`;
    return {
      job_name: this.namespace ? `${this.namespace}/${this.serviceName}` : this.serviceName,
      scrape_interval: this.scrapeIntervalValue,
      metrics_path: PATHS.metrics,
      ...(tls ? {
        scheme: 'https',
        tls_config: tls.insecureSkipVerify ? { insecure_skip_verify: true } : { ...(caFile ? { ca_file: caFile } : {}), server_name: tls.serverName },
      } : {}),
      ...(this.token ? { authorization: { type: 'Bearer', credentials_file: `${secrets}/${this.token.name}/${this.token.key}` } } : {}),
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
    return { 'scrape-config.yaml': this.scrapeConfigFile(), 'rules.yaml': this.rulesFile() };
  }

  private scrapeConfigFile(): string {
    return YAML.stringify({ scrape_configs: [this.scrapeConfig()] });
  }
}

/** The prometheus-operator `tlsConfig` (SafeTLSConfig, valid on ServiceMonitor and PodMonitor endpoints). */
function operatorTlsConfig(tls: ResolvedScrapeTls): Record<string, unknown> {
  if (tls.insecureSkipVerify) return { insecureSkipVerify: true };
  return {
    ...(tls.ca ? { ca: { [tls.ca.kind]: { name: tls.ca.name, key: tls.ca.key } } } : {}),
    ...(tls.serverName ? { serverName: tls.serverName } : {}),
  };
}

const checkSecretKey = (prop: string, key: string) => checkDataKey(prop, key, 'a Secret or ConfigMap');

/**
 * True when the runtime container's flags or environment protect /metrics: a token file, and `--auth-exempt` other
 * than health-and-metrics, read from the container's args and plain env values with the settings parser the runtime
 * itself uses (@modelship/contract), so flags and variables added through escape hatches count too.
 */
function metricsNeedToken(service: ModelService): boolean {
  const container = service.deployment.containers[0];
  const env = Object.fromEntries(Object.entries(container.env.variables).map(([name, variable]) => [name, variable.value]));
  const [, ...argv] = container.args ?? [];
  const settings = parseSettings(SERVE_SETTINGS, argv, env);
  return Boolean(settings.authTokenFile) && settings.authExempt !== 'health-and-metrics';
}

const DURATION = /^(\d+(ms|s|m|h|d|w|y))+$/;

/** The drift rules' settings, or undefined when drift is off; options that would do nothing are refused. */
function driftOptions(options: DriftMonitoringOptions | undefined, service: ModelService): DriftRuleOptions | undefined {
  const enabled = options?.enabled ?? service.hasDriftProfile;
  if (!enabled) {
    const given = (['threshold', 'window', 'for'] as const).filter((key) => options?.[key] !== undefined);
    if (given.length > 0) {
      const why = options?.enabled === false ? "'drift.enabled' is false" : "the service's model source has no drift profile";
      throw new Error(`'drift.${given[0]}' (${JSON.stringify(options![given[0]])}) has no effect: drift is off because ${why}; give the source a profile (ModelSource.fromUri/fromFile 'profile', fromImage/fromPersistentVolumeClaim { profile: true }) or set 'drift.enabled: true', or remove 'drift.${given[0]}'`);
    }
    return undefined;
  }
  const threshold = options?.threshold ?? DEFAULT_DRIFT_THRESHOLD;
  if (!(Number.isFinite(threshold) && threshold > 0)) throw new Error(`'drift.threshold' (${threshold}) must be a PSI above 0, e.g. 0.25 (significant) or 0.1 (moderate)`);
  const window = options?.window ?? DEFAULT_DRIFT_WINDOW;
  // No 'ms': the window names the recorded series, and a sub-second window counts no rows anyway.
  if (typeof window !== 'string' || !/^(\d+(s|m|h|d|w))+$/.test(window)) throw new Error(`'drift.window' ('${window}') must be a Prometheus duration such as '1h' or '6h'`);
  const signature = service.signature;
  return {
    selector: service.seriesSelector, window, threshold,
    tensors: signature ? { inputs: signature.inputs.map((t) => t.name), outputs: signature.outputs.map((t) => t.name) } : undefined,
  };
}

/** `drift.for` as the two drift alerts' durations; refused next to `alertFor` for either, which would be two answers. */
function driftDurations(props: ModelMonitoringProps): Partial<AlertDurations> {
  const value = props.drift?.for;
  if (value === undefined) return {};
  const both = [ALERT.inputDrift, ALERT.predictionDrift] as const;
  const clash = both.find((name) => props.alertFor?.[name] !== undefined);
  if (clash) throw new Error(`'drift.for' ('${value}') and 'alertFor.${clash}' ('${props.alertFor![clash]}') both set how long drift must last; remove one of them`);
  if (typeof value !== 'string' || !DURATION.test(value)) throw new Error(`'drift.for' ('${value}') must be a Prometheus duration such as '30m' or '2h'`);
  return { [both[0]]: value, [both[1]]: value };
}

function checkShare(prop: string, value: number): number {
  if (!(value > 0 && value <= 1)) throw new Error(`'${prop}' (${value}) must be a share between 0 and 1, e.g. 0.8 for 80%`);
  return value;
}

export { ALERT };
