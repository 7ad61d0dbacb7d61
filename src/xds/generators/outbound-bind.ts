import { isIPv4 } from 'node:net';
import type { ServiceEntry } from '../../config/model.js';
import { APP_LOOPBACK } from './inbound.js';
import type { MeshIndex, ServiceTarget } from '../../mesh/mesh-index.js';
import { isHttpProtocol } from '../../mesh/protocols.js';

/**
 * Where a sidecar's outbound listener for a service port binds, in the deployment model
 * without iptables (docs/deployment-model.md). The app reaches mesh services on loopback:
 *
 * 1. A ServiceEntry whose `addresses` include a loopback address (127.0.0.0/8, e.g.
 *    127.0.0.10 or 127.0.0.10/32) is served on that address and the service port: a per-service
 *    loopback VIP, which cannot collide with the app's own ports or with other services.
 * 2. Otherwise the service is served on 127.0.0.1:<service port>. HTTP services that share a
 *    port share that listener and are told apart by Host header (one route per port, as
 *    istiod names it); a TCP service needs the port to itself, so a second service on the same
 *    address and port (or an HTTP/TCP mix) goes to the oldest ServiceEntry, with a warning.
 * 3. A 127.0.0.1 port the app itself listens on (one of the workload's own mesh ports, where
 *    its inbound cluster delivers) cannot take an outbound listener: it is skipped with a
 *    warning that says to give the service a loopback VIP.
 */

/** A listener the sidecar opens for the app, and the services behind it. */
export interface OutboundBinding {
  bind: string;
  port: number;
  http: boolean;
  targets: ServiceTarget[];
  /** RDS route name for HTTP: the port on 127.0.0.1 (Istio's name), `<vip>:<port>` on a VIP. */
  routeName: string;
  /** True when the listener is on a service's own loopback VIP. */
  vip: boolean;
}

/** The loopback VIP of a ServiceEntry (first 127.0.0.0/8 address in spec.addresses), if any. */
export function loopbackVip(entry: ServiceEntry): string | undefined {
  for (const raw of entry.addresses) {
    const address = raw.endsWith('/32') ? raw.slice(0, -3) : raw;
    if (isIPv4(address) && address.startsWith('127.')) return address;
  }
  return undefined;
}

export function bindAddressFor(entry: ServiceEntry): string {
  return loopbackVip(entry) ?? APP_LOOPBACK;
}

function describe(t: ServiceTarget): string {
  return `${t.host}:${t.port.number} (${t.port.protocol}, ServiceEntry ${t.entry.meta.namespace}/${t.entry.meta.name})`;
}

/** The bindings for a proxy in `namespace`, before the app's own ports are taken out. Memoised per namespace. */
export function namespaceBindings(index: MeshIndex, namespace: string): { bindings: readonly OutboundBinding[]; warnings: readonly string[] } {
  return index.cached(`bind:${namespace}`, () => {
    const byKey = new Map<string, OutboundBinding>();
    const warnings: string[] = [];
    for (const target of index.visibleTargets(namespace).targets) {
      if (target.entry.resolution === 'NONE') continue;
      const bind = bindAddressFor(target.entry);
      const port = target.port.number;
      const http = isHttpProtocol(target.port.protocol);
      const key = `${bind}:${port}`;
      const existing = byKey.get(key);
      if (existing === undefined) {
        const vip = bind !== APP_LOOPBACK;
        byKey.set(key, { bind, port, http, targets: [target], routeName: vip ? `${bind}:${port}` : String(port), vip });
        continue;
      }
      if (existing.http && http) {
        existing.targets.push(target);
        continue;
      }
      warnings.push(
        `outbound ${key} is taken by ${describe(existing.targets[0]!)}; ${describe(target)} gets no listener there ` +
          '(give its ServiceEntry a loopback VIP in spec.addresses, e.g. 127.0.0.10)',
      );
    }
    const bindings = [...byKey.values()].sort((a, b) => (a.bind === b.bind ? a.port - b.port : a.bind < b.bind ? -1 : 1));
    return { bindings, warnings };
  });
}
