import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { uriSans } from '../auth/client-certificate.js';
import { rsaKeyProblem } from '../ca/keys.js';
import { splitPemCertificates } from '../csr/csr-service.js';
import type { CertificateSet } from './cert-dir.js';

/**
 * What the agent checks before it writes anything: a response that would leave the workload
 * with a certificate it cannot use is refused and the current files stay in place.
 *
 * - At least two elements (istio-agent refuses ≤ 1: the root bundle must be there).
 * - The leaf certifies exactly our public key and names exactly the expected SPIFFE ID.
 * - Every chain element is signed by the next, the last by one of the roots, and the leaf is
 *   inside its validity window.
 * - Every RSA key in the set (key.pem, chain, roots) has exponent 65537 and at least 2048 bits,
 *   as meshd requires of every key (ca/keys.ts): files left by another tool are not adopted.
 */
export class IssuedSetError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IssuedSetError';
  }
}

export interface IssuedSummary {
  spiffeId: string;
  serialHex: string;
  notBefore: number;
  notAfter: number;
}

function parse(pem: string, what: string): X509Certificate {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (e) {
    throw new IssuedSetError(`${what} does not parse: ${(e as Error).message}`);
  }
  const problem = rsaKeyProblem(cert.publicKey);
  if (problem) throw new IssuedSetError(`${what} has a refused key: ${problem}`);
  return cert;
}

function verifyChain(chain: X509Certificate[], roots: X509Certificate[]): void {
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    const next = chain[i + 1];
    if (next !== undefined) {
      if (!cert.checkIssued(next) || !cert.verify(next.publicKey)) throw new IssuedSetError(`certificate ${i + 1} of the chain is not signed by certificate ${i + 2}`);
      continue;
    }
    if (!roots.some((r) => cert.checkIssued(r) && cert.verify(r.publicKey))) {
      throw new IssuedSetError(`the chain does not end at a root of the bundle (last issuer: ${cert.issuer.replace(/\n/g, ', ')})`);
    }
  }
}

/** Checks a certificate set (from a response or from disk) against the identity and, if given, the key. */
export function checkCertificateSet(set: CertificateSet, expectedSpiffeId: string, nowMs: number): IssuedSummary {
  const chainPems = splitPemCertificates(set.certChainPem);
  if (chainPems.length === 0) throw new IssuedSetError('no certificate in the chain');
  const chain = chainPems.map((p, i) => parse(p, `chain certificate ${i + 1}`));
  const rootPems = splitPemCertificates(set.rootCertPem);
  if (rootPems.length === 0) throw new IssuedSetError('no root certificate in the bundle');
  const roots = rootPems.map((p, i) => parse(p, `root ${i + 1}`));
  const leaf = chain[0]!;
  const ids = uriSans(leaf);
  if (ids.length !== 1 || ids[0] !== expectedSpiffeId) {
    throw new IssuedSetError(`the certificate names ${ids.join(', ') || 'no URI SAN'}, not ${expectedSpiffeId}`);
  }
  let key;
  try {
    key = createPrivateKey(set.keyPem);
  } catch (e) {
    throw new IssuedSetError(`the private key does not parse: ${(e as Error).message}`);
  }
  const keyProblem = rsaKeyProblem(key);
  if (keyProblem) throw new IssuedSetError(`the private key is refused: ${keyProblem}`);
  const mine = createPublicKey(key).export({ type: 'spki', format: 'der' });
  if (!leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(mine)) {
    throw new IssuedSetError('the certificate does not certify the workload\'s public key');
  }
  verifyChain(chain, roots);
  const notBefore = Date.parse(leaf.validFrom);
  const notAfter = Date.parse(leaf.validTo);
  if (nowMs >= notAfter) throw new IssuedSetError(`the certificate expired at ${new Date(notAfter).toISOString()}`);
  return { spiffeId: ids[0]!, serialHex: leaf.serialNumber.toLowerCase().replace(/^0+(?=.)/, ''), notBefore, notAfter };
}

/** Turns istiod's response layout (leaf, intermediates…, root bundle) into the three files. */
export function certificateSetFromResponse(certChain: readonly string[], keyPem: string): CertificateSet {
  if (certChain.length < 2) {
    throw new IssuedSetError(`the response has ${certChain.length} element(s); expected the leaf, any intermediates and the root bundle last`);
  }
  const ensureNl = (s: string): string => (s.endsWith('\n') ? s : `${s}\n`);
  return {
    certChainPem: certChain.slice(0, -1).map(ensureNl).join(''),
    keyPem,
    rootCertPem: ensureNl(certChain[certChain.length - 1]!),
  };
}
