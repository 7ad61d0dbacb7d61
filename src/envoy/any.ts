import type { FileAccessLog } from './generated/envoy/extensions/access_loggers/file/v3/FileAccessLog.js';
import type { HttpGrpcAccessLogConfig } from './generated/envoy/extensions/access_loggers/grpc/v3/HttpGrpcAccessLogConfig.js';
import type { TcpGrpcAccessLogConfig } from './generated/envoy/extensions/access_loggers/grpc/v3/TcpGrpcAccessLogConfig.js';
import type { StderrAccessLog } from './generated/envoy/extensions/access_loggers/stream/v3/StderrAccessLog.js';
import type { StdoutAccessLog } from './generated/envoy/extensions/access_loggers/stream/v3/StdoutAccessLog.js';
import type { RBAC as HttpRbac } from './generated/envoy/extensions/filters/http/rbac/v3/RBAC.js';
import type { RBACPerRoute as HttpRbacPerRoute } from './generated/envoy/extensions/filters/http/rbac/v3/RBACPerRoute.js';
import type { Router } from './generated/envoy/extensions/filters/http/router/v3/Router.js';
import type { HttpInspector } from './generated/envoy/extensions/filters/listener/http_inspector/v3/HttpInspector.js';
import type { OriginalDst } from './generated/envoy/extensions/filters/listener/original_dst/v3/OriginalDst.js';
import type { TlsInspector } from './generated/envoy/extensions/filters/listener/tls_inspector/v3/TlsInspector.js';
import type { HttpConnectionManager } from './generated/envoy/extensions/filters/network/http_connection_manager/v3/HttpConnectionManager.js';
import type { RBAC as NetworkRbac } from './generated/envoy/extensions/filters/network/rbac/v3/RBAC.js';
import type { TcpProxy } from './generated/envoy/extensions/filters/network/tcp_proxy/v3/TcpProxy.js';
import type { RawBuffer } from './generated/envoy/extensions/transport_sockets/raw_buffer/v3/RawBuffer.js';
import type { DownstreamTlsContext } from './generated/envoy/extensions/transport_sockets/tls/v3/DownstreamTlsContext.js';
import type { SPIFFECertValidatorConfig } from './generated/envoy/extensions/transport_sockets/tls/v3/SPIFFECertValidatorConfig.js';
import type { UpstreamTlsContext } from './generated/envoy/extensions/transport_sockets/tls/v3/UpstreamTlsContext.js';
import type { HttpProtocolOptions } from './generated/envoy/extensions/upstreams/http/v3/HttpProtocolOptions.js';
import type { UriTemplateMatchConfig } from './generated/envoy/extensions/path/match/uri_template/v3/UriTemplateMatchConfig.js';

/**
 * google.protobuf.Any as meshd writes it for protobufjs: `{'@type': <type URL>, ...the message's
 * fields}` (protobufjs's Any wrapper packs that form). The type URL picks the message, so the
 * fields of a typed_config, a transport socket or a filter are checked like any other field:
 *
 *   typed_config: { '@type': ExtensionType.Router }                      // ok
 *   typed_config: { '@type': ExtensionType.TcpProxy, stat_prefx: 'x' }   // compile error
 *
 * Every extension an Any may hold is listed here, by type URL; they are the extension messages
 * of the .proto files src/envoy/protos.ts loads (an Any of any other type could not be encoded).
 */
interface PackableMessages {
  'type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog': FileAccessLog;
  'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig': HttpGrpcAccessLogConfig;
  'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig': TcpGrpcAccessLogConfig;
  'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StderrAccessLog': StderrAccessLog;
  'type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog': StdoutAccessLog;
  'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC': HttpRbac;
  'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute': HttpRbacPerRoute;
  'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router': Router;
  'type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector': HttpInspector;
  'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst': OriginalDst;
  'type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector': TlsInspector;
  'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager': HttpConnectionManager;
  'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC': NetworkRbac;
  'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy': TcpProxy;
  'type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer': RawBuffer;
  'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext': DownstreamTlsContext;
  'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig': SPIFFECertValidatorConfig;
  'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext': UpstreamTlsContext;
  'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions': HttpProtocolOptions;
  'type.googleapis.com/envoy.extensions.path.match.uri_template.v3.UriTemplateMatchConfig': UriTemplateMatchConfig;
}

type PackableTypeUrl = keyof PackableMessages;

/** One extension packed in an Any: its type URL and its fields, side by side. */
export type Packed<U extends PackableTypeUrl> = { '@type': U } & PackableMessages[U];

/** Any of the packable extensions; `'@type'` tells TypeScript which. */
export type PackedAny = { [U in PackableTypeUrl]: Packed<U> }[PackableTypeUrl];

/** The extension an Any holds when its type URL is `typeUrl`; undefined for any other (or none). */
export function packedAs<U extends PackableTypeUrl>(any: PackedAny | null | undefined, typeUrl: U): Packed<U> | undefined {
  return any?.['@type'] === typeUrl ? (any as Packed<U>) : undefined;
}
