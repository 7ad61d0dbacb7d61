/**
 * A fast path for Envoy's access-log messages (envoy.service.accesslog.v3
 * StreamAccessLogsMessage, envoy.data.accesslog.v3 entries): it reads, straight from
 * the protobuf wire format, only the fields the istio_* metrics need and skips the
 * rest (paths, user agents, request ids, metadata, filter state...) without building
 * objects for them. A full protobufjs decode of the same bytes is the ceiling the
 * benchmark compares against; test/telemetry/als-wire.test.ts checks this reader
 * against protobufjs field by field.
 *
 * Each entry is read on its own: a malformed entry is reported (WireError) and the
 * rest of the batch still counts, which a whole-message decode could not do.
 */

export class WireError extends Error {
  override name = 'WireError';
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

/** Field numbers (envoy/service/accesslog/v3/als.proto, envoy/data/accesslog/v3/accesslog.proto). */
const F = {
  msg: { identifier: 1, httpLogs: 2, tcpLogs: 3 },
  entries: { logEntry: 1 },
  http: { common: 1, request: 3, response: 4 },
  tcp: { common: 1, connection: 2 },
  common: {
    downstreamRemote: 2, downstreamLocal: 3, tls: 4, lastDownstreamTx: 12, upstreamRemote: 13,
    upstreamCluster: 15, responseFlags: 16, duration: 23, streamId: 26,
    wireSent: 29, wireReceived: 30, accessLogType: 33,
  },
  address: { socket: 1 },
  socket: { address: 2 },
  tls: { local: 4, peer: 5 },
  cert: { san: 1 },
  san: { uri: 1 },
  request: { authority: 3, headersBytes: 11, bodyBytes: 12, headers: 13 },
  response: { code: 1, headersBytes: 2, bodyBytes: 3, headers: 4, trailers: 5 },
  connection: { received: 1, sent: 2 },
} as const;

/** envoy.data.accesslog.v3.AccessLogType values meshd acts on. */
export const AccessLogType = {
  NotSet: 0, TcpUpstreamConnected: 1, TcpPeriodic: 2, TcpConnectionEnd: 3,
  DownstreamStart: 4, DownstreamPeriodic: 5, DownstreamEnd: 6,
} as const;

/** What one entry tells the metrics. Reused between entries: copy what you keep. */
export interface EntryFacts {
  downstreamRemoteIp: string;
  downstreamLocalIp: string;
  upstreamRemoteIp: string;
  upstreamCluster: string;
  /** tls_properties present: the downstream connection was TLS. */
  tls: boolean;
  localUriSan: string;
  peerUriSan: string;
  /** Response flags as a mask: bit n-1 for ResponseFlags field n (see response-flags.ts). */
  responseFlags: number;
  /** AccessLogCommon.duration, or time_to_last_downstream_tx_byte when absent; -1 when neither. */
  durationMs: number;
  downstreamWireBytesSent: number;
  downstreamWireBytesReceived: number;
  accessLogType: number;
  streamId: string;
  // HTTP
  authority: string;
  requestHeadersBytes: number;
  requestBodyBytes: number;
  contentType: string;
  responseCode: number;
  responseHeadersBytes: number;
  responseBodyBytes: number;
  /** grpc-status from the response trailers, else from the headers (trailers-only responses); "" if not logged. */
  grpcStatus: string;
  // TCP
  receivedBytes: number;
  sentBytes: number;
}

export function emptyFacts(): EntryFacts {
  return {
    downstreamRemoteIp: '', downstreamLocalIp: '', upstreamRemoteIp: '', upstreamCluster: '',
    tls: false, localUriSan: '', peerUriSan: '', responseFlags: 0, durationMs: -1,
    downstreamWireBytesSent: 0, downstreamWireBytesReceived: 0, accessLogType: 0, streamId: '',
    authority: '', requestHeadersBytes: 0, requestBodyBytes: 0, contentType: '', responseCode: 0,
    responseHeadersBytes: 0, responseBodyBytes: 0, grpcStatus: '', receivedBytes: 0, sentBytes: 0,
  };
}

function resetFacts(f: EntryFacts): void {
  f.downstreamRemoteIp = ''; f.downstreamLocalIp = ''; f.upstreamRemoteIp = ''; f.upstreamCluster = '';
  f.tls = false; f.localUriSan = ''; f.peerUriSan = ''; f.responseFlags = 0; f.durationMs = -1;
  f.downstreamWireBytesSent = 0; f.downstreamWireBytesReceived = 0; f.accessLogType = 0; f.streamId = '';
  f.authority = ''; f.requestHeadersBytes = 0; f.requestBodyBytes = 0; f.contentType = ''; f.responseCode = 0;
  f.responseHeadersBytes = 0; f.responseBodyBytes = 0; f.grpcStatus = ''; f.receivedBytes = 0; f.sentBytes = 0;
}

/** A cursor over a byte range; every read checks bounds and throws WireError. */
class Reader {
  pos: number;
  constructor(readonly buf: Uint8Array, start: number, public end: number) {
    this.pos = start;
  }

  field = 0;
  wire = 0;

  /** Reads a field tag into `field` and `wire`. */
  tag(): void {
    const tag = this.varint();
    this.field = Math.floor(tag / 8);
    this.wire = tag & 7;
    if (this.field === 0) throw new WireError('field number 0');
  }

  /** A varint as a JS number (exact up to 2^53; larger values lose precision, never throw). */
  varint(): number {
    const buf = this.buf;
    let pos = this.pos;
    let result = 0;
    let scale = 1;
    for (let i = 0; i < 10; i++) {
      if (pos >= this.end) throw new WireError('truncated varint');
      const byte = buf[pos++]!;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        this.pos = pos;
        return result;
      }
      scale *= 128;
    }
    throw new WireError('varint longer than 10 bytes');
  }

  /** A length prefix; returns the end offset of the delimited bytes. */
  delimited(): number {
    const length = this.varint();
    const end = this.pos + length;
    if (end > this.end) throw new WireError(`length ${length} runs past the end of its message`);
    return end;
  }

  skip(wireType: number): void {
    switch (wireType) {
      case WIRE_VARINT: this.varint(); return;
      case WIRE_I64: this.advance(8); return;
      case WIRE_LEN: this.pos = this.delimited(); return;
      case WIRE_I32: this.advance(4); return;
      default: throw new WireError(`unsupported wire type ${wireType}`);
    }
  }

  private advance(n: number): void {
    if (this.pos + n > this.end) throw new WireError('truncated fixed-width field');
    this.pos += n;
  }

  string(end: number): string {
    const start = this.pos;
    this.pos = end;
    return utf8(this.buf, start, end);
  }
}

const decoder = new TextDecoder();

/**
 * Strings off the wire. Short ASCII ones (addresses, codes) are built in JS; longer ones
 * (SANs, cluster names, hosts) use Buffer's native UTF-8 slice, measured fastest for
 * them here. grpc-js hands us Buffers; plain Uint8Arrays fall back to TextDecoder.
 */
function utf8(buf: Uint8Array, start: number, end: number): string {
  if (end - start <= 16) {
    let s = '';
    for (let i = start; i < end; i++) {
      const c = buf[i]!;
      if (c >= 0x80) return decodeSlow(buf, start, end);
      s += String.fromCharCode(c);
    }
    return s;
  }
  return decodeSlow(buf, start, end);
}

function decodeSlow(buf: Uint8Array, start: number, end: number): string {
  return Buffer.isBuffer(buf) ? buf.toString('utf8', start, end) : decoder.decode(buf.subarray(start, end));
}

function expect(wireType: number, want: number, what: string): void {
  if (wireType !== want) throw new WireError(`${what} has wire type ${wireType}, want ${want}`);
}

/** The batches of one StreamAccessLogsMessage, as byte ranges of the entries. */
export interface ScannedMessage {
  /** Bytes of the Identifier message, when present (only in a stream's first message). */
  identifier: Uint8Array | undefined;
  http: Uint8Array[];
  tcp: Uint8Array[];
}

/** Splits a StreamAccessLogsMessage into its identifier and entry byte ranges; cheap (no entry is read). */
export function scanMessage(buf: Uint8Array): ScannedMessage {
  const out: ScannedMessage = { identifier: undefined, http: [], tcp: [] };
  const r = new Reader(buf, 0, buf.length);
  while (r.pos < r.end) {
    r.tag(); const field = r.field, wire = r.wire;
    if (field === F.msg.identifier) {
      expect(wire, WIRE_LEN, 'identifier');
      const end = r.delimited();
      out.identifier = buf.subarray(r.pos, end);
      r.pos = end;
    } else if (field === F.msg.httpLogs || field === F.msg.tcpLogs) {
      expect(wire, WIRE_LEN, 'log entries');
      const end = r.delimited();
      const list = field === F.msg.httpLogs ? out.http : out.tcp;
      while (r.pos < end) {
        r.tag(); const f = r.field, w = r.wire;
        if (f === F.entries.logEntry && w === WIRE_LEN) {
          const entryEnd = r.delimited();
          list.push(buf.subarray(r.pos, entryEnd));
          r.pos = entryEnd;
        } else {
          r.skip(w);
        }
      }
      if (r.pos !== end) throw new WireError('log entries overrun their batch');
    } else {
      r.skip(wire);
    }
  }
  return out;
}

/** Number of entries in a message without keeping them: for counting what load shedding drops. */
export function countEntries(buf: Uint8Array): number {
  try {
    const m = scanMessage(buf);
    return m.http.length + m.tcp.length;
  } catch {
    return 0;
  }
}

function readIp(r: Reader, end: number): string {
  // Address { socket_address = 1 { address = 2 } }; pipes and internal addresses have no IP.
  let ip = '';
  while (r.pos < end) {
    r.tag(); const field = r.field, wire = r.wire;
    if (field === F.address.socket && wire === WIRE_LEN) {
      const socketEnd = r.delimited();
      while (r.pos < socketEnd) {
        r.tag(); const f = r.field, w = r.wire;
        if (f === F.socket.address && w === WIRE_LEN) ip = r.string(r.delimited());
        else r.skip(w);
      }
    } else {
      r.skip(wire);
    }
  }
  return ip;
}

function readDurationMs(r: Reader, end: number): number {
  let seconds = 0;
  let nanos = 0;
  while (r.pos < end) {
    r.tag(); const field = r.field, wire = r.wire;
    if (field === 1 && wire === WIRE_VARINT) seconds = r.varint();
    else if (field === 2 && wire === WIRE_VARINT) nanos = r.varint();
    else r.skip(wire);
  }
  // Negative or absurd values (int64 two's complement reads as > 2^63) count as unknown.
  if (seconds > 1e10 || nanos > 1e10) return -1;
  return seconds * 1000 + nanos / 1e6;
}

/** The first URI SAN of a CertificateProperties. */
function readUriSan(r: Reader, end: number): string {
  let uri = '';
  while (r.pos < end) {
    r.tag(); const field = r.field, wire = r.wire;
    if (field === F.cert.san && wire === WIRE_LEN) {
      const sanEnd = r.delimited();
      while (r.pos < sanEnd) {
        r.tag(); const f = r.field, w = r.wire;
        if (f === F.san.uri && w === WIRE_LEN) {
          const value = r.string(r.delimited());
          if (uri === '') uri = value;
        } else {
          r.skip(w);
        }
      }
    } else {
      r.skip(wire);
    }
  }
  return uri;
}

function readTls(r: Reader, end: number, facts: EntryFacts): void {
  facts.tls = true;
  while (r.pos < end) {
    r.tag(); const field = r.field, wire = r.wire;
    if (field === F.tls.local && wire === WIRE_LEN) facts.localUriSan = readUriSan(r, r.delimited());
    else if (field === F.tls.peer && wire === WIRE_LEN) facts.peerUriSan = readUriSan(r, r.delimited());
    else r.skip(wire);
  }
}

function readResponseFlags(r: Reader, end: number): number {
  let mask = 0;
  while (r.pos < end) {
    r.tag(); const field = r.field, wire = r.wire;
    if (field <= 28 && wire === WIRE_VARINT) {
      if (r.varint() !== 0) mask |= 1 << (field - 1);
    } else if (field === 13 && wire === WIRE_LEN) {
      // unauthorized_details: a message; present means UAEX.
      r.pos = r.delimited();
      mask |= 1 << 12;
    } else {
      r.skip(wire);
    }
  }
  return mask;
}

function readCommon(r: Reader, end: number, facts: EntryFacts): void {
  let lastDownstreamTxMs = -1;
  let durationMs = -1;
  while (r.pos < end) {
    r.tag(); const field = r.field, wire = r.wire;
    switch (field) {
      case F.common.downstreamRemote: expect(wire, WIRE_LEN, 'downstream_remote_address'); facts.downstreamRemoteIp = readIp(r, r.delimited()); break;
      case F.common.downstreamLocal: expect(wire, WIRE_LEN, 'downstream_local_address'); facts.downstreamLocalIp = readIp(r, r.delimited()); break;
      case F.common.upstreamRemote: expect(wire, WIRE_LEN, 'upstream_remote_address'); facts.upstreamRemoteIp = readIp(r, r.delimited()); break;
      case F.common.tls: expect(wire, WIRE_LEN, 'tls_properties'); readTls(r, r.delimited(), facts); break;
      case F.common.lastDownstreamTx: expect(wire, WIRE_LEN, 'time_to_last_downstream_tx_byte'); lastDownstreamTxMs = readDurationMs(r, r.delimited()); break;
      case F.common.duration: expect(wire, WIRE_LEN, 'duration'); durationMs = readDurationMs(r, r.delimited()); break;
      case F.common.upstreamCluster: expect(wire, WIRE_LEN, 'upstream_cluster'); facts.upstreamCluster = r.string(r.delimited()); break;
      case F.common.responseFlags: expect(wire, WIRE_LEN, 'response_flags'); facts.responseFlags = readResponseFlags(r, r.delimited()); break;
      case F.common.streamId: expect(wire, WIRE_LEN, 'stream_id'); facts.streamId = r.string(r.delimited()); break;
      case F.common.wireSent: expect(wire, WIRE_VARINT, 'downstream_wire_bytes_sent'); facts.downstreamWireBytesSent = r.varint(); break;
      case F.common.wireReceived: expect(wire, WIRE_VARINT, 'downstream_wire_bytes_received'); facts.downstreamWireBytesReceived = r.varint(); break;
      case F.common.accessLogType: expect(wire, WIRE_VARINT, 'access_log_type'); facts.accessLogType = r.varint(); break;
      default: r.skip(wire);
    }
  }
  facts.durationMs = durationMs >= 0 ? durationMs : lastDownstreamTxMs;
}

/** One map<string,string> entry; calls back with key and value. */
function readMapEntry(r: Reader, end: number): [string, string] {
  let key = '';
  let value = '';
  while (r.pos < end) {
    r.tag(); const field = r.field, wire = r.wire;
    if (field === 1 && wire === WIRE_LEN) key = r.string(r.delimited());
    else if (field === 2 && wire === WIRE_LEN) value = r.string(r.delimited());
    else r.skip(wire);
  }
  return [key, value];
}

function readRequest(r: Reader, end: number, facts: EntryFacts): void {
  while (r.pos < end) {
    r.tag(); const field = r.field, wire = r.wire;
    switch (field) {
      case F.request.authority: expect(wire, WIRE_LEN, 'authority'); facts.authority = r.string(r.delimited()); break;
      case F.request.headersBytes: expect(wire, WIRE_VARINT, 'request_headers_bytes'); facts.requestHeadersBytes = r.varint(); break;
      case F.request.bodyBytes: expect(wire, WIRE_VARINT, 'request_body_bytes'); facts.requestBodyBytes = r.varint(); break;
      case F.request.headers: {
        expect(wire, WIRE_LEN, 'request_headers');
        const [k, v] = readMapEntry(r, r.delimited());
        if (k.toLowerCase() === 'content-type') facts.contentType = v;
        break;
      }
      default: r.skip(wire);
    }
  }
}

function readResponse(r: Reader, end: number, facts: EntryFacts): void {
  let headerStatus = '';
  let trailerStatus = '';
  while (r.pos < end) {
    r.tag(); const field = r.field, wire = r.wire;
    switch (field) {
      case F.response.code: {
        expect(wire, WIRE_LEN, 'response_code');
        const codeEnd = r.delimited();
        while (r.pos < codeEnd) {
          r.tag(); const f = r.field, w = r.wire;
          if (f === 1 && w === WIRE_VARINT) facts.responseCode = r.varint();
          else r.skip(w);
        }
        break;
      }
      case F.response.headersBytes: expect(wire, WIRE_VARINT, 'response_headers_bytes'); facts.responseHeadersBytes = r.varint(); break;
      case F.response.bodyBytes: expect(wire, WIRE_VARINT, 'response_body_bytes'); facts.responseBodyBytes = r.varint(); break;
      case F.response.headers:
      case F.response.trailers: {
        expect(wire, WIRE_LEN, 'response headers');
        const [k, v] = readMapEntry(r, r.delimited());
        if (k.toLowerCase() === 'grpc-status') {
          if (field === F.response.trailers) trailerStatus = v;
          else headerStatus = v;
        }
        break;
      }
      default: r.skip(wire);
    }
  }
  facts.grpcStatus = trailerStatus !== '' ? trailerStatus : headerStatus;
}

/** Reads one HTTPAccessLogEntry into `facts` (reset first). Throws WireError when malformed. */
export function readHttpEntry(bytes: Uint8Array, facts: EntryFacts): void {
  resetFacts(facts);
  const r = new Reader(bytes, 0, bytes.length);
  while (r.pos < r.end) {
    r.tag(); const field = r.field, wire = r.wire;
    switch (field) {
      case F.http.common: expect(wire, WIRE_LEN, 'common_properties'); readCommon(r, r.delimited(), facts); break;
      case F.http.request: expect(wire, WIRE_LEN, 'request'); readRequest(r, r.delimited(), facts); break;
      case F.http.response: expect(wire, WIRE_LEN, 'response'); readResponse(r, r.delimited(), facts); break;
      default: r.skip(wire);
    }
  }
}

/** Reads one TCPAccessLogEntry into `facts` (reset first). Throws WireError when malformed. */
export function readTcpEntry(bytes: Uint8Array, facts: EntryFacts): void {
  resetFacts(facts);
  const r = new Reader(bytes, 0, bytes.length);
  while (r.pos < r.end) {
    r.tag(); const field = r.field, wire = r.wire;
    if (field === F.tcp.common) {
      expect(wire, WIRE_LEN, 'common_properties');
      readCommon(r, r.delimited(), facts);
    } else if (field === F.tcp.connection) {
      expect(wire, WIRE_LEN, 'connection_properties');
      const end = r.delimited();
      while (r.pos < end) {
        r.tag(); const f = r.field, w = r.wire;
        if (f === F.connection.received && w === WIRE_VARINT) facts.receivedBytes = r.varint();
        else if (f === F.connection.sent && w === WIRE_VARINT) facts.sentBytes = r.varint();
        else r.skip(w);
      }
    } else {
      r.skip(wire);
    }
  }
}
