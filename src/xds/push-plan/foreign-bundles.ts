import { TypeUrl } from '../../envoy/type-urls.js';
import type { PushRequest } from '../core/types.js';

type ForeignRootsView = ReadonlyMap<string, { readonly rootsPem: readonly string[] }>;

/** Trust domains added, removed, or whose roots changed between two views of the foreign bundles. Pure. */
export function changedTrustDomains(prev: ForeignRootsView, next: ForeignRootsView): string[] {
  const out: string[] = [];
  for (const [td, b] of next) {
    const old = prev.get(td);
    if (old === undefined || old.rootsPem.length !== b.rootsPem.length || old.rootsPem.some((pem, i) => pem !== b.rootsPem[i])) out.push(td);
  }
  for (const td of prev.keys()) if (!next.has(td)) out.push(td);
  return out.sort();
}

/**
 * What a change of the foreign bundles re-generates: secrets only, on every stream that
 * subscribes to them. Any proxy may hold `ALL` or a foreign trust domain's name, and the core
 * sends a stream only the secrets whose bytes changed, so a stream holding only its certificate
 * and ROOTCA gets nothing. A new sequence alone (same roots) changes no secret: no push.
 */
export function foreignBundlePush(prev: ForeignRootsView, next: ForeignRootsView): PushRequest | undefined {
  return changedTrustDomains(prev, next).length === 0 ? undefined : { typeUrls: [TypeUrl.Secret], reason: 'federated-bundle' };
}
