import t from 'tap';
import { status } from '@grpc/grpc-js';
import { startXdsServer } from '../helpers/xds-server.js';
import { TestGenerator, contentOf } from '../helpers/test-generator.js';
import { identityHeader } from '../helpers/test-authenticator.js';
import type { ServiceName } from '../helpers/xds-client.js';
import { GeneratorError } from '../../../src/xds/core/types.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';

/** Every gRPC service is a thin adapter over the one core: SDS, ADS and per-type LDS/CDS/RDS/EDS. */
const generators = {
  sds: new TestGenerator(TypeUrl.Secret),
  lds: new TestGenerator(TypeUrl.Listener),
  cds: new TestGenerator(TypeUrl.Cluster),
  rds: new TestGenerator(TypeUrl.Route),
  eds: new TestGenerator(TypeUrl.Endpoint),
};
generators.sds.set('default', 'svid');
generators.sds.set('ROOTCA', 'bundle');
generators.lds.set('inbound|8080', 'l');
generators.cds.set('outbound|80||api.apps.svc', 'c');
generators.rds.set('80', 'r');
generators.eds.set('outbound|80||api.apps.svc', 'e');
const sample: Record<Exclude<ServiceName, 'ads'>, string> = {
  sds: 'default', lds: 'inbound|8080', cds: 'outbound|80||api.apps.svc', rds: '80', eds: 'outbound|80||api.apps.svc',
};
const typeOf: Record<Exclude<ServiceName, 'ads'>, string> = {
  sds: TypeUrl.Secret, lds: TypeUrl.Listener, cds: TypeUrl.Cluster, rds: TypeUrl.Route, eds: TypeUrl.Endpoint,
};

const refused = new Set<string>();
const server = await startXdsServer({
  generators: Object.values(generators),
  admit: (proxy) => {
    if (refused.has(proxy.id)) throw new GeneratorError(status.PERMISSION_DENIED, `node ${proxy.id} is not a workload of ${proxy.identity.spiffeId}`);
  },
});
t.teardown(() => server.close());
const client = server.client();
const md = identityHeader('apps', 'api');

t.test('SDS service and Secret on ADS go through the same path', async (t) => {
  const viaSds = client.sotw('sds', { node: { id: 'same-path-1' }, metadata: md });
  viaSds.send({ resource_names: ['default'] }); // type_url empty: a per-type stream defaults it
  const a = await viaSds.next();
  const viaAds = client.sotw('ads', { node: { id: 'same-path-2' }, metadata: md });
  viaAds.subscribe(TypeUrl.Secret, ['default']);
  const b = await viaAds.next();
  t.equal(a.type_url, TypeUrl.Secret);
  t.ok(a.resources[0].value.equals(b.resources[0].value), 'identical resource bytes');
  t.equal(a.version_info, b.version_info, 'identical version');
  const services = server.core.connections().filter((c) => c.proxyId.startsWith('same-path')).map((c) => `${c.service}:${c.types[0].type}`).sort();
  t.same(services, ['ads:sds', 'sds:sds']);
  viaSds.cancel(); viaAds.cancel();
});

t.test('FetchSecrets answers with the current resources, no nonce', async (t) => {
  const r = await client.fetch('sds', { node: { id: 'fetcher' }, resource_names: ['default', 'ROOTCA', 'missing'] }, md);
  t.same(r.resources.map((x) => x.name).sort(), ['ROOTCA', 'default']);
  t.equal(r.nonce, '');
  t.ok(r.version_info);
  const again = await client.fetch('sds', { node: { id: 'fetcher' }, resource_names: ['default', 'ROOTCA'] }, md);
  t.equal(again.version_info, r.version_info, 'same content, same version');
  await t.rejects(client.fetch('sds', { node: { id: 'fetcher' }, resource_names: ['default'] }), { code: status.UNAUTHENTICATED }, 'Fetch authenticates too');
  await t.rejects(client.fetch('sds', { node: { id: 'fetcher' }, type_url: TypeUrl.Cluster }, md), { code: status.INVALID_ARGUMENT });
});

for (const service of ['lds', 'cds', 'rds', 'eds'] as const) {
  t.test(`per-type ${service.toUpperCase()} service: Stream, Delta and Fetch`, async (t) => {
    const typeUrl = typeOf[service];
    const name = sample[service];
    const sotw = client.sotw(service, { node: { id: `${service}-sotw` }, metadata: md });
    sotw.subscribe(typeUrl, [name]);
    const r = await sotw.next();
    t.same(r.resources.map((x) => x.name), [name], 'SotW');
    t.equal(r.type_url, typeUrl);
    sotw.ack(r);
    const delta = client.delta(service, { node: { id: `${service}-delta` }, metadata: md });
    delta.send({ resource_names_subscribe: [name] }); // empty type_url defaults to the stream's type
    const d = await delta.next();
    t.same(d.resources.map((x) => `${x.name}=${contentOf(typeUrl, x.resource.decoded)}`), [`${name}=${service[0]}`], 'delta');
    t.ok(d.resources[0].version, 'with a per-resource version');
    const f = await client.fetch(service, { node: { id: `${service}-fetch` }, resource_names: [name] }, md);
    t.ok(f.resources[0].value.equals(r.resources[0].value), 'Fetch returns the same bytes');
    sotw.send({ type_url: TypeUrl.Secret, resource_names: ['default'] });
    const s = await sotw.status;
    t.equal(s.code, status.INVALID_ARGUMENT, 'another type on a per-type stream');
    t.match(s.details, new RegExp(`serves ${typeUrl.replace(/\./g, '\\.')} only`));
    delta.cancel();
  });
}

t.test('admission refusal ends the stream with its status, before any resource', async (t) => {
  refused.add('impostor');
  const s = client.sotw('ads', { node: { id: 'impostor' }, metadata: md });
  s.subscribe(TypeUrl.Secret, ['default']);
  const st = await s.status;
  t.equal(st.code, status.PERMISSION_DENIED);
  t.match(st.details, /not a workload of spiffe:\/\/cluster\.local\/ns\/apps\/sa\/api/);
  t.equal(generators.sds.calls.filter((c) => c.proxy === 'impostor').length, 0, 'nothing generated');
});

t.test('UNAUTHENTICATED without a credential, with a message and no stream state', async (t) => {
  const s = client.delta('sds', { node: { id: 'anonymous' } });
  s.subscribe(TypeUrl.Secret, ['default']);
  const st = await s.status;
  t.equal(st.code, status.UNAUTHENTICATED);
  t.match(st.details, /authentication failed: no credential/);
  t.ok(server.logs.some((l) => l.msg === 'xDS stream refused: authentication failed' && l.reason === 'missing'));
});
