/**
 * The secret names meshd's SDS answers, so Istio-style and SPIRE-style Envoy configs both
 * work unchanged:
 * - `default`: the proxy's own certificate (Istio, SPIRE default_svid_name);
 * - `ROOTCA`: the own trust domain's bundle as a validation context (Istio, SPIRE default_bundle_name);
 * - the proxy's own SPIFFE ID: its certificate, named by the ID (SPIRE);
 * - a trust domain ID `spiffe://<td>`, own or federated: that domain's bundle (SPIRE);
 * - `ALL`: every trust domain's bundle through Envoy's SPIFFE certificate validator (SPIRE default_all_bundles_name).
 */
export const DEFAULT_SECRET = 'default';
export const ROOTCA_SECRET = 'ROOTCA';
export const ALL_BUNDLES_SECRET = 'ALL';

export type SecretRequest =
  | { kind: 'certificate'; name: string }
  /** `trustDomain`: the one domain a trust domain ID names (absent for ROOTCA, the own domain, and ALL, every domain). */
  | { kind: 'bundle'; name: string; validator: 'trusted-ca' | 'spiffe'; trustDomain?: string }
  | { kind: 'denied'; name: string; reason: string }
  | { kind: 'unknown'; name: string };

/** The trust domain a bare trust domain ID names (`spiffe://td`, no path), else undefined. */
export function trustDomainOfName(name: string): string | undefined {
  if (!name.startsWith('spiffe://')) return undefined;
  const rest = name.slice('spiffe://'.length);
  return rest !== '' && !rest.includes('/') ? rest : undefined;
}

/**
 * Classifies a requested name for a proxy of identity `spiffeId` in `trustDomain`. A foreign
 * trust domain's name is a bundle only while meshd federates with it (`federated`). Pure.
 */
export function classifySecretName(
  name: string, spiffeId: string, trustDomain: string, federated: { has(trustDomain: string): boolean } = new Set<string>(),
): SecretRequest {
  if (name === DEFAULT_SECRET) return { kind: 'certificate', name };
  if (name === ROOTCA_SECRET) return { kind: 'bundle', name, validator: 'trusted-ca' };
  if (name === ALL_BUNDLES_SECRET) return { kind: 'bundle', name, validator: 'spiffe' };
  if (name.startsWith('spiffe://')) {
    if (name === spiffeId) return { kind: 'certificate', name };
    const td = trustDomainOfName(name);
    if (td === trustDomain) return { kind: 'bundle', name, validator: 'spiffe', trustDomain };
    if (td !== undefined) {
      if (federated.has(td)) return { kind: 'bundle', name, validator: 'spiffe', trustDomain: td };
      return { kind: 'denied', name, reason: `no bundle for trust domain ${td} (meshd serves ${trustDomain} and the trust domains it federates with)` };
    }
    return { kind: 'denied', name, reason: `identity ${spiffeId} is not entitled to the certificate of ${name}` };
  }
  return { kind: 'unknown', name };
}
