/**
 * The init containers of a synthesized ModelService, made runnable without a cluster: each one's args, its
 * environment with each secretKeyRef resolved from the Secrets a test supplies (as the kubelet resolves them), each
 * Secret volume it mounts written to a directory to bind at its mountPath (the items and their paths as the kubelet
 * lays them out), and the emptyDirs it mounts besides the model volume. Run `fetch-model` alone with fetchInSandbox
 * to see that what the construct writes fetches the model, or all of them in order with initContainersInSandbox.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_REPOSITORY_PATH } from '@modelship/contract';

type Json = any;

/** Secret name → key → value, as the Secrets in the pod's namespace would hold them. */
export type Secrets = Record<string, Record<string, string | Uint8Array>>;

export interface InitContainerRun {
  readonly name: string;
  readonly args: string[];
  readonly env: Record<string, string>;
  /** [directory written here, mountPath in the container]. */
  readonly binds: Array<[string, string]>;
  /** mountPaths of the emptyDirs it mounts besides the model volume (its own /tmp): fresh and writable. */
  readonly scratch: string[];
}

/** The init container `name` (fetch-model unless told) of the synthesized Deployment. */
export function initContainerRun(manifests: readonly Json[], secrets: Secrets, workDir: string, name = 'fetch-model'): InitContainerRun {
  const pod = podSpecOf(manifests);
  const container = (pod.initContainers ?? []).find((c: Json) => c.name === name);
  if (!container) throw new Error(`the Deployment has no ${name} init container`);
  return runOf(pod, container, secrets, join(workDir, name));
}

/** Every init container of the synthesized Deployment, in the order the kubelet runs them. */
export function initContainerRuns(manifests: readonly Json[], secrets: Secrets, workDir: string): InitContainerRun[] {
  const pod = podSpecOf(manifests);
  return (pod.initContainers ?? []).map((container: Json) => runOf(pod, container, secrets, join(workDir, container.name)));
}

const podSpecOf = (manifests: readonly Json[]) => manifests.find((m) => m.kind === 'Deployment').spec.template.spec;

function runOf(pod: Json, container: Json, secrets: Secrets, workDir: string): InitContainerRun {
  const secretValue = (name: string, key: string, optional: boolean): string | undefined => {
    const value = secrets[name]?.[key];
    if (value === undefined && !optional) throw new Error(`the pod would not start: Secret '${name}' has no key '${key}' (CreateContainerConfigError)`);
    return value === undefined ? undefined : Buffer.from(value).toString('utf8');
  };
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    const ref = variable.valueFrom?.secretKeyRef;
    const value = ref ? secretValue(ref.name, ref.key, ref.optional === true) : variable.value;
    if (value !== undefined) env[variable.name] = value;
  }
  const binds: Array<[string, string]> = [];
  const scratch: string[] = [];
  for (const mount of container.volumeMounts ?? []) {
    if (mount.mountPath === MODEL_REPOSITORY_PATH) continue; // the sandbox's own model volume
    const volume = (pod.volumes ?? []).find((v: Json) => v.name === mount.name);
    if (volume?.emptyDir) {
      scratch.push(mount.mountPath);
      continue;
    }
    if (!volume?.secret) throw new Error(`volume '${mount.name}' is neither a Secret volume nor an emptyDir; the test cannot lay it out`);
    const dir = join(workDir, `${volume.name}-${binds.length}`);
    mkdirSync(dir, { recursive: true });
    const items: Array<{ key: string; path: string }> = volume.secret.items ?? Object.keys(secrets[volume.secret.secretName] ?? {}).map((key) => ({ key, path: key }));
    for (const item of items) {
      const value = secrets[volume.secret.secretName]?.[item.key];
      if (value === undefined) throw new Error(`the pod would not start: Secret '${volume.secret.secretName}' has no key '${item.key}' for volume '${volume.name}'`);
      const file = join(dir, item.path);
      writeFileSync(file, value);
      // The kubelet gives the file defaultMode and the pod's fsGroup; in the sandbox the runtime's uid owns it.
      chmodSync(file, volume.secret.defaultMode ?? 0o644);
    }
    binds.push([dir, mount.mountPath]);
  }
  return { name: container.name, args: container.args, env, binds, scratch };
}
