import type { ForeignBundle } from './bundle-document.js';

/**
 * Whether a freshly fetched bundle replaces the one held (pure). spiffe_sequence orders
 * bundles of one trust domain (SPIFFE Trust Domain and Bundle §4.1.1: monotonically
 * increasing, and it MUST change whenever the contents do):
 * - a lower sequence with other authorities is an old bundle served again (a stale replica,
 *   a restored backup, a replay): refused, so a root the trust domain has since removed does
 *   not come back. With the same authorities it changes nothing and is simply confirmed;
 * - the same sequence with other authorities breaks the MUST: refused, since meshd cannot
 *   tell which of the two is current.
 * Without a sequence on either side there is nothing to order by and the endpoint's latest
 * answer wins. A foreign trust domain that reset its sequence on purpose is re-bootstrapped
 * by changing the bundle in its ClusterFederatedTrustDomain (or deleting and re-adding it).
 */

export type Supersession =
  | { kind: 'changed' }
  | { kind: 'unchanged' }
  | { kind: 'refused'; reason: 'sequence-regressed' | 'sequence-reused'; message: string };

export interface HeldAuthorities {
  rootsPem: readonly string[];
  sequence?: bigint;
}

function sameAuthorities(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((pem) => set.has(pem));
}

export function supersedes(held: HeldAuthorities | undefined, fetched: ForeignBundle): Supersession {
  if (held === undefined) return { kind: 'changed' };
  const same = sameAuthorities(held.rootsPem, fetched.rootsPem);
  const h = held.sequence;
  const f = fetched.sequence;
  if (h !== undefined && f !== undefined) {
    if (f < h) {
      if (same) return { kind: 'unchanged' };
      return { kind: 'refused', reason: 'sequence-regressed', message: `spiffe_sequence went back from ${h} to ${f} with other authorities: an old bundle served again` };
    }
    if (f === h) {
      if (same) return { kind: 'unchanged' };
      return { kind: 'refused', reason: 'sequence-reused', message: `spiffe_sequence ${f} is the one held but the authorities differ (the sequence must change whenever the bundle does)` };
    }
    return { kind: 'changed' };
  }
  return same && h === f ? { kind: 'unchanged' } : { kind: 'changed' };
}
