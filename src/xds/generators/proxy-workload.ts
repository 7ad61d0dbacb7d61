import { status } from '@grpc/grpc-js';
import type { MeshSnapshot, WorkloadEntry } from '../../config/model.js';
import { GeneratorError, type AdmitProxy, type ProxyInfo } from '../core/types.js';
import { serviceAccountOf, spiffeId, workloadKey } from './names.js';
import { trustDomainsForValidation } from './tls-contexts.js';

/**
 * Ties a connected proxy to its WorkloadEntry. `meshd bootstrap` writes
 * node.id `sidecar~<address>~<workload>.<namespace>~<namespace>.svc.cluster.local` and node
 * metadata NAMESPACE and WORKLOAD_NAME (the WorkloadEntry's name); metadata wins, the node id
 * is the fallback for hand-written bootstraps.
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

/**
 * Admission: a proxy may only receive the config of a WorkloadEntry that runs as the identity
 * the proxy proved (namespace and service account of its token or client SVID), in a trust
 * domain the mesh accepts. Anything else is PERMISSION_DENIED with the reason spelled out.
 */
export function admitProxy(snapshot: () => MeshSnapshot): AdmitProxy {
  return (proxy: ProxyInfo): void => {
    const ref = workloadRefForProxy(proxy);
    if (ref === undefined) {
      throw new GeneratorError(
        status.PERMISSION_DENIED,
        `proxy "${proxy.id}" names no workload: node metadata NAMESPACE and WORKLOAD_NAME are missing and the node id is not ` +
          'sidecar~<address>~<workload>.<namespace>~<namespace>.svc.cluster.local (use meshd bootstrap)',
      );
    }
    const current = snapshot();
    const workload = current.workloadEntries.find((w) => w.meta.namespace === ref.namespace && w.meta.name === ref.name);
    if (workload === undefined) {
      throw new GeneratorError(
        status.PERMISSION_DENIED,
        `proxy "${proxy.id}" names WorkloadEntry ${ref.namespace}/${ref.name}, which does not exist in the mesh config`,
      );
    }
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
        `proxy "${proxy.id}" proved ${id.spiffeId} (namespace ${id.namespace}, service account ${id.serviceAccount}), but ` +
          `WorkloadEntry ${workload.meta.namespace}/${workload.meta.name} runs as ` +
          `${spiffeId(current.mesh.trustDomain, workload.meta.namespace, expectedSa)}`,
      );
    }
  };
}
