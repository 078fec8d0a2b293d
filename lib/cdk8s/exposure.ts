/**
 * How a ModelService is reached: inside the cluster, through a cloud load balancer, or through an Ingress. Each
 * choice says what Service it needs and what else it adds, and checks its own options.
 */
import * as kplus from 'cdk8s-plus-27';
import { Construct } from 'constructs';
import { GRPC_PORT, HTTP_PORT } from '@modelship/contract';
import { checkDnsName } from './validation';

export interface ClusterIpOptions {
  /** Annotations on the Service, e.g. for a service mesh or an external DNS controller. @default - none */
  readonly annotations?: Record<string, string>;
}

export interface LoadBalancerOptions {
  /** The balancer's port for REST. @default 80 */
  readonly port?: number;
  /**
   * Annotations on the Service, e.g. an internal load balancer: `service.beta.kubernetes.io/aws-load-balancer-scheme:
   * internal` on AWS, `networking.gke.io/load-balancer-type: Internal` on GKE,
   * `service.beta.kubernetes.io/azure-load-balancer-internal: 'true'` on AKS.
   * @default - none
   */
  readonly annotations?: Record<string, string>;
  /**
   * Client address ranges the balancer accepts (`loadBalancerSourceRanges`); the NetworkPolicy admits them too.
   * @default - any address
   */
  readonly sourceRanges?: string[];
}

export interface IngressOptions {
  /** The host name the Ingress routes, e.g. `fraud.models.example.com`. */
  readonly host: string;
  /** The path prefix routed to the runtime's REST port. @default '/' */
  readonly path?: string;
  /** `ingressClassName`. @default - the cluster's default IngressClass */
  readonly className?: string;
  /** A kubernetes.io/tls Secret for `host`, terminated by the ingress controller. @default - plain HTTP */
  readonly tlsSecret?: kplus.ISecret;
  /** Annotations for the ingress controller. @default - none */
  readonly annotations?: Record<string, string>;
}

/** How the Service is reached. */
export class Exposure {
  /** Inside the cluster only: a ClusterIP Service with REST on 8080 and gRPC on 8081. */
  static clusterIp(options: ClusterIpOptions = {}): Exposure {
    return new Exposure(kplus.ServiceType.CLUSTER_IP, HTTP_PORT, options.annotations);
  }

  /** A cloud load balancer: REST on `port`, gRPC on 8081. */
  static loadBalancer(options: LoadBalancerOptions = {}): Exposure {
    const port = options.port ?? 80;
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(`'port' (${port}) must be an integer from 1 to 65535`);
    }
    if (port === GRPC_PORT) {
      throw new Error(`'port' (${port}) is the gRPC port the Service already exposes; choose another port for REST, e.g. 80`);
    }
    for (const range of options.sourceRanges ?? []) checkCidr('sourceRanges', range);
    return new Exposure(kplus.ServiceType.LOAD_BALANCER, port, options.annotations, options.sourceRanges);
  }

  /**
   * An Ingress routing `host` (and `path`) to the REST port of a ClusterIP Service. gRPC stays reachable in the
   * cluster on 8081; most ingress controllers need their own annotations to carry gRPC.
   */
  static ingress(options: IngressOptions): Exposure {
    checkDnsName('host', options.host);
    const path = options.path ?? '/';
    if (!path.startsWith('/')) throw new Error(`'path' ('${path}') must start with '/', e.g. '/fraud'`);
    return new Exposure(kplus.ServiceType.CLUSTER_IP, HTTP_PORT, undefined, undefined, { ...options, path });
  }

  private constructor(
    readonly type: kplus.ServiceType,
    /** The Service's REST port. */
    readonly httpPort: number,
    /** Annotations on the Service. */
    readonly annotations?: Record<string, string>,
    /** `loadBalancerSourceRanges`. */
    readonly sourceRanges?: string[],
    /** The Ingress to add in front of the Service. */
    readonly ingress?: IngressOptions & { readonly path: string },
  ) {}

  /** True when traffic reaches the pods from outside the cluster's pod network (a cloud load balancer). */
  get fromOutsideCluster(): boolean {
    return this.type === kplus.ServiceType.LOAD_BALANCER;
  }
}

/** The Ingress for `exposure.ingress`, in front of `service`. */
export function addIngress(scope: Construct, service: kplus.Service, options: IngressOptions & { readonly path: string }): kplus.Ingress {
  return new kplus.Ingress(scope, 'Ingress', {
    metadata: { annotations: options.annotations },
    className: options.className,
    rules: [{ host: options.host, path: options.path, pathType: kplus.HttpIngressPathType.PREFIX, backend: kplus.IngressBackend.fromService(service, { port: service.ports[0].port }) }],
    tls: options.tlsSecret ? [{ hosts: [options.host], secret: options.tlsSecret }] : undefined,
  });
}

function checkCidr(prop: string, range: string): void {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(range);
  const ipv4 = match && match.slice(1, 5).every((octet) => Number(octet) <= 255) && Number(match[5]) <= 32;
  const ipv6 = /^[0-9a-fA-F:]+\/\d{1,3}$/.test(range) && range.includes(':') && Number(range.split('/')[1]) <= 128;
  if (!ipv4 && !ipv6) throw new Error(`'${prop}' ('${range}') must be a CIDR range, e.g. '10.0.0.0/8' or '2001:db8::/32'`);
}
