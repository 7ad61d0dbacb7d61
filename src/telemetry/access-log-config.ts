import type { AccessLog, CommonGrpcAccessLogConfig, Duration, TcpAccessLogOptions } from '../envoy/messages.js';

/**
 * The Envoy side of meshd's telemetry: access-log configs the listener and cluster
 * generators put into generated resources. Pure functions returning typed Envoy messages
 * (src/envoy/messages.ts: snake_case fields, '@type' for Any), so they encode with
 * `encodeMessage` like every other generated resource.
 *
 * Stock Envoy cannot emit istio_* metrics (that filter exists only in Istio's proxy
 * build), so every sidecar streams gRPC access logs to meshd, which builds the metrics
 * (src/telemetry/ingester.ts). The log_name tells meshd which side logged:
 *
 *   log_name                    logged by                                reporter
 *   meshd.inbound               inbound HCM / tcp_proxy (server sidecar)  destination
 *   meshd.outbound              outbound HCM / tcp_proxy (client sidecar) source
 *   meshd.inbound.listener      inbound listener, no filter chain (NR)    destination
 *   meshd.outbound.listener     outbound listener, no filter chain (NR)   source
 */

export type TrafficDirection = 'inbound' | 'outbound';

/** The static cluster the meshd bootstrap defines for the access log service (mTLS to meshd's gRPC port). */
export const ALS_CLUSTER_NAME = 'meshd-als';

export const ACCESS_LOG_NAMES = {
  inbound: 'meshd.inbound',
  outbound: 'meshd.outbound',
  inboundListener: 'meshd.inbound.listener',
  outboundListener: 'meshd.outbound.listener',
} as const;

export const HTTP_GRPC_ACCESS_LOG_TYPE =
  'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.HttpGrpcAccessLogConfig';
export const TCP_GRPC_ACCESS_LOG_TYPE =
  'type.googleapis.com/envoy.extensions.access_loggers.grpc.v3.TcpGrpcAccessLogConfig';

/** What meshd learns from a log name: the reporting side, and whether it is a listener-level log. */
export interface LogNameInfo {
  direction: TrafficDirection;
  listener: boolean;
}

/** Parses a log name of the convention above; undefined for any other name. */
export function parseLogName(logName: string): LogNameInfo | undefined {
  switch (logName) {
    case ACCESS_LOG_NAMES.inbound: return { direction: 'inbound', listener: false };
    case ACCESS_LOG_NAMES.outbound: return { direction: 'outbound', listener: false };
    case ACCESS_LOG_NAMES.inboundListener: return { direction: 'inbound', listener: true };
    case ACCESS_LOG_NAMES.outboundListener: return { direction: 'outbound', listener: true };
    default: return undefined;
  }
}

export interface AccessLogOptions {
  /** Defaults to ALS_CLUSTER_NAME. */
  clusterName?: string;
  /** Envoy's buffer_flush_interval; Envoy's default is 1 s. */
  bufferFlushIntervalMs?: number;
  /** Envoy's buffer_size_bytes; Envoy's default is 16384, 0 disables batching. */
  bufferSizeBytes?: number;
}

/**
 * Headers meshd needs beyond the fixed entry fields: content-type decides
 * request_protocol "grpc", grpc-status (a trailer, or a header on trailers-only
 * responses) gives grpc_response_status.
 */
export const LOGGED_REQUEST_HEADERS = ['content-type'] as const;
export const LOGGED_RESPONSE_HEADERS = ['grpc-status'] as const;
export const LOGGED_RESPONSE_TRAILERS = ['grpc-status'] as const;

function duration(ms: number): Duration {
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 };
}

function commonConfig(logName: string, options: AccessLogOptions): CommonGrpcAccessLogConfig {
  const config: CommonGrpcAccessLogConfig = {
    log_name: logName,
    grpc_service: { envoy_grpc: { cluster_name: options.clusterName ?? ALS_CLUSTER_NAME } },
    transport_api_version: 'V3',
  };
  if (options.bufferFlushIntervalMs !== undefined) config.buffer_flush_interval = duration(options.bufferFlushIntervalMs);
  if (options.bufferSizeBytes !== undefined) config.buffer_size_bytes = { value: options.bufferSizeBytes };
  return config;
}

/** envoy.config.accesslog.v3.AccessLog for an HTTP connection manager's `access_log`. */
export function httpAccessLog(direction: TrafficDirection, options: AccessLogOptions = {}): AccessLog {
  return {
    name: 'envoy.access_loggers.http_grpc',
    typed_config: {
      '@type': HTTP_GRPC_ACCESS_LOG_TYPE,
      common_config: commonConfig(ACCESS_LOG_NAMES[direction], options),
      additional_request_headers_to_log: [...LOGGED_REQUEST_HEADERS],
      additional_response_headers_to_log: [...LOGGED_RESPONSE_HEADERS],
      additional_response_trailers_to_log: [...LOGGED_RESPONSE_TRAILERS],
    },
  };
}

/** envoy.config.accesslog.v3.AccessLog for a tcp_proxy's `access_log`. */
export function tcpAccessLog(direction: TrafficDirection, options: AccessLogOptions = {}): AccessLog {
  return {
    name: 'envoy.access_loggers.tcp_grpc',
    typed_config: {
      '@type': TCP_GRPC_ACCESS_LOG_TYPE,
      common_config: commonConfig(ACCESS_LOG_NAMES[direction], options),
    },
  };
}

/**
 * A listener-level `access_log` (Listener.access_log) filtered on response flag NR.
 * Envoy runs a listener's access logs only for connections that matched no filter
 * chain, e.g. a plaintext client on a STRICT port; without this log they are invisible
 * (Istio adds the same filter: pilot/pkg/networking/core/accesslog.go, "NR: no filter
 * chain found"). meshd counts each such entry as a refused request with
 * response_flags="NR".
 */
export function listenerNoFilterChainAccessLog(
  direction: TrafficDirection = 'inbound',
  options: AccessLogOptions = {},
): AccessLog {
  return {
    name: 'envoy.access_loggers.tcp_grpc',
    filter: { response_flag_filter: { flags: ['NR'] } },
    typed_config: {
      '@type': TCP_GRPC_ACCESS_LOG_TYPE,
      common_config: commonConfig(
        direction === 'inbound' ? ACCESS_LOG_NAMES.inboundListener : ACCESS_LOG_NAMES.outboundListener,
        options,
      ),
    },
  };
}

/**
 * tcp_proxy's `access_log_options` (TcpProxy.TcpAccessLogOptions): an entry when the
 * upstream connects (istio_tcp_connections_opened_total counts then, not at close) and
 * periodic entries so long-lived connections report bytes while open, as Istio's
 * tcp stats do. Optional: without it meshd counts open and close at connection end.
 */
export function tcpProxyAccessLogOptions(flushIntervalMs = 10_000): TcpAccessLogOptions {
  return {
    access_log_flush_interval: duration(flushIntervalMs),
    flush_access_log_on_connected: true,
  };
}
