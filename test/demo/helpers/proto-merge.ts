import protobuf from 'protobufjs';

/**
 * protobuf's MergeFrom on decoded protobufjs messages: what Envoy does with `--config-yaml`
 * (the bootstrap from --config-path, then `bootstrap.MergeFrom(config_yaml)`).
 *
 * Needed because protobufjs's decoder does not merge: concatenating two encodings, which by the
 * protobuf spec parses to their merge, makes protobufjs keep only the last copy of a singular
 * message field. The spec's rules (protobuf "Merging" in the encoding guide):
 * - repeated fields: appended; map fields: entries by key, the later one wins;
 * - singular message fields present in both: merged recursively;
 * - scalars, enums, bytes, strings present in `from`: overwrite; a oneof member set in `from`
 *   clears the other members first.
 * Presence: a field is present when it was on the wire (an own property of a decoded message).
 */
export function mergeFrom(type: protobuf.Type, into: protobuf.Message, from: protobuf.Message): void {
  const target = into as unknown as Record<string, unknown>;
  const source = from as unknown as Record<string, unknown>;
  for (const field of type.fieldsArray) {
    if (!Object.prototype.hasOwnProperty.call(source, field.name)) continue;
    const value = source[field.name];
    field.resolve();
    if (field.map) {
      target[field.name] = { ...((target[field.name] as object | undefined) ?? {}), ...(value as object) };
      continue;
    }
    if (field.repeated) {
      const had = Object.prototype.hasOwnProperty.call(target, field.name) ? (target[field.name] as unknown[]) : [];
      target[field.name] = [...had, ...(value as unknown[])];
      continue;
    }
    if (field.partOf) {
      for (const other of field.partOf.fieldsArray) if (other !== field) delete target[other.name];
    }
    const nested = field.resolvedType;
    if (nested instanceof protobuf.Type && Object.prototype.hasOwnProperty.call(target, field.name) && target[field.name] != null) {
      mergeFrom(nested, target[field.name] as protobuf.Message, value as protobuf.Message);
      continue;
    }
    target[field.name] = value;
  }
}

/** The bytes Envoy's merged message would encode to: base, then each overlay merged in. */
export function mergeEncoded(type: protobuf.Type, base: Uint8Array, ...overlays: Uint8Array[]): Uint8Array {
  const merged = type.decode(base);
  for (const o of overlays) mergeFrom(type, merged, type.decode(o));
  return type.encode(merged).finish();
}
