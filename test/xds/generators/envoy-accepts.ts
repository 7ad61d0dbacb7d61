import { encodeAny, lookupType, typeNameOf } from '../../../src/envoy/protos.js';
import { decodeStrictAny, formatStrictErrors } from '../../../src/envoy/strict-decode.js';

/**
 * Would Envoy accept this generated resource? Two checks:
 * 1. the encoded Any decodes strictly against Envoy's protos (unknown fields and Any types
 *    rejected, PGV constraints such as required fields and ranges checked: src/envoy/strict-decode.ts);
 * 2. nothing the generator wrote was dropped on the way: protobufjs's fromObject silently
 *    ignores a misspelt field, so every leaf of the built object must come back from the bytes.
 * Returns the problems, empty when the resource is fine.
 */
export function envoyRejects(typeUrl: string, value: object): string[] {
  const bytes = encodeAny(typeUrl, value);
  const strict = decodeStrictAny(bytes);
  if (!strict.valid) return [formatStrictErrors(typeUrl, strict)];
  const type = lookupType(typeNameOf(typeUrl));
  const decoded = type.toObject(strict.message, { json: true, longs: String, enums: String, bytes: String, defaults: false });
  const lost: string[] = [];
  lostFields(value, decoded, '', lost);
  return lost.map((p) => `${p}: written by the generator but not in the encoded message (misspelt or misplaced field)`);
}

function isDefault(v: unknown): boolean {
  return v === false || v === 0 || v === '' || v === '0' || (Array.isArray(v) && v.length === 0);
}

function lostFields(written: unknown, decoded: unknown, path: string, out: string[]): void {
  if (written === null || written === undefined) return;
  if (Array.isArray(written)) {
    if (!Array.isArray(decoded)) {
      if (written.length > 0) out.push(path);
      return;
    }
    written.forEach((w, i) => lostFields(w, decoded[i], `${path}[${i}]`, out));
    return;
  }
  if (typeof written === 'object') {
    if (decoded === undefined || decoded === null || typeof decoded !== 'object') {
      // An empty message ({}), or a wrapper/Duration holding only defaults, encodes as present-but-empty.
      if (Object.values(written as object).some((v) => !isDefault(v) && !(typeof v === 'object' && v !== null && Object.keys(v).length === 0))) out.push(path);
      return;
    }
    for (const [k, v] of Object.entries(written as Record<string, unknown>)) {
      const d = (decoded as Record<string, unknown>)[k];
      if (d === undefined) {
        // Scalars at their default value are not on the wire; a message field, even empty, is.
        if (isDefault(v)) continue;
        out.push(`${path}.${k}`);
        continue;
      }
      lostFields(v, d, `${path}.${k}`, out);
    }
    return;
  }
  if (String(written) !== String(decoded)) out.push(`${path} (wrote ${String(written)}, got ${String(decoded)})`);
}
