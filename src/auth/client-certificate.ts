import { X509Certificate } from 'node:crypto';
import { rsaKeyProblem } from '../ca/keys.js';
import { AuthenticationError, type RefusedIdentity } from './identity.js';
import { parseWorkloadSpiffeId } from '../mesh/spiffe-identity.js';
import { workloadNamesError } from './kubernetes-names.js';

/**
 * A client SVID presented on the TLS port is an identity, as Istio's ClientCertAuthenticator
 * makes it. The TLS layer asks for a certificate but does not reject (tokens are valid too),
 * so the chain is checked here: signed by one of meshd's CA certificates (a root of the
 * bundle or the plug-in intermediate), inside its validity window, with exactly one
 * spiffe:// URI SAN in our trust domain (X.509-SVID §5 leaf checks), and an RSA key only with
 * exponent 65537 and at least 2048 bits.
 */
export interface ClientSvid {
  spiffeId: string;
  /** Node's upper-case hex serial, as X509Certificate.serialNumber. */
  serialHex: string;
}

export function uriSans(cert: X509Certificate): string[] {
  const san = cert.subjectAltName ?? '';
  // Node prints "URI:spiffe://…, DNS:…"; URIs cannot contain ", " unescaped.
  return san.split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
}

export function verifyClientSvid(raw: Buffer, issuers: readonly X509Certificate[], trustDomain: string, nowMs: number): ClientSvid {
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(raw);
  } catch {
    throw new AuthenticationError('client certificate cannot be parsed', 'invalid');
  }
  const issuer = issuers.find((ca) => leaf.checkIssued(ca) && leaf.verify(ca.publicKey));
  if (!issuer) throw new AuthenticationError(`client certificate (issuer "${leaf.issuer.replace(/\n/g, ', ')}") is not signed by this mesh's CA`, 'untrusted');
  if (nowMs > Date.parse(leaf.validTo)) {
    // Signed by our CA, so its identity is genuine: the refusal is counted against it.
    throw new AuthenticationError(`client certificate has expired (notAfter ${leaf.validTo}); renew before expiry or present a join token`, 'expired', refusedIdentity(leaf, trustDomain));
  }
  if (nowMs < Date.parse(leaf.validFrom)) {
    throw new AuthenticationError(`client certificate is not valid yet (notBefore ${leaf.validFrom})`, 'invalid', refusedIdentity(leaf, trustDomain));
  }
  if (leaf.ca) throw new AuthenticationError('client certificate is a CA certificate, not an SVID', 'invalid');
  // A certificate for an e = 1 key (signed before meshd refused such CSRs, or by a lax CA) is
  // no proof of anything: its private exponent is public, so anyone who saw it could present it.
  const keyProblem = rsaKeyProblem(leaf.publicKey);
  if (keyProblem) throw new AuthenticationError(`client certificate key is refused: ${keyProblem}`, 'invalid');
  const uris = uriSans(leaf);
  if (uris.length !== 1) throw new AuthenticationError(`client certificate must carry exactly one URI SAN, found ${uris.length}`, 'invalid');
  const id = uris[0]!;
  if (!id.startsWith(`spiffe://${trustDomain}/`)) {
    throw new AuthenticationError(`client certificate identity ${id} is not in trust domain ${trustDomain}`, 'untrusted');
  }
  return { spiffeId: id, serialHex: leaf.serialNumber };
}

function refusedIdentity(leaf: X509Certificate, trustDomain: string): RefusedIdentity | undefined {
  const uris = uriSans(leaf);
  const id = uris.length === 1 ? parseWorkloadSpiffeId(uris[0]!) : undefined;
  return id && id.trustDomain === trustDomain && !workloadNamesError(id.namespace, id.serviceAccount)
    ? { namespace: id.namespace, serviceAccount: id.serviceAccount } : undefined;
}
