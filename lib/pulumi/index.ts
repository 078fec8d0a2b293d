/**
 * `modelship/pulumi`: the same constructs for `pulumi up`. Each component builds the cdk8s construct of the same
 * name in an in-memory chart — the one source of truth — and registers every object it synthesizes as its own
 * Pulumi child resource. No cdk8s CLI is involved.
 *
 * Each component registers its objects in its constructor, as they are then, and no later component changes them:
 * Pulumi sends a resource's inputs once and has no point at which a program is known to have created everything, so
 * an object that waited for later components would depend on when the program creates them. What a later component
 * needs from an earlier one is declared to the earlier one when it is created (`autoscaled`), and escape hatches run
 * inside the constructor (`customize`).
 */
import { ApiObject, App, Chart } from 'cdk8s';
import * as pulumi from '@pulumi/pulumi';
import { GRPC_PORT } from '@modelship/contract';
import * as cdk8s from '../index';
import { type Manifest, registerObject, type Substitution, substituteText } from './objects';

export { ALERT, CanaryEngine, DEFAULT_ALERT_DURATIONS, DEFAULT_PROMETHEUS_ADDRESS, Exposure, GATEWAY_API_GROUP, ModelCredentials, ModelSource, ScalingSignal, ScrapeTls } from '../index';

const NAMESPACE_PLACEHOLDER = 'modelship-namespace-placeholder';
const IMAGE_PLACEHOLDER = 'modelship-image-placeholder:0';

export interface ModelServiceArgs extends Omit<cdk8s.ModelServiceProps, 'image'> {
  /** @default - the `default` namespace, or the provider's */
  readonly namespace?: pulumi.Input<string>;
  /** @default DEFAULT_RUNTIME_IMAGE */
  readonly image?: pulumi.Input<string>;
  /**
   * A ModelAutoscaler will scale this service. The Deployment is then registered without `replicas`, so the
   * autoscaler owns the replica count and may be created at any later point of the program, after an `await` too.
   * Without an autoscaler such a Deployment runs Kubernetes' default of one replica.
   * @default false - the Deployment has `replicas` (2 unless given); a ModelAutoscaler for it must then be created
   * in the same synchronous block as the service, before the Deployment is registered on the next turn of the event
   * loop, and fails when it comes later
   */
  readonly autoscaled?: boolean;
  /**
   * Escape hatches, run on the cdk8s construct before any object is registered: patch objects
   * (`ApiObject.of(construct.deployment).addJsonPatch(...)`), add environment variables, add child objects. Changes
   * made to the construct after the component's constructor returns would not reach Pulumi; the next component
   * created for the service fails on them.
   * @default - no changes
   */
  readonly customize?: (construct: cdk8s.ModelService) => void;
}

/** Resolves on the next turn of the event loop, after the program's synchronous block. */
const afterSynchronousBlock = () => new Promise<void>((resolve) => setImmediate(resolve));

/** An object a component registered, and the JSON it registered (unknown while it waits for the synchronous block). */
interface Registration {
  readonly owner: string;
  json?: string;
}

/** The objects registered from each service's in-memory chart, so each component registers only its new ones. */
const registrations = new WeakMap<Chart, Map<ApiObject, Registration>>();

interface RegisterOptions {
  /** The component, as messages name it: `ModelService 'fraud'`. */
  readonly label: string;
  readonly substitutions: readonly Substitution[];
  readonly opts?: pulumi.ComponentResourceOptions;
  /** An object whose JSON is read after the program's synchronous block instead of at once. */
  readonly deferred?: ApiObject;
}

/**
 * Registers, as children of `component`, the objects of `chart` that no component registered yet — those the
 * component's construct and its `customize` made — each with its JSON as it is now. First it synthesizes the chart
 * as `cdk8s synth` does, so the constructs' validations (`node.addValidation`) run and a program that `cdk8s synth`
 * refuses fails here with the same message, before anything is registered. Fails too when an object an earlier
 * component registered has changed since: the change could not reach the cluster.
 */
function registerNewObjects(component: pulumi.ComponentResource, name: string, chart: Chart, options: RegisterOptions) {
  chart.toJson();
  let registered = registrations.get(chart);
  if (!registered) registrations.set(chart, registered = new Map());
  // The whole in-memory app, which holds this service's constructs only: a chart an escape hatch nests counts too.
  const objects = chart.node.root.node.findAll().filter((c): c is ApiObject => c instanceof ApiObject);
  for (const object of objects) {
    const registration = registered.get(object);
    if (registration?.json !== undefined && JSON.stringify(object.toJson()) !== registration.json) {
      throw new Error(`${object.kind} '${object.name}' of ${registration.owner} changed after Pulumi registered it, so the change would not reach the cluster (found when creating ${options.label}): make the change in the 'customize' of ${registration.owner}`);
    }
  }
  const fresh = objects.filter((object) => !registered.has(object));
  // Resource names: `<name>-<kind>`, with the object's index among the component's objects of its kind when there are several.
  const ofKind = new Map<string, ApiObject[]>();
  for (const object of fresh) ofKind.set(object.kind, [...(ofKind.get(object.kind) ?? []), object]);
  for (const object of fresh) {
    const registration: Registration = { owner: options.label };
    registered.set(object, registration);
    const read = () => {
      const json = object.toJson() as Manifest;
      registration.json = JSON.stringify(json);
      return json;
    };
    const later = object === options.deferred ? afterSynchronousBlock().then(read) : undefined;
    // The deferred object's JSON now gives only its top-level fields; what it registers is read later.
    const manifest = later ? object.toJson() as Manifest : read();
    const same = ofKind.get(object.kind)!;
    const resourceName = `${name}-${object.kind.toLowerCase()}${same.length > 1 ? `-${same.indexOf(object)}` : ''}`;
    registerObject(component, resourceName, manifest, options.substitutions, options.opts, later);
  }
}

/** The JSON registered for `object`, once known. */
function registeredJson(object: ApiObject): Manifest | undefined {
  const json = registrations.get(Chart.of(object))?.get(object)?.json;
  return json === undefined ? undefined : JSON.parse(json);
}

export class ModelService extends pulumi.ComponentResource {
  /** The Service's name. */
  readonly serviceName: pulumi.Output<string>;
  readonly deploymentName: pulumi.Output<string>;
  /** In-cluster URL of the REST endpoints: https with `tlsSecret`, as the cdk8s construct's `restUrl`. */
  readonly restUrl: pulumi.Output<string>;
  /** In-cluster address of the gRPC endpoint. */
  readonly grpcAddress: pulumi.Output<string>;
  /** @internal the cdk8s construct the objects come from; the other components attach to it. */
  readonly construct: cdk8s.ModelService;
  /** @internal */
  readonly substitutions: readonly Substitution[];
  /** @internal as messages name this component */
  readonly label: string;
  /** @internal as given: a ModelRoute compares it with its own */
  readonly namespace: pulumi.Input<string> | undefined;

  constructor(name: string, args: ModelServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super('modelship:index:ModelService', name, {}, opts);
    const { namespace, image, autoscaled, customize, ...props } = args;
    this.label = `ModelService '${name}'`;
    this.namespace = namespace;
    if (autoscaled && props.replicas !== undefined) {
      throw new Error(`'autoscaled' and 'replicas' (${props.replicas}) exclude each other: an autoscaler owns the replica count; remove one of them`);
    }
    const { chart, substitutions, plainImage } = chartWithInputs(name, namespace, image);
    this.construct = new cdk8s.ModelService(chart, name, { ...props, image: plainImage });
    this.substitutions = substitutions;
    if (autoscaled) this.construct.deployment.markHasAutoscaler();
    customize?.(this.construct);
    // Undeclared and without fixed replicas, an autoscaler of the earlier form may still come in this synchronous
    // block: the Deployment is read after it.
    const deferred = autoscaled || props.replicas !== undefined ? undefined : ApiObject.of(this.construct.deployment);
    registerNewObjects(this, name, chart, { label: this.label, substitutions, opts, deferred });

    const resolve = (text: string) => pulumi.output(substituteText(text, substitutions));
    // Fully qualified when the namespace is known; the bare Service name (same namespace only) otherwise, as the
    // cdk8s construct gives it: `<service>.svc.cluster.local` would not resolve.
    const host = namespace === undefined
      ? this.construct.serviceName
      : `${this.construct.serviceName}.${typeof namespace === 'string' ? namespace : NAMESPACE_PLACEHOLDER}.svc.cluster.local`;
    this.serviceName = pulumi.output(this.construct.serviceName);
    this.deploymentName = pulumi.output(this.construct.deployment.name);
    this.restUrl = resolve(`${this.construct.tlsEnabled ? 'https' : 'http'}://${host}:${this.construct.service.ports[0].port}`);
    this.grpcAddress = resolve(`${host}:${GRPC_PORT}`);
    this.registerOutputs({ serviceName: this.serviceName, deploymentName: this.deploymentName, restUrl: this.restUrl, grpcAddress: this.grpcAddress });
  }
}

export interface ModelAutoscalerArgs extends Omit<cdk8s.ModelAutoscalerProps, 'service'> {
  /** The service to scale; give it `autoscaled: true` to create this autoscaler at any point of the program. */
  readonly service: ModelService;
  /**
   * Escape hatches, run on the cdk8s construct before any object is registered.
   * @default - no changes
   */
  readonly customize?: (construct: cdk8s.ModelAutoscaler) => void;
}

export class ModelAutoscaler extends pulumi.ComponentResource {
  /** @internal */
  readonly construct: cdk8s.ModelAutoscaler;

  constructor(name: string, args: ModelAutoscalerArgs, opts?: pulumi.ComponentResourceOptions) {
    super('modelship:index:ModelAutoscaler', name, {}, opts);
    const { service, customize, ...props } = args;
    const label = `ModelAutoscaler '${name}'`;
    const deployment = registeredJson(ApiObject.of(service.construct.deployment)) as { spec: { replicas?: number } } | undefined;
    if (!service.construct.hasFixedReplicas && deployment?.spec.replicas !== undefined) {
      throw new Error(`${label} comes after ${service.label} registered its Deployment with ${deployment.spec.replicas} replicas (an await or a callback came between them), which the autoscaler would fight: give ${service.label} 'autoscaled: true' so that it registers the Deployment without replicas and the autoscaler may come at any point of the program`);
    }
    this.construct = new cdk8s.ModelAutoscaler(Chart.of(service.construct), name, { ...props, service: service.construct });
    customize?.(this.construct);
    registerNewObjects(this, name, Chart.of(service.construct), { label, substitutions: service.substitutions, opts });
    this.registerOutputs({});
  }
}

export interface ModelMonitoringArgs extends Omit<cdk8s.ModelMonitoringProps, 'service' | 'autoscaler' | 'shadow'> {
  readonly service: ModelService;
  /**
   * This service shadows `shadow.of` (a ModelRoute mirrors `of`'s requests to it), as the cdk8s construct's `shadow`.
   * @default - not a shadow: no comparison
   */
  readonly shadow?: Omit<cdk8s.ShadowComparisonOptions, 'of'> & { readonly of: ModelService };
  /** Adds ModelServiceAutoscalerMaxedOut for its HPA. @default - no autoscaler alert */
  readonly autoscaler?: ModelAutoscaler;
  /**
   * Escape hatches, run on the cdk8s construct before any object is registered.
   * @default - no changes
   */
  readonly customize?: (construct: cdk8s.ModelMonitoring) => void;
}

export class ModelMonitoring extends pulumi.ComponentResource {
  /** @internal */
  readonly construct: cdk8s.ModelMonitoring;

  constructor(name: string, args: ModelMonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super('modelship:index:ModelMonitoring', name, {}, opts);
    const { service, autoscaler, shadow, customize, ...props } = args;
    const label = `ModelMonitoring '${name}'`;
    if (shadow) checkShadowNamespaces(label, service, shadow.of);
    this.construct = new cdk8s.ModelMonitoring(Chart.of(service.construct), name, {
      ...props, service: service.construct, autoscaler: autoscaler?.construct, shadow: shadow && { ...shadow, of: shadow.of.construct },
    });
    customize?.(this.construct);
    registerNewObjects(this, name, Chart.of(service.construct), { label, substitutions: service.substitutions, opts });
    this.registerOutputs({});
  }
}

export interface ModelRouteArgs extends Omit<cdk8s.ModelRouteProps, 'backends' | 'mirror'> {
  /** @default - the `default` namespace, or the provider's */
  readonly namespace?: pulumi.Input<string>;
  /** The versions requests are split between, by weight, as the cdk8s construct's `backends`. */
  readonly backends: ReadonlyArray<{ readonly service: ModelService; readonly weight: number }>;
  /** Copies a share of the requests to a shadow service, as the cdk8s construct's `mirror`. @default - no mirroring */
  readonly mirror?: { readonly service: ModelService; readonly percent?: number };
  /**
   * Escape hatches, run on the cdk8s construct before any object is registered.
   * @default - no changes
   */
  readonly customize?: (construct: cdk8s.ModelRoute) => void;
}

export class ModelRoute extends pulumi.ComponentResource {
  /** The HTTPRoute's and GRPCRoute's name. */
  readonly routeName: pulumi.Output<string>;
  /** @internal */
  readonly construct: cdk8s.ModelRoute;

  constructor(name: string, args: ModelRouteArgs, opts?: pulumi.ComponentResourceOptions) {
    super('modelship:index:ModelRoute', name, {}, opts);
    const { namespace, backends, mirror, customize, ...props } = args;
    const label = `ModelRoute '${name}'`;
    const services = [...backends.map((b) => b.service), ...(mirror ? [mirror.service] : [])];
    checkComparableNamespaces(label, namespace, services);
    // Every namespace is then a plain string or the one Output all share, which the placeholder stands for.
    const substitutions: Substitution[] = namespace === undefined || typeof namespace === 'string' ? [] : [{ placeholder: NAMESPACE_PLACEHOLDER, value: namespace }];
    const chart = new Chart(new App(), name, { namespace: substitutions.length > 0 ? NAMESPACE_PLACEHOLDER : namespace as string | undefined });
    this.construct = new cdk8s.ModelRoute(chart, name, {
      ...props,
      backends: backends.map(({ service, weight }) => ({ service: service.construct, weight })),
      mirror: mirror && { service: mirror.service.construct, percent: mirror.percent },
    });
    customize?.(this.construct);
    registerNewObjects(this, name, chart, { label, substitutions, opts });
    this.routeName = pulumi.output(this.construct.routeName);
    this.registerOutputs({ routeName: this.routeName });
  }
}

export interface ModelCanaryArgs extends Omit<cdk8s.ModelCanaryProps, 'service'> {
  /** The ModelService whose new versions are rolled out; the canary's objects go to its namespace. */
  readonly service: ModelService;
  /**
   * Escape hatches, run on the cdk8s construct before any object is registered.
   * @default - no changes
   */
  readonly customize?: (construct: cdk8s.ModelCanary) => void;
}

export class ModelCanary extends pulumi.ComponentResource {
  /** The Canary's (or AnalysisTemplate's) name. */
  readonly canaryName: pulumi.Output<string>;
  /** @internal */
  readonly construct: cdk8s.ModelCanary;

  constructor(name: string, args: ModelCanaryArgs, opts?: pulumi.ComponentResourceOptions) {
    super('modelship:index:ModelCanary', name, {}, opts);
    const { service, customize, ...props } = args;
    this.construct = new cdk8s.ModelCanary(Chart.of(service.construct), name, { ...props, service: service.construct });
    customize?.(this.construct);
    registerNewObjects(this, name, Chart.of(service.construct), { label: `ModelCanary '${name}'`, substitutions: service.substitutions, opts });
    this.canaryName = pulumi.output(this.construct.canaryName);
    this.registerOutputs({ canaryName: this.canaryName });
  }
}

export interface KServeRuntimeArgs extends Omit<cdk8s.KServeRuntimeProps, 'image'> {
  /** @default - the `default` namespace, or the provider's; none for a `clusterScoped` runtime */
  readonly namespace?: pulumi.Input<string>;
  /** @default DEFAULT_RUNTIME_IMAGE */
  readonly image?: pulumi.Input<string>;
  /**
   * Escape hatches, run on the cdk8s construct before any object is registered.
   * @default - no changes
   */
  readonly customize?: (construct: cdk8s.KServeRuntime) => void;
}

export class KServeRuntime extends pulumi.ComponentResource {
  /** The ServingRuntime's (or ClusterServingRuntime's) name, for an InferenceService's `runtime`. */
  readonly runtimeName: pulumi.Output<string>;
  /** @internal */
  readonly construct: cdk8s.KServeRuntime;
  /** @internal placeholders of its chart, which an InferenceService beside it shares */
  readonly substitutions: readonly Substitution[];
  /** @internal as given: an InferenceService compares it with its own */
  readonly namespace: pulumi.Input<string> | undefined;

  constructor(name: string, args: KServeRuntimeArgs, opts?: pulumi.ComponentResourceOptions) {
    super('modelship:index:KServeRuntime', name, {}, opts);
    const { namespace, image, customize, ...props } = args;
    this.namespace = namespace;
    const { chart, substitutions, plainImage } = chartWithInputs(name, namespace, image);
    this.construct = new cdk8s.KServeRuntime(chart, name, { ...props, image: plainImage });
    this.substitutions = substitutions;
    customize?.(this.construct);
    registerNewObjects(this, name, chart, { label: `KServeRuntime '${name}'`, substitutions, opts });
    this.runtimeName = pulumi.output(this.construct.runtimeName);
    this.registerOutputs({ runtimeName: this.runtimeName });
  }
}

export interface KServeInferenceServiceArgs extends Omit<cdk8s.KServeInferenceServiceProps, 'runtime'> {
  /** The runtime that serves the model. */
  readonly runtime: KServeRuntime;
  /**
   * Another namespace than the runtime's, for a `clusterScoped` runtime only.
   * @default - the runtime's namespace (the `default` namespace, or the provider's, for a `clusterScoped` runtime)
   */
  readonly namespace?: pulumi.Input<string>;
  /**
   * Escape hatches, run on the cdk8s construct before any object is registered.
   * @default - no changes
   */
  readonly customize?: (construct: cdk8s.KServeInferenceService) => void;
}

export class KServeInferenceService extends pulumi.ComponentResource {
  /** The InferenceService's name, which is also the model's name in the runtime's URLs. */
  readonly inferenceServiceName: pulumi.Output<string>;
  /** @internal */
  readonly construct: cdk8s.KServeInferenceService;

  constructor(name: string, args: KServeInferenceServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super('modelship:index:KServeInferenceService', name, {}, opts);
    const { runtime, namespace, customize, ...props } = args;
    const label = `KServeInferenceService '${name}'`;
    // Beside the runtime, in its chart and namespace, unless a cluster-wide runtime serves another namespace.
    const apart = namespace !== undefined && namespace !== runtime.namespace;
    if (apart && !runtime.construct.clusterScoped) {
      throw new Error(`${label}: its namespace differs from KServeRuntime '${runtime.construct.node.id}''s, and KServe only finds a ServingRuntime in the InferenceService's namespace; leave 'namespace' unset, or make the runtime 'clusterScoped'`);
    }
    const { chart, substitutions } = apart ? chartWithInputs(name, namespace, undefined) : { chart: Chart.of(runtime.construct), substitutions: runtime.substitutions };
    this.construct = new cdk8s.KServeInferenceService(chart, name, { ...props, runtime: runtime.construct });
    customize?.(this.construct);
    registerNewObjects(this, name, chart, { label, substitutions, opts });
    this.inferenceServiceName = pulumi.output(this.construct.inferenceServiceName);
    this.registerOutputs({ inferenceServiceName: this.inferenceServiceName });
  }
}

/**
 * An in-memory chart for a component, and the image as a plain string: a namespace or an image given as an Output is
 * a placeholder there, which registration replaces with the Output.
 */
function chartWithInputs(name: string, namespace: pulumi.Input<string> | undefined, image: pulumi.Input<string> | undefined): { chart: Chart; substitutions: Substitution[]; plainImage?: string } {
  const substitutions: Substitution[] = [];
  const plain = (value: pulumi.Input<string> | undefined, placeholder: string): string | undefined => {
    if (value === undefined || typeof value === 'string') return value as string | undefined;
    substitutions.push({ placeholder, value });
    return placeholder;
  };
  const chart = new Chart(new App(), name, { namespace: plain(namespace, NAMESPACE_PLACEHOLDER) });
  return { chart, substitutions, plainImage: plain(image, IMAGE_PLACEHOLDER) };
}

/**
 * Whether a backend needs a ReferenceGrant depends on its namespace being the route's, which cannot be known of
 * two different Outputs before they resolve: namespaces given as Outputs must all be the same Output.
 */
function checkComparableNamespaces(label: string, namespace: pulumi.Input<string> | undefined, services: readonly ModelService[]): void {
  const given = [namespace, ...services.map((s) => s.namespace)];
  const outputs = given.filter((n) => n !== undefined && typeof n !== 'string');
  if (outputs.length > 0 && !given.every((n) => n === outputs[0])) {
    throw new Error(`${label}: its namespace and its services' (${[label, ...services.map((s) => s.label)].join(', ')}) include an Output, so whether a service is in the route's namespace (or needs a ReferenceGrant) is unknown until it resolves; give every one the same Output, or plain strings`);
  }
}

/**
 * The comparison rules name both services' namespaces, and a namespace given as an Output is written as a placeholder
 * that only the monitored service's own Output replaces: the primary's may be an Output only if it is that same one.
 */
function checkShadowNamespaces(label: string, shadow: ModelService, primary: ModelService): void {
  const output = (n: pulumi.Input<string> | undefined) => n !== undefined && typeof n !== 'string';
  if ((output(shadow.namespace) || output(primary.namespace)) && shadow.namespace !== primary.namespace) {
    throw new Error(`${label}: the namespace of ${shadow.label} or of its 'shadow.of' ${primary.label} is an Output, which the rules cannot name until it resolves unless it is the other's own; give both the same Output, or plain strings`);
  }
}
