/**
 * Registers synthesized Kubernetes objects as Pulumi resources, each its own child so `pulumi preview` lists it
 * and Pulumi tracks its state, and each whole: every top-level field of the object is an input. Built-in kinds
 * become their typed @pulumi/kubernetes resources (a Secret's data is then kept secret, and Pulumi's type token is
 * the one the provider knows, `kubernetes:core/v1:ServiceAccount`); every other kind a CustomResource.
 */
import * as k8s from '@pulumi/kubernetes';
import * as pulumi from '@pulumi/pulumi';

export type Manifest = { readonly apiVersion: string; readonly kind: string; readonly metadata: { readonly name: string }; readonly [key: string]: unknown };

type ResourceClass = (new (name: string, args: any, opts?: pulumi.CustomResourceOptions) => pulumi.CustomResource) & { readonly __pulumiType?: string };

/**
 * The typed resource of a built-in kind, found where @pulumi/kubernetes puts it: the module named after the group's
 * first label (`rbac.authorization.k8s.io/v1` → `k8s.rbac.v1`, the core group → `k8s.core`). Any kind the installed
 * @pulumi/kubernetes knows is found, without a list here to keep up. A custom group whose first label is a built-in
 * one (`apps.example.com`) does not match the class's own type token, and stays a custom resource.
 */
function typedResource(apiVersion: string, kind: string): ResourceClass | undefined {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/') : ['core', apiVersion];
  const module = (k8s as unknown as Record<string, Record<string, Record<string, unknown>> | undefined>)[group.split('.')[0]];
  const candidate = Object.hasOwn(module ?? {}, version) ? module![version] : undefined;
  const resource = candidate && Object.hasOwn(candidate, kind) ? candidate[kind] as ResourceClass : undefined;
  return resource?.__pulumiType === `kubernetes:${group}/${version}:${kind}` ? resource : undefined;
}

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
 * Registers one object. `manifest` is its JSON now; `later`, when given, is the JSON the object is registered with,
 * read later with the same top-level fields (a Deployment whose replicas an autoscaler may still take).
 */
export function registerObject(
  parent: pulumi.ComponentResource, resourceName: string, manifest: Manifest, substitutions: readonly Substitution[],
  opts: pulumi.ComponentResourceOptions | undefined, later?: Promise<Manifest>,
): pulumi.CustomResource {
  const childOptions: pulumi.CustomResourceOptions = { parent, provider: opts?.provider, dependsOn: opts?.dependsOn };
  const args: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(manifest)) {
    args[key] = key === 'apiVersion' || key === 'kind' ? value
      : later ? pulumi.output(later).apply((m) => substitute(m[key], substitutions)) : substitute(value, substitutions);
  }
  const typed = typedResource(manifest.apiVersion, manifest.kind);
  if (!typed) return new k8s.apiextensions.CustomResource(resourceName, args as k8s.apiextensions.CustomResourceArgs, childOptions);
  // A typed resource takes only the fields its kind has (apiVersion and kind it writes itself, the same as these by
  // its type token): note which it reads, so that none is dropped unseen.
  const read = new Set<string | symbol>(['apiVersion', 'kind']);
  const resource = new typed(resourceName, new Proxy(args, { get: (target, key) => (read.add(key), Reflect.get(target, key)) }), childOptions);
  const dropped = Object.keys(args).filter((key) => !read.has(key));
  if (dropped.length > 0) {
    throw new Error(`${manifest.kind} '${manifest.metadata.name}': ${dropped.map((key) => `'${key}'`).join(', ')} ${dropped.length > 1 ? 'are not fields' : 'is not a field'} of ${manifest.apiVersion} ${manifest.kind} (@pulumi/kubernetes would drop ${dropped.length > 1 ? 'them' : 'it'}, and the API server rejects unknown fields); remove ${dropped.length > 1 ? 'them' : 'it'} from the object`);
  }
  return resource;
}
