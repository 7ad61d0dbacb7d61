/**
 * A federation relationship: which foreign trust domain meshd trusts and where its bundle
 * comes from (SPIFFE Federation §5.1: the URL, the profile and the trust domain name are all
 * explicit; the trust domain is never inferred from the URL, §7.2). One-way: it makes meshd
 * trust the foreign trust domain, not the reverse.
 */

export type EndpointProfile =
  /** Web PKI: the server certificate must be valid for the URL's host (RFC 6125). */
  | { type: 'https_web' }
  /** The server must present an X509-SVID with exactly this ID, verified against the foreign bundle meshd holds. */
  | { type: 'https_spiffe'; endpointSpiffeId: string };

export type ConfiguredBundle =
  /** A SPIFFE bundle document written in the config (ClusterFederatedTrustDomain spec.trustDomainBundle). */
  | { kind: 'inline'; document: string }
  /** A file holding a SPIFFE bundle document, re-read when it changes; `path` is absolute. */
  | { kind: 'file'; path: string };

export interface FederationRelationship {
  /** The foreign trust domain, e.g. "west.example" (never meshd's own nor an alias). */
  readonly trustDomain: string;
  /** Where its bundle is fetched and refreshed; absent for a static bundle. */
  readonly endpoint?: { readonly url: string; readonly profile: EndpointProfile };
  /**
   * The bundle to trust before the first fetch (and to authenticate an https_spiffe endpoint
   * the first time); without an endpoint, the bundle itself.
   */
  readonly bundle?: ConfiguredBundle;
}

/** How a relationship is shown in logs and /debug. */
export function describeSource(r: FederationRelationship): string {
  if (r.endpoint) {
    const p = r.endpoint.profile;
    return p.type === 'https_spiffe' ? `https_spiffe ${r.endpoint.url} as ${p.endpointSpiffeId}` : `https_web ${r.endpoint.url}`;
  }
  return r.bundle?.kind === 'file' ? `file ${r.bundle.path}` : 'inline bundle';
}

/** Two relationships fetch the same way from the same place with the same bootstrap bundle. */
export function sameRelationship(a: FederationRelationship, b: FederationRelationship): boolean {
  return JSON.stringify([a.trustDomain, a.endpoint, a.bundle]) === JSON.stringify([b.trustDomain, b.endpoint, b.bundle]);
}
