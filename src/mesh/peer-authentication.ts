/**
 * PeerAuthentication resolution, as istiod composes it for one sidecar
 * (pilot/pkg/security/authn/policy_applier.go ComposePeerAuthentication and
 * pilot/pkg/model/authentication.go getConfigsForWorkload).
 *
 * - Scopes: mesh = no selector (or empty matchLabels) in the root namespace; namespace = no
 *   selector (or empty matchLabels) elsewhere; workload = non-empty selector outside the root
 *   namespace whose labels are a subset of the workload's. A selector policy in the root
 *   namespace is ignored (with a warning here, silently in istiod).
 * - Precedence workload > namespace > mesh; UNSET inherits from the wider scope; nothing set
 *   (or mesh UNSET) is PERMISSIVE.
 * - Several candidates at one scope: the oldest creationTimestamp wins, ties by name then
 *   namespace (configCompareByCreationTime). No merging: the losers are dropped with a warning.
 * - portLevelMtls comes only from the single chosen workload-level policy and is keyed by the
 *   workload (target) port; a port-level UNSET takes the workload's resolved mode.
 *
 * Pure: no I/O, no clock. Callers are the listener/cluster/endpoint generators and `meshd check`.
 */
import { compareByCreation } from './creation-order.js';
import type { MtlsMode, PeerAuthentication } from '../config/model.js';
import { labelsMatch } from './labels.js';

export type EffectiveMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

export interface WorkloadRef {
  namespace: string;
  labels: Readonly<Record<string, string>>;
}

export interface EffectiveMtls {
  /** Workload-level resolved mode. */
  mode: EffectiveMode;
  /** "PeerAuthentication/<ns>/<name>" that decided it; undefined = default PERMISSIVE. */
  decidedBy?: string;
  /** Only ports with a port-level override (from the chosen workload-level policy). */
  ports: ReadonlyMap<number, { mode: EffectiveMode; decidedBy?: string }>;
  warnings: readonly string[];
}

export function policyRef(p: PeerAuthentication): string {
  return `PeerAuthentication/${p.meta.namespace}/${p.meta.name}`;
}

/** True when the policy has no selector or an empty matchLabels: mesh- or namespace-wide. */
export function isScopeWide(p: PeerAuthentication): boolean {
  return p.selector === undefined || Object.keys(p.selector).length === 0;
}

interface Decision {
  mode: EffectiveMode;
  decidedBy?: string;
}

function pickOldest(
  candidates: PeerAuthentication[],
  scope: string,
  warnings: string[],
): PeerAuthentication | undefined {
  if (candidates.length === 0) return undefined;
  const sorted = [...candidates].sort(compareByCreation);
  const chosen = sorted[0]!;
  for (const loser of sorted.slice(1)) {
    // istiod: "Namespace/mesh-level PeerAuthentication is already defined for …, Ignore …"
    warnings.push(
      `${scope} PeerAuthentication is already defined by ${policyRef(chosen)}; ignoring ${policyRef(loser)} (the oldest policy wins)`,
    );
  }
  return chosen;
}

function apply(parent: Decision, p: PeerAuthentication | undefined): Decision {
  if (p === undefined || p.mode === 'UNSET') return parent;
  return { mode: p.mode, decidedBy: policyRef(p) };
}

export function resolvePeerAuthentication(
  policies: readonly PeerAuthentication[],
  rootNamespace: string,
  workload: WorkloadRef,
): EffectiveMtls {
  const warnings: string[] = [];
  const mesh: PeerAuthentication[] = [];
  const namespace: PeerAuthentication[] = [];
  const selected: PeerAuthentication[] = [];

  for (const p of policies) {
    const ns = p.meta.namespace;
    if (ns !== rootNamespace && ns !== workload.namespace) continue;
    if (isScopeWide(p)) {
      (ns === rootNamespace ? mesh : namespace).push(p);
    } else if (ns === rootNamespace) {
      // Istio skips selector policies in the root namespace; say so when one would have matched.
      if (labelsMatch(p.selector!, workload.labels)) {
        warnings.push(
          `${policyRef(p)} has a workload selector in the root namespace "${rootNamespace}" and is ignored; ` +
            'put workload-level policies in the workload\'s namespace',
        );
      }
    } else if (labelsMatch(p.selector!, workload.labels)) {
      selected.push(p);
    }
  }

  const meshPolicy = pickOldest(mesh, 'Mesh-level', warnings);
  const nsPolicy = rootNamespace === workload.namespace ? undefined : pickOldest(namespace, 'Namespace-level', warnings);
  const wlPolicy = pickOldest(selected, 'Workload-level', warnings);

  let decision: Decision = { mode: 'PERMISSIVE' };
  decision = apply(decision, meshPolicy);
  decision = apply(decision, nsPolicy);
  decision = apply(decision, wlPolicy);

  const ports = new Map<number, Decision>();
  if (wlPolicy !== undefined) {
    for (const [port, mode] of [...wlPolicy.portLevelMtls].sort((a, b) => a[0] - b[0])) {
      ports.set(port, mode === 'UNSET' ? { ...decision } : { mode: mode as Exclude<MtlsMode, 'UNSET'>, decidedBy: policyRef(wlPolicy) });
    }
  }

  const result: EffectiveMtls = { mode: decision.mode, ports, warnings };
  if (decision.decidedBy !== undefined) result.decidedBy = decision.decidedBy;
  return result;
}

/** The mode Envoy's per-port inbound chain gets: the port-level override, else the workload mode. */
export function modeForPort(effective: EffectiveMtls, port: number): { mode: EffectiveMode; decidedBy?: string } {
  const override = effective.ports.get(port);
  if (override !== undefined) return override;
  return effective.decidedBy === undefined ? { mode: effective.mode } : { mode: effective.mode, decidedBy: effective.decidedBy };
}
