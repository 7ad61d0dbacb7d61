import { buildSnapshot } from '../../src/config/build-snapshot.js';
import type { MeshSnapshot } from '../../src/config/model.js';

/** Remove the indentation common to all lines, so YAML can be written inline in a test. */
export function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const raw = strings.reduce((acc, s, i) => acc + s + (i < values.length ? String(values[i]) : ''), '');
  const lines = raw.replace(/^\n/, '').replace(/\n\s*$/, '\n').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim() !== '').map((l) => l.match(/^ */)![0].length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

export function snapshotOf(files: Record<string, string>, previous?: MeshSnapshot): MeshSnapshot {
  return buildSnapshot(Object.entries(files).map(([path, text]) => ({ path, text })), previous);
}

export function pa(ns: string, name: string, mode: string, extra = ''): string {
  return yaml`
    apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata:
      name: ${name}
      namespace: ${ns}
    spec:
      mtls:
        mode: ${mode}
  ` + extra;
}
