import t from 'tap';
import { decodeMessage, encodeMessage } from '../../src/envoy/protos.js';
import {
  ACCESS_LOG_NAMES, ALS_CLUSTER_NAME, httpAccessLog, listenerNoFilterChainAccessLog, parseLogName,
  tcpAccessLog, tcpProxyAccessLogOptions,
} from '../../src/telemetry/access-log-config.js';

const HCM = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const TCP_PROXY = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
const LISTENER = 'type.googleapis.com/envoy.config.listener.v3.Listener';

/**
 * protobufjs's fromObject ignores unknown keys, so "it encodes" proves little: a
 * round trip through Envoy's protos must give back exactly what was built.
 */
function roundTrip(typeUrl: string, value: Record<string, unknown>): Record<string, unknown> {
  return decodeMessage(typeUrl, encodeMessage(typeUrl, value));
}

t.test('the HTTP access log round-trips through HttpConnectionManager.access_log unchanged', async (t) => {
  for (const direction of ['inbound', 'outbound'] as const) {
    const log = httpAccessLog(direction);
    const hcm = { stat_prefix: 'x', access_log: [log] };
    const back = roundTrip(HCM, hcm) as { access_log: unknown[] };
    t.strictSame(back.access_log, [log], direction);
    const config = (log.typed_config as Record<string, any>);
    t.equal(config.common_config.log_name, ACCESS_LOG_NAMES[direction]);
    t.equal(config.common_config.grpc_service.envoy_grpc.cluster_name, ALS_CLUSTER_NAME);
    t.equal(config.common_config.transport_api_version, 'V3');
    t.same(config.additional_response_trailers_to_log, ['grpc-status']);
    t.same(config.additional_request_headers_to_log, ['content-type']);
  }
});

t.test('the TCP access log and access_log_options round-trip through TcpProxy unchanged', async (t) => {
  const tcp = { stat_prefix: 'x', cluster: 'c', access_log: [tcpAccessLog('outbound', { bufferFlushIntervalMs: 1500, bufferSizeBytes: 0 })], access_log_options: tcpProxyAccessLogOptions(5000) };
  t.same(roundTrip(TCP_PROXY, tcp), tcp) // loose: Duration seconds decode as a string (int64);
  const common = (tcp.access_log[0]!.typed_config as Record<string, any>).common_config;
  t.same(common.buffer_flush_interval, { seconds: 1, nanos: 500_000_000 });
  t.same(common.buffer_size_bytes, { value: 0 });
});

t.test('the listener-level log is filtered on NR and round-trips through Listener.access_log', async (t) => {
  const log = listenerNoFilterChainAccessLog();
  const listener = { name: 'virtualInbound', access_log: [log] };
  t.strictSame(roundTrip(LISTENER, listener), listener);
  t.same(log.filter, { response_flag_filter: { flags: ['NR'] } });
  t.equal((log.typed_config as Record<string, any>).common_config.log_name, 'meshd.inbound.listener');
  t.equal((listenerNoFilterChainAccessLog('outbound', { clusterName: 'als' }).typed_config as Record<string, any>).common_config.grpc_service.envoy_grpc.cluster_name, 'als');
});

t.test('parseLogName maps the convention to direction and level', async (t) => {
  const table: [string, ReturnType<typeof parseLogName>][] = [
    ['meshd.inbound', { direction: 'inbound', listener: false }],
    ['meshd.outbound', { direction: 'outbound', listener: false }],
    ['meshd.inbound.listener', { direction: 'inbound', listener: true }],
    ['meshd.outbound.listener', { direction: 'outbound', listener: true }],
    ['envoy', undefined],
    ['', undefined],
  ];
  for (const [name, want] of table) t.same(parseLogName(name), want, name);
});
