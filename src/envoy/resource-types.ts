import type { Cluster } from './generated/envoy/config/cluster/v3/Cluster.js';
import type { ClusterLoadAssignment } from './generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js';
import type { Listener } from './generated/envoy/config/listener/v3/Listener.js';
import type { RouteConfiguration } from './generated/envoy/config/route/v3/RouteConfiguration.js';
import type { Secret } from './generated/envoy/extensions/transport_sockets/tls/v3/Secret.js';
import { TypeUrl } from './type-urls.js';

/**
 * What meshd knows about each xDS resource type it serves, in one place, in the spirit of
 * grpc-js-xds's XdsResourceType (src/xds-resource-type/). The discovery core, the gRPC services
 * and the generators read these facts here; none of them holds its own copy, and the core knows
 * no more about a listener or a secret than what is written below.
 */

/** The message each type URL carries. */
export interface ResourceMessages {
  [TypeUrl.Cluster]: Cluster;
  [TypeUrl.Endpoint]: ClusterLoadAssignment;
  [TypeUrl.Secret]: Secret;
  [TypeUrl.Listener]: Listener;
  [TypeUrl.Route]: RouteConfiguration;
}

export type ResourceTypeUrl = keyof ResourceMessages;

/** The message a type URL carries: typed for the types meshd serves, any object for another. */
export type MessageOf<U extends string> = U extends ResourceTypeUrl ? ResourceMessages[U] : object;

/**
 * A type whose resources Envoy needs before it uses a resource of this type: clusters and
 * listeners are "warming" until then (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#resource-warming).
 */
interface Dependency {
  readonly typeUrl: ResourceTypeUrl;
  /**
   * True when the resource needed carries the dependent's own name: meshd names an EDS cluster's
   * ClusterLoadAssignment after the cluster (eds_cluster_config.service_name = the cluster name).
   * False when the name is written inside the resource (route_config_name, an SDS secret name).
   */
  readonly sameName: boolean;
}

export interface ResourceType<U extends ResourceTypeUrl = ResourceTypeUrl> {
  readonly typeUrl: U;
  /** The type in metrics labels and logs, as istiod labels pilot_xds_pushes{type}. */
  readonly shortName: string;
  /**
   * In state-of-the-world, a response carries every resource of the type and a resource left out
   * is deleted (true for LDS and CDS); for the other types a response may carry only some.
   * https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#grouping-resources-into-responses
   */
  readonly fullStateInSotw: boolean;
  /**
   * Place in ADS push order, lowest first: CDS, EDS, secrets, LDS, RDS. Clusters come before the
   * endpoints and listeners that use them and routes after their listeners, so Envoy never holds
   * a reference to something it has not been sent
   * (https://www.envoyproxy.io/docs/envoy/latest/api-docs/xds_protocol#eventual-consistency-considerations);
   * secrets come before the listeners whose TLS contexts name them.
   */
  readonly pushRank: number;
  /** The gRPC service that serves only this type, and the noun of its Stream, Delta and Fetch methods. */
  readonly service: { readonly name: string; readonly methods: string };
  /** The resource name of a message of this type. */
  nameOf(message: ResourceMessages[U]): string;
  /**
   * What a resource of this type warms on. The core follows a response that changes resources
   * with the `sameName` ones, changed or not: a changed EDS cluster warms until its
   * ClusterLoadAssignment arrives again.
   */
  readonly warmsOn: readonly Dependency[];
}

export const CLUSTER: ResourceType<typeof TypeUrl.Cluster> = {
  typeUrl: TypeUrl.Cluster,
  shortName: 'cds',
  fullStateInSotw: true,
  pushRank: 0,
  service: { name: 'envoy.service.cluster.v3.ClusterDiscoveryService', methods: 'Clusters' },
  nameOf: (c) => c.name ?? '',
  warmsOn: [{ typeUrl: TypeUrl.Endpoint, sameName: true }, { typeUrl: TypeUrl.Secret, sameName: false }],
};

export const ENDPOINT: ResourceType<typeof TypeUrl.Endpoint> = {
  typeUrl: TypeUrl.Endpoint,
  shortName: 'eds',
  fullStateInSotw: false,
  pushRank: 1,
  service: { name: 'envoy.service.endpoint.v3.EndpointDiscoveryService', methods: 'Endpoints' },
  nameOf: (cla) => cla.cluster_name ?? '',
  warmsOn: [],
};

export const SECRET: ResourceType<typeof TypeUrl.Secret> = {
  typeUrl: TypeUrl.Secret,
  shortName: 'sds',
  fullStateInSotw: false,
  pushRank: 2,
  service: { name: 'envoy.service.secret.v3.SecretDiscoveryService', methods: 'Secrets' },
  nameOf: (s) => s.name ?? '',
  warmsOn: [],
};

export const LISTENER: ResourceType<typeof TypeUrl.Listener> = {
  typeUrl: TypeUrl.Listener,
  shortName: 'lds',
  fullStateInSotw: true,
  pushRank: 3,
  service: { name: 'envoy.service.listener.v3.ListenerDiscoveryService', methods: 'Listeners' },
  nameOf: (l) => l.name ?? '',
  warmsOn: [{ typeUrl: TypeUrl.Route, sameName: false }, { typeUrl: TypeUrl.Secret, sameName: false }],
};

export const ROUTE: ResourceType<typeof TypeUrl.Route> = {
  typeUrl: TypeUrl.Route,
  shortName: 'rds',
  fullStateInSotw: false,
  pushRank: 4,
  service: { name: 'envoy.service.route.v3.RouteDiscoveryService', methods: 'Routes' },
  nameOf: (r) => r.name ?? '',
  warmsOn: [],
};

/** Every type meshd serves, in push order. */
export const RESOURCE_TYPES: readonly ResourceType[] = [CLUSTER, ENDPOINT, SECRET, LISTENER, ROUTE];

const BY_URL: ReadonlyMap<string, ResourceType> = new Map(RESOURCE_TYPES.map((t) => [t.typeUrl, t]));

/** The descriptor of a type URL meshd serves; undefined for any other. */
export function resourceType(typeUrl: string): ResourceType | undefined {
  return BY_URL.get(typeUrl);
}

/** The short name of a type URL for metrics and logs; for a type meshd does not serve, its message name in lower case. */
export function shortTypeName(typeUrl: string): string {
  return BY_URL.get(typeUrl)?.shortName ?? (typeUrl.slice(typeUrl.lastIndexOf('.') + 1).toLowerCase() || 'unknown');
}
