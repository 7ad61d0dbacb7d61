/**
 * The authorization part of `meshd check`: the RBAC filters of the filter chain a connection
 * took, evaluated the way Envoy runs them (rbac-engine.ts) over the request the user describes.
 * HTTP chains run the HTTP filters of their connection manager (a denial is Envoy's 403
 * "RBAC: access denied"); TCP chains run the network filters before tcp_proxy (a denial closes
 * the connection). Policies are named back from istiod's RBAC policy names
 * (`ns[<ns>]-policy[<name>]-rule[<i>]`). Pure.
 */
import { ExtensionName } from '../envoy/extension-types.js';
import type { FilterChain } from '../envoy/messages.js';
import { evaluateRbacChain, type ChainVerdict, type RbacRequest } from './rbac-engine.js';

export interface CheckRequest {
  method?: string;
  path?: string;
  headers?: Readonly<Record<string, string>>;
}

export interface AuthorizationVerdict {
  allowed: boolean;
  /** What the connection's chain evaluates: HTTP requests or the TCP connection. */
  kind: 'http' | 'tcp';
  /** The enforcing action that decided (ALLOW or DENY), absent when no policy restricts the port. */
  action?: string;
  /** `AuthorizationPolicy/<ns>/<name> rule <i>` (or the raw RBAC policy name when not one of istiod's). */
  policy?: string;
  /** AUDIT (LOG) policies that matched. */
  audited: string[];
  summary: string;
}

const POLICY_NAME = /ns\[([^\]]*)\]-policy\[([^\]]*)\]-rule\[(\d+)\]/;

export function describeRbacPolicy(name: string): string {
  const m = POLICY_NAME.exec(name);
  if (m === null) return name;
  const custom = name.startsWith('istio-ext-authz') ? ' (CUSTOM without an authorizer: denies what it matches)' : '';
  return `AuthorizationPolicy/${m[1]}/${m[2]} rule ${m[3]}${custom}`;
}

interface RbacCarrier { name?: string; typed_config?: unknown }

function rbacFiltersOf(chain: FilterChain): { kind: 'http' | 'tcp'; filters: RbacCarrier[] } {
  const filters = (chain.filters ?? []) as RbacCarrier[];
  const hcm = filters.find((f) => f.name === ExtensionName.HttpConnectionManager);
  if (hcm !== undefined) {
    const http = ((hcm.typed_config as { http_filters?: RbacCarrier[] }).http_filters ?? []);
    return { kind: 'http', filters: http.filter((f) => f.name?.startsWith('envoy.filters.http.rbac') === true) };
  }
  return { kind: 'tcp', filters: filters.filter((f) => f.name === 'envoy.filters.network.rbac') };
}

export interface ConnectionFacts {
  /** The client's SPIFFE ID on an mTLS chain; absent on plaintext and passthrough chains. */
  principal?: string;
  sourceIp: string;
  destinationIp: string;
  destinationPort: number;
  host: string;
}

/** Undefined when the chain carries no RBAC filter (no policy applies: everything is allowed). */
export function authorizeOnChain(chain: FilterChain, c: ConnectionFacts, request: CheckRequest = {}): AuthorizationVerdict | undefined {
  const { kind, filters } = rbacFiltersOf(chain);
  if (filters.length === 0) return undefined;
  const req: RbacRequest = {
    sourceIp: c.sourceIp,
    destinationIp: c.destinationIp,
    destinationPort: c.destinationPort,
    ...(c.principal !== undefined ? { sourcePrincipal: c.principal } : {}),
    ...(kind === 'http' ? { http: { method: request.method ?? 'GET', path: request.path ?? '/', host: request.headers?.host ?? c.host, headers: request.headers ?? {} } } : {}),
  };
  const v: ChainVerdict = evaluateRbacChain(filters as never, req);
  const audited = v.filters.flatMap((f) => (f.enforced?.action === 'LOG' && f.enforced.policy !== undefined ? [describeRbacPolicy(f.enforced.policy)] : []));
  const what = kind === 'http' ? `${req.http!.method} ${req.http!.path}` : 'the TCP connection';
  const by = v.decidedBy?.policy !== undefined ? describeRbacPolicy(v.decidedBy.policy) : undefined;
  const out: AuthorizationVerdict = { allowed: v.allowed, kind, audited, summary: '' };
  if (v.decidedBy !== undefined) out.action = v.decidedBy.action;
  if (by !== undefined) out.policy = by;
  if (v.allowed) {
    out.summary = by !== undefined ? `${what} allowed by ${by} (ALLOW)` : `${what} allowed: no DENY matches and no ALLOW policy applies`;
  } else {
    const effect = kind === 'http' ? '403 "RBAC: access denied"' : 'the connection is closed';
    out.summary = by !== undefined
      ? `${what} denied by ${by} (${v.decidedBy!.action}): ${effect}`
      : `${what} denied: ALLOW policies apply to this workload and none matches${c.principal === undefined ? ' (the chain has no client certificate, so principal and namespace rules cannot match)' : ''}: ${effect}`;
  }
  if (audited.length > 0) out.summary += `; audited by ${audited.join(', ')}`;
  return out;
}
