/**
 * Warnings that need more than one document (what `istioctl analyze` would say): they never
 * block a resource, they explain why it has no effect.
 */
import type { AuthorizationPolicy, ConfigMessage, DestinationRule, MeshSettings, PeerAuthentication, ServiceEntry, WorkloadEntry } from './model.js';
import { compareByCreation } from '../mesh/creation-order.js';
import { labelsMatch } from '../mesh/labels.js';
import { isScopeWide, policyRef } from '../mesh/peer-authentication.js';

interface Parts {
  mesh: MeshSettings;
  peerAuthentications: readonly PeerAuthentication[];
  serviceEntries: readonly ServiceEntry[];
  workloadEntries: readonly WorkloadEntry[];
  authorizationPolicies: readonly AuthorizationPolicy[];
  destinationRules: readonly DestinationRule[];
}

/**
 * What of an enforced AuthorizationPolicy or applied DestinationRule does not reach every proxy,
 * so nobody takes a valid resource for one in force everywhere.
 */
const AUDIT_NOT_ON_GRPC =
  'AUDIT is logged by Envoy sidecars (RBAC action LOG); proxyless gRPC servers have no AUDIT action (gRFC A41), so their listeners leave this policy out';
const SELECTOR_RULE_NOT_APPLIED =
  'a DestinationRule with workloadSelector is not applied yet: sidecars share their namespace\'s outbound clusters; without the selector it applies to every client in the namespace';

function warning(r: { kind: string; meta: { namespace: string; name: string; source: { file: string; line: number } } }, message: string): ConfigMessage {
  return { level: 'warning', message, source: r.meta.source, resource: `${r.kind}/${r.meta.namespace}/${r.meta.name}` };
}

export function crossReferenceWarnings(p: Parts): ConfigMessage[] {
  const out: ConfigMessage[] = [];
  const root = p.mesh.rootNamespace;
  for (const ap of p.authorizationPolicies) if (ap.action === 'AUDIT') out.push(warning(ap, AUDIT_NOT_ON_GRPC));
  for (const dr of p.destinationRules) if (dr.workloadSelector !== undefined) out.push(warning(dr, SELECTOR_RULE_NOT_APPLIED));

  const wideByNamespace = new Map<string, PeerAuthentication[]>();
  for (const pa of p.peerAuthentications) {
    if (isScopeWide(pa)) {
      const list = wideByNamespace.get(pa.meta.namespace) ?? [];
      list.push(pa);
      wideByNamespace.set(pa.meta.namespace, list);
    } else if (pa.meta.namespace === root) {
      // ComposePeerAuthentication skips selector policies in the root namespace
      // (pilot/pkg/security/authn/policy_applier.go).
      out.push(warning(pa, `a PeerAuthentication with a workload selector in the root namespace "${root}" is ignored; put it in the workload's namespace`));
    }
  }
  for (const [ns, list] of wideByNamespace) {
    if (list.length < 2) continue;
    const [chosen, ...ignored] = [...list].sort(compareByCreation);
    const scope = ns === root ? 'Mesh-level' : 'Namespace-level';
    for (const pa of ignored) {
      out.push(warning(pa, `${scope} PeerAuthentication is already defined for "${ns}" by ${policyRef(chosen!)}; this one is ignored (the oldest wins)`));
    }
  }

  for (const se of p.serviceEntries) {
    const sel = se.workloadSelector;
    if (sel === undefined || Object.keys(sel).length === 0) continue;
    const any = p.workloadEntries.some((we) => we.meta.namespace === se.meta.namespace && labelsMatch(sel, we.spec.labels));
    if (!any) out.push(warning(se, `workloadSelector matches no WorkloadEntry in namespace "${se.meta.namespace}"; the service has no endpoints`));
  }
  return out;
}
