import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { ACCESS_LOG_NAMES } from '../../src/telemetry/access-log-config.js';
import { startAlsFixture, type AlsFixture } from './helpers/als-fixture.js';
import { lookupType } from '../../src/envoy/protos.js';
import { EnvoyAlsStream, httpEntry, identifier } from './helpers/envoy-als.js';
import { parseExposition, total } from './helpers/exposition.js';
import { waitUntil } from './helpers/scenario.js';

/**
 * Malformed and hostile access-log streams: each is refused or counted precisely and
 * nothing else is lost; the same gRPC server keeps answering other calls meanwhile.
 */

const reviews = { ns: 'default', sa: 'bookinfo-reviews', ip: '10.0.0.2', workload: 'reviews-v2', logName: ACCESS_LOG_NAMES.inbound };
const inbound = { downstreamRemote: '10.0.0.1:40000', upstreamCluster: 'inbound|9080||', responseCode: 200 };

async function metric(fx: AlsFixture, name: string, match: Record<string, string> = {}): Promise<number> {
  return total(parseExposition(await fx.registry.metrics()), name, match);
}

/** A unary echo on the same server: "the server keeps serving" is checked by calling it. */
const PING_PATH = '/meshd.test.Ping/Ping';
function addPing(server: grpc.Server): void {
  const echo: grpc.handleUnaryCall<Buffer, Buffer> = (call, cb) => cb(null, call.request);
  server.register<Buffer, Buffer>(PING_PATH, echo, (b: Buffer) => b, (b: Buffer) => b, 'unary');
}
function ping(client: grpc.Client): Promise<string> {
  return new Promise((resolve, reject) =>
    client.makeUnaryRequest<Buffer, Buffer>(PING_PATH, (b) => b, (b) => b, Buffer.from('ping'), (err, res) => (err ? reject(err) : resolve(res!.toString()))));
}

t.test('no credential, a forged token: UNAUTHENTICATED, and the token never reaches the log', async (t) => {
  const fx = await startAlsFixture();
  t.teardown(() => fx.close());
  const ident = identifier({ id: 'sidecar~10.0.0.2~reviews-v2.default~default.svc.cluster.local' }, ACCESS_LOG_NAMES.inbound);

  const anonymous = new EnvoyAlsStream(fx.client, ident);
  void anonymous.sendHttp([httpEntry(inbound)]);
  const r1 = await anonymous.done;
  t.equal(r1.code, grpc.status.UNAUTHENTICATED);
  t.match(r1.details, /no credential/);

  const real = await fx.token('default', 'bookinfo-reviews');
  const forged = real.slice(0, -6) + 'AAAAAA';
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${forged}`);
  const forger = new EnvoyAlsStream(fx.client, ident, md);
  void forger.sendHttp([httpEntry(inbound)]);
  t.equal((await forger.done).code, grpc.status.UNAUTHENTICATED);

  t.equal(await metric(fx, 'meshd_accesslog_streams_rejected_total', { reason: 'unauthenticated' }), 2);
  t.equal(await metric(fx, 'meshd_accesslog_entries_total'), 0, 'nothing read from unauthenticated streams');
  t.notOk(fx.logs().includes(forged.split('.')[2]!), 'signature of the forged token not logged');
  t.notOk(fx.logs().includes(real.split('.')[1]!), 'token payload not logged');
});

t.test('a first message without identifier: INVALID_ARGUMENT, stream and entries counted', async (t) => {
  const fx = await startAlsFixture();
  t.teardown(() => fx.close());
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${await fx.token('default', 'bookinfo-reviews')}`);
  const s = new EnvoyAlsStream(fx.client, undefined, md);
  void s.sendHttp([httpEntry(inbound), httpEntry(inbound), httpEntry(inbound)]);
  const r = await s.done;
  t.equal(r.code, grpc.status.INVALID_ARGUMENT);
  t.match(r.details, /identifier/);
  t.equal(await metric(fx, 'meshd_accesslog_streams_rejected_total', { reason: 'no_identifier' }), 1);
  t.equal(await metric(fx, 'meshd_accesslog_entries_dropped_total', { reason: 'no_identifier' }), 3);
  t.equal(await metric(fx, 'istio_requests_total'), 0);
});

t.test('a node claiming another namespace than its identity: PERMISSION_DENIED', async (t) => {
  const fx = await startAlsFixture();
  t.teardown(() => fx.close());
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${await fx.token('legacy', 'client')}`);
  const s = new EnvoyAlsStream(fx.client, identifier({ id: 'sidecar~10.0.0.2~reviews-v2.default~default.svc.cluster.local' }, ACCESS_LOG_NAMES.inbound), md);
  void s.sendHttp([httpEntry(inbound)]);
  const r = await s.done;
  t.equal(r.code, grpc.status.PERMISSION_DENIED);
  t.match(r.details, /claims namespace default but authenticated as spiffe:\/\/cluster.local\/ns\/legacy\/sa\/client/);
  t.equal(await metric(fx, 'meshd_accesslog_streams_rejected_total', { reason: 'permission_denied' }), 1);
});

t.test('garbage entries and garbage messages are counted and skipped; the stream goes on', async (t) => {
  const fx = await startAlsFixture();
  t.teardown(() => fx.close());
  const s = await fx.stream(reviews);
  await s.sendHttp([httpEntry(inbound)]);
  // A batch whose second and third entries are not HTTPAccessLogEntry bytes.
  const HTTP = lookupType('envoy.data.accesslog.v3.HTTPAccessLogEntry');
  const good = Buffer.from(HTTP.encode(HTTP.fromObject(httpEntry(inbound))).finish());
  const entry = (b: Buffer) => Buffer.concat([Buffer.from([0x0a, ...varint(b.length)]), b]);
  const batch = Buffer.concat([
    entry(good),
    entry(Buffer.from([0x0a, 0x05, 0x01])), // common_properties claims 5 bytes, has 1
    entry(Buffer.from([0x0f])), // wire type 7
  ]);
  await s.raw(Buffer.concat([Buffer.from([0x12, ...varint(batch.length)]), batch]));
  // A message that is not protobuf at all.
  await s.raw(Buffer.from('\xff\xff\xff garbage', 'latin1'));
  await s.sendHttp([httpEntry(inbound), httpEntry(inbound)]);
  await waitUntil(async () => (await metric(fx, 'istio_requests_total')) === 4 && (await metric(fx, 'meshd_accesslog_entries_dropped_total', { reason: 'malformed' })) === 2);
  t.equal(await metric(fx, 'meshd_accesslog_entries_dropped_total', { reason: 'malformed' }), 2);
  t.equal(await metric(fx, 'meshd_accesslog_messages_dropped_total', { reason: 'malformed' }), 1);
  t.equal(fx.service.openStreams, 1, 'the stream is still open');
  s.cancel();
});

t.test('a failure inside meshd (a throwing resolver) costs that entry only', async (t) => {
  const fx = await startAlsFixture({
    resolver: {
      byAddress: (ip) => {
        if (ip === '10.6.6.6') throw new Error('registry exploded');
        return undefined;
      },
    },
  });
  t.teardown(() => fx.close());
  const s = await fx.stream(reviews);
  await s.sendHttp([httpEntry(inbound), httpEntry({ ...inbound, downstreamRemote: '10.6.6.6:1000' }), httpEntry(inbound)]);
  await waitUntil(async () => (await metric(fx, 'meshd_accesslog_entries_dropped_total', { reason: 'error' })) === 1);
  t.equal(await metric(fx, 'istio_requests_total'), 2);
  t.match(fx.logs(), /registry exploded/);
  s.cancel();
});

t.test('a flood is shed and counted exactly while the server keeps answering', async (t) => {
  // An 8 KiB queue: a 50-entry batch (~13 KB) never fits and is always shed, 10-entry
  // batches fit when the worker keeps up. Every entry is either recorded or counted.
  const fx = await startAlsFixture({ maxQueueBytes: 8 * 1024, tickBudgetMs: 5 }, addPing);
  t.teardown(() => fx.close());
  const small = Array.from({ length: 10 }, () => httpEntry(inbound));
  const big = Array.from({ length: 50 }, () => httpEntry(inbound));
  const streams = await Promise.all([1, 2, 3, 4].map(() => fx.stream(reviews)));
  const rounds = 150;
  let pings = 0;
  let flooding = true;
  const pinger = (async () => {
    while (flooding) {
      t.equal(await ping(fx.client), 'ping');
      pings++;
    }
  })();
  await Promise.all(streams.map(async (s) => {
    for (let i = 0; i < rounds; i++) {
      await s.sendHttp(small);
      await s.sendHttp(big);
    }
  }));
  const sent = streams.length * rounds * (small.length + big.length);
  await waitUntil(async () => {
    await fx.ingester.idle();
    return (await metric(fx, 'meshd_accesslog_entries_total')) + (await metric(fx, 'meshd_accesslog_entries_dropped_total', { reason: 'overload' })) === sent;
  }, 30_000);
  flooding = false;
  await pinger;
  const recorded = await metric(fx, 'istio_requests_total');
  const shed = await metric(fx, 'meshd_accesslog_entries_dropped_total', { reason: 'overload' });
  t.ok(shed >= streams.length * rounds * big.length, `every oversized batch shed (${shed} of ${sent} entries)`);
  t.ok(recorded >= small.length, `small batches recorded (${recorded})`);
  t.equal(recorded + shed, sent, 'every entry recorded or counted as shed');
  t.ok(pings > 0, `the server answered ${pings} pings during the flood`);
  for (const s of streams) s.cancel();
});

t.test('the series bound: new label combinations beyond it are counted, not recorded', async (t) => {
  const fx = await startAlsFixture({ maxSeriesPerMetric: 5 });
  t.teardown(() => fx.close());
  const s = await fx.stream(reviews);
  // 20 distinct destination services (a client spraying Host headers).
  await s.sendHttp(Array.from({ length: 20 }, (_, i) => httpEntry({ ...inbound, upstreamCluster: '', authority: `svc-${i}.default.svc.cluster.local` })));
  await s.sendHttp([httpEntry({ ...inbound, upstreamCluster: '', authority: 'svc-0.default.svc.cluster.local' })]);
  await waitUntil(async () => (await metric(fx, 'meshd_accesslog_entries_total')) === 21);
  const samples = parseExposition(await fx.registry.metrics());
  t.equal(samples.filter((x) => x.name === 'istio_requests_total').length, 5);
  t.equal(total(samples, 'istio_requests_total'), 6, 'an existing series still counts');
  t.equal(total(samples, 'meshd_telemetry_series_dropped_total', { metric: 'istio_requests_total' }), 15);
  t.equal(total(samples, 'meshd_telemetry_series_dropped_total', { metric: 'istio_request_duration_milliseconds' }), 15);
  t.equal(total(samples, 'meshd_telemetry_series', { metric: 'istio_requests_total' }), 5);
  s.cancel();
});

t.test('a label value cannot be made huge: principals and hosts are capped', async (t) => {
  const fx = await startAlsFixture();
  t.teardown(() => fx.close());
  const s = await fx.stream(reviews);
  await s.sendHttp([httpEntry({ ...inbound, upstreamCluster: '', authority: `${'a'.repeat(5000)}.default.svc.cluster.local`, tls: { peerSan: `spiffe://cluster.local/ns/x/sa/${'b'.repeat(5000)}`, localSan: 'spiffe://cluster.local/ns/default/sa/bookinfo-reviews' } })]);
  await waitUntil(async () => (await metric(fx, 'istio_requests_total')) === 1);
  const [sample] = parseExposition(await fx.registry.metrics()).filter((x) => x.name === 'istio_requests_total');
  t.equal(sample!.labels.source_principal!.length, 256);
  t.equal(sample!.labels.destination_service!.length, 256);
  s.cancel();
});

t.test('shutdown ends open streams with UNAVAILABLE and refuses new ones', async (t) => {
  const fx = await startAlsFixture();
  t.teardown(() => fx.close());
  const s = await fx.stream(reviews);
  await s.sendHttp([httpEntry(inbound)]);
  await waitUntil(() => fx.service.openStreams === 1);
  fx.service.close();
  const r = await s.done;
  t.equal(r.code, grpc.status.UNAVAILABLE);
  t.match(r.details, /shutting down/);
  t.equal(fx.service.openStreams, 0);
  const late = await fx.stream(reviews);
  void late.sendHttp([httpEntry(inbound)]);
  t.equal((await late.done).code, grpc.status.UNAVAILABLE);
});

t.test('a client that half-closes gets the empty response (OK)', async (t) => {
  const fx = await startAlsFixture();
  t.teardown(() => fx.close());
  const s = await fx.stream(reviews);
  await s.sendHttp([httpEntry(inbound)]);
  t.equal((await s.end()).code, grpc.status.OK);
  await waitUntil(async () => (await metric(fx, 'istio_requests_total')) === 1);
  t.equal(fx.service.openStreams, 0);
});

function varint(n: number): number[] {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return out;
}
