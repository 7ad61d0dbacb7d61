/**
 * Envoy's messages in proto3 JSON, the form Envoy reads from a YAML or JSON file (a bootstrap),
 * as types: `ProtoJson<Bootstrap>` is the generated Bootstrap with every well-known type in its
 * JSON spelling (https://protobuf.dev/programming-guides/json/):
 *
 * - Duration and Timestamp: strings ("5s", "2024-01-02T03:04:05Z");
 * - wrappers (UInt32Value, BoolValue, ...): the bare value;
 * - Struct: a plain JSON object; Value: any JSON value; ListValue: a JSON array;
 * - Any: `{'@type', ...fields}`, as in the object form, with its fields in JSON form too.
 *
 * Field names stay Envoy's snake_case (Envoy's loader accepts them and the lowerCamel JSON names).
 * src/envoy/proto-json.ts turns this form back into the object form protobufjs encodes.
 *
 * How: each well-known type gets an optional property under a symbol no value has, whose type is
 * its JSON form; ProtoJson reads it there and maps every other message field by field.
 */
declare const JSON_FORM: unique symbol;

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

declare module './generated/google/protobuf/Duration.js' {
  interface Duration { readonly [JSON_FORM]?: string }
}
declare module './generated/google/protobuf/Timestamp.js' {
  interface Timestamp { readonly [JSON_FORM]?: string }
}
declare module './generated/google/protobuf/DoubleValue.js' {
  interface DoubleValue { readonly [JSON_FORM]?: number | 'NaN' | 'Infinity' | '-Infinity' }
}
declare module './generated/google/protobuf/FloatValue.js' {
  interface FloatValue { readonly [JSON_FORM]?: number | 'NaN' | 'Infinity' | '-Infinity' }
}
declare module './generated/google/protobuf/Int64Value.js' {
  interface Int64Value { readonly [JSON_FORM]?: number | string }
}
declare module './generated/google/protobuf/UInt64Value.js' {
  interface UInt64Value { readonly [JSON_FORM]?: number | string }
}
declare module './generated/google/protobuf/Int32Value.js' {
  interface Int32Value { readonly [JSON_FORM]?: number }
}
declare module './generated/google/protobuf/UInt32Value.js' {
  interface UInt32Value { readonly [JSON_FORM]?: number }
}
declare module './generated/google/protobuf/BoolValue.js' {
  interface BoolValue { readonly [JSON_FORM]?: boolean }
}
declare module './generated/google/protobuf/StringValue.js' {
  interface StringValue { readonly [JSON_FORM]?: string }
}
declare module './generated/google/protobuf/BytesValue.js' {
  interface BytesValue { readonly [JSON_FORM]?: string }
}
declare module './generated/google/protobuf/Struct.js' {
  interface Struct { readonly [JSON_FORM]?: { [key: string]: JsonValue } }
}
declare module './generated/google/protobuf/Value.js' {
  interface Value { readonly [JSON_FORM]?: JsonValue }
}
declare module './generated/google/protobuf/ListValue.js' {
  interface ListValue { readonly [JSON_FORM]?: JsonValue[] }
}

/**
 * A message type in proto3 JSON form. A message type without the JSON_FORM property does not
 * extend the branded object (TypeScript's weak-type rule: no property in common), so only the
 * well-known types take their JSON spelling; an empty message (e.g. AggregatedConfigSource)
 * extends it with nothing to infer and is mapped as a message.
 */
export type ProtoJson<T> =
  T extends string | number | boolean | null | undefined | Uint8Array ? T
    : T extends ReadonlyArray<infer E> ? Array<ProtoJson<E>>
      : T extends { readonly [JSON_FORM]?: infer J } ? (unknown extends J ? { [K in keyof T]: ProtoJson<T[K]> } : Exclude<J, undefined>)
        : { [K in keyof T]: ProtoJson<T[K]> };
