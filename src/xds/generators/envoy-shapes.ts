/**
 * The subset of Envoy's v3 messages the sidecar generators build, as the plain objects
 * protobufjs's `fromObject` takes (snake_case field names, wrappers as {value}, Duration as
 * {seconds}, Struct as {fields}, Any as {'@type', ...fields}). Typed so `meshd check` and
 * tests can walk the generated config without casts; anything not read back stays open.
 */

/**
 * google.protobuf.Struct with string values only: all the metadata meshd writes. protobufjs
 * bundles google/protobuf/struct with camelCase field names (`stringValue`), unlike the Envoy
 * protos loaded with keepCase; a snake_case `string_value` would be dropped silently.
 */
export interface StringStruct {
  fields: Record<string, { stringValue: string }>;
}

export interface UInt32Value { value: number }
export interface BoolValue { value: boolean }
export interface Duration { seconds: number; nanos?: number }

export interface SocketAddress { address: string; port_value: number }
export interface Address { socket_address: SocketAddress }

/** An Any-packed extension config; `@type` is the full type URL. */
export interface AnyConfig { '@type': string; [field: string]: unknown }

export interface TypedExtension { name: string; typed_config: AnyConfig }

/** envoy.config.accesslog.v3.AccessLog, as telemetry's builders return it. */
export type AccessLogConfig = Record<string, unknown>;

export interface FilterChainMatch {
  destination_port?: UInt32Value;
  transport_protocol?: string;
  application_protocols?: string[];
  server_names?: string[];
}

export interface FilterChain {
  name: string;
  filter_chain_match?: FilterChainMatch;
  filters: TypedExtension[];
  transport_socket?: TypedExtension;
}

export interface Listener {
  name: string;
  address: Address;
  traffic_direction: 'INBOUND' | 'OUTBOUND';
  listener_filters?: TypedExtension[];
  listener_filters_timeout?: Duration;
  continue_on_listener_filters_timeout?: boolean;
  filter_chains: FilterChain[];
  access_log?: AccessLogConfig[];
}

export interface LbEndpoint {
  endpoint: { address: Address };
  metadata?: { filter_metadata: Record<string, StringStruct> };
  load_balancing_weight: UInt32Value;
}

export interface LocalityLbEndpoints {
  locality?: { region?: string; zone?: string; sub_zone?: string };
  lb_endpoints: LbEndpoint[];
  load_balancing_weight: UInt32Value;
}

export interface ClusterLoadAssignment {
  cluster_name: string;
  endpoints: LocalityLbEndpoints[];
}

export interface TransportSocketMatch {
  name: string;
  match: StringStruct | Record<string, never>;
  transport_socket: TypedExtension;
}

export interface Cluster {
  name: string;
  type: 'EDS' | 'STATIC' | 'STRICT_DNS' | 'LOGICAL_DNS';
  connect_timeout: Duration;
  eds_cluster_config?: { service_name: string; eds_config: AnyConfigSource };
  load_assignment?: ClusterLoadAssignment;
  transport_socket?: TypedExtension;
  transport_socket_matches?: TransportSocketMatch[];
  typed_extension_protocol_options?: Record<string, AnyConfig>;
  dns_lookup_family?: 'V4_ONLY';
  [field: string]: unknown;
}

export interface AnyConfigSource {
  ads: Record<string, never>;
  resource_api_version: 'V3';
  initial_fetch_timeout?: Duration;
}

export interface Route {
  name: string;
  match: { prefix: string };
  route: {
    cluster: string;
    timeout: Duration;
    retry_policy?: { retry_on: string; num_retries: UInt32Value; retriable_status_codes?: number[] };
  };
}

export interface VirtualHost {
  name: string;
  domains: string[];
  routes: Route[];
}

export interface RouteConfiguration {
  name: string;
  virtual_hosts: VirtualHost[];
  validate_clusters: BoolValue;
}

/** Reads a string field of a Struct built by `stringStruct`. */
export function structString(s: StringStruct | Record<string, never> | undefined, key: string): string | undefined {
  if (s === undefined || !('fields' in s)) return undefined;
  return (s as StringStruct).fields[key]?.stringValue;
}

export function stringStruct(values: Record<string, string>): StringStruct {
  const fields: Record<string, { stringValue: string }> = {};
  for (const [k, v] of Object.entries(values)) fields[k] = { stringValue: v };
  return { fields };
}
