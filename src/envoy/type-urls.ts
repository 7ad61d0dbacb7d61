/** Type URLs of the resources meshd serves (resource-types.ts describes each). */
export const TypeUrl = {
  Cluster: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  Endpoint: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  Secret: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
  Listener: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  Route: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
} as const;

const KNOWN: ReadonlyMap<string, string> = new Map(Object.values(TypeUrl).map((u) => [u, u]));

/**
 * The one shared copy of a known type URL (anything else as it came). A decoded request
 * carries a fresh string, and each stream keeps its type URLs for as long as it lives.
 */
export function internTypeUrl(typeUrl: string): string {
  return KNOWN.get(typeUrl) ?? typeUrl;
}
