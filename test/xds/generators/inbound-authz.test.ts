import t from 'tap';
import { buildProxyConfig } from '../../../src/xds/generators/proxy-config.js';
import type { Filter, FilterChain, Listener } from '../../../src/envoy/messages.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';
import { evaluateRbacChain, type RbacRequest } from '../../../src/check/rbac-engine.js';
import { throughEnvoyProtos } from '../../check/rbac-wire.js';
import { envoyRejects } from './envoy-accepts.js';
import { ap, docs, pa, se, snapshotOf, we, workload } from './fixtures.js';

/**
 * AuthorizationPolicies in the sidecar's inbound listeners: where the RBAC filters go on each
 * chain of each mode, that the listeners still decode strictly, and what the filters of each
 * chain decide once they went through Envoy's protos, evaluated with Envoy's semantics.
 */
const SLEEP = 'spiffe://cluster.local/ns/cli/sa/sleep';
const EVIL = 'spiffe://cluster.local/ns/evil/sa/x';

const SERVICES = [
  se('srv', 'web', { ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }, { number: 5432, name: 'pg', protocol: 'TCP' }], selector: { app: 'srv' } }),
  we('srv', 'srv-1', { address: '10.1.0.1', labels: { app: 'srv' }, serviceAccount: 'srv' }),
  we('srv', 'other', { address: '10.1.0.2', labels: { app: 'other' }, serviceAccount: 'other' }),
  se('srv', 'other', { ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }], selector: { app: 'other' } }),
];
const DENY = ap('srv', 'deny-admin', {
  action: 'DENY', selector: { app: 'srv' },
  rules: '- from:\n  - source:\n      namespaces: ["evil"]\n  to:\n  - operation:\n      paths: ["/admin*"]',
});
const ALLOW = ap('srv', 'allow-sleep', { selector: { app: 'srv' }, rules: '- from:\n  - source:\n      principals: ["cluster.local/ns/cli/sa/sleep", "cluster.local/ns/evil/sa/x"]' });
const AUDIT = ap('srv', 'audit-get', { action: 'AUDIT', selector: { app: 'srv' }, rules: '- to:\n  - operation:\n      methods: ["GET"]' });

function listeners(mode: string, ...policies: string[]): Map<number, Listener> {
  const snap = snapshotOf(docs(pa('srv', 'default', mode), ...SERVICES, ...policies));
  const c = buildProxyConfig(snap, workload(snap, 'srv', 'srv-1'));
  return new Map(c.listeners.filter((l) => l.traffic_direction === 'INBOUND').map((l) => [l.address!.socket_address!.port_value!, l]));
}

type RbacConfig = { '@type': string; rules?: { action?: string } };
const hcmOf = (c: FilterChain): { http_filters: Array<{ name: string; typed_config: RbacConfig }> } =>
  c.filters![0]!.typed_config as unknown as { http_filters: Array<{ name: string; typed_config: RbacConfig }> };
const actions = (fs: ReadonlyArray<{ typed_config?: unknown }>): string[] =>
  fs.map((f) => (f.typed_config as RbacConfig).rules?.action ?? '-');
const kindOf = (c: FilterChain): string => (c.transport_socket !== undefined ? 'mtls' : c.filter_chain_match?.transport_protocol === 'tls' ? 'passthrough' : 'plaintext');

for (const mode of ['STRICT', 'PERMISSIVE', 'DISABLE']) {
  t.test(`${mode}: RBAC HTTP filters before the router and network filters before tcp_proxy on every chain; strict decode`, async (t) => {
    const ls = listeners(mode, DENY, ALLOW, AUDIT);
    for (const l of ls.values()) t.same(envoyRejects(TypeUrl.Listener, l), [], `${l.name} decodes strictly`);
    for (const chain of ls.get(8080)!.filter_chains!) {
      const names = hcmOf(chain).http_filters.map((f) => f.name);
      t.same(names, ['envoy.filters.http.rbac', 'envoy.filters.http.rbac', 'envoy.filters.http.rbac', 'envoy.filters.http.router'], `${chain.name}: RBAC ×3, router last`);
      t.same(actions(hcmOf(chain).http_filters.slice(0, 3)), ['LOG', 'DENY', 'ALLOW'], `${chain.name}: AUDIT (LOG), then DENY before ALLOW`);
    }
    for (const chain of ls.get(5432)!.filter_chains!) {
      const filters = chain.filters as Filter[];
      t.same(filters.map((f) => f.name), ['envoy.filters.network.rbac', 'envoy.filters.network.rbac', 'envoy.filters.network.rbac', 'envoy.filters.network.tcp_proxy'], `${chain.name} (${kindOf(chain)}): RBAC ×3 before tcp_proxy`);
      t.same(actions(filters.slice(0, 3)), ['LOG', 'DENY', 'ALLOW'], `${chain.name}: LOG, DENY, ALLOW`);
    }
  });
}

/** The verdict of one chain's RBAC filters, after they went through Envoy's protos. */
function verdictOn(chain: FilterChain, req: Omit<RbacRequest, 'destinationIp' | 'destinationPort' | 'sourceIp'>, port: number): string {
  const http = chain.filters![0]!.name === 'envoy.filters.network.http_connection_manager';
  const raw = http ? hcmOf(chain).http_filters.filter((f) => f.name !== 'envoy.filters.http.router') : (chain.filters as Filter[]).slice(0, -1);
  const filters = raw.map((f) => throughEnvoyProtos(f as { typed_config: { '@type': string } }));
  const v = evaluateRbacChain(filters as never, { sourceIp: '10.2.0.1', destinationIp: '10.1.0.1', destinationPort: port, ...req });
  return v.allowed ? 'allow' : `deny:${v.decidedBy?.action}`;
}

t.test('PERMISSIVE: the plaintext chain sees no principal, so principal rules match only on mTLS', async (t) => {
  const ls = listeners('PERMISSIVE', DENY, ALLOW);
  const get = { method: 'GET', path: '/', host: 'web' };
  for (const chain of ls.get(8080)!.filter_chains!) {
    const kind = kindOf(chain);
    // On the wire the plaintext chain has no peer certificate, whoever the client is.
    const principal = kind === 'mtls' ? { sourcePrincipal: SLEEP } : {};
    t.equal(verdictOn(chain, { ...principal, http: get }, 8080), kind === 'mtls' ? 'allow' : 'deny:ALLOW', `HTTP ${kind}: GET /`);
  }
  for (const chain of ls.get(5432)!.filter_chains!) {
    const kind = kindOf(chain);
    const principal = kind === 'mtls' ? { sourcePrincipal: SLEEP } : {};
    t.equal(verdictOn(chain, principal, 5432), kind === 'mtls' ? 'allow' : 'deny:ALLOW', `TCP ${kind}: a connection`);
  }
});

t.test('DENY before ALLOW; on TCP the DENY keeps the attributes that still apply (namespace) and drops the path', async (t) => {
  const ls = listeners('STRICT', DENY, ALLOW);
  const http = ls.get(8080)!.filter_chains![0]!;
  const tcp = ls.get(5432)!.filter_chains![0]!;
  t.equal(verdictOn(http, { sourcePrincipal: SLEEP, http: { method: 'GET', path: '/admin/x', host: 'web' } }, 8080), 'allow', 'sleep may reach /admin (not from evil)');
  t.equal(verdictOn(http, { sourcePrincipal: EVIL, http: { method: 'GET', path: '/admin/x', host: 'web' } }, 8080), 'deny:DENY', 'evil is denied /admin even though ALLOW lists it');
  t.equal(verdictOn(http, { sourcePrincipal: EVIL, http: { method: 'GET', path: '/ok', host: 'web' } }, 8080), 'allow', 'evil may reach other paths');
  t.equal(verdictOn(tcp, { sourcePrincipal: EVIL }, 5432), 'deny:DENY', 'TCP: evil is denied outright (the path is dropped from the DENY rule)');
  t.equal(verdictOn(tcp, { sourcePrincipal: SLEEP }, 5432), 'allow', 'TCP: sleep allowed');
});

t.test('AUDIT adds a LOG filter and changes no verdict', async (t) => {
  const without = listeners('STRICT', DENY, ALLOW);
  const withAudit = listeners('STRICT', DENY, ALLOW, AUDIT);
  const reqs = [
    { sourcePrincipal: SLEEP, http: { method: 'GET', path: '/', host: 'web' } },
    { sourcePrincipal: EVIL, http: { method: 'GET', path: '/admin', host: 'web' } },
    { sourcePrincipal: 'spiffe://cluster.local/ns/x/sa/y', http: { method: 'GET', path: '/', host: 'web' } },
    { sourcePrincipal: SLEEP, http: { method: 'POST', path: '/', host: 'web' } },
  ];
  for (const req of reqs) {
    const a = verdictOn(without.get(8080)!.filter_chains![0]!, req, 8080);
    const b = verdictOn(withAudit.get(8080)!.filter_chains![0]!, req, 8080);
    t.equal(b, a, `${req.sourcePrincipal} ${req.http.method} ${req.http.path}: ${a} either way`);
  }
});

t.test('a workload no policy selects keeps exactly the listeners it had without policies; problems become warnings', async (t) => {
  const plain = snapshotOf(docs(pa('srv', 'default', 'STRICT'), ...SERVICES));
  const policed = snapshotOf(docs(pa('srv', 'default', 'STRICT'), ...SERVICES, DENY, ALLOW));
  const other = (s: typeof plain): unknown => buildProxyConfig(s, workload(s, 'srv', 'other')).listeners.filter((l) => l.traffic_direction === 'INBOUND');
  t.same(JSON.stringify(other(policed)), JSON.stringify(other(plain)), 'srv/other: same inbound listeners');
  const self = (s: typeof plain): string => JSON.stringify(buildProxyConfig(s, workload(s, 'srv', 'srv-1')).listeners.filter((l) => l.traffic_direction === 'INBOUND'));
  t.not(self(policed), self(plain), 'srv/srv-1: its listeners changed');

  const custom = ap('srv', 'ext', { action: 'CUSTOM', selector: { app: 'srv' }, rules: '- to:\n  - operation:\n      paths: ["/x"]' }).replace('  action: CUSTOM', '  action: CUSTOM\n  provider:\n    name: opa');
  const snap = snapshotOf(docs(pa('srv', 'default', 'STRICT'), ...SERVICES, custom));
  const c = buildProxyConfig(snap, workload(snap, 'srv', 'srv-1'));
  const chain = c.listeners.find((l) => l.address?.socket_address?.port_value === 8080)!.filter_chains![0]!;
  t.equal(verdictOn(chain, { sourcePrincipal: SLEEP, http: { method: 'GET', path: '/x', host: 'web' } }, 8080), 'deny:DENY', 'CUSTOM without an authorizer: what it matches is denied (fail closed)');
  t.equal(verdictOn(chain, { sourcePrincipal: SLEEP, http: { method: 'GET', path: '/y', host: 'web' } }, 8080), 'allow', 'and nothing else');
});
