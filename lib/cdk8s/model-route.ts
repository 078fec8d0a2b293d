/**
 * ModelRoute: one address for several versions of a model. A Gateway API HTTPRoute (REST) and GRPCRoute (gRPC)
 * split requests between ModelServices by weight, optionally copy a share of them to a shadow service whose
 * answers the gateway discards, and a ReferenceGrant lets the routes reach a service in another namespace.
 */
import { ApiObject, Chart } from 'cdk8s';
import { Construct } from 'constructs';
import { GRPC_PORT, PORT_NAME } from '@modelship/contract';
import { LABEL_KEYS } from './labels';
import type { ModelService } from './model-service';
import { checkDnsLabel } from './validation';

/** The Gateway API group and the versions of its kinds that ModelRoute writes (all in the standard channel). */
export const GATEWAY_API_GROUP = 'gateway.networking.k8s.io';
const ROUTE_API_VERSION = `${GATEWAY_API_GROUP}/v1`;
const REFERENCE_GRANT_API_VERSION = `${GATEWAY_API_GROUP}/v1beta1`;

/** The Gateway API's bounds: the CRDs refuse more backends or hostnames, and weights above this. */
const MAX_BACKENDS = 16;
const MAX_HOSTNAMES = 16;
const MAX_WEIGHT = 1_000_000;

/** The Gateway (and optionally one of its listeners) the routes attach to. */
export interface GatewayReference {
  /** The Gateway's name. */
  readonly name: string;
  /** The Gateway's namespace. @default - the route's namespace */
  readonly namespace?: string;
  /**
   * One listener of the Gateway (`sectionName`), e.g. the HTTPS listener, when the Gateway has several.
   * @default - every listener of the Gateway that admits the route
   */
  readonly sectionName?: string;
}

/** A version of the model behind the route, and its share of the requests. */
export interface RouteBackend {
  readonly service: ModelService;
  /**
   * Relative share of requests: a backend gets `weight / sum of weights` of them. 0 keeps the service referenced
   * without sending it traffic (e.g. before a canary starts). An integer from 0 to 1000000.
   */
  readonly weight: number;
}

/** A shadow: a copy of a share of the requests goes to `service`, whose answers the gateway discards. */
export interface RouteMirror {
  /** The service that receives the copies. It must not also be a weighted backend. */
  readonly service: ModelService;
  /**
   * Share of requests copied, in percent (the Gateway API's `RequestMirror.percent`). An integer from 0 to 100.
   * @default 100
   */
  readonly percent?: number;
}

export interface ModelRouteProps {
  /** The Gateway the routes attach to (their `parentRefs`). */
  readonly gateway: GatewayReference;
  /** The versions requests are split between, by weight; at least one, at most 16, each service once. */
  readonly backends: RouteBackend[];
  /**
   * Host names the routes answer for (`*.example.com` wildcards allowed).
   * @default - every host name the Gateway's listener accepts
   */
  readonly hostnames?: string[];
  /**
   * REST requests under this path prefix are routed, with the prefix replaced by `/` on the way to the runtime,
   * which serves its endpoints at the root (`/ocr/v2/models/...` reaches it as `/v2/models/...`). gRPC has no
   * paths: the GRPCRoute is told apart by `hostnames` only, so a prefix without host names needs `grpc: false`.
   * @default '/' - every path
   */
  readonly pathPrefix?: string;
  /** Copies a share of the requests to a shadow service. @default - no mirroring */
  readonly mirror?: RouteMirror;
  /**
   * Adds a GRPCRoute to each service's gRPC port, with the same weights, mirror and host names as the HTTPRoute.
   * @default true
   */
  readonly grpc?: boolean;
  /**
   * The name of the HTTPRoute and GRPCRoute: a stable name that progressive-delivery tools and `kubectl` refer to.
   * @default - the construct's id
   */
  readonly name?: string;
}

/** A Service the routes send requests (or copies) to, as a Gateway API backendRef sees it. */
interface Backend {
  readonly service: ModelService;
  readonly name: string;
  readonly namespace: string | undefined;
  readonly httpPort: number;
}

export class ModelRoute extends Construct {
  /** The HTTPRoute (REST). */
  readonly httpRoute: ApiObject;
  /** The GRPCRoute, unless `grpc: false`. */
  readonly grpcRoute?: ApiObject;
  /** One per namespace, other than the route's, that a backend or the mirror lives in. */
  readonly referenceGrants: ApiObject[];
  /** The routes' name. */
  readonly routeName: string;

  constructor(scope: Construct, id: string, props: ModelRouteProps) {
    super(scope, id);
    this.routeName = checkRouteName(props.name, id);
    const namespace = Chart.of(this).namespace;
    const gateway = checkGateway(props.gateway);
    const hostnames = checkHostnames(props.hostnames);
    const pathPrefix = checkPathPrefix(props.pathPrefix ?? '/');
    const grpc = props.grpc ?? true;
    if (grpc && pathPrefix !== '/' && hostnames === undefined) {
      throw new Error(`'pathPrefix' ('${pathPrefix}') tells REST requests apart, but gRPC requests have no path, so the GRPCRoute would take every gRPC request of the Gateway's listener; give 'hostnames' for this model, or set 'grpc: false'`);
    }
    const weighted = checkBackends(props.backends).map(({ service, weight }) => ({ backend: backendOf(service, namespace, 'backends'), weight }));
    const mirror = props.mirror && { backend: backendOf(props.mirror.service, namespace, 'mirror.service'), percent: checkMirrorPercent(props.mirror.percent ?? 100) };
    if (mirror && weighted.some(({ backend }) => backend.service === mirror.backend.service)) {
      throw new Error(`'mirror.service' ('${mirror.backend.name}') is also one of the 'backends': its metrics would mix the requests it answers with the copies it shadows; mirror a service that takes no weighted share, or remove it from 'backends'`);
    }

    const labels = { [LABEL_KEYS.managedBy]: 'modelship' };
    const parentRefs = [{
      group: GATEWAY_API_GROUP, kind: 'Gateway', name: gateway.name,
      ...(gateway.namespace !== undefined ? { namespace: gateway.namespace } : {}),
      ...(gateway.sectionName !== undefined ? { sectionName: gateway.sectionName } : {}),
    }];
    const common = { parentRefs, ...(hostnames ? { hostnames } : {}) };
    const mirrorFilter = (port: (b: Backend) => number) => mirror ? [{
      type: 'RequestMirror',
      requestMirror: { backendRef: serviceRef(mirror.backend, namespace, port(mirror.backend)), percent: mirror.percent },
    }] : [];

    this.httpRoute = new ApiObject(this, 'HTTPRoute', {
      apiVersion: ROUTE_API_VERSION, kind: 'HTTPRoute', metadata: { name: this.routeName, labels },
      spec: {
        ...common,
        rules: [{
          matches: [{ path: { type: 'PathPrefix', value: pathPrefix } }],
          ...nonEmpty('filters', [...stripPrefix(pathPrefix), ...mirrorFilter((b) => b.httpPort)]),
          backendRefs: weighted.map(({ backend, weight }) => ({ ...serviceRef(backend, namespace, backend.httpPort), weight })),
        }],
      },
    });
    if (grpc) {
      this.grpcRoute = new ApiObject(this, 'GRPCRoute', {
        apiVersion: ROUTE_API_VERSION, kind: 'GRPCRoute', metadata: { name: this.routeName, labels },
        spec: {
          ...common,
          rules: [{
            ...nonEmpty('filters', mirrorFilter(() => GRPC_PORT)),
            backendRefs: weighted.map(({ backend, weight }) => ({ ...serviceRef(backend, namespace, GRPC_PORT), weight })),
          }],
        },
      });
    }
    const referenced = [...weighted.map(({ backend }) => backend), ...(mirror ? [mirror.backend] : [])];
    this.referenceGrants = namespace === undefined ? [] : this.createReferenceGrants(referenced, namespace, grpc, labels);
  }

  /**
   * A route may only reach a Service in another namespace that allows it: that namespace's ReferenceGrant names
   * the routes' namespace and kinds, and each Service, so the grant opens nothing else there. (Without namespaces
   * every service is the route's neighbour: `backendOf` refuses a mix.)
   */
  private createReferenceGrants(backends: readonly Backend[], namespace: string, grpc: boolean, labels: Record<string, string>): ApiObject[] {
    const foreign = backends.filter((b) => b.namespace !== namespace);
    const namespaces = [...new Set(foreign.map((b) => b.namespace!))];
    return namespaces.map((target) => new ApiObject(this, `ReferenceGrant-${target}`, {
      apiVersion: REFERENCE_GRANT_API_VERSION, kind: 'ReferenceGrant',
      metadata: { name: `${this.routeName}-from-${namespace}`, namespace: target, labels },
      spec: {
        from: (grpc ? ['HTTPRoute', 'GRPCRoute'] : ['HTTPRoute']).map((kind) => ({ group: GATEWAY_API_GROUP, kind, namespace })),
        to: [...new Set(foreign.filter((b) => b.namespace === target).map((b) => b.name))].map((name) => ({ group: '', kind: 'Service', name })),
      },
    }));
  }
}

/** A backendRef to a Service's port, naming its namespace only when it is not the route's. */
function serviceRef(backend: Backend, routeNamespace: string | undefined, port: number) {
  return {
    group: '', kind: 'Service', name: backend.name,
    ...(backend.namespace !== routeNamespace ? { namespace: backend.namespace } : {}),
    port,
  };
}

/** `{ [key]: items }`, or nothing for no items: an empty list would only be noise in the route. */
function nonEmpty<T>(key: string, items: T[]): Record<string, T[]> {
  return items.length > 0 ? { [key]: items } : {};
}

/** The runtime serves its REST endpoints at the root: a prefix the gateway matched on is replaced by `/`. */
function stripPrefix(pathPrefix: string) {
  return pathPrefix === '/' ? [] : [{ type: 'URLRewrite', urlRewrite: { path: { type: 'ReplacePrefixMatch', replacePrefixMatch: '/' } } }];
}

function backendOf(service: ModelService, routeNamespace: string | undefined, prop: string): Backend {
  const namespace = ApiObject.of(service.service).metadata.namespace;
  if ((namespace === undefined) !== (routeNamespace === undefined)) {
    // Without both namespaces the route cannot tell whether the Service is its neighbour or needs a ReferenceGrant.
    throw new Error(`'${prop}' ModelService '${service.node.path}' is in ${namespace === undefined ? 'a chart without a namespace' : `namespace '${namespace}'`} and the route in ${routeNamespace === undefined ? 'a chart without a namespace' : `namespace '${routeNamespace}'`}; give both charts a namespace: new Chart(app, '<id>', { namespace: '<namespace>' })`);
  }
  if (service.tlsEnabled) {
    throw new Error(`'${prop}' ModelService '${service.node.path}' serves HTTPS ('tlsSecret'), but a route's gateway speaks plain HTTP and gRPC to its backends; route to a service without 'tlsSecret' (the gateway terminates TLS for clients)`);
  }
  const http = service.service.ports.find((p) => p.name === PORT_NAME.http)!;
  return { service, name: service.serviceName, namespace, httpPort: http.port };
}

function checkRouteName(name: string | undefined, id: string): string {
  if (name !== undefined) return checkDnsLabel('name', name);
  if (id.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(id)) {
    throw new Error(`the routes are named after the construct's id ('${id}'), which is not a DNS label (at most 63 lower-case letters, digits and '-'); give 'name', e.g. 'ocr'`);
  }
  return id;
}

export function checkGateway(gateway: GatewayReference): GatewayReference {
  checkDnsName('gateway.name', gateway.name);
  if (gateway.namespace !== undefined) checkDnsLabel('gateway.namespace', gateway.namespace);
  if (gateway.sectionName !== undefined) checkDnsName('gateway.sectionName', gateway.sectionName);
  return gateway;
}

/** A Kubernetes object name: dot-separated DNS labels (Gateway and listener names may contain dots). */
function checkDnsName(prop: string, value: string): void {
  if (value.length > 253 || !value.split('.').every((label) => label.length <= 63 && /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(label))) {
    throw new Error(`'${prop}' ('${value}') must be a Kubernetes name: lower-case letters, digits, '-' and '.', starting and ending with a letter or digit`);
  }
}

const HOSTNAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function checkHostnames(hostnames: string[] | undefined): string[] | undefined {
  if (hostnames === undefined) return undefined;
  if (hostnames.length === 0) {
    throw new Error("'hostnames' is empty; leave it out to answer for every host name of the Gateway's listener, or name at least one");
  }
  if (hostnames.length > MAX_HOSTNAMES) {
    throw new Error(`'hostnames' has ${hostnames.length} entries; the Gateway API takes at most ${MAX_HOSTNAMES}`);
  }
  for (const hostname of hostnames) {
    if (hostname.length > 253 || !HOSTNAME.test(hostname)) {
      throw new Error(`'hostnames' ('${hostname}') must be a lower-case DNS name, optionally with a leading '*.' wildcard, e.g. 'ocr.models.example.com' (no IP addresses, ports or schemes)`);
    }
  }
  return hostnames;
}

/** What the Gateway API refuses in a PathPrefix value (its CEL rules), so that synth fails rather than `apply`. */
function checkPathPrefix(pathPrefix: string): string {
  const refused = ['//', '/./', '/../', '%2f', '%2F', '#'].find((s) => pathPrefix.includes(s));
  if (!pathPrefix.startsWith('/') || refused !== undefined || pathPrefix.endsWith('/.') || pathPrefix.endsWith('/..') || pathPrefix.length > 1024) {
    throw new Error(`'pathPrefix' ('${pathPrefix}') must be an absolute path of at most 1024 characters without '//', '/./', '/../', '%2f' or '#', e.g. '/ocr'`);
  }
  return pathPrefix;
}

function checkBackends(backends: RouteBackend[]): RouteBackend[] {
  if (backends.length === 0) {
    throw new Error("'backends' is empty; give at least one { service, weight }, e.g. [{ service: v1, weight: 90 }, { service: v2, weight: 10 }]");
  }
  if (backends.length > MAX_BACKENDS) {
    throw new Error(`'backends' has ${backends.length} entries; the Gateway API takes at most ${MAX_BACKENDS} per rule`);
  }
  backends.forEach(({ service, weight }, i) => {
    if (!Number.isInteger(weight) || weight < 0 || weight > MAX_WEIGHT) {
      throw new Error(`'backends[${i}].weight' (${weight}) for ModelService '${service.node.path}' must be an integer from 0 to ${MAX_WEIGHT}; weights are relative shares, e.g. 90 and 10`);
    }
    const first = backends.findIndex((b) => b.service === service);
    if (first !== i) {
      throw new Error(`'backends[${i}]' and 'backends[${first}]' are both ModelService '${service.node.path}'; give each service once, with the sum of the weights`);
    }
  });
  if (backends.every(({ weight }) => weight === 0)) {
    throw new Error(`'backends' weights are all 0 (${backends.map(({ weight }) => weight).join(', ')}), so the route would refuse every request; give at least one backend a positive weight`);
  }
  return backends;
}

function checkMirrorPercent(percent: number): number {
  if (!Number.isInteger(percent) || percent < 0 || percent > 100) {
    throw new Error(`'mirror.percent' (${percent}) must be an integer from 0 to 100, the share of requests copied to the mirror`);
  }
  return percent;
}
