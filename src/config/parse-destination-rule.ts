/**
 * DestinationRule (networking.istio.io/v1, v1beta1, v1alpha3) → model, with Istio's
 * ValidateDestinationRule, validateTrafficPolicy, validatePortTrafficPolicies, validateSubset,
 * validateExportTo and validateWorkloadSelector (pkg/config/validation/validation.go), messages
 * verbatim.
 *
 * meshd applies `tls` (destination- and port-level). The other TrafficPolicy fields and subsets
 * are valid Istio that meshd does not apply: they are checked one level deep and accepted with
 * one warning, so a pasted rule keeps validating.
 */
import type { DestinationRule, DestinationRuleSubset, ObjectMeta, PortTrafficPolicy, TrafficPolicy } from './model.js';
import { Reader, pathName, type YamlMap } from './fields.js';
import { dns1123LabelError, exportToErrors, labelErrors, wildcardDomainError } from './rules.js';
import { checkSelectorLabels } from './parse-peer-authentication.js';
import { parseClientTls } from './parse-client-tls.js';
import { DRY_RUN_ANNOTATION } from './parse-authorization-policy.js';

type Path = (string | number)[];

/** The fields of the TrafficPolicy parts meshd does not apply (destination_rule.proto), for unknown-field errors. */
const IGNORED_PARTS: Readonly<Record<string, readonly string[]>> = {
  loadBalancer: ['simple', 'consistentHash', 'localityLbSetting', 'zoneAwareLbSetting', 'warmupDurationSecs', 'warmup'],
  connectionPool: ['tcp', 'http'],
  outlierDetection: [
    'consecutiveErrors', 'splitExternalLocalOriginErrors', 'consecutiveLocalOriginFailures', 'consecutiveGatewayErrors',
    'consecutive5xxErrors', 'interval', 'baseEjectionTime', 'maxEjectionPercent', 'minHealthPercent', 'outlierDetectionHttpErrorCodes',
  ],
  tunnel: ['protocol', 'targetHost', 'targetPort'],
  proxyProtocol: ['version'],
  retryBudget: ['percent', 'minRetryConcurrency', 'budgetInterval'],
};
const PORT_PARTS = ['loadBalancer', 'connectionPool', 'outlierDetection'];

interface Ignored {
  /** Paths of the parts meshd does not apply, for one warning. */
  paths: Path[];
}

function present(m: YamlMap, key: string): boolean {
  return m[key] !== undefined && m[key] !== null;
}

/** A part meshd ignores: must be a map of known fields; connectionPool needs tcp or http. */
function readIgnoredPart(r: Reader, m: YamlMap, key: string, path: Path, ignored: Ignored): void {
  if (!present(m, key)) return;
  const at = [...path, key];
  const part = r.map(m[key], at);
  if (part === undefined) return;
  r.fields(part, at, IGNORED_PARTS[key]!);
  if (key === 'connectionPool' && !present(part, 'tcp') && !present(part, 'http')) r.issues.error(at, 'connection pool must have at least one field');
  ignored.paths.push(at);
}

function readPortLevel(r: Reader, v: unknown, path: Path, ignored: Ignored): PortTrafficPolicy[] {
  if (!Array.isArray(v)) {
    r.issues.error(path, `${pathName(path)} must be a list`);
    return [];
  }
  const out: PortTrafficPolicy[] = [];
  v.forEach((raw, i) => {
    const at = [...path, i];
    if (raw === null || raw === undefined) return r.issues.error(at, 'traffic policy may not be null');
    const m = r.map(raw, at);
    if (m === undefined) return;
    r.fields(m, at, ['port', ...PORT_PARTS, 'tls']);
    let port: number | undefined;
    if (!present(m, 'port')) r.issues.error(at, 'portTrafficPolicy must have valid port');
    else {
      const sel = r.map(m.port, [...at, 'port']) ?? {};
      r.fields(sel, [...at, 'port'], ['number']);
      port = r.uint(sel.number, [...at, 'port', 'number']) ?? 0;
    }
    if (![...PORT_PARTS, 'tls'].some((k) => present(m, k))) {
      r.issues.error(at, 'port traffic policy must have at least one field');
      return;
    }
    for (const k of Object.keys(m)) if (PORT_PARTS.includes(k)) readIgnoredPart(r, m, k, at, ignored);
    const entry: PortTrafficPolicy = { port: port ?? 0 };
    if (present(m, 'tls')) {
      const tls = parseClientTls(r, m.tls, [...at, 'tls']);
      if (tls) entry.tls = tls;
    }
    out.push(entry);
  });
  return out;
}

function readTrafficPolicy(r: Reader, v: unknown, path: Path, ignored: Ignored): TrafficPolicy | undefined {
  if (v === undefined || v === null) return undefined;
  const m = r.map(v, path);
  if (m === undefined) return undefined;
  const parts = [...Object.keys(IGNORED_PARTS), 'tls', 'portLevelSettings'];
  r.fields(m, path, parts);
  if (!parts.some((k) => present(m, k))) {
    r.issues.error(path, 'traffic policy must have at least one field');
    return undefined;
  }
  if (present(m, 'tunnel') && present(m, 'proxyProtocol')) {
    r.issues.error(path, 'tunnel and proxyProtocol must not be set together');
    return undefined;
  }
  // In the order the YAML has them, so the warning points at the first.
  for (const k of Object.keys(m)) if (k in IGNORED_PARTS) readIgnoredPart(r, m, k, path, ignored);
  const policy: TrafficPolicy = { portLevelSettings: present(m, 'portLevelSettings') ? readPortLevel(r, m.portLevelSettings, [...path, 'portLevelSettings'], ignored) : [] };
  if (present(m, 'tls')) {
    const tls = parseClientTls(r, m.tls, [...path, 'tls']);
    if (tls) policy.tls = tls;
  }
  return policy;
}

function readSubsets(r: Reader, v: unknown, ignored: Ignored): DestinationRuleSubset[] {
  if (v === undefined || v === null) return [];
  const path = ['spec', 'subsets'];
  if (!Array.isArray(v)) {
    r.issues.error(path, 'spec.subsets must be a list');
    return [];
  }
  const out: DestinationRuleSubset[] = [];
  const names = new Set<string>();
  v.forEach((raw, i) => {
    const at = [...path, i];
    if (raw === null || raw === undefined) return r.issues.error(at, 'subset may not be null');
    const m = r.map(raw, at);
    if (m === undefined) return;
    r.fields(m, at, ['name', 'labels', 'trafficPolicy']);
    const name = r.string(m.name, [...at, 'name']) ?? '';
    if (names.has(name)) r.issues.error([...at, 'name'], `duplicate subset names: ${name}`);
    names.add(name);
    if (name === '') r.issues.error([...at, 'name'], 'subset name cannot be empty');
    else if (dns1123LabelError(name) !== undefined) r.issues.error([...at, 'name'], `subset name is invalid: ${name}`);
    const labels = r.stringMap(m.labels, [...at, 'labels']) ?? {};
    for (const e of labelErrors(labels)) r.issues.error([...at, 'labels'], e);
    readTrafficPolicy(r, m.trafficPolicy, [...at, 'trafficPolicy'], { paths: [] });
    out.push({ name, labels });
  });
  if (out.length > 0) ignored.paths.push(path);
  return out;
}

export function parseDestinationRule(spec: unknown, r: Reader, meta: ObjectMeta): DestinationRule {
  const s = r.map(spec, ['spec']) ?? {};
  r.fields(s, ['spec'], ['host', 'trafficPolicy', 'subsets', 'exportTo', 'workloadSelector']);
  if (meta.annotations[DRY_RUN_ANNOTATION] !== undefined) {
    r.issues.error(['metadata', 'annotations', DRY_RUN_ANNOTATION], `${meta.namespace}/${meta.name} has unsupported annotation ${DRY_RUN_ANNOTATION}, please remove the annotation`);
  }

  const host = r.string(s.host, ['spec', 'host']) ?? '';
  const hostError = wildcardDomainError(host);
  if (hostError) r.issues.error(['spec', 'host'], hostError);

  const ignored: Ignored = { paths: [] };
  const trafficPolicy = readTrafficPolicy(r, s.trafficPolicy, ['spec', 'trafficPolicy'], ignored);
  const subsets = readSubsets(r, s.subsets, ignored);

  let workloadSelector: Record<string, string> | undefined;
  if (present(s, 'workloadSelector')) {
    const sel = r.map(s.workloadSelector, ['spec', 'workloadSelector']) ?? {};
    r.fields(sel, ['spec', 'workloadSelector'], ['matchLabels']);
    workloadSelector = r.stringMap(sel.matchLabels, ['spec', 'workloadSelector', 'matchLabels']) ?? {};
    checkSelectorLabels(r, ['spec', 'workloadSelector', 'matchLabels'], workloadSelector);
    if (Object.keys(workloadSelector).length === 0) r.issues.warn(['spec', 'workloadSelector'], 'workload selector specified without labels');
  }

  const exportTo = r.stringList(s.exportTo, ['spec', 'exportTo']);
  for (const e of exportToErrors(meta.namespace, exportTo, { destinationRuleWithSelector: workloadSelector !== undefined })) {
    r.issues.error(['spec', 'exportTo'], e);
  }

  if (ignored.paths.length > 0) {
    r.issues.warn(ignored.paths[0]!, `${ignored.paths.map(pathName).join(', ')}: valid Istio that meshd does not apply (meshd applies trafficPolicy.tls and portLevelSettings[].tls)`);
  }

  const rule: DestinationRule = { kind: 'DestinationRule', meta, host, subsets, exportTo };
  if (trafficPolicy !== undefined) rule.trafficPolicy = trafficPolicy;
  if (workloadSelector !== undefined) rule.workloadSelector = workloadSelector;
  return rule;
}
