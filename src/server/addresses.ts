import { isIP } from 'node:net';

/** "host:port", "[::1]:port" or ":port" (all interfaces, as Go and Istio write it). */
export function parseHostPort(text: string, flag: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(text.trim());
  if (!m) throw new Error(`${flag} "${text}" is not host:port`);
  const host = m[1] ?? (m[2] === '' ? '0.0.0.0' : m[2]!);
  const port = Number(m[3]);
  if (port > 65535) throw new Error(`${flag} port ${port} is out of range 0..65535`);
  return { host, port };
}

export function isLoopback(host: string): boolean {
  if (host === 'localhost') return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1';
}

export function grpcBindAddress(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
