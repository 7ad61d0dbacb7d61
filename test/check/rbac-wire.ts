import { decodeMessage, encodeAny, encodeMessage } from '../../src/envoy/protos.js';
import { decodeStrictAny, formatStrictErrors } from '../../src/envoy/strict-decode.js';

/**
 * An RBAC filter as Envoy would see it: its typed_config encoded, decoded strictly against
 * Envoy's protos (unknown fields and Any types, PGV rules: src/xds/strict-decode.ts) and read
 * back from the bytes, so proto3 defaults are gone exactly as on the wire. Throws with every
 * problem when Envoy would reject the config.
 */
export function throughEnvoyProtos<F extends { typed_config: { '@type': string } }>(filter: F): F {
  const type = filter.typed_config['@type'];
  const value = filter.typed_config as unknown as Record<string, unknown>;
  const strict = decodeStrictAny(encodeAny(type, value));
  if (!strict.valid) throw new Error(formatStrictErrors(type, strict));
  const decoded = decodeMessage(type, encodeMessage(type, value));
  return { ...filter, typed_config: { '@type': type, ...decoded } };
}
