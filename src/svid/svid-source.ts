import type { CertificateAuthority } from '../ca/types.js';
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
 * The trust bundles a proxy is served. ROOTCA carries the own trust domain; `spiffe://<td>` that
 * domain's entry of `roots`; ALL every entry: the own trust domain's, and one per federated trust
 * domain (a ClusterFederatedTrustDomain, src/federation's ForeignBundleSet), never merged.
 */
export interface BundleSet {
  trustDomain: string;
  /** Roots (PEM, one certificate each) per trust domain, the own one included. */
  roots: ReadonlyMap<string, readonly string[]>;
  /** Changes whenever `roots` does: encoded bundle secrets are cached per sequence. */
  sequence: number;
}

/** The foreign bundles a source adds, per trust domain; the same map object until they change. */
export type ForeignRoots = () => ReadonlyMap<string, { readonly rootsPem: readonly string[] }>;

/** One empty map for every call: the builder rebuilds only when the foreign map object changes. */
export const NO_FOREIGN_BUNDLES: ReadonlyMap<string, { readonly rootsPem: readonly string[] }> = new Map();
const NO_FOREIGN_ROOTS: ForeignRoots = () => NO_FOREIGN_BUNDLES;

/**
 * One BundleSet per (own bundle, foreign bundles) pair of objects, its sequence moving when
 * either does. A foreign entry can never stand in for the own trust domain: the own roots are
 * set last, whatever the foreign map holds.
 */
export function bundleSetBuilder(foreign: ForeignRoots = NO_FOREIGN_ROOTS): (own: { trustDomain: string; rootsPem: readonly string[] }) => BundleSet {
  let fromOwn: object | undefined;
  let fromForeign: object | undefined;
  let set: BundleSet | undefined;
  let sequence = 0;
  return (own) => {
    const others = foreign();
    if (own !== fromOwn || others !== fromForeign || set === undefined) {
      fromOwn = own;
      fromForeign = others;
      const roots = new Map<string, readonly string[]>();
      for (const [td, b] of others) if (td !== own.trustDomain) roots.set(td, b.rootsPem);
      roots.set(own.trustDomain, own.rootsPem);
      set = { trustDomain: own.trustDomain, roots, sequence: ++sequence };
    }
    return set;
  };
}

/**
 * meshd's source: each proxy's SVID from the cache (issued on first ask, re-issued when due), the
 * CA's bundle and, with `foreign`, the bundles of the trust domains meshd federates with.
 */
export function caSvidSource(ca: Pick<CertificateAuthority, 'trustBundle'>, svids: Pick<SvidCache, 'get'>, foreign?: ForeignRoots): SvidSource {
  const build = bundleSetBuilder(foreign);
  return {
    svid: (proxy) => svids.get(proxy.id, proxy.identity.spiffeId),
    // The CA hands out the same bundle object until it changes: one BundleSet per bundle.
    bundles: () => build(ca.trustBundle()),
  };
}
