/**
 * Rules for federated trust domains that need more than one document. A refused
 * ClusterFederatedTrustDomain is left out of the snapshot: nothing is fetched or trusted for it.
 * - Never meshd's own trust domain or one of its aliases: a foreign bundle must not make a
 *   foreign CA a signer of meshd's own identities (SPIFFE Trust Domain and Bundle §6.2).
 * - One object per trust domain (as spire-controller-manager requires): two endpoints for one
 *   trust domain would make either able to replace the other's bundle. The first in file order
 *   wins, as for any object defined twice.
 */
import type { ConfigMessage, FederatedTrustDomain, MeshSettings } from './model.js';

function error(f: FederatedTrustDomain, message: string): ConfigMessage {
  return { level: 'error', message, source: f.meta.source, resource: `${f.kind}/${f.meta.name}` };
}

function byPosition(a: FederatedTrustDomain, b: FederatedTrustDomain): number {
  const fa = a.meta.source.file;
  const fb = b.meta.source.file;
  return fa === fb ? a.meta.source.line - b.meta.source.line : fa < fb ? -1 : 1;
}

export function federationConflicts(mesh: MeshSettings, list: readonly FederatedTrustDomain[]): { accepted: FederatedTrustDomain[]; messages: ConfigMessage[] } {
  const messages: ConfigMessage[] = [];
  const byTrustDomain = new Map<string, FederatedTrustDomain>();
  for (const f of [...list].sort(byPosition)) {
    const td = f.trustDomain;
    if (td === mesh.trustDomain) {
      messages.push(error(f, `spec.trustDomain ${td} is meshd's own trust domain; only meshd's CA signs for it, so it cannot be federated`));
      continue;
    }
    if (mesh.trustDomainAliases.includes(td)) {
      messages.push(error(f, `spec.trustDomain ${td} is one of meshd's trustDomainAliases; identities of an alias are meshd's own, so it cannot be federated`));
      continue;
    }
    const first = byTrustDomain.get(td);
    if (first) {
      messages.push(error(f, `trust domain ${td} is already federated by ${first.kind}/${first.meta.name} at ${first.meta.source.file}:${first.meta.source.line}; this one is ignored`));
      continue;
    }
    byTrustDomain.set(td, f);
  }
  const accepted = [...byTrustDomain.values()].sort((a, b) => (a.trustDomain < b.trustDomain ? -1 : a.trustDomain > b.trustDomain ? 1 : 0));
  return { accepted, messages };
}
