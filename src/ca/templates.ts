import type { LeafKeyType } from './types.js';
import { explicit, ia5Bytes, implicitPrimitive, namedBits, octetString, oid, printableString, sequence, set, TRUE, utf8String } from './der.js';
import { keyIdentifier } from './keys.js';
import { KeyUsageBit, OID } from './oids.js';
import { trustDomainId } from './spiffe-id.js';

/**
 * Certificate templates as pure data: what goes in a root and a leaf X.509-SVID, decided
 * here and nowhere else (as SPIRE's credtemplate/builder.go). No clock, no I/O: `now` and
 * the serial are passed in, so tests pin every field.
 */

export interface Extension {
  oid: string;
  critical: boolean;
  /** The DER value wrapped in extnValue's OCTET STRING. */
  value: Buffer;
}

export interface CertificateTemplate {
  /** DER INTEGER content of the serial (positive, minimal). */
  serial: Buffer;
  /** DER Name of the issuer: the signer's subject, byte for byte. */
  issuer: Buffer;
  /** DER Name; an empty SEQUENCE for leaves. */
  subject: Buffer;
  /** Whole seconds, ms since the epoch. */
  notBefore: number;
  notAfter: number;
  /** DER SubjectPublicKeyInfo of the key being certified. */
  spki: Buffer;
  extensions: Extension[];
}

/** What a template needs from the certificate that will sign it. */
export interface IssuerInfo {
  subject: Buffer;
  subjectKeyId: Buffer;
  notBefore: number;
  notAfter: number;
}

/** Istio's ClockSkewGracePeriod: leaves are valid from 2 minutes before issuance. */
export const CLOCK_SKEW_BACKDATE_MS = 2 * 60_000;

export const EMPTY_NAME = sequence();

function floorSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

function extension(oidText: string, critical: boolean, value: Buffer): Extension {
  return { oid: oidText, critical, value };
}

/**
 * Encodings of the extensions every leaf of a signer shares, made once. Only these are
 * cached: a per-certificate extension (SKI, SAN) is encoded once anyway, and an entry per
 * SVID in a WeakMap is an ephemeron the garbage collector has to trace at fleet scale.
 */
const encodedCache = new WeakMap<Extension, Buffer>();

function shared(e: Extension): Extension {
  encodedCache.set(e, encodeExtensionValue(e));
  return e;
}

const CA_BASIC_CONSTRAINTS = shared(extension(OID.basicConstraints, true, sequence(TRUE)));
/** cA=false is the DEFAULT, so DER omits it: an empty SEQUENCE (X.690 §11.5). */
const LEAF_BASIC_CONSTRAINTS = shared(extension(OID.basicConstraints, true, sequence()));
const CA_KEY_USAGE = shared(extension(OID.keyUsage, true, namedBits([KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign])));
const EC_LEAF_KEY_USAGE = shared(extension(OID.keyUsage, true, namedBits([KeyUsageBit.digitalSignature])));
/** RSA key exchange (TLS 1.2 RSA kx) needs keyEncipherment; Istio sets both for every leaf. */
const RSA_LEAF_KEY_USAGE = shared(extension(OID.keyUsage, true, namedBits([KeyUsageBit.digitalSignature, KeyUsageBit.keyEncipherment])));
const SVID_EXT_KEY_USAGE = shared(extension(OID.extKeyUsage, false, sequence(oid(OID.serverAuth), oid(OID.clientAuth))));

function subjectKeyId(spki: Buffer): { ext: Extension; id: Buffer } {
  const id = keyIdentifier(spki);
  return { id, ext: extension(OID.subjectKeyIdentifier, false, octetString(id)) };
}

const akiCache = new WeakMap<Buffer, Extension>();

/** One AKI extension object per signer key id, so its encoding is cached too. */
function authorityKeyId(issuerKeyId: Buffer): Extension {
  let ext = akiCache.get(issuerKeyId);
  if (!ext) {
    ext = shared(extension(OID.authorityKeyIdentifier, false, sequence(implicitPrimitive(0, issuerKeyId))));
    akiCache.set(issuerKeyId, ext);
  }
  return ext;
}

/** GeneralNames: URIs as [6] IA5String, DNS names as [2] IA5String (RFC 5280 §4.2.1.6). */
function subjectAltName(critical: boolean, uris: string[], dnsNames: string[] = []): Extension {
  return extension(OID.subjectAltName, critical, sequence(
    ...uris.map((u) => implicitPrimitive(6, ia5Bytes(u))),
    ...dnsNames.map((d) => implicitPrimitive(2, ia5Bytes(d))),
  ));
}

function rdn(attrOid: string, value: Buffer): Buffer {
  return set(sequence(oid(attrOid), value));
}

/**
 * Root subject: O=<trust domain> (Istio), plus serialNumber=<cert serial> (SPIRE does the
 * same) so that a rotated root never shares its Name with its predecessor: chain builders
 * that look issuers up by Name alone then still find the right one.
 */
export function rootSubject(trustDomain: string, serial: Buffer): Buffer {
  const decimal = BigInt(`0x${serial.toString('hex')}`).toString(10);
  return sequence(rdn(OID.organizationName, utf8String(trustDomain)), rdn(OID.serialNumber, printableString(decimal)));
}

export interface RootTemplateInput {
  trustDomain: string;
  spki: Buffer;
  serial: Buffer;
  now: number;
  ttlMs: number;
}

/** A self-signed SPIFFE root: cA, keyCertSign+cRLSign critical, URI SAN spiffe://<td> (X509-SVID §4.1). */
export function rootTemplate(input: RootTemplateInput): CertificateTemplate {
  const subject = rootSubject(input.trustDomain, input.serial);
  const ski = subjectKeyId(input.spki);
  return {
    serial: input.serial,
    issuer: subject,
    subject,
    notBefore: floorSecond(input.now - CLOCK_SKEW_BACKDATE_MS),
    notAfter: floorSecond(input.now + input.ttlMs),
    spki: input.spki,
    extensions: [
      CA_BASIC_CONSTRAINTS,
      CA_KEY_USAGE,
      ski.ext,
      // Subject is not empty, so the SAN need not be critical (RFC 5280 §4.2.1.6).
      subjectAltName(false, [trustDomainId(input.trustDomain)]),
    ],
  };
}

export interface LeafTemplateInput {
  /** Already validated by the caller (spiffe-id.ts). */
  spiffeId: string;
  dnsNames?: string[];
  spki: Buffer;
  keyType: LeafKeyType;
  serial: Buffer;
  now: number;
  ttlMs: number;
  issuer: IssuerInfo;
}

/**
 * A leaf X.509-SVID (X509-SVID §4, §5): exactly one URI SAN; empty subject, so the SAN is
 * critical (RFC 5280 §4.1.2.6); cA=false; critical keyUsage digitalSignature (+
 * keyEncipherment for RSA); EKU serverAuth+clientAuth; SKI/AKI; valid from 2 minutes ago
 * until now+TTL, capped at the signer's notAfter (Istio and SPIRE both cap).
 */
export function leafTemplate(input: LeafTemplateInput): CertificateTemplate {
  return {
    serial: input.serial,
    issuer: input.issuer.subject,
    subject: EMPTY_NAME,
    notBefore: floorSecond(input.now - CLOCK_SKEW_BACKDATE_MS),
    notAfter: Math.min(floorSecond(input.now + input.ttlMs), input.issuer.notAfter),
    spki: input.spki,
    extensions: [
      LEAF_BASIC_CONSTRAINTS,
      input.keyType === 'rsa-2048' ? RSA_LEAF_KEY_USAGE : EC_LEAF_KEY_USAGE,
      SVID_EXT_KEY_USAGE,
      subjectKeyId(input.spki).ext,
      authorityKeyId(input.issuer.subjectKeyId),
      subjectAltName(true, [input.spiffeId], input.dnsNames),
    ],
  };
}

/** [3] EXPLICIT Extensions, for x509-encode.ts. */
export function encodeExtensions(extensions: Extension[]): Buffer {
  return explicit(3, sequence(...extensions.map(encodeExtension)));
}

export function encodeExtension(e: Extension): Buffer {
  return encodedCache.get(e) ?? encodeExtensionValue(e);
}

function encodeExtensionValue(e: Extension): Buffer {
  // critical DEFAULT FALSE: DER writes the BOOLEAN only when TRUE.
  return e.critical
    ? sequence(oid(e.oid), TRUE, octetString(e.value))
    : sequence(oid(e.oid), octetString(e.value));
}
