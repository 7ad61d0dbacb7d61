/**
 * PeerAuthentication (security.istio.io/v1, v1beta1) → model, with Istio's validation
 * (pkg/config/validation ValidatePeerAuthentication + validateWorkloadSelector),
 * messages verbatim.
 */
import type { MtlsMode, ObjectMeta, PeerAuthentication } from './model.js';
import { Reader } from './fields.js';

const MODES: readonly MtlsMode[] = ['UNSET', 'DISABLE', 'PERMISSIVE', 'STRICT'];

/** Istio's validateWorkloadSelector for type.v1beta1.WorkloadSelector (matchLabels). */
export function checkSelectorLabels(r: Reader, path: (string | number)[], labels: Readonly<Record<string, string>>): void {
  for (const [k, v] of Object.entries(labels)) {
    if (k === '') r.issues.error(path, `empty key is not supported in selector: ${JSON.stringify(`${k}=${v}`)}`);
    if (k.includes('*') || v.includes('*')) r.issues.error([...path, k], `wildcard is not supported in selector: ${JSON.stringify(`${k}=${v}`)}`);
  }
}

function readMutualTls(r: Reader, v: unknown, path: (string | number)[]): MtlsMode {
  const m = r.map(v, path);
  if (m === undefined) return 'UNSET';
  r.fields(m, path, ['mode']);
  return r.enumValue(m.mode, [...path, 'mode'], MODES) ?? 'UNSET';
}

export function parsePeerAuthentication(spec: unknown, r: Reader, meta: ObjectMeta): PeerAuthentication {
  const s = r.map(spec, ['spec']) ?? {};
  r.fields(s, ['spec'], ['selector', 'mtls', 'portLevelMtls']);

  let selector: Record<string, string> | undefined;
  if (s.selector !== undefined && s.selector !== null) {
    const sel = r.map(s.selector, ['spec', 'selector']) ?? {};
    r.fields(sel, ['spec', 'selector'], ['matchLabels']);
    selector = r.stringMap(sel.matchLabels, ['spec', 'selector', 'matchLabels']) ?? {};
    checkSelectorLabels(r, ['spec', 'selector', 'matchLabels'], selector);
    if (Object.keys(selector).length === 0) r.issues.warn(['spec', 'selector'], 'workload selector specified without labels');
  }

  const mode = readMutualTls(r, s.mtls, ['spec', 'mtls']);

  const portLevelMtls = new Map<number, MtlsMode>();
  const emptySelector = selector === undefined || Object.keys(selector).length === 0;
  if (s.portLevelMtls !== undefined && s.portLevelMtls !== null) {
    const ports = r.map(s.portLevelMtls, ['spec', 'portLevelMtls']);
    if (ports !== undefined) {
      const keys = Object.keys(ports);
      if (keys.length === 0) {
        r.issues.error(['spec', 'portLevelMtls'], 'port level mTLS, if defined, must have at least one element');
      } else if (emptySelector) {
        r.issues.error(['spec', 'portLevelMtls'], 'mesh/namespace peer authentication cannot have port level mTLS');
      }
      for (const key of keys) {
        const port = /^\d+$/.test(key) ? Number(key) : NaN;
        if (!(port >= 1 && port <= 65535)) {
          r.issues.error(['spec', 'portLevelMtls', key], 'port must be in range 1..65535');
          continue;
        }
        portLevelMtls.set(port, readMutualTls(r, ports[key], ['spec', 'portLevelMtls', key]));
      }
    }
  }

  const pa: PeerAuthentication = { kind: 'PeerAuthentication', meta, mode, portLevelMtls };
  if (selector !== undefined) pa.selector = selector;
  return pa;
}
