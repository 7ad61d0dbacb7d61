import { MAX_NODE_METADATA_BYTES, MAX_NODE_METADATA_DEPTH, MAX_NODE_METADATA_VALUES, MAX_NODE_STRING_BYTES } from './limits.js';

/**
 * The bounds on an envoy.config.core.v3.Node, checked on its wire bytes before anything is
 * decoded: an oversized or deeply nested metadata Struct is refused without building one
 * object of it. The same check guards xDS streams and access-log streams.
 */

/** A request over one of meshd's bounds; its message names the field and the limit. The call ends with INVALID_ARGUMENT. */
export class RequestLimitError extends Error {
  override name = 'RequestLimitError';
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

/** Node's string fields meshd keeps for a stream's life (envoy/config/core/v3/base.proto). */
const NODE_STRINGS: ReadonlyMap<number, string> = new Map([[1, 'id'], [2, 'cluster'], [6, 'user_agent_name'], [7, 'user_agent_version']]);
const NODE_METADATA = 3;

/** Throws RequestLimitError when the encoded Node goes over a bound; says nothing about well-formedness otherwise. */
export function checkNodeLimits(bytes: Uint8Array): void {
  const r = new WireReader(bytes);
  let metadataBytes = 0;
  while (r.more()) {
    const { field, wire } = r.tag();
    if (wire !== WIRE_LEN) { r.skip(wire); continue; }
    const length = r.length();
    const name = NODE_STRINGS.get(field);
    if (name !== undefined && length > MAX_NODE_STRING_BYTES) {
      throw new RequestLimitError(`node.${name} is ${length} bytes; meshd accepts at most ${MAX_NODE_STRING_BYTES}`);
    }
    if (field === NODE_METADATA) {
      // A message field sent twice is merged by protobuf parsers: the bound is on the sum.
      metadataBytes += length;
      if (metadataBytes > MAX_NODE_METADATA_BYTES) {
        throw new RequestLimitError(`node.metadata is ${metadataBytes} bytes or more; meshd accepts at most ${MAX_NODE_METADATA_BYTES}`);
      }
      walkStruct(r.sub(length), 1, { values: 0 });
    } else {
      r.advance(length);
    }
  }
}

interface Count { values: number }

/** google.protobuf.Struct: field 1, map<string, Value> (entries: key 1, value 2). */
function walkStruct(r: WireReader, depth: number, count: Count): void {
  if (depth > MAX_NODE_METADATA_DEPTH) {
    throw new RequestLimitError(`node.metadata nests deeper than ${MAX_NODE_METADATA_DEPTH} levels; meshd accepts at most ${MAX_NODE_METADATA_DEPTH}`);
  }
  while (r.more()) {
    const { field, wire } = r.tag();
    if (field !== 1 || wire !== WIRE_LEN) { r.skip(wire); continue; }
    const entry = r.sub(r.length());
    while (entry.more()) {
      const t = entry.tag();
      if (t.field === 2 && t.wire === WIRE_LEN) walkValue(entry.sub(entry.length()), depth, count);
      else entry.skip(t.wire);
    }
  }
}

/** google.protobuf.Value: struct_value 5 and list_value 6 nest; the other kinds are leaves. */
function walkValue(r: WireReader, depth: number, count: Count): void {
  count.values += 1;
  if (count.values > MAX_NODE_METADATA_VALUES) {
    throw new RequestLimitError(`node.metadata has more than ${MAX_NODE_METADATA_VALUES} values; meshd accepts at most ${MAX_NODE_METADATA_VALUES}`);
  }
  while (r.more()) {
    const { field, wire } = r.tag();
    if (wire !== WIRE_LEN || (field !== 5 && field !== 6)) { r.skip(wire); continue; }
    const inner = r.sub(r.length());
    if (field === 5) { walkStruct(inner, depth + 1, count); continue; }
    // google.protobuf.ListValue: field 1, repeated Value.
    if (depth + 1 > MAX_NODE_METADATA_DEPTH) {
      throw new RequestLimitError(`node.metadata nests deeper than ${MAX_NODE_METADATA_DEPTH} levels; meshd accepts at most ${MAX_NODE_METADATA_DEPTH}`);
    }
    while (inner.more()) {
      const t = inner.tag();
      if (t.field === 1 && t.wire === WIRE_LEN) walkValue(inner.sub(inner.length()), depth + 1, count);
      else inner.skip(t.wire);
    }
  }
}

/**
 * Just enough of a protobuf reader to walk lengths: bytes that do not parse are left to the
 * real decoder, which reports them (a truncated length is cut to what is there).
 */
class WireReader {
  constructor(private readonly buf: Uint8Array, private pos = 0, private readonly end = buf.length) {}

  more(): boolean {
    return this.pos < this.end;
  }

  tag(): { field: number; wire: number } {
    const v = this.varint();
    return { field: Math.floor(v / 8), wire: v % 8 };
  }

  length(): number {
    return Math.min(this.varint(), this.end - this.pos);
  }

  sub(length: number): WireReader {
    const r = new WireReader(this.buf, this.pos, this.pos + length);
    this.pos += length;
    return r;
  }

  advance(length: number): void {
    this.pos += length;
  }

  skip(wire: number): void {
    switch (wire) {
      case WIRE_VARINT: this.varint(); break;
      case WIRE_FIXED64: this.pos = Math.min(this.pos + 8, this.end); break;
      case WIRE_LEN: this.advance(this.length()); break;
      case WIRE_FIXED32: this.pos = Math.min(this.pos + 4, this.end); break;
      // Groups and invalid wire types: nothing more here is worth bounding; the decoder refuses them.
      default: this.pos = this.end;
    }
  }

  private varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 10 && this.pos < this.end; i++) {
      const byte = this.buf[this.pos++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    return value;
  }
}
