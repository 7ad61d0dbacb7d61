/**
 * Which DestinationRule a client workload uses for a service host, as istiod decides it:
 *
 * Index (pilot/pkg/model/push_context.go setDestinationRules, destination_rule.go
 * mergeDestinationRule, config.go ResolveShortnameToFQDN):
 * - rules are taken workloadSelector-first, then oldest first (ties: name, namespace);
 * - a short host (`reviews`) means `reviews.<rule namespace>.svc.<domain>`;
 * - a rule with a workloadSelector is private to its namespace whatever its exportTo says;
 * - a rule visible in its own namespace (no exportTo, `*`, `.` or its namespace) goes into that
 *   namespace's local index; a rule exported beyond its namespace goes into the exported index
 *   of its namespace; a private rule of the root namespace goes into a root-local index;
 * - rules for the same host in one index are merged when their exportTo sets are equal (or the
 *   new one's is a superset) and their selectors agree: subsets are concatenated and the first
 *   rule with a trafficPolicy keeps it (no field-wise merge).
 *
 * Lookup for a client in namespace N and a service of namespace S (PushContext.destinationRule,
 * then SidecarScope.DestinationRule):
 * 1. N's local index (for a client in the root namespace: the root-local index);
 * 2. S's exported index, rules exported to N;
 * 3. the root namespace's exported index, rules exported to N;
 * each step takes the most specific host match (exact, else the longest wildcard, MostSpecificHostMatch);
 * among the rules found, one whose workloadSelector matches the client (same namespace) wins,
 * else the last one without a selector.
 *
 * Pure; build the index once per snapshot.
 */
import { compareByCreation } from './creation-order.js';
import type { ClientTlsSettings, DestinationRule, DestinationRuleSubset, TrafficPolicy } from '../config/model.js';
import { parseIp } from '../common/ip.js';
import { labelsMatch } from './labels.js';
import type { WorkloadRef } from './peer-authentication.js';

/** The DNS suffix of `<name>.<namespace>.svc.<suffix>` hosts (Kubernetes' default cluster domain). */
const DEFAULT_DOMAIN_SUFFIX = 'cluster.local';

/** One or more rules for the same host merged as istiod merges them. */
export interface ConsolidatedDestinationRule {
  /** The host after short-name resolution. */
  readonly host: string;
  /** The namespace of the first rule. */
  readonly namespace: string;
  /** The merged rules, in merge order; the first decided the selector and exportTo. */
  readonly from: readonly DestinationRule[];
  readonly trafficPolicy?: TrafficPolicy;
  readonly subsets: readonly DestinationRuleSubset[];
  readonly workloadSelector?: Readonly<Record<string, string>>;
  /** exportTo as written (`.`, `*` or namespaces); `.` only for a rule with a workloadSelector. */
  readonly exportTo: ReadonlySet<string>;
}

interface MutableRule {
  host: string;
  namespace: string;
  from: DestinationRule[];
  trafficPolicy?: TrafficPolicy;
  subsets: DestinationRuleSubset[];
  workloadSelector?: Readonly<Record<string, string>>;
  exportTo: ReadonlySet<string>;
}

/** Rules of one index by resolved host. */
type HostRules = Map<string, MutableRule[]>;

export interface DestinationRuleIndex {
  readonly rootNamespace: string;
  readonly namespaceLocal: ReadonlyMap<string, HostRules>;
  readonly exportedByNamespace: ReadonlyMap<string, HostRules>;
  readonly rootNamespaceLocal: HostRules;
}

/** Istio's ResolveShortnameToFQDN. */
export function resolveHost(host: string, namespace: string, domainSuffix: string = DEFAULT_DOMAIN_SUFFIX): string {
  if (host === '' || host === '*' || host.includes('.') || parseIp(host).ok) return host;
  return `${host}.${namespace}.svc.${domainSuffix}`;
}

function sameSet(a: ReadonlySet<string>, b: ReadonlySet<string>): boolean {
  return a.size === b.size && [...a].every((x) => b.has(x));
}

function sameLabels(a: Readonly<Record<string, string>> = {}, b: Readonly<Record<string, string>> = {}): boolean {
  const ka = Object.keys(a);
  return ka.length === Object.keys(b).length && ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}

function consolidated(dr: DestinationRule, host: string, exportTo: ReadonlySet<string>): MutableRule {
  const r: MutableRule = { host, namespace: dr.meta.namespace, from: [dr], subsets: [...dr.subsets], exportTo };
  if (dr.trafficPolicy !== undefined) r.trafficPolicy = dr.trafficPolicy;
  if (dr.workloadSelector !== undefined) r.workloadSelector = dr.workloadSelector;
  return r;
}

/** mergeDestinationRule with ENABLE_ENHANCED_DESTINATIONRULE_MERGE (istiod's default). */
function merge(index: HostRules, dr: DestinationRule, host: string, exportTo: ReadonlySet<string>): void {
  const list = index.get(host);
  if (list === undefined) {
    index.set(host, [consolidated(dr, host, exportTo)]);
    return;
  }
  let appendSeparately = true;
  for (const existing of list) {
    if (sameSet(exportTo, existing.exportTo)) appendSeparately = false;
    else if (existing.exportTo.size > 0 && [...existing.exportTo].every((e) => exportTo.has(e))) appendSeparately = true;
    else {
      appendSeparately = true;
      continue;
    }
    const bothWithout = dr.workloadSelector === undefined && existing.workloadSelector === undefined;
    const bothWith = dr.workloadSelector !== undefined && existing.workloadSelector !== undefined;
    const selectorsMatch = sameLabels(existing.workloadSelector, dr.workloadSelector);
    if (bothWith && !selectorsMatch) {
      appendSeparately = true;
      continue;
    }
    if (bothWithout || (bothWith && selectorsMatch)) appendSeparately = false;
    existing.from.push(dr);
    const names = new Set(existing.subsets.map((s) => s.name));
    for (const s of dr.subsets) if (!names.has(s.name)) existing.subsets.push(s);
    if (existing.trafficPolicy === undefined && dr.trafficPolicy !== undefined) existing.trafficPolicy = dr.trafficPolicy;
  }
  if (appendSeparately) list.push(consolidated(dr, host, exportTo));
}

function bucket(map: Map<string, HostRules>, ns: string): HostRules {
  let b = map.get(ns);
  if (b === undefined) map.set(ns, (b = new Map()));
  return b;
}

export function indexDestinationRules(
  rules: readonly DestinationRule[],
  rootNamespace: string,
  domainSuffix: string = DEFAULT_DOMAIN_SUFFIX,
): DestinationRuleIndex {
  const sorted = [...rules].sort((a, b) => {
    const sa = a.workloadSelector !== undefined;
    if (sa !== (b.workloadSelector !== undefined)) return sa ? -1 : 1;
    return compareByCreation(a, b);
  });
  const namespaceLocal = new Map<string, HostRules>();
  const exportedByNamespace = new Map<string, HostRules>();
  const rootNamespaceLocal: HostRules = new Map();
  for (const dr of sorted) {
    const ns = dr.meta.namespace;
    const host = resolveHost(dr.host, ns, domainSuffix);
    const exportTo: ReadonlySet<string> = dr.workloadSelector === undefined ? new Set(dr.exportTo) : new Set(['.']);
    if (exportTo.size === 0 || exportTo.has('*') || exportTo.has('.') || exportTo.has(ns)) merge(bucket(namespaceLocal, ns), dr, host, exportTo);
    // meshd has no defaultDestinationRuleExportTo: an unset exportTo means every namespace.
    const privateOnly = exportTo.size === 1 && (exportTo.has('.') || exportTo.has(ns));
    if (!privateOnly) merge(bucket(exportedByNamespace, ns), dr, host, exportTo);
    else if (ns === rootNamespace) merge(rootNamespaceLocal, dr, host, exportTo);
  }
  return { rootNamespace, namespaceLocal, exportedByNamespace, rootNamespaceLocal };
}

/** host.MoreSpecific: non-wildcards first, then longer, then alphabetical. */
function moreSpecific(a: string, b: string): boolean {
  const wa = a.startsWith('*');
  const wb = b.startsWith('*');
  if (wa !== wb) return !wa;
  if (a.length === b.length) return a < b;
  return a.length > b.length;
}

/** MostSpecificHostMatch over one index. */
function mostSpecific(hostname: string, index: HostRules | undefined): MutableRule[] | undefined {
  if (index === undefined) return undefined;
  const exact = index.get(hostname);
  if (exact !== undefined) return exact;
  const needle = hostname.startsWith('*') ? hostname.slice(1) : hostname;
  let best: string | undefined;
  for (const h of index.keys()) {
    if (!h.startsWith('*') || !needle.endsWith(h.slice(1))) continue;
    if (best === undefined || moreSpecific(h, best)) best = h;
  }
  return best === undefined ? undefined : index.get(best);
}

function exportedTo(index: DestinationRuleIndex, owner: string, hostname: string, client: string): MutableRule[] {
  const found = mostSpecific(hostname, index.exportedByNamespace.get(owner)) ?? [];
  return found.filter((r) => r.exportTo.size === 0 || r.exportTo.has('*') || r.exportTo.has(client));
}

/** The rules for a host as the client's namespace sees them (before workloadSelector filtering). */
function candidates(index: DestinationRuleIndex, clientNamespace: string, service: { hostname: string; namespace: string }): MutableRule[] {
  const local = clientNamespace === index.rootNamespace
    ? mostSpecific(service.hostname, index.rootNamespaceLocal)
    : mostSpecific(service.hostname, index.namespaceLocal.get(clientNamespace));
  if (local !== undefined) return local;
  if (service.namespace !== '') {
    const fromService = exportedTo(index, service.namespace, service.hostname, clientNamespace);
    if (fromService.length > 0) return fromService;
  }
  return exportedTo(index, index.rootNamespace, service.hostname, clientNamespace);
}

/**
 * The DestinationRule a client workload applies to its outbound traffic for a service, or
 * undefined when none does (auto mTLS then decides).
 */
export function destinationRuleFor(
  index: DestinationRuleIndex,
  client: WorkloadRef,
  service: { hostname: string; namespace: string },
): ConsolidatedDestinationRule | undefined {
  let catchAll: MutableRule | undefined;
  for (const r of candidates(index, client.namespace, service)) {
    if (r.workloadSelector === undefined) catchAll = r;
    else if (r.namespace === client.namespace && labelsMatch(r.workloadSelector, client.labels)) return r;
  }
  return catchAll;
}

/**
 * The TLS settings for one service port: a portLevelSettings entry for the port replaces the
 * destination-level settings wholesale, even when it has no tls (then none applies), as
 * pilot/pkg/networking/util GetPortLevelTrafficPolicy does.
 */
export function clientTlsForPort(rule: ConsolidatedDestinationRule | undefined, servicePort: number): { tls?: ClientTlsSettings; portLevel: boolean } {
  const policy = rule?.trafficPolicy;
  if (policy === undefined) return { portLevel: false };
  const entry = policy.portLevelSettings.find((p) => p.port === servicePort);
  if (entry !== undefined) return entry.tls === undefined ? { portLevel: true } : { tls: entry.tls, portLevel: true };
  return policy.tls === undefined ? { portLevel: false } : { tls: policy.tls, portLevel: false };
}
