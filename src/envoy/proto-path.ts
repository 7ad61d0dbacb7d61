import protobuf from 'protobufjs';

/**
 * JSON paths for error messages, written the way Envoy's docs name fields:
 * `static_resources.clusters[0].transport_socket.typed_config.common_tls_context`.
 * An Any's fields continue the path of the field holding the Any, as in YAML.
 */
const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
export function childPath(path: string, key: string): string {
  if (PLAIN_KEY.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

export function indexPath(path: string, index: number): string {
  return `${path}[${index}]`;
}

/** "(root)" when the error is about the top-level message itself. */
export function at(path: string, message: string): string {
  return `${path === '' ? '(root)' : path}: ${message}`;
}

/** Full name without protobufjs's leading dot. */
export function typeName(type: protobuf.ReflectionObject): string {
  return type.fullName.startsWith('.') ? type.fullName.slice(1) : type.fullName;
}

/** The message name inside "type.googleapis.com/envoy.config.listener.v3.Listener" (or a bare name). */
export function messageNameOf(typeUrlOrName: string): string {
  const name = typeUrlOrName.slice(typeUrlOrName.lastIndexOf('/') + 1);
  return name.startsWith('.') ? name.slice(1) : name;
}

/** The message type a type URL names in the given root, or undefined (never throws). */
const lookups = new WeakMap<protobuf.Root, Map<string, protobuf.Type | undefined>>();
export function lookupMessage(root: protobuf.Root, typeUrlOrName: string): protobuf.Type | undefined {
  let cache = lookups.get(root);
  if (!cache) lookups.set(root, (cache = new Map()));
  if (cache.has(typeUrlOrName)) return cache.get(typeUrlOrName);
  const name = messageNameOf(typeUrlOrName);
  let type: protobuf.Type | undefined;
  try {
    const found = name === '' ? null : root.lookup(name);
    type = found instanceof protobuf.Type ? found : undefined;
  } catch {
    type = undefined;
  }
  cache.set(typeUrlOrName, type);
  return type;
}

/** proto3-JSON field name (protoc's ToJsonName): "foo_bar_baz" → "fooBarBaz". */
export function jsonName(fieldName: string): string {
  return fieldName.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()).replace(/_/g, '');
}

export function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value)}`;
  return `${typeof value} ${String(value)}`;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Uint8Array);
}

/** Key type of a map field (protobufjs types MapField apart from Field). */
export function mapKeyType(field: protobuf.Field): string {
  return (field as unknown as { keyType: string }).keyType;
}

/** The wrapper types (google.protobuf.*Value) and the scalar each wraps. */
export const WRAPPER_SCALARS: Readonly<Record<string, string>> = {
  'google.protobuf.DoubleValue': 'double',
  'google.protobuf.FloatValue': 'float',
  'google.protobuf.Int64Value': 'int64',
  'google.protobuf.UInt64Value': 'uint64',
  'google.protobuf.Int32Value': 'int32',
  'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'bytes',
};
