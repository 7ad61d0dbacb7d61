import protobuf from 'protobufjs';
import { envoyRoot, lookupType } from './protos.js';
import { normalizeProtoJson } from './proto-json.js';
import { checkPgv } from './pgv-rules.js';
import { scanWire } from './wire-scan.js';
import { at, lookupMessage, messageNameOf } from './proto-path.js';

/**
 * "Would Envoy accept this?" without an Envoy binary (Envoy has no Debian or npm package, so
 * neither the tests nor `meshd bootstrap` can ask one). Envoy parses config with its own protos,
 * rejects unknown fields and unknown Any types, then runs the protoc-gen-validate constraints
 * (MessageUtil::validate, envoy source/common/protobuf/utility.h). These functions do the same
 * against the Envoy protos meshd loads (src/envoy/protos.ts), and report every problem with its
 * JSON path, e.g.
 * `static_resources.clusters[0].transport_socket.typed_config.common_tls_context.tls_params.tls_minimum_protocol_version: unknown enum value "TLS1_2" (...)`.
 *
 * Paths use Envoy's snake_case field names; an Any's fields continue the path of the field that
 * holds it, as in YAML.
 */
type StrictDecodeResult =
  | {
      valid: true;
      /** The decoded protobufjs message (for an Any: the payload message). */
      message: protobuf.Message;
      /** Its wire encoding (for decodeStrictBytes/decodeStrictAny: the bytes given). */
      bytes: Uint8Array;
      /** Deprecated fields in use: Envoy accepts them with a warning. */
      warnings: string[];
    }
  | { valid: false; errors: string[]; warnings: string[] };

const TO_OBJECT: protobuf.IConversionOptions = { json: true, longs: String, enums: String, bytes: String, defaults: false };

function resolveType(typeUrlOrName: string): protobuf.Type | undefined {
  return lookupMessage(envoyRoot(), typeUrlOrName);
}

function unknownType(typeUrlOrName: string): StrictDecodeResult {
  return { valid: false, errors: [at('', `unknown message type ${JSON.stringify(messageNameOf(typeUrlOrName))}`)], warnings: [] };
}

/**
 * Decodes a config object as written in Envoy YAML/JSON (proto3-JSON: snake_case or lowerCamel
 * names, "5s" durations, bare wrappers, "@type" Anys, Struct as plain JSON) as the named message
 * (full name or type URL), strictly.
 */
export function decodeStrict(typeUrlOrName: string, json: unknown): StrictDecodeResult {
  const type = resolveType(typeUrlOrName);
  if (!type) return unknownType(typeUrlOrName);
  const normalized = normalizeProtoJson(type, json);
  if (normalized.errors.length > 0 || normalized.value === undefined) {
    // Constraint checks on a half-decoded object would only add noise ("required" for the
    // fields that failed to decode), so they wait until the structure is right.
    return { valid: false, errors: normalized.errors, warnings: normalized.warnings };
  }
  const errors: string[] = [];
  checkPgv(type, normalized.value, '', errors);
  if (errors.length > 0) return { valid: false, errors, warnings: normalized.warnings };
  try {
    const message = type.fromObject(normalized.value);
    const bytes = type.encode(message).finish();
    return { valid: true, message, bytes, warnings: normalized.warnings };
  } catch (err) {
    return { valid: false, errors: [at('', `protobufjs rejected the decoded object: ${err instanceof Error ? err.message : String(err)}`)], warnings: normalized.warnings };
  }
}

/**
 * Decodes wire bytes as the named message strictly: fields the type does not define (protobufjs
 * would skip them silently), wire-type mismatches and unknown Any types are errors, at any depth
 * inside Anys; then every PGV constraint is checked on the decoded message.
 * A type of google.protobuf.Any decodes the envelope and then its payload (see decodeStrictAny).
 */
export function decodeStrictBytes(typeUrlOrName: string, bytes: Uint8Array): StrictDecodeResult {
  const type = resolveType(typeUrlOrName);
  if (!type) return unknownType(typeUrlOrName);
  if (type.fullName === '.google.protobuf.Any') return decodeStrictAny(bytes);
  const errors: string[] = [];
  scanWire(type, bytes, '', errors);
  if (errors.length > 0) return { valid: false, errors, warnings: [] };
  let message: protobuf.Message;
  try {
    message = type.decode(bytes);
  } catch (err) {
    return { valid: false, errors: [at('', `malformed protobuf: ${err instanceof Error ? err.message : String(err)}`)], warnings: [] };
  }
  checkPgv(type, type.toObject(message, TO_OBJECT), '', errors);
  if (errors.length > 0) return { valid: false, errors, warnings: [] };
  return { valid: true, message, bytes, warnings: [] };
}

/**
 * A serialised google.protobuf.Any (a discovery Resource body): the type URL must name a message
 * meshd's Envoy protos define, and the payload must decode strictly as that message.
 * `message` in the result is the payload; `bytes` the Any as given.
 */
export function decodeStrictAny(anyBytes: Uint8Array): StrictDecodeResult {
  const anyType = lookupType('google.protobuf.Any');
  let any: { type_url: string; value: Uint8Array };
  try {
    any = anyType.decode(anyBytes) as unknown as { type_url: string; value: Uint8Array };
  } catch (err) {
    return { valid: false, errors: [at('', `malformed protobuf: ${err instanceof Error ? err.message : String(err)}`)], warnings: [] };
  }
  // The envelope has two fields; anything else in it re-encodes shorter.
  if (anyType.encode(any).finish().length !== anyBytes.length) {
    const errors: string[] = [];
    scanWire(anyType, anyBytes, '', errors);
    return { valid: false, errors: errors.length > 0 ? errors : [at('', 'google.protobuf.Any is not canonically encoded')], warnings: [] };
  }
  if (!any.type_url) return { valid: false, errors: [at('', 'google.protobuf.Any without type_url')], warnings: [] };
  const payload = decodeStrictBytes(any.type_url, any.value ?? new Uint8Array(0));
  return payload.valid ? { ...payload, bytes: anyBytes } : payload;
}

/** One line per error, for exceptions and CLI output. */
export function formatStrictErrors(typeUrlOrName: string, result: StrictDecodeResult): string {
  if (result.valid) return '';
  return `${messageNameOf(typeUrlOrName)} does not decode strictly:\n  ${result.errors.join('\n  ')}`;
}
