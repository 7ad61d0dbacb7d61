/** Telemetry's public API: what `meshd serve` and the Envoy config generators use. */
export {
  ALS_CLUSTER_NAME, ACCESS_LOG_NAMES, HTTP_GRPC_ACCESS_LOG_TYPE, TCP_GRPC_ACCESS_LOG_TYPE,
  httpAccessLog, tcpAccessLog, listenerNoFilterChainAccessLog, tcpProxyAccessLogOptions, parseLogName,
  type AccessLogOptions, type TrafficDirection, type LogNameInfo,
} from './access-log-config.js';
export {
  addAccessLogService, accessLogServiceDefinition, ACCESS_LOG_SERVICE_NAME, STREAM_ACCESS_LOGS_PATH,
  type AccessLogServiceDeps, type AccessLogServiceHandle,
} from './als-service.js';
export { AccessLogIngester, type AccessLogIngesterOptions } from './ingester.js';
export {
  IstioMetrics, HTTP_LABEL_NAMES, TCP_LABEL_NAMES, ENVOY_DEFAULT_BUCKETS,
  DEFAULT_MAX_SERIES_PER_METRIC, DEFAULT_MAX_HISTOGRAM_SERIES_PER_METRIC,
} from './istio-metrics.js';
export { meshWorkloadResolver } from './mesh-resolver.js';
export { UNKNOWN_RESOLVER, type WorkloadInfo, type WorkloadResolver, type ServiceInfo } from './workload-resolver.js';
export { formatResponseFlags, NO_RESPONSE_FLAGS } from './response-flags.js';
