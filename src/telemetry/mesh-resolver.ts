import type { MeshSnapshot, WorkloadSpec } from '../config/model.js';
import { indexFor } from '../mesh/mesh-index.js';
import { workloadSpiffeId } from '../mesh/spiffe-identity.js';
import type { WorkloadInfo, WorkloadResolver } from './workload-resolver.js';

/**
 * A WorkloadResolver over a mesh snapshot, read through the mesh index the xDS generators use
 * (src/mesh/mesh-index.ts), so telemetry attributes a host and a workload to the ServiceEntry
 * whose config the proxies were served: WorkloadEntries and ServiceEntry inline endpoints by
 * address, workloads by principal, ServiceEntry hosts by name. Pure. Call it again for each new
 * snapshot and hand the result to AccessLogIngester.setResolver.
 *
 * Names follow Istio: a WorkloadEntry's workload is its name (istio-agent's
 * WORKLOAD_NAME on VMs); a ServiceEntry host's destination_service_name is the host and
 * its namespace the ServiceEntry's.
 */
export function meshWorkloadResolver(snapshot: MeshSnapshot, cluster?: string): WorkloadResolver {
  const index = indexFor(snapshot);
  const trustDomain = snapshot.mesh.trustDomain;
  const byAddress = new Map<string, WorkloadInfo>();
  const byPrincipal = new Map<string, WorkloadInfo>();

  const info = (name: string, namespace: string, spec: WorkloadSpec, service: string | undefined): WorkloadInfo => {
    const w: WorkloadInfo = { workload: name, namespace, labels: spec.labels };
    if (spec.serviceAccount !== '') w.principal = workloadSpiffeId(trustDomain, namespace, spec.serviceAccount);
    if (service !== undefined) w.service = service;
    if (cluster !== undefined) w.cluster = cluster;
    return w;
  };
  const add = (w: WorkloadInfo, address: string): void => {
    // First writer wins, oldest ServiceEntry first: a workload's service is the oldest selecting it,
    // the one that decides its inbound ports in xDS.
    if (address !== '' && !byAddress.has(address)) byAddress.set(address, w);
    if (w.principal !== undefined && !byPrincipal.has(w.principal)) byPrincipal.set(w.principal, w);
  };

  for (const se of index.entries) {
    for (const endpoint of index.workloadsOf(se)) {
      const name = endpoint.workloadEntry ? endpoint.workloadEntry.meta.name : se.meta.name;
      add(info(name, endpoint.namespace, endpoint.spec, se.hosts[0]), endpoint.spec.address);
    }
  }
  // WorkloadEntries no ServiceEntry selects are workloads too.
  for (const we of snapshot.workloadEntries) {
    if (!byAddress.has(we.spec.address)) add(info(we.meta.name, we.meta.namespace, we.spec, undefined), we.spec.address);
  }

  return {
    byAddress: (ip) => byAddress.get(ip),
    byPrincipal: (principal) => byPrincipal.get(principal),
    serviceByHost: (host, namespace) => {
      const owner = index.hostOwner(host, namespace);
      return owner === undefined ? undefined : { name: host, namespace: owner.meta.namespace };
    },
  };
}
