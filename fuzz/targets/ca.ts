import * as fc from 'fast-check';
import { generateKeyPairSync, X509Certificate } from 'node:crypto';
import { generateWorkloadKey } from '../../src/agent/workload-csr.js';
import { CsrError, parseCsr } from '../../src/ca/csr.js';
import { childrenOf, DerError, isConstructed, readDer, type Element } from '../../src/ca/der-reader.js';
import { CertificateParseError, decodeAuthorityKeyId, decodeBasicConstraints, decodeExtKeyUsage, decodeKeyUsage, decodeSubjectAltName, decodeSubjectKeyId, parseCertificate, publicKeyParts } from '../../src/ca/x509-parse.js';
import { OID } from '../../src/ca/oids.js';
import { decodePem } from '../../src/ca/pem.js';
import { nodeCsr, testCa } from '../../test/ca/helpers.js';
import { ContractViolation, expectedError, text, utf8, type FuzzTarget } from '../target.js';

/** Certificates and CSRs meshd makes, the seeds of the DER-level targets. */
async function caMaterial(): Promise<{ certs: Uint8Array[]; csrs: string[] }> {
  const certs: Uint8Array[] = [];
  for (const keyType of ['ec-p256', 'rsa-2048'] as const) {
    const ca = await testCa({ keyType: keyType === 'ec-p256' ? 'ec-p256' : 'rsa-2048' });
    certs.push(ca.root.certDer);
    const leaf = await ca.issuer.issue({ spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', keyType });
    certs.push(new X509Certificate(leaf.certPem).raw);
  }
  const csrs = [
    (await generateWorkloadKey('ec-p256', 'spiffe://cluster.local/ns/shop/sa/web')).csrPem,
    (await generateWorkloadKey('rsa-2048', 'spiffe://cluster.local/ns/pay/sa/api')).csrPem,
  ];
  return { certs, csrs };
}

/** Walks every element, as the readers above it do. */
function walk(e: Element, depth: number): void {
  if (depth > 64 || !isConstructed(e)) return;
  for (const c of childrenOf(e, 'element')) walk(c, depth + 1);
}

export const der: FuzzTarget = {
  name: 'der',
  about: 'readDer + childrenOf over every element (src/ca/der-reader.ts): a value or DerError',
  seeds: async () => (await caMaterial()).certs,
  check(input) {
    try {
      walk(readDer(Buffer.from(input), 'fuzz'), 0);
      return 'ok';
    } catch (err) {
      return expectedError(err, DerError);
    }
  },
};

export const x509: FuzzTarget = {
  name: 'x509',
  about: 'parseCertificate + the extension and key decoders (src/ca/x509-parse.ts): a value or CertificateParseError/DerError',
  seeds: async () => (await caMaterial()).certs,
  check(input) {
    let cert;
    try {
      cert = parseCertificate(input, 'fuzz');
    } catch (err) {
      return `parse ${expectedError(err, CertificateParseError, DerError)}`;
    }
    const decoders: Record<string, (v: Buffer) => unknown> = {
      [OID.basicConstraints]: decodeBasicConstraints, [OID.keyUsage]: decodeKeyUsage, [OID.extKeyUsage]: decodeExtKeyUsage,
      [OID.subjectAltName]: decodeSubjectAltName, [OID.subjectKeyIdentifier]: decodeSubjectKeyId, [OID.authorityKeyIdentifier]: decodeAuthorityKeyId,
    };
    let outcome = 'ok';
    for (const ext of cert.extensions) {
      const decode = decoders[ext.oid];
      if (!decode) continue;
      try {
        decode(ext.value);
      } catch (err) {
        outcome = `extension ${expectedError(err, CertificateParseError, DerError)}`;
      }
    }
    try {
      publicKeyParts(cert.spki);
    } catch (err) {
      outcome = `key ${expectedError(err, CertificateParseError, DerError)}`;
    }
    return outcome;
  },
};

export const csr: FuzzTarget = {
  name: 'csr',
  about: 'parseCsr (src/ca/csr.ts) on PEM text from any CSR API client: a value or CsrError; key and SAN read back',
  seeds: async () => {
    const { csrs } = await caMaterial();
    // The DER inside too, so mutations reach the ASN.1 and not only the PEM armour.
    return [...csrs.map(utf8), ...csrs.map((p) => decodePem(p, 'seed')[0]!.der)];
  },
  check(input) {
    // Half the inputs as PEM text, the rest as DER wrapped in PEM: both reach parseCsr.
    const pem = input[0] === 0x30 ? `-----BEGIN CERTIFICATE REQUEST-----\n${Buffer.from(input).toString('base64')}\n-----END CERTIFICATE REQUEST-----\n` : text(input);
    try {
      parseCsr(pem);
      return 'ok';
    } catch (err) {
      return expectedError(err, CsrError);
    }
  },
  property: {
    arbitrary: fc.record({ uri: fc.stringMatching(/^spiffe:\/\/[a-z0-9.-]{1,30}\/ns\/[a-z0-9-]{1,20}\/sa\/[ -~]{1,40}$/), rsa: fc.boolean() }),
    check(value) {
      const v = value as { uri: string; rsa: boolean };
      const key = keys[v.rsa ? 1 : 0]!;
      const spki = key.publicKey.export({ type: 'spki', format: 'der' });
      const parsed = parseCsr(nodeCsr(key.privateKey, spki, { uri: v.uri }));
      if (!parsed.spki.equals(spki) || parsed.requestedUris.length !== 1 || parsed.requestedUris[0] !== v.uri) {
        throw new ContractViolation(`round trip of ${JSON.stringify(v.uri)}: ${JSON.stringify(parsed.requestedUris)}, same key: ${parsed.spki.equals(spki)}`);
      }
    },
  },
};

/** One EC and one RSA key for the round trip (a fresh key per run would spend the time on keygen). */
const keys = [generateKeyPairSync('ec', { namedCurve: 'P-256' }), generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent: 65537 })];
