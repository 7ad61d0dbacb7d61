import { namespaceOfPrincipal } from '../mesh/spiffe-identity.js';
import type { ServiceInfo, WorkloadInfo } from './workload-resolver.js';

/**
 * Istio's label values (https://istio.io/latest/docs/reference/config/metrics/), as pure
 * functions. A missing attribute is "unknown", except the canonical revision, which
 * defaults to "latest".
 */

export const UNKNOWN = 'unknown';

/** One side of a request (source or destination), label values in a fixed shape. */
export interface PeerLabels {
  workload: string;
  namespace: string;
  principal: string;
  app: string;
  version: string;
  canonicalService: string;
  canonicalRevision: string;
  cluster: string;
  /** A service that selects the workload, when the registry knows one (not a label of its own). */
  service: string | undefined;
  /** The values joined: identifies the label values. */
  key: string;
  /** What series keys use for these values: `key`, or a short interned id (see the ingester). */
  ref: string;
}

export interface ServiceLabels {
  service: string;
  name: string;
  namespace: string;
  key: string;
  ref: string;
}

const SEP = '\u0001';

/**
 * Label values that come off the wire (principals, hosts, grpc-status) are capped: the
 * series bound limits how many series a noisy client makes, this limits how big each one
 * is. The key separator is removed so no value can pose as two.
 */
export const MAX_LABEL_VALUE_LENGTH = 256;

export function capLabel(value: string): string {
  if (value.includes(SEP)) value = value.split(SEP).join('');
  return value.length > MAX_LABEL_VALUE_LENGTH ? value.slice(0, MAX_LABEL_VALUE_LENGTH) : value;
}

function pick(labels: Readonly<Record<string, string>> | undefined, ...names: string[]): string | undefined {
  if (!labels) return undefined;
  for (const n of names) {
    const v = labels[n];
    if (v !== undefined && v !== '') return v;
  }
  return undefined;
}

/**
 * Peer labels from what is known: a resolved workload and/or a principal (URI SAN).
 * canonical service: service.istio.io/canonical-name, app.kubernetes.io/name, app, then
 * the workload name; canonical revision: service.istio.io/canonical-revision,
 * app.kubernetes.io/version, version, then "latest" (Istio's defaults).
 */
export function peerLabels(info: WorkloadInfo | undefined, principal: string | undefined, defaultCluster?: string): PeerLabels {
  const labels = info?.labels;
  const workload = info?.workload || UNKNOWN;
  const namespace = info?.namespace || (principal ? capLabel(namespaceOfPrincipal(principal) ?? '') : '') || UNKNOWN;
  const p: Omit<PeerLabels, 'key' | 'ref' | 'service'> = {
    workload,
    namespace,
    principal: principal ? capLabel(principal) : UNKNOWN,
    app: pick(labels, 'app', 'app.kubernetes.io/name') ?? UNKNOWN,
    version: pick(labels, 'version', 'app.kubernetes.io/version') ?? UNKNOWN,
    canonicalService: pick(labels, 'service.istio.io/canonical-name', 'app.kubernetes.io/name', 'app') ?? workload,
    canonicalRevision: pick(labels, 'service.istio.io/canonical-revision', 'app.kubernetes.io/version', 'version') ?? 'latest',
    cluster: info?.cluster || (info ? defaultCluster : undefined) || UNKNOWN,
  };
  const key = [p.workload, p.namespace, p.principal, p.app, p.version, p.canonicalService, p.canonicalRevision, p.cluster].join(SEP);
  return { ...p, service: info?.service, key, ref: key };
}

/** Istio's catch-all clusters (pilot/pkg/networking/util/util.go) name themselves in destination_service. */
const SPECIAL_CLUSTERS = new Set(['BlackHoleCluster', 'PassthroughCluster', 'InboundPassthroughCluster', 'InboundPassthroughClusterIpv4', 'InboundPassthroughClusterIpv6']);

/**
 * Istio's cluster names: "outbound|<port>|<subset>|<host>" and "inbound|<port>|<subset>|<host>"
 * (the host may be empty on inbound). Returns the host, a special cluster's own name, or undefined.
 */
export function serviceFromCluster(cluster: string): string | undefined {
  if (cluster === '') return undefined;
  if (SPECIAL_CLUSTERS.has(cluster)) return cluster;
  const parts = cluster.split('|');
  if (parts.length === 4 && (parts[0] === 'outbound' || parts[0] === 'inbound') && parts[3] !== '') return parts[3];
  return undefined;
}

/** An :authority without its port ("reviews:9080" → "reviews"; "[::1]:80" → "::1"). */
export function hostOfAuthority(authority: string): string {
  if (authority.startsWith('[')) {
    const close = authority.indexOf(']');
    return close > 0 ? authority.slice(1, close) : authority;
  }
  const colon = authority.lastIndexOf(':');
  return colon > 0 && authority.indexOf(':') === colon ? authority.slice(0, colon) : authority;
}

const KUBE_HOST = /^([^.]+)\.([^.]+)\.svc(\.|$)/;

/** True for a host that names a mesh service by its Kubernetes form. */
export function isServiceHost(host: string): boolean {
  return KUBE_HOST.test(host);
}

/**
 * destination_service, _name and _namespace: a <name>.<ns>.svc.<domain> host splits
 * itself; other hosts (ServiceEntry) ask the registry; special clusters name themselves.
 */
export function serviceLabels(host: string | undefined, lookup: ((host: string) => ServiceInfo | undefined) | undefined): ServiceLabels {
  if (!host) {
    const key = `${UNKNOWN}${SEP}${UNKNOWN}${SEP}${UNKNOWN}`;
    return { service: UNKNOWN, name: UNKNOWN, namespace: UNKNOWN, key, ref: key };
  }
  host = capLabel(host);
  let name = host;
  let namespace = UNKNOWN;
  const m = KUBE_HOST.exec(host);
  if (m) {
    name = m[1]!;
    namespace = m[2]!;
  } else if (!SPECIAL_CLUSTERS.has(host)) {
    const found = lookup?.(host);
    if (found) {
      name = found.name;
      namespace = found.namespace;
    }
  }
  const key = `${host}${SEP}${name}${SEP}${namespace}`;
  return { service: host, name, namespace, key, ref: key };
}

/** request_protocol: "grpc" for application/grpc content (and its +proto/+json forms), else "http". */
export function requestProtocol(contentType: string, grpcStatus: string): 'grpc' | 'http' {
  if (contentType.startsWith('application/grpc')) return 'grpc';
  return grpcStatus !== '' ? 'grpc' : 'http';
}

/**
 * grpc_response_status: "" for non-gRPC traffic. For gRPC, as Envoy's
 * Grpc::Common::getGrpcStatus (which istio_stats uses): the grpc-status trailer, else
 * the header (trailers-only responses), else the gRPC code the HTTP status maps to
 * (grpc/doc/http-grpc-status-mapping.md), else "".
 */
export function grpcResponseStatus(protocol: 'grpc' | 'http', loggedStatus: string, httpCode: number): string {
  if (protocol !== 'grpc') return '';
  if (loggedStatus !== '') return loggedStatus.length <= 3 && !loggedStatus.includes(SEP) ? loggedStatus : capLabel(loggedStatus);
  if (httpCode === 0) return '';
  switch (httpCode) {
    case 400: return '13';
    case 401: return '16';
    case 403: return '7';
    case 404: return '12';
    case 429: case 502: case 503: case 504: return '14';
    default: return '2';
  }
}

/**
 * connection_security_policy as Istio sets it: "unknown" for reporter=source (the client
 * side never computes it); for reporter=destination, "mutual_tls" when both the peer's and
 * the local certificate's URI SAN are present, otherwise "none".
 */
export function connectionSecurityPolicy(reporter: 'source' | 'destination', peerSan: string, localSan: string): 'mutual_tls' | 'none' | 'unknown' {
  if (reporter === 'source') return 'unknown';
  return peerSan !== '' && localSan !== '' ? 'mutual_tls' : 'none';
}

export { SEP as KEY_SEPARATOR };

/** Everything a request's or connection's label set is made of. */
export interface LabelParts {
  reporter: 'source' | 'destination';
  src: PeerLabels;
  dst: PeerLabels;
  svc: ServiceLabels;
  protocol: string;
  code: string;
  grpc: string;
  flags: string;
  policy: string;
}

/** The HTTP label set in Istio's order (istio-metrics.ts HTTP_LABEL_NAMES). */
export function requestLabels(p: LabelParts): Record<string, string> {
  return {
    reporter: p.reporter,
    source_workload: p.src.workload,
    source_canonical_service: p.src.canonicalService,
    source_canonical_revision: p.src.canonicalRevision,
    source_workload_namespace: p.src.namespace,
    source_principal: p.src.principal,
    source_app: p.src.app,
    source_version: p.src.version,
    source_cluster: p.src.cluster,
    destination_workload: p.dst.workload,
    destination_workload_namespace: p.dst.namespace,
    destination_principal: p.dst.principal,
    destination_app: p.dst.app,
    destination_version: p.dst.version,
    destination_service: p.svc.service,
    destination_canonical_service: p.dst.canonicalService,
    destination_canonical_revision: p.dst.canonicalRevision,
    destination_service_name: p.svc.name,
    destination_service_namespace: p.svc.namespace,
    destination_cluster: p.dst.cluster,
    request_protocol: p.protocol,
    response_code: p.code,
    grpc_response_status: p.grpc,
    response_flags: p.flags,
    connection_security_policy: p.policy,
  };
}

/** The TCP label set: the HTTP one without response_code and grpc_response_status. */
export function tcpLabels(p: LabelParts): Record<string, string> {
  const { response_code: _code, grpc_response_status: _grpc, ...rest } = requestLabels({ ...p, protocol: 'tcp' });
  return rest;
}
