import { isIP } from 'node:net';

/**
 * Resource names of the proxyless gRPC family (Istio pilot/pkg/networking/grpcgen).
 *
 * - Server listener: `xds.istio.io/grpc/lds/inbound/<ip>:<port>`: gRPC fills the bootstrap's
 *   server_listener_resource_name_template with the exact string given to bindAsync, so the
 *   name is asked for, never listed; the listener's address must then equal that ip:port
 *   (grpc-js-xds otherwise reports "socket_address mismatch" and resets connections).
 * - Client listener: the `xds:///` target path, `<host>` or `<host>:<port>`.
 * - Route configuration: `<host>:<port>`, shared by both client listener spellings.
 * - Cluster and EDS service name: `outbound|<port>||<host>`, as for sidecars.
 */
export const GRPC_INBOUND_LISTENER_PREFIX = 'xds.istio.io/grpc/lds/inbound/';
export const GRPC_SERVER_LISTENER_TEMPLATE = `${GRPC_INBOUND_LISTENER_PREFIX}%s`;

export interface InboundListenerName {
  /** The IP as it appears in the name (IPv6 without brackets). */
  ip: string;
  port: number;
}

function parsePort(text: string): number | undefined {
  if (!/^\d{1,5}$/.test(text)) return undefined;
  const n = Number(text);
  return n >= 1 && n <= 65535 ? n : undefined;
}

/** `xds.istio.io/grpc/lds/inbound/127.0.0.1:50051` or `…/[::]:50051`; undefined for anything else. */
export function parseInboundListenerName(name: string): InboundListenerName | undefined {
  if (!name.startsWith(GRPC_INBOUND_LISTENER_PREFIX)) return undefined;
  const hostPort = name.slice(GRPC_INBOUND_LISTENER_PREFIX.length);
  const colon = hostPort.lastIndexOf(':');
  if (colon <= 0) return undefined;
  let ip = hostPort.slice(0, colon);
  const port = parsePort(hostPort.slice(colon + 1));
  if (ip.startsWith('[') && ip.endsWith(']')) ip = ip.slice(1, -1);
  else if (ip.includes(':')) return undefined; // IPv6 must be bracketed, as gRPC formats it
  if (port === undefined || isIP(ip) === 0) return undefined;
  return { ip, port };
}

export function inboundListenerName(ip: string, port: number): string {
  return `${GRPC_INBOUND_LISTENER_PREFIX}${isIP(ip) === 6 ? `[${ip}]` : ip}:${port}`;
}

export interface TargetName {
  host: string;
  port?: number;
}

/** A client listener name: `<host>` or `<host>:<port>` (the xds:/// target path). */
export function parseTargetName(name: string): TargetName | undefined {
  if (name === '' || name.includes('/') || name.startsWith(GRPC_INBOUND_LISTENER_PREFIX)) return undefined;
  const colon = name.lastIndexOf(':');
  if (colon < 0) return { host: name };
  const port = parsePort(name.slice(colon + 1));
  const host = name.slice(0, colon);
  if (port === undefined || host === '' || host.includes(':')) return undefined;
  return { host, port };
}

export function routeConfigName(host: string, port: number): string {
  return `${host}:${port}`;
}

/** Unspecified addresses a server may bind (the listener then carries that address). */
export function isUnspecifiedAddress(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::';
}
