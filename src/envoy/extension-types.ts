/** Type URLs of the extension configs the generators pack into Any fields (any.ts types each). */
const T = 'type.googleapis.com/';

export const ExtensionType = {
  DownstreamTlsContext: `${T}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
  UpstreamTlsContext: `${T}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
  RawBuffer: `${T}envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer`,
  TlsInspector: `${T}envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector`,
  HttpConnectionManager: `${T}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
  TcpProxy: `${T}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`,
  Router: `${T}envoy.extensions.filters.http.router.v3.Router`,
  HttpProtocolOptions: `${T}envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
} as const;

/** Well-known extension names (Envoy's canonical names). */
export const ExtensionName = {
  Tls: 'envoy.transport_sockets.tls',
  RawBuffer: 'envoy.transport_sockets.raw_buffer',
  TlsInspector: 'envoy.filters.listener.tls_inspector',
  HttpConnectionManager: 'envoy.filters.network.http_connection_manager',
  TcpProxy: 'envoy.filters.network.tcp_proxy',
  Router: 'envoy.filters.http.router',
  HttpProtocolOptions: 'envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
} as const;
