import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/common/clock.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { startTestMeshd, bearer, type TestMeshd } from './helpers/meshd.js';
import type { SotwResponse, SotwStream } from '../xds/helpers/xds-client.js';

/**
 * What a proxy gets follows from the identity it proved and the workload it names, and one
 * identity cannot touch what another holds: real meshd, real TLS streams, tokens of two
 * service accounts.
 */
const SECRET = TypeUrl.Secret;
const VICTIM = 'spiffe://cluster.local/ns/payments/sa/payments-api';
const ATTACKER = 'spiffe://cluster.local/ns/shop/sa/shop-web';
const API_1_NODE = 'sidecar~127.0.0.11~api-1.payments~payments.svc.cluster.local';

interface Held { serial: string; uri: string; notBefore: number; notAfter: number }

function held(r: SotwResponse): Held {
  const def = r.resources.find((x) => x.name === 'default');
  if (!def) throw new Error(`no default secret in ${r.resources.map((x) => x.name).join(', ')}`);
  const pem = Buffer.from((def.decoded as any).tls_certificate.certificate_chain.inline_bytes as Buffer).toString();
  const cert = new X509Certificate(pem);
  const uri = (cert.subjectAltName ?? '').split(', ').find((s) => s.startsWith('URI:'))!.slice(4);
  return { serial: cert.serialNumber, uri, notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
}

async function sds(meshd: TestMeshd, nodeId: string, ns: string, sa: string, metadata?: Record<string, string>): Promise<{ stream: SotwStream; first: Held }> {
  const stream = meshd.tlsClient().sotw('sds', { node: { id: nodeId, ...(metadata ? { metadata } : {}) }, metadata: bearer(await meshd.token(ns, sa)) });
  stream.subscribe(SECRET, ['default']);
  const r = await stream.next(10_000);
  stream.ack(r);
  return { stream, first: held(r) };
}

/**
 * Proves a stream was sent nothing since its last response, without waiting out a timer: a
 * subscription to one more name is answered on the same stream after anything queued before
 * it, so the next response must be that answer alone (SDS sends only what is new).
 */
async function nothingPushedSince(t: Test, stream: SotwStream, subscribed: string[], extra: string, what: string): Promise<void> {
  stream.subscribe(SECRET, [...subscribed, extra]);
  const r = await stream.next(10_000);
  t.same(r.resources.map((x) => x.name), [extra], `${what}: the next response answers the new subscription; no push came first`);
  stream.ack(r);
}

/** How a stream that must be refused ended; a response instead fails at once rather than hanging on the status. */
async function refusal(stream: SotwStream): Promise<grpc.StatusObject> {
  const served = stream.next(10_000).then(
    (r) => { throw new Error(`served instead of refused: ${r.resources.map((x) => x.name).join(', ') || r.type_url}`); },
    () => new Promise<never>(() => undefined), // the stream ended: the status says how
  );
  return Promise.race([stream.status, served]);
}

/** Rotation happens at 80% ± 2% of the lifetime (svid-rotation.ts): the window a due time falls in. */
const dueWindow = (h: Held): { earliest: number; latest: number } => {
  const life = h.notAfter - h.notBefore;
  return { earliest: h.notBefore + Math.floor(life * 0.78), latest: h.notBefore + Math.ceil(life * 0.82) };
};

t.test('another identity reusing a proxy\'s node id changes neither the SVID that proxy holds nor when it rotates', async (t) => {
  // meshd runs on a clock the test moves: its once-a-second sweep finds due SVIDs as the clock passes them.
  const clock = new ManualClock(Date.now());
  const meshd = await startTestMeshd({ clock, workloadCertTtlMs: 90_000, rotationFraction: 0.8 });
  t.teardown(() => meshd.close());
  const node = 'shared-node';
  const victim = await sds(meshd, node, 'payments', 'payments-api');
  t.equal(victim.first.uri, VICTIM);

  clock.advance(20_000);
  const attacker = await sds(meshd, node, 'shop', 'shop-web');
  t.equal(attacker.first.uri, ATTACKER, 'the attacker gets an SVID of its own identity only');
  t.not(attacker.first.serial, victim.first.serial);
  t.equal(meshd.svids.peek(node, VICTIM)?.serialHex.toUpperCase().replace(/^0+/, ''), victim.first.serial.replace(/^0+/, ''), 'the victim\'s SVID state is untouched');
  t.equal(meshd.svids.size, 2, 'one SVID state per (identity, node id)');

  const victimDue = dueWindow(victim.first);
  const attackerDue = dueWindow(attacker.first);
  t.ok(victimDue.latest < attackerDue.earliest, 'the victim is due strictly before the attacker');

  clock.set(victimDue.latest + 1000);
  t.ok(clock.now() < attackerDue.earliest, 'the clock is past the victim\'s rotation point, not the attacker\'s');
  const push = await victim.stream.next(10_000);
  victim.stream.ack(push);
  const rotated = held(push);
  t.equal(rotated.uri, VICTIM, 'the victim rotated to a fresh SVID of its own identity');
  t.not(rotated.serial, victim.first.serial);
  t.ok(clock.now() < victim.first.notAfter, 'on time: before its previous SVID expired');
  t.ok(dueWindow(rotated).earliest > attackerDue.latest + 1000, 'the victim\'s new SVID is not due when the attacker\'s is');
  await meshd.core.idle();
  await nothingPushedSince(t, attacker.stream, ['default'], 'ROOTCA', 'the attacker, whose SVID is not due');

  clock.set(attackerDue.latest + 1000);
  const attackerPush = await attacker.stream.next(10_000);
  attacker.stream.ack(attackerPush);
  const attackerRotated = held(attackerPush);
  t.equal(attackerRotated.uri, ATTACKER);
  t.not(attackerRotated.serial, attacker.first.serial, 'the attacker rotates on its own schedule');
  await meshd.core.idle();
  await nothingPushedSince(t, victim.stream, ['default'], 'ROOTCA', 'the victim, when the attacker rotates');
});

async function configured(t: { teardown(fn: () => unknown): void }): Promise<TestMeshd> {
  const configDir = await mkdtemp(join(tmpdir(), 'meshd-config-'));
  await cp('examples/config', configDir, { recursive: true });
  const meshd = await startTestMeshd({ configDir });
  t.teardown(async () => { await meshd.close(); await rm(configDir, { recursive: true, force: true }); });
  return meshd;
}

t.test('a node id naming another identity\'s WorkloadEntry is refused with PERMISSION_DENIED naming both, whatever the metadata says', async (t) => {
  const meshd = await configured(t);
  const expected = new RegExp(`^proxy "${API_1_NODE.replace(/\./g, '\\.')}" proved ${ATTACKER} \\(namespace shop, service account shop-web\\), but its node id names WorkloadEntry payments/api-1, which runs as ${VICTIM}$`);
  for (const service of ['sds', 'ads'] as const) {
    // The metadata names the attacker's own WorkloadEntry (shop/web-1), which it may run.
    const s = meshd.tlsClient().sotw(service, { node: { id: API_1_NODE, metadata: { NAMESPACE: 'shop', WORKLOAD_NAME: 'web-1' } }, metadata: bearer(await meshd.token('shop', 'shop-web')) });
    s.subscribe(SECRET, ['default']);
    const st = await refusal(s);
    t.equal(st.code, grpc.status.PERMISSION_DENIED, `${service}: PERMISSION_DENIED`);
    t.match(st.details, expected, `${service}: ${st.details}`);
  }
  const own = await sds(meshd, API_1_NODE, 'payments', 'payments-api', { NAMESPACE: 'payments', WORKLOAD_NAME: 'api-1' });
  t.equal(own.first.uri, VICTIM, 'the workload\'s own identity is admitted with that node id');
});

t.test('a proxy naming a WorkloadEntry that does not exist is refused; one naming none gets its identity\'s secrets and no mesh config', async (t) => {
  const meshd = await configured(t);
  const ghost = meshd.tlsClient().sotw('ads', { node: { id: 'sidecar~127.0.0.99~ghost-1.payments~payments.svc.cluster.local' }, metadata: bearer(await meshd.token('payments', 'payments-api')) });
  ghost.subscribe(TypeUrl.Cluster, []);
  const st = await refusal(ghost);
  t.equal(st.code, grpc.status.PERMISSION_DENIED);
  t.equal(st.details, 'proxy "sidecar~127.0.0.99~ghost-1.payments~payments.svc.cluster.local" names WorkloadEntry payments/ghost-1 (by node id), which does not exist in the mesh config');

  const half = meshd.tlsClient().sotw('ads', { node: { id: 'envoy-7', metadata: { WORKLOAD_NAME: 'api-1' } }, metadata: bearer(await meshd.token('payments', 'payments-api')) });
  half.subscribe(TypeUrl.Cluster, []);
  const halfStatus = await refusal(half);
  t.equal(halfStatus.code, grpc.status.PERMISSION_DENIED);
  t.match(halfStatus.details, /^proxy "envoy-7" names workload "api-1" in node metadata WORKLOAD_NAME but no namespace/);

  // An SDS-only / SPIRE-style Envoy: a node id of its own choosing, no workload metadata.
  const ads = meshd.tlsClient().sotw('ads', { node: { id: 'spire-style-envoy' }, metadata: bearer(await meshd.token('payments', 'payments-api')) });
  for (const type of [TypeUrl.Cluster, TypeUrl.Listener]) {
    ads.subscribe(type, []);
    const r = await ads.next(10_000);
    t.equal(r.type_url, type);
    t.same(r.resources, [], `${type.split('.').pop()}: nothing (wildcard answered empty)`);
    ads.ack(r);
  }
  ads.subscribe(SECRET, ['default', 'ROOTCA', VICTIM, 'spiffe://cluster.local']);
  const secrets = await ads.next(10_000);
  t.same(secrets.resources.map((x) => x.name).sort(), ['ROOTCA', VICTIM, 'default', 'spiffe://cluster.local'].sort(), 'every secret of its own identity');
  t.equal(held(secrets).uri, VICTIM, 'the SVID of the identity its token proved');
  ads.ack(secrets);

  const other = meshd.tlsClient().sotw('sds', { node: { id: 'spire-style-envoy' }, metadata: bearer(await meshd.token('payments', 'payments-api')) });
  other.subscribe(SECRET, [ATTACKER]);
  const denied = await refusal(other);
  t.equal(denied.code, grpc.status.PERMISSION_DENIED, 'and never another identity\'s');
  t.match(denied.details, ATTACKER);
});
