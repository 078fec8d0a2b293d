/** What the constructs' NetworkPolicies and URL props share. */
import * as kplus from 'cdk8s-plus-27';

/** Egress on a TCP port, to `cidr` or, since a NetworkPolicy cannot name hosts, to any destination. */
export function tcpEgress(port: number, cidr?: string): kplus.k8s.NetworkPolicyEgressRule {
  return { ...(cidr ? { to: [{ ipBlock: { cidr } }] } : {}), ports: [{ port: kplus.k8s.IntOrString.fromNumber(port), protocol: 'TCP' }] };
}

/** The rules without repeats: the model store, a credentials endpoint and a payload sink may all be on 443. */
export function distinctRules<T>(rules: readonly T[]): T[] {
  const seen = new Set<string>();
  return rules.filter((rule) => {
    const key = JSON.stringify(rule);
    return !seen.has(key) && Boolean(seen.add(key));
  });
}

/** `value` as an http(s) URL with a host, or undefined; each prop adds its own rules and message. */
export function httpUrl(value: string): URL | undefined {
  const url = URL.canParse(value) ? new URL(value) : undefined;
  return url && (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '' ? url : undefined;
}

/** The port of an http(s) URL: its own, else the scheme's. */
export function urlPort(url: URL): number {
  if (url.port !== '') return Number(url.port);
  return url.protocol === 'https:' ? 443 : 80;
}

/**
 * An http(s) URL prop naming a destination the pods connect to (a payload sink, a trace collector), checked at synth
 * so that a bad one fails here rather than in the pod. Credentials are refused, for `reason`; the message masks the
 * password, since it ends up in build logs.
 */
export function destinationUrl(prop: string, value: string, reason: string): URL {
  const url = httpUrl(value);
  if (!url) throw new Error(`'${prop}' ('${value}') must be an http:// or https:// URL`);
  if (url.username !== '' || url.password !== '') {
    const masked = new URL(url.href);
    if (masked.password !== '') masked.password = '***';
    throw new Error(`'${prop}' ('${masked.href}') must not hold credentials (user:password@): ${reason}`);
  }
  return url;
}

/**
 * Egress to the port of a destination URL. Its address is unknown at synth time (a Service name, an external host)
 * and a NetworkPolicy cannot name hosts, so any destination on that port, as for the model download.
 */
export function urlEgress(url: URL): kplus.k8s.NetworkPolicyEgressRule {
  return tcpEgress(urlPort(url));
}
