import type { CertificateAuthority, TrustBundle } from '../ca/types.js';
import type { ProxyInfo } from '../xds/core/types.js';
import type { SvidCache } from './svid-cache.js';

/**
 * What the secret generator serves from: a proxy's own SVID, and the trust bundles. meshd's
 * source is its SVID cache and its CA's bundle; `meshd agent`'s is the certificate set it keeps
 * (src/agent/local-sds.ts). Both serve through the same SecretGenerator.
 */
export interface SvidSource {
  /**
   * The SVID the proxy holds for the identity it proved (may wait for one to be issued). The
   * same object until it rotates: the generator encodes each SVID once per name.
   */
  svid(proxy: ProxyInfo): Promise<Svid>;
  /** The bundles to serve (may wait until there are any). */
  bundles(): BundleSet | Promise<BundleSet>;
}

export interface Svid {
  /** Leaf then intermediates, PEM. */
  chainPem: string;
  keyPem: string;
}

/**
 * The trust bundles a proxy is served. ROOTCA and `spiffe://<trustDomain>` carry the proxy's own
 * trust domain; ALL carries every entry of `roots`. Today that is only the own trust domain. A
 * federated trust domain's bundle (a ClusterFederatedTrustDomain, src/federation's
 * ForeignBundleSet) is one more entry, added by the source, whose sequence then moves when
 * either the CA's bundle or a foreign one changes; the generator needs no change for it.
 */
export interface BundleSet {
  trustDomain: string;
  /** Roots (PEM, one certificate each) per trust domain, the own one included. */
  roots: ReadonlyMap<string, readonly string[]>;
  /** Changes whenever `roots` does: encoded bundle secrets are cached per sequence. */
  sequence: number;
}

/** meshd's source: each proxy's SVID from the cache (issued on first ask, re-issued when due), the CA's bundle. */
export function caSvidSource(ca: Pick<CertificateAuthority, 'trustBundle'>, svids: Pick<SvidCache, 'get'>): SvidSource {
  let from: TrustBundle | undefined;
  let set: BundleSet | undefined;
  return {
    svid: (proxy) => svids.get(proxy.id, proxy.identity.spiffeId),
    bundles: () => {
      // The CA hands out the same bundle object until it changes: one BundleSet per bundle.
      const bundle = ca.trustBundle();
      if (bundle !== from || set === undefined) {
        from = bundle;
        set = { trustDomain: bundle.trustDomain, roots: new Map([[bundle.trustDomain, bundle.rootsPem]]), sequence: bundle.sequence };
      }
      return set;
    },
  };
}
