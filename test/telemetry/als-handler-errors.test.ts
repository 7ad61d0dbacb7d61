import * as grpc from '@grpc/grpc-js';
import t from 'tap';
import { ACCESS_LOG_NAMES } from '../../src/telemetry/access-log-config.js';
import { MAX_NODE_METADATA_BYTES, MAX_NODE_STRING_BYTES } from '../../src/xds/core/limits.js';
import { startAlsFixture, type AlsFixture } from './helpers/als-fixture.js';
import { EnvoyAlsStream, httpEntry, identifier } from './helpers/envoy-als.js';
import { parseExposition, total } from './helpers/exposition.js';

/**
 * The access-log service under an unexpected error and an oversized node: the call ends with a
 * precise status, nothing is kept, and the server goes on.
 */

const reviews = { ns: 'default', sa: 'bookinfo-reviews', ip: '10.0.0.2', workload: 'reviews-v2', logName: ACCESS_LOG_NAMES.inbound };
const inbound = { downstreamRemote: '10.0.0.1:40000', upstreamCluster: 'inbound|9080||', responseCode: 200 };
const ALS = '/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs';

async function metric(fx: AlsFixture, name: string, match: Record<string, string> = {}): Promise<number> {
  return total(parseExposition(await fx.registry.metrics()), name, match);
}

/** An authenticated stream whose identifier has this node id and these string metadata values. */
async function authenticated(fx: AlsFixture, id: string, metadata: Record<string, string> = {}): Promise<EnvoyAlsStream> {
  const md = new grpc.Metadata();
  md.set('authorization', `Bearer ${await fx.token('default', 'bookinfo-reviews')}`);
  const ident = identifier({ id }, ACCESS_LOG_NAMES.inbound) as { node: Record<string, unknown> };
  // protobufjs's google.protobuf.Struct takes camelCase field names.
  ident.node.metadata = { fields: Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, { stringValue: v }])) };
  return new EnvoyAlsStream(fx.client, ident, md);
}

/** meshd answers an ALS call only to end it: a stream it accepted would never answer. */
function answered(stream: EnvoyAlsStream): Promise<{ code: grpc.status; details: string }> {
  return Promise.race([stream.done, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the stream was accepted: no answer within 10 s')), 10_000).unref())]);
}

t.test('a throw while a message is delivered ends that call with INTERNAL, counted; the next stream is served', async (t) => {
  const fx = await startAlsFixture();
  t.teardown(() => fx.close());
  const enqueue = fx.ingester.enqueue.bind(fx.ingester);
  let failures = 1;
  fx.ingester.enqueue = (...args) => {
    if (failures-- > 0) throw new RangeError('Invalid array length');
    return enqueue(...args);
  };
  const broken = await fx.stream(reviews);
  void broken.sendHttp([httpEntry(inbound)]);
  const r = await broken.done;
  t.equal(r.code, grpc.status.INTERNAL);
  t.equal(r.details, 'meshd internal error: Invalid array length');
  t.equal(await metric(fx, 'meshd_handler_errors_total', { server: 'grpc', handler: ALS }), 1);
  t.equal(fx.service.openStreams, 0, 'the failed stream is let go');

  const fine = await fx.stream(reviews);
  await fine.sendHttp([httpEntry(inbound)]);
  t.equal((await fine.end()).code, grpc.status.OK, 'the next stream is served');
});

t.test('a node id or metadata over the bounds: INVALID_ARGUMENT naming the limit, nothing kept', async (t) => {
  const fx = await startAlsFixture();
  t.teardown(() => fx.close());
  const longId = await authenticated(fx, `sidecar~10.0.0.2~${'r'.repeat(MAX_NODE_STRING_BYTES)}.default~default.svc.cluster.local`);
  void longId.sendHttp([httpEntry(inbound)]);
  const r1 = await answered(longId);
  t.equal(r1.code, grpc.status.INVALID_ARGUMENT);
  t.match(r1.details, new RegExp(`^node\\.id is \\d+ bytes; meshd accepts at most ${MAX_NODE_STRING_BYTES}$`));

  const bigMetadata = await authenticated(fx, 'sidecar~10.0.0.2~reviews-v2.default~default.svc.cluster.local', { NAMESPACE: 'default', BLOB: 'b'.repeat(MAX_NODE_METADATA_BYTES) });
  void bigMetadata.sendHttp([httpEntry(inbound)]);
  const r2 = await answered(bigMetadata);
  t.equal(r2.code, grpc.status.INVALID_ARGUMENT);
  t.match(r2.details, new RegExp(`node\\.metadata is \\d+ bytes or more; meshd accepts at most ${MAX_NODE_METADATA_BYTES}`));

  t.equal(await metric(fx, 'meshd_accesslog_streams_rejected_total', { reason: 'invalid_identifier' }), 2);
  t.equal(await metric(fx, 'meshd_accesslog_entries_total'), 0, 'no entry ingested');
  t.equal(fx.service.openStreams, 0, 'no stream kept');
  t.ok(fx.logs().length < 8_000, `the log stays small (${fx.logs().length} bytes)`);
});
