/**
 * Registers synthesized Kubernetes objects as Pulumi resources, each its own child so `pulumi preview` lists it
 * and Pulumi tracks its state: built-in kinds as their typed resources, CRD kinds as CustomResources.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';

export type Manifest = { readonly apiVersion: string; readonly kind: string; readonly metadata: { readonly name: string }; readonly [key: string]: unknown };

type ResourceClass = new (name: string, args: any, opts?: pulumi.CustomResourceOptions) => pulumi.CustomResource;

const TYPED: Readonly<Record<string, ResourceClass>> = {
  'apps/v1/Deployment': k8s.apps.v1.Deployment,
  'v1/Service': k8s.core.v1.Service,
  'v1/ConfigMap': k8s.core.v1.ConfigMap,
  'v1/Secret': k8s.core.v1.Secret,
  'v1/ServiceAccount': k8s.core.v1.ServiceAccount,
  'policy/v1/PodDisruptionBudget': k8s.policy.v1.PodDisruptionBudget,
  'networking.k8s.io/v1/NetworkPolicy': k8s.networking.v1.NetworkPolicy,
  'autoscaling/v2/HorizontalPodAutoscaler': k8s.autoscaling.v2.HorizontalPodAutoscaler,
};

/**
 * Placeholders stand in for values that are Pulumi Inputs while cdk8s synthesizes (it needs plain strings); every
 * string that contains one is turned back into an Output here, so an image built by another resource or a
 * namespace created in the same program flows into the objects without creating resources inside `apply`.
 */
export interface Substitution {
  readonly placeholder: string;
  readonly value: pulumi.Input<string>;
}

/** `text` with every placeholder it contains replaced by its value: the text itself when it contains none. */
export function substituteText(text: string, substitutions: readonly Substitution[]): pulumi.Input<string> {
  const used = substitutions.filter((s) => text.includes(s.placeholder));
  if (used.length === 0) return text;
  return pulumi.all(used.map((s) => s.value)).apply((resolved) =>
    used.reduce((result, s, i) => result.split(s.placeholder).join(resolved[i]), text));
}

function substitute(value: unknown, substitutions: readonly Substitution[]): pulumi.Input<unknown> {
  if (typeof value === 'string') return substituteText(value, substitutions);
  if (Array.isArray(value)) return value.map((item) => substitute(item, substitutions));
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, substitute(item, substitutions)]));
  }
  return value;
}

/**
 * Registers one object. `manifest` resolves once the program has built every construct (an autoscaler created
 * after its service still removes the service's fixed replicas); kind and name are known at once.
 */
export function registerObject(
  parent: pulumi.ComponentResource, resourceName: string, identity: { apiVersion: string; kind: string },
  manifest: Promise<Manifest>, substitutions: readonly Substitution[], opts: pulumi.ComponentResourceOptions | undefined,
): pulumi.CustomResource {
  const fields = pulumi.output(manifest).apply((m) => m);
  const field = (key: string) => fields.apply((m) => substitute(m[key], substitutions));
  const childOptions: pulumi.CustomResourceOptions = { parent, provider: opts?.provider, dependsOn: opts?.dependsOn };
  const typed = TYPED[`${identity.apiVersion}/${identity.kind}`];
  const keys = TOP_LEVEL_KEYS[identity.kind] ?? ['spec'];
  const args: Record<string, unknown> = { apiVersion: identity.apiVersion, kind: identity.kind, metadata: field('metadata') };
  for (const key of keys) args[key] = field(key);
  if (typed) return new typed(resourceName, args, childOptions);
  return new k8s.apiextensions.CustomResource(resourceName, args as k8s.apiextensions.CustomResourceArgs, childOptions);
}

/** Top-level fields besides apiVersion, kind and metadata. */
const TOP_LEVEL_KEYS: Readonly<Record<string, readonly string[]>> = {
  ConfigMap: ['data', 'binaryData', 'immutable'],
  Secret: ['data', 'stringData', 'type', 'immutable'],
};
