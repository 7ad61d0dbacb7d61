import t from 'tap';
import { lookupType, encodeAny, decodeMessage } from '../../../src/xds/protos.js';
import { encodeDeltaResponse, encodeSotwResponse } from '../../../src/xds/core/wire.js';
import { createResource, ResourceInterner, viewVersion, contentVersion } from '../../../src/xds/core/resource.js';
import { NonceIssuer } from '../../../src/xds/core/nonce.js';
import { TypeUrl } from '../../../src/xds/type-urls.js';

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
