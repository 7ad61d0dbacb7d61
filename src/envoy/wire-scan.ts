import protobuf from 'protobufjs';
import { at, childPath, indexPath, lookupMessage, typeName, mapKeyType } from './proto-path.js';

/**
 * Walks protobuf wire bytes against a message type and reports what protobufjs's decoder
 * silently skips: field numbers the type does not define, wire types that do not fit the
 * field, and google.protobuf.Any payloads whose type URL meshd's protos do not know.
 * Any payloads are walked with their own type, so an unknown field three Anys deep is found
 * (Envoy, built from the same protos, would reject it as an unknown field).
 */
export function scanWire(type: protobuf.Type, bytes: Uint8Array, path: string, errors: string[]): void {
  try {
    scanMessage(type, bytes, path, errors);
  } catch (err) {
    errors.push(at(path, `malformed protobuf: ${err instanceof Error ? err.message : String(err)}`));
  }
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

function expectedWireType(field: protobuf.Field): number {
  if (field.resolvedType instanceof protobuf.Enum) return WIRE_VARINT;
  switch (field.type) {
    case 'double': case 'fixed64': case 'sfixed64': return WIRE_FIXED64;
    case 'float': case 'fixed32': case 'sfixed32': return WIRE_FIXED32;
    case 'int32': case 'int64': case 'uint32': case 'uint64': case 'sint32': case 'sint64': case 'bool': return WIRE_VARINT;
    default: return WIRE_LEN;
  }
}

function scanMessage(type: protobuf.Type, bytes: Uint8Array, path: string, errors: string[]): void {
  const reader = protobuf.Reader.create(bytes);
  const counts = new Map<number, number>();
  const isAny = typeName(type) === 'google.protobuf.Any';
  let anyUrl: string | undefined;
  let anyValue: Uint8Array | undefined;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const id = tag >>> 3;
    const wire = tag & 7;
    if (id === 0) throw new Error(`invalid tag 0 at byte ${reader.pos}`);
    const field = type.fieldsById[id];
    if (!field) {
      errors.push(at(path, `unknown field number ${id} (wire type ${wire}) in ${typeName(type)}`));
      reader.skipType(wire);
      continue;
    }
    const index = counts.get(id) ?? 0;
    counts.set(id, index + 1);
    const p = field.repeated || field.map ? indexPath(childPath(path, field.name), index) : childPath(path, field.name);
    const expected = field.map ? WIRE_LEN : expectedWireType(field);
    const packed = field.repeated && !field.map && wire === WIRE_LEN && expected !== WIRE_LEN;
    if (wire !== expected && !packed) {
      errors.push(at(p, `wire type ${wire} does not fit field ${field.name} (${field.type}, wire type ${expected})`));
      reader.skipType(wire);
      continue;
    }
    if (field.map) {
      scanMapEntry(field, reader.bytes(), childPath(path, field.name), errors);
    } else if (field.resolvedType instanceof protobuf.Type && wire === WIRE_LEN) {
      const sub = reader.bytes();
      scanMessage(field.resolvedType, sub, p, errors);
    } else if (isAny && id === 1 && wire === WIRE_LEN) {
      anyUrl = reader.string();
    } else if (isAny && id === 2 && wire === WIRE_LEN) {
      anyValue = reader.bytes();
    } else {
      reader.skipType(wire);
    }
  }
  if (isAny && anyUrl !== undefined) {
    const target = lookupMessage(type.root as protobuf.Root, anyUrl);
    if (!target) errors.push(at(path, `unknown @type ${JSON.stringify(anyUrl)} (not a message type meshd's Envoy protos define)`));
    else scanMessage(target, anyValue ?? new Uint8Array(0), path, errors);
  } else if (isAny && anyValue !== undefined && anyValue.length > 0) {
    errors.push(at(path, 'google.protobuf.Any has a value but no type_url'));
  }
}

function scanMapEntry(field: protobuf.Field, entry: Uint8Array, path: string, errors: string[]): void {
  const reader = protobuf.Reader.create(entry);
  let key = '?';
  let value: Uint8Array | undefined;
  while (reader.pos < reader.len) {
    const tag = reader.uint32();
    const id = tag >>> 3;
    const wire = tag & 7;
    if (id === 1 && mapKeyType(field) === 'string' && wire === WIRE_LEN) key = reader.string();
    else if (id === 1 && wire === WIRE_VARINT) key = reader.int64().toString();
    else if (id === 2 && wire === WIRE_LEN && field.resolvedType instanceof protobuf.Type) value = reader.bytes();
    else if (id === 1 || id === 2) reader.skipType(wire);
    else {
      errors.push(at(path, `unknown field number ${id} in a map entry`));
      reader.skipType(wire);
    }
  }
  if (value !== undefined && field.resolvedType instanceof protobuf.Type) {
    scanMessage(field.resolvedType, value, childPath(path, key), errors);
  }
}
