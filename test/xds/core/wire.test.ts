import t from 'tap';
import { lookupType, encodeAny, decodeMessage } from '../../../src/envoy/protos.js';
import { decodeDeltaRequest, decodeSotwRequest, DiscoveryWireError, encodeDeltaResponse, encodeSotwResponse } from '../../../src/xds/core/wire.js';
import { createResource, ResourceInterner, viewVersion, contentVersion } from '../../../src/xds/core/resource.js';
import { NonceIssuer } from '../../../src/xds/core/nonce.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';

const secret = (name: string) => createResource(TypeUrl.Secret, name, { name, validation_context: { trusted_ca: { inline_string: `ca-of-${name}` } } });

t.test('DiscoveryResponse written by hand decodes with Envoy\'s own DiscoveryResponse type', async (t) => {
  const resources = [secret('default'), secret('ROOTCA')];
  const bytes = encodeSotwResponse({ versionInfo: 'v1', typeUrl: TypeUrl.Secret, nonce: 'n1', resources, controlPlane: 'meshd-test' });
  const T = lookupType('envoy.service.discovery.v3.DiscoveryResponse');
  const msg = T.toObject(T.decode(bytes), { bytes: Buffer }) as Record<string, any>;
  t.equal(msg.version_info, 'v1');
  t.equal(msg.type_url, TypeUrl.Secret);
  t.equal(msg.nonce, 'n1');
  t.equal(msg.control_plane.identifier, 'meshd-test');
  t.same(msg.resources.map((a: any) => decodeMessage(TypeUrl.Secret, a.value).name), ['default', 'ROOTCA']);
  t.ok(Buffer.from(bytes).includes(Buffer.from(resources[0].body)), 'the resource bytes are embedded as they are');
});

t.test('DeltaDiscoveryResponse written by hand decodes with Envoy\'s own type', async (t) => {
  const r = secret('default');
  const bytes = encodeDeltaResponse({ systemVersionInfo: 'sv', typeUrl: TypeUrl.Secret, nonce: 'n2', resources: [r], removed: ['gone', 'ghost'] });
  const T = lookupType('envoy.service.discovery.v3.DeltaDiscoveryResponse');
  const msg = T.toObject(T.decode(bytes), { bytes: Buffer }) as Record<string, any>;
  t.equal(msg.system_version_info, 'sv');
  t.equal(msg.nonce, 'n2');
  t.same(msg.removed_resources, ['gone', 'ghost']);
  t.equal(msg.resources[0].name, 'default');
  t.equal(msg.resources[0].version, r.version);
  t.equal(msg.resources[0].resource.type_url, TypeUrl.Secret);
});

t.test('resources are versioned by content and interned', async (t) => {
  const a = secret('default');
  const b = secret('default');
  t.equal(a.version, b.version, 'equal content, equal version');
  t.not(a.version, secret('other').version);
  t.equal(a.version, contentVersion(encodeAny(TypeUrl.Secret, { name: 'default', validation_context: { trusted_ca: { inline_string: 'ca-of-default' } } })));
  const interner = new ResourceInterner();
  t.equal(interner.intern(a), a);
  t.equal(interner.intern(b), a, 'the second copy resolves to the first object');
  t.equal(viewVersion(new Map([['x', a], ['y', b]])), viewVersion(new Map([['y', b], ['x', a]])), 'set version ignores order');
  t.equal(viewVersion(new Map()), 'empty');
});

t.test('nonces: fresh per response, recognised only on the stream that issued them', async (t) => {
  const a = new NonceIssuer('s1');
  const b = new NonceIssuer('s12');
  const n1 = a.next(); const n2 = a.next();
  t.not(n1, n2);
  t.ok(a.issued(n1) && a.issued(n2));
  t.notOk(a.issued(b.next()), 'another stream\'s nonce (even with a prefix-sharing tag)');
  t.notOk(a.issued('s1-zz'), 'not yet issued');
  t.notOk(a.issued(''), 'empty');
  t.notOk(a.issued('garbage'));
});

/** A request as Envoy's own message type encodes it. */
function envoyEncoded(typeName: string, value: Record<string, unknown>): Buffer {
  const type = lookupType(typeName);
  const err = type.verify(value);
  if (err) throw new Error(err);
  return Buffer.from(type.encode(type.fromObject(value)).finish());
}

const NODE = {
  id: 'sidecar~10.0.0.7~cart-1.shop~shop.svc.cluster.local', cluster: 'cart.shop', user_agent_name: 'envoy',
  user_agent_build_version: { version: { major_number: 1, minor_number: 39, patch: 1 } },
  // google.protobuf.Struct is protobufjs's own copy, with camelCase field names.
  metadata: { fields: { NAMESPACE: { stringValue: 'shop' }, LABELS: { structValue: { fields: { app: { stringValue: 'cart' } } } }, WEIGHT: { numberValue: 3 } } },
};

t.test('DiscoveryRequest: every field read as Envoy\'s own type writes it', async (t) => {
  const first = decodeSotwRequest(envoyEncoded('envoy.service.discovery.v3.DiscoveryRequest', {
    type_url: TypeUrl.Secret, resource_names: ['default', 'ROOTCA'], node: NODE,
  }));
  t.same(first, {
    kind: 'sotw', typeUrl: TypeUrl.Secret, versionInfo: '', resourceNames: ['default', 'ROOTCA'], responseNonce: '', errorDetail: undefined,
    node: { id: NODE.id, cluster: 'cart.shop', userAgent: 'envoy/1.39.1', metadata: { NAMESPACE: 'shop', LABELS: { app: 'cart' }, WEIGHT: 3 } },
  });
  const nack = decodeSotwRequest(envoyEncoded('envoy.service.discovery.v3.DiscoveryRequest', {
    version_info: 'abc', type_url: TypeUrl.Secret, resource_names: ['default'], response_nonce: 'n-7', error_detail: { code: 3, message: 'bad secret' },
  }));
  t.same(nack, { kind: 'sotw', typeUrl: TypeUrl.Secret, versionInfo: 'abc', resourceNames: ['default'], responseNonce: 'n-7', errorDetail: { code: 3, message: 'bad secret' }, node: undefined });
  t.same(decodeSotwRequest(Buffer.alloc(0)), { kind: 'sotw', typeUrl: '', versionInfo: '', resourceNames: [], responseNonce: '', errorDetail: undefined, node: undefined },
    'an empty message is every field at its default');
});

t.test('DeltaDiscoveryRequest: every field read as Envoy\'s own type writes it', async (t) => {
  const got = decodeDeltaRequest(envoyEncoded('envoy.service.discovery.v3.DeltaDiscoveryRequest', {
    node: NODE, type_url: TypeUrl.Cluster, resource_names_subscribe: ['a', '*'], resource_names_unsubscribe: ['b'],
    initial_resource_versions: { a: 'v1', c: 'v2' }, response_nonce: 'n-1', error_detail: { code: 13, message: 'no' },
  }));
  t.same(got, {
    kind: 'delta', typeUrl: TypeUrl.Cluster, subscribe: ['a', '*'], unsubscribe: ['b'], initialResourceVersions: { a: 'v1', c: 'v2' },
    responseNonce: 'n-1', errorDetail: { code: 13, message: 'no' },
    node: { id: NODE.id, cluster: 'cart.shop', userAgent: 'envoy/1.39.1', metadata: { NAMESPACE: 'shop', LABELS: { app: 'cart' }, WEIGHT: 3 } },
  });
});

t.test('request decoding follows proto3: unknown fields and unexpected wire types are skipped, the last value wins', async (t) => {
  const base = envoyEncoded('envoy.service.discovery.v3.DiscoveryRequest', { type_url: TypeUrl.Secret, resource_names: ['default'] });
  const extra = Buffer.concat([
    base,
    Buffer.from([0xf8, 0x06, 0x2a]), // field 111, varint 42: unknown
    Buffer.from([0x08, 0x05]), // field 1 (version_info) as a varint: not a string, skipped
    Buffer.from([0x3a, 0x02, 0x0a, 0x00]), // field 7 (resource_locators): read by nobody here
    Buffer.from([0x22, 0x03, ...Buffer.from('xyz')]), // type_url again: the last one wins
  ]);
  t.same(decodeSotwRequest(extra), { kind: 'sotw', typeUrl: 'xyz', versionInfo: '', resourceNames: ['default'], responseNonce: '', errorDetail: undefined, node: undefined });
});

t.test('malformed requests throw instead of decoding to something', async (t) => {
  const base = envoyEncoded('envoy.service.discovery.v3.DiscoveryRequest', { type_url: TypeUrl.Secret, resource_names: ['default', 'ROOTCA'] });
  t.throws(() => decodeSotwRequest(base.subarray(0, base.length - 3)), 'a string cut short');
  t.throws(() => decodeSotwRequest(Buffer.from([0x1a, 0x80])), 'a length varint cut short');
  t.throws(() => decodeSotwRequest(Buffer.from([0x00, 0x01])), 'field number 0');
  t.throws(() => decodeSotwRequest(Buffer.from([0x0f])), 'wire type 7');
  t.throws(() => decodeSotwRequest(Buffer.from([0x12, 0x05, 0x0a, 0x01])), 'a node that overruns the message');
  t.throws(() => decodeDeltaRequest(Buffer.from([0x2a, 0x04, 0x0a, 0x05, 0x61, 0x62])), 'a map entry whose key overruns it');
});

t.test('every malformed request throws DiscoveryWireError (or RequestLimitError past a node bound), never the text of a TypeError', async (t) => {
  const base = envoyEncoded('envoy.service.discovery.v3.DiscoveryRequest', { type_url: TypeUrl.Secret, resource_names: ['default', 'ROOTCA'] });
  for (const [bytes, what] of [
    [base.subarray(0, base.length - 3), 'a string cut short'],
    [Buffer.from([0x1a, 0x80]), 'a length varint cut short'],
    [Buffer.from([0x00, 0x01]), 'field number 0'],
    [Buffer.from([0x0f]), 'wire type 7'],
    [Buffer.from([0x12, 0x05, 0x0a, 0x01]), 'a node that overruns the message'],
  ] as const) t.throws(() => decodeSotwRequest(bytes), DiscoveryWireError, what);
  t.throws(() => decodeDeltaRequest(Buffer.from([0x2a, 0x04, 0x0a, 0x05, 0x61, 0x62])), DiscoveryWireError, 'a map entry whose key overruns it');
  // Node metadata nested past protobufjs's depth limit (Struct in Value in Struct…): the node bounds refuse it first, on its bytes.
  const ld = (tag: number, body: Buffer): Buffer => Buffer.concat([Buffer.from([tag]), Buffer.from(varint(body.length)), body]);
  let value = ld(0x1a, Buffer.from('x'));
  for (let i = 0; i < 200; i++) value = ld(0x2a, ld(0x0a, Buffer.concat([ld(0x0a, Buffer.from('a')), ld(0x12, value)])));
  const deep = ld(0x12, ld(0x1a, ld(0x0a, Buffer.concat([ld(0x0a, Buffer.from('d')), ld(0x12, value)]))));
  t.throws(() => decodeSotwRequest(deep), { name: 'RequestLimitError', message: 'node.metadata nests deeper than 16 levels; meshd accepts at most 16' });
});

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 127) { out.push((n & 127) | 128); n >>>= 7; }
  out.push(n);
  return out;
}

t.test('a map entry without its value reads as the default message (fuzz finding: it ended the call with a TypeError)', async (t) => {
  // Node { id: "n", metadata: Struct { fields: { NAMESPACE: <entry with a key and no value> } } }
  const entry = Buffer.concat([Buffer.from([0x0a, 0x09]), Buffer.from('NAMESPACE')]);
  const metadata = Buffer.concat([Buffer.from([0x0a, entry.length]), entry]);
  const node = Buffer.concat([Buffer.from([0x0a, 0x01]), Buffer.from('n'), Buffer.from([0x1a, metadata.length]), metadata]);
  const sotw = decodeSotwRequest(Buffer.concat([Buffer.from([0x12, node.length]), node]));
  t.same(sotw.node?.metadata, { NAMESPACE: null }, 'an empty google.protobuf.Value is JSON null');
  // Node.dynamic_parameters (map<string, xds.core.v3.ContextParams>, field 12) with a valueless entry.
  const params = Buffer.concat([Buffer.from([0x62, 0x03, 0x0a, 0x01]), Buffer.from('k')]);
  const node2 = Buffer.concat([Buffer.from([0x0a, 0x01]), Buffer.from('n'), params]);
  const delta = decodeDeltaRequest(Buffer.concat([Buffer.from([0x0a, node2.length]), node2]));
  t.equal(delta.node?.id, 'n');
});

t.test('initial_resource_versions keeps names a plain object would not (fuzz finding: "__proto__" was dropped)', async (t) => {
  // Written by hand: protobufjs's own encoder drops a "__proto__" key the same way.
  const entry = (key: string, value: string): Buffer => {
    const body = Buffer.concat([Buffer.from([0x0a, key.length]), Buffer.from(key), Buffer.from([0x12, value.length]), Buffer.from(value)]);
    return Buffer.concat([Buffer.from([0x2a, body.length]), body]);
  };
  const d = decodeDeltaRequest(Buffer.concat([entry('__proto__', '1'), entry('toString', '2')]));
  t.same(Object.entries(d.initialResourceVersions), [['__proto__', '1'], ['toString', '2']]);
  t.notOk('constructor' in d.initialResourceVersions, 'a name never sent is not found');
});
