import * as grpc from '@grpc/grpc-js';
import { lookupType } from '../../../src/envoy/protos.js';
import { STREAM_ACCESS_LOGS_PATH } from '../../../src/telemetry/als-service.js';

/**
 * Access-log entries and streams as Envoy's gRPC access loggers produce them
 * (source/extensions/access_loggers/grpc): entries built on Envoy's own protos
 * (envoy.data.accesslog.v3), the identifier {node, log_name} only in a stream's first
 * message, then batches of HTTP or TCP entries.
 */

type Obj = Record<string, unknown>;

const MESSAGE = 'envoy.service.accesslog.v3.StreamAccessLogsMessage';

function address(ipPort: string | undefined): Obj | undefined {
  if (!ipPort) return undefined;
  const i = ipPort.lastIndexOf(':');
  return { socket_address: { address: ipPort.slice(0, i), port_value: Number(ipPort.slice(i + 1)) } };
}

function duration(ms: number): Obj {
  return { seconds: Math.floor(ms / 1000), nanos: Math.round((ms % 1000) * 1e6) };
}

export interface CommonOptions {
  /** "ip:port" */
  downstreamRemote?: string;
  downstreamLocal?: string;
  upstreamRemote?: string;
  upstreamCluster?: string;
  /** TLS on the downstream connection; SANs are spiffe:// URIs. */
  tls?: { peerSan?: string; localSan?: string };
  /** ResponseFlags field names, e.g. ['no_route_found']. */
  flags?: string[];
  durationMs?: number;
  wireBytesSent?: number;
  wireBytesReceived?: number;
  accessLogType?: string;
  streamId?: string;
}

function common(o: CommonOptions, startMs: number): Obj {
  const flags: Obj = {};
  for (const f of o.flags ?? []) flags[f] = f === 'unauthorized_details' ? { reason: 'EXTERNAL_SERVICE' } : true;
  const c: Obj = {
    sample_rate: 1,
    downstream_remote_address: address(o.downstreamRemote),
    downstream_local_address: address(o.downstreamLocal),
    start_time: { seconds: Math.floor(startMs / 1000), nanos: (startMs % 1000) * 1e6 },
    time_to_last_rx_byte: duration(0.2),
    upstream_remote_address: address(o.upstreamRemote),
    upstream_local_address: o.upstreamRemote ? address('10.0.0.99:40000') : undefined,
    upstream_cluster: o.upstreamCluster ?? '',
    response_flags: flags,
    route_name: 'default',
    downstream_direct_remote_address: address(o.downstreamRemote),
    upstream_request_attempt_count: 1,
    stream_id: o.streamId ?? '',
    downstream_wire_bytes_sent: o.wireBytesSent ?? 0,
    downstream_wire_bytes_received: o.wireBytesReceived ?? 0,
    access_log_type: o.accessLogType ?? 'NotSet',
  };
  if (o.durationMs !== undefined) {
    c.duration = duration(o.durationMs);
    c.time_to_last_downstream_tx_byte = duration(o.durationMs);
    c.time_to_first_upstream_tx_byte = duration(Math.min(0.3, o.durationMs));
    c.time_to_last_upstream_rx_byte = duration(o.durationMs * 0.9);
  }
  if (o.tls) {
    const san = (uri: string | undefined) => (uri ? { subject_alt_name: [{ uri }], subject: '', issuer: 'O=cluster.local' } : undefined);
    c.tls_properties = {
      tls_version: 'TLSv1_3',
      tls_cipher_suite: { value: 0x1301 },
      tls_sni_hostname: '',
      local_certificate_properties: san(o.tls.localSan),
      peer_certificate_properties: san(o.tls.peerSan),
      tls_session_id: 'abcdef0123456789',
    };
  }
  for (const k of Object.keys(c)) if (c[k] === undefined) delete c[k];
  return c;
}

export interface HttpEntryOptions extends CommonOptions {
  method?: string;
  authority?: string;
  path?: string;
  responseCode?: number;
  contentType?: string;
  /** grpc-status in the trailers (the normal case) or the headers (trailers-only). */
  grpcStatus?: { value: string; in: 'trailers' | 'headers' };
  requestBytes?: { headers: number; body: number };
  responseBytes?: { headers: number; body: number };
}

let requestCounter = 0;

/** An HTTPAccessLogEntry (envoy.data.accesslog.v3), in protobufjs object form. */
export function httpEntry(o: HttpEntryOptions = {}): Obj {
  const start = 1_790_000_000_000 + requestCounter;
  const request: Obj = {
    request_method: o.method ?? 'GET',
    scheme: 'http',
    authority: o.authority ?? 'reviews.default.svc.cluster.local:9080',
    path: o.path ?? '/reviews/0',
    user_agent: 'curl/8.5.0',
    request_id: `5b1c7b1e-0f3a-4c2e-9d6e-${String(++requestCounter).padStart(12, '0')}`,
    request_headers_bytes: o.requestBytes?.headers ?? 180,
    request_body_bytes: o.requestBytes?.body ?? 0,
  };
  if (o.contentType) request.request_headers = { 'content-type': o.contentType };
  const response: Obj = {
    response_headers_bytes: o.responseBytes?.headers ?? 120,
    response_body_bytes: o.responseBytes?.body ?? 295,
    response_code_details: 'via_upstream',
  };
  if (o.responseCode !== undefined) response.response_code = { value: o.responseCode };
  if (o.grpcStatus?.in === 'trailers') response.response_trailers = { 'grpc-status': o.grpcStatus.value };
  if (o.grpcStatus?.in === 'headers') response.response_headers = { 'grpc-status': o.grpcStatus.value };
  return { common_properties: common(o, start), protocol_version: 'HTTP11', request, response };
}

export interface TcpEntryOptions extends CommonOptions {
  receivedBytes?: number;
  sentBytes?: number;
}

/** A TCPAccessLogEntry. */
export function tcpEntry(o: TcpEntryOptions = {}): Obj {
  return {
    common_properties: common(o, 1_790_000_000_000),
    connection_properties: { received_bytes: o.receivedBytes ?? 0, sent_bytes: o.sentBytes ?? 0 },
  };
}

export interface NodeOptions {
  id: string;
  cluster?: string;
  metadata?: Record<string, unknown>;
}

/** google.protobuf.Struct from plain JSON (protobufjs's own Struct/Value types: camelCase fields, snake_case would be dropped). */
function struct(json: Record<string, unknown>): Obj {
  const value = (v: unknown): Obj => {
    if (v === null) return { nullValue: 'NULL_VALUE' };
    if (typeof v === 'string') return { stringValue: v };
    if (typeof v === 'number') return { numberValue: v };
    if (typeof v === 'boolean') return { boolValue: v };
    if (Array.isArray(v)) return { listValue: { values: v.map(value) } };
    return { structValue: struct(v as Record<string, unknown>) };
  };
  return { fields: Object.fromEntries(Object.entries(json).map(([k, v]) => [k, value(v)])) };
}

export function identifier(node: NodeOptions, logName: string): Obj {
  return {
    node: {
      id: node.id,
      cluster: node.cluster ?? 'sidecar',
      metadata: struct(node.metadata ?? {}),
      user_agent_name: 'envoy',
      user_agent_build_version: { version: { major_number: 1, minor_number: 36, patch: 2 } },
    },
    log_name: logName,
  };
}

/** Encodes a StreamAccessLogsMessage with Envoy's proto. */
export function encodeStreamMessage(message: Obj): Buffer {
  const type = lookupType(MESSAGE);
  const err = type.verify(type.fromObject(message));
  if (err) throw new Error(`not a StreamAccessLogsMessage: ${err}`);
  return Buffer.from(type.encode(type.fromObject(message)).finish());
}

export interface AlsCallResult {
  code: grpc.status;
  details: string;
}

/**
 * One StreamAccessLogs call as Envoy makes it: the identifier goes with the first
 * message only. `raw` sends bytes as they are (hostile clients).
 */
export class EnvoyAlsStream {
  private readonly call: grpc.ClientWritableStream<Buffer>;
  private first = true;
  readonly done: Promise<AlsCallResult>;

  constructor(client: grpc.Client, private readonly ident: Obj | undefined, metadata = new grpc.Metadata()) {
    let settle!: (r: AlsCallResult) => void;
    this.done = new Promise((resolve) => (settle = resolve));
    this.call = client.makeClientStreamRequest<Buffer, Buffer>(
      STREAM_ACCESS_LOGS_PATH,
      (b) => b,
      (b) => b,
      metadata,
      {},
      (err) => settle(err ? { code: err.code, details: err.details } : { code: grpc.status.OK, details: '' }),
    );
    this.call.on('error', () => undefined);
  }

  private withIdentifier(message: Obj): Obj {
    if (this.first && this.ident) message = { identifier: this.ident, ...message };
    this.first = false;
    return message;
  }

  sendHttp(entries: Obj[]): Promise<void> {
    return this.raw(encodeStreamMessage(this.withIdentifier({ http_logs: { log_entry: entries } })));
  }

  sendTcp(entries: Obj[]): Promise<void> {
    return this.raw(encodeStreamMessage(this.withIdentifier({ tcp_logs: { log_entry: entries } })));
  }

  /** Writes bytes; resolves when grpc-js has taken them (respects backpressure). */
  raw(bytes: Buffer): Promise<void> {
    return new Promise((resolve) => {
      if (this.call.write(bytes)) resolve();
      else this.call.once('drain', () => resolve());
    });
  }

  /** Half-closes (Envoy never does; a well-behaved test client may). */
  end(): Promise<AlsCallResult> {
    this.call.end();
    return this.done;
  }

  cancel(): void {
    this.call.cancel();
  }
}
