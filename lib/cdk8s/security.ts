/**
 * The runtime's security settings, one definition for every object that runs it: ModelService's Deployment (through
 * cdk8s-plus) and KServe's ServingRuntime and InferenceService (Kubernetes' own field names, which cdk8s-plus does
 * not write for custom resources). Non-root as the image's user, a read-only root filesystem (the runtime writes
 * only to /tmp, an emptyDir), no privilege escalation, no capabilities, the runtime's default seccomp profile.
 */
import * as kplus from 'cdk8s-plus-27';
import { RUNTIME_GID, RUNTIME_UID } from '@modelship/contract';

/** Every container of a runtime pod (init containers included), in cdk8s-plus's terms. */
export const CONTAINER_SECURITY: kplus.ContainerSecurityContextProps = {
  ensureNonRoot: true, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, privileged: false,
  user: RUNTIME_UID, group: RUNTIME_GID,
};

/** The pod: volumes (a fetched model, Secrets) are group-owned by the runtime's group (fsGroup). */
export const POD_SECURITY: kplus.PodSecurityContextProps = { ensureNonRoot: true, user: RUNTIME_UID, group: RUNTIME_GID, fsGroup: RUNTIME_GID };

export const SECCOMP_PROFILE: kplus.k8s.SeccompProfile = { type: 'RuntimeDefault' };

/** cdk8s-plus names capabilities CAP_*; Kubernetes' "drop everything" is the literal ALL, which it cannot write. */
export function dropAllCapabilities(container: kplus.k8s.Container): kplus.k8s.Container {
  const capabilities = container.securityContext?.capabilities;
  return { ...container, securityContext: { ...container.securityContext, capabilities: { ...capabilities, drop: ['ALL'] } } };
}

/**
 * CONTAINER_SECURITY as Kubernetes writes it, with ALL capabilities dropped and the seccomp profile on the container,
 * for pods whose pod-level security context is not ours to write (a ServingRuntime has none).
 */
export function kubeContainerSecurity(): kplus.k8s.SecurityContext {
  const { securityContext } = dropAllCapabilities({ name: '', securityContext: new kplus.ContainerSecurityContext(CONTAINER_SECURITY)._toKube() });
  return { ...securityContext, seccompProfile: SECCOMP_PROFILE };
}

/**
 * POD_SECURITY as Kubernetes writes it, with the seccomp profile, for a pod that also runs containers of others
 * (KServe's storage initializer): without the user and group, which those keep from their images, while the
 * runtime's container sets its own (kubeContainerSecurity).
 */
export function kubePodSecurity(): kplus.k8s.PodSecurityContext {
  const { runAsUser, runAsGroup, ...pod } = new kplus.PodSecurityContext(POD_SECURITY)._toKube();
  return { ...pod, seccompProfile: SECCOMP_PROFILE };
}
