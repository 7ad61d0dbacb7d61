/**
 * What changed between two snapshots, so the xDS side pushes only to affected proxies
 * (Istio's PushRequest.ConfigsUpdated carries the same kind of set). Objects compare by
 * content: moving a document to another file or line is not a change.
 */
import type { AuthorizationPolicy, DestinationRule, FederatedTrustDomain, MeshSnapshot, PeerAuthentication, ServiceEntry, WorkloadEntry } from './model.js';

export interface SnapshotDiff {
  /** Mesh settings changed: every proxy is affected. */
  readonly meshChanged: boolean;
  /** Namespaces whose PeerAuthentications changed; the root namespace means every workload. */
  readonly peerAuthenticationNamespaces: ReadonlySet<string>;
  /** "namespace/name" of ServiceEntries added, removed or changed. */
  readonly services: ReadonlySet<string>;
  /** "namespace/name" of WorkloadEntries added, removed or changed. */
  readonly workloads: ReadonlySet<string>;
  /** "namespace/name" of AuthorizationPolicies added, removed or changed. */
  readonly authorizationPolicies: ReadonlySet<string>;
  /** "namespace/name" of DestinationRules added, removed or changed. */
  readonly destinationRules: ReadonlySet<string>;
  /** Trust domain names whose ClusterFederatedTrustDomain was added, removed or changed. */
  readonly federatedTrustDomains: ReadonlySet<string>;
  /** Every namespace touched by the sets above. */
  readonly namespaces: ReadonlySet<string>;
  /** The validation messages differ (a new error, or one fixed). */
  readonly messagesChanged: boolean;
  /** No config change at all (messages may still have changed). */
  readonly empty: boolean;
}

type Obj = PeerAuthentication | ServiceEntry | WorkloadEntry | AuthorizationPolicy | DestinationRule | FederatedTrustDomain;

/** Content of an object without where it was read from; Maps become sorted entries. */
function canonical(o: Obj): string {
  const { source: _source, ...meta } = o.meta;
  return JSON.stringify({ ...o, meta }, (_k, v: unknown) => {
    if (v instanceof Map) return [...v.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
    if (v && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    }
    return v;
  });
}

function changedKeys(prev: readonly Obj[], next: readonly Obj[], key: (o: Obj) => string = (o) => `${o.meta.namespace}/${o.meta.name}`): Set<string> {
  const before = new Map(prev.map((o) => [key(o), o]));
  const out = new Set<string>();
  for (const o of next) {
    const k = key(o);
    const old = before.get(k);
    // Unchanged files yield the same frozen objects (FileParseCache): skip the deep compare.
    if (old !== o && (old === undefined || canonical(old) !== canonical(o))) out.add(k);
    before.delete(k);
  }
  for (const k of before.keys()) out.add(k);
  return out;
}

const nsOf = (key: string): string => key.slice(0, key.indexOf('/'));

function messagesKey(s: MeshSnapshot): string {
  return JSON.stringify(s.messages);
}

export function diffSnapshots(prev: MeshSnapshot | undefined, next: MeshSnapshot): SnapshotDiff {
  if (prev === undefined) return fullDiff(next);
  const meshChanged = JSON.stringify(prev.mesh) !== JSON.stringify(next.mesh);
  const paKeys = changedKeys(prev.peerAuthentications, next.peerAuthentications);
  const services = changedKeys(prev.serviceEntries, next.serviceEntries);
  const workloads = changedKeys(prev.workloadEntries, next.workloadEntries);
  const authorizationPolicies = changedKeys(prev.authorizationPolicies, next.authorizationPolicies);
  const destinationRules = changedKeys(prev.destinationRules, next.destinationRules);
  const federatedTrustDomains = changedKeys(prev.federatedTrustDomains, next.federatedTrustDomains, (o) => (o as FederatedTrustDomain).trustDomain);
  const peerAuthenticationNamespaces = new Set([...paKeys].map(nsOf));
  const namespaces = new Set([
    ...peerAuthenticationNamespaces, ...[...services, ...workloads, ...authorizationPolicies, ...destinationRules].map(nsOf),
  ]);
  return {
    meshChanged,
    peerAuthenticationNamespaces,
    services,
    workloads,
    authorizationPolicies,
    destinationRules,
    federatedTrustDomains,
    namespaces,
    messagesChanged: messagesKey(prev) !== messagesKey(next),
    empty: !meshChanged && paKeys.size === 0 && services.size === 0 && workloads.size === 0 &&
      authorizationPolicies.size === 0 && destinationRules.size === 0 && federatedTrustDomains.size === 0,
  };
}

/** The diff of a first snapshot: everything in it is new. */
export function fullDiff(s: MeshSnapshot): SnapshotDiff {
  const key = (o: Obj): string => `${o.meta.namespace}/${o.meta.name}`;
  const services = new Set(s.serviceEntries.map(key));
  const workloads = new Set(s.workloadEntries.map(key));
  const authorizationPolicies = new Set(s.authorizationPolicies.map(key));
  const destinationRules = new Set(s.destinationRules.map(key));
  const peerAuthenticationNamespaces = new Set(s.peerAuthentications.map((p) => p.meta.namespace));
  return {
    meshChanged: true,
    peerAuthenticationNamespaces,
    services,
    workloads,
    authorizationPolicies,
    destinationRules,
    federatedTrustDomains: new Set(s.federatedTrustDomains.map((f) => f.trustDomain)),
    namespaces: new Set([
      ...peerAuthenticationNamespaces, ...[...services, ...workloads, ...authorizationPolicies, ...destinationRules].map(nsOf),
    ]),
    messagesChanged: s.messages.length > 0,
    empty: false,
  };
}
