import t from 'tap';
import { lookupType } from '../../src/envoy/protos.js';
import { countEntries, emptyFacts, readHttpEntry, readTcpEntry, scanMessage } from '../../src/telemetry/als-wire.js';
import { formatResponseFlagMask, formatResponseFlags } from '../../src/telemetry/response-flags.js';
import { encodeStreamMessage, httpEntry, identifier, tcpEntry } from './helpers/envoy-als.js';

const HTTP = lookupType('envoy.data.accesslog.v3.HTTPAccessLogEntry');
const TCP = lookupType('envoy.data.accesslog.v3.TCPAccessLogEntry');

function encode(type: typeof HTTP, value: Record<string, unknown>): Uint8Array {
  return type.encode(type.fromObject(value)).finish();
}

/** The same facts, read the slow, obviously-right way: protobufjs decode of the whole entry. */
function viaProtobufjs(type: typeof HTTP, bytes: Uint8Array): Record<string, unknown> {
  const e = type.toObject(type.decode(bytes), { longs: Number, enums: String, defaults: false }) as any;
  const c = e.common_properties ?? {};
  const ms = (d: any) => (d ? Number(d.seconds ?? 0) * 1000 + (d.nanos ?? 0) / 1e6 : -1);
  return {
    downstreamRemoteIp: c.downstream_remote_address?.socket_address?.address ?? '',
    downstreamLocalIp: c.downstream_local_address?.socket_address?.address ?? '',
    upstreamRemoteIp: c.upstream_remote_address?.socket_address?.address ?? '',
    upstreamCluster: c.upstream_cluster ?? '',
    tls: c.tls_properties !== undefined,
    peerUriSan: c.tls_properties?.peer_certificate_properties?.subject_alt_name?.[0]?.uri ?? '',
    localUriSan: c.tls_properties?.local_certificate_properties?.subject_alt_name?.[0]?.uri ?? '',
    flags: formatResponseFlags(c.response_flags),
    durationMs: c.duration ? ms(c.duration) : ms(c.time_to_last_downstream_tx_byte),
    wireSent: c.downstream_wire_bytes_sent ?? 0,
    wireReceived: c.downstream_wire_bytes_received ?? 0,
    streamId: c.stream_id ?? '',
    authority: e.request?.authority ?? '',
    responseCode: e.response?.response_code?.value ?? 0,
    requestBytes: (e.request?.request_headers_bytes ?? 0) + (e.request?.request_body_bytes ?? 0),
    responseBytes: (e.response?.response_headers_bytes ?? 0) + (e.response?.response_body_bytes ?? 0),
    contentType: e.request?.request_headers?.['content-type'] ?? '',
    grpcStatus: e.response?.response_trailers?.['grpc-status'] ?? e.response?.response_headers?.['grpc-status'] ?? '',
    received: e.connection_properties?.received_bytes ?? 0,
    sent: e.connection_properties?.sent_bytes ?? 0,
  };
}

function viaFastPath(kind: 'http' | 'tcp', bytes: Uint8Array): Record<string, unknown> {
  const f = emptyFacts();
  (kind === 'http' ? readHttpEntry : readTcpEntry)(bytes, f);
  return {
    downstreamRemoteIp: f.downstreamRemoteIp, downstreamLocalIp: f.downstreamLocalIp, upstreamRemoteIp: f.upstreamRemoteIp,
    upstreamCluster: f.upstreamCluster, tls: f.tls, peerUriSan: f.peerUriSan, localUriSan: f.localUriSan,
    flags: formatResponseFlagMask(f.responseFlags), durationMs: f.durationMs, wireSent: f.downstreamWireBytesSent,
    wireReceived: f.downstreamWireBytesReceived, streamId: f.streamId, authority: f.authority, responseCode: f.responseCode,
    requestBytes: f.requestHeadersBytes + f.requestBodyBytes, responseBytes: f.responseHeadersBytes + f.responseBodyBytes,
    contentType: f.contentType, grpcStatus: f.grpcStatus, received: f.receivedBytes, sent: f.sentBytes,
  };
}

const mtls = { peerSan: 'spiffe://cluster.local/ns/default/sa/productpage', localSan: 'spiffe://cluster.local/ns/default/sa/reviews' };

t.test('the fast reader agrees with a full protobufjs decode, entry by entry', async (t) => {
  const http: [string, Record<string, unknown>][] = [
    ['inbound mTLS 200', httpEntry({ downstreamRemote: '10.0.0.1:51000', downstreamLocal: '10.0.0.2:9080', upstreamCluster: 'inbound|9080||', tls: mtls, responseCode: 200, durationMs: 12.5, wireBytesSent: 700, wireBytesReceived: 210 })],
    ['outbound 503 UF,URX', httpEntry({ upstreamRemote: '10.0.0.3:9080', upstreamCluster: 'outbound|9080||reviews.default.svc.cluster.local', responseCode: 503, flags: ['upstream_connection_failure', 'upstream_retry_limit_exceeded'], durationMs: 3001 })],
    ['gRPC status in trailers', httpEntry({ contentType: 'application/grpc', grpcStatus: { value: '14', in: 'trailers' }, responseCode: 200 })],
    ['gRPC trailers-only', httpEntry({ contentType: 'application/grpc+proto', grpcStatus: { value: '7', in: 'headers' }, responseCode: 200 })],
    ['no response (DC)', httpEntry({ flags: ['downstream_connection_termination'] })],
    ['UAEX and every flag', httpEntry({ flags: ['failed_local_healthcheck', 'unauthorized_details', 'no_route_found', 'downstream_remote_reset', 'dns_resolution_failure'] })],
    ['peer without SAN (TLS, no client cert)', httpEntry({ tls: { localSan: mtls.localSan }, responseCode: 200 })],
    ['non-ASCII authority', httpEntry({ authority: 'bücher.example:80', responseCode: 404 })],
    ['long stream id', httpEntry({ streamId: 'x'.repeat(300), responseCode: 200 })],
  ];
  for (const [name, entry] of http) {
    const bytes = encode(HTTP, entry);
    t.strictSame(viaFastPath('http', bytes), viaProtobufjs(HTTP, bytes), name);
    // grpc-js hands Buffers; a plain Uint8Array takes the other string path and must agree.
    t.strictSame(viaFastPath('http', new Uint8Array(bytes)), viaProtobufjs(HTTP, bytes), `${name} (Uint8Array)`);
  }
  const tcp: [string, Record<string, unknown>][] = [
    ['inbound mTLS connection end', tcpEntry({ downstreamRemote: '10.0.0.1:51000', tls: mtls, receivedBytes: 1234, sentBytes: 98765, accessLogType: 'TcpConnectionEnd', streamId: 'c1' })],
    ['listener NR, plaintext', tcpEntry({ downstreamRemote: '10.0.0.9:40000', downstreamLocal: '10.0.0.2:9080', flags: ['no_route_found'] })],
    ['bytes beyond 2^32', tcpEntry({ receivedBytes: 2 ** 40 + 7, sentBytes: 2 ** 33 })],
  ];
  for (const [name, entry] of tcp) {
    const bytes = encode(TCP, entry);
    t.strictSame(viaFastPath('tcp', bytes), viaProtobufjs(TCP, bytes), name);
  }
});

t.test('response flags print as Envoy prints them', async (t) => {
  const table: [string[], string][] = [
    [[], '-'],
    [['no_route_found'], 'NR'],
    // Envoy's order, not the order they were set in.
    [['upstream_retry_limit_exceeded', 'upstream_connection_failure'], 'UF,URX'],
    [['downstream_connection_termination', 'no_healthy_upstream'], 'UH,DC'],
    [['unauthorized_details'], 'UAEX'],
    [['overload_manager', 'failed_local_healthcheck', 'downstream_remote_reset'], 'LH,OM,DR'],
  ];
  for (const [flags, want] of table) {
    const bytes = encode(HTTP, httpEntry({ flags }));
    const f = emptyFacts();
    readHttpEntry(bytes, f);
    t.equal(formatResponseFlagMask(f.responseFlags), want, flags.join('+') || 'none');
  }
});

t.test('scanMessage splits a batch; the identifier rides only where it was sent', async (t) => {
  const ident = identifier({ id: 'sidecar~10.0.0.2~reviews.default~default.svc.cluster.local' }, 'meshd.inbound');
  const first = scanMessage(encodeStreamMessage({ identifier: ident, http_logs: { log_entry: [httpEntry(), httpEntry(), httpEntry()] } }));
  t.ok(first.identifier);
  t.equal(first.http.length, 3);
  t.equal(first.tcp.length, 0);
  const next = scanMessage(encodeStreamMessage({ tcp_logs: { log_entry: [tcpEntry(), tcpEntry()] } }));
  t.equal(next.identifier, undefined);
  t.equal(next.tcp.length, 2);
  t.equal(countEntries(encodeStreamMessage({ http_logs: { log_entry: [httpEntry()] } })), 1);
});

t.test('a garbage entry is isolated: it throws alone and the rest of the batch reads', async (t) => {
  const good = encode(HTTP, httpEntry({ responseCode: 200 }));
  const garbage: Uint8Array[] = [
    Uint8Array.from([0x0a, 0x05, 0x01]), // common_properties claims 5 bytes, has 1
    Uint8Array.from([0x0f]), // wire type 7
    Uint8Array.from([0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), // 11-byte varint
    Uint8Array.from([0x0b]), // field 1 as a group start
    Uint8Array.from([0x00, 0x00]), // field number 0
    Uint8Array.from([0x08, 0x01]), // common_properties as a varint
  ];
  for (const g of garbage) {
    t.throws(() => readHttpEntry(g, emptyFacts()), { name: 'WireError' }, Buffer.from(g).toString('hex'));
  }
  // A batch: an empty (valid, all-default) entry, two garbage entries, then a real one in a second batch.
  // Each entry is its own length-delimited range, so garbage cannot swallow its neighbours.
  const entry = (b: Uint8Array) => [0x0a, b.length, ...b];
  const batch = Uint8Array.from([...entry(good.subarray(0, 0)), ...entry(garbage[0]!), ...entry(garbage[1]!)]);
  const msg = Uint8Array.from([0x12, batch.length, ...batch]);
  const scanned = scanMessage(Buffer.concat([Buffer.from(msg), encodeStreamMessage({ http_logs: { log_entry: [httpEntry({ responseCode: 201 })] } })]));
  t.equal(scanned.http.length, 4);
  const outcomes = scanned.http.map((e) => {
    try {
      const f = emptyFacts();
      readHttpEntry(e, f);
      return f.responseCode;
    } catch {
      return 'bad';
    }
  });
  t.strictSame(outcomes, [0, 'bad', 'bad', 201]);
});

t.test('a message that is not protobuf at all fails the scan', async (t) => {
  t.throws(() => scanMessage(Buffer.from('GET / HTTP/1.1\r\n\r\n')), { name: 'WireError' });
  t.equal(countEntries(Buffer.from([0x12, 0x50, 0x01])), 0);
});
