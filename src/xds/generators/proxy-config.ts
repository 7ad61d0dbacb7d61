import type { MeshSnapshot, WorkloadEntry } from '../../config/model.js';
import type { Cluster, ClusterLoadAssignment, Listener, RouteConfiguration } from '../../envoy/messages.js';
import { APP_LOOPBACK, buildInbound } from './inbound.js';
import { indexFor, type MeshIndex } from '../../mesh/mesh-index.js';
import { namespaceBindings, type OutboundBinding } from './outbound-bind.js';
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

/**
 * The same config split by what it depends on: `own` on the workload (its inbound listeners and
 * clusters), `shared` on its namespace only (what the namespace sees: outbound clusters,
 * endpoints, listeners, routes), so the shared arrays are built and encoded once per namespace.
 * Each type's list is `[...own, ...shared]`, except outbound listeners the workload's own ports
 * displace (then `sharedListeners` is a filtered copy).
 */
export interface ProxyConfigParts {
  own: { listeners: readonly Listener[]; clusters: readonly Cluster[]; warnings: readonly string[] };
  shared: NamespaceOutbound;
  /** The namespace's outbound listeners this workload opens (the shared array itself when none clash). */
  sharedListeners: readonly Listener[];
  clashWarnings: readonly string[];
}

export interface NamespaceOutbound {
  clusters: readonly Cluster[];
  endpoints: readonly ClusterLoadAssignment[];
  listeners: readonly Listener[];
  routes: readonly RouteConfiguration[];
  /** bindings[i] is the binding of listeners[i]. */
  bindings: readonly OutboundBinding[];
  warnings: readonly string[];
}

export function buildProxyConfig(snapshot: MeshSnapshot, workload: WorkloadEntry): ProxyConfig {
  return proxyConfigFromIndex(indexFor(snapshot), workload);
}

/** What every proxy in `namespace` sees, built once per namespace and snapshot. */
export function namespaceOutbound(index: MeshIndex, namespace: string): NamespaceOutbound {
  return index.cached(`ns-out:${namespace}`, () => {
    const warnings: string[] = [];
    const clusters: Cluster[] = [];
    const endpoints: ClusterLoadAssignment[] = [];
    const visible = index.visibleTargets(namespace);
    warnings.push(...visible.warnings);
    for (const target of visible.targets) {
      const out = outboundCluster(index, target, namespace);
      if ('skipped' in out) {
        warnings.push(out.skipped);
        continue;
      }
      clusters.push(out.cluster);
      warnings.push(...out.warnings);
      if (out.endpoints !== undefined) endpoints.push(out.endpoints);
    }
    const plan = namespaceBindings(index, namespace);
    warnings.push(...plan.warnings);
    const listeners: Listener[] = [];
    const routes: RouteConfiguration[] = [];
    for (const b of plan.bindings) {
      listeners.push(outboundListener(index, b));
      if (b.http) {
        const r = outboundRoute(index, b, namespace);
        routes.push(r.route);
        warnings.push(...r.warnings);
      }
    }
    return { clusters, endpoints, listeners, routes, bindings: plan.bindings, warnings: [...new Set(warnings)] };
  });
}

function describe(b: OutboundBinding): string {
  return b.targets.map((t) => `${t.host}:${t.port.number} (${t.port.protocol}, ServiceEntry ${t.entry.meta.namespace}/${t.entry.meta.name})`).join(', ');
}

export function proxyConfigParts(index: MeshIndex, workload: WorkloadEntry): ProxyConfigParts {
  return index.cached(`parts:${workload.meta.namespace}/${workload.meta.name}`, () => {
    const inbound = buildInbound(index, workload);
    const shared = namespaceOutbound(index, workload.meta.namespace);
    const ownPorts = new Set(index.inboundPorts(workload).ports.map((p) => p.workloadPort));
    const address = workload.spec.address;
    // The app listens on 127.0.0.1:<own port>, and Envoy's inbound listeners hold <address>:<own port>.
    const clashes = (b: OutboundBinding): boolean => ownPorts.has(b.port) && (b.bind === APP_LOOPBACK || b.bind === address);
    const clashWarnings: string[] = [];
    let sharedListeners = shared.listeners;
    if (shared.bindings.some(clashes)) {
      sharedListeners = shared.listeners.filter((_, i) => {
        const b = shared.bindings[i]!;
        if (!clashes(b)) return true;
        clashWarnings.push(
          `outbound ${b.bind}:${b.port} for ${describe(b)} is not opened: the workload's own port ${b.port} ` +
            'is served there (give the ServiceEntry a loopback VIP in spec.addresses, e.g. 127.0.0.10)',
        );
        return false;
      });
    }
    return { own: inbound, shared, sharedListeners, clashWarnings };
  });
}

export function proxyConfigFromIndex(index: MeshIndex, workload: WorkloadEntry): ProxyConfig {
  return index.cached(`proxy:${workload.meta.namespace}/${workload.meta.name}`, () => {
    const p = proxyConfigParts(index, workload);
    // Routes of a displaced listener stay: a route no listener asks for is never requested over RDS.
    return {
      listeners: [...p.own.listeners, ...p.sharedListeners],
      clusters: [...p.own.clusters, ...p.shared.clusters],
      routes: p.shared.routes,
      endpoints: p.shared.endpoints,
      warnings: [...new Set([...p.own.warnings, ...p.shared.warnings, ...p.clashWarnings])],
    };
  });
}
