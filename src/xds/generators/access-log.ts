import {
  httpAccessLog,
  listenerNoFilterChainAccessLog,
  tcpAccessLog,
  tcpProxyAccessLogOptions,
  type TrafficDirection,
} from '../../telemetry/access-log-config.js';
import type { AccessLog, TcpAccessLogOptions } from '../../envoy/messages.js';

/**
 * The single integration point between the generated config and telemetry's access-log
 * builders (src/telemetry/access-log-config.ts). Every listener, HTTP connection
 * manager and tcp_proxy the sidecar generators build takes its logging from here.
 *
 * The logs stream over gRPC to the `meshd-als` cluster that `meshd bootstrap` defines.
 */
export type { TrafficDirection };

export function httpAccessLogs(direction: TrafficDirection): AccessLog[] {
  return [httpAccessLog(direction)];
}

export function tcpAccessLogs(direction: TrafficDirection): AccessLog[] {
  return [tcpAccessLog(direction)];
}

/** tcp_proxy access_log_options: an entry at upstream connect and periodic flushes (istio_tcp_* semantics). */
export function tcpProxyLogOptions(): TcpAccessLogOptions {
  return tcpProxyAccessLogOptions();
}

/** Listener-level log filtered on response flag NR: connections no filter chain matched. */
export function noFilterChainAccessLogs(direction: TrafficDirection): AccessLog[] {
  return [listenerNoFilterChainAccessLog(direction)];
}
