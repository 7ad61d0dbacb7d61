import type { AuthorizationPolicy, MeshSnapshot, PeerAuthentication, ServiceEntry } from '../../config/model.js';
import { diffSnapshots, type SnapshotDiff } from '../../config/diff.js';
import { labelsMatch } from '../../mesh/labels.js';
import { isScopeWide } from '../../mesh/peer-authentication.js';
import type { ProxyInfo, PushRequest } from '../core/types.js';
import { proxyKind } from '../generators/generator-dispatch.js';
import { indexFor } from '../../mesh/mesh-index.js';
import { workloadKey } from '../../mesh/registry.js';
import { nodeWorkloadRef } from '../../mesh/node-identity.js';
import { FINGERPRINT_TYPES, namespaceSharedFingerprint, sidecarFingerprint } from '../generators/sidecar-generators.js';
import { isVisibleTo } from '../../mesh/visibility.js';

/**
 * Which workloads' generated config a config change can alter, so the core pushes only to
 * their proxies (Istio's PushRequest scoping by ConfigsUpdated).
 *
 * - Mesh settings, or a mesh-wide PeerAuthentication (root namespace, no selector): everyone.
 * - The set of federated trust domains (ClusterFederatedTrustDomain): everyone (inbound chains).
 * - A namespace-wide PeerAuthentication in N: every workload in N (their inbound chains), and
 *   every client of a service in N or backed by a workload in N (the clusters' auto mTLS follows
 *   the namespace mode, the endpoints' tlsMode follows each endpoint's mode).
 * - A workload-level PeerAuthentication: the workloads its selector matches before or after,
 *   and the clients of their services.
 * - A ServiceEntry: the workloads it selects before or after (inbound ports) and every workload
 *   that can see it before or after (clusters, endpoints, listeners, routes).
 * - A WorkloadEntry: itself, and the clients of the services selecting it before or after.
 * - An AuthorizationPolicy: the workloads it attaches to before or after (their inbound RBAC
 *   filters); nobody as a client, since authorization is enforced by the server side only.
 * - A DestinationRule: every workload as a client (its exportTo and host matching decide who
 *   selects it; the fingerprint comparison then keeps only the namespaces whose clusters changed).
 *
 * "Client of a service" = any workload whose namespace the service is exported to: without an
 * Istio Sidecar resource, every sidecar gets every visible service.
 */
export interface AffectedWorkloads {
  /** Every proxy is affected. */
  all: boolean;
  /** `namespace/name` of the affected WorkloadEntries (meaningless when `all`). */
  workloads: ReadonlySet<string>;
  /** Of `workloads`, those the change touches directly; the rest are affected only as clients. */
  direct?: ReadonlySet<string>;
}

const NONE: AffectedWorkloads = { all: false, workloads: new Set() };
const ALL: AffectedWorkloads = { all: true, workloads: new Set() };

function byKey<T extends { meta: { namespace: string; name: string } }>(list: readonly T[], keys: ReadonlySet<string>): T[] {
  return list.filter((o) => keys.has(workloadKey(o.meta.namespace, o.meta.name)));
}

function policyContent(p: PeerAuthentication): string {
  return JSON.stringify([p.meta.creationTimestamp, p.selector, p.mode, [...p.portLevelMtls].sort((a, b) => a[0] - b[0])]);
}

/** Both versions of every PeerAuthentication added, removed or changed in the given namespaces. */
function changedPolicies(prev: MeshSnapshot, next: MeshSnapshot, namespaces: ReadonlySet<string>): PeerAuthentication[] {
  const key = (p: PeerAuthentication): string => workloadKey(p.meta.namespace, p.meta.name);
  const before = new Map(prev.peerAuthentications.filter((p) => namespaces.has(p.meta.namespace)).map((p) => [key(p), p]));
  const out: PeerAuthentication[] = [];
  for (const p of next.peerAuthentications) {
    if (!namespaces.has(p.meta.namespace)) continue;
    const old = before.get(key(p));
    before.delete(key(p));
    if (old !== undefined && policyContent(old) === policyContent(p)) continue;
    out.push(p);
    if (old !== undefined) out.push(old);
  }
  out.push(...before.values());
  return out;
}

/** Both versions of every AuthorizationPolicy added, removed or changed. */
function changedAuthorizationPolicies(prev: MeshSnapshot, next: MeshSnapshot, keys: ReadonlySet<string>): AuthorizationPolicy[] {
  return [prev, next].flatMap((s) => byKey(s.authorizationPolicies, keys));
}

/**
 * Whether a policy can attach to a workload (src/mesh/authorization-policy.ts): the root
 * namespace reaches every namespace, and a policy with targetRefs reaches no sidecar.
 */
function authorizationReaches(p: AuthorizationPolicy, root: string, ns: string, labels: Readonly<Record<string, string>>): boolean {
  if (p.targetRefs.length > 0) return false;
  if (p.meta.namespace !== root && p.meta.namespace !== ns) return false;
  return p.selector === undefined || labelsMatch(p.selector, labels);
}

function federatedNames(s: MeshSnapshot): string {
  return s.federatedTrustDomains.map((f) => f.trustDomain).sort().join(' ');
}

export function affectedWorkloads(prev: MeshSnapshot, next: MeshSnapshot, diff: SnapshotDiff = diffSnapshots(prev, next)): AffectedWorkloads {
  if (diff.empty) return NONE;
  if (diff.meshChanged) return ALL;
  // Every inbound mTLS chain names the federated trust domains it accepts.
  if (diff.federatedTrustDomains.size > 0 && federatedNames(prev) !== federatedNames(next)) return ALL;
  const snapshots = [prev, next];
  const root = next.mesh.rootNamespace;

  const direct = new Set<string>();
  const services = new Map<string, ServiceEntry>();
  const addServices = (s: MeshSnapshot, list: readonly ServiceEntry[]): void => {
    for (const se of list) services.set(`${s.version}:${se.meta.namespace}/${se.meta.name}`, se);
  };
  const addWorkloadsWhere = (pred: (ns: string, labels: Readonly<Record<string, string>>) => boolean): void => {
    for (const s of snapshots) {
      for (const w of s.workloadEntries) if (pred(w.meta.namespace, w.spec.labels)) direct.add(workloadKey(w.meta.namespace, w.meta.name));
    }
  };

  for (const p of changedPolicies(prev, next, diff.peerAuthenticationNamespaces)) {
    const ns = p.meta.namespace;
    if (ns === root) {
      if (isScopeWide(p)) return ALL;
      continue; // selector policies in the root namespace are ignored for sidecars
    }
    if (isScopeWide(p)) {
      addWorkloadsWhere((wns) => wns === ns);
      for (const s of snapshots) addServices(s, s.serviceEntries.filter((se) => se.meta.namespace === ns));
    } else {
      addWorkloadsWhere((wns, labels) => wns === ns && labelsMatch(p.selector!, labels));
    }
  }

  // Only the workloads' own inbound listeners change: added after the client expansion below.
  const authorized = new Set<string>();
  for (const p of changedAuthorizationPolicies(prev, next, diff.authorizationPolicies)) {
    for (const s of snapshots) {
      for (const w of s.workloadEntries) {
        if (authorizationReaches(p, root, w.meta.namespace, w.spec.labels)) authorized.add(workloadKey(w.meta.namespace, w.meta.name));
      }
    }
  }

  for (const s of snapshots) {
    for (const se of byKey(s.serviceEntries, diff.services)) {
      addServices(s, [se]);
      for (const e of indexFor(s).workloadsOf(se)) {
        if (e.workloadEntry !== undefined) direct.add(workloadKey(e.workloadEntry.meta.namespace, e.workloadEntry.meta.name));
      }
    }
    for (const w of byKey(s.workloadEntries, diff.workloads)) direct.add(workloadKey(w.meta.namespace, w.meta.name));
  }
  for (const key of diff.workloads) direct.add(key);

  // Services backed by directly affected workloads: their clients see new endpoints or tlsMode.
  for (const s of snapshots) {
    const index = indexFor(s);
    for (const key of direct) {
      const [ns, name] = [key.slice(0, key.indexOf('/')), key.slice(key.indexOf('/') + 1)];
      const w = index.workload(ns, name);
      if (w !== undefined) addServices(s, index.servicesOf(w));
    }
  }

  const out = new Set(direct);
  if (services.size > 0) {
    const seen = new Set<string>();
    for (const s of snapshots) {
      for (const w of s.workloadEntries) {
        const key = workloadKey(w.meta.namespace, w.meta.name);
        if (out.has(key) || seen.has(`${s.version}:${key}`)) continue;
        seen.add(`${s.version}:${key}`);
        for (const se of services.values()) {
          if (isVisibleTo(se, w.meta.namespace)) {
            out.add(key);
            break;
          }
        }
      }
    }
  }
  for (const key of authorized) {
    out.add(key);
    direct.add(key);
  }
  if (diff.destinationRules.size > 0) {
    for (const s of snapshots) for (const w of s.workloadEntries) out.add(workloadKey(w.meta.namespace, w.meta.name));
  }
  return { all: false, workloads: out, direct };
}

/**
 * Of the candidate workloads, those whose Envoy sidecar config actually differs between the two
 * snapshots (by the names and content versions of every resource it is served). A workload
 * added or removed always counts. Namespace-shared pieces are compared once per namespace, so
 * this costs little more than the encoding the push needs anyway.
 */
function differingTypes(a: string, b: string, into: Set<string>): void {
  const pa = a.split('#');
  const pb = b.split('#');
  FINGERPRINT_TYPES.forEach((t, i) => { if (pa[i] !== pb[i]) into.add(t); });
}

function sidecarConfigChanged(prev: MeshSnapshot, next: MeshSnapshot, candidates: AffectedWorkloads, types: Set<string> = new Set()): Set<string> {
  const before = indexFor(prev);
  const after = indexFor(next);
  const keys = candidates.all
    ? new Set([...prev.workloadEntries, ...next.workloadEntries].map((w) => workloadKey(w.meta.namespace, w.meta.name)))
    : candidates.workloads;
  const out = new Set<string>();
  const sharedChanged = new Map<string, boolean>();
  for (const key of keys) {
    const slash = key.indexOf('/');
    const [ns, name] = [key.slice(0, slash), key.slice(slash + 1)];
    const a = before.workload(ns, name);
    const b = after.workload(ns, name);
    if (a === undefined || b === undefined) { out.add(key); for (const t of FINGERPRINT_TYPES) types.add(t); continue; }
    if (!candidates.all && candidates.direct !== undefined && !candidates.direct.has(key)) {
      let changed = sharedChanged.get(ns);
      if (changed === undefined) {
        const [fa, fb] = [namespaceSharedFingerprint(prev, ns), namespaceSharedFingerprint(next, ns)];
        sharedChanged.set(ns, (changed = fa !== fb));
        differingTypes(fa, fb, types);
      }
      if (changed) out.add(key);
      continue;
    }
    const [fa, fb] = [sidecarFingerprint(prev, a), sidecarFingerprint(next, b)];
    if (fa !== fb) { out.add(key); differingTypes(fa, fb, types); }
  }
  return out;
}

/** `<namespace>/<name>` of the workload a proxy names, or undefined. */
function workloadKeyOf(proxy: ProxyInfo): string | undefined {
  const ref = nodeWorkloadRef(proxy);
  return ref === undefined ? undefined : workloadKey(ref.namespace, ref.name);
}

/** A predicate over connected proxies; a proxy tied to no workload is affected only by an "all" change. */
export function affectedProxyPredicate(affected: AffectedWorkloads): (proxy: ProxyInfo) => boolean {
  if (affected.all) return () => true;
  return (proxy) => {
    const key = workloadKeyOf(proxy);
    return key !== undefined && affected.workloads.has(key);
  };
}

/**
 * What server/mesh-state.ts hands core.push after a config change: undefined when no proxy's config can
 * have changed (e.g. only validation messages changed).
 *
 * - Sidecars tied to a workload are pushed only when their generated config really changed
 *   (sidecarConfigChanged), and only the types that changed: a PeerAuthentication flip that
 *   alters inbound chains re-sends LDS, not the clusters, endpoints and routes that came out
 *   byte-identical. Regenerating and diffing unchanged types per proxy is most of a push's
 *   cost, and Envoy would only ACK them again (Istio narrows pushes the same way).
 * - Sidecars tied to no workload (SDS-only, SPIRE-style configs) are touched only by a change
 *   that affects everyone, with every type: they hold no listeners or clusters, so this is cheap.
 * - Proxies of another generator family (proxyless gRPC) get the rule-based set with every
 *   type, since their resources are not the sidecar's and the fingerprints do not cover them.
 *
 * Secrets are never in a config push: a config change cannot change what a proxy has proven.
 */
export function configPushRequest(prev: MeshSnapshot, next: MeshSnapshot, diff?: SnapshotDiff): PushRequest | undefined {
  const candidates = affectedWorkloads(prev, next, diff);
  if (!candidates.all && candidates.workloads.size === 0) return undefined;
  const types = new Set<string>();
  const changed = sidecarConfigChanged(prev, next, candidates, types);
  const changedTypes = FINGERPRINT_TYPES.filter((t) => types.has(t));
  const rule = affectedProxyPredicate(candidates);
  const exact = affectedProxyPredicate({ all: false, workloads: changed });
  const tied = (proxy: ProxyInfo): boolean => nodeWorkloadRef(proxy) !== undefined;
  return {
    proxies: (proxy) => (proxyKind(proxy) === 'sidecar' ? (tied(proxy) ? exact(proxy) : candidates.all) : rule(proxy)),
    typeUrls: (proxy) => (proxyKind(proxy) === 'sidecar' && tied(proxy) ? changedTypes : FINGERPRINT_TYPES),
    reason: 'config',
  };
}
