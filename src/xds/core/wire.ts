import protobuf from 'protobufjs';
import { lookupType } from '../../envoy/protos.js';
import { internTypeUrl } from '../../envoy/type-urls.js';
import type { Resource } from './types.js';
import type { DeltaRequest, ErrorDetail, NodeInfo, SotwRequest } from './requests.js';
import { asBuffer } from '../../common/bytes.js';
import { checkNodeLimits } from './node-limits.js';

/**
 * The wire format of the discovery messages.
 *
 * Requests are read field by field, strictly: protobufjs's reader silently cuts a string
 * that overruns the message short (a truncated request decoded to a truncated resource
 * name) and accepts field number 0. Here truncated or invalid bytes throw, and the adapter
 * ends the call with INVALID_ARGUMENT. As proto3 parsers do, unknown fields, and known
 * fields with an unexpected wire type, are skipped, and a repeated singular field keeps its
 * last value. The node and error_detail sub-messages (the first request of a stream, a
 * NACK) decode with Envoy's own types.
 *
 * Responses are written field by field with a protobufjs Writer so that each resource's
 * pre-encoded google.protobuf.Any is copied in as it is: a resource is serialised once, by its
 * generator, and the same bytes go to every stream (go-control-plane's RawResponse does the
 * same). Field numbers are those of envoy/service/discovery/v3/discovery.proto;
 * test/xds/core/wire.test.ts holds both directions to Envoy's message types.
 */

/** A request that is not a valid message: the adapter answers it with INVALID_ARGUMENT. */
export class DiscoveryWireError extends Error {
  override name = 'DiscoveryWireError';
}

/**
 * protobufjs's reader reports truncation as RangeError("index out of range…"), an unknown
 * wire type as Error("invalid wire type…") and nesting past its limit as Error("maximum
 * nesting depth exceeded"): the client's bytes, not a bug here.
 */
function decoding<T>(decode: () => T): T {
  try {
    return decode();
  } catch (err) {
    if (err instanceof DiscoveryWireError) throw err;
    if (err instanceof protobuf.util.ProtocolError || (err instanceof Error && /^(index out of range|invalid wire type|illegal |maximum nesting depth exceeded)/.test(err.message))) {
      throw new DiscoveryWireError(err.message);
    }
    throw err;
  }
}

const decodeOptions: protobuf.IConversionOptions = { longs: Number, enums: String, bytes: Buffer, defaults: false, arrays: true, objects: true, oneofs: true };

type Plain = Record<string, unknown>;

/** Field tags: (field number << 3) | wire type 2 (length-delimited), as they appear on the wire. */
const enum SotwTag { VersionInfo = 0x0a, Node = 0x12, ResourceNames = 0x1a, TypeUrl = 0x22, ResponseNonce = 0x2a, ErrorDetail = 0x32 }
const enum DeltaTag { Node = 0x0a, TypeUrl = 0x12, Subscribe = 0x1a, Unsubscribe = 0x22, InitialVersions = 0x2a, ResponseNonce = 0x32, ErrorDetail = 0x3a }

/** envoy.service.discovery.v3.DiscoveryRequest */
export function decodeSotwRequest(bytes: Uint8Array): SotwRequest {
  return decoding(() => readSotwRequest(bytes));
}

function readSotwRequest(bytes: Uint8Array): SotwRequest {
  const r = reader(bytes);
  let versionInfo = '';
  let typeUrl = '';
  let responseNonce = '';
  const resourceNames: string[] = [];
  let errorDetail: ErrorDetail | undefined;
  let node: NodeInfo | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag) {
      case SotwTag.VersionInfo: versionInfo = text(r); break;
      case SotwTag.Node: node = nodeOf(r); break;
      case SotwTag.ResourceNames: resourceNames.push(text(r)); break;
      case SotwTag.TypeUrl: typeUrl = internTypeUrl(text(r)); break;
      case SotwTag.ResponseNonce: responseNonce = text(r); break;
      case SotwTag.ErrorDetail: errorDetail = errorDetailOf(subMessage(r, 'google.rpc.Status')); break;
      default: skipField(r, tag);
    }
  }
  return { kind: 'sotw', typeUrl, versionInfo, resourceNames, responseNonce, errorDetail, node };
}

/** envoy.service.discovery.v3.DeltaDiscoveryRequest */
export function decodeDeltaRequest(bytes: Uint8Array): DeltaRequest {
  return decoding(() => readDeltaRequest(bytes));
}

function readDeltaRequest(bytes: Uint8Array): DeltaRequest {
  const r = reader(bytes);
  let typeUrl = '';
  let responseNonce = '';
  const subscribe: string[] = [];
  const unsubscribe: string[] = [];
  // No prototype: a resource may be named "__proto__" (assigning it to a plain object drops it)
  // or "constructor" (which `in` would find on any plain object).
  const initialResourceVersions: Record<string, string> = Object.create(null) as Record<string, string>;
  let errorDetail: ErrorDetail | undefined;
  let node: NodeInfo | undefined;
  while (r.pos < r.len) {
    const tag = r.uint32();
    switch (tag) {
      case DeltaTag.Node: node = nodeOf(r); break;
      case DeltaTag.TypeUrl: typeUrl = internTypeUrl(text(r)); break;
      case DeltaTag.Subscribe: subscribe.push(text(r)); break;
      case DeltaTag.Unsubscribe: unsubscribe.push(text(r)); break;
      case DeltaTag.InitialVersions: {
        const [key, value] = mapEntry(r);
        initialResourceVersions[key] = value;
        break;
      }
      case DeltaTag.ResponseNonce: responseNonce = text(r); break;
      case DeltaTag.ErrorDetail: errorDetail = errorDetailOf(subMessage(r, 'google.rpc.Status')); break;
      default: skipField(r, tag);
    }
  }
  return { kind: 'delta', typeUrl, subscribe, unsubscribe, initialResourceVersions, responseNonce, errorDetail, node };
}

function reader(bytes: Uint8Array): protobuf.Reader {
  return protobuf.Reader.create(asBuffer(bytes));
}

/** A length-delimited string. protobufjs's own reader cuts a string that overruns the message short; this throws. */
function text(r: protobuf.Reader): string {
  const length = r.uint32();
  const start = r.pos;
  const end = start + length;
  if (end > r.len) throw new DiscoveryWireError(`a string of ${length} bytes at offset ${start} overruns the message (${r.len} bytes)`);
  r.pos = end;
  return (r.buf as Buffer).toString('utf8', start, end);
}

/** node: its bounds are checked on the bytes (limits.ts), before protobufjs builds anything of it. */
function nodeOf(r: protobuf.Reader): NodeInfo {
  const start = r.pos;
  const length = r.uint32();
  const end = r.pos + length;
  if (end <= r.len) checkNodeLimits((r.buf as Uint8Array).subarray(r.pos, end));
  r.pos = start;
  return nodeInfo(subMessage(r, 'envoy.config.core.v3.Node'));
}

/** A length-delimited sub-message at the reader's position, decoded with Envoy's type. */
function subMessage(r: protobuf.Reader, typeName: string): Plain {
  const length = r.uint32();
  const end = r.pos + length;
  if (end > r.len) throw new DiscoveryWireError(`${typeName} of ${length} bytes at offset ${r.pos} overruns the message (${r.len} bytes)`);
  const type = lookupType(typeName);
  const message = type.decode(r, length);
  if (r.pos !== end) throw new DiscoveryWireError(`a field of ${typeName} overruns its ${length} bytes`);
  fillMissingMapValues(type, message as unknown as Plain);
  return type.toObject(message, decodeOptions) as Plain;
}

/**
 * A map entry may leave out its value (proto3 reads it as the default); protobufjs stores
 * null there and its toObject then fails on it (a node's metadata `{NAMESPACE: <no value>}`
 * ended the stream with a TypeError's text). Fill in the default message. Recursion is
 * bounded by protobufjs's nesting limit, which decode has already enforced.
 */
function fillMissingMapValues(type: protobuf.Type, message: Plain): void {
  for (const field of type.fieldsArray) {
    const fieldType = field.resolvedType;
    const value = message[field.name];
    if (!(fieldType instanceof protobuf.Type) || value === null || value === undefined) continue;
    if (field.map) {
      const entries = value as Plain;
      for (const key of Object.keys(entries)) {
        if (entries[key] === null || entries[key] === undefined) entries[key] = fieldType.create();
        else fillMissingMapValues(fieldType, entries[key] as Plain);
      }
    } else if (field.repeated) {
      for (const item of value as Plain[]) fillMissingMapValues(fieldType, item);
    } else {
      fillMissingMapValues(fieldType, value as Plain);
    }
  }
}

/** One map<string, string> entry: { 1 key; 2 value }, either may be absent (then ''). */
function mapEntry(r: protobuf.Reader): [string, string] {
  const end = r.uint32() + r.pos;
  if (end > r.len) throw new DiscoveryWireError(`map entry overruns the message (${end} > ${r.len})`);
  let key = '';
  let value = '';
  while (r.pos < end) {
    const tag = r.uint32();
    if (tag === 0x0a) key = text(r);
    else if (tag === 0x12) value = text(r);
    else skipField(r, tag);
  }
  if (r.pos !== end) throw new DiscoveryWireError('map entry overruns its length');
  return [key, value];
}

/** Skips a field this decoder does not read (unknown, or a known one with another wire type). */
function skipField(r: protobuf.Reader, tag: number): void {
  if (tag >>> 3 === 0) throw new DiscoveryWireError(`invalid field number 0 at offset ${r.pos}`);
  r.skipType(tag & 7);
}

export interface SotwResponseFields {
  versionInfo: string;
  typeUrl: string;
  nonce: string;
  resources: readonly Resource[];
  controlPlane?: string;
}

/** envoy.service.discovery.v3.DiscoveryResponse */
export function encodeSotwResponse(r: SotwResponseFields): Buffer {
  const w = protobuf.Writer.create();
  if (r.versionInfo) w.uint32(/* version_info = 1 */ 0x0a).string(r.versionInfo);
  for (const res of r.resources) w.uint32(/* resources = 2 (Any) */ 0x12).bytes(res.body);
  w.uint32(/* type_url = 4 */ 0x22).string(r.typeUrl);
  if (r.nonce) w.uint32(/* nonce = 5 */ 0x2a).string(r.nonce);
  if (r.controlPlane) w.uint32(/* control_plane = 6 */ 0x32).fork().uint32(/* identifier = 1 */ 0x0a).string(r.controlPlane).ldelim();
  return w.finish() as Buffer;
}

export interface DeltaResponseFields {
  systemVersionInfo: string;
  typeUrl: string;
  nonce: string;
  resources: readonly Resource[];
  removed: readonly string[];
  controlPlane?: string;
}

/** envoy.service.discovery.v3.DeltaDiscoveryResponse */
export function encodeDeltaResponse(r: DeltaResponseFields): Buffer {
  const w = protobuf.Writer.create();
  if (r.systemVersionInfo) w.uint32(/* system_version_info = 1 */ 0x0a).string(r.systemVersionInfo);
  for (const res of r.resources) {
    // resources = 2: envoy.service.discovery.v3.Resource { version = 1, resource = 2 (Any), name = 3 }
    w.uint32(0x12).fork()
      .uint32(0x0a).string(res.version)
      .uint32(0x12).bytes(res.body)
      .uint32(0x1a).string(res.name)
      .ldelim();
  }
  w.uint32(/* type_url = 4 */ 0x22).string(r.typeUrl);
  if (r.nonce) w.uint32(/* nonce = 5 */ 0x2a).string(r.nonce);
  for (const name of r.removed) w.uint32(/* removed_resources = 6 */ 0x32).string(name);
  if (r.controlPlane) w.uint32(/* control_plane = 7 */ 0x3a).fork().uint32(0x0a).string(r.controlPlane).ldelim();
  return w.finish() as Buffer;
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function errorDetailOf(o: Plain): ErrorDetail {
  return { code: typeof o.code === 'number' ? o.code : 0, message: str(o.message) };
}

function nodeInfo(o: Plain): NodeInfo {
  let version = str(o.user_agent_version);
  const build = o.user_agent_build_version as Plain | undefined;
  if (!version && build?.version) {
    const s = build.version as Plain;
    version = `${num(s.major_number)}.${num(s.minor_number)}.${num(s.patch)}`;
  }
  const name = str(o.user_agent_name);
  return {
    id: str(o.id),
    cluster: str(o.cluster),
    metadata: o.metadata ? structToJson(o.metadata as Plain) : {},
    userAgent: name && version ? `${name}/${version}` : name || version,
  };
}

function num(v: unknown): number {
  return typeof v === 'number' ? v : 0;
}

/** google.protobuf.Struct (as protobufjs's toObject gives it) to plain JSON. */
export function structToJson(struct: Plain): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const fields = (struct.fields ?? {}) as Record<string, Plain>;
  for (const [key, value] of Object.entries(fields)) out[key] = valueToJson(value);
  return out;
}

function valueToJson(v: Plain): unknown {
  // protobufjs registers google/protobuf/struct.proto itself, with camelCase field names
  // (our keepCase applies only to files we load), so accept both spellings.
  const kind = typeof v.kind === 'string' ? v.kind.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase()) : '';
  const value = typeof v.kind === 'string' ? v[v.kind] : undefined;
  switch (kind) {
    case 'stringValue': case 'numberValue': case 'boolValue': return value;
    case 'structValue': return structToJson(value as Plain);
    case 'listValue': return (((value as Plain).values ?? []) as Plain[]).map(valueToJson);
    default: return null;
  }
}
