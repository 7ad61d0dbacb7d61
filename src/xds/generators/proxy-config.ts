import type { MeshSnapshot, WorkloadEntry } from '../../config/model.js';
import type { Cluster, ClusterLoadAssignment, Listener, RouteConfiguration } from './envoy-shapes.js';
import { buildInbound } from './inbound.js';
import { indexFor, type MeshIndex } from './mesh-index.js';
import { workloadBindings } from './outbound-bind.js';
import { outboundCluster } from './outbound-clusters.js';
import { outboundListener, outboundRoute } from './outbound-listeners.js';

/**
 * Everything one sidecar gets, as plain Envoy objects: the single source the xDS generators
 * encode and `meshd check` walks. Pure: the same snapshot and workload give the same objects
 * (memoised per snapshot, so also the same object identities).
 */
export interface ProxyConfig {
  listeners: readonly Listener[];
  clusters: readonly Cluster[];
  routes: readonly RouteConfiguration[];
  endpoints: readonly ClusterLoadAssignment[];
  /** Things the config could not honour (conflicts, unbindable addresses), worded for users. */
  warnings: readonly string[];
}

export function buildProxyConfig(snapshot: MeshSnapshot, workload: WorkloadEntry): ProxyConfig {
  return proxyConfigFromIndex(indexFor(snapshot), workload);
}

export function proxyConfigFromIndex(index: MeshIndex, workload: WorkloadEntry): ProxyConfig {
  return index.cached(`proxy:${workload.meta.namespace}/${workload.meta.name}`, () => {
    const namespace = workload.meta.namespace;
    const inbound = buildInbound(index, workload);
    const warnings: string[] = [...inbound.warnings];
    const listeners: Listener[] = [...inbound.listeners];
    const clusters: Cluster[] = [...inbound.clusters];
    const routes: RouteConfiguration[] = [];
    const endpoints: ClusterLoadAssignment[] = [];

    const visible = index.visibleTargets(namespace);
    warnings.push(...visible.warnings);
    for (const target of visible.targets) {
      const out = outboundCluster(index, target);
      if ('skipped' in out) {
        warnings.push(out.skipped);
        continue;
      }
      clusters.push(out.cluster);
      warnings.push(...out.warnings);
      if (out.endpoints !== undefined) endpoints.push(out.endpoints);
    }

    const ownPorts = new Set(index.inboundPorts(workload).ports.map((p) => p.workloadPort));
    const plan = workloadBindings(index, namespace, ownPorts, workload.spec.address);
    warnings.push(...plan.warnings);
    for (const b of plan.bindings) {
      listeners.push(outboundListener(index, b));
      if (b.http) {
        const r = outboundRoute(index, b, namespace);
        routes.push(r.route);
        warnings.push(...r.warnings);
      }
    }
    return { listeners, clusters, routes, endpoints, warnings: [...new Set(warnings)] };
  });
}
