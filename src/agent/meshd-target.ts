import { parseEndpointAddresses } from '../xds/bootstrap/endpoint-address.js';

/**
 * The gRPC target the agent's channels to meshd use (CSR API, xDS proxy, access logs, federated
 * bundles), from `--xds-address`:
 * - one HOST:PORT stays as it is; a DNS name resolves to every address it has;
 * - several replicas' addresses become one target that lists them all, with gRPC's ipv4: or
 *   ipv6: scheme (https://github.com/grpc/grpc/blob/master/doc/naming.md). grpc-js's default
 *   pick_first policy connects to the first address that answers and, when that connection is
 *   lost, to the next, so a renewal or an xDS stream goes to whichever replica is up.
 * gRPC's target names cannot mix names with IPs or IPv4 with IPv6 in one list; such a list is
 * refused with the way out (one DNS name with several addresses).
 */
export function meshdTarget(text: string, flag = '--xds-address'): string {
  const addresses = parseEndpointAddresses(text, flag);
  if (addresses.length === 1) return text.trim();
  if (addresses.some((a) => !a.isIp)) {
    throw new Error(`${flag} ${JSON.stringify(text)}: several addresses must all be IP:PORT; for names, give one DNS name that resolves to every replica`);
  }
  const v6 = addresses.map((a) => a.host.includes(':'));
  if (v6.some((x) => x !== v6[0])) throw new Error(`${flag} ${JSON.stringify(text)}: list IPv4 or IPv6 addresses, not both`);
  return v6[0]
    ? `ipv6:${addresses.map((a) => `[${a.host}]:${a.port}`).join(',')}`
    : `ipv4:${addresses.map((a) => `${a.host}:${a.port}`).join(',')}`;
}
