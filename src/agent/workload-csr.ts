import { sign } from 'node:crypto';
import { generateKey } from '../ca/keys.js';
import type { LeafKeyType } from '../ca/types.js';
import { OID } from '../ca/oids.js';
import { bitString, explicit, ia5Bytes, implicitPrimitive, octetString, oid, sequence, set, smallInteger } from '../ca/der.js';
import { signatureAlgorithmFor } from '../ca/keys.js';
import { toPem } from '../ca/pem.js';

/**
 * The workload's key pair and its PKCS#10 request (RFC 2986), made on the workload: the
 * private key never leaves this process except into the agent's own key.pem (0600).
 * The CSR carries the SPIFFE ID as a URI SAN in an extensionRequest, as istio-agent's
 * does; meshd ignores it and certifies the caller's proven identity, as istiod does
 * (security/pkg/server/ca/server.go CreateCertificate).
 */
export interface WorkloadKey {
  keyType: LeafKeyType;
  /** PKCS#8 PEM. Never logged. */
  keyPem: string;
  csrPem: string;
  /** DER SubjectPublicKeyInfo: the issued certificate must carry exactly this. */
  spki: Buffer;
}

function uriSanExtensionRequest(spiffeId: string): Buffer {
  const san = sequence(implicitPrimitive(6, ia5Bytes(spiffeId)));
  const extension = sequence(oid(OID.subjectAltName), octetString(san));
  // Attribute { type extensionRequest, values SET OF Extensions }
  return sequence(oid(OID.extensionRequest), set(sequence(extension)));
}

export async function generateWorkloadKey(keyType: LeafKeyType, spiffeId: string): Promise<WorkloadKey> {
  const key = await generateKey(keyType);
  const algorithm = signatureAlgorithmFor(keyType);
  const info = sequence(
    smallInteger(0),
    sequence(), // empty subject: the identity is the SAN (X509-SVID §2)
    key.spki,
    explicit(0, uriSanExtensionRequest(spiffeId)), // attributes [0] IMPLICIT SET OF Attribute
  );
  const signature = sign(algorithm.hash, info, key.privateKey);
  const csr = sequence(info, algorithm.der, bitString(signature));
  return { keyType, keyPem: key.privateKeyPem, csrPem: toPem('CERTIFICATE REQUEST', csr), spki: Buffer.from(key.spki) };
}
