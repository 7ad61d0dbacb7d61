import protobuf from 'protobufjs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * Envoy's .proto files are not ours: they are loaded from the installed
 * @grpc/grpc-js-xds package, which ships the envoy, xds, googleapis and validate trees
 * in its deps/ folder. Our own .proto files (protos/) are searched first.
 *
 * Fields keep Envoy's snake_case names (keepCase), so resource builders read like the
 * Envoy docs and protobufjs's google.protobuf.Any wrapper understands the
 * {'@type': ..., ...fields} form.
 */
const require = createRequire(import.meta.url);

export const XDS_DEPS_DIR = join(dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
/**
 * protos/ at the package root: two levels above this module in src/ and dist/, three in the
 * tests' compiled tree (dist-test/src/envoy); the nearest one up from here.
 */
const OWN_PROTOS_DIR = nearestProtosDir(dirname(fileURLToPath(import.meta.url)));

function nearestProtosDir(from: string): string {
  for (let dir = from; ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'protos', 'istio'))) return join(dir, 'protos');
    if (dirname(dir) === dir) return join(from, '..', '..', 'protos');
  }
}

const INCLUDE_DIRS = [
  OWN_PROTOS_DIR,
  join(XDS_DEPS_DIR, 'envoy-api'),
  join(XDS_DEPS_DIR, 'xds'),
  join(XDS_DEPS_DIR, 'googleapis'),
  join(XDS_DEPS_DIR, 'protoc-gen-validate'),
];

/** Every file meshd encodes or decodes; Any-packed types must be listed explicitly. */
export const ENVOY_PROTO_FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/service/discovery/v3/discovery.proto',
  'envoy/service/secret/v3/sds.proto',
  'envoy/service/listener/v3/lds.proto',
  'envoy/service/cluster/v3/cds.proto',
  'envoy/service/route/v3/rds.proto',
  'envoy/service/endpoint/v3/eds.proto',
  'envoy/service/accesslog/v3/als.proto',
  'envoy/config/bootstrap/v3/bootstrap.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls_spiffe_validator_config.proto',
  'envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
  'envoy/extensions/filters/listener/http_inspector/v3/http_inspector.proto',
  'envoy/extensions/filters/listener/original_dst/v3/original_dst.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/path/match/uri_template/v3/uri_template_match.proto',
  'envoy/extensions/access_loggers/grpc/v3/als.proto',
  'envoy/extensions/access_loggers/file/v3/file.proto',
  'envoy/extensions/access_loggers/stream/v3/stream.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/config/accesslog/v3/accesslog.proto',
  'envoy/data/accesslog/v3/accesslog.proto',
  'envoy/service/status/v3/csds.proto',
];

/** Our own protos (protos/), loaded when present. */
const OWN_PROTO_FILES = ['istio/v1/auth/ca.proto'];

let cached: protobuf.Root | undefined;

/** protobufjs ships descriptor.proto and friends as JSON but does not register them. */
function registerGoogleCommons(): void {
  for (const name of ['descriptor', 'api', 'source_context', 'type']) {
    const json = require(`protobufjs/google/protobuf/${name}.json`);
    protobuf.common(name, json.nested.google.nested.protobuf.nested);
  }
}

export function envoyRoot(): protobuf.Root {
  if (cached) return cached;
  registerGoogleCommons();
  const root = new protobuf.Root();
  root.resolvePath = (_origin: string, target: string): string | null => {
    if (existsSync(target)) return target;
    for (const dir of INCLUDE_DIRS) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  const own = OWN_PROTO_FILES.filter((f) => existsSync(join(OWN_PROTOS_DIR, f)));
  root.loadSync([...ENVOY_PROTO_FILES, ...own], { keepCase: true });
  root.resolveAll();
  cached = root;
  return root;
}

const types = new Map<string, protobuf.Type>();

/** A message type by full name, remembered: protobufjs walks the namespace tree on every lookup, per encode. */
export function lookupType(fullName: string): protobuf.Type {
  let type = types.get(fullName);
  if (type === undefined) {
    type = envoyRoot().lookupType(fullName.startsWith('.') ? fullName.slice(1) : fullName);
    types.set(fullName, type);
  }
  return type;
}

/** The message name inside a type URL: "type.googleapis.com/envoy.config.listener.v3.Listener". */
export function typeNameOf(typeUrl: string): string {
  return typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
}

/** Encodes a plain object (snake_case, '@type' for nested Any) as the message the type URL names. */
export function encodeMessage(typeUrl: string, value: object): Uint8Array {
  const type = lookupType(typeNameOf(typeUrl));
  return type.encode(type.fromObject(value as Record<string, unknown>)).finish();
}

/** Encodes a google.protobuf.Any {type_url, value} for the given payload. */
export function encodeAny(typeUrl: string, value: object): Uint8Array {
  const payload = encodeMessage(typeUrl, value);
  const any = lookupType('google.protobuf.Any');
  return any.encode(any.create({ type_url: typeUrl, value: payload })).finish();
}

/** Decodes bytes as the type URL's message into a plain object with Envoy's field names. */
export function decodeMessage(typeUrl: string, bytes: Uint8Array): Record<string, unknown> {
  const type = lookupType(typeNameOf(typeUrl));
  return type.toObject(type.decode(bytes), { longs: String, enums: String, bytes: Buffer, defaults: false, json: true });
}
