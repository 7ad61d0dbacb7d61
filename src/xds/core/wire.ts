import protobuf from 'protobufjs';
import { lookupType } from '../protos.js';
import { internTypeUrl } from '../type-urls.js';
import type { Resource } from './types.js';
import type { DeltaRequest, ErrorDetail, NodeInfo, SotwRequest } from './requests.js';

/**
 * The wire format of the discovery messages.
 *
 * Requests are decoded with Envoy's own protos. Responses are written field by field with
 * a protobufjs Writer so that each resource's pre-encoded google.protobuf.Any is copied in
 * as it is: a resource is serialised once, by its generator, and the same bytes go to
 * every stream (go-control-plane's RawResponse does the same). Field numbers are those of
 * envoy/service/discovery/v3/discovery.proto; test/xds/core/wire.test.ts decodes our
 * output with the real message types to pin them.
 */

const decodeOptions: protobuf.IConversionOptions = { longs: Number, enums: String, bytes: Buffer, defaults: false, arrays: true, objects: true, oneofs: true };

type Plain = Record<string, unknown>;

export function decodeSotwRequest(bytes: Uint8Array): SotwRequest {
  const t = lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  const o = t.toObject(t.decode(bytes), decodeOptions) as Plain;
  return {
    kind: 'sotw',
    typeUrl: internTypeUrl(str(o.type_url)),
    versionInfo: str(o.version_info),
    resourceNames: (o.resource_names as string[] | undefined) ?? [],
    responseNonce: str(o.response_nonce),
    errorDetail: errorDetail(o.error_detail),
    node: nodeInfo(o.node),
  };
}

export function decodeDeltaRequest(bytes: Uint8Array): DeltaRequest {
  const t = lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const o = t.toObject(t.decode(bytes), decodeOptions) as Plain;
  return {
    kind: 'delta',
    typeUrl: internTypeUrl(str(o.type_url)),
    subscribe: (o.resource_names_subscribe as string[] | undefined) ?? [],
    unsubscribe: (o.resource_names_unsubscribe as string[] | undefined) ?? [],
    initialResourceVersions: (o.initial_resource_versions as Record<string, string> | undefined) ?? {},
    responseNonce: str(o.response_nonce),
    errorDetail: errorDetail(o.error_detail),
    node: nodeInfo(o.node),
  };
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

function errorDetail(v: unknown): ErrorDetail | undefined {
  if (v === undefined || v === null) return undefined;
  const o = v as Plain;
  return { code: typeof o.code === 'number' ? o.code : 0, message: str(o.message) };
}

function nodeInfo(v: unknown): NodeInfo | undefined {
  if (v === undefined || v === null) return undefined;
  const o = v as Plain;
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
