import { X509Certificate } from 'node:crypto';
import { uriSans } from '../auth/client-certificate.js';
import { tryParseSpiffeId } from '../ca/spiffe-id.js';

/**
 * A peer's X.509-SVID checked as Envoy's SPIFFE certificate validator checks it
 * (envoy/source/extensions/transport_sockets/tls/cert_validator/spiffe/spiffe_validator.cc):
 * the trust domain of the leaf's one spiffe:// URI SAN picks the bundle, and the chain must end
 * at a root of THAT bundle. Bundles are never merged, so a federated trust domain's CA can only
 * vouch for its own trust domain's IDs (SPIFFE Federation §4.2). Pure; `nowMs` passed in.
 */
export type SpiffePeerCheck =
  | { ok: true; spiffeId: string; trustDomain: string; root: X509Certificate }
  | { ok: false; reason: 'no-spiffe-id' | 'unknown-trust-domain' | 'untrusted' | 'expired'; message: string; spiffeId?: string; trustDomain?: string };

/** Roots (PEM) per trust domain, as the ALL secret carries them. */
export type BundlesByTrustDomain = ReadonlyMap<string, readonly string[]>;

function inWindow(cert: X509Certificate, nowMs: number): boolean {
  return nowMs >= Date.parse(cert.validFrom) && nowMs <= Date.parse(cert.validTo);
}

/** `chain`: leaf first, then the intermediates the peer sent (a root it sent is ignored: only the bundle's count). */
export function checkSpiffePeer(chain: readonly X509Certificate[], bundles: BundlesByTrustDomain, nowMs: number): SpiffePeerCheck {
  const leaf = chain[0];
  if (leaf === undefined) return { ok: false, reason: 'no-spiffe-id', message: 'the peer presented no certificate' };
  const ids = uriSans(leaf).filter((u) => u.toLowerCase().startsWith('spiffe://'));
  if (ids.length !== 1) return { ok: false, reason: 'no-spiffe-id', message: `the peer's certificate carries ${ids.length} SPIFFE IDs; an X.509-SVID has exactly one` };
  const parsed = tryParseSpiffeId(ids[0]!);
  if (!parsed.ok) return { ok: false, reason: 'no-spiffe-id', message: parsed.error.message };
  const spiffeId = ids[0]!;
  const trustDomain = parsed.value.trustDomain;
  const rootsPem = bundles.get(trustDomain);
  if (rootsPem === undefined || rootsPem.length === 0) {
    return { ok: false, reason: 'unknown-trust-domain', message: `no bundle for trust domain ${trustDomain}`, spiffeId, trustDomain };
  }
  const roots = rootsPem.map((pem) => new X509Certificate(pem));
  // Walk from the leaf up through the sent certificates until one is signed by a root of this trust domain.
  for (let i = 0; i < chain.length; i++) {
    const cert = chain[i]!;
    if (!inWindow(cert, nowMs)) {
      return { ok: false, reason: 'expired', message: `certificate ${i + 1} of the chain is outside its validity window (${cert.validFrom} – ${cert.validTo})`, spiffeId, trustDomain };
    }
    const root = roots.find((r) => cert.checkIssued(r) && cert.verify(r.publicKey));
    if (root !== undefined) {
      if (!inWindow(root, nowMs)) return { ok: false, reason: 'expired', message: `the root of ${trustDomain} that signs the chain is outside its validity window`, spiffeId, trustDomain };
      return { ok: true, spiffeId, trustDomain, root };
    }
    const next = chain[i + 1];
    if (next === undefined || !next.ca || !cert.checkIssued(next) || !cert.verify(next.publicKey)) break;
  }
  return { ok: false, reason: 'untrusted', message: `the chain of ${spiffeId} does not end at a root of trust domain ${trustDomain}'s bundle`, spiffeId, trustDomain };
}
