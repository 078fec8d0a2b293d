/**
 * `modelship/pulumi`: the same constructs for `pulumi up`. Each component builds the cdk8s construct of the same
 * name in an in-memory chart — the one source of truth — and registers every object it synthesizes as its own
 * Pulumi child resource. No cdk8s CLI is involved.
 */
import { ApiObject, App, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import * as pulumi from '@pulumi/pulumi';
import { GRPC_PORT } from '@modelship/contract';
import * as cdk8s from '../index';
import { type Manifest, registerObject, type Substitution, substituteText } from './objects';

export { Exposure, ModelSource, ScalingSignal, ScrapeTls, ALERT, DEFAULT_ALERT_DURATIONS } from '../index';

const NAMESPACE_PLACEHOLDER = 'modelship-namespace-placeholder';
const IMAGE_PLACEHOLDER = 'modelship-image-placeholder:0';

export interface ModelServiceArgs extends Omit<cdk8s.ModelServiceProps, 'image'> {
  /** @default - the `default` namespace, or the provider's */
  readonly namespace?: pulumi.Input<string>;
  /** @default DEFAULT_RUNTIME_IMAGE */
  readonly image?: pulumi.Input<string>;
}

/** Resolves on the next turn of the event loop, after the program's synchronous construction. */
const afterConstruction = () => new Promise<void>((resolve) => setImmediate(resolve));

function registerSubtree(parent: pulumi.ComponentResource, name: string, root: Construct, substitutions: readonly Substitution[], opts?: pulumi.ComponentResourceOptions) {
  const objects = root.node.findAll().filter((c): c is ApiObject => c instanceof ApiObject);
  // Resource names: `<name>-<kind>`, with the object's index among those of its kind when there are several.
  const ofKind = new Map<string, ApiObject[]>();
  for (const object of objects) ofKind.set(object.kind, [...(ofKind.get(object.kind) ?? []), object]);
  const ready = afterConstruction();
  return objects.map((object) => {
    const same = ofKind.get(object.kind)!;
    const resourceName = `${name}-${object.kind.toLowerCase()}${same.length > 1 ? `-${same.indexOf(object)}` : ''}`;
    return registerObject(parent, resourceName, { apiVersion: object.apiVersion, kind: object.kind }, ready.then(() => object.toJson() as Manifest), substitutions, opts);
  });
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

  constructor(name: string, args: ModelServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super('modelship:index:ModelService', name, {}, opts);
    const { namespace, image, ...props } = args;
    const substitutions: Substitution[] = [];
    const plain = (value: pulumi.Input<string> | undefined, placeholder: string): string | undefined => {
      if (value === undefined || typeof value === 'string') return value as string | undefined;
      substitutions.push({ placeholder, value });
      return placeholder;
    };
    const chart = new Chart(new App(), name, { namespace: plain(namespace, NAMESPACE_PLACEHOLDER) });
    this.construct = new cdk8s.ModelService(chart, name, { ...props, image: plain(image, IMAGE_PLACEHOLDER) });
    this.substitutions = substitutions;
    registerSubtree(this, name, this.construct, substitutions, opts);

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
  readonly service: ModelService;
}

export class ModelAutoscaler extends pulumi.ComponentResource {
  /** @internal */
  readonly construct: cdk8s.ModelAutoscaler;

  constructor(name: string, args: ModelAutoscalerArgs, opts?: pulumi.ComponentResourceOptions) {
    super('modelship:index:ModelAutoscaler', name, {}, opts);
    const { service, ...props } = args;
    this.construct = new cdk8s.ModelAutoscaler(Chart.of(service.construct), name, { ...props, service: service.construct });
    registerSubtree(this, name, this.construct, service.substitutions, opts);
    this.registerOutputs({});
  }
}

export interface ModelMonitoringArgs extends Omit<cdk8s.ModelMonitoringProps, 'service' | 'autoscaler'> {
  readonly service: ModelService;
  readonly autoscaler?: ModelAutoscaler;
}

export class ModelMonitoring extends pulumi.ComponentResource {
  /** @internal */
  readonly construct: cdk8s.ModelMonitoring;

  constructor(name: string, args: ModelMonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super('modelship:index:ModelMonitoring', name, {}, opts);
    const { service, autoscaler, ...props } = args;
    this.construct = new cdk8s.ModelMonitoring(Chart.of(service.construct), name, { ...props, service: service.construct, autoscaler: autoscaler?.construct });
    registerSubtree(this, name, this.construct, service.substitutions, opts);
    this.registerOutputs({});
  }
}
