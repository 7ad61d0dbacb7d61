/**
 * A lean protobuf codec for the load client: it writes DiscoveryRequests by hand and reads
 * from a DiscoveryResponse only what an Envoy-like client needs (version, nonce, type and
 * each resource's name), plus the two cross-references Envoy follows: the EDS service name
 * of an EDS cluster and the RDS route_config_name of an HTTP connection manager. Field
 * numbers are those of envoy/service/discovery/v3/discovery.proto, config/core/v3/base.proto,
 * config/cluster/v3/cluster.proto, config/listener/v3/listener{,_components}.proto and
 * http_connection_manager.proto; test-free, but every bench run cross-checks it against the
 * names meshd itself reports.
 */

const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

class Writer {
  private chunks: Buffer[] = [];
  private length = 0;

  tag(field: number, wire: number): this {
    return this.varint((field << 3) | wire);
  }

  varint(v: number): this {
    const bytes: number[] = [];
    while (v > 127) {
      bytes.push((v & 127) | 128);
      v = Math.floor(v / 128);
    }
    bytes.push(v);
    return this.raw(Buffer.from(bytes));
  }

  bytes(field: number, b: Uint8Array): this {
    return this.tag(field, 2).varint(b.length).raw(b);
  }

  string(field: number, s: string): this {
    return this.bytes(field, Buffer.from(s, 'utf8'));
  }

  raw(b: Uint8Array): this {
    this.chunks.push(Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    this.length += b.length;
    return this;
  }

  finish(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

export interface NodeSpec {
  id: string;
  cluster: string;
  metadata: Record<string, string>;
}

/** envoy.config.core.v3.Node, encoded once per stream (only the first request carries it). */
export function encodeNode(node: NodeSpec): Buffer {
  const w = new Writer().string(1, node.id).string(2, node.cluster);
  const struct = new Writer();
  for (const [key, value] of Object.entries(node.metadata)) {
    // google.protobuf.Struct.fields (map entry: key = 1, value = 2 { string_value = 3 })
    const entry = new Writer().string(1, key).bytes(2, new Writer().string(3, value).finish()).finish();
    struct.bytes(1, entry);
  }
  w.bytes(3, struct.finish());
  w.string(6, 'envoy').string(7, '1.31.0-bench');
  return w.finish();
}

export interface RequestSpec {
  typeUrl: string;
  versionInfo?: string;
  resourceNames?: readonly string[];
  responseNonce?: string;
  node?: Buffer;
  errorMessage?: string;
}

/** envoy.service.discovery.v3.DiscoveryRequest */
export function encodeDiscoveryRequest(r: RequestSpec): Buffer {
  const w = new Writer();
  if (r.versionInfo) w.string(1, r.versionInfo);
  if (r.node) w.bytes(2, r.node);
  for (const name of r.resourceNames ?? []) w.string(3, name);
  w.string(4, r.typeUrl);
  if (r.responseNonce) w.string(5, r.responseNonce);
  if (r.errorMessage) w.bytes(6, new Writer().tag(1, 0).varint(3).string(2, r.errorMessage).finish());
  return w.finish();
}

export interface Field {
  field: number;
  wire: number;
  /** varint value (wire 0) */
  value: number;
  /** payload (wire 2) */
  start: number;
  end: number;
}

/** Calls `each` for every top-level field of the message in buf[start, end). */
export function scanFields(buf: Buffer, start: number, end: number, each: (f: Field) => void): void {
  let p = start;
  const f: Field = { field: 0, wire: 0, value: 0, start: 0, end: 0 };
  const varint = (): number => {
    let result = 0;
    let mul = 1;
    for (;;) {
      const b = buf[p++]!;
      result += (b & 127) * mul;
      if (b < 128) return result;
      mul *= 128;
    }
  };
  while (p < end) {
    const tag = varint();
    f.field = Math.floor(tag / 8);
    f.wire = tag & 7;
    f.value = 0;
    if (f.wire === 0) f.value = varint();
    else if (f.wire === 2) {
      const len = varint();
      f.start = p;
      f.end = p + len;
      p += len;
    } else if (f.wire === 1) p += 8;
    else if (f.wire === 5) p += 4;
    else throw new Error(`unsupported wire type ${f.wire}`);
    each(f);
  }
}

export interface DecodedResponse {
  versionInfo: string;
  typeUrl: string;
  nonce: string;
  /** Each resource's google.protobuf.Any payload (`value`) range inside the response. */
  resources: Array<{ start: number; end: number }>;
}

/** envoy.service.discovery.v3.DiscoveryResponse: version, type, nonce and where each resource is; names on demand. */
export function decodeDiscoveryResponse(buf: Buffer): DecodedResponse {
  const out: DecodedResponse = { versionInfo: '', typeUrl: '', nonce: '', resources: [] };
  scanFields(buf, 0, buf.length, (f) => {
    if (f.wire !== 2) return;
    if (f.field === 1) out.versionInfo = buf.toString('utf8', f.start, f.end);
    else if (f.field === 4) out.typeUrl = buf.toString('utf8', f.start, f.end);
    else if (f.field === 5) out.nonce = buf.toString('utf8', f.start, f.end);
    else if (f.field === 2) {
      // Any { type_url = 1; value = 2 }
      let vs = 0;
      let ve = 0;
      scanFields(buf, f.start, f.end, (a) => { if (a.field === 2 && a.wire === 2) { vs = a.start; ve = a.end; } });
      out.resources.push({ start: vs, end: ve });
    }
  });
  return out;
}

/** A resource's name: every xDS type here names itself in field 1 (name, or cluster_name of a ClusterLoadAssignment). */
export function resourceName(buf: Buffer, r: { start: number; end: number }): string {
  let name = '';
  scanFields(buf, r.start, r.end, (f) => { if (f.field === 1 && f.wire === 2 && name === '') name = buf.toString('utf8', f.start, f.end); });
  return name;
}

/** The EDS resource an EDS cluster asks for (eds_cluster_config.service_name, else its name); undefined for other clusters. */
export function edsNameOfCluster(buf: Buffer, start: number, end: number): string | undefined {
  let name = '';
  let type = 0;
  let serviceName = '';
  scanFields(buf, start, end, (f) => {
    if (f.field === 1 && f.wire === 2) name = buf.toString('utf8', f.start, f.end);
    else if (f.field === 2 && f.wire === 0) type = f.value;
    else if (f.field === 3 && f.wire === 2) {
      scanFields(buf, f.start, f.end, (e) => { if (e.field === 2 && e.wire === 2) serviceName = buf.toString('utf8', e.start, e.end); });
    }
  });
  return type === 3 /* EDS */ ? serviceName || name : undefined;
}

/** Every RDS route_config_name the listener's HTTP connection managers ask for. */
export function rdsNamesOfListener(buf: Buffer, start: number, end: number, into: Set<string>): void {
  const chain = (cs: number, ce: number): void => {
    scanFields(buf, cs, ce, (c) => {
      if (c.field !== 3 || c.wire !== 2) return; // FilterChain.filters
      scanFields(buf, c.start, c.end, (flt) => {
        if (flt.field !== 4 || flt.wire !== 2) return; // Filter.typed_config (Any)
        let typeUrl = '';
        let vs = 0;
        let ve = 0;
        scanFields(buf, flt.start, flt.end, (a) => {
          if (a.field === 1 && a.wire === 2) typeUrl = buf.toString('utf8', a.start, a.end);
          else if (a.field === 2 && a.wire === 2) { vs = a.start; ve = a.end; }
        });
        if (typeUrl !== HCM_TYPE) return;
        scanFields(buf, vs, ve, (h) => {
          if (h.field !== 3 || h.wire !== 2) return; // HttpConnectionManager.rds
          scanFields(buf, h.start, h.end, (r) => { if (r.field === 2 && r.wire === 2) into.add(buf.toString('utf8', r.start, r.end)); });
        });
      });
    });
  };
  scanFields(buf, start, end, (f) => {
    // Listener.filter_chains = 3, default_filter_chain = 25
    if ((f.field === 3 || f.field === 25) && f.wire === 2) chain(f.start, f.end);
  });
}
