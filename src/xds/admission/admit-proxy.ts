import { status } from '@grpc/grpc-js';
import type { MeshSnapshot, WorkloadEntry } from '../../config/model.js';
import { GeneratorError, type AdmitProxy, type ProxyInfo } from '../core/types.js';
import { workloadKey } from '../generators/names.js';
import { serviceAccountOf, trustDomainsForValidation, workloadSpiffeId } from '../../mesh/spiffe-identity.js';

/**
 * Ties a connected proxy to its WorkloadEntry. `meshd bootstrap` writes
 * node.id `sidecar~<address>~<workload>.<namespace>~<namespace>.svc.cluster.local` and node
 * metadata NAMESPACE and WORKLOAD_NAME (the WorkloadEntry's name); metadata wins, the node id
 * is the fallback for hand-written bootstraps (Istio's VM proxies put the host name in the node
 * id and the workload in the metadata). Admission (below) still refuses a node id that names a
 * WorkloadEntry of another identity.
 */
export interface WorkloadRefOfProxy {
  namespace: string;
  name: string;
}

function metadataString(proxy: ProxyInfo, key: string): string | undefined {
  const v = proxy.metadata[key];
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Parses `<type>~<ip>~<workload>.<namespace>~<namespace>.svc.<suffix>`; undefined otherwise. */
export function parseNodeId(id: string): WorkloadRefOfProxy | undefined {
  const parts = id.split('~');
  if (parts.length !== 4) return undefined;
  const namespace = parts[3]!.split('.')[0]!;
  const suffix = `.${namespace}`;
  const pod = parts[2]!;
  if (namespace === '' || !pod.endsWith(suffix) || pod.length === suffix.length) return undefined;
  return { namespace, name: pod.slice(0, -suffix.length) };
}

/** The workload a proxy names (metadata first, then node id), whether or not it exists. */
export function workloadRefForProxy(proxy: ProxyInfo): WorkloadRefOfProxy | undefined {
  const name = metadataString(proxy, 'WORKLOAD_NAME');
  const namespace = metadataString(proxy, 'NAMESPACE');
  if (name !== undefined && namespace !== undefined) return { namespace, name };
  const parsed = parseNodeId(proxy.id);
  if (parsed === undefined) return undefined;
  return { namespace: namespace ?? parsed.namespace, name: name ?? parsed.name };
}

/** `<namespace>/<name>` of the workload a proxy names, or undefined. */
export function workloadKeyForProxy(proxy: ProxyInfo): string | undefined {
  const ref = workloadRefForProxy(proxy);
  return ref === undefined ? undefined : workloadKey(ref.namespace, ref.name);
}

export function workloadForProxy(snapshot: MeshSnapshot, proxy: ProxyInfo): WorkloadEntry | undefined {
  const ref = workloadRefForProxy(proxy);
  if (ref === undefined) return undefined;
  return snapshot.workloadEntries.find((w) => w.meta.namespace === ref.namespace && w.meta.name === ref.name);
}

/** Where the workload a proxy names came from, for refusals. */
function namedBy(proxy: ProxyInfo): string {
  const meta = metadataString(proxy, 'WORKLOAD_NAME') !== undefined && metadataString(proxy, 'NAMESPACE') !== undefined;
  if (meta) return 'node metadata NAMESPACE/WORKLOAD_NAME';
  return metadataString(proxy, 'WORKLOAD_NAME') !== undefined || metadataString(proxy, 'NAMESPACE') !== undefined ? 'node metadata and node id' : 'node id';
}

/** Refuses unless `workload` runs as the identity the proxy proved, in a trust domain the mesh accepts. */
function checkRunsAs(proxy: ProxyInfo, workload: WorkloadEntry, current: MeshSnapshot, how: string): void {
  const id = proxy.identity;
  const expectedSa = serviceAccountOf(workload.spec.serviceAccount);
  const accepted = trustDomainsForValidation(current.mesh);
  if (!accepted.includes(id.trustDomain)) {
    throw new GeneratorError(
      status.PERMISSION_DENIED,
      `proxy "${proxy.id}" proved ${id.spiffeId}, whose trust domain ${id.trustDomain} is not the mesh's (${accepted.join(', ')})`,
    );
  }
  if (id.namespace !== workload.meta.namespace || id.serviceAccount !== expectedSa) {
    throw new GeneratorError(
      status.PERMISSION_DENIED,
      `proxy "${proxy.id}" proved ${id.spiffeId} (namespace ${id.namespace}, service account ${id.serviceAccount}), but ${how} ` +
        `WorkloadEntry ${workload.meta.namespace}/${workload.meta.name}, which runs as ` +
        `${workloadSpiffeId(current.mesh.trustDomain, workload.meta.namespace, expectedSa)}`,
    );
  }
}

const find = (snapshot: MeshSnapshot, ref: WorkloadRefOfProxy): WorkloadEntry | undefined =>
  snapshot.workloadEntries.find((w) => w.meta.namespace === ref.namespace && w.meta.name === ref.name);

/**
 * Admission: what a proxy may receive follows from the identity it proved (namespace and service
 * account of its token or client SVID) and the workload it names. Refusals are PERMISSION_DENIED
 * with the reason spelled out.
 *
 * 1. A node id that names an existing WorkloadEntry must name one of the proven identity, whatever
 *    the node metadata says. A node id is how operators, logs, /debug and Istio tooling tell
 *    proxies apart; another identity must not be able to pass as that workload's proxy.
 * 2. A proxy that names a workload (metadata first, node id as fallback) gets its config only if
 *    that WorkloadEntry exists and runs as the proven identity, in a trust domain the mesh accepts.
 * 3. A proxy that names no workload is an identity-only proxy: it is admitted, gets the secrets of
 *    the identity it proved and no listeners, clusters, routes or endpoints. That is what SPIRE's
 *    SDS serves (secrets per proven identity, for Envoys configured by hand or by another control
 *    plane) and what Istio's CA does for a CSR (the identity comes from the credential, no Pod or
 *    WorkloadEntry needed), so SDS-only Envoys keep working; mesh config needs a WorkloadEntry.
 *    A credential bound to one WorkloadEntry would be checked here too: its proxy must name it.
 * A WORKLOAD_NAME without any namespace (metadata or node id) names half a workload: refused
 * rather than served as identity-only, since the proxy clearly expected mesh config.
 */
export function admitProxy(snapshot: () => MeshSnapshot): AdmitProxy {
  return (proxy: ProxyInfo): void => {
    const current = snapshot();
    const ref = workloadRefForProxy(proxy);
    const byId = parseNodeId(proxy.id);
    const idWorkload = byId === undefined ? undefined : find(current, byId);
    const sameAsNamed = ref !== undefined && byId !== undefined && ref.namespace === byId.namespace && ref.name === byId.name;
    if (idWorkload !== undefined && !sameAsNamed) checkRunsAs(proxy, idWorkload, current, 'its node id names');

    if (ref === undefined) {
      if (metadataString(proxy, 'WORKLOAD_NAME') !== undefined) {
        throw new GeneratorError(
          status.PERMISSION_DENIED,
          `proxy "${proxy.id}" names workload "${metadataString(proxy, 'WORKLOAD_NAME')}" in node metadata WORKLOAD_NAME but no namespace: ` +
            'set node metadata NAMESPACE, or use a node id sidecar~<address>~<workload>.<namespace>~<namespace>.svc.cluster.local (meshd bootstrap writes both)',
        );
      }
      return; // identity-only (3)
    }
    const workload = find(current, ref);
    if (workload === undefined) {
      throw new GeneratorError(
        status.PERMISSION_DENIED,
        `proxy "${proxy.id}" names WorkloadEntry ${ref.namespace}/${ref.name} (by ${namedBy(proxy)}), which does not exist in the mesh config`,
      );
    }
    checkRunsAs(proxy, workload, current, 'it names');
  };
}
