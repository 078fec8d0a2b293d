/**
 * ModelMonitoring's rules through Prometheus' own tooling: `promtool check rules` on the plain rules file and on the
 * PrometheusRule's spec, and `promtool test rules` on unit tests generated here from the synthesized names. Every
 * alert is driven with realistic series (the runtime's metrics as a ServiceMonitor labels them, cAdvisor's and
 * kube-state-metrics' as kube-prometheus-stack scrapes them): it fires on the condition it names, with its severity,
 * and stays quiet on healthy input next to noisy neighbours. A mutated expectation must make promtool fail, so these
 * tests can fail.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Chart, Testing } from 'cdk8s';
import * as YAML from 'yaml';
import {
  ALERT, DEFAULT_ALERT_DURATIONS, ModelAutoscaler, ModelMonitoring, ModelService, ModelSource, ScalingSignal,
  type AlertName, type ModelMonitoringProps, type Rule,
} from 'modelship';
import { DRIFT_BINS, DRIFT_PROFILE_FORMAT, METRIC, type DriftProfile } from '@modelship/contract';
import { MODELS } from '../helpers/paths';

const PROMTOOL = process.env.PROMTOOL ?? '/usr/bin/promtool';

type Labels = Record<string, string>;
type Manifest = { kind: string; metadata: { name: string; namespace?: string }; spec?: any };

// ---------------------------------------------------------------------------------------------------------------
// The construct under test, and the names Prometheus sees

interface Synthesized {
  readonly monitoring: ModelMonitoring;
  readonly objects: Manifest[];
  readonly names: { readonly namespace: string; readonly service: string; readonly deployment: string; readonly hpa: string };
}

function synthesize(props: Partial<ModelMonitoringProps> = {}): Synthesized {
  const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
  // With a drift profile in the image, so the drift rules are there; the signature is not known, so there is no
  // ModelServicePredictionDrift (the drift tests below use a model whose signature is).
  const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('r/m:1', { profile: true }) });
  const autoscaler = new ModelAutoscaler(chart, 'auto', { service });
  const monitoring = new ModelMonitoring(chart, 'mon', { service, autoscaler, ...props });
  const objects = Testing.synth(chart) as Manifest[];
  const one = (kind: string) => {
    const found = objects.filter((o) => o.kind === kind);
    assert.equal(found.length, 1, `one ${kind}, found ${found.length}`);
    return found[0];
  };
  const deployment = one('Deployment');
  return {
    monitoring,
    objects,
    names: {
      namespace: deployment.metadata.namespace!,
      service: one('Service').metadata.name,
      deployment: deployment.metadata.name,
      hpa: one('HorizontalPodAutoscaler').metadata.name,
    },
  };
}

/**
 * The smallest program with KEDA scaling to zero: ModelMonitoring is given only the service, and created before the
 * autoscaler, so it must find the autoscaler on its own.
 */
function synthesizeScaleToZero(): Synthesized {
  const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
  const service = new ModelService(chart, 'fraud', { model: ModelSource.fromImage('r/m:1', { profile: true }) });
  const monitoring = new ModelMonitoring(chart, 'mon', { service });
  new ModelAutoscaler(chart, 'auto', {
    service, minReplicas: 0,
    signal: ScalingSignal.inFlightRequestsWithKeda({ target: 2, prometheusAddress: 'http://p:9090', activation: { query: 'sum(queue_length)' } }),
  });
  const objects = Testing.synth(chart) as Manifest[];
  const of = (kind: string) => objects.find((o) => o.kind === kind)!;
  return {
    monitoring,
    objects,
    names: {
      namespace: of('Deployment').metadata.namespace!, service: of('Service').metadata.name,
      deployment: of('Deployment').metadata.name, hpa: `keda-hpa-${of('ScaledObject').metadata.name}`,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// promtool

interface RunResult { readonly code: number; readonly output: string }

function promtool(cwd: string, ...args: string[]): Promise<RunResult> {
  return new Promise((resolve) => {
    execFile(PROMTOOL, args, { cwd, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

async function assertPromtoolPasses(cwd: string, ...args: string[]): Promise<string> {
  const result = await promtool(cwd, ...args);
  assert.equal(result.code, 0, `promtool ${args.join(' ')} exited ${result.code} in ${cwd}:\n${result.output}`);
  return result.output;
}

// ---------------------------------------------------------------------------------------------------------------
// Input series in promtool's expanding notation, one sample per minute

interface Series { readonly name: string; readonly labels: Labels; readonly values: string }
const num = (n: number) => String(Number(n.toPrecision(12)));
const seriesText = (s: Series) => `${s.name}{${Object.entries(s.labels).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
const input = (series: Series[]) => series.map((s) => ({ series: seriesText(s), values: s.values }));

/** A counter: 0 at t=0, then per phase `steps` samples, each `perStep` higher than the one before. */
function counter(...phases: Array<readonly [perStep: number, steps: number]>): string {
  let value = 0;
  const parts = ['0'];
  for (const [perStep, steps] of phases) {
    parts.push(`${num(value + perStep)}+${num(perStep)}x${steps - 1}`);
    value += perStep * steps;
  }
  return parts.join(' ');
}

/** A gauge: per phase `samples` samples of `value` (`_` for none: the series is not scraped). */
const gauge = (...phases: Array<readonly [value: number | '_', samples: number]>) =>
  phases.map(([value, samples]) => `${value === '_' ? '_' : num(value)}x${samples - 1}`).join(' ');

/** Explicit samples, e.g. a counter that steps irregularly. */
const samples = (...values: number[]) => values.map(num).join(' ');

const GiB = 2 ** 30;

/** The model version the world's runtime serves (the one the SLO series and alerts carry per version). */
const MODEL = 'fraud';
const VERSION = '3';

/** One traffic phase: requests per minute, the share answered 5xx, and the share slower than the latency threshold. */
interface TrafficPhase { readonly minutes: number; readonly perMinute: number; readonly errorShare: number; readonly slowShare: number }

/**
 * The world around one ModelService as kube-prometheus-stack scrapes it: the runtime's series (ServiceMonitor target
 * labels), cAdvisor's (kubelet) and kube-state-metrics' (honorLabels), for pods of the Deployment and for noisy
 * neighbours that the rules must not select.
 */
function world(names: Synthesized['names']) {
  const { namespace } = names;
  const podA = `${names.deployment}-5d8f7c9b4-x2x7q`;
  const podB = `${names.deployment}-5d8f7c9b4-k8m2p`;
  // Pods the rules must ignore: another Deployment whose name extends this one's, and this one's name in another namespace.
  const shadowPod = `${names.deployment}-shadow-6b7c8d9f5-j4k2m`;
  const otherService = 'fraud-detection-shadow-service-c8f1d2a3';
  const ip: Record<string, string> = { [podA]: '10.42.1.17', [podB]: '10.42.2.9', [shadowPod]: '10.42.3.4' };

  const runtimeTarget = (pod: string, service = names.service, ns = namespace): Labels => ({
    namespace: ns, service, job: service, endpoint: 'http', container: 'runtime', pod, instance: `${ip[pod] ?? '10.42.9.9'}:8080`,
  });
  const ksm = (ns = namespace): Labels => ({
    namespace: ns, job: 'kube-state-metrics', service: 'kube-state-metrics', endpoint: 'http', instance: '10.42.0.5:8080',
  });
  const ksmContainer = (pod: string, container = 'runtime', ns = namespace): Labels => ({
    ...ksm(ns), pod, container, uid: `uid-${pod.slice(-5)}`,
  });
  const cadvisor = (pod: string, container = 'runtime', ns = namespace): Labels => ({
    namespace: ns, pod, container, job: 'kubelet', service: 'kubelet', endpoint: 'https-metrics', metrics_path: '/metrics/cadvisor',
    node: 'node-a', instance: '10.0.0.11:10250', ...(container ? { image: 'r/m:1' } : {}),
  });

  /**
   * The runtime's request counter and latency histogram for `phases`: good requests on REST and gRPC, errors as REST
   * 500s; slow requests land in the 0.5 s bucket, fast ones in the 0.1 s bucket. One sample every `stepMinutes`.
   */
  function traffic(phases: TrafficPhase[], target = runtimeTarget(podA), stepMinutes = 1, version = VERSION): Series[] {
    const streams = [
      { protocol: 'rest', code: '200', share: (p: TrafficPhase) => (1 - p.errorShare) * (2 / 3) },
      { protocol: 'grpc', code: '200', share: (p: TrafficPhase) => (1 - p.errorShare) / 3 },
      { protocol: 'rest', code: '500', share: (p: TrafficPhase) => p.errorShare },
    ];
    return streams.flatMap(({ protocol, code, share }): Series[] => {
      const labels = { ...target, model: MODEL, version, protocol, code };
      const all = (p: TrafficPhase) => p.perMinute * share(p);
      const fast = (p: TrafficPhase) => all(p) * (1 - p.slowShare);
      const of = (perMinute: (p: TrafficPhase) => number) => counter(...phases.map((p) => [perMinute(p) * stepMinutes, p.minutes / stepMinutes] as const));
      return [
        { name: METRIC.requests, labels, values: of(all) },
        { name: `${METRIC.requestDuration}_bucket`, labels: { ...labels, le: '0.1' }, values: of(fast) },
        { name: `${METRIC.requestDuration}_bucket`, labels: { ...labels, le: '0.25' }, values: of(fast) },
        { name: `${METRIC.requestDuration}_bucket`, labels: { ...labels, le: '0.5' }, values: of(all) },
        { name: `${METRIC.requestDuration}_bucket`, labels: { ...labels, le: '+Inf' }, values: of(all) },
        { name: `${METRIC.requestDuration}_count`, labels, values: of(all) },
      ];
    });
  }

  /** Everything a healthy service reports for `minutes`, next to a noisy neighbour that breaks every rule. */
  function healthy(minutes: number): Series[] {
    const steady = (value: number) => gauge([value, minutes + 1]);
    const shadowTarget = runtimeTarget(shadowPod, otherService);
    return [
      ...traffic([{ minutes, perMinute: 1200, errorShare: 0.0001, slowShare: 0.001 }]),
      // Another service in the namespace failing half its requests, slowly.
      ...traffic([{ minutes, perMinute: 600, errorShare: 0.5, slowShare: 0.5 }], shadowTarget),
      ...[podA, podB].flatMap((pod): Series[] => [
        { name: 'up', labels: runtimeTarget(pod), values: steady(1) },
        { name: METRIC.modelReady, labels: { ...runtimeTarget(pod), model: 'fraud', version: '3' }, values: steady(1) },
        { name: 'container_cpu_usage_seconds_total', labels: cadvisor(pod), values: counter([0.3 * 60, minutes]) },
        // The pod cgroup (container="") and a sidecar, which the per-container rules must not add in.
        { name: 'container_cpu_usage_seconds_total', labels: cadvisor(pod, ''), values: counter([0.35 * 60, minutes]) },
        { name: 'container_cpu_usage_seconds_total', labels: cadvisor(pod, 'istio-proxy'), values: counter([0.05 * 60, minutes]) },
        { name: 'kube_pod_container_resource_limits', labels: { ...ksmContainer(pod), resource: 'cpu', unit: 'core' }, values: steady(1) },
        { name: 'kube_pod_container_resource_limits', labels: { ...ksmContainer(pod, 'istio-proxy'), resource: 'cpu', unit: 'core' }, values: steady(0.05) },
        { name: 'container_memory_working_set_bytes', labels: cadvisor(pod), values: steady(1.1 * GiB) },
        { name: 'container_memory_working_set_bytes', labels: cadvisor(pod, ''), values: steady(1.95 * GiB) },
        { name: 'kube_pod_container_resource_limits', labels: { ...ksmContainer(pod), resource: 'memory', unit: 'byte' }, values: steady(2 * GiB) },
        { name: 'kube_pod_container_status_restarts_total', labels: ksmContainer(pod), values: steady(0) },
      ]),
      // The neighbour: down, model not ready, pinned at 100% CPU and memory, OOM-killed and crash-looping.
      { name: 'up', labels: shadowTarget, values: steady(0) },
      { name: METRIC.modelReady, labels: { ...shadowTarget, model: 'fraud', version: '4' }, values: steady(0) },
      { name: 'container_cpu_usage_seconds_total', labels: cadvisor(shadowPod), values: counter([60, minutes]) },
      { name: 'kube_pod_container_resource_limits', labels: { ...ksmContainer(shadowPod), resource: 'cpu', unit: 'core' }, values: steady(1) },
      { name: 'container_memory_working_set_bytes', labels: cadvisor(shadowPod), values: steady(2 * GiB) },
      { name: 'kube_pod_container_resource_limits', labels: { ...ksmContainer(shadowPod), resource: 'memory', unit: 'byte' }, values: steady(2 * GiB) },
      { name: 'kube_pod_container_status_restarts_total', labels: ksmContainer(shadowPod), values: counter([0.5, minutes]) },
      { name: 'kube_pod_container_status_last_terminated_reason', labels: { ...ksmContainer(shadowPod), reason: 'OOMKilled' }, values: steady(1) },
      { name: 'kube_pod_container_status_waiting_reason', labels: { ...ksmContainer(shadowPod), reason: 'CrashLoopBackOff' }, values: steady(1) },
      // This Deployment's name in another namespace, OOM-killed.
      { name: 'kube_pod_container_status_restarts_total', labels: ksmContainer(podA, 'runtime', 'staging'), values: counter([0.2, minutes]) },
      { name: 'kube_pod_container_status_last_terminated_reason', labels: { ...ksmContainer(podA, 'runtime', 'staging'), reason: 'OOMKilled' }, values: steady(1) },
      // The Deployment scales from 2 to 4 at minute 20 and its pods are available 2 minutes later.
      { name: 'kube_deployment_spec_replicas', labels: { ...ksm(), deployment: names.deployment }, values: gauge([2, 20], [4, minutes - 19]) },
      { name: 'kube_deployment_status_replicas_available', labels: { ...ksm(), deployment: names.deployment }, values: gauge([2, 22], [4, minutes - 21]) },
      { name: 'kube_deployment_spec_replicas', labels: { ...ksm(), deployment: `${names.deployment}-shadow` }, values: steady(3) },
      { name: 'kube_deployment_status_replicas_available', labels: { ...ksm(), deployment: `${names.deployment}-shadow` }, values: steady(0) },
      { name: 'kube_horizontalpodautoscaler_status_current_replicas', labels: { ...ksm(), horizontalpodautoscaler: names.hpa }, values: gauge([2, 20], [4, minutes - 19]) },
      { name: 'kube_horizontalpodautoscaler_spec_min_replicas', labels: { ...ksm(), horizontalpodautoscaler: names.hpa }, values: steady(2) },
      { name: 'kube_horizontalpodautoscaler_spec_max_replicas', labels: { ...ksm(), horizontalpodautoscaler: names.hpa }, values: steady(10) },
      { name: 'kube_horizontalpodautoscaler_info', labels: { ...ksm(), horizontalpodautoscaler: names.hpa, scaletargetref_kind: 'Deployment', scaletargetref_name: names.deployment }, values: steady(1) },
      { name: 'kube_horizontalpodautoscaler_status_current_replicas', labels: { ...ksm(), horizontalpodautoscaler: 'fraud-detection-shadow-hpa-c1d2e3f4' }, values: steady(5) },
      { name: 'kube_horizontalpodautoscaler_spec_min_replicas', labels: { ...ksm(), horizontalpodautoscaler: 'fraud-detection-shadow-hpa-c1d2e3f4' }, values: steady(2) },
      { name: 'kube_horizontalpodautoscaler_spec_max_replicas', labels: { ...ksm(), horizontalpodautoscaler: 'fraud-detection-shadow-hpa-c1d2e3f4' }, values: steady(5) },
      { name: 'kube_horizontalpodautoscaler_info', labels: { ...ksm(), horizontalpodautoscaler: 'fraud-detection-shadow-hpa-c1d2e3f4', scaletargetref_kind: 'Deployment', scaletargetref_name: `${names.deployment}-shadow` }, values: steady(1) },
    ];
  }

  return { podA, podB, otherService, runtimeTarget, ksm, ksmContainer, cadvisor, traffic, healthy };
}

// ---------------------------------------------------------------------------------------------------------------
// Expected alerts: labels as the rule produces them, annotations rendered from the rule's own templates

interface ExpAlert { readonly exp_labels: Labels; readonly exp_annotations: Labels }
interface AlertRuleTest { eval_time: string; alertname: string; exp_alerts: ExpAlert[] }
interface ExprTest { expr: string; eval_time: string; exp_samples: Array<{ labels: string; value: number }> }
interface TestGroup { interval: string; input_series: Array<{ series: string; values: string }>; alert_rule_test?: AlertRuleTest[]; promql_expr_test?: ExprTest[] }

/** Prometheus' humanizePercentage (`%.4g%%`) for values that need no exponent. */
const humanizePercentage = (ratio: number) => `${Number((ratio * 100).toPrecision(4))}%`;

interface TestFileOptions { readonly ruleFile?: string; readonly evaluationInterval?: string }
const minutes = (m: number) => `${m}m`;

/**
 * An SLO ratio rounded to 1e-6: the recorded ratios carry the float noise of subtracting large counter values, and
 * promtool 2.42 compares samples exactly.
 */
function ratioTest(record: string, evalMinutes: number, expected: Record<string, number>, labels: (slo: 'availability' | 'latency') => Labels): ExprTest {
  return {
    expr: `round(${record}, 0.000001)`,
    eval_time: minutes(evalMinutes),
    exp_samples: Object.entries(expected).map(([slo, value]) => ({ labels: seriesText({ name: '', labels: labels(slo as 'availability' | 'latency'), values: '' }), value })),
  };
}

function expectations(synth: Synthesized) {
  const rules = synth.monitoring.ruleGroups.flatMap((g) => g.rules);
  const ruleOf = (name: AlertName, severity: string): Rule => {
    const found = rules.filter((r) => r.alert === name && r.labels?.severity === severity);
    assert.equal(found.length, 1, `one ${severity} ${name} rule`);
    return found[0];
  };
  /** Renders the few template forms the rules use; anything else is a template this test does not know. */
  const render = (template: string, labels: Labels, value: string | undefined) => {
    const out = template.replace(/\{\{\s*(.*?)\s*\}\}/g, (whole, inner: string) => {
      const label = /^\$labels\.(\w+)$/.exec(inner);
      if (label) {
        assert.ok(label[1] in labels, `annotation template ${whole} names a label the alert does not carry`);
        return labels[label[1]];
      }
      if (/^\$value( \| humanizePercentage)?$/.test(inner) || inner === 'printf "%.0f" $value' || inner === 'printf "%.2f" $value') {
        assert.ok(value !== undefined, `annotation template ${whole} needs the expected value`);
        return value;
      }
      throw new Error(`unknown annotation template ${whole}`);
    });
    return out;
  };
  /** One expected alert of rule `name`/`severity`: the series' labels (without `__name__`), then the rule's labels. */
  const alert = (name: AlertName, severity: string, seriesLabels: Labels, value?: string): ExpAlert => {
    const rule = ruleOf(name, severity);
    const labels = { ...seriesLabels, ...rule.labels };
    assert.equal(labels.severity, severity);
    const annotations = Object.fromEntries(Object.entries(rule.annotations ?? {}).map(([k, v]) => [k, render(v, labels, value)]));
    return { exp_labels: labels, exp_annotations: annotations };
  };
  /**
   * The labels of a service-wide SLO series and burn-rate alert (`perVersion: false`), and of the objective and budget,
   * which are the same for every version.
   */
  const serviceSloLabels = (slo: 'availability' | 'latency'): Labels => ({ namespace: synth.names.namespace, service: synth.names.service, slo });
  /** The labels of a per-version SLO series and burn-rate alert (the default). */
  const sloLabels = (slo: 'availability' | 'latency', version = VERSION): Labels => ({ ...serviceSloLabels(slo), model: MODEL, version });
  return { alert, sloLabels, serviceSloLabels };
}

const ALL_ALERTS = Object.values(ALERT);

// ---------------------------------------------------------------------------------------------------------------

describe('ModelMonitoring rules under promtool', { concurrency: true }, () => {
  let dir: string;
  let keep = false;
  const synth = synthesize();
  const { names } = synth;
  const w = world(names);
  const { alert, sloLabels, serviceSloLabels } = expectations(synth);

  /** Writes a `promtool test rules` file into the temp dir (against rules.yaml unless told otherwise). */
  const writeTests = (file: string, tests: TestGroup[], options: TestFileOptions = {}) => {
    const { ruleFile = 'rules.yaml', evaluationInterval = '1m' } = options;
    // Recording rules first, so that alerts read this evaluation's ratios: promtool's order is random otherwise.
    const group_eval_order = synth.monitoring.ruleGroups.map((g) => g.name);
    writeFileSync(join(dir, file), YAML.stringify({ rule_files: [ruleFile], evaluation_interval: evaluationInterval, group_eval_order, tests }, { lineWidth: 0 }));
    return file;
  };
  /** Writes and runs a test file; fails with promtool's output unless it exits 0. */
  const runTests = async (file: string, tests: TestGroup[], options: TestFileOptions & { readonly todo?: boolean } = {}) => {
    try {
      return await assertPromtoolPasses(dir, 'test', 'rules', writeTests(file, tests, options));
    } catch (error) {
      keep ||= !options.todo;
      throw error;
    }
  };

  before(() => {
    assert.ok(existsSync(PROMTOOL), `${PROMTOOL} is missing: install Debian's 'prometheus' package (apt-get install -y prometheus); .ci/run installs it`);
    dir = mkdtempSync(join(tmpdir(), 'modelship-promtool-'));
    writeFileSync(join(dir, 'rules.yaml'), synth.monitoring.rulesFile());
  });
  after(() => {
    if (keep) console.error(`promtool inputs kept in ${dir}`);
    else if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('passes promtool check rules, as a rules file and as the PrometheusRule spec', async () => {
    const prometheusRule = synth.objects.find((o) => o.kind === 'PrometheusRule');
    assert.ok(prometheusRule, 'a PrometheusRule');
    assert.deepEqual(prometheusRule.spec, YAML.parse(synth.monitoring.rulesFile()), 'the PrometheusRule holds the rules file');
    writeFileSync(join(dir, 'prometheus-rule-spec.yaml'), YAML.stringify(prometheusRule.spec));
    const output = await assertPromtoolPasses(dir, 'check', 'rules', '--lint=all', '--lint-fatal', 'rules.yaml', 'prometheus-rule-spec.yaml');
    const ruleCount = synth.monitoring.ruleGroups.reduce((n, g) => n + g.rules.length, 0);
    assert.equal(output.match(new RegExp(`SUCCESS: ${ruleCount} rules found`, 'g'))?.length, 2, output);
    const alerts = new Set(synth.monitoring.ruleGroups.flatMap((g) => g.rules.map((r) => r.alert).filter(Boolean)));
    // Without a signature, inputs and outputs cannot be told apart: ModelServiceInputDrift covers every tensor.
    // ModelServiceShadowDiverges only exists for a service that shadows another (`shadow`), which this one does not.
    assert.deepEqual([...alerts].sort(), ALL_ALERTS.filter((a) => a !== ALERT.predictionDrift && a !== ALERT.shadowDiverges).sort(), 'every alert of the contract is a rule');
  });

  // -------------------------------------------------------------------------------------------------------------
  // Healthy input: nothing fires, whatever the neighbours do

  const healthyGroup = (length: number, evalTimes: number[]): TestGroup => ({
    interval: '1m',
    input_series: input(w.healthy(length)),
    alert_rule_test: evalTimes.flatMap((t) => ALL_ALERTS.map((alertname) => ({ eval_time: minutes(t), alertname, exp_alerts: [] }))),
    promql_expr_test: [ratioTest('slo:sli_error:ratio_rate1h', length, { availability: 0.0001, latency: 0.001 }, sloLabels)],
  });

  it('stays quiet on a healthy service (0.01% errors, 0.1% slow, a scale-up) next to a neighbour that breaks every rule', async () => {
    await runTests('healthy.test.yaml', [healthyGroup(6 * 60, [10, 21, 60, 6 * 60])]);
  });

  it('fails when a test expects what did not happen (negative controls)', async () => {
    // A page on healthy input.
    const healthy = healthyGroup(90, [60]);
    healthy.alert_rule_test!.find((t) => t.alertname === ALERT.errorBudgetBurn)!.exp_alerts = [alert(ALERT.errorBudgetBurn, 'critical', sloLabels('availability'), '10%')];
    // The right alert with the wrong severity.
    const down = downGroup();
    const firing = down.alert_rule_test!.find((t) => t.exp_alerts.length > 0)!;
    firing.exp_alerts = firing.exp_alerts.map((a) => ({ ...a, exp_labels: { ...a.exp_labels, severity: 'warning' } }));
    for (const [file, group, alertname] of [['negative-healthy.test.yaml', healthy, ALERT.errorBudgetBurn], ['negative-severity.test.yaml', down, ALERT.down]] as const) {
      const result = await promtool(dir, 'test', 'rules', writeTests(file, [group]));
      assert.notEqual(result.code, 0, `promtool passed ${file}:\n${result.output}`);
      assert.match(result.output, /FAILED/, result.output);
      assert.match(result.output, new RegExp(`alertname: ${alertname}, time: `), result.output);
    }
  });

  // -------------------------------------------------------------------------------------------------------------
  // Burn rates

  it('pages on a fast burn (10% errors, 50% slow after 6 healthy hours): critical first, then the ticket too', async () => {
    const start = 360;
    const none = (t: number) => [ALERT.errorBudgetBurn, ALERT.latencyBudgetBurn].map((alertname) => ({ eval_time: minutes(t), alertname, exp_alerts: [] }));
    const group: TestGroup = {
      interval: '1m',
      input_series: input(w.traffic([
        { minutes: start, perMinute: 1200, errorShare: 0.0001, slowShare: 0.001 },
        { minutes: 120, perMinute: 1200, errorShare: 0.1, slowShare: 0.5 },
      ])),
      alert_rule_test: [
        // The last healthy minute, and 5 minutes into the burn: the 1 h window has not seen enough yet.
        ...none(start),
        ...none(start + 5),
        // 16 minutes in, the 1 h window reads 2.67% errors (27× the budget of 99.9%), and has been past 14.4× for over
        // 2 minutes: the page. The ticket's windows are past 3× too, but its 15 minutes have not run yet (its pending
        // state is read from ALERTS below).
        {
          eval_time: minutes(start + 16), alertname: ALERT.errorBudgetBurn,
          exp_alerts: [alert(ALERT.errorBudgetBurn, 'critical', sloLabels('availability'), humanizePercentage((16 * 120 + 44 * 0.12) / (60 * 1200)))],
        },
        // 50% slow against a 1% budget: the 1 h window passes 14.4% after some 17 minutes.
        { eval_time: minutes(start + 16), alertname: ALERT.latencyBudgetBurn, exp_alerts: [] },
        // 90 minutes in, every window reads the burn: both severities (Alertmanager inhibits the ticket).
        {
          eval_time: minutes(start + 90), alertname: ALERT.errorBudgetBurn, exp_alerts: [
            alert(ALERT.errorBudgetBurn, 'critical', sloLabels('availability'), '10%'),
            alert(ALERT.errorBudgetBurn, 'warning', sloLabels('availability')),
          ],
        },
        {
          eval_time: minutes(start + 90), alertname: ALERT.latencyBudgetBurn, exp_alerts: [
            alert(ALERT.latencyBudgetBurn, 'critical', sloLabels('latency'), '50%'),
            alert(ALERT.latencyBudgetBurn, 'warning', sloLabels('latency')),
          ],
        },
      ],
      promql_expr_test: [
        {
          expr: `ALERTS{alertname="${ALERT.errorBudgetBurn}"}`,
          eval_time: minutes(start + 16),
          exp_samples: [
            { labels: seriesText({ name: 'ALERTS', labels: { alertname: ALERT.errorBudgetBurn, alertstate: 'firing', ...sloLabels('availability'), severity: 'critical' }, values: '' }), value: 1 },
            { labels: seriesText({ name: 'ALERTS', labels: { alertname: ALERT.errorBudgetBurn, alertstate: 'pending', ...sloLabels('availability'), severity: 'warning' }, values: '' }), value: 1 },
          ],
        },
        ...['5m', '30m', '1h'].map((window) => ratioTest(`slo:sli_error:ratio_rate${window}`, start + 90, { availability: 0.1, latency: 0.5 }, sloLabels)),
        ratioTest('slo:sli_error:ratio_rate1h', start, { availability: 0.0001, latency: 0.001 }, sloLabels),
        ratioTest('slo:error_budget:ratio', start, { availability: 0.001, latency: 0.01 }, serviceSloLabels),
        ratioTest('slo:objective:ratio', start, { availability: 0.999, latency: 0.99 }, serviceSloLabels),
      ],
    };
    await runTests('fast-burn.test.yaml', [group]);
  });

  it('opens a ticket, never a page, on a slow burn (0.4% errors, 4% slow for a day after 12 healthy hours)', async () => {
    // Samples and evaluations every 2 minutes: a day and a half of 1 d and 3 d windows stays within seconds.
    const healthy = 12 * 60;
    const day = 24 * 60;
    const group: TestGroup = {
      interval: '2m',
      input_series: input(w.traffic([
        { minutes: healthy, perMinute: 1200, errorShare: 0.0001, slowShare: 0.001 },
        { minutes: day, perMinute: 1200, errorShare: 0.004, slowShare: 0.04 },
      ], undefined, 2)),
      alert_rule_test: [
        // 12 healthy hours, then 3 hours at 4× the budget: not yet worth a ticket.
        ...[healthy, healthy + 3 * 60].flatMap((t) => [ALERT.errorBudgetBurn, ALERT.latencyBudgetBurn].map((alertname) => ({ eval_time: minutes(t), alertname, exp_alerts: [] }))),
        // Once the 3 d window (all 15+ hours of it) is past 1× the budget, and the 6 h one is: a warning, only a warning.
        ...[healthy + 5 * 60, healthy + day].flatMap((t) => [
          { eval_time: minutes(t), alertname: ALERT.errorBudgetBurn, exp_alerts: [alert(ALERT.errorBudgetBurn, 'warning', sloLabels('availability'))] },
          { eval_time: minutes(t), alertname: ALERT.latencyBudgetBurn, exp_alerts: [alert(ALERT.latencyBudgetBurn, 'warning', sloLabels('latency'))] },
        ]),
      ],
      promql_expr_test: [
        ratioTest('slo:sli_error:ratio_rate1d', healthy + day, { availability: 0.004, latency: 0.04 }, sloLabels),
        ratioTest('slo:sli_error:ratio_rate6h', healthy, { availability: 0.0001, latency: 0.001 }, sloLabels),
      ],
    };
    await runTests('slow-burn.test.yaml', [group], { evaluationInterval: '2m' });
  });

  // -------------------------------------------------------------------------------------------------------------
  // Per version: a canary next to a stable version in one service

  /**
   * The service's pods serve two versions of the model, as during a rolling update of the model or from a model
   * repository holding both: stable (version 1) takes 9 requests in 10 and is healthy; the canary (version 2) takes
   * the tenth and fails 5% of its requests with 500s (50× the availability budget) or answers half of them slower
   * than the threshold (50× the latency budget). Over the whole service those are 0.51% errors and 5.1% slow
   * requests: 5× the budget, under the 6× and 14.4× of the pages.
   */
  describe('per version: a failing canary next to a healthy stable version', () => {
    const STABLE = '1';
    const CANARY = '2';
    const serviceWide = synthesize({ perVersion: false });
    const serviceWideExpect = expectations(serviceWide);
    const canaryTraffic = (canary: Omit<TrafficPhase, 'minutes' | 'perMinute'>) => input([
      ...w.traffic([{ minutes: 40, perMinute: 1080, errorShare: 0.0001, slowShare: 0.001 }], w.runtimeTarget(w.podA), 1, STABLE),
      ...w.traffic([{ minutes: 40, perMinute: 120, ...canary }], w.runtimeTarget(w.podB), 1, CANARY),
    ]);
    const errors = { errorShare: 0.05, slowShare: 0.001 };
    const slow = { errorShare: 0.0001, slowShare: 0.5 };
    const alertsSeries = (alertname: AlertName, state: 'firing' | 'pending', labels: Labels, severity: string) =>
      ({ labels: seriesText({ name: 'ALERTS', labels: { alertname, alertstate: state, ...labels, severity }, values: '' }), value: 1 });

    before(() => writeFileSync(join(dir, 'rules-service-wide.yaml'), serviceWide.monitoring.rulesFile()));

    it('records each version\'s ratios over its own requests; without per-version, one diluted service-wide ratio', async () => {
      const perVersion: TestGroup = {
        interval: '1m',
        input_series: canaryTraffic(errors),
        promql_expr_test: [
          ratioTest('slo:sli_error:ratio_rate5m{version="1"}', 30, { availability: 0.0001, latency: 0.001 }, (slo) => sloLabels(slo, STABLE)),
          ratioTest('slo:sli_error:ratio_rate5m{version="2"}', 30, { availability: 0.05, latency: 0.001 }, (slo) => sloLabels(slo, CANARY)),
        ],
      };
      const serviceWideGroup: TestGroup = {
        interval: '1m',
        input_series: canaryTraffic(errors),
        promql_expr_test: [ratioTest('slo:sli_error:ratio_rate5m', 30, { availability: (1080 * 0.0001 + 120 * 0.05) / 1200, latency: 0.001 }, serviceWideExpect.serviceSloLabels)],
      };
      await runTests('per-version-ratios.test.yaml', [perVersion]);
      await runTests('service-wide-ratios.test.yaml', [serviceWideGroup], { ruleFile: 'rules-service-wide.yaml' });
    });

    /**
     * The canary's page, and the stable version's silence, per version; over the service, the same requests make no
     * page, only a ticket pending at 10 minutes and firing at 30 (the 1 d and 2 h windows past 3×).
     */
    const burnGroups = (alertname: AlertName, slo: 'availability' | 'latency', canary: typeof errors, longRatio: number) => {
      const perVersion: TestGroup = {
        interval: '1m',
        input_series: canaryTraffic(canary),
        alert_rule_test: [
          { eval_time: '10m', alertname, exp_alerts: [alert(alertname, 'critical', sloLabels(slo, CANARY), humanizePercentage(longRatio))] },
          {
            eval_time: '30m', alertname, exp_alerts: [
              alert(alertname, 'critical', sloLabels(slo, CANARY), humanizePercentage(longRatio)),
              alert(alertname, 'warning', sloLabels(slo, CANARY)),
            ],
          },
        ],
        promql_expr_test: [{
          // Nothing for stable, not even pending: its own windows read its own 0.01% and 0.1%.
          expr: `ALERTS{alertname="${alertname}"}`, eval_time: '10m',
          exp_samples: [alertsSeries(alertname, 'firing', sloLabels(slo, CANARY), 'critical'), alertsSeries(alertname, 'pending', sloLabels(slo, CANARY), 'warning')],
        }],
      };
      const serviceWideGroup: TestGroup = {
        interval: '1m',
        input_series: canaryTraffic(canary),
        alert_rule_test: [
          { eval_time: '10m', alertname, exp_alerts: [] },
          { eval_time: '30m', alertname, exp_alerts: [serviceWideExpect.alert(alertname, 'warning', serviceWideExpect.serviceSloLabels(slo))] },
        ],
        promql_expr_test: [{
          expr: `ALERTS{alertname="${alertname}"}`, eval_time: '10m',
          exp_samples: [alertsSeries(alertname, 'pending', serviceWideExpect.serviceSloLabels(slo), 'warning')],
        }],
      };
      return { perVersion, serviceWideGroup };
    };

    for (const [alertname, slo, canary, longRatio, what] of [
      [ALERT.errorBudgetBurn, 'availability', errors, 0.05, '5% errors'],
      [ALERT.latencyBudgetBurn, 'latency', slow, 0.5, '50% slow'],
    ] as const) {
      it(`${alertname}: pages for the canary (${what}) and not for stable; over the service it would only open a ticket`, async () => {
        const { perVersion, serviceWideGroup } = burnGroups(alertname, slo, canary, longRatio);
        await runTests(`per-version-${slo}.test.yaml`, [perVersion]);
        await runTests(`service-wide-${slo}.test.yaml`, [serviceWideGroup], { ruleFile: 'rules-service-wide.yaml' });
      });
    }

    it('fails when a test expects the page for stable, or the service-wide page (negative controls)', async () => {
      const { perVersion, serviceWideGroup } = burnGroups(ALERT.errorBudgetBurn, 'availability', errors, 0.05);
      perVersion.alert_rule_test![0].exp_alerts = [alert(ALERT.errorBudgetBurn, 'critical', sloLabels('availability', STABLE), '5%')];
      serviceWideGroup.alert_rule_test![0].exp_alerts = [serviceWideExpect.alert(ALERT.errorBudgetBurn, 'critical', serviceWideExpect.serviceSloLabels('availability'), '0.509%')];
      for (const [file, group, ruleFile] of [['negative-per-version.test.yaml', perVersion, 'rules.yaml'], ['negative-service-wide.test.yaml', serviceWideGroup, 'rules-service-wide.yaml']] as const) {
        const result = await promtool(dir, 'test', 'rules', writeTests(file, [group], { ruleFile }));
        assert.notEqual(result.code, 0, `promtool passed ${file}:\n${result.output}`);
        assert.match(result.output, new RegExp(`alertname: ${ALERT.errorBudgetBurn}, time: 10m`), result.output);
      }
    });
  });

  // -------------------------------------------------------------------------------------------------------------
  // Resources and Kubernetes state, with the default `for` durations

  /** `up` is 0 on both pods from the start; back to 1 at minute 10. */
  function downGroup(): TestGroup {
    const fired = [alert(ALERT.down, 'critical', {})];
    return {
      interval: '1m',
      input_series: input([w.podA, w.podB].map((pod) => ({ name: 'up', labels: w.runtimeTarget(pod), values: gauge([0, 10], [1, 10]) }))),
      alert_rule_test: [
        { eval_time: '1m', alertname: ALERT.down, exp_alerts: [] },
        { eval_time: '3m', alertname: ALERT.down, exp_alerts: fired },
        { eval_time: '12m', alertname: ALERT.down, exp_alerts: [] },
      ],
    };
  }

  it(`fires ${ALERT.down} when every target is down and when none is scraped at all`, async () => {
    const fired = [alert(ALERT.down, 'critical', {})];
    const unscraped: TestGroup = {
      interval: '1m',
      // Only the neighbour is scraped; this service has no target (e.g. its ServiceMonitor selects nothing).
      input_series: input([{ name: 'up', labels: w.runtimeTarget(w.podA, w.otherService), values: gauge([1, 10]) }]),
      alert_rule_test: [
        { eval_time: '1m', alertname: ALERT.down, exp_alerts: [] },
        { eval_time: '3m', alertname: ALERT.down, exp_alerts: fired },
      ],
    };
    await runTests('down.test.yaml', [downGroup(), unscraped]);
  });

  it(`${ALERT.down} with KEDA scaling to zero: quiet at zero by design, firing when pods are wanted and none is up`, async () => {
    const zero = synthesizeScaleToZero();
    assert.deepEqual(zero.monitoring.ruleGroups.map((g) => g.name), synth.monitoring.ruleGroups.map((g) => g.name), 'the same group names (eval order)');
    writeFileSync(join(dir, 'rules-zero.yaml'), zero.monitoring.rulesFile());
    const zw = world(zero.names);
    const fired = [expectations(zero).alert(ALERT.down, 'critical', {})];
    const desired = (values: string): Series => ({ name: 'kube_deployment_spec_replicas', labels: { ...zw.ksm(), deployment: zero.names.deployment }, values });
    // Only a neighbour is scraped: at zero this service has no endpoints, so no target and no `up` at all.
    const neighbour: Series = { name: 'up', labels: zw.runtimeTarget(zw.podA, zw.otherService), values: gauge([1, 41]) };
    const groups: TestGroup[] = [
      // Held at zero by KEDA for 40 minutes: nothing to page about.
      {
        interval: '1m',
        input_series: input([neighbour, desired(gauge([0, 41]))]),
        alert_rule_test: [3, 20, 40].map((t) => ({ eval_time: minutes(t), alertname: ALERT.down, exp_alerts: [] })),
      },
      // Two replicas wanted, two pods scraped and neither up (e.g. a bad rollout): the page, after its 2 minutes.
      {
        interval: '1m',
        input_series: input([neighbour, desired(gauge([2, 41])), ...[zw.podA, zw.podB].map((pod): Series => ({ name: 'up', labels: zw.runtimeTarget(pod), values: gauge([0, 41]) }))]),
        alert_rule_test: [
          { eval_time: '1m', alertname: ALERT.down, exp_alerts: [] },
          { eval_time: '3m', alertname: ALERT.down, exp_alerts: fired },
        ],
      },
      // Two wanted and no pod scraped at all (none could be scheduled): the page too.
      {
        interval: '1m',
        input_series: input([neighbour, desired(gauge([2, 41]))]),
        alert_rule_test: [{ eval_time: '3m', alertname: ALERT.down, exp_alerts: fired }],
      },
      // Woken at minute 10 (one replica wanted), its pod up a minute later, back to zero at minute 30: never a page.
      {
        interval: '1m',
        input_series: input([neighbour, desired(gauge([0, 10], [1, 20], [0, 11])), { name: 'up', labels: zw.runtimeTarget(zw.podA), values: gauge(['_', 11], [1, 19], ['_', 11]) }]),
        alert_rule_test: [10, 11, 12, 20, 31, 40].map((t) => ({ eval_time: minutes(t), alertname: ALERT.down, exp_alerts: [] })),
      },
      // Without kube-state-metrics nothing says that zero is wanted: the alert fires rather than never.
      {
        interval: '1m',
        input_series: input([neighbour]),
        alert_rule_test: [{ eval_time: '3m', alertname: ALERT.down, exp_alerts: fired }],
      },
    ];
    await runTests('down-scale-to-zero.test.yaml', groups, { ruleFile: 'rules-zero.yaml' });
  });

  it('the KEDA activation query is 1 while the named metric is above its threshold, 0 below, and empty without it', async () => {
    const zero = synthesizeScaleToZero();
    writeFileSync(join(dir, 'rules-zero.yaml'), zero.monitoring.rulesFile());
    const triggers = zero.objects.find((o) => o.kind === 'ScaledObject')!.spec.triggers;
    assert.equal(triggers.length, 2);
    const { query, threshold, activationThreshold } = triggers[1].metadata;
    // KEDA starts the first pod while the query is above activationThreshold, and asks for ceil(query / threshold).
    assert.deepEqual([threshold, activationThreshold], ['1', '0']);
    const queue = (name: string, values: string): Series => ({ name: 'queue_length', labels: { namespace: 'risk', queue: name }, values });
    const at = (m: number, value?: number): ExprTest => ({ expr: query, eval_time: minutes(m), exp_samples: value === undefined ? [] : [{ labels: '{}', value }] });
    const group: TestGroup = {
      interval: '1m',
      // No series for 5 minutes (nothing scraped yet), then two queues: both empty, then one with 3 items waiting.
      input_series: input([queue('a', gauge(['_', 5], [0, 5], [3, 5])), queue('b', gauge(['_', 5], [0, 10]))]),
      promql_expr_test: [at(2), at(7, 0), at(12, 1)],
    };
    await runTests('activation-query.test.yaml', [group], { ruleFile: 'rules-zero.yaml' });
  });

  it('fires each resource and state alert on its condition, for the pod concerned only, after its default `for`', async () => {
    const hold = (name: keyof typeof DEFAULT_ALERT_DURATIONS) => Number(/^(\d+)m$/.exec(DEFAULT_ALERT_DURATIONS[name])![1]);
    const ksmPod = w.ksmContainer;
    const groups: TestGroup[] = [];
    // CPU: pod A runs at 0.3 of its 1-core limit, then at 0.95 from minute 30; pod B stays at 0.3. The 5 m rate
    // passes 0.8 four minutes in, so the alert is pending until minute 34 + `for`.
    const hot = 30;
    groups.push({
      interval: '1m',
      input_series: input([
        ...[[w.podA, 0.95], [w.podB, 0.3]].flatMap(([pod, cores]): Series[] => [
          { name: 'container_cpu_usage_seconds_total', labels: w.cadvisor(pod as string), values: counter([0.3 * 60, hot], [(cores as number) * 60, 20]) },
          { name: 'kube_pod_container_resource_limits', labels: { ...ksmPod(pod as string), resource: 'cpu', unit: 'core' }, values: gauge([1, hot + 21]) },
        ]),
      ]),
      alert_rule_test: [
        { eval_time: minutes(hot + 4 + hold(ALERT.highCpu) - 1), alertname: ALERT.highCpu, exp_alerts: [] },
        { eval_time: minutes(hot + 4 + hold(ALERT.highCpu) + 1), alertname: ALERT.highCpu, exp_alerts: [alert(ALERT.highCpu, 'warning', { namespace: names.namespace, pod: w.podA }, '95%')] },
      ],
    });
    // Memory: pod A's working set at 95% of its 2 GiB limit, pod B at 55%.
    groups.push({
      interval: '1m',
      input_series: input([
        ...[[w.podA, 0.95], [w.podB, 0.55]].flatMap(([pod, share]): Series[] => [
          { name: 'container_memory_working_set_bytes', labels: w.cadvisor(pod as string), values: gauge([(share as number) * 2 * GiB, 21]) },
          { name: 'kube_pod_container_resource_limits', labels: { ...ksmPod(pod as string), resource: 'memory', unit: 'byte' }, values: gauge([2 * GiB, 21]) },
        ]),
      ]),
      alert_rule_test: [
        { eval_time: minutes(hold(ALERT.memoryNearLimit) - 1), alertname: ALERT.memoryNearLimit, exp_alerts: [] },
        { eval_time: minutes(hold(ALERT.memoryNearLimit) + 1), alertname: ALERT.memoryNearLimit, exp_alerts: [alert(ALERT.memoryNearLimit, 'warning', { namespace: names.namespace, pod: w.podA }, '95%')] },
      ],
    });
    // OOM: both pods restart once at minute 5, pod A OOM-killed, pod B exited with an error.
    groups.push({
      interval: '1m',
      input_series: input([
        ...[w.podA, w.podB].map((pod): Series => ({ name: 'kube_pod_container_status_restarts_total', labels: ksmPod(pod), values: gauge([0, 5], [1, 25]) })),
        { name: 'kube_pod_container_status_last_terminated_reason', labels: { ...ksmPod(w.podA), reason: 'OOMKilled' }, values: gauge(['_', 5], [1, 25]) },
        { name: 'kube_pod_container_status_last_terminated_reason', labels: { ...ksmPod(w.podB), reason: 'Error' }, values: gauge(['_', 5], [1, 25]) },
      ]),
      alert_rule_test: [
        { eval_time: '4m', alertname: ALERT.oomKilled, exp_alerts: [] },
        { eval_time: '6m', alertname: ALERT.oomKilled, exp_alerts: [alert(ALERT.oomKilled, 'warning', ksmPod(w.podA))] },
        // One restart is not a crash loop.
        { eval_time: '6m', alertname: ALERT.crashLooping, exp_alerts: [] },
        // Ten minutes later the restart has left the window.
        { eval_time: '16m', alertname: ALERT.oomKilled, exp_alerts: [] },
      ],
    });
    // Model not ready on pod A (its file is corrupt), ready on pod B.
    groups.push({
      interval: '1m',
      input_series: input([[w.podA, 0], [w.podB, 1]].map(([pod, ready]): Series => ({
        name: METRIC.modelReady, labels: { ...w.runtimeTarget(pod as string), model: 'fraud', version: '3' }, values: gauge([ready as number, 21]),
      }))),
      alert_rule_test: [
        { eval_time: minutes(hold(ALERT.modelNotReady) - 1), alertname: ALERT.modelNotReady, exp_alerts: [] },
        {
          eval_time: minutes(hold(ALERT.modelNotReady) + 1), alertname: ALERT.modelNotReady,
          exp_alerts: [alert(ALERT.modelNotReady, 'critical', { ...w.runtimeTarget(w.podA), model: 'fraud', version: '3' })],
        },
      ],
    });
    // Replicas: 3 wanted, 2 available (one pod cannot be scheduled).
    const deployment = { ...w.ksm(), deployment: names.deployment };
    groups.push({
      interval: '1m',
      input_series: input([
        { name: 'kube_deployment_spec_replicas', labels: deployment, values: gauge([3, 31]) },
        { name: 'kube_deployment_status_replicas_available', labels: deployment, values: gauge([2, 31]) },
      ]),
      alert_rule_test: [
        { eval_time: minutes(hold(ALERT.replicasMismatch) - 1), alertname: ALERT.replicasMismatch, exp_alerts: [] },
        { eval_time: minutes(hold(ALERT.replicasMismatch) + 1), alertname: ALERT.replicasMismatch, exp_alerts: [alert(ALERT.replicasMismatch, 'warning', deployment, '3')] },
      ],
    });
    // The HPA at its maximum of 10.
    const hpa = { ...w.ksm(), horizontalpodautoscaler: names.hpa };
    groups.push({
      interval: '1m',
      input_series: input([
        { name: 'kube_horizontalpodautoscaler_status_current_replicas', labels: hpa, values: gauge([6, 3], [10, 28]) },
        { name: 'kube_horizontalpodautoscaler_spec_min_replicas', labels: hpa, values: gauge([2, 31]) },
        { name: 'kube_horizontalpodautoscaler_spec_max_replicas', labels: hpa, values: gauge([10, 31]) },
        { name: 'kube_horizontalpodautoscaler_info', labels: { ...hpa, scaletargetref_kind: 'Deployment', scaletargetref_name: names.deployment }, values: gauge([1, 31]) },
      ]),
      alert_rule_test: [
        { eval_time: minutes(hold(ALERT.autoscalerMaxedOut) + 1), alertname: ALERT.autoscalerMaxedOut, exp_alerts: [] },
        { eval_time: minutes(hold(ALERT.autoscalerMaxedOut) + 4), alertname: ALERT.autoscalerMaxedOut, exp_alerts: [alert(ALERT.autoscalerMaxedOut, 'warning', hpa, '10')] },
      ],
    });
    await runTests('resources.test.yaml', groups);
  });

  /** A restart counter at 5 that counts one more every `period` minutes. */
  const restartsEvery = (period: number, length: number) => samples(...Array.from({ length }, (_, t) => 5 + Math.floor(t / period)));
  /** How many firing alerts of `alertname` there are per container, whatever labels they carry. */
  const firingPerContainer = (alertname: AlertName, evalMinutes: number, pods: string[], severity: string): ExprTest => ({
    expr: `count by (namespace, pod, container, severity) (ALERTS{alertname="${alertname}",alertstate="firing"})`,
    eval_time: minutes(evalMinutes),
    exp_samples: pods.map((pod) => ({ labels: seriesText({ name: '', labels: { namespace: names.namespace, pod, container: 'runtime', severity }, values: '' }), value: 1 })),
  });

  it(`fires ${ALERT.crashLooping} on CrashLoopBackOff, and on repeated restarts without it`, async () => {
    const hold = Number(/^(\d+)m$/.exec(DEFAULT_ALERT_DURATIONS.ModelServiceCrashLooping)![1]);
    // Pod A: in CrashLoopBackOff; it loads for a few minutes before it crashes, so it restarts only every 8 minutes.
    const backOff: TestGroup = {
      interval: '1m',
      input_series: input([
        { name: 'kube_pod_container_status_waiting_reason', labels: { ...w.ksmContainer(w.podA), reason: 'CrashLoopBackOff' }, values: gauge([1, 31]) },
        { name: 'kube_pod_container_status_restarts_total', labels: w.ksmContainer(w.podA), values: restartsEvery(8, 31) },
        { name: 'kube_pod_container_status_restarts_total', labels: w.ksmContainer(w.podB), values: gauge([0, 31]) },
      ]),
      alert_rule_test: [
        { eval_time: minutes(hold - 1), alertname: ALERT.crashLooping, exp_alerts: [] },
        { eval_time: minutes(hold + 20), alertname: ALERT.crashLooping, exp_alerts: [alert(ALERT.crashLooping, 'warning', { namespace: names.namespace, pod: w.podA, container: 'runtime' })] },
      ],
    };
    // Pod B: restarted every 4 minutes and never seen waiting (the scrapes fall between back-offs). Asserted through
    // ALERTS by container, since which labels the restarts branch keeps is the rule's business.
    const restarts: TestGroup = {
      interval: '1m',
      input_series: input([
        { name: 'kube_pod_container_status_restarts_total', labels: w.ksmContainer(w.podA), values: gauge([0, 31]) },
        { name: 'kube_pod_container_status_restarts_total', labels: w.ksmContainer(w.podB), values: restartsEvery(4, 31) },
      ]),
      alert_rule_test: [{ eval_time: '10m', alertname: ALERT.crashLooping, exp_alerts: [] }],
      promql_expr_test: [firingPerContainer(ALERT.crashLooping, 25, [w.podB], 'warning')],
    };
    await runTests('crash-looping.test.yaml', [backOff, restarts]);
  });

  // Regressions for rule bugs these tests found (fixed in lib/cdk8s/rules/alerts.ts).

  it(`${ALERT.crashLooping}: one alert per container when it is in CrashLoopBackOff and restarting`, async () => {
    const group: TestGroup = {
      interval: '1m',
      input_series: input([
        // Restarted every 5 minutes (the kubelet's maximum back-off) and waiting in CrashLoopBackOff in between.
        { name: 'kube_pod_container_status_waiting_reason', labels: { ...w.ksmContainer(w.podA), reason: 'CrashLoopBackOff' }, values: gauge([1, 31]) },
        { name: 'kube_pod_container_status_restarts_total', labels: w.ksmContainer(w.podA), values: restartsEvery(5, 31) },
      ]),
      promql_expr_test: [firingPerContainer(ALERT.crashLooping, 25, [w.podA], 'warning')],
    };
    await runTests('crash-looping-once.test.yaml', [group]);
  });

  it(`${ALERT.autoscalerMaxedOut}: quiet for an autoscaler whose minimum is its maximum`, async () => {
    const hpa = { ...w.ksm(), horizontalpodautoscaler: names.hpa };
    const group: TestGroup = {
      interval: '1m',
      input_series: input([
        { name: 'kube_horizontalpodautoscaler_status_current_replicas', labels: hpa, values: gauge([3, 31]) },
        { name: 'kube_horizontalpodautoscaler_spec_min_replicas', labels: hpa, values: gauge([3, 31]) },
        { name: 'kube_horizontalpodautoscaler_spec_max_replicas', labels: hpa, values: gauge([3, 31]) },
        { name: 'kube_horizontalpodautoscaler_info', labels: { ...hpa, scaletargetref_kind: 'Deployment', scaletargetref_name: names.deployment }, values: gauge([1, 31]) },
      ]),
      alert_rule_test: [{ eval_time: '30m', alertname: ALERT.autoscalerMaxedOut, exp_alerts: [] }],
    };
    await runTests('hpa-fixed-size.test.yaml', [group]);
  });

  it('honours `alertFor`: shortened durations fire where the defaults are still pending', async () => {
    // CPU at 0.9 of the limit from the start (the 5 m rate passes 0.8 at minute 5), 1 of 3 replicas, HPA at max.
    const fast = synthesize({ alertFor: { ModelServiceHighCPU: '1m', ModelServiceReplicasMismatch: '2m', ModelServiceAutoscalerMaxedOut: '2m' } });
    assert.deepEqual(fast.names, names);
    writeFileSync(join(dir, 'rules-fast.yaml'), fast.monitoring.rulesFile());
    const fastAlert = expectations(fast).alert;
    const deployment = { ...w.ksm(), deployment: names.deployment };
    const hpa = { ...w.ksm(), horizontalpodautoscaler: names.hpa };
    const group: TestGroup = {
      interval: '1m',
      input_series: input([
        { name: 'container_cpu_usage_seconds_total', labels: w.cadvisor(w.podA), values: counter([0.9 * 60, 10]) },
        { name: 'kube_pod_container_resource_limits', labels: { ...w.ksmContainer(w.podA), resource: 'cpu', unit: 'core' }, values: gauge([1, 11]) },
        { name: 'kube_deployment_spec_replicas', labels: deployment, values: gauge([3, 11]) },
        { name: 'kube_deployment_status_replicas_available', labels: deployment, values: gauge([1, 11]) },
        { name: 'kube_horizontalpodautoscaler_status_current_replicas', labels: hpa, values: gauge([10, 11]) },
        { name: 'kube_horizontalpodautoscaler_spec_min_replicas', labels: hpa, values: gauge([2, 11]) },
        { name: 'kube_horizontalpodautoscaler_spec_max_replicas', labels: hpa, values: gauge([10, 11]) },
        { name: 'kube_horizontalpodautoscaler_info', labels: { ...hpa, scaletargetref_kind: 'Deployment', scaletargetref_name: names.deployment }, values: gauge([1, 11]) },
      ]),
      alert_rule_test: [
        { eval_time: '7m', alertname: ALERT.highCpu, exp_alerts: [fastAlert(ALERT.highCpu, 'warning', { namespace: names.namespace, pod: w.podA }, '90%')] },
        { eval_time: '7m', alertname: ALERT.replicasMismatch, exp_alerts: [fastAlert(ALERT.replicasMismatch, 'warning', deployment, '3')] },
        { eval_time: '7m', alertname: ALERT.autoscalerMaxedOut, exp_alerts: [fastAlert(ALERT.autoscalerMaxedOut, 'warning', hpa, '10')] },
      ],
    };
    await runTests('alert-for.test.yaml', [group], { ruleFile: 'rules-fast.yaml' });
    // The same input against the default durations: all three still pending.
    const pending: TestGroup = { ...group, alert_rule_test: group.alert_rule_test!.map((t) => ({ ...t, exp_alerts: [] })) };
    await runTests('alert-for-defaults.test.yaml', [pending]);
  });
});

// ---------------------------------------------------------------------------------------------------------------
// Drift: the PSI recording rule and the two drift alerts, on the mlp fixture (input `x`, output `y`), whose
// signature ModelSource.fromFile reads, so inputs and outputs get their own alert.

/** The PSI as the rule must compute it, from the same counts: shares of the window's rows, both floored at 1e-4. */
function expectedPsi(counts: readonly number[], reference: readonly number[]): number {
  const total = counts.reduce((a, b) => a + b, 0);
  const floor = (x: number) => Math.max(x, 1e-4);
  return counts.reduce((psi, count, bin) => {
    const a = floor(count / total);
    const r = floor(reference[bin]);
    return psi + (a - r) * Math.log(a / r);
  }, 0);
}

describe('ModelMonitoring drift rules under promtool', { concurrency: true }, () => {
  let dir: string;
  let keep = false;
  const profileDir = mkdtempSync(join(tmpdir(), 'modelship-drift-profile-'));
  // The profile the service is synthesized with; the rules read only the runtime's series, so one feature each will do.
  const uniform = Array.from({ length: DRIFT_BINS - 1 }, (_, i) => i + 1);
  const profile: DriftProfile = {
    format: DRIFT_PROFILE_FORMAT, rows: 1000,
    tensors: [
      { name: 'x', kind: 'input', features: [{ index: 0, edges: uniform, ratios: Array(DRIFT_BINS).fill(0.1) }] },
      { name: 'y', kind: 'output', features: [{ index: 0, edges: uniform, ratios: Array(DRIFT_BINS).fill(0.1) }] },
    ],
  };
  const profilePath = join(profileDir, 'profile.json');
  writeFileSync(profilePath, JSON.stringify(profile));

  const chart = new Chart(Testing.app(), 'fraud-detection', { namespace: 'risk' });
  const service = new ModelService(chart, 'fraud', { model: ModelSource.fromFile(MODELS.mlp, { profile: profilePath }) });
  const monitoring = new ModelMonitoring(chart, 'mon', { service });
  const objects = Testing.synth(chart) as Manifest[];
  const names = {
    namespace: 'risk', service: objects.find((o) => o.kind === 'Service')!.metadata.name,
    deployment: objects.find((o) => o.kind === 'Deployment')!.metadata.name, hpa: '',
  };
  const synth: Synthesized = { monitoring, objects, names };
  const w = world(names);
  const { alert } = expectations(synth);
  const PSI = 'modelship:drift_psi:1h';

  /** Rows per minute per bin: the shares times `rows`, whole numbers. */
  const perMinute = (shares: readonly number[], rows: number) => shares.map((share) => Math.round(share * rows));
  // Reference shares of x: uneven on purpose. y's reference has an empty bin 0, and its shifted output an empty bin 9.
  const REF_X = [0.05, 0.1, 0.15, 0.2, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05];
  const SHIFT_X = [0, 0.02, 0.03, 0.05, 0.1, 0.1, 0.15, 0.2, 0.2, 0.15];
  const REF_Y = [0, 0.1, 0.1, 0.2, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05];
  const SHIFT_Y = [0.3, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.05, 0.05, 0];
  const target = (pod: string) => ({ ...w.runtimeTarget(pod), model: 'fraud', version: '1' });

  /**
   * A feature's series on both pods (pod B at half pod A's traffic): the bin counter, `before` shares for `switchAt`
   * minutes then `after` shares, and the reference gauge each pod exports. `bins` limits which bin series exist.
   */
  function feature(tensor: string, index: string, reference: readonly number[], before: readonly number[], after: readonly number[], switchAt: number, length: number, bins = [...Array(DRIFT_BINS).keys()]): Series[] {
    return [[w.podA, 1000], [w.podB, 500]].flatMap(([pod, rows]) => [
      ...bins.map((bin): Series => ({
        name: METRIC.driftBins, labels: { ...target(pod as string), tensor, feature: index, bin: String(bin) },
        values: counter(...([[perMinute(before, rows as number)[bin], switchAt], [perMinute(after, rows as number)[bin], length - switchAt]] as const).filter(([, steps]) => steps > 0)),
      })),
      ...reference.map((ratio, bin): Series => ({
        name: METRIC.driftReferenceRatio, labels: { ...target(pod as string), tensor, feature: index, bin: String(bin) }, values: gauge([ratio, length + 1]),
      })),
    ]);
  }

  /**
   * The PSI at `t` minutes of a feature that switched from `before` to `after` shares at `switchAt`, as promtool 2.42's
   * increase() over 1h sees it: the samples from t-60 to t, a whole hour, so no extrapolation, and the same rows
   * per minute in every bin's share.
   */
  const psiAt = (t: number, switchAt: number, reference: readonly number[], before: readonly number[], after: readonly number[]) => {
    const shifted = Math.min(60, Math.max(0, t - switchAt));
    return expectedPsi(before.map((b, bin) => (60 - shifted) * perMinute(before, 1500)[bin] + shifted * perMinute(after, 1500)[bin]), reference);
  };
  /** The first minute at which the PSI is above `threshold`. */
  const crossing = (switchAt: number, reference: readonly number[], before: readonly number[], after: readonly number[], threshold = 0.25) => {
    for (let t = 60; t <= switchAt + 60; t++) if (psiAt(t, switchAt, reference, before, after) > threshold) return t;
    throw new Error('the shift never crosses the threshold');
  };
  const psiLabels = (tensor: string, index: string): Labels => ({ namespace: names.namespace, service: names.service, model: 'fraud', version: '1', tensor, feature: index });
  /** The recorded PSI is `expected` within 1e-9: compared in PromQL, since promtool 2.42 compares sample values exactly. */
  const psiIs = (evalMinutes: number, expected: Array<[tensor: string, index: string, psi: number]>): ExprTest => ({
    expr: `abs(${PSI} - on (tensor, feature) group_left () (${expected.map(([tensor, index, psi]) => `label_replace(label_replace(vector(${psi}), "tensor", "${tensor}", "", ""), "feature", "${index}", "", "")`).join(' or ')})) < bool 1e-9`,
    eval_time: minutes(evalMinutes),
    exp_samples: expected.map(([tensor, index]) => ({ labels: seriesText({ name: '', labels: psiLabels(tensor, index), values: '' }), value: 1 })),
  });
  /** Every PSI sample is a finite number, and there are `count` of them: NaN fails `> -Inf`, so a NaN sample would be missed. */
  const allFinite = (evalMinutes: number, count: number): ExprTest[] => [`count(${PSI})`, `count(${PSI} > -Inf < +Inf)`]
    .map((expr) => ({ expr, eval_time: minutes(evalMinutes), exp_samples: [{ labels: '{}', value: count }] }));

  before(() => {
    assert.ok(existsSync(PROMTOOL), `${PROMTOOL} is missing: install Debian's 'prometheus' package (apt-get install -y prometheus)`);
    dir = mkdtempSync(join(tmpdir(), 'modelship-promtool-drift-'));
    writeFileSync(join(dir, 'rules.yaml'), monitoring.rulesFile());
  });
  after(() => {
    rmSync(profileDir, { recursive: true, force: true });
    if (keep) console.error(`promtool inputs kept in ${dir}`);
    else if (dir) rmSync(dir, { recursive: true, force: true });
  });
  const run = async (file: string, tests: TestGroup[]) => {
    const group_eval_order = monitoring.ruleGroups.map((g) => g.name);
    writeFileSync(join(dir, file), YAML.stringify({ rule_files: ['rules.yaml'], evaluation_interval: '1m', group_eval_order, tests }, { lineWidth: 0 }));
    try {
      await assertPromtoolPasses(dir, 'test', 'rules', file);
    } catch (error) {
      keep = true;
      throw error;
    }
  };

  it('passes promtool check rules with the split drift alerts', async () => {
    await assertPromtoolPasses(dir, 'check', 'rules', '--lint=all', '--lint-fatal', 'rules.yaml');
  });

  it('splits the alerts by the signature: x is an input, y an output', () => {
    const rules = monitoring.ruleGroups.flatMap((g) => g.rules);
    assert.deepEqual(rules.filter((r) => r.record?.startsWith('modelship:drift')).map((r) => r.record), ['modelship:drift_bin_share:1h', PSI]);
    assert.match(rules.find((r) => r.alert === ALERT.inputDrift)!.expr, /tensor=~"x"/);
    assert.match(rules.find((r) => r.alert === ALERT.predictionDrift)!.expr, /tensor=~"y"/);
    assert.equal(rules.find((r) => r.alert === ALERT.inputDrift)!.for, '30m');
  });

  it('keeps the PSI near 0 on reference traffic, fires each drift alert 30m after a shift passes 0.25, with the PSI computed here', async () => {
    const switchAt = 90;
    const length = 200;
    const crossX = crossing(switchAt, REF_X, REF_X, SHIFT_X);
    const crossY = crossing(switchAt, REF_Y, REF_Y, SHIFT_Y);
    const hold = 30;
    const fired = (name: AlertName, tensor: string, t: number, reference: number[], after: number[]) =>
      [alert(name, 'warning', psiLabels(tensor, '0'), psiAt(t, switchAt, reference, reference, after).toFixed(2))];
    const group: TestGroup = {
      interval: '1m',
      input_series: input([
        ...feature('x', '0', REF_X, REF_X, SHIFT_X, switchAt, length),
        ...feature('y', '0', REF_Y, REF_Y, SHIFT_Y, switchAt, length),
        // No row served for feature 1 of x in the whole test: no distribution, so no PSI sample (not NaN).
        ...feature('x', '1', REF_X, Array(DRIFT_BINS).fill(0), Array(DRIFT_BINS).fill(0), switchAt, length),
      ]),
      promql_expr_test: [
        // Reference traffic: PSI 0, whatever the split between pods.
        psiIs(switchAt, [['x', '0', 0], ['y', '0', 0]]),
        // A whole hour of the shifted traffic: the PSI of the shifted shares, above 0.25.
        psiIs(switchAt + 65, [['x', '0', expectedPsi(SHIFT_X, REF_X)], ['y', '0', expectedPsi(SHIFT_Y, REF_Y)]]),
        // Half-way through the shift, a mix of both.
        psiIs(switchAt + 30, [['x', '0', psiAt(switchAt + 30, switchAt, REF_X, REF_X, SHIFT_X)], ['y', '0', psiAt(switchAt + 30, switchAt, REF_Y, REF_Y, SHIFT_Y)]]),
        // Nothing infinite or NaN (empty bins on both sides of y), and no sample for the feature without rows.
        ...allFinite(switchAt, 2),
        ...allFinite(switchAt + 65, 2),
      ],
      alert_rule_test: [
        { eval_time: minutes(switchAt), alertname: ALERT.inputDrift, exp_alerts: [] },
        { eval_time: minutes(switchAt), alertname: ALERT.predictionDrift, exp_alerts: [] },
        // Above the threshold, but not yet for 30 minutes: pending.
        { eval_time: minutes(crossX + hold - 1), alertname: ALERT.inputDrift, exp_alerts: [] },
        { eval_time: minutes(crossX + hold), alertname: ALERT.inputDrift, exp_alerts: fired(ALERT.inputDrift, 'x', crossX + hold, REF_X, SHIFT_X) },
        { eval_time: minutes(crossY + hold - 1), alertname: ALERT.predictionDrift, exp_alerts: [] },
        { eval_time: minutes(crossY + hold), alertname: ALERT.predictionDrift, exp_alerts: fired(ALERT.predictionDrift, 'y', crossY + hold, REF_Y, SHIFT_Y) },
      ],
    };
    assert.ok(expectedPsi(SHIFT_X, REF_X) > 0.25 && expectedPsi(SHIFT_Y, REF_Y) > 0.25, 'the shifts are significant');
    assert.ok(crossX > switchAt && crossY > switchAt);
    await run('drift.test.yaml', [group]);
  });

  it('counts a bin the counter has no series for as empty, and stays quiet on reference traffic', async () => {
    const length = 120;
    const half = [0.2, 0.2, 0.2, 0.2, 0.2, 0, 0, 0, 0, 0];
    const group: TestGroup = {
      interval: '1m',
      input_series: input([
        // Rows only ever fell in bins 0 to 4, and the runtime exported only those bins' series.
        ...feature('x', '2', Array(DRIFT_BINS).fill(0.1), half, half, length, length, [0, 1, 2, 3, 4]),
        ...feature('x', '0', REF_X, REF_X, REF_X, length, length),
      ]),
      promql_expr_test: [psiIs(90, [['x', '2', expectedPsi(half, Array(DRIFT_BINS).fill(0.1))], ['x', '0', 0]]), ...allFinite(90, 2)],
      alert_rule_test: [
        { eval_time: '100m', alertname: ALERT.inputDrift, exp_alerts: [alert(ALERT.inputDrift, 'warning', psiLabels('x', '2'), expectedPsi(half, Array(DRIFT_BINS).fill(0.1)).toFixed(2))] },
        { eval_time: '100m', alertname: ALERT.predictionDrift, exp_alerts: [] },
      ],
    };
    await run('drift-missing-bins.test.yaml', [group]);
  });
});
