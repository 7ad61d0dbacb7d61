import { httpAccessLogs } from './access-log.js';
import { ExtensionName, ExtensionType } from '../../envoy/extension-types.js';
import type { Filter, Listener, RetryPolicy, RouteConfiguration, VirtualHost } from '../../envoy/messages.js';
import { routerFilter } from './http-options.js';
import type { MeshIndex } from '../../mesh/mesh-index.js';
import { listenerName, outboundClusterName } from './names.js';
import type { OutboundBinding } from './outbound-bind.js';
import { tcpProxyFilter } from './tcp-proxy.js';

/**
 * Outbound listeners (one per binding, see outbound-bind.ts) and their routes. HTTP listeners
 * use an HCM with RDS over ADS; TCP listeners a tcp_proxy to the one service's cluster.
 */

function outboundHcm(b: OutboundBinding): Filter {
  return {
    name: ExtensionName.HttpConnectionManager,
    typed_config: {
      '@type': ExtensionType.HttpConnectionManager,
      stat_prefix: `outbound_${b.bind}_${b.port}`,
      codec_type: 'AUTO',
      rds: { route_config_name: b.routeName, config_source: { ads: {}, resource_api_version: 'V3' } },
      http_filters: [routerFilter()],
      use_remote_address: { value: false },
      access_log: httpAccessLogs('outbound'),
    },
  };
}

export function outboundListener(index: MeshIndex, b: OutboundBinding): Listener {
  const first = b.targets[0]!;
  const key = b.http ? `out-l:${b.bind}:${b.port}:http` : `out-l:${b.bind}:${b.port}:${outboundClusterName(first.port.number, first.host)}`;
  return index.cached(key, () => ({
    name: listenerName(b.bind, b.port),
    address: { socket_address: { address: b.bind, port_value: b.port } },
    traffic_direction: 'OUTBOUND',
    filter_chains: [{ name: listenerName(b.bind, b.port), filters: [b.http ? outboundHcm(b) : tcpProxyFilter(outboundClusterName(first.port.number, first.host), 'outbound')] }],
  }));
}

/**
 * Domains a client may use for a host, as istiod builds virtual hosts: the host and
 * host:port, and for Kubernetes-style `name.ns.svc.<suffix>` hosts also `name.ns.svc` and
 * `name.ns`, plus the bare `name` from the service's own namespace.
 */
export function hostDomains(host: string, port: number, clientNamespace: string): string[] {
  const names = [host];
  const m = /^([^.]+)\.([^.]+)\.svc\.(.+)$/.exec(host);
  if (m !== null) {
    names.push(`${m[1]}.${m[2]}.svc`, `${m[1]}.${m[2]}`);
    if (m[2] === clientNamespace) names.push(m[1]!);
  }
  return names.flatMap((n) => [n, `${n}:${port}`]);
}

/** Istio's default outbound retry policy (2 retries on connection-level failures and 503). */
const DEFAULT_RETRY: RetryPolicy = {
  retry_on: 'connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes',
  num_retries: { value: 2 },
  retriable_status_codes: [503],
};

/**
 * The RouteConfiguration an HTTP binding's HCM asks for. On a service's own loopback VIP with
 * a single service the virtual host takes any Host header (`*`): the address already names
 * the service. On a shared 127.0.0.1 port, services are told apart by Host, and a request for
 * no known host gets Envoy's 404 with flag NR.
 */
export function outboundRoute(index: MeshIndex, b: OutboundBinding, clientNamespace: string): { route: RouteConfiguration; warnings: string[] } {
  return index.cached(`route:${clientNamespace}:${b.routeName}`, () => {
    const warnings: string[] = [];
    const taken = new Set<string>();
    const virtualHosts: VirtualHost[] = [];
    const catchAll = b.vip && b.targets.length === 1;
    for (const t of b.targets) {
      let domains = catchAll ? ['*'] : hostDomains(t.host, t.port.number, clientNamespace);
      if (b.vip && !catchAll) domains.push(b.bind, `${b.bind}:${b.port}`);
      domains = domains.filter((d) => {
        if (!taken.has(d)) return taken.add(d), true;
        warnings.push(`route ${b.routeName}: domain ${d} of ${t.host} is already used by another service; left out`);
        return false;
      });
      if (domains.length === 0) continue;
      virtualHosts.push({
        name: `${t.host}:${t.port.number}`,
        domains,
        routes: [{
          name: 'default',
          match: { prefix: '/' },
          route: { cluster: outboundClusterName(t.port.number, t.host), timeout: { seconds: 0 }, retry_policy: DEFAULT_RETRY },
        }],
      });
    }
    return { route: { name: b.routeName, virtual_hosts: virtualHosts, validate_clusters: { value: false } }, warnings };
  });
}
