import t, { type Test } from 'tap';
import { createGrpcGenerators } from '../../src/xds/generators/grpc/index.js';
import { parseInboundListenerName, parseTargetName } from '../../src/xds/generators/grpc/names.js';
import { configPushRequest } from '../../src/xds/push-plan/affected-proxies.js';
import { dispatchByProxyKind } from '../../src/xds/generators/generator-dispatch.js';
import { createSidecarGenerators, FINGERPRINT_TYPES } from '../../src/xds/generators/sidecar-generators.js';
import { decodeMessage, encodeAny, lookupType } from '../../src/envoy/protos.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import type { MeshSnapshot } from '../../src/config/model.js';
import type { ProxyInfo, Resource } from '../../src/xds/core/types.js';
import { docs, identity, pa, proxyFor, se, snapshotOf, we } from '../xds/generators/fixtures.js';
import { envoyRejects } from '../xds/generators/envoy-accepts.js';
import { grpcRejects } from './helpers/grpc-judge.js';

/**
 * The proxyless gRPC generator family, resource by resource, judged by grpc-js-xds's own
 * validators and by Envoy's protos, and pinned against the grpc-js-xds 1.14.1 traps
 * (reference §4, §6).
 */
const HOST = 'greeter.srv.svc.cluster.local';
const SERVER_LISTENER = 'xds.istio.io/grpc/lds/inbound/10.0.0.5:50051';

function mesh(policy = '', serverLabels: Record<string, string> = {}, extra: string[] = [], exportTo?: string[]): MeshSnapshot {
  return snapshotOf(docs(
    se('srv', 'greeter', { hosts: [HOST], ports: [{ number: 7070, name: 'grpc', protocol: 'GRPC' }], selector: { app: 'greeter' }, ...(exportTo ? { exportTo } : {}) }),
    we('srv', 'greeter-1', { address: '10.0.0.5', serviceAccount: 'greeter', labels: { app: 'greeter', ...serverLabels }, ports: { grpc: 50051 }, locality: 'eu/zone-a' }),
    we('cli', 'caller', { address: '10.0.0.9', serviceAccount: 'caller', labels: { app: 'caller' } }),
    ...(policy === '' ? [] : [policy]),
    ...extra,
  ));
}

const grpcProxy = (ns: string, name: string, sa: string): ProxyInfo => proxyFor(ns, name, identity(ns, sa), '10.0.0.1', { GENERATOR: 'grpc' });
const SERVER = grpcProxy('srv', 'greeter-1', 'greeter');
const CLIENT = grpcProxy('cli', 'caller', 'caller');

function generate(snapshot: MeshSnapshot, proxy: ProxyInfo, typeUrl: string, names?: string[]): Resource[] {
  const g = createGrpcGenerators(() => snapshot).find((x) => x.typeUrl === typeUrl)!;
  return g.generate(proxy, { names: names === undefined ? undefined : new Set(names) }) as Resource[];
}

/** The resource's message as plain JSON (Any bodies expanded). */
function unpack(r: Resource): Record<string, any> {
  const Any = lookupType('google.protobuf.Any');
  const any = Any.decode(r.body) as unknown as { type_url: string; value: Uint8Array };
  return decodeMessage(any.type_url, any.value) as Record<string, any>;
}

function one(snapshot: MeshSnapshot, proxy: ProxyInfo, typeUrl: string, name: string): { resource: Resource; value: Record<string, any> } {
  const [resource, ...rest] = generate(snapshot, proxy, typeUrl, [name]);
  if (resource === undefined || rest.length > 0) throw new Error(`expected exactly ${name}`);
  return { resource, value: unpack(resource) };
}

function accepted(t: Test, resources: Resource[], typeUrl: string): void {
  for (const r of resources) {
    t.equal(grpcRejects(r), undefined, `grpc-js-xds accepts ${r.name}`);
    t.same(envoyRejects(typeUrl, unpack(r)), [], `${r.name} decodes strictly against Envoy's protos`);
  }
}

const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';

t.test('server listener per mode, as Istio maps it and grpc-js-xds accepts it', async (t) => {
  const cases: Array<{ name: string; snapshot: MeshSnapshot; mtls: boolean }> = [
    { name: 'no policy (PERMISSIVE) → plaintext', snapshot: mesh(), mtls: false },
    { name: 'STRICT → mTLS', snapshot: mesh(pa('srv', 'default', 'STRICT')), mtls: true },
    { name: 'PERMISSIVE → plaintext', snapshot: mesh(pa('srv', 'default', 'PERMISSIVE')), mtls: false },
    { name: 'PERMISSIVE + security.istio.io/tlsMode=istio → mTLS', snapshot: mesh(pa('srv', 'default', 'PERMISSIVE'), { 'security.istio.io/tlsMode': 'istio' }), mtls: true },
    { name: 'DISABLE → plaintext', snapshot: mesh(pa('srv', 'default', 'DISABLE')), mtls: false },
    { name: 'mesh-wide STRICT → mTLS', snapshot: mesh(pa('istio-system', 'default', 'STRICT')), mtls: true },
    { name: 'port-level DISABLE under STRICT → plaintext', snapshot: mesh(pa('srv', 'wl', 'STRICT', { selector: { app: 'greeter' }, ports: { 50051: 'DISABLE' } })), mtls: false },
  ];
  for (const c of cases) {
    const { resource, value } = one(c.snapshot, SERVER, TypeUrl.Listener, SERVER_LISTENER);
    accepted(t, [resource], TypeUrl.Listener);
    t.equal(value.name, SERVER_LISTENER, `${c.name}: named as asked`);
    t.same(value.address, { socket_address: { address: '10.0.0.5', port_value: 50051 } }, `${c.name}: address = the bound ip:port`);
    t.equal(value.filter_chains.length, 1, `${c.name}: exactly one chain`);
    t.notOk('default_filter_chain' in value, `${c.name}: never default_filter_chain`);
    t.notOk('listener_filters' in value, `${c.name}: no listener_filters`);
    const chain = value.filter_chains[0];
    t.notOk('filter_chain_match' in chain, `${c.name}: no filter_chain_match`);
    t.equal(chain.name, c.mtls ? 'inbound-mtls' : 'inbound-plaintext', `${c.name}: chain name`);
    const hcm = chain.filters[0].typed_config;
    t.equal(hcm.stat_prefix, `inbound|50051|${c.mtls ? 'mtls' : 'plaintext'}`, `${c.name}: the mode is in stat_prefix`);
    t.equal(hcm.route_config.name, hcm.stat_prefix, `${c.name}: and in the route config name`);
    t.same(hcm.route_config.virtual_hosts[0].routes, [{ match: { prefix: '/' }, non_forwarding_action: {} }], `${c.name}: non_forwarding_action`);
    t.same(hcm.http_filters.map((f: { name: string }) => f.name), ['envoy.filters.http.router'], `${c.name}: router last (and only)`);
    if (c.mtls) {
      const ts = chain.transport_socket;
      t.equal(ts.name, 'envoy.transport_sockets.tls', `${c.name}: transport socket named exactly envoy.transport_sockets.tls`);
      t.same(ts.typed_config.require_client_certificate, { value: true });
      t.same(ts.typed_config.common_tls_context.tls_certificate_provider_instance, { instance_name: 'default', certificate_name: 'default' });
      t.same(ts.typed_config.common_tls_context.validation_context.ca_certificate_provider_instance,
        { instance_name: 'default', certificate_name: 'ROOTCA' });
    } else {
      t.notOk('transport_socket' in chain, `${c.name}: plaintext has no transport socket`);
    }
  }
});

t.test('regression: a mode change never changes only the transport socket (grpc-js-xds 1.14.1 filterChainsEquivalent bug)', async (t) => {
  const strict = one(mesh(pa('srv', 'default', 'STRICT')), SERVER, TypeUrl.Listener, SERVER_LISTENER).value;
  const disable = one(mesh(pa('srv', 'default', 'DISABLE')), SERVER, TypeUrl.Listener, SERVER_LISTENER).value;
  const hcmBytes = (l: Record<string, any>): string => Buffer.from(encodeAny(HCM_TYPE, l.filter_chains[0].filters[0].typed_config)).toString('hex');
  t.not('transport_socket' in strict.filter_chains[0], 'transport_socket' in disable.filter_chains[0], 'the transport socket differs');
  t.not(hcmBytes(strict), hcmBytes(disable), 'and so do the HCM bytes, so gRPC rebuilds the chain');
});

t.test('server listener names: only this workload\'s address (or an unspecified one) and its ports', async (t) => {
  const s = mesh(pa('srv', 'default', 'STRICT'));
  const names = [
    SERVER_LISTENER,
    'xds.istio.io/grpc/lds/inbound/0.0.0.0:50051',
    'xds.istio.io/grpc/lds/inbound/10.0.0.5:50052', // not a port of the workload
    'xds.istio.io/grpc/lds/inbound/10.0.0.6:50051', // another address
    'xds.istio.io/grpc/lds/inbound/[::]:50051',
    'xds.istio.io/grpc/lds/inbound/garbage',
  ];
  const got = generate(s, SERVER, TypeUrl.Listener, names);
  t.same(got.map((r) => r.name).sort(), [SERVER_LISTENER, 'xds.istio.io/grpc/lds/inbound/0.0.0.0:50051', 'xds.istio.io/grpc/lds/inbound/[::]:50051'].sort());
  const unspecified = one(s, SERVER, TypeUrl.Listener, 'xds.istio.io/grpc/lds/inbound/[::]:50051').value;
  t.same(unspecified.address, { socket_address: { address: '::', port_value: 50051 } }, 'the listener carries the address the server bound');
  accepted(t, got, TypeUrl.Listener);
  t.same(generate(s, grpcProxy('srv', 'nobody', 'greeter'), TypeUrl.Listener, [SERVER_LISTENER]), [], 'a node naming no WorkloadEntry gets nothing');

  t.same(parseInboundListenerName('xds.istio.io/grpc/lds/inbound/[fe80::1]:443'), { ip: 'fe80::1', port: 443 });
  t.equal(parseInboundListenerName('xds.istio.io/grpc/lds/inbound/fe80::1:443'), undefined, 'IPv6 must be bracketed');
  t.equal(parseInboundListenerName('xds.istio.io/grpc/lds/inbound/10.0.0.1:0'), undefined);
  t.same(parseTargetName('svc.ns:7070'), { host: 'svc.ns', port: 7070 });
  t.same(parseTargetName('svc.ns'), { host: 'svc.ns' });
  t.equal(parseTargetName('svc.ns:http'), undefined);
});

t.test('client side: API listener, route, cluster and endpoints for xds:///host[:port]', async (t) => {
  const s = mesh(pa('srv', 'default', 'STRICT'));
  for (const name of [`${HOST}:7070`, HOST]) {
    const { resource, value } = one(s, CLIENT, TypeUrl.Listener, name);
    accepted(t, [resource], TypeUrl.Listener);
    t.same(value.api_listener.api_listener.rds, { config_source: { ads: {}, resource_api_version: 'V3' }, route_config_name: `${HOST}:7070` }, `${name}: RDS over ADS`);
  }
  t.same(generate(s, CLIENT, TypeUrl.Listener, [`${HOST}:7071`, 'other.svc:7070']), [], 'unknown targets are absent');

  const route = one(s, CLIENT, TypeUrl.Route, `${HOST}:7070`);
  accepted(t, [route.resource], TypeUrl.Route);
  t.same(route.value.virtual_hosts[0].domains, [HOST, `${HOST}:7070`], 'domains cover both authorities');
  t.same(route.value.virtual_hosts[0].routes[0].route, { cluster: `outbound|7070||${HOST}` });

  const cluster = one(s, CLIENT, TypeUrl.Cluster, `outbound|7070||${HOST}`);
  accepted(t, [cluster.resource], TypeUrl.Cluster);
  t.equal(cluster.value.type, 'EDS');
  t.equal(cluster.value.eds_cluster_config.service_name, `outbound|7070||${HOST}`);
  const ctx = cluster.value.transport_socket.typed_config.common_tls_context;
  t.same(ctx.validation_context.match_subject_alt_names, [{ exact: 'spiffe://cluster.local/ns/srv/sa/greeter' }],
    'the server\'s SPIFFE ID, exactly');
  t.notOk('tls_params' in ctx, 'no tls_params (grpc-js-xds NACKs them on clusters)');

  const eds = one(s, CLIENT, TypeUrl.Endpoint, `outbound|7070||${HOST}`);
  accepted(t, [eds.resource], TypeUrl.Endpoint);
  t.same(eds.value.endpoints, [{
    locality: { region: 'eu', zone: 'zone-a' },
    load_balancing_weight: { value: 1 },
    lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.5', port_value: 50051 } } }, load_balancing_weight: { value: 1 } }],
  }], 'locality and weights always set, the workload port as the endpoint port');

  const plain = mesh(pa('srv', 'default', 'DISABLE'));
  t.notOk('transport_socket' in one(plain, CLIENT, TypeUrl.Cluster, `outbound|7070||${HOST}`).value, 'no TLS when the server\'s inbound is plaintext');
  const noLocality = snapshotOf(docs(
    se('srv', 'greeter', { hosts: [HOST], ports: [{ number: 7070, name: 'grpc', protocol: 'GRPC' }], selector: { app: 'greeter' } }),
    we('srv', 'greeter-1', { address: '10.0.0.5', serviceAccount: 'greeter', labels: { app: 'greeter' } }),
    we('cli', 'caller', { address: '10.0.0.9', serviceAccount: 'caller', labels: { app: 'caller' } }),
  ));
  const edsNoLocality = generate(noLocality, CLIENT, TypeUrl.Endpoint, [`outbound|7070||${HOST}`]);
  accepted(t, edsNoLocality, TypeUrl.Endpoint);
  t.equal(grpcRejects(edsNoLocality[0]!), undefined, 'an empty locality is still a locality for grpc-js-xds');
});

t.test('endpoints that disagree: the cluster keeps mTLS and leaves out the plaintext endpoints', async (t) => {
  const s = mesh(pa('srv', 'one', 'STRICT', { selector: { app: 'greeter', v: 'strict' } }), { v: 'strict' }, [
    we('srv', 'greeter-2', { address: '10.0.0.6', serviceAccount: 'greeter', labels: { app: 'greeter', v: 'plain' }, ports: { grpc: 50051 } }),
  ]);
  const cluster = one(s, CLIENT, TypeUrl.Cluster, `outbound|7070||${HOST}`).value;
  t.ok(cluster.transport_socket, 'mTLS');
  const eds = one(s, CLIENT, TypeUrl.Endpoint, `outbound|7070||${HOST}`).value;
  const addresses = eds.endpoints.flatMap((g: any) => g.lb_endpoints.map((e: any) => e.endpoint.address.socket_address.address));
  t.same(addresses, ['10.0.0.5'], 'the plaintext endpoint would refuse mTLS and is left out');
});

t.test('unchanged resources keep identical bytes; a policy change alters the server listener and the client cluster', async (t) => {
  const a = mesh(pa('srv', 'default', 'STRICT'));
  const b = mesh(pa('srv', 'default', 'STRICT'), {}, [we('other', 'x', { address: '10.0.1.1', serviceAccount: 'x', labels: { app: 'x' } })]);
  const c = mesh(pa('srv', 'default', 'DISABLE'));
  const bytes = (s: MeshSnapshot, p: ProxyInfo, ty: string, n: string): string => Buffer.from(one(s, p, ty, n).resource.body).toString('hex');
  for (const [p, ty, n] of [[SERVER, TypeUrl.Listener, SERVER_LISTENER], [CLIENT, TypeUrl.Cluster, `outbound|7070||${HOST}`], [CLIENT, TypeUrl.Listener, HOST], [CLIENT, TypeUrl.Route, `${HOST}:7070`], [CLIENT, TypeUrl.Endpoint, `outbound|7070||${HOST}`]] as const) {
    t.equal(bytes(b, p, ty, n), bytes(a, p, ty, n), `${n}: same bytes after an unrelated change`);
  }
  t.not(bytes(c, SERVER, TypeUrl.Listener, SERVER_LISTENER), bytes(a, SERVER, TypeUrl.Listener, SERVER_LISTENER), 'server listener follows the policy');
  t.not(bytes(c, CLIENT, TypeUrl.Cluster, `outbound|7070||${HOST}`), bytes(a, CLIENT, TypeUrl.Cluster, `outbound|7070||${HOST}`), 'client cluster follows it in the same snapshot');
  t.equal(bytes(c, CLIENT, TypeUrl.Listener, HOST), bytes(a, CLIENT, TypeUrl.Listener, HOST), 'the client\'s listener is untouched by a policy change');
});

t.test('one config push reaches the server (LDS) and its clients (CDS) together', async (t) => {
  // greeter is exported to its own namespace and cli only: "lonely" cannot call it.
  const exportTo = ['.', 'cli'];
  const bystander = [we('lonely', 'l', { address: '10.0.2.1', serviceAccount: 'l', labels: { app: 'lonely' } })];
  const base = mesh('', {}, bystander, exportTo);
  const proxies = [SERVER, CLIENT, grpcProxy('lonely', 'l', 'l')];
  const cases = [
    { name: 'namespace-wide STRICT', next: mesh(pa('srv', 'default', 'STRICT'), {}, bystander, exportTo) },
    { name: 'workload-selector STRICT', next: mesh(pa('srv', 'wl', 'STRICT', { selector: { app: 'greeter' } }), {}, bystander, exportTo) },
    { name: 'tlsMode label on the server', next: mesh('', { 'security.istio.io/tlsMode': 'istio' }, bystander, exportTo) },
  ];
  for (const c of cases) {
    const push = configPushRequest(base, c.next);
    t.ok(push, `${c.name}: a push`);
    const pick = push!.proxies as (p: ProxyInfo) => boolean;
    t.same(proxies.map((p) => pick(p)), [true, true, false], `${c.name}: server and client in the same push; an unrelated namespace not`);
    const typesFor = push!.typeUrls as (p: ProxyInfo) => readonly string[];
    for (const p of [SERVER, CLIENT]) t.same(typesFor(p), FINGERPRINT_TYPES, `${c.name}: ${p.id} gets every type, so LDS and CDS go out together`);
  }
});

t.test('dispatch: GENERATOR=grpc gets the gRPC family, a sidecar does not', async (t) => {
  const s = mesh(pa('srv', 'default', 'STRICT'));
  const lds = dispatchByProxyKind({ sidecar: createSidecarGenerators(() => s), grpc: createGrpcGenerators(() => s) }).find((g) => g.typeUrl === TypeUrl.Listener)!;
  const grpcNames = (lds.generate(SERVER, { names: undefined }) as Resource[]).map((r) => r.name);
  t.ok(grpcNames.includes(SERVER_LISTENER), `wildcard for a gRPC proxy lists its server listener (${grpcNames.join(', ')})`);
  const sidecar = proxyFor('srv', 'greeter-1', identity('srv', 'greeter'), '10.0.0.5');
  const sidecarNames = (lds.generate(sidecar, { names: undefined }) as Resource[]).map((r) => r.name);
  t.notOk(sidecarNames.some((n) => n.startsWith('xds.istio.io/grpc/')), 'a sidecar gets sidecar listeners');
});

t.test('server listener with AuthorizationPolicies: one DENY filter, then ALLOW, router last; AUDIT and dry run left out', async (t) => {
  const apYaml = (name: string, action: string, rules: string, annotations = ''): string => `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: ${name}
  namespace: srv
${annotations}spec:
  action: ${action}
  rules:
${rules}`;
  const deny = apYaml('deny', 'DENY', '  - from:\n    - source:\n        namespaces: ["evil"]\n');
  const allow = apYaml('allow', 'ALLOW', '  - from:\n    - source:\n        principals: ["cluster.local/ns/cli/sa/caller"]\n');
  const audit = apYaml('audit', 'AUDIT', '  - to:\n    - operation:\n        methods: ["POST"]\n');
  const dryDeny = apYaml('dry', 'DENY', '  - {}\n', '  annotations:\n    istio.io/dry-run: "true"\n');
  const custom = apYaml('ext', 'CUSTOM', '  - to:\n    - operation:\n        paths: ["/x"]\n').replace('  action: CUSTOM', '  action: CUSTOM\n  provider:\n    name: opa');
  const filtersOf = (s: MeshSnapshot): Array<{ name: string; typed_config: { rules?: { action?: string; policies?: Record<string, unknown> } } }> => {
    const { resource, value } = one(s, SERVER, TypeUrl.Listener, SERVER_LISTENER);
    accepted(t, [resource], TypeUrl.Listener);
    return value.filter_chains[0].filters[0].typed_config.http_filters;
  };
  const names = (s: MeshSnapshot): string[] => filtersOf(s).map((f) => f.name);

  const none = one(mesh(pa('srv', 'default', 'STRICT')), SERVER, TypeUrl.Listener, SERVER_LISTENER).resource;
  const elsewhere = one(mesh(pa('srv', 'default', 'STRICT'), {}, [deny.replace('namespace: srv', 'namespace: cli')]), SERVER, TypeUrl.Listener, SERVER_LISTENER).resource;
  t.same(Buffer.from(elsewhere.body), Buffer.from(none.body), 'a policy of another namespace leaves the listener byte-identical');

  t.same(names(mesh(pa('srv', 'default', 'STRICT'), {}, [allow, deny])), ['envoy.filters.http.rbac.DENY', 'envoy.filters.http.rbac', 'envoy.filters.http.router'], 'DENY, then ALLOW, then the router');
  t.same(names(mesh(pa('srv', 'default', 'STRICT'), {}, [allow, audit])), ['envoy.filters.http.rbac', 'envoy.filters.http.router'], 'AUDIT left out (A41 has no LOG action)');
  t.same(names(mesh(pa('srv', 'default', 'STRICT'), {}, [dryDeny])), ['envoy.filters.http.router'], 'a dry-run-only policy adds no filter');
  const merged = filtersOf(mesh(pa('srv', 'default', 'STRICT'), {}, [custom, deny]));
  t.same(merged.map((f) => f.name), ['envoy.filters.http.rbac.DENY', 'envoy.filters.http.router'], 'CUSTOM (no authorizer, denies what it matches) and DENY share one DENY filter');
  t.same(Object.keys(merged[0]!.typed_config.rules!.policies!).sort(), ['istio-ext-authz-opa-ns[srv]-policy[ext]-rule[0]-deny-due-to-bad-CUSTOM-action', 'ns[srv]-policy[deny]-rule[0]'], 'with both policies');
});
