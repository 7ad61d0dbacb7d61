import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/common/logger.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import {
  MAX_LOGGED_CHARS, MAX_NACK_MESSAGE_CHARS, MAX_NODE_METADATA_BYTES, MAX_NODE_METADATA_DEPTH, MAX_NODE_METADATA_VALUES, MAX_NODE_STRING_BYTES,
} from '../../src/xds/core/limits.js';
import type { ConnectionStatus } from '../../src/xds/core/connection-status.js';
import { startTestMeshd, bearer } from './helpers/meshd.js';
import { waitFor } from '../xds/helpers/xds-server.js';

/**
 * What an authenticated client can make meshd write and keep: log lines stay few and short
 * whatever it sends, its text is cut in /debug, and a node over the bounds is refused before
 * the stream exists. meshd logs at its default level (info), as in production.
 */

let logBytes = 0;
const lines: string[] = [];
const logger = createLogger({
  level: 'info',
  destination: new Writable({
    write(chunk, _enc, cb) {
      logBytes += chunk.length;
      for (const line of String(chunk).split('\n')) if (line.trim()) lines.push(line);
      cb();
    },
  }),
});
const meshd = await startTestMeshd({ logger });
t.teardown(() => meshd.close());
const token = await meshd.token('payments', 'api');
const client = meshd.plaintextClient();

/** What is logged while `run` runs: bytes and lines. */
async function logged(run: () => Promise<void>): Promise<{ bytes: number; lines: string[] }> {
  const bytes = logBytes;
  const from = lines.length;
  await run();
  return { bytes: logBytes - bytes, lines: lines.slice(from) };
}

const unknownNames = (n: number, tag: string): string[] => Array.from({ length: n }, (_, i) => `unknown-${tag}-${String(i).padStart(5, '0')}`);
const debugConnections = async (): Promise<ConnectionStatus[]> => (await fetch(`http://127.0.0.1:${meshd.ports.monitoring}/debug/connections`)).json() as Promise<ConnectionStatus[]>;

t.test('thousands of unknown secret names with a long node id: one short warning per stream', async (t) => {
  const nodeId = `n${'x'.repeat(MAX_NODE_STRING_BYTES - 1)}`; // as long as meshd accepts
  const out = await logged(async () => {
    const s = client.sotw('sds', { node: { id: nodeId }, metadata: bearer(token) });
    s.subscribe(TypeUrl.Secret, ['ROOTCA', ...unknownNames(2000, 'a')]);
    const first = await s.next(10_000);
    t.same(first.resources.map((r) => r.name), ['ROOTCA'], 'the known name is served');
    s.ack(first);
    for (const tag of ['b', 'c', 'd', 'e']) {
      s.subscribe(TypeUrl.Secret, ['ROOTCA', ...unknownNames(2000, tag)]); // new names each time: each request is generated again
      await s.expectSilence(300); // nothing changed for ROOTCA: no response, but the names were looked at
    }
    s.cancel();
    await waitFor(() => meshd.core.connectedCount === 0, 'the stream to close');
  });
  const warnings = out.lines.filter((l) => l.includes('unknown secret names requested'));
  t.equal(warnings.length, 1, 'one warning for the stream');
  const warning = JSON.parse(warnings[0]!) as { count: number; examples: string[]; proxy: string };
  t.equal(warning.count, 2000);
  t.equal(warning.examples.length, 5);
  t.ok(warning.proxy.length < MAX_LOGGED_CHARS + 40, 'the node id is cut');
  t.ok(out.lines.length <= 4, `few lines in all (${out.lines.length})`);
  t.ok(out.bytes < 4000, `few bytes in all (${out.bytes})`);
});

t.test('a huge node id is refused with INVALID_ARGUMENT naming the limit, before anything is logged about it', async (t) => {
  const out = await logged(async () => {
    const s = client.sotw('sds', { node: { id: 'x'.repeat(64 * 1024) }, metadata: bearer(token) });
    s.subscribe(TypeUrl.Secret, ['ROOTCA', ...unknownNames(300, 'huge')]);
    const ended = await s.status;
    t.equal(ended.code, grpc.status.INVALID_ARGUMENT);
    t.equal(ended.details, `node.id is ${64 * 1024} bytes; meshd accepts at most ${MAX_NODE_STRING_BYTES}`);
  });
  t.ok(out.bytes < 1000, `the log stays small (${out.bytes} bytes)`);
  t.equal(meshd.core.connectedCount, 0, 'no stream kept');
});

t.test('a NACK with a 200 KB message is stored and logged cut', async (t) => {
  const message = `Failed to load certificate chain: ${'e'.repeat(200 * 1024)}`;
  const out = await logged(async () => {
    const s = client.sotw('sds', { node: { id: 'nack-proxy' }, metadata: bearer(token) });
    s.subscribe(TypeUrl.Secret, ['ROOTCA']);
    const r = await s.next(10_000);
    s.nack(r, message);
    await waitFor(() => lines.some((l) => l.includes('NACKed')), 'the NACK to be processed');
    const view = (await debugConnections()).find((c) => c.proxyId === 'nack-proxy')!;
    const nack = view.types.find((ty) => ty.type === 'sds')!.lastNack!;
    t.ok(nack.message.startsWith('Failed to load certificate chain: eee'), 'the start of the message is kept');
    t.ok(nack.message.length <= MAX_NACK_MESSAGE_CHARS + 40, `/debug/connections holds ${nack.message.length} characters`);
    t.match(nack.message, new RegExp(`… \\(${message.length} characters\\)$`), 'and says how long it was');
    s.cancel();
    await waitFor(() => meshd.core.connectedCount === 0, 'the stream to close');
  });
  const nackLine = out.lines.find((l) => l.includes('NACKed'))!;
  t.ok(nackLine.length < MAX_NACK_MESSAGE_CHARS + 1000, `the NACK's log line is ${nackLine.length} bytes`);
  t.ok(out.bytes < 4000, `the whole log is ${out.bytes} bytes`);
});

t.test('node metadata over the bounds: INVALID_ARGUMENT naming the limit; no stream, no SVID, nothing logged about it', async (t) => {
  const struct = (fields: Record<string, unknown>) => ({ fields });
  let deep: Record<string, unknown> = struct({ leaf: { stringValue: 'x' } });
  for (let level = MAX_NODE_METADATA_DEPTH; level >= 1; level--) deep = struct({ inner: { structValue: deep } });
  const many = struct(Object.fromEntries(Array.from({ length: MAX_NODE_METADATA_VALUES + 1 }, (_, i) => [`k${i}`, { boolValue: true }])));
  const big = struct({ BLOB: { stringValue: 'm'.repeat(3 * 1024 * 1024) } });
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['3 MB of metadata', big, new RegExp(`^node\\.metadata is \\d+ bytes or more; meshd accepts at most ${MAX_NODE_METADATA_BYTES}$`)],
    ['metadata nested too deep', deep, new RegExp(`^node\\.metadata nests deeper than ${MAX_NODE_METADATA_DEPTH} levels`)],
    ['too many metadata values', many, new RegExp(`^node\\.metadata has more than ${MAX_NODE_METADATA_VALUES} values`)],
  ];
  const issuedBefore = await issued();
  for (const [what, metadata, message] of cases) {
    const out = await logged(async () => {
      const sotw = client.sotw('ads', { metadata: bearer(token) });
      sotw.send({ type_url: TypeUrl.Secret, resource_names: ['default'], node: { id: `bounds-${what}`, metadata } });
      const s1 = await sotw.status;
      t.equal(s1.code, grpc.status.INVALID_ARGUMENT, `${what}: ADS`);
      t.match(s1.details, message);
      const delta = client.delta('sds', { metadata: bearer(token) });
      delta.send({ type_url: TypeUrl.Secret, resource_names_subscribe: ['default'], node: { id: `bounds-${what}`, metadata } });
      const s2 = await delta.status;
      t.equal(s2.code, grpc.status.INVALID_ARGUMENT, `${what}: delta SDS`);
      t.match(s2.details, message);
    });
    t.notOk(out.lines.some((l) => l.includes('xDS stream opened')), `${what}: no stream was opened`);
    t.ok(out.bytes < 2000, `${what}: ${out.bytes} bytes logged`);
  }
  t.equal(meshd.core.connectedCount, 0);
  t.same(await debugConnections(), [], '/debug/connections shows nothing of them');
  t.equal(await issued(), issuedBefore, 'no SVID was minted for them');
});

async function issued(): Promise<number> {
  const m = /^citadel_server_success_cert_issuance_count(?:\{[^}]*\})? (\d+)$/m.exec(await meshd.metricsText());
  return Number(m?.[1] ?? 0);
}
