import * as fc from 'fast-check';
import { countEntries, emptyFacts, readHttpEntry, readTcpEntry, scanMessage, WireError } from '../../src/telemetry/als-wire.js';
import { encodeStreamMessage, httpEntry, identifier, tcpEntry } from '../../test/telemetry/helpers/envoy-als.js';
import { ContractViolation, expectedError, type FuzzTarget } from '../target.js';

const tls = { peerSan: 'spiffe://cluster.local/ns/a/sa/b', localSan: 'spiffe://cluster.local/ns/c/sa/d' };

/** The access-log wire reader (src/telemetry/als-wire.ts): StreamAccessLogsMessage bytes from any sidecar. */
export const alsWire: FuzzTarget = {
  name: 'als-wire',
  about: 'scanMessage + readHttpEntry/readTcpEntry: a value or WireError; entries read back as written',
  seeds: () => [
    encodeStreamMessage({ identifier: identifier({ id: 'sidecar~10.0.0.1~a.b~b.svc.cluster.local', metadata: { NAMESPACE: 'b' } }, 'meshd_inbound'), http_logs: { log_entry: [httpEntry({ downstreamRemote: '10.0.0.2:5000', upstreamCluster: 'inbound|8080||', authority: 'a.b:8080', responseCode: 200, durationMs: 4, tls, flags: ['no_route_found'] })] } }),
    encodeStreamMessage({ tcp_logs: { log_entry: [tcpEntry({ downstreamRemote: '10.0.0.2:5000', upstreamRemote: '10.0.0.3:80', receivedBytes: 10, sentBytes: 20, accessLogType: 'TcpConnectionEnd', streamId: 'c1', tls })] } }),
    encodeStreamMessage({ http_logs: { log_entry: [httpEntry({ contentType: 'application/grpc', grpcStatus: { value: '14', in: 'trailers' }, responseCode: 200 }), httpEntry({ responseCode: 503, flags: ['upstream_connection_failure', 'upstream_retry_limit_exceeded'] })] } }),
  ],
  check(input) {
    let message;
    try {
      countEntries(input);
      message = scanMessage(input);
    } catch (err) {
      return `message ${expectedError(err, WireError)}`;
    }
    const facts = emptyFacts();
    let outcome = 'message ok';
    for (const [entries, read] of [[message.http, readHttpEntry], [message.tcp, readTcpEntry]] as const) {
      for (const e of entries) {
        try {
          read(e, facts);
        } catch (err) {
          outcome = `entry ${expectedError(err, WireError)}`;
        }
      }
    }
    return outcome;
  },
  property: {
    arbitrary: fc.record({
      code: fc.integer({ min: 0, max: 999 }), authority: fc.string(), cluster: fc.string(), peer: fc.string(), local: fc.string(),
      ip: fc.ipV4(), port: fc.integer({ min: 1, max: 65535 }), durationMs: fc.integer({ min: 0, max: 10_000_000 }), sent: fc.nat(), received: fc.nat(), streamId: fc.string(),
    }),
    check(value) {
      const v = value as { code: number; authority: string; cluster: string; peer: string; local: string; ip: string; port: number; durationMs: number; sent: number; received: number; streamId: string };
      const bytes = encodeStreamMessage({
        http_logs: { log_entry: [httpEntry({ responseCode: v.code, authority: v.authority, upstreamCluster: v.cluster, downstreamRemote: `${v.ip}:${v.port}`, tls: { peerSan: v.peer, localSan: v.local }, durationMs: v.durationMs, wireBytesSent: v.sent, wireBytesReceived: v.received, streamId: v.streamId })] },
      });
      const m = scanMessage(bytes);
      const f = emptyFacts();
      readHttpEntry(m.http[0]!, f);
      const got = { code: f.responseCode, authority: f.authority, cluster: f.upstreamCluster, peer: f.peerUriSan, local: f.localUriSan, ip: f.downstreamRemoteIp, durationMs: f.durationMs, sent: f.downstreamWireBytesSent, received: f.downstreamWireBytesReceived, streamId: f.streamId };
      const want = { code: v.code, authority: v.authority, cluster: v.cluster, peer: v.peer, local: v.local, ip: v.ip, durationMs: v.durationMs, sent: v.sent, received: v.received, streamId: v.streamId };
      if (JSON.stringify(got) !== JSON.stringify(want)) throw new ContractViolation(`round trip: ${JSON.stringify(got)} != ${JSON.stringify(want)}`);
    },
  },
};
