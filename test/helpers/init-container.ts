/**
 * The `fetch-model` init container of a synthesized ModelService, made runnable without a cluster: its args, its
 * environment with each secretKeyRef resolved from the Secrets a test supplies (as the kubelet resolves them), and
 * each Secret volume it mounts written to a directory to bind at its mountPath (the items and their paths as the
 * kubelet lays them out). Run it with fetchInSandbox to see that what the construct writes fetches the model.
 */
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MODEL_REPOSITORY_PATH } from '@modelship/contract';

type Json = any;

/** Secret name → key → value, as the Secrets in the pod's namespace would hold them. */
export type Secrets = Record<string, Record<string, string | Uint8Array>>;

export interface InitContainerRun {
  readonly args: string[];
  readonly env: Record<string, string>;
  /** [directory written here, mountPath in the container]. */
  readonly binds: Array<[string, string]>;
}

export function initContainerRun(manifests: readonly Json[], secrets: Secrets, workDir: string): InitContainerRun {
  const pod = manifests.find((m) => m.kind === 'Deployment').spec.template.spec;
  const container = (pod.initContainers ?? []).find((c: Json) => c.name === 'fetch-model');
  if (!container) throw new Error('the Deployment has no fetch-model init container');
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
  for (const mount of container.volumeMounts ?? []) {
    if (mount.mountPath === MODEL_REPOSITORY_PATH) continue; // the sandbox's own size-limited volume
    const volume = (pod.volumes ?? []).find((v: Json) => v.name === mount.name);
    if (!volume?.secret) throw new Error(`volume '${mount.name}' is not a Secret volume; the test cannot lay it out`);
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
  return { args: container.args, env, binds };
}
