/**
 * The secret names meshd's SDS answers, so Istio-style and SPIRE-style Envoy configs both
 * work unchanged:
 * - `default`: the proxy's own certificate (Istio, SPIRE default_svid_name);
 * - `ROOTCA`: the trust bundle as a validation context (Istio, SPIRE default_bundle_name);
 * - the proxy's own SPIFFE ID: its certificate, named by the ID (SPIRE);
 * - the trust domain ID `spiffe://<td>`: that domain's bundle (SPIRE);
 * - `ALL`: every trust domain's bundle through Envoy's SPIFFE certificate validator (SPIRE default_all_bundles_name).
 */
export const DEFAULT_SECRET = 'default';
export const ROOTCA_SECRET = 'ROOTCA';
export const ALL_BUNDLES_SECRET = 'ALL';

export type SecretRequest =
  | { kind: 'certificate'; name: string }
  | { kind: 'bundle'; name: string; validator: 'trusted-ca' | 'spiffe' }
  | { kind: 'denied'; name: string; reason: string }
  | { kind: 'unknown'; name: string };

/** Classifies a requested name for a proxy of identity `spiffeId` in `trustDomain`. Pure. */
export function classifySecretName(name: string, spiffeId: string, trustDomain: string): SecretRequest {
  if (name === DEFAULT_SECRET) return { kind: 'certificate', name };
  if (name === ROOTCA_SECRET) return { kind: 'bundle', name, validator: 'trusted-ca' };
  if (name === ALL_BUNDLES_SECRET) return { kind: 'bundle', name, validator: 'spiffe' };
  if (name.startsWith('spiffe://')) {
    if (name === spiffeId) return { kind: 'certificate', name };
    if (name === `spiffe://${trustDomain}`) return { kind: 'bundle', name, validator: 'spiffe' };
    const rest = name.slice('spiffe://'.length);
    if (!rest.includes('/')) {
      return { kind: 'denied', name, reason: `no bundle for trust domain ${rest} (meshd serves only ${trustDomain})` };
    }
    return { kind: 'denied', name, reason: `identity ${spiffeId} is not entitled to the certificate of ${name}` };
  }
  return { kind: 'unknown', name };
}
