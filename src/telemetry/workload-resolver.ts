/**
 * How telemetry learns who is behind an address or a principal. meshd serve wires this to
 * the mesh index (meshWorkloadResolver builds one from a MeshSnapshot); tests pass
 * their own. Unknown is a normal answer: the label becomes "unknown", never an error.
 */

export interface WorkloadInfo {
  /** Workload name (Istio: the Deployment; meshd: the WorkloadEntry or ServiceEntry endpoint). */
  workload: string;
  namespace: string;
  /** spiffe://<trust domain>/ns/<ns>/sa/<service account>. */
  principal?: string;
  /** The workload's labels: app, version, service.istio.io/canonical-name, ... */
  labels?: Readonly<Record<string, string>>;
  /** FQDN of a service that selects this workload. */
  service?: string;
  /** Istio's cluster id (CLUSTER_ID), for *_cluster labels. */
  cluster?: string;
}

export interface ServiceInfo {
  name: string;
  namespace: string;
}

export interface WorkloadResolver {
  /** The workload listening on / connecting from this IP. */
  byAddress(ip: string): WorkloadInfo | undefined;
  /** A workload for a peer principal when its address is unknown (NAT, gateways). */
  byPrincipal?(principal: string): WorkloadInfo | undefined;
  /**
   * A service host's short name and namespace, for hosts not of the <name>.<ns>.svc.<domain> form,
   * as a proxy in `namespace` (the one that logged) sees the mesh.
   */
  serviceByHost?(host: string, namespace?: string): ServiceInfo | undefined;
}

/** Knows nobody: every peer is "unknown" except what the SAN and the node say. */
export const UNKNOWN_RESOLVER: WorkloadResolver = { byAddress: () => undefined };
