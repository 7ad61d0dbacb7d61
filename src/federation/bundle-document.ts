import type { SpiffeBundleDocument } from '../ca/bundle.js';
import { checkForeignAuthority, type AuthorityRefusal } from './foreign-authority.js';
import { describeJson, isJsonObject, JsonSyntaxError, parseStrictJson, type JsonObject, type JsonValue } from './strict-json.js';

/**
 * The SPIFFE bundle document (SPIFFE Trust Domain and Bundle §4, X509-SVID §6): an RFC 7517
 * JWK Set with `keys`, `spiffe_sequence` and `spiffe_refresh_hint`.
 *
 * meshd's own bundle is written by the CA (ca/bundle.ts); encodeBundleDocument gives the
 * bytes served on /trust-bundle and on the federation port alike.
 *
 * A foreign bundle is read strictly, because whatever it holds becomes a signer for that
 * trust domain's identities:
 * - JWKs with a missing or unknown `use`, or an unknown `kty`, are skipped (§4.2.1, §4.2.2
 *   say MUST ignore). `jwt-svid` keys are skipped too: meshd validates X.509-SVIDs only.
 * - An x509-svid JWK must hold exactly one certificate in `x5c` and no `kid`
 *   (X509-SVID §6.1, as go-spiffe's spiffebundle.Read insists), be a CA of this trust domain,
 *   and describe its certificate's key. X509-SVID §6.2 lets a consumer skip an entry without
 *   `x5c` and use the first of several; meshd refuses the document instead: a producer that
 *   breaks §6.1 is broken, and skipping could empty the bundle, which §4.1.3 reads as
 *   "revoke every identity of the trust domain".
 * - A document with no usable X.509 authority is refused for the same reason: meshd keeps the
 *   last good bundle and reports it, rather than let one bad response cut a federation.
 *   Ending a federation is done by deleting it from the config (SPIFFE Federation §6.3).
 * - Duplicate member names, wrong types, more than MAX_BUNDLE_BYTES or MAX_BUNDLE_KEYS are
 *   refused. Unknown top-level members are allowed (§4.1 MAY).
 */

export const MAX_BUNDLE_BYTES = 512 * 1024;
/**
 * A JWK with an RSA-4096 root is about 3 KB; SPIRE keeps a handful of X.509 roots and
 * JWT keys at once. 128 keys is far above real bundles and keeps parsing bounded.
 */
export const MAX_BUNDLE_KEYS = 128;
/** A DER certificate in x5c; real CA certificates are 0.5-2 KB. */
const MAX_CERTIFICATE_BYTES = 16 * 1024;
const MAX_UINT64 = (1n << 64n) - 1n;

export type BundleRefusal = 'too-large' | 'malformed-json' | 'invalid-jwks' | 'no-x509-authorities' | AuthorityRefusal;

export interface ForeignBundle {
  trustDomain: string;
  /** The X.509 authorities, PEM, in document order (duplicates dropped). */
  rootsPem: readonly string[];
  /** spiffe_sequence when the document has one (64-bit, §4.1.1). */
  sequence?: bigint;
  /** spiffe_refresh_hint in seconds when the document has one. */
  refreshHintSeconds?: number;
  /** JWKs skipped as the spec says, each with why: for the log. */
  skipped: readonly string[];
}

export type BundleParse = { ok: true; bundle: ForeignBundle } | { ok: false; reason: BundleRefusal; message: string };

export interface BundleLimits {
  maxBytes?: number;
  maxKeys?: number;
}

/** meshd's own bundle as served: the CA's JWK Set, pretty-printed, newline-terminated. */
export function encodeBundleDocument(doc: SpiffeBundleDocument): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

class Refused extends Error {
  constructor(readonly reason: BundleRefusal, message: string) {
    super(message);
  }
}

function integer(v: JsonValue, name: string): bigint {
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) return BigInt(v);
  throw new Refused('invalid-jwks', `${name} must be an integer, got ${describeJson(v)}`);
}

function decodeText(input: string | Uint8Array): string {
  if (typeof input === 'string') return input;
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: false }).decode(input);
  } catch {
    throw new Refused('malformed-json', 'the document is not UTF-8 text');
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function readKeys(keys: JsonValue[], trustDomain: string, skipped: string[]): string[] {
  const roots: string[] = [];
  keys.forEach((jwk, i) => {
    const where = `keys[${i}]`;
    if (!isJsonObject(jwk)) throw new Refused('invalid-jwks', `${where} must be a JWK object, got ${describeJson(jwk)}`);
    const use = jwk.use;
    if (use !== 'x509-svid') {
      skipped.push(`${where}: ${use === undefined ? 'no "use"' : use === 'jwt-svid' ? 'a jwt-svid key (meshd validates X.509-SVIDs only)' : `unknown "use" ${typeof use === 'string' ? JSON.stringify(use.slice(0, 40)) : describeJson(use)}`}`);
      return;
    }
    if (typeof jwk.kty !== 'string') throw new Refused('invalid-jwks', `${where}.kty must be a string, got ${describeJson(jwk.kty)}`);
    if (jwk.kty !== 'EC' && jwk.kty !== 'RSA') {
      skipped.push(`${where}: key type ${JSON.stringify(jwk.kty.slice(0, 40))} is not one meshd can check`);
      return;
    }
    if (jwk.kid !== undefined) throw new Refused('invalid-jwks', `${where} has a "kid"; an x509-svid JWK must not (X509-SVID §6.1)`);
    const x5c = jwk.x5c;
    if (!Array.isArray(x5c)) throw new Refused('invalid-jwks', `${where}.x5c must be an array holding the CA certificate, got ${describeJson(x5c)}`);
    if (x5c.length !== 1) throw new Refused('invalid-jwks', `${where}.x5c must hold exactly one certificate, got ${x5c.length} (X509-SVID §6.1)`);
    const b64 = x5c[0];
    if (typeof b64 !== 'string' || !BASE64.test(b64)) throw new Refused('invalid-jwks', `${where}.x5c[0] must be a standard base64 DER certificate`);
    if ((b64.length / 4) * 3 > MAX_CERTIFICATE_BYTES) throw new Refused('too-large', `${where}.x5c[0] is larger than ${MAX_CERTIFICATE_BYTES} bytes`);
    const checked = checkForeignAuthority(Buffer.from(b64, 'base64'), jwk as JsonObject, trustDomain, where);
    if (!checked.ok) throw new Refused(checked.reason, checked.message);
    if (roots.includes(checked.pem)) skipped.push(`${where}: the same certificate as an earlier key`);
    else roots.push(checked.pem);
  });
  return roots;
}

function parse(input: string | Uint8Array, trustDomain: string, limits: BundleLimits): ForeignBundle {
  const maxBytes = limits.maxBytes ?? MAX_BUNDLE_BYTES;
  const size = typeof input === 'string' ? Buffer.byteLength(input) : input.byteLength;
  if (size > maxBytes) throw new Refused('too-large', `the document is ${size} bytes, above the ${maxBytes}-byte limit`);
  let doc: JsonValue;
  try {
    doc = parseStrictJson(decodeText(input));
  } catch (err) {
    if (err instanceof JsonSyntaxError) throw new Refused('malformed-json', `not JSON: ${err.message}`);
    throw err;
  }
  if (!isJsonObject(doc)) throw new Refused('invalid-jwks', `a SPIFFE bundle is a JSON object (a JWK Set), got ${describeJson(doc)}`);
  const keys = doc.keys;
  if (keys === undefined) throw new Refused('invalid-jwks', 'the JWK Set has no "keys" member');
  if (!Array.isArray(keys)) throw new Refused('invalid-jwks', `"keys" must be an array, got ${describeJson(keys)}`);
  const maxKeys = limits.maxKeys ?? MAX_BUNDLE_KEYS;
  if (keys.length > maxKeys) throw new Refused('too-large', `the bundle has ${keys.length} keys, above the limit of ${maxKeys}`);

  const out: { trustDomain: string; rootsPem: readonly string[]; sequence?: bigint; refreshHintSeconds?: number; skipped: string[] } = { trustDomain, rootsPem: [], skipped: [] };
  if (doc.spiffe_sequence !== undefined) {
    const seq = integer(doc.spiffe_sequence, 'spiffe_sequence');
    if (seq < 0n || seq > MAX_UINT64) throw new Refused('invalid-jwks', `spiffe_sequence ${seq} is outside 0..2^64-1`);
    out.sequence = seq;
  }
  if (doc.spiffe_refresh_hint !== undefined) {
    const hint = integer(doc.spiffe_refresh_hint, 'spiffe_refresh_hint');
    if (hint < 0n) throw new Refused('invalid-jwks', `spiffe_refresh_hint ${hint} is negative`);
    // Seconds; anything beyond a safe integer is far above any refresh ceiling anyway.
    out.refreshHintSeconds = hint > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(hint);
  }
  out.rootsPem = readKeys(keys, trustDomain, out.skipped);
  if (out.rootsPem.length === 0) {
    const why = keys.length === 0
      ? '"keys" is empty, which would revoke every identity of the trust domain'
      : `none of its ${keys.length} keys is a usable x509-svid authority (${out.skipped.slice(0, 3).join('; ')})`;
    throw new Refused('no-x509-authorities', `${why}; refusing it rather than distrusting ${trustDomain} (remove its ClusterFederatedTrustDomain to end the federation)`);
  }
  return out;
}

/** Reads a foreign trust domain's bundle; never throws for bad input. */
export function parseBundleDocument(input: string | Uint8Array, trustDomain: string, limits: BundleLimits = {}): BundleParse {
  try {
    return { ok: true, bundle: parse(input, trustDomain, limits) };
  } catch (err) {
    if (err instanceof Refused) return { ok: false, reason: err.reason, message: err.message };
    throw err;
  }
}
