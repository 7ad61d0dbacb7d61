/**
 * The service registry view of a snapshot, as Istio's ServiceEntry controller builds it
 * (pilot/pkg/serviceregistry/serviceentry): a ServiceEntry's endpoints are its inline
 * `endpoints`, or the WorkloadEntries in its namespace whose labels match its workloadSelector.
 * Pure.
 */
import type { MeshSnapshot, ServiceEntry, ServicePort, WorkloadEntry, WorkloadSpec } from '../config/model.js';
import { labelsMatch, workloadLabels } from './labels.js';

export interface ServiceEndpoint {
  /** Namespace of the ServiceEntry (and of the WorkloadEntry, which must share it). */
  namespace: string;
  spec: WorkloadSpec;
  /** Set when the endpoint is a WorkloadEntry selected by the workloadSelector. */
  workloadEntry?: WorkloadEntry;
  /** The WorkloadEntry name, or `<serviceentry>/endpoints[i]` for an inline endpoint. */
  name: string;
}

function selects(se: ServiceEntry, we: WorkloadEntry): boolean {
  // An empty selector selects every WorkloadEntry in the namespace (Istio warns about it).
  return se.workloadSelector !== undefined && we.meta.namespace === se.meta.namespace && labelsMatch(se.workloadSelector, workloadLabels(we));
}

/** The WorkloadEntries (and inline endpoints) behind a ServiceEntry, in a stable order. */
export function workloadsForService(snapshot: Pick<MeshSnapshot, 'workloadEntries'>, serviceEntry: ServiceEntry): ServiceEndpoint[] {
  if (serviceEntry.workloadSelector !== undefined) {
    return snapshot.workloadEntries
      .filter((we) => selects(serviceEntry, we))
      .map((we) => ({ namespace: we.meta.namespace, spec: we.spec, workloadEntry: we, name: we.meta.name }));
  }
  return serviceEntry.endpoints.map((spec, i) => ({
    namespace: serviceEntry.meta.namespace,
    spec,
    name: `${serviceEntry.meta.name}/endpoints[${i}]`,
  }));
}

/** The ServiceEntries whose workloadSelector selects this WorkloadEntry. */
export function servicesForWorkload(snapshot: Pick<MeshSnapshot, 'serviceEntries'>, workloadEntry: WorkloadEntry): ServiceEntry[] {
  return snapshot.serviceEntries.filter((se) => selects(se, workloadEntry));
}

/** `<namespace>/<name>`: how meshd names a workload in messages, `meshd check` and push sets. */
export function workloadKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Per snapshot (its WorkloadEntry list never changes), the entries by `<namespace>/<name>`. */
const entriesByName = new WeakMap<readonly WorkloadEntry[], Map<string, WorkloadEntry>>();

/**
 * The WorkloadEntry of that namespace and name (the first, should a config name one twice). Every
 * proxy's admission and every WorkloadEntry-bound token asks, so it is a map lookup, not a scan.
 */
export function findWorkloadEntry(snapshot: Pick<MeshSnapshot, 'workloadEntries'>, namespace: string, name: string): WorkloadEntry | undefined {
  let byName = entriesByName.get(snapshot.workloadEntries);
  if (byName === undefined) {
    byName = new Map();
    for (const we of snapshot.workloadEntries) {
      const key = workloadKey(we.meta.namespace, we.meta.name);
      if (!byName.has(key)) byName.set(key, we);
    }
    entriesByName.set(snapshot.workloadEntries, byName);
  }
  return byName.get(workloadKey(namespace, name));
}

/**
 * The port an endpoint receives a service port's traffic on: the endpoint's own port of the same
 * name, else the service port's targetPort (which defaults to its number), as Istio does.
 */
export function endpointPort(servicePort: ServicePort, endpoint: WorkloadSpec): number {
  return endpoint.ports[servicePort.name] ?? servicePort.targetPort;
}

/**
 * Istio's getTLSModeFromWorkloadEntry: the `security.istio.io/tlsMode` label if present, else
 * "istio" when a service account is set, else "disabled". Auto mTLS sends mTLS only to "istio".
 */
export function workloadTlsMode(endpoint: WorkloadSpec): 'istio' | 'disabled' {
  const label = endpoint.labels['security.istio.io/tlsMode'];
  if (label !== undefined) return label === 'istio' ? 'istio' : 'disabled';
  return endpoint.serviceAccount !== '' ? 'istio' : 'disabled';
}
