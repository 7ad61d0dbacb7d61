import { status } from '@grpc/grpc-js';
import type { MeshSnapshot, WorkloadEntry } from '../../config/model.js';
import { GeneratorError, type AdmitProxy, type ProxyInfo } from '../core/types.js';
import { nodeClaims } from '../../mesh/node-identity.js';
import { findWorkloadEntry } from '../../mesh/registry.js';
import { serviceAccountOf, trustDomainsForValidation, workloadSpiffeId } from '../../mesh/spiffe-identity.js';
import { sdsSourceOf } from '../generators/secret-source.js';

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

/**
 * Admission: what a proxy may receive follows from the identity it proved (namespace and service
 * account of its token or client SVID) and the workload it names (src/mesh/node-identity.ts reads
 * the node id and metadata). Refusals are PERMISSION_DENIED with the reason spelled out.
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
 * A MESHD_SDS_SOURCE that is neither `agent` nor `ads` is INVALID_ARGUMENT: guessing would leave
 * Envoy waiting for ever on secrets from a source it does not have.
 */
export function admitProxy(snapshot: () => MeshSnapshot): AdmitProxy {
  return (proxy: ProxyInfo): void => {
    const sds = sdsSourceOf(proxy.metadata);
    if ('error' in sds) throw new GeneratorError(status.INVALID_ARGUMENT, `proxy "${proxy.id}": ${sds.error}`);
    const current = snapshot();
    const claims = nodeClaims(proxy);
    const byId = claims.nodeId;
    const named = claims.workload;
    const idWorkload = byId === undefined ? undefined : findWorkloadEntry(current, byId.namespace, byId.name);
    const sameAsNamed = named !== undefined && byId !== undefined && named.namespace === byId.namespace && named.name === byId.name;
    if (idWorkload !== undefined && !sameAsNamed) checkRunsAs(proxy, idWorkload, current, 'its node id names');

    if (named === undefined) {
      if (claims.workloadName !== undefined) {
        throw new GeneratorError(
          status.PERMISSION_DENIED,
          `proxy "${proxy.id}" names workload "${claims.workloadName}" in node metadata WORKLOAD_NAME but no namespace: ` +
            'set node metadata NAMESPACE, or use a node id sidecar~<address>~<workload>.<namespace>~<namespace>.svc.cluster.local (meshd bootstrap writes both)',
        );
      }
      return; // identity-only (3)
    }
    const workload = findWorkloadEntry(current, named.namespace, named.name);
    if (workload === undefined) {
      throw new GeneratorError(
        status.PERMISSION_DENIED,
        `proxy "${proxy.id}" names WorkloadEntry ${named.namespace}/${named.name} (by ${named.namedBy}), which does not exist in the mesh config`,
      );
    }
    checkRunsAs(proxy, workload, current, 'it names');
  };
}
