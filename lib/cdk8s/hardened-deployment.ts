/**
 * A cdk8s-plus Deployment whose pod gets ModelService's hardening when it is synthesized, over the containers it
 * has by then: init containers added later through `addInitContainer` get the same treatment as those given at
 * construction. cdk8s-plus itself produces the spec lazily (`_toKube` at synth), so this is the same step, with
 * the fields cdk8s-plus cannot express added to its result.
 */
import * as kplus from 'cdk8s-plus-27';
import { dropAllCapabilities, SECCOMP_PROFILE } from './security';

interface PodHardening {
  /** Labels that pick this Deployment's pods, for the spread and anti-affinity terms. */
  readonly selectorLabels: Record<string, string>;
  /** The runtime container's resources, as the strings the user gave (cdk8s-plus would rewrite them in its units). */
  readonly runtimeResources: kplus.k8s.ResourceRequirements;
  /** The runtime container's name. */
  readonly runtimeContainer: string;
  /** Init containers that load the model as the server does: they get the runtime container's CPU and memory. */
  readonly initContainersSizedLikeRuntime: readonly string[];
  /** ephemeral-storage each init container requests and is limited to when it says nothing itself. */
  readonly initContainerEphemeralStorage: string;
}

export class HardenedDeployment extends kplus.Deployment {
  private hardening?: PodHardening;

  /** Called once the labels exist; until then the spec is cdk8s-plus's own. @internal */
  _harden(hardening: PodHardening): void {
    this.hardening = hardening;
  }

  /** @internal */
  public override _toKube(): kplus.k8s.DeploymentSpec {
    const spec = super._toKube();
    return this.hardening ? { ...spec, template: { ...spec.template, spec: hardenPod(spec.template.spec!, this.hardening) } } : spec;
  }
}

/** The pod spec with every container hardened and ModelService's scheduling defaults where the user set none. */
function hardenPod(pod: kplus.k8s.PodSpec, hardening: PodHardening): kplus.k8s.PodSpec {
  const storage = kplus.k8s.Quantity.fromString(hardening.initContainerEphemeralStorage);
  const matchLabels = hardening.selectorLabels;
  return {
    ...pod,
    // RuntimeDefault unless the user chose a profile through the pod's security context.
    securityContext: { ...pod.securityContext, seccompProfile: pod.securityContext?.seccompProfile ?? SECCOMP_PROFILE },
    containers: pod.containers.map((container) => dropAllCapabilities(container.name === hardening.runtimeContainer
      ? { ...container, resources: hardening.runtimeResources } : container)),
    initContainers: pod.initContainers?.map((container) => dropAllCapabilities(withEphemeralStorage(
      hardening.initContainersSizedLikeRuntime.includes(container.name) ? { ...container, resources: cpuAndMemoryOf(hardening.runtimeResources) } : container,
      storage,
    ))),
    // Prefer replicas on different hosts (what kube-score looks for), besides the spread below; preferred, not
    // required, so a small cluster still schedules every replica. Node affinity the user asked for stays.
    affinity: {
      ...pod.affinity,
      podAntiAffinity: pod.affinity?.podAntiAffinity ?? { preferredDuringSchedulingIgnoredDuringExecution: [{
        weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels } },
      }] },
    },
    // Spread across nodes and zones, preferring rather than requiring it so small clusters still schedule.
    topologySpreadConstraints: pod.topologySpreadConstraints ?? ['kubernetes.io/hostname', 'topology.kubernetes.io/zone'].map((topologyKey) => ({
      maxSkew: 1, topologyKey, whenUnsatisfiable: 'ScheduleAnyway', labelSelector: { matchLabels },
    })),
  };
}

/** The CPU and memory of a container's resources (not its ephemeral storage or GPUs, which the server's alone need). */
function cpuAndMemoryOf(resources: kplus.k8s.ResourceRequirements): kplus.k8s.ResourceRequirements {
  const pick = (quantities: Record<string, kplus.k8s.Quantity> | undefined) => ({ cpu: quantities!.cpu, memory: quantities!.memory });
  return { requests: pick(resources.requests), limits: pick(resources.limits) };
}

/**
 * An init container writes only its logs (the root filesystem is read-only and what it produces goes to volumes,
 * counted in the pod's limit): a small ephemeral-storage request and limit, unless it sets its own.
 */
function withEphemeralStorage(container: kplus.k8s.Container, storage: kplus.k8s.Quantity): kplus.k8s.Container {
  const resources = container.resources ?? {};
  return {
    ...container,
    resources: {
      ...resources,
      requests: { 'ephemeral-storage': storage, ...resources.requests },
      limits: { 'ephemeral-storage': storage, ...resources.limits },
    },
  };
}
