/**
 * The checks of kube-score and Polaris that apply to what modelship synthesizes, re-implemented over plain manifest
 * objects: neither tool installs here (both are Go binaries). Each check was written from the tool's own definition
 * and names it in `origin`; the semantics follow the source, quirks included (they are what a user running the tool
 * would see), and where a tool has changed a check over time the current definition is the one implemented.
 *
 * - kube-score (github.com/zegl/kube-score, score/): the check id is the check's name lower-cased with dashes, as
 *   kube-score derives it. Grades: ok (AllOK), almost-ok, warning, critical, or skipped (the tool decided the check
 *   does not apply). Only ok and skipped count as passing here; kube-score's exit code would only fail on critical.
 * - Polaris (github.com/FairwindsOps/polaris, pkg/config/checks/*.yaml, formerly checks/): JSON-schema checks, some
 *   with `additionalSchemaStrings` that must be met by at least one object of another kind in the same namespace.
 *   Severities are those of Polaris's default configuration (pkg/config/default.yaml); checks that file does not
 *   enable are marked enabledByDefault: false.
 */

// Manifests are plain JSON, as `Testing.synth` and `kubectl get -o json` give them.
export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> }; [key: string]: any };
type Json = any;

export type Tool = 'kube-score' | 'polaris';
export type Grade = 'ok' | 'skipped' | 'almost-ok' | 'warning' | 'critical' | 'success' | 'danger';

export interface Verdict {
  readonly grade: Grade;
  readonly reason: string;
}

export interface PolicyCheck {
  readonly tool: Tool;
  readonly id: string;
  /** Where the definition lives in the tool's repository. */
  readonly origin: string;
  /** One line: what the check wants. */
  readonly what: string;
  /** Whether the tool runs it without being asked (kube-score: not "optional"; Polaris: in default.yaml). */
  readonly enabledByDefault: boolean;
  /** The verdict on one object, or undefined when the check does not look at objects of that kind. */
  evaluate(object: Manifest, all: readonly Manifest[]): Verdict | undefined;
}

export interface Finding {
  readonly tool: Tool;
  readonly id: string;
  /** `Kind/name`. */
  readonly object: string;
  readonly grade: Grade;
  readonly passed: boolean;
  readonly reason: string;
}

export const key = (check: Pick<PolicyCheck, 'tool' | 'id'>) => `${check.tool}/${check.id}`;
export const objectName = (o: Manifest) => `${o.kind}/${o.metadata.name}`;
const passes = (grade: Grade) => grade === 'ok' || grade === 'skipped' || grade === 'success';

/** Runs every check on every object it applies to. */
export function runChecks(objects: readonly Manifest[], checks: readonly PolicyCheck[] = ALL_CHECKS): Finding[] {
  const findings: Finding[] = [];
  for (const check of checks) {
    for (const object of objects) {
      const verdict = check.evaluate(object, objects);
      if (verdict) findings.push({ tool: check.tool, id: check.id, object: objectName(object), grade: verdict.grade, passed: passes(verdict.grade), reason: verdict.reason });
    }
  }
  return findings;
}

// ---------------------------------------------------------------------------------------------------------------
// Shared reading of manifests
// ---------------------------------------------------------------------------------------------------------------

const POD_CONTROLLERS = ['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet', 'ReplicationController', 'Job'];

interface PodTemplate {
  readonly metadata: { labels?: Record<string, string>; annotations?: Record<string, string> };
  readonly spec: Json;
}

/** The pod template of a workload (or the pod itself); undefined for objects that run no pods. */
export function podTemplateOf(o: Manifest): PodTemplate | undefined {
  let template: Json;
  if (o.kind === 'Pod') template = { metadata: o.metadata, spec: o.spec };
  else if (POD_CONTROLLERS.includes(o.kind)) template = o.spec?.template;
  else if (o.kind === 'CronJob') template = o.spec?.jobTemplate?.spec?.template;
  if (!template) return undefined;
  return { metadata: template.metadata ?? {}, spec: template.spec ?? {} };
}

const isBatch = (o: Manifest) => o.kind === 'Job' || o.kind === 'CronJob';
const namespaceOf = (o: Manifest) => o.metadata.namespace ?? '';
const sameNamespace = (all: readonly Manifest[], o: Manifest, kind: string, group?: string) =>
  all.filter((x) => x.kind === kind && namespaceOf(x) === namespaceOf(o) && (group === undefined || groupOf(x) === group));
const groupOf = (o: Manifest) => (o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '');

interface Container { name: string; [key: string]: Json }
const initContainers = (t: PodTemplate): Container[] => t.spec.initContainers ?? [];
const appContainers = (t: PodTemplate): Container[] => t.spec.containers ?? [];
const allContainers = (t: PodTemplate): Container[] => [...initContainers(t), ...appContainers(t)];

/** A Kubernetes label selector (matchLabels and matchExpressions) against labels; undefined selects nothing. */
export function selectorMatches(selector: Json, labels: Record<string, string> = {}): boolean {
  if (selector === undefined || selector === null) return false;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, e.key);
    const value = labels[e.key];
    switch (e.operator) {
      case 'In': if (!has || !(e.values ?? []).includes(value)) return false; break;
      case 'NotIn': if (has && (e.values ?? []).includes(value)) return false; break;
      case 'Exists': if (!has) return false; break;
      case 'DoesNotExist': if (has) return false; break;
      default: return false;
    }
  }
  return true;
}

/** kube-score's LabelSelectorMatchesLabels: a plain map as matchLabels (an empty map selects everything). */
const mapSelects = (selector: Record<string, string> | undefined, labels: Record<string, string> = {}) =>
  selectorMatches({ matchLabels: selector ?? {} }, labels);

const QUANTITY = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:[eE]([+-]?\d+))?(m|k|Ki|M|Mi|G|Gi|T|Ti|P|Pi|E|Ei)?$/;
const SUFFIX: Record<string, number> = {
  m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** A resource quantity as a number (0 when absent, NaN when malformed), as k8s' resource.Quantity reads it. */
export function quantity(value: unknown): number {
  if (value === undefined || value === null || value === '') return 0;
  if (typeof value === 'number') return value;
  const match = QUANTITY.exec(String(value));
  if (!match) return Number.NaN;
  return Number(match[1]) * 10 ** Number(match[2] ?? 0) * (match[3] ? SUFFIX[match[3]] : 1);
}
const isZero = (value: unknown) => quantity(value) === 0;

/** kube-score's containerTag: the text after the last ':' (so a registry port without a tag reads as a tag). */
export function kubeScoreImageTag(image: string): string {
  const parts = String(image ?? '').split(':');
  return parts.length > 1 ? parts[parts.length - 1] : '';
}

const portInt = (port: unknown) => (typeof port === 'number' ? port : /^\d+$/.test(String(port ?? '')) ? Number(port) : 0);

/** A kube-score verdict from per-container comments and the worst grade found. */
function graded(worst: Grade, comments: string[], okReason: string): Verdict {
  return { grade: worst, reason: comments.length > 0 ? comments.join('; ') : okReason };
}
const RANK: Record<Grade, number> = { ok: 0, success: 0, skipped: 0, 'almost-ok': 1, warning: 2, critical: 3, danger: 3 };
const worse = (a: Grade, b: Grade): Grade => (RANK[b] > RANK[a] ? b : a);

// ---------------------------------------------------------------------------------------------------------------
// kube-score
// ---------------------------------------------------------------------------------------------------------------

const KS = 'zegl/kube-score';
type PodCheckFn = (t: PodTemplate, o: Manifest, all: readonly Manifest[]) => Verdict;

function kubeScorePodCheck(id: string, origin: string, what: string, fn: PodCheckFn, enabledByDefault = true): PolicyCheck {
  return {
    tool: 'kube-score', id, origin: `${KS} ${origin}`, what, enabledByDefault,
    evaluate: (o, all) => {
      const t = podTemplateOf(o);
      return t ? fn(t, o, all) : undefined;
    },
  };
}

function kubeScoreKindCheck(id: string, kind: string, origin: string, what: string, fn: (o: Manifest, all: readonly Manifest[]) => Verdict, enabledByDefault = true): PolicyCheck {
  return { tool: 'kube-score', id, origin: `${KS} ${origin}`, what, enabledByDefault, evaluate: (o, all) => (o.kind === kind ? fn(o, all) : undefined) };
}

export const ksContainerResources = kubeScorePodCheck('container-resources', 'score/container/container.go (containerResources)',
  'every container, init containers included, has CPU and memory requests and limits', (t) => {
    const containers = allContainers(t);
    if (containers.length === 0) return { grade: 'critical', reason: 'no containers defined' };
    let worst: Grade = 'ok';
    const comments: string[] = [];
    for (const c of containers) {
      const { limits = {}, requests = {} } = c.resources ?? {};
      if (isZero(limits.cpu)) { comments.push(`${c.name}: CPU limit is not set`); worst = worse(worst, 'critical'); }
      if (isZero(limits.memory)) { comments.push(`${c.name}: memory limit is not set`); worst = worse(worst, 'critical'); }
      if (isZero(requests.cpu)) { comments.push(`${c.name}: CPU request is not set`); worst = worse(worst, 'warning'); }
      if (isZero(requests.memory)) { comments.push(`${c.name}: memory request is not set`); worst = worse(worst, 'warning'); }
    }
    return graded(worst, comments, 'every container has CPU and memory requests and limits');
  });

function requestsEqualLimits(resource: 'cpu' | 'memory' | 'both'): PodCheckFn {
  return (t) => {
    const comments: string[] = [];
    for (const c of allContainers(t)) {
      const { limits = {}, requests = {} } = c.resources ?? {};
      for (const r of resource === 'both' ? ['cpu', 'memory'] : [resource]) {
        if (quantity(requests[r]) !== quantity(limits[r])) comments.push(`${c.name}: ${r} request ${requests[r] ?? 'unset'} differs from limit ${limits[r] ?? 'unset'}`);
      }
    }
    return graded(comments.length > 0 ? 'critical' : 'ok', comments, 'requests equal limits');
  };
}
export const ksRequestsEqualLimits = kubeScorePodCheck('container-resource-requests-equal-limits', 'score/container/container.go (containerResourceRequestsEqualLimits)',
  'requests equal limits for CPU and memory (Guaranteed QoS)', requestsEqualLimits('both'), false);
export const ksCpuRequestsEqualLimits = kubeScorePodCheck('container-cpu-requests-equal-limits', 'score/container/container.go (containerCPURequestsEqualLimits)',
  'CPU request equals CPU limit', requestsEqualLimits('cpu'), false);
export const ksMemoryRequestsEqualLimits = kubeScorePodCheck('container-memory-requests-equal-limits', 'score/container/container.go (containerMemoryRequestsEqualLimits)',
  'memory request equals memory limit', requestsEqualLimits('memory'), false);

export const ksImageTag = kubeScorePodCheck('container-image-tag', 'score/container/container.go (containerImageTag)',
  'every image has an explicit tag that is not `latest`', (t) => {
    const bad = allContainers(t).filter((c) => ['', 'latest'].includes(kubeScoreImageTag(c.image)));
    return graded(bad.length > 0 ? 'critical' : 'ok', bad.map((c) => `${c.name}: image '${c.image}' has no tag or :latest`), 'every image has a fixed tag');
  });

export const ksImagePullPolicy = kubeScorePodCheck('container-image-pull-policy', 'score/container/container.go (containerImagePullPolicy)',
  'imagePullPolicy is Always (left unset only with no tag or :latest, where Kubernetes defaults to Always)', (t) => {
    const bad = allContainers(t).filter((c) => {
      const tag = kubeScoreImageTag(c.image);
      if ((c.imagePullPolicy ?? '') === '' && (tag === '' || tag === 'latest')) return false;
      return c.imagePullPolicy !== 'Always';
    });
    return graded(bad.length > 0 ? 'critical' : 'ok', bad.map((c) => `${c.name}: imagePullPolicy is ${c.imagePullPolicy ?? 'unset'}, not Always`), 'every container pulls Always');
  });

export const ksEphemeralStorage = kubeScorePodCheck('container-ephemeral-storage-request-and-limit', 'score/container/container.go (containerStorageEphemeralRequestAndLimit)',
  'every container has an ephemeral-storage limit (critical) and request (warning)', (t) => {
    let worst: Grade = 'ok';
    const comments: string[] = [];
    for (const c of allContainers(t)) {
      const { limits = {}, requests = {} } = c.resources ?? {};
      if (isZero(limits['ephemeral-storage'])) { comments.push(`${c.name}: ephemeral-storage limit is not set`); worst = worse(worst, 'critical'); }
      else if (isZero(requests['ephemeral-storage'])) { comments.push(`${c.name}: ephemeral-storage request is not set`); worst = worse(worst, 'warning'); }
    }
    return graded(worst, comments, 'every container has ephemeral-storage requests and limits');
  });

export const ksEphemeralStorageEqual = kubeScorePodCheck('container-ephemeral-storage-request-equals-limit', 'score/container/container.go (containerStorageEphemeralRequestEqualsLimit)',
  'where both are set, the ephemeral-storage request equals the limit', (t) => {
    const bad = allContainers(t).filter((c) => {
      const { limits = {}, requests = {} } = c.resources ?? {};
      return !isZero(limits['ephemeral-storage']) && !isZero(requests['ephemeral-storage']) && quantity(limits['ephemeral-storage']) !== quantity(requests['ephemeral-storage']);
    });
    return graded(bad.length > 0 ? 'critical' : 'ok', bad.map((c) => `${c.name}: ephemeral-storage request differs from limit`), 'no ephemeral-storage request differs from its limit');
  }, false);

export const ksContainerPorts = kubeScorePodCheck('container-ports-check', 'score/container/container.go (containerPortsCheck)',
  'container port names are unique and every containerPort is set', (t) => {
    const comments: string[] = [];
    for (const c of allContainers(t)) {
      const names = new Set<string>();
      for (const p of c.ports ?? []) {
        if (p.name) { if (names.has(p.name)) comments.push(`${c.name}: port name '${p.name}' is not unique`); names.add(p.name); }
        if (!p.containerPort) comments.push(`${c.name}: a port has no containerPort`);
      }
    }
    return graded(comments.length > 0 ? 'critical' : 'ok', comments, 'ports are named uniquely and numbered');
  }, false);

export const ksEnvDuplication = kubeScorePodCheck('environment-variable-key-duplication', 'score/container/container.go (environmentVariableKeyDuplication)',
  'no container sets the same environment variable twice', (t) => {
    const comments: string[] = [];
    for (const c of allContainers(t)) {
      const seen = new Set<string>();
      for (const e of c.env ?? []) { if (seen.has(e.name)) comments.push(`${c.name}: '${e.name}' is duplicated`); seen.add(e.name); }
    }
    return graded(comments.length > 0 ? 'critical' : 'ok', comments, 'no duplicated environment variables');
  });

export const ksUserGroupId = kubeScorePodCheck('container-security-context-user-group-id', 'score/security/security.go (containerSecurityContextUserGroupID)',
  'every container runs with a UID and GID of at least 10000 (container value, else the pod\'s)', (t) => {
    const pod = t.spec.securityContext;
    const comments: string[] = [];
    for (const c of allContainers(t)) {
      if (!c.securityContext && !pod) { comments.push(`${c.name}: no security context`); continue; }
      const uid = c.securityContext?.runAsUser ?? pod?.runAsUser;
      const gid = c.securityContext?.runAsGroup ?? pod?.runAsGroup;
      if (uid === undefined || uid < 10000) comments.push(`${c.name}: runAsUser ${uid ?? 'unset'} is below 10000`);
      if (gid === undefined || gid < 10000) comments.push(`${c.name}: runAsGroup ${gid ?? 'unset'} is below 10000`);
    }
    return graded(comments.length > 0 ? 'critical' : 'ok', comments, 'UID and GID are at least 10000 everywhere');
  });

export const ksPrivileged = kubeScorePodCheck('container-security-context-privileged', 'score/security/security.go (containerSecurityContextPrivileged)',
  'no container is privileged', (t) => {
    const bad = allContainers(t).filter((c) => c.securityContext?.privileged === true);
    return graded(bad.length > 0 ? 'critical' : 'ok', bad.map((c) => `${c.name}: privileged`), 'no privileged container');
  });

export const ksReadOnlyRoot = kubeScorePodCheck('container-security-context-readonlyrootfilesystem', 'score/security/security.go (containerSecurityContextReadOnlyRootFilesystem)',
  'every container sets securityContext.readOnlyRootFilesystem: true', (t) => {
    const comments = allContainers(t).flatMap((c) => (!c.securityContext ? [`${c.name}: no security context`]
      : c.securityContext.readOnlyRootFilesystem !== true ? [`${c.name}: writable root filesystem`] : []));
    return graded(comments.length > 0 ? 'critical' : 'ok', comments, 'every root filesystem is read-only');
  });

export const ksSeccomp = kubeScorePodCheck('container-seccomp-profile', 'score/security/security.go (podSeccompProfile)',
  'a seccomp profile is set: the pod annotation, the pod securityContext, or every (non-init) container', (t) => {
    if (t.metadata.annotations?.['seccomp.security.alpha.kubernetes.io/defaultProfileName'] !== undefined) return { grade: 'ok', reason: 'seccomp annotation' };
    if (t.spec.securityContext?.seccompProfile) return { grade: 'ok', reason: `pod seccompProfile ${t.spec.securityContext.seccompProfile.type}` };
    const containers = appContainers(t);
    const bad = containers.filter((c) => !c.securityContext?.seccompProfile);
    return bad.length === 0 && containers.length > 0 ? { grade: 'ok', reason: 'every container has a seccompProfile' }
      : { grade: 'warning', reason: `no seccomp profile for ${bad.map((c) => c.name).join(', ') || 'the pod'}` };
  }, false);

const targetedByService = (t: PodTemplate, o: Manifest, all: readonly Manifest[]) =>
  sameNamespace(all, o, 'Service').some((s) => mapSelects(s.spec?.selector, t.metadata.labels));

export const ksPodProbes = kubeScorePodCheck('pod-probes', 'score/probes/probes.go (containerProbes)',
  'a pod a Service targets has a readinessProbe (critical without) and a livenessProbe (almost-ok without)', (t, o, all) => {
    if (isBatch(o)) return { grade: 'ok', reason: 'Jobs need no probes' };
    const targeted = targetedByService(t, o, all) || Boolean(t.spec.serviceAccountName);
    if (!targeted) return { grade: 'skipped', reason: 'the pod is not targeted by a service' };
    const containers = allContainers(t);
    if (!containers.some((c) => c.readinessProbe)) return { grade: 'critical', reason: 'no container has a readinessProbe' };
    if (!containers.some((c) => c.livenessProbe)) return { grade: 'almost-ok', reason: 'no container has a livenessProbe' };
    return { grade: 'ok', reason: 'readiness and liveness probes are configured' };
  });

function identicalProbes(c: Container): boolean {
  const r = c.readinessProbe;
  const l = c.livenessProbe;
  if (!r || !l) return false;
  if (r.httpGet && l.httpGet && r.httpGet.path === l.httpGet.path && portInt(r.httpGet.port) === portInt(l.httpGet.port)) return true;
  if (r.tcpSocket && l.tcpSocket && String(r.tcpSocket.port) === String(l.tcpSocket.port)) return true;
  if (r.exec && l.exec && JSON.stringify(r.exec.command ?? []) === JSON.stringify(l.exec.command ?? [])) return true;
  return false;
}

export const ksPodProbesIdentical = kubeScorePodCheck('pod-probes-identical', 'score/probes/probes.go (containerProbesIdentical)',
  'no container uses the same check (path and port, TCP port, or command) for readiness and liveness', (t, o) => {
    if (isBatch(o)) return { grade: 'ok', reason: 'Jobs need no probes' };
    const bad = allContainers(t).filter(identicalProbes);
    return graded(bad.length > 0 ? 'critical' : 'ok', bad.map((c) => `${c.name}: readiness and liveness probes are identical`), 'readiness and liveness differ');
  });

export const ksPodNetworkPolicy = kubeScorePodCheck('pod-networkpolicy', 'score/networkpolicy/networkpolicy.go (podHasNetworkPolicy)',
  'the pod is selected by NetworkPolicies covering both ingress and egress (one of them: warning; none: critical)', (t, o, all) => {
    let ingress = false;
    let egress = false;
    for (const np of sameNamespace(all, o, 'NetworkPolicy')) {
      if (!selectorMatches(np.spec?.podSelector ?? {}, t.metadata.labels)) continue;
      const types: string[] = np.spec?.policyTypes ?? [];
      if (types.length === 0) { ingress = true; if ((np.spec?.egress ?? []).length > 0) egress = true; }
      if (types.includes('Ingress')) ingress = true;
      if (types.includes('Egress')) egress = true;
    }
    if (ingress && egress) return { grade: 'ok', reason: 'ingress and egress policies select the pod' };
    if (ingress) return { grade: 'warning', reason: 'the pod does not have a matching egress NetworkPolicy' };
    if (egress) return { grade: 'warning', reason: 'the pod does not have a matching ingress NetworkPolicy' };
    return { grade: 'critical', reason: 'the pod does not have a matching NetworkPolicy' };
  });

export const ksNetworkPolicyTargetsPod = kubeScoreKindCheck('networkpolicy-targets-pod', 'NetworkPolicy', 'score/networkpolicy/networkpolicy.go (networkPolicyTargetsPod)',
  'the NetworkPolicy selects at least one pod in its namespace', (np, all) => {
    const hit = all.some((o) => namespaceOf(o) === namespaceOf(np) && podTemplateOf(o) && selectorMatches(np.spec?.podSelector ?? {}, podTemplateOf(o)!.metadata.labels));
    return hit ? { grade: 'ok', reason: 'selects a pod' } : { grade: 'critical', reason: 'the NetworkPolicy\'s selector does not match any pods' };
  });

export const ksServiceTargetsPod = kubeScoreKindCheck('service-targets-pod', 'Service', 'score/service/service.go (serviceTargetsPod)',
  'the Service\'s selector matches the pods of some workload in its namespace', (s, all) => {
    if (s.spec?.type === 'ExternalName') return { grade: 'ok', reason: 'ExternalName has no selector' };
    const selector: Record<string, string> = s.spec?.selector ?? {};
    const hit = all.some((o) => namespaceOf(o) === namespaceOf(s) && podTemplateOf(o)
      && Object.entries(selector).every(([k, v]) => podTemplateOf(o)!.metadata.labels?.[k] === v));
    return hit ? { grade: 'ok', reason: 'selects a pod' } : { grade: 'critical', reason: 'the Service\'s selector does not match any pods' };
  });

export const ksServiceType = kubeScoreKindCheck('service-type', 'Service', 'score/service/service.go (serviceType); README_CHECKS.md',
  'the Service is not of type NodePort', (s) =>
    (s.spec?.type === 'NodePort' ? { grade: 'warning', reason: 'NodePort services expose every node' } : { grade: 'ok', reason: `type ${s.spec?.type ?? 'ClusterIP'}` }));

export const ksDeploymentHasPdb = kubeScoreKindCheck('deployment-has-poddisruptionbudget', 'Deployment', 'score/disruptionbudget/disruptionbudget.go (deploymentHas)',
  'a Deployment of two or more replicas (or unset replicas) is selected by a PodDisruptionBudget in its namespace', (d, all) => {
    if (d.spec?.replicas !== undefined && d.spec.replicas < 2) return { grade: 'skipped', reason: 'fewer than 2 replicas' };
    const labels = d.spec?.template?.metadata?.labels;
    const hit = sameNamespace(all, d, 'PodDisruptionBudget').some((pdb) => selectorMatches(pdb.spec?.selector, labels));
    return hit ? { grade: 'ok', reason: 'a PodDisruptionBudget selects the pods' } : { grade: 'critical', reason: 'no matching PodDisruptionBudget was found' };
  });

export const ksPdbHasPolicy = kubeScoreKindCheck('poddisruptionbudget-has-policy', 'PodDisruptionBudget', 'score/disruptionbudget/disruptionbudget.go (hasPolicy)',
  'the PodDisruptionBudget sets minAvailable or maxUnavailable', (pdb) =>
    (pdb.spec?.minAvailable === undefined && pdb.spec?.maxUnavailable === undefined
      ? { grade: 'critical', reason: 'PodDisruptionBudget missing policy' } : { grade: 'ok', reason: 'has a policy' }));

export const ksHostAntiAffinity = kubeScoreKindCheck('deployment-has-host-podantiaffinity', 'Deployment', 'score/apps/apps.go (deploymentHasAntiAffinity)',
  'a Deployment of two or more replicas (or unset replicas) has a podAntiAffinity term on kubernetes.io/hostname selecting its own pods', (d) => {
    if (d.spec?.replicas !== undefined && d.spec.replicas < 2) return { grade: 'skipped', reason: 'fewer than 2 replicas' };
    const anti = d.spec?.template?.spec?.affinity?.podAntiAffinity;
    const labels = d.spec?.template?.metadata?.labels;
    const terms = [
      ...(anti?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((p: Json) => p.podAffinityTerm ?? {}),
      ...(anti?.requiredDuringSchedulingIgnoredDuringExecution ?? []),
    ];
    const hit = terms.some((term: Json) => term.topologyKey === 'kubernetes.io/hostname' && selectorMatches(term.labelSelector, labels));
    return hit ? { grade: 'ok', reason: 'host podAntiAffinity set' } : { grade: 'warning', reason: 'Deployment does not have a host podAntiAffinity set' };
  });

const hpaTargets = (all: readonly Manifest[], d: Manifest, compare: (ref: Json) => boolean) =>
  sameNamespace(all, d, 'HorizontalPodAutoscaler').some((hpa) => compare(hpa.spec?.scaleTargetRef ?? {}));

export const ksHpaNoReplicas = kubeScoreKindCheck('deployment-targeted-by-hpa-does-not-have-replicas-configured', 'Deployment', 'score/apps/apps.go (hpaDeploymentNoReplicas)',
  'a Deployment an HPA scales leaves spec.replicas unset, so an apply does not undo the HPA', (d, all) => {
    const targeted = hpaTargets(all, d, (ref) => String(ref.kind).toLowerCase() === d.kind.toLowerCase() && ref.name === d.metadata.name);
    if (!targeted) return { grade: 'skipped', reason: 'not targeted by a HorizontalPodAutoscaler' };
    return d.spec?.replicas === undefined ? { grade: 'ok', reason: 'replicas left to the HPA' }
      : { grade: 'critical', reason: `targeted by an HPA, yet spec.replicas is ${d.spec.replicas}` };
  });

export const ksSelectorMatchesTemplate = kubeScoreKindCheck('deployment-pod-selector-labels-match-template-metadata-labels', 'Deployment', 'score/apps/apps.go (deploymentSelectorLabelsMatching)',
  'spec.selector matches spec.template.metadata.labels', (d) =>
    (selectorMatches(d.spec?.selector, d.spec?.template?.metadata?.labels)
      ? { grade: 'ok', reason: 'selector matches the template' } : { grade: 'critical', reason: 'Deployment selector labels not matching template metadata labels' }));

export const ksDeploymentStrategy = kubeScoreKindCheck('deployment-strategy', 'Deployment', 'score/deployment/deployment.go (deploymentRolloutStrategy)',
  'a Deployment a Service targets uses the RollingUpdate strategy', (d, all) => {
    if (!targetedByService({ metadata: d.spec?.template?.metadata ?? {}, spec: {} }, d, all)) return { grade: 'skipped', reason: 'not targeted by a service' };
    const type = d.spec?.strategy?.type ?? '';
    return type === 'RollingUpdate' || type === '' ? { grade: 'ok', reason: `strategy ${type || 'default (RollingUpdate)'}` }
      : { grade: 'warning', reason: `strategy ${type}, not RollingUpdate, while a Service targets the Deployment` };
  });

export const ksDeploymentReplicas = kubeScoreKindCheck('deployment-replicas', 'Deployment', 'score/deployment/deployment.go (deploymentReplicas)',
  'a Deployment a Service targets and no HorizontalPodAutoscaler scales has at least 2 replicas (unset counts as 1)', (d, all) => {
    const hasHpa = hpaTargets(all, d, (ref) => ref.apiVersion === d.apiVersion && ref.kind === d.kind && ref.name === d.metadata.name);
    if (!targetedByService({ metadata: d.spec?.template?.metadata ?? {}, spec: {} }, d, all) || hasHpa) {
      return { grade: 'skipped', reason: 'not targeted by a service, or controlled by a HorizontalPodAutoscaler' };
    }
    const replicas = d.spec?.replicas ?? 1;
    return replicas >= 2 ? { grade: 'ok', reason: `${replicas} replicas` } : { grade: 'warning', reason: `${d.spec?.replicas === undefined ? 'unset replicas count as 1' : `${replicas} replica`}: fewer than 2` };
  });

export const ksHpaHasTarget = kubeScoreKindCheck('horizontalpodautoscaler-has-target', 'HorizontalPodAutoscaler', 'score/hpa/hpa.go (hpaHasTarget)',
  'the HPA\'s scaleTargetRef names an object (apiVersion, kind, name) in its namespace', (hpa, all) => {
    const ref = hpa.spec?.scaleTargetRef ?? {};
    const hit = all.some((o) => o.apiVersion === ref.apiVersion && o.kind === ref.kind && o.metadata.name === ref.name && namespaceOf(o) === namespaceOf(hpa));
    return hit ? { grade: 'ok', reason: `targets ${ref.kind}/${ref.name}` } : { grade: 'critical', reason: 'the HPA target does not match anything' };
  });

export const ksHpaReplicas = kubeScoreKindCheck('horizontalpodautoscaler-replicas', 'HorizontalPodAutoscaler', 'score/hpa/hpa.go (hpaHasMultipleReplicas)',
  'the HPA\'s minReplicas (unset counts as 1) is at least 2', (hpa) => {
    const min = hpa.spec?.minReplicas ?? 1;
    return min >= 2 ? { grade: 'ok', reason: `minReplicas ${min}` } : { grade: 'warning', reason: `minReplicas ${min} is below 2` };
  });

export const ksTopologySpread = kubeScorePodCheck('pod-topology-spread-constraints', 'score/podtopologyspreadconstraints/podtopologyspreadconstraints.go',
  'any topologySpreadConstraints are valid: a labelSelector, maxSkew > 0, minDomains not 0, a topologyKey, a known whenUnsatisfiable', (t) => {
    const spreads = t.spec.topologySpreadConstraints;
    if (!spreads) return { grade: 'ok', reason: 'no constraints; kube-scheduler defaults assumed' };
    for (const s of spreads) {
      if (!s.labelSelector) return { grade: 'critical', reason: 'a constraint has no labelSelector' };
      if (!s.maxSkew) return { grade: 'critical', reason: 'maxSkew is zero' };
      if (s.minDomains === 0) return { grade: 'critical', reason: 'minDomains is zero' };
      if (!s.topologyKey) return { grade: 'critical', reason: 'topologyKey is not set' };
      if (s.whenUnsatisfiable !== 'DoNotSchedule' && s.whenUnsatisfiable !== 'ScheduleAnyway') return { grade: 'critical', reason: `whenUnsatisfiable '${s.whenUnsatisfiable}' is invalid` };
    }
    return { grade: 'ok', reason: `${spreads.length} valid constraint(s)` };
  });

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
export const ksLabelValues: PolicyCheck = {
  tool: 'kube-score', id: 'label-values', origin: `${KS} score/meta/labels.go (validateLabelValues)`, enabledByDefault: true,
  what: 'every metadata.labels value is one Kubernetes accepts',
  evaluate: (o) => {
    const bad = Object.entries(o.metadata.labels ?? {}).filter(([, v]) => !LABEL_VALUE.test(String(v)));
    return graded(bad.length > 0 ? 'critical' : 'ok', bad.map(([k, v]) => `${k}: invalid label value '${v}'`), 'every label value is valid');
  },
};

// kube-score's table of API versions with a stable replacement, and the Kubernetes minor each replacement arrived in.
const STABLE: Record<string, Record<string, [string, number]>> = {
  'extensions/v1beta1': { Deployment: ['apps/v1', 9], DaemonSet: ['apps/v1', 9], Ingress: ['networking.k8s.io/v1beta1', 14] },
  'apps/v1beta1': { Deployment: ['apps/v1', 9], StatefulSet: ['apps/v1', 9] },
  'apps/v1beta2': { Deployment: ['apps/v1', 9], StatefulSet: ['apps/v1', 9], DaemonSet: ['apps/v1', 9] },
};
export const ksStableVersion: PolicyCheck = {
  tool: 'kube-score', id: 'stable-version', origin: `${KS} score/stable/stable_version.go (metaStableAvailable)`, enabledByDefault: true,
  what: 'no object uses an apiVersion that has a stable replacement',
  evaluate: (o) => {
    const replacement = STABLE[o.apiVersion]?.[o.kind];
    return replacement ? { grade: 'warning', reason: `${o.apiVersion}/${o.kind} is deprecated; use ${replacement[0]} (Kubernetes 1.${replacement[1]}+)` }
      : { grade: 'ok', reason: `${o.apiVersion} ${o.kind}` };
  },
};

export const KUBE_SCORE_CHECKS: readonly PolicyCheck[] = [
  ksContainerResources, ksRequestsEqualLimits, ksCpuRequestsEqualLimits, ksMemoryRequestsEqualLimits, ksImageTag, ksImagePullPolicy,
  ksEphemeralStorage, ksEphemeralStorageEqual, ksContainerPorts, ksEnvDuplication, ksUserGroupId, ksPrivileged, ksReadOnlyRoot, ksSeccomp,
  ksPodProbes, ksPodProbesIdentical, ksPodNetworkPolicy, ksNetworkPolicyTargetsPod, ksServiceTargetsPod, ksServiceType,
  ksDeploymentHasPdb, ksPdbHasPolicy, ksHostAntiAffinity, ksHpaNoReplicas, ksSelectorMatchesTemplate, ksDeploymentStrategy,
  ksDeploymentReplicas, ksHpaHasTarget, ksHpaReplicas, ksTopologySpread, ksLabelValues, ksStableVersion,
];

// ---------------------------------------------------------------------------------------------------------------
// Polaris
// ---------------------------------------------------------------------------------------------------------------

const PO = 'FairwindsOps/polaris pkg/config/checks';
const polarisVerdict = (ok: boolean, severity: 'warning' | 'danger', success: string, failure: string): Verdict =>
  (ok ? { grade: 'success', reason: success } : { grade: severity, reason: failure });

interface PolarisContainerOptions {
  /** `containers.exclude: [initContainer]`. */
  readonly excludeInit?: boolean;
  /** `controllers.exclude: [Job, CronJob]`. */
  readonly excludeBatch?: boolean;
}

/** A Polaris `target: Container` check: one result per container, folded into one verdict naming the failures. */
function polarisContainerCheck(id: string, severity: 'warning' | 'danger', what: string, failure: string, ok: (c: Container, t: PodTemplate) => boolean,
  options: PolarisContainerOptions = {}, enabledByDefault = true): PolicyCheck {
  return {
    tool: 'polaris', id, origin: `${PO}/${id}.yaml`, what, enabledByDefault,
    evaluate: (o) => {
      const t = podTemplateOf(o);
      if (!t || (options.excludeBatch && isBatch(o))) return undefined;
      const containers = options.excludeInit ? appContainers(t) : allContainers(t);
      const bad = containers.filter((c) => !ok(c, t));
      return polarisVerdict(bad.length === 0, severity, `${what}: ${containers.map((c) => c.name).join(', ')}`, `${failure}: ${bad.map((c) => c.name).join(', ')}`);
    },
  };
}

/** A Polaris `target: Pod`/`PodSpec`/`PodTemplate` check. */
function polarisPodCheck(id: string, severity: 'warning' | 'danger', what: string, failure: string, ok: (t: PodTemplate, o: Manifest, all: readonly Manifest[]) => boolean,
  options: { readonly excludeBatch?: boolean } = {}, enabledByDefault = true): PolicyCheck {
  return {
    tool: 'polaris', id, origin: `${PO}/${id}.yaml`, what, enabledByDefault,
    evaluate: (o, all) => {
      const t = podTemplateOf(o);
      if (!t || (options.excludeBatch && isBatch(o))) return undefined;
      return polarisVerdict(ok(t, o, all), severity, what, failure);
    },
  };
}

/** A Polaris check on one kind of object (`target: Controller` with controllers.include, or a group/kind). */
function polarisKindCheck(id: string, kinds: readonly string[], severity: 'warning' | 'danger', what: string, failure: string,
  ok: (o: Manifest, all: readonly Manifest[]) => boolean, enabledByDefault = true, origin = `${PO}/${id}.yaml`): PolicyCheck {
  return {
    tool: 'polaris', id, origin, what, enabledByDefault,
    evaluate: (o, all) => (kinds.includes(o.kind) ? polarisVerdict(ok(o, all), severity, what, failure) : undefined),
  };
}

const CONTROLLERS = ['Deployment', 'StatefulSet', 'DaemonSet', 'Job', 'CronJob', 'ReplicationController', 'ReplicaSet'];
const nonEmptyString = (v: unknown) => v !== undefined && v !== null && String(v) !== '';

export const poCpuRequests = polarisContainerCheck('cpuRequestsMissing', 'warning', 'CPU requests are set', 'CPU requests should be set',
  (c) => nonEmptyString(c.resources?.requests?.cpu), { excludeInit: true });
export const poCpuLimits = polarisContainerCheck('cpuLimitsMissing', 'warning', 'CPU limits are set', 'CPU limits should be set',
  (c) => nonEmptyString(c.resources?.limits?.cpu), { excludeInit: true });
export const poMemoryRequests = polarisContainerCheck('memoryRequestsMissing', 'warning', 'Memory requests are set', 'Memory requests should be set',
  (c) => nonEmptyString(c.resources?.requests?.memory), { excludeInit: true });
export const poMemoryLimits = polarisContainerCheck('memoryLimitsMissing', 'warning', 'Memory limits are set', 'Memory limits should be set',
  (c) => nonEmptyString(c.resources?.limits?.memory), { excludeInit: true });
export const poReadinessProbe = polarisContainerCheck('readinessProbeMissing', 'warning', 'Readiness probe is configured', 'Readiness probe should be configured',
  (c) => c.readinessProbe !== undefined && c.readinessProbe !== null, { excludeInit: true, excludeBatch: true });
export const poLivenessProbe = polarisContainerCheck('livenessProbeMissing', 'warning', 'Liveness probe is configured', 'Liveness probe should be configured',
  (c) => c.livenessProbe !== undefined && c.livenessProbe !== null, { excludeInit: true, excludeBatch: true });
export const poTagNotSpecified = polarisContainerCheck('tagNotSpecified', 'danger', 'Image tag is specified', 'Image tag should be specified',
  (c) => typeof c.image === 'string' && /^.+:.+$/.test(c.image) && !/^.+:latest$/.test(c.image));
export const poPullPolicy = polarisContainerCheck('pullPolicyNotAlways', 'warning', 'Image pull policy is "Always"', 'Image pull policy should be "Always"',
  (c) => c.imagePullPolicy === 'Always');
export const poHostPort = polarisContainerCheck('hostPortSet', 'warning', 'Host port is not configured', 'Host port should not be configured',
  (c) => (c.ports ?? []).every((p: Json) => p.hostPort === undefined || p.hostPort === 0));
export const poPrivileged = polarisContainerCheck('runAsPrivileged', 'danger', 'Not running as privileged', 'Should not be running as privileged',
  (c) => c.securityContext?.privileged !== true);
export const poPrivilegeEscalation = polarisContainerCheck('privilegeEscalationAllowed', 'danger', 'Privilege escalation not allowed', 'Privilege escalation should not be allowed',
  (c) => c.securityContext?.allowPrivilegeEscalation !== true);

const capability = (list: unknown, name: string) => Array.isArray(list) && list.some((x) => typeof x === 'string' && x.toUpperCase() === name);
export const poDangerousCapabilities = polarisContainerCheck('dangerousCapabilities', 'danger', 'Container does not have any dangerous capabilities',
  'Container should not have dangerous capabilities', (c) => !['ALL', 'SYS_ADMIN', 'NET_ADMIN'].some((cap) => capability(c.securityContext?.capabilities?.add, cap)));

const INSECURE = ['NET_ADMIN', 'CHOWN', 'DAC_OVERRIDE', 'FSETID', 'FOWNER', 'MKNOD', 'NET_RAW', 'SETGID', 'SETUID', 'SETFCAP', 'SETPCAP', 'NET_BIND_SERVICE', 'SYS_CHROOT', 'KILL', 'AUDIT_WRITE'];
export const poInsecureCapabilities = polarisContainerCheck('insecureCapabilities', 'warning', 'Container does not have any insecure capabilities',
  'Container should not have insecure capabilities', (c) => {
    const drop = c.securityContext?.capabilities?.drop;
    if (!Array.isArray(drop)) return false;
    // The schema's oneOf: drop ALL, or drop each insecure capability by name, but not both.
    return capability(drop, 'ALL') !== INSECURE.every((cap) => capability(drop, cap));
  });

/** runAsRootAllowed and notReadOnlyRootFilesystem validate the pod with only the container under test in it. */
function podLevelOrContainer(c: Container, t: PodTemplate, good: (sc: Json) => boolean, notBad: (sc: Json) => boolean): boolean {
  const pod = t.spec.securityContext;
  const viaPod = pod !== undefined && good(pod) && (c.securityContext === undefined || notBad(c.securityContext));
  const viaContainer = c.securityContext !== undefined && good(c.securityContext);
  return viaPod || viaContainer;
}
export const poRunAsRoot = polarisContainerCheck('runAsRootAllowed', 'danger', 'Is not allowed to run as root', 'Should not be allowed to run as root',
  (c, t) => podLevelOrContainer(c, t,
    (sc) => (sc.runAsUser !== undefined && sc.runAsUser >= 1) || sc.runAsNonRoot === true,
    (sc) => (sc.runAsUser === undefined || sc.runAsUser >= 1) && (sc.runAsNonRoot === undefined || sc.runAsNonRoot === true)));
export const poReadOnlyRoot = polarisContainerCheck('notReadOnlyRootFilesystem', 'warning', 'Filesystem is read only', 'Filesystem should be read only',
  (c, t) => podLevelOrContainer(c, t, (sc) => sc.readOnlyRootFilesystem === true, (sc) => sc.readOnlyRootFilesystem === undefined || sc.readOnlyRootFilesystem === true));

export const poLinuxHardening = polarisContainerCheck('linuxHardening', 'warning',
  'One of AppArmor, Seccomp, SELinux, or dropping Linux Capabilities restricts the container',
  'Use one of AppArmor, Seccomp, SELinux, or dropping Linux Capabilities', (c, t) => {
    if (t.metadata.annotations?.[`container.apparmor.security.beta.kubernetes.io/${c.name}`]) return true;
    const podType: string | undefined = t.spec.securityContext?.seccompProfile?.type;
    const containerType: string | undefined = c.securityContext?.seccompProfile?.type;
    const podSeccomp = Boolean(podType) && podType !== 'Unconfined';
    const seccomp = podSeccomp ? containerType !== 'Unconfined' : Boolean(containerType) && containerType !== 'Unconfined';
    const podSelinux = t.spec.securityContext?.seLinuxOptions;
    const selinux = (podSelinux && Object.keys(podSelinux).length > 0) || Object.keys(c.securityContext?.seLinuxOptions ?? {}).length > 0;
    const caps = c.securityContext?.capabilities;
    const dropped = Array.isArray(caps?.drop) && caps.drop.length > 0 && !capability(caps?.add, 'ALL');
    return seccomp || selinux || dropped;
  });

const SENSITIVE_NAMES = [/^AWS_SECRET_ACCESS_KEY$/i, /^GOOGLE_APPLICATION_CREDENTIALS$/i, /^AZURE_.+KEY$/i, /^OCI_CLI_KEY_CONTENT$/i, /password/i, /token/i, /bearer/i, /secret/i];
const PRIVATE_KEY = /\s*-BEGIN\s+.*PRIVATE KEY-\s*/i;
export const poSensitiveEnv = polarisContainerCheck('sensitiveContainerEnvVar', 'danger', 'The container does not set potentially sensitive environment variables',
  'The container sets potentially sensitive environment variables', (c) => (c.env ?? []).every((e: Json) =>
    e.value === undefined
    || (!SENSITIVE_NAMES.some((p) => p.test(String(e.name))) && !PRIVATE_KEY.test(String(e.value)))
    || (e.valueFrom !== undefined && typeof e.valueFrom === 'object')));

export const poHostIpc = polarisPodCheck('hostIPCSet', 'danger', 'Host IPC is not configured', 'Host IPC should not be configured', (t) => t.spec.hostIPC !== true);
export const poHostPid = polarisPodCheck('hostPIDSet', 'danger', 'Host PID is not configured', 'Host PID should not be configured', (t) => t.spec.hostPID !== true);
export const poHostNetwork = polarisPodCheck('hostNetworkSet', 'danger', 'Host network is not configured', 'Host network should not be configured', (t) => t.spec.hostNetwork !== true);
export const poPriorityClass = polarisPodCheck('priorityClassNotSet', 'warning', 'Priority class has been set', 'Priority class should be set',
  (t) => t.spec.priorityClassName !== undefined);
export const poTopologySpread = polarisPodCheck('topologySpreadConstraint', 'warning', 'Pod has a valid topology spread constraint',
  'Pod should be configured with a valid topology spread constraint', (t) => Array.isArray(t.spec.topologySpreadConstraints) && t.spec.topologySpreadConstraints.length >= 1,
  { excludeBatch: true });
export const poHostPath = polarisPodCheck('hostPathSet', 'danger', 'HostPath volumes are not configured', 'HostPath volumes must be forbidden',
  (t) => (t.spec.volumes ?? []).every((v: Json) => v.hostPath === undefined), {}, false);
export const poProcMount = polarisPodCheck('procMount', 'danger', 'The default /proc masks are set up', 'Proc mount must not be changed from the default',
  (t) => [...allContainers(t), ...(t.spec.ephemeralContainers ?? [])].every((c: Container) => c.securityContext?.procMount === undefined || c.securityContext.procMount === 'Default'), {}, false);
export const poHostProcess = polarisPodCheck('hostProcess', 'danger', 'Privileged access to the host check is valid', 'Privileged access to the host is disallowed',
  (t) => t.spec.securityContext?.windowsOptions?.hostProcess !== true && appContainers(t).every((c) => c.securityContext?.windowsOptions?.hostProcess !== true), {}, false);

export const poAutomountToken = polarisPodCheck('automountServiceAccountToken', 'warning', 'The ServiceAccount will not be automounted',
  'The ServiceAccount will be automounted', (t, o, all) => {
    if (t.spec.automountServiceAccountToken === true) return false;
    // Disabled on the pod: the ServiceAccount schema renders empty and is not consulted.
    if (t.spec.automountServiceAccountToken === false) return true;
    return sameNamespace(all, o, 'ServiceAccount').some((sa) => sa.metadata.name === t.spec.serviceAccountName && sa.automountServiceAccountToken === false);
  });

export const poMissingNetworkPolicy = polarisPodCheck('missingNetworkPolicy', 'warning',
  'A NetworkPolicy matches pod labels and contains egress and ingress rules', 'A NetworkPolicy should match pod labels and contain applied egress and ingress rules', (t, o, all) => {
    const labels = Object.entries(t.metadata.labels ?? {});
    if (labels.length === 0) return false;
    return sameNamespace(all, o, 'NetworkPolicy', 'networking.k8s.io').some((np) => {
      const spec = np.spec ?? {};
      const matchLabels = spec.podSelector?.matchLabels;
      if (!matchLabels || typeof matchLabels !== 'object') return false;
      // The schema's oneOf over the pod's labels: exactly one pod label may appear (with its value) in matchLabels.
      if (labels.filter(([k, v]) => matchLabels[k] === v).length !== 1) return false;
      if (!Array.isArray(spec.egress) || spec.egress.length < 1 || !Array.isArray(spec.ingress) || spec.ingress.length < 1) return false;
      if (spec.policyTypes !== undefined && !(capability(spec.policyTypes, 'EGRESS') && capability(spec.policyTypes, 'INGRESS'))) return false;
      return true;
    });
  });

export const poDeploymentReplicas = polarisKindCheck('deploymentMissingReplicas', ['Deployment'], 'warning', 'Multiple replicas are scheduled',
  'Only one replica is scheduled', (d) => Number.isInteger(d.spec?.replicas) && d.spec.replicas >= 2);

export const poMetadataInstance = polarisKindCheck('metadataAndInstanceMismatched', CONTROLLERS, 'warning', 'Label app.kubernetes.io/instance matches metadata.name',
  'Label app.kubernetes.io/instance must match metadata.name', (d) => d.metadata.labels?.['app.kubernetes.io/instance'] === d.metadata.name);

export const poMissingPdb = polarisKindCheck('missingPodDisruptionBudget', ['Deployment'], 'warning', 'A PodDisruptionBudget is attached', 'Should have a PodDisruptionBudget',
  (d, all) => {
    const labels = Object.entries(d.spec?.template?.metadata?.labels ?? {});
    if (labels.length === 0) return false;
    // The schema's anyOf: some pod label appears with its value in some budget's matchLabels.
    return sameNamespace(all, d, 'PodDisruptionBudget', 'policy').some((pdb) => {
      const matchLabels = pdb.spec?.selector?.matchLabels;
      return matchLabels && typeof matchLabels === 'object' && labels.some(([k, v]) => matchLabels[k] === v);
    });
  });

export const poPdbMinAvailableVsHpa = polarisKindCheck('pdbMinAvailableGreaterThanHPAMinReplicas', ['Deployment'], 'warning', 'PDB and HPA are correctly configured',
  'PDB minAvailable is greater than HPA minReplicas', (d, all) => {
    const podLabels: Record<string, string> = d.spec?.template?.metadata?.labels ?? {};
    // Polaris's Go check looks at every PDB and HPA it was given, in any namespace.
    const pdb = all.find((o) => o.kind === 'PodDisruptionBudget' && o.spec?.selector
      && Object.entries(o.spec.selector.matchLabels ?? {}).some(([k, v]) => podLabels[k] === v));
    const hpa = all.find((o) => o.kind === 'HorizontalPodAutoscaler' && o.spec?.scaleTargetRef?.kind === 'Deployment' && o.spec.scaleTargetRef.name === d.metadata.name);
    if (!pdb || !hpa || pdb.spec.minAvailable === undefined || hpa.spec.minReplicas === undefined) return true;
    const raw = pdb.spec.minAvailable;
    const min = typeof raw === 'string' && raw.endsWith('%') ? Math.ceil((Number(raw.slice(0, -1)) / 100) * hpa.spec.minReplicas) : Number(raw);
    return !(min > hpa.spec.minReplicas);
  }, false, `${PO}/pdbMinAvailableGreaterThanHPAMinReplicas.yaml; pkg/validator/custom_pdb_hpa_validator.go`);

export const poPdbDisruptionsIsZero = polarisKindCheck('pdbDisruptionsIsZero', ['PodDisruptionBudget'], 'warning', 'disruptionsAllowed is greater than zero',
  'disruptionsAllowed is not greater than zero', (pdb) => Number.isInteger(pdb.status?.disruptionsAllowed) && pdb.status.disruptionsAllowed >= 1);

const isHpa = (o: Manifest) => o.kind === 'HorizontalPodAutoscaler' && groupOf(o) === 'autoscaling';
export const poHpaMinAvailability: PolicyCheck = {
  tool: 'polaris', id: 'hpaMinAvailability', origin: `${PO}/hpaMinAvailability.yaml`, enabledByDefault: false,
  what: 'HPA minReplicas, when set, is 2 or more',
  evaluate: (o) => (isHpa(o) ? polarisVerdict(o.spec?.minReplicas === undefined || (Number.isInteger(o.spec.minReplicas) && o.spec.minReplicas >= 2), 'warning',
    'HPA has a valid min replica configuration', 'HPA minReplicas should be 2 or more') : undefined),
};
export const poHpaMaxAvailability: PolicyCheck = {
  tool: 'polaris', id: 'hpaMaxAvailability', origin: `${PO}/hpaMaxAvailability.yaml`, enabledByDefault: false,
  what: 'HPA maxReplicas is set, at least 1, and above minReplicas when that is set',
  evaluate: (o) => {
    if (!isHpa(o)) return undefined;
    const { minReplicas: min, maxReplicas: max } = o.spec ?? {};
    const ok = Number.isInteger(max) && max >= 1 && (min === undefined || (Number.isInteger(min) && min >= 1 && max > min));
    return polarisVerdict(ok, 'warning', 'HPA has a valid max and min replica configuration', 'HPA maxReplicas and minReplicas should be different');
  },
};

export const poSensitiveConfigMap = polarisKindCheck('sensitiveConfigmapContent', ['ConfigMap'], 'danger', 'The ConfigMap does not contain potentially sensitive content',
  'Potentially sensitive content is detected in the ConfigMap keys or values', (cm) => Object.entries(cm.data ?? {})
    .every(([k, v]) => !SENSITIVE_NAMES.some((p) => p.test(k)) && !PRIVATE_KEY.test(String(v))));

export const POLARIS_CHECKS: readonly PolicyCheck[] = [
  poDeploymentReplicas, poPriorityClass, poTagNotSpecified, poPullPolicy, poReadinessProbe, poLivenessProbe, poMetadataInstance,
  poPdbDisruptionsIsZero, poMissingPdb, poTopologySpread, poCpuRequests, poCpuLimits, poMemoryRequests, poMemoryLimits,
  poAutomountToken, poHostIpc, poHostPid, poLinuxHardening, poMissingNetworkPolicy, poReadOnlyRoot, poPrivilegeEscalation,
  poRunAsRoot, poPrivileged, poDangerousCapabilities, poInsecureCapabilities, poHostNetwork, poHostPort, poSensitiveEnv,
  poSensitiveConfigMap, poHostPath, poProcMount, poHostProcess, poHpaMinAvailability, poHpaMaxAvailability, poPdbMinAvailableVsHpa,
];

export const ALL_CHECKS: readonly PolicyCheck[] = [...KUBE_SCORE_CHECKS, ...POLARIS_CHECKS];

/**
 * Checks of both tools that look only at kinds modelship never synthesizes; listed so the documentation can say why
 * they do not apply rather than leave them out silently.
 */
export const NOT_APPLICABLE_BY_KIND: ReadonlyArray<{ tool: Tool; ids: readonly string[]; why: string }> = [
  { tool: 'kube-score', ids: ['statefulset-has-poddisruptionbudget', 'statefulset-has-host-podantiaffinity', 'statefulset-has-servicename', 'statefulset-pod-selector-labels-match-template-metadata-labels'], why: 'no StatefulSet is synthesized' },
  { tool: 'kube-score', ids: ['ingress-targets-service'], why: 'no Ingress is synthesized (Exposure is ClusterIP or LoadBalancer)' },
  { tool: 'kube-score', ids: ['cronjob-has-deadline', 'cronjob-restartpolicy', 'cronjob-backofflimit'], why: 'no CronJob is synthesized' },
  { tool: 'polaris', ids: ['tlsSettingsMissing'], why: 'looks at Ingresses; none is synthesized' },
  { tool: 'polaris', ids: ['clusterrolePodExecAttach', 'rolePodExecAttach', 'clusterrolebindingPodExecAttach', 'rolebindingClusterRolePodExecAttach', 'rolebindingRolePodExecAttach', 'clusterrolebindingClusterAdmin', 'rolebindingClusterAdminClusterRole', 'rolebindingClusterAdminRole'], why: 'look at RBAC objects; the pods run with no ServiceAccount token and no Role is synthesized' },
];
