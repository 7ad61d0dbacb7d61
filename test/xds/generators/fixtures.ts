import { buildSnapshot } from '../../../src/config/build-snapshot.js';
import type { MeshSnapshot, WorkloadEntry } from '../../../src/config/model.js';
import type { Identity } from '../../../src/auth/identity.js';
import type { ProxyInfo } from '../../../src/xds/core/types.js';

/**
 * Snapshots for generator tests, written as the Istio YAML users write, through the real
 * config loader (src/config), so tests exercise the same model `meshd serve` builds.
 */
export function snapshotOf(yaml: string, meshYaml?: string, previous?: MeshSnapshot): MeshSnapshot {
  const files = [{ path: '/cfg/mesh-objects.yaml', text: yaml }];
  if (meshYaml !== undefined) files.push({ path: '/cfg/mesh.yaml', text: meshYaml });
  const snapshot = buildSnapshot(files, previous);
  const errors = snapshot.messages.filter((m) => m.level === 'error');
  if (errors.length > 0) throw new Error(`fixture does not validate: ${JSON.stringify(errors)}`);
  return snapshot;
}

export function workload(snapshot: MeshSnapshot, namespace: string, name: string): WorkloadEntry {
  const w = snapshot.workloadEntries.find((x) => x.meta.namespace === namespace && x.meta.name === name);
  if (w === undefined) throw new Error(`no WorkloadEntry ${namespace}/${name}`);
  return w;
}

export function pa(namespace: string, name: string, mode: string, opts: { selector?: Record<string, string>; ports?: Record<number, string>; created?: string } = {}): string {
  const lines = ['apiVersion: security.istio.io/v1', 'kind: PeerAuthentication', 'metadata:', `  name: ${name}`, `  namespace: ${namespace}`];
  if (opts.created) lines.push(`  creationTimestamp: "${opts.created}"`);
  lines.push('spec:');
  if (opts.selector) {
    lines.push('  selector:', '    matchLabels:');
    for (const [k, v] of Object.entries(opts.selector)) lines.push(`      ${k}: ${v}`);
  }
  if (mode !== 'UNSET') lines.push('  mtls:', `    mode: ${mode}`);
  if (opts.ports) {
    lines.push('  portLevelMtls:');
    for (const [p, m] of Object.entries(opts.ports)) lines.push(`    ${p}:`, `      mode: ${m}`);
  }
  return lines.join('\n');
}

export interface SeOpts {
  ports: Array<{ number: number; name: string; protocol: string; targetPort?: number }>;
  selector?: Record<string, string>;
  addresses?: string[];
  location?: 'MESH_INTERNAL' | 'MESH_EXTERNAL';
  resolution?: string;
  exportTo?: string[];
  hosts?: string[];
  created?: string;
  endpoints?: Array<{ address: string; labels?: Record<string, string>; serviceAccount?: string }>;
}

export function se(namespace: string, name: string, o: SeOpts): string {
  const lines = ['apiVersion: networking.istio.io/v1', 'kind: ServiceEntry', 'metadata:', `  name: ${name}`, `  namespace: ${namespace}`];
  if (o.created) lines.push(`  creationTimestamp: "${o.created}"`);
  lines.push('spec:', '  hosts:');
  for (const h of o.hosts ?? [`${name}.${namespace}.svc.cluster.local`]) lines.push(`  - "${h}"`);
  if (o.addresses) {
    lines.push('  addresses:');
    for (const a of o.addresses) lines.push(`  - ${a}`);
  }
  if (o.exportTo) {
    lines.push('  exportTo:');
    for (const e of o.exportTo) lines.push(`  - "${e}"`);
  }
  lines.push(`  location: ${o.location ?? 'MESH_INTERNAL'}`, `  resolution: ${o.resolution ?? 'STATIC'}`, '  ports:');
  for (const p of o.ports) {
    lines.push(`  - number: ${p.number}`, `    name: ${p.name}`);
    // An undeclared protocol is how users get UNKNOWN.
    if (p.protocol !== 'UNKNOWN') lines.push(`    protocol: ${p.protocol}`);
    if (p.targetPort !== undefined) lines.push(`    targetPort: ${p.targetPort}`);
  }
  if (o.selector) {
    lines.push('  workloadSelector:', '    labels:');
    for (const [k, v] of Object.entries(o.selector)) lines.push(`      ${k}: ${v}`);
  }
  if (o.endpoints) {
    lines.push('  endpoints:');
    for (const e of o.endpoints) {
      lines.push(`  - address: ${e.address}`);
      if (e.serviceAccount) lines.push(`    serviceAccount: ${e.serviceAccount}`);
      if (e.labels) {
        lines.push('    labels:');
        for (const [k, v] of Object.entries(e.labels)) lines.push(`      ${k}: ${v}`);
      }
    }
  }
  return lines.join('\n');
}

export interface WeOpts {
  address: string;
  labels: Record<string, string>;
  serviceAccount?: string;
  ports?: Record<string, number>;
  locality?: string;
  weight?: number;
  annotations?: Record<string, string>;
}

export function we(namespace: string, name: string, o: WeOpts): string {
  const lines = ['apiVersion: networking.istio.io/v1', 'kind: WorkloadEntry', 'metadata:', `  name: ${name}`, `  namespace: ${namespace}`];
  if (o.annotations) {
    lines.push('  annotations:');
    for (const [k, v] of Object.entries(o.annotations)) lines.push(`    ${k}: "${v}"`);
  }
  lines.push('spec:', `  address: ${o.address}`);
  if (o.serviceAccount) lines.push(`  serviceAccount: ${o.serviceAccount}`);
  if (o.locality) lines.push(`  locality: ${o.locality}`);
  if (o.weight !== undefined) lines.push(`  weight: ${o.weight}`);
  lines.push('  labels:');
  for (const [k, v] of Object.entries(o.labels)) lines.push(`    ${k}: "${v}"`);
  if (o.ports) {
    lines.push('  ports:');
    for (const [k, v] of Object.entries(o.ports)) lines.push(`    ${k}: ${v}`);
  }
  return lines.join('\n');
}

export function docs(...parts: string[]): string {
  return parts.join('\n---\n');
}

export function identity(namespace: string, serviceAccount: string, trustDomain = 'cluster.local'): Identity {
  return { spiffeId: `spiffe://${trustDomain}/ns/${namespace}/sa/${serviceAccount}`, trustDomain, namespace, serviceAccount, via: 'token' };
}

/** A proxy as `meshd bootstrap` describes one (node id and metadata) with a proven identity. */
export function proxyFor(namespace: string, name: string, who: Identity, address = '10.0.0.1', extra: Record<string, unknown> = {}): ProxyInfo {
  return {
    id: `sidecar~${address}~${name}.${namespace}~${namespace}.svc.cluster.local`,
    cluster: `${name}.${namespace}`,
    metadata: { NAMESPACE: namespace, WORKLOAD_NAME: name, SERVICE_ACCOUNT: who.serviceAccount, ...extra },
    userAgent: 'envoy',
    identity: who,
  };
}

/**
 * An AuthorizationPolicy: `rules` is the YAML of spec.rules (indented as a list under `rules:`),
 * absent for a policy without rules.
 */
export function ap(namespace: string, name: string, o: { action?: string; selector?: Record<string, string>; rules?: string } = {}): string {
  const lines = ['apiVersion: security.istio.io/v1', 'kind: AuthorizationPolicy', 'metadata:', `  name: ${name}`, `  namespace: ${namespace}`, 'spec:'];
  if (o.selector) {
    lines.push('  selector:', '    matchLabels:');
    for (const [k, v] of Object.entries(o.selector)) lines.push(`      ${k}: "${v}"`);
  }
  if (o.action) lines.push(`  action: ${o.action}`);
  if (o.rules !== undefined) lines.push('  rules:', ...o.rules.split('\n').filter((l) => l.trim() !== '').map((l) => `  ${l}`));
  if (lines[lines.length - 1] === 'spec:') lines[lines.length - 1] = 'spec: {}';
  return lines.join('\n');
}
