/**
 * Envoy's messages meshd builds, by their short names, as the object form protobufjs's
 * fromObject encodes (src/envoy/protos.ts): Envoy's snake_case field names, wrappers as
 * `{value}`, Duration as `{seconds, nanos}`, Struct as `{fields: {k: {stringValue}}}`, Any as
 * `{'@type', ...fields}` typed by its type URL (any.ts). Every field is optional, as in proto3.
 *
 * The types are generated from Envoy's .proto files (src/envoy/generated, `npm run
 * gen:envoy-types`); this file only names the ones meshd uses. A misspelt field or a wrong value
 * type in a message literal is a compile error.
 */
export type { PackedAny, Packed } from './any.js';

export type { Duration } from './generated/google/protobuf/Duration.js';
export type { Struct } from './generated/google/protobuf/Struct.js';

export type { ConfigSource } from './generated/envoy/config/core/v3/ConfigSource.js';
export type { GrpcService } from './generated/envoy/config/core/v3/GrpcService.js';
export type { Locality } from './generated/envoy/config/core/v3/Locality.js';
export type { TransportSocket } from './generated/envoy/config/core/v3/TransportSocket.js';

export type { AccessLog } from './generated/envoy/config/accesslog/v3/AccessLog.js';
export type { Bootstrap } from './generated/envoy/config/bootstrap/v3/Bootstrap.js';
export type {
  Cluster,
  _envoy_config_cluster_v3_Cluster_TransportSocketMatch as TransportSocketMatch,
} from './generated/envoy/config/cluster/v3/Cluster.js';
export type { ClusterLoadAssignment } from './generated/envoy/config/endpoint/v3/ClusterLoadAssignment.js';
export type { LbEndpoint } from './generated/envoy/config/endpoint/v3/LbEndpoint.js';
export type { LocalityLbEndpoints } from './generated/envoy/config/endpoint/v3/LocalityLbEndpoints.js';
export type { Filter } from './generated/envoy/config/listener/v3/Filter.js';
export type { FilterChain } from './generated/envoy/config/listener/v3/FilterChain.js';
export type { FilterChainMatch } from './generated/envoy/config/listener/v3/FilterChainMatch.js';
export type { Listener } from './generated/envoy/config/listener/v3/Listener.js';
export type { ListenerFilter } from './generated/envoy/config/listener/v3/ListenerFilter.js';
export type { RetryPolicy } from './generated/envoy/config/route/v3/RetryPolicy.js';
export type { RouteConfiguration } from './generated/envoy/config/route/v3/RouteConfiguration.js';
export type { VirtualHost } from './generated/envoy/config/route/v3/VirtualHost.js';

export type { HttpFilter } from './generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpFilter.js';
export type {
  _envoy_extensions_filters_network_tcp_proxy_v3_TcpProxy_TcpAccessLogOptions as TcpAccessLogOptions,
} from './generated/envoy/extensions/filters/network/tcp_proxy/v3/TcpProxy.js';
export type { CommonGrpcAccessLogConfig } from './generated/envoy/extensions/access_loggers/grpc/v3/CommonGrpcAccessLogConfig.js';
export type { CertificateValidationContext } from './generated/envoy/extensions/transport_sockets/tls/v3/CertificateValidationContext.js';
export type { CommonTlsContext } from './generated/envoy/extensions/transport_sockets/tls/v3/CommonTlsContext.js';
export type { SdsSecretConfig } from './generated/envoy/extensions/transport_sockets/tls/v3/SdsSecretConfig.js';
export type { Secret } from './generated/envoy/extensions/transport_sockets/tls/v3/Secret.js';
export type { SubjectAltNameMatcher } from './generated/envoy/extensions/transport_sockets/tls/v3/SubjectAltNameMatcher.js';
