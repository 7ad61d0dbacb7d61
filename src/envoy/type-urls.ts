/** Type URLs of the resources meshd serves, in the order ADS pushes them (D.5: CDS, EDS, LDS, RDS; secrets with listeners). */
export const TypeUrl = {
  Cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  Endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  Secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
  Listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  Route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
} as const;

export type KnownTypeUrl = (typeof TypeUrl)[keyof typeof TypeUrl];

const KNOWN: ReadonlyMap<string, string> = new Map(Object.values(TypeUrl).map((u) => [u, u]));

/**
 * The one shared copy of a known type URL (anything else as it came). A decoded request
 * carries a fresh string, and each stream keeps its type URLs for as long as it lives.
 */
export function internTypeUrl(typeUrl: string): string {
  return KNOWN.get(typeUrl) ?? typeUrl;
}

/** ADS push order: clusters warm on endpoints, listeners warm on secrets and routes. */
export const PUSH_ORDER: readonly string[] = [TypeUrl.Cluster, TypeUrl.Endpoint, TypeUrl.Secret, TypeUrl.Listener, TypeUrl.Route];

/** In SotW, LDS and CDS responses carry every resource; absence means deletion (D.4). */
export const FULL_STATE_IN_SOTW: ReadonlySet<string> = new Set([TypeUrl.Listener, TypeUrl.Cluster]);

/** Short names used in metrics labels, as istiod labels pilot_xds_pushes{type}. */
export function shortTypeName(typeUrl: string): string {
  switch (typeUrl) {
    case TypeUrl.Cluster: return 'cds';
    case TypeUrl.Endpoint: return 'eds';
    case TypeUrl.Listener: return 'lds';
    case TypeUrl.Route: return 'rds';
    case TypeUrl.Secret: return 'sds';
    default: return typeUrl.slice(typeUrl.lastIndexOf('.') + 1).toLowerCase() || 'unknown';
  }
}
