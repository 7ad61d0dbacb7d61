import t, { type Test as Tap } from 'tap';
import { lookupType } from '../../../src/envoy/protos.js';
import { checkNodeLimits, RequestLimitError } from '../../../src/xds/core/node-limits.js';
import { decodeDeltaRequest, decodeSotwRequest } from '../../../src/xds/core/wire.js';
import { MAX_NODE_METADATA_BYTES, MAX_NODE_METADATA_DEPTH, MAX_NODE_METADATA_VALUES, MAX_NODE_STRING_BYTES } from '../../../src/xds/core/limits.js';

/** The bounds on a node, checked on its bytes: exactly at a limit passes, one over is refused naming it. */

type Plain = Record<string, unknown>;
const Node = () => lookupType('envoy.config.core.v3.Node');
const encodeNode = (node: Plain): Uint8Array => Node().encode(Node().fromObject(node)).finish();

/** A Struct (protobufjs's camelCase names) nested `depth` levels: the metadata itself is level 1. */
function nested(depth: number): Plain {
  let struct: Plain = { fields: { leaf: { stringValue: 'x' } } };
  for (let level = depth; level > 1; level--) struct = { fields: { inner: { structValue: struct } } };
  return struct;
}

/** Lists nest too: the metadata, then `depth - 1` lists. */
function nestedLists(depth: number): Plain {
  let value: Plain = { stringValue: 'x' };
  for (let level = depth; level > 1; level--) value = { listValue: { values: [value] } };
  return { fields: { list: value } };
}

/** `count` values in all: one list of count - 1 strings. */
function values(count: number): Plain {
  return { fields: { list: { listValue: { values: Array.from({ length: count - 1 }, (_, i) => ({ stringValue: String(i) })) } } } };
}

function refused(t: Tap, node: Plain, message: RegExp): void {
  const bytes = encodeNode(node);
  try {
    checkNodeLimits(bytes);
    t.fail(`expected a refusal matching ${message.source}`);
  } catch (err) {
    t.type(err, RequestLimitError);
    t.match((err as Error).message, message);
  }
}

t.test('node strings: id, cluster and user agent up to the limit', async (t) => {
  const atLimit = 'n'.repeat(MAX_NODE_STRING_BYTES);
  t.doesNotThrow(() => checkNodeLimits(encodeNode({ id: atLimit, cluster: atLimit, user_agent_name: atLimit, user_agent_version: atLimit })));
  for (const field of ['id', 'cluster', 'user_agent_name', 'user_agent_version']) {
    refused(t, { [field]: `${atLimit}n` }, new RegExp(`^node\\.${field} is ${MAX_NODE_STRING_BYTES + 1} bytes; meshd accepts at most ${MAX_NODE_STRING_BYTES}$`));
  }
  refused(t, { id: 'é'.repeat(MAX_NODE_STRING_BYTES / 2 + 1) }, /^node\.id is \d+ bytes/);
});

t.test('node.metadata: encoded size, nesting and number of values', async (t) => {
  t.doesNotThrow(() => checkNodeLimits(encodeNode({ id: 'a', metadata: nested(MAX_NODE_METADATA_DEPTH) })), 'struct depth at the limit');
  refused(t, { id: 'a', metadata: nested(MAX_NODE_METADATA_DEPTH + 1) }, new RegExp(`^node\\.metadata nests deeper than ${MAX_NODE_METADATA_DEPTH} levels`));
  t.doesNotThrow(() => checkNodeLimits(encodeNode({ id: 'a', metadata: nestedLists(MAX_NODE_METADATA_DEPTH) })), 'list depth at the limit');
  refused(t, { id: 'a', metadata: nestedLists(MAX_NODE_METADATA_DEPTH + 1) }, /nests deeper than/);
  t.doesNotThrow(() => checkNodeLimits(encodeNode({ id: 'a', metadata: values(MAX_NODE_METADATA_VALUES) })), 'values at the limit');
  refused(t, { id: 'a', metadata: values(MAX_NODE_METADATA_VALUES + 1) }, new RegExp(`^node\\.metadata has more than ${MAX_NODE_METADATA_VALUES} values`));
  const blob = (n: number): Plain => ({ fields: { BLOB: { stringValue: 'b'.repeat(n) } } });
  refused(t, { id: 'a', metadata: blob(MAX_NODE_METADATA_BYTES) }, new RegExp(`^node\\.metadata is \\d+ bytes or more; meshd accepts at most ${MAX_NODE_METADATA_BYTES}$`));
  t.doesNotThrow(() => checkNodeLimits(encodeNode({ id: 'a', metadata: blob(MAX_NODE_METADATA_BYTES - 64) })), 'just under the byte limit');
  // A message field sent twice is merged by a protobuf parser: the two halves count together.
  const half = encodeNode({ metadata: blob(MAX_NODE_METADATA_BYTES / 2 + 16) });
  t.throws(() => checkNodeLimits(Buffer.concat([half, half])), /node\.metadata is \d+ bytes or more/);
});

t.test('bytes that do not parse are left to the decoder: no throw, no hang', async (t) => {
  for (const bytes of [Buffer.from([0x1a, 0xff, 0xff, 0xff, 0xff, 0x0f]), Buffer.from([0x1a, 0x05, 0x0a]), Buffer.from([0xff]), Buffer.from([0x0b, 0x0c]), Buffer.alloc(0)]) {
    t.doesNotThrow(() => checkNodeLimits(bytes), bytes.toString('hex'));
  }
});

t.test('both request decoders refuse an oversized node before decoding it', async (t) => {
  const Sotw = lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  const Delta = lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest');
  const node = { id: 'x'.repeat(100_000) };
  const sotw = Sotw.encode(Sotw.fromObject({ node, type_url: 't' })).finish();
  const delta = Delta.encode(Delta.fromObject({ node, type_url: 't' })).finish();
  t.throws(() => decodeSotwRequest(sotw), RequestLimitError);
  t.throws(() => decodeDeltaRequest(delta), RequestLimitError);
  const fine = Sotw.encode(Sotw.fromObject({ node: { id: 'sidecar~10.0.0.1~a.b~b.svc.cluster.local', metadata: nested(4) }, type_url: 't' })).finish();
  t.equal(decodeSotwRequest(fine).node?.id, 'sidecar~10.0.0.1~a.b~b.svc.cluster.local');
});
