import { isIP } from 'node:net';

/** meshd's address as the sidecar reaches it: "host:port" or "[v6]:port". */
export interface EndpointAddress {
  host: string;
  port: number;
  /** An IP needs a STATIC cluster; a name needs STRICT_DNS (Envoy resolves it). */
  isIp: boolean;
}

export function parseEndpointAddress(text: string, flag = '--xds-address'): EndpointAddress {
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d+)$/.exec(text) ?? /^([^:[\]\s]+):(\d+)$/.exec(text);
  if (!m) throw new Error(`${flag} ${JSON.stringify(text)} must be HOST:PORT (or [IPv6]:PORT), e.g. meshd.istio-system:15012`);
  const host = m[1]!;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw new Error(`${flag} ${JSON.stringify(text)}: port must be 1-65535`);
  const ipVersion = isIP(host);
  if (ipVersion === 0 && !/^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/.test(host)) {
    throw new Error(`${flag} ${JSON.stringify(text)}: ${JSON.stringify(host)} is neither an IP address nor a DNS name`);
  }
  return { host, port, isIp: ipVersion !== 0 };
}

/**
 * Several meshd replicas as the sidecar reaches them: "HOST:PORT[,HOST:PORT...]". One DNS name
 * with several addresses works as well (STRICT_DNS resolves every one of them).
 */
export function parseEndpointAddresses(text: string, flag = '--xds-address'): EndpointAddress[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.some((p) => p === '')) throw new Error(`${flag} ${JSON.stringify(text)} has an empty entry; list addresses as HOST:PORT,HOST:PORT`);
  if (parts.length > 64) throw new Error(`${flag} lists ${parts.length} addresses; at most 64`);
  const addresses = parts.map((p) => parseEndpointAddress(p, flag));
  const seen = new Set<string>();
  for (const a of addresses) {
    const key = `${a.host}:${a.port}`;
    if (seen.has(key)) throw new Error(`${flag} lists ${key} twice`);
    seen.add(key);
  }
  return addresses;
}
