import { tcpAccessLogs, tcpProxyLogOptions, type TrafficDirection } from './access-log.js';
import { ExtensionName, ExtensionType } from '../../envoy/extension-types.js';
import type { Filter } from '../../envoy/messages.js';

/**
 * The tcp_proxy network filter of a TCP port, inbound or outbound, as Istio writes it: all
 * bytes to one cluster, stats under the cluster's name, and the access logs behind istio_tcp_*.
 */
export function tcpProxyFilter(cluster: string, direction: TrafficDirection): Filter {
  return {
    name: ExtensionName.TcpProxy,
    typed_config: {
      '@type': ExtensionType.TcpProxy,
      stat_prefix: cluster,
      cluster,
      access_log: tcpAccessLogs(direction),
      access_log_options: tcpProxyLogOptions(),
    },
  };
}
