import { workloadsForService } from '../mesh/registry.js';
import { workloadSpiffeId } from '../mesh/spiffe-identity.js';
import type { MeshSnapshot, WorkloadSpec } from '../config/model.js';
import type { ServiceInfo, WorkloadInfo, WorkloadResolver } from './workload-resolver.js';

/**
 * A WorkloadResolver over a mesh snapshot, indexed once (pure): WorkloadEntries and
 * ServiceEntry inline endpoints by address, workloads by principal, ServiceEntry hosts by
 * name. Call it again for each new snapshot and hand the result to
 * AccessLogIngester.setResolver.
 *
 * Names follow Istio: a WorkloadEntry's workload is its name (istio-agent's
 * WORKLOAD_NAME on VMs); a ServiceEntry host's destination_service_name is the host and
 * its namespace the ServiceEntry's.
 */
export function meshWorkloadResolver(snapshot: MeshSnapshot, cluster?: string): WorkloadResolver {
  const trustDomain = snapshot.mesh.trustDomain;
  const byAddress = new Map<string, WorkloadInfo>();
  const byPrincipal = new Map<string, WorkloadInfo>();
  const hosts = new Map<string, ServiceInfo>();

  const info = (name: string, namespace: string, spec: WorkloadSpec, service: string | undefined): WorkloadInfo => {
    const w: WorkloadInfo = { workload: name, namespace, labels: spec.labels };
    if (spec.serviceAccount !== '') w.principal = workloadSpiffeId(trustDomain, namespace, spec.serviceAccount);
    if (service !== undefined) w.service = service;
    if (cluster !== undefined) w.cluster = cluster;
    return w;
  };
  const add = (w: WorkloadInfo, address: string): void => {
    // First writer wins, in snapshot order: the same rule for every call, so labels are stable.
    if (address !== '' && !byAddress.has(address)) byAddress.set(address, w);
    if (w.principal !== undefined && !byPrincipal.has(w.principal)) byPrincipal.set(w.principal, w);
  };

  for (const se of snapshot.serviceEntries) {
    for (const host of se.hosts) if (!hosts.has(host)) hosts.set(host, { name: host, namespace: se.meta.namespace });
    for (const endpoint of workloadsForService(snapshot, se)) {
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
    serviceByHost: (host) => hosts.get(host),
  };
}
