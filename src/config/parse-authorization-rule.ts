/**
 * AuthorizationPolicy rules (istio/api security/v1beta1/authorization_policy.proto Rule,
 * Source, Operation, Condition) with the per-rule checks of Istio's ValidateAuthorizationPolicy
 * (pkg/config/validation/validation.go), messages verbatim.
 */
import type { AuthorizationCondition, AuthorizationOperation, AuthorizationRule, AuthorizationSource } from './model.js';
import { Reader, pathName, type YamlMap } from './fields.js';
import {
  checkEmptyValues, checkServiceAccount, checkTrustDomainValues, checkValidPathTemplate, validateAttribute, validateIps,
  validatePorts, type ValueProblem,
} from './authz-values.js';

type Path = (string | number)[];

const SOURCE_FIELDS = [
  'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals', 'namespaces', 'notNamespaces',
  'serviceAccounts', 'notServiceAccounts', 'trustDomains', 'notTrustDomains', 'ipBlocks', 'notIpBlocks',
  'remoteIpBlocks', 'notRemoteIpBlocks',
] as const;
const OPERATION_FIELDS = ['hosts', 'notHosts', 'ports', 'notPorts', 'methods', 'notMethods', 'paths', 'notPaths'] as const;

/** Source fields that need only the connection, so they still apply on a TCP port. */
const TCP_SOURCE_FIELDS: readonly string[] = [
  'principals', 'notPrincipals', 'ipBlocks', 'notIpBlocks', 'namespaces', 'notNamespaces', 'remoteIpBlocks',
  'notRemoteIpBlocks', 'serviceAccounts', 'notServiceAccounts',
];

const DENY_HTTP_ONLY_WARNING =
  'configured AuthorizationPolicy will deny all traffic to TCP ports under its scope due to the use of only HTTP ' +
  'attributes in a DENY rule; it is recommended to explicitly specify the port';

const NO_JWT = 'needs JWT request authentication (RequestAuthentication), which meshd does not support';

function report(r: Reader, path: Path, problems: ValueProblem[], wrap: (m: string) => string = (m) => m): void {
  for (const p of problems) r.issues.error(p.index === undefined ? path : [...path, p.index], wrap(p.message));
}

/** Go's field names for the Source/Operation lists, as Istio's messages name them (`NotIpBlocks`). */
function goName(field: string): string {
  return field[0]!.toUpperCase() + field.slice(1);
}

function readSource(r: Reader, m: YamlMap, path: Path, rule: number): AuthorizationSource {
  r.fields(m, path, SOURCE_FIELDS);
  const src = Object.fromEntries(SOURCE_FIELDS.map((f) => [f, r.stringList(m[f], [...path, f])])) as unknown as AuthorizationSource;
  const set = (f: keyof AuthorizationSource): boolean => src[f].length > 0;
  if ((set('principals') || set('notPrincipals') || set('namespaces') || set('notNamespaces')) && (set('serviceAccounts') || set('notServiceAccounts'))) {
    r.issues.error(path, `cannot set serviceAccounts with namespaces or principals, found at rule ${rule}`);
  }
  if (SOURCE_FIELDS.every((f) => !set(f))) r.issues.error(path, `\`from.source\` must not be empty, found at rule ${rule}`);
  for (const f of ['ipBlocks', 'notIpBlocks', 'remoteIpBlocks', 'notRemoteIpBlocks'] as const) report(r, [...path, f], validateIps(src[f]));
  for (const f of SOURCE_FIELDS) {
    const check = f === 'serviceAccounts' || f === 'notServiceAccounts' ? checkServiceAccount
      : f === 'trustDomains' || f === 'notTrustDomains' ? checkTrustDomainValues : checkEmptyValues;
    report(r, [...path, f], check(goName(f), src[f]));
  }
  for (const f of ['requestPrincipals', 'notRequestPrincipals'] as const) {
    if (set(f)) {
      r.issues.warn([...path, f], `${f} ${NO_JWT}: no request carries a request principal, so ${f === 'requestPrincipals' ? 'it never matches' : 'it matches every request'}`);
    }
  }
  return src;
}

function readOperation(r: Reader, m: YamlMap, path: Path, rule: number): AuthorizationOperation {
  r.fields(m, path, OPERATION_FIELDS);
  const op = Object.fromEntries(OPERATION_FIELDS.map((f) => [f, r.stringList(m[f], [...path, f])])) as unknown as AuthorizationOperation;
  if (OPERATION_FIELDS.every((f) => op[f].length === 0)) r.issues.error(path, `\`to.operation\` must not be empty, found at rule ${rule}`);
  report(r, [...path, 'ports'], validatePorts(op.ports));
  report(r, [...path, 'notPorts'], validatePorts(op.notPorts));
  for (const f of OPERATION_FIELDS) report(r, [...path, f], checkEmptyValues(goName(f), op[f]));
  report(r, [...path, 'paths'], checkValidPathTemplate('Paths', op.paths));
  report(r, [...path, 'notPaths'], checkValidPathTemplate('NotPaths', op.notPaths));
  return op;
}

function readCondition(r: Reader, m: YamlMap, path: Path): AuthorizationCondition | undefined {
  r.fields(m, path, ['key', 'values', 'notValues']);
  const key = r.string(m.key, [...path, 'key']) ?? '';
  const values = r.stringList(m.values, [...path, 'values']);
  const notValues = r.stringList(m.notValues, [...path, 'notValues']);
  if (key === '') {
    r.issues.error(path, '`key` must not be empty');
    return undefined;
  }
  if (values.length === 0 && notValues.length === 0) {
    r.issues.error(path, `at least one of \`values\` or \`notValues\` must be set for key ${key}`);
  } else {
    // Istio checks the key with each list, so a bad key would be reported twice; once is enough.
    const keyProblems = validateAttribute(key, []);
    const valueWord = (list: string) => (e: string): string => `invalid \`${list}\` for \`key\` ${key}: ${e}`;
    report(r, [...path, 'key'], keyProblems, valueWord('value'));
    const own = (problems: ValueProblem[]): ValueProblem[] => problems.filter((p) => !keyProblems.some((k) => k.message === p.message));
    report(r, [...path, 'values'], own(validateAttribute(key, values)), valueWord('value'));
    report(r, [...path, 'notValues'], own(validateAttribute(key, notValues)), valueWord('notValue'));
  }
  if (key.startsWith('request.auth.')) r.issues.warn([...path, 'key'], `condition ${key} ${NO_JWT}: no request carries it`);
  if (key.startsWith('experimental.envoy.filters.')) {
    r.issues.warn([...path, 'key'], `condition ${key} reads Envoy dynamic metadata that no filter meshd configures sets`);
  }
  return { key, values, notValues };
}

/** A list of maps where Istio rejects null entries (`from: [null]`); undefined when absent. */
function readEntries(r: Reader, v: unknown, path: Path): unknown[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) {
    r.issues.error(path, `${pathName(path)} must be a list`);
    return [];
  }
  return v;
}

export function readRule(r: Reader, raw: unknown, path: Path, i: number, action: string): AuthorizationRule | undefined {
  if (raw === null || raw === undefined) {
    r.issues.error(path, `\`rule\` must not be nil, found at rule ${i}`);
    return undefined;
  }
  const m = r.map(raw, path);
  if (m === undefined) return undefined;
  r.fields(m, path, ['from', 'to', 'when']);
  const rule: { from: AuthorizationSource[]; to: AuthorizationOperation[]; when: AuthorizationCondition[] } = { from: [], to: [], when: [] };
  let fromExists = false;
  let toExists = false;
  let tcpInFrom = false;
  let tcpInTo = false;

  const from = readEntries(r, m.from, [...path, 'from']);
  if (from !== undefined && from.length === 0) r.issues.error([...path, 'from'], `\`from\` must not be empty, found at rule ${i}`);
  from?.forEach((entry, j) => {
    const at = [...path, 'from', j];
    if (entry === null || entry === undefined) return r.issues.error(at, `\`from\` must not be nil, found at rule ${i}`);
    const e = r.map(entry, at);
    if (e === undefined) return;
    r.fields(e, at, ['source']);
    const s = e.source === null || e.source === undefined ? undefined : r.map(e.source, [...at, 'source']);
    if (s === undefined) {
      if (e.source === null || e.source === undefined) r.issues.error(at, `\`from.source\` must not be nil, found at rule ${i}`);
      return;
    }
    fromExists = true;
    const src = readSource(r, s, [...at, 'source'], i);
    if (TCP_SOURCE_FIELDS.some((f) => src[f as keyof AuthorizationSource].length > 0)) tcpInFrom = true;
    rule.from.push(src);
  });

  const to = readEntries(r, m.to, [...path, 'to']);
  if (to !== undefined && to.length === 0) r.issues.error([...path, 'to'], `\`to\` must not be empty, found at rule ${i}`);
  to?.forEach((entry, j) => {
    const at = [...path, 'to', j];
    if (entry === null || entry === undefined) return r.issues.error(at, `\`to\` must not be nil, found at rule ${i}`);
    const e = r.map(entry, at);
    if (e === undefined) return;
    r.fields(e, at, ['operation']);
    const o = e.operation === null || e.operation === undefined ? undefined : r.map(e.operation, [...at, 'operation']);
    if (o === undefined) {
      if (e.operation === null || e.operation === undefined) r.issues.error(at, `\`to.operation\` must not be nil, found at rule ${i}`);
      return;
    }
    toExists = true;
    const op = readOperation(r, o, [...at, 'operation'], i);
    if (op.ports.length > 0 || op.notPorts.length > 0) tcpInTo = true;
    rule.to.push(op);
  });

  const when = readEntries(r, m.when, [...path, 'when']);
  when?.forEach((entry, j) => {
    const at = [...path, 'when', j];
    if (entry === null || entry === undefined) {
      if (action === 'CUSTOM') r.issues.error(at, 'when field cannot be nil');
      r.issues.error(at, '`key` must not be empty');
      return;
    }
    const e = r.map(entry, at);
    if (e === undefined) return;
    const c = readCondition(r, e, at);
    if (c !== undefined) rule.when.push(c);
  });

  if (action === 'DENY' && ((fromExists && !toExists && !tcpInFrom) || (toExists && !tcpInTo))) {
    r.issues.warn(path, DENY_HTTP_ONLY_WARNING);
  }
  if (action === 'CUSTOM') checkCustomRule(r, rule, path);
  return rule;
}

/** Istio's CUSTOM action supports only request attributes an external authorizer can see. */
function checkCustomRule(r: Reader, rule: AuthorizationRule, path: Path): void {
  const unsupported = (what: string): void => r.issues.error(path, `${what} is currently not supported with CUSTOM action`);
  for (const src of rule.from) {
    for (const f of ['namespaces', 'notNamespaces', 'serviceAccounts', 'notServiceAccounts', 'trustDomains', 'notTrustDomains',
      'principals', 'notPrincipals', 'requestPrincipals', 'notRequestPrincipals'] as const) {
      if (src[f].length > 0) unsupported(`From.${goName(f)}`);
    }
  }
  for (const c of rule.when) {
    if (['source.namespace', 'source.serviceAccount', 'source.trustDomain', 'source.principal'].includes(c.key) || c.key.startsWith('request.auth.')) {
      unsupported(c.key);
    }
  }
}
