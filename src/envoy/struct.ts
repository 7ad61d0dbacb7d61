import type { Struct } from './messages.js';

/**
 * A google.protobuf.Struct of string values: all the metadata meshd writes (endpoint metadata,
 * transport_socket_matches). protobufjs bundles google/protobuf/struct.proto with lowerCamel field
 * names (`stringValue`), unlike the Envoy protos loaded with keepCase; the generated Value type
 * says so too, and a snake_case `string_value` would be dropped without a word.
 */
export function stringStruct(values: Record<string, string>): Struct {
  const fields: Record<string, { stringValue: string }> = {};
  for (const [k, v] of Object.entries(values)) fields[k] = { stringValue: v };
  return { fields };
}
