/**
 * Resource names, in Istio's formats so dashboards and habits carry over
 * (pilot/pkg/model/service.go BuildSubsetKey / BuildDNSSrvSubsetKey).
 */

/** `inbound|<workload port>||`: the cluster to the app on loopback. */
export function inboundClusterName(workloadPort: number): string {
  return `inbound|${workloadPort}||`;
}

/** `outbound|<port>||<host>`: a service port as clients see it. */
export function outboundClusterName(port: number, host: string): string {
  return `outbound|${port}||${host}`;
}

/** SNI a client sends over auto mTLS: `outbound_.<port>_._.<host>` (the DNS-SRV form of the cluster name). */
export function outboundSni(port: number, host: string): string {
  return `outbound_.${port}_._.${host}`;
}

/** Listener names follow Istio's bound-listener form `<ip>_<port>`. */
export function listenerName(address: string, port: number): string {
  return `${address}_${port}`;
}

/** Inbound filter chain names, unique within a listener (Envoy requires unique names). */
export function inboundChainName(workloadPort: number, kind: 'mtls' | 'plaintext' | 'tls-passthrough'): string {
  return `inbound|${workloadPort}|${kind}`;
}
