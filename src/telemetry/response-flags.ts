/**
 * Envoy's response flags as the `response_flags` label: the short codes Envoy prints
 * for %RESPONSE_FLAGS%, joined with "," in the order of Envoy's own flag table
 * (ResponseFlagUtils::ALL_RESPONSE_STRINGS_FLAGS in source/common/stream_info/utility.h),
 * and "-" when none is set.
 *
 * envoy.data.accesslog.v3.ResponseFlags has one field per flag, numbered in that same
 * order; RESPONSE_FLAG_CODES is indexed by field number.
 */
export const NO_RESPONSE_FLAGS = '-';

/** [field number, proto field name, short code], in Envoy's print order. */
export const RESPONSE_FLAG_TABLE: readonly (readonly [number, string, string])[] = [
  [1, 'failed_local_healthcheck', 'LH'],
  [2, 'no_healthy_upstream', 'UH'],
  [3, 'upstream_request_timeout', 'UT'],
  [4, 'local_reset', 'LR'],
  [5, 'upstream_remote_reset', 'UR'],
  [6, 'upstream_connection_failure', 'UF'],
  [7, 'upstream_connection_termination', 'UC'],
  [8, 'upstream_overflow', 'UO'],
  [9, 'no_route_found', 'NR'],
  [10, 'delay_injected', 'DI'],
  [11, 'fault_injected', 'FI'],
  [12, 'rate_limited', 'RL'],
  [13, 'unauthorized_details', 'UAEX'],
  [14, 'rate_limit_service_error', 'RLSE'],
  [15, 'downstream_connection_termination', 'DC'],
  [16, 'upstream_retry_limit_exceeded', 'URX'],
  [17, 'stream_idle_timeout', 'SI'],
  [18, 'invalid_envoy_request_headers', 'IH'],
  [19, 'downstream_protocol_error', 'DPE'],
  [20, 'upstream_max_stream_duration_reached', 'UMSDR'],
  [21, 'response_from_cache_filter', 'RFCF'],
  [22, 'no_filter_config_found', 'NFCF'],
  [23, 'duration_timeout', 'DT'],
  [24, 'upstream_protocol_error', 'UPE'],
  [25, 'no_cluster_found', 'NC'],
  [26, 'overload_manager', 'OM'],
  [27, 'dns_resolution_failure', 'DF'],
  [28, 'downstream_remote_reset', 'DR'],
];

export const MAX_RESPONSE_FLAG_FIELD = 28;

/** Short code by field number (index 0 unused). */
export const RESPONSE_FLAG_CODES: readonly string[] = (() => {
  const codes: string[] = new Array(MAX_RESPONSE_FLAG_FIELD + 1).fill('');
  for (const [field, , code] of RESPONSE_FLAG_TABLE) codes[field] = code;
  return codes;
})();

/**
 * A set of flags as a bit mask (bit n-1 for field n), the compact form the wire reader
 * produces. Formatting is memoised: a mesh sees a handful of distinct combinations.
 */
const formatted = new Map<number, string>();

export function formatResponseFlagMask(mask: number): string {
  if (mask === 0) return NO_RESPONSE_FLAGS;
  let text = formatted.get(mask);
  if (text === undefined) {
    const codes: string[] = [];
    for (let field = 1; field <= MAX_RESPONSE_FLAG_FIELD; field++) {
      if (mask & (1 << (field - 1))) codes.push(RESPONSE_FLAG_CODES[field]!);
    }
    text = codes.join(',');
    if (formatted.size < 4096) formatted.set(mask, text);
  }
  return text;
}

/** The same from a decoded ResponseFlags object (protobufjs toObject form); for tests and tools. */
export function formatResponseFlags(flags: Record<string, unknown> | undefined | null): string {
  if (!flags) return NO_RESPONSE_FLAGS;
  let mask = 0;
  for (const [field, name] of RESPONSE_FLAG_TABLE) {
    const value = flags[name];
    // unauthorized_details is a message: present means UAEX, whatever its reason.
    if (value === true || (field === 13 && value !== undefined && value !== null && value !== false)) {
      mask |= 1 << (field - 1);
    }
  }
  return formatResponseFlagMask(mask);
}
