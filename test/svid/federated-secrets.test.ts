/**
 * SDS with federated trust domains: ALL holds one SPIFFE-validator entry per trust domain,
 * `spiffe://<foreign td>` resolves to that domain's bundle, ROOTCA stays the own bundle; and over
 * real TLS, a foreign CA's SVID is accepted for its own trust domain's IDs only.
 */
import t, { type Test } from 'tap';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status } from '@grpc/grpc-js';
import { Registry } from 'prom-client';
import { openCertificateAuthority } from '../../src/ca/authority.js';
import { ManualClock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/common/logger.js';
import { SecretGenerator } from '../../src/svid/secret-generator.js';
import { caSvidSource } from '../../src/svid/svid-source.js';
import { SvidCache } from '../../src/svid/svid-cache.js';
import { GeneratorError, type ProxyInfo } from '../../src/xds/core/types.js';
import { leafSignedWithoutChecks, testCa } from '../ca/helpers.js';
import { spiffeBundlesOf, spiffeTlsCall, spiffeTlsServer, strictSecret } from './spiffe-tls.js';

const HOUR = 3_600_000;
const EAST_ID = 'spiffe://east.example/ns/shop/sa/cart';

async function eastMesh(t: Test) {
  const dataDir = await mkdtemp(join(tmpdir(), 'meshd-fed-secrets-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const clock = new ManualClock(Date.now());
  const ca = await openCertificateAuthority({ dataDir, trustDomain: 'east.example', registry: new Registry(), autoRotate: false });
  const svids = new SvidCache({ ca, clock, logger: silentLogger(), ttlMs: () => 24 * HOUR, rotation: () => ({ fraction: 0.8, jitter: 0 }), onDue: () => undefined });
  const west = await testCa({ trustDomain: 'west.example' });
  let foreign = new Map<string, { rootsPem: readonly string[] }>([['west.example', { rootsPem: [west.root.certPem] }]]);
  const generator = new SecretGenerator({ source: caSvidSource(ca, svids, () => foreign), logger: silentLogger() });
  const proxy: ProxyInfo = {
    id: 'cart-1', cluster: 'cart', metadata: {}, userAgent: 'envoy',
    identity: { spiffeId: EAST_ID, trustDomain: 'east.example', namespace: 'shop', serviceAccount: 'cart', via: 'token' },
  };
  const secret = async (name: string, p = proxy) => {
    const [r] = await generator.generate(p, { names: new Set([name]) });
    if (!r) throw new Error(`no secret ${name}`);
    return strictSecret(r.body);
  };
  return { ca, svids, west, generator, proxy, secret, setForeign: (m: typeof foreign) => { foreign = m; } };
}

t.test('ALL holds every trust domain\'s bundle, each its own entry; a foreign name resolves; ROOTCA stays own', async (t) => {
  const { ca, west, secret } = await eastMesh(t);
  const own = ca.trustBundle().rootsPem;

  const all = await secret('ALL');
  t.equal(all.name, 'ALL');
  t.same([...spiffeBundlesOf(all).entries()], [['east.example', [...own]], ['west.example', [west.root.certPem]]], 'own and west, sorted, never merged');

  const westBundle = await secret('spiffe://west.example');
  t.same([...spiffeBundlesOf(westBundle).entries()], [['west.example', [west.root.certPem]]], 'west\'s name carries west\'s bundle alone');

  const ownBundle = await secret('spiffe://east.example');
  t.same([...spiffeBundlesOf(ownBundle).entries()], [['east.example', [...own]]], 'the own name carries the own bundle alone');

  const rootca = await secret('ROOTCA');
  t.same(Object.keys(rootca.validation_context), ['trusted_ca'], 'ROOTCA is a trusted_ca context');
  t.equal(Buffer.from(rootca.validation_context.trusted_ca.inline_bytes, 'base64').toString(), own.join(''), 'ROOTCA: meshd\'s own roots only');
});

t.test('a proxy that opts out of the SPIFFE validator gets a foreign name as trusted_ca of that domain alone', async (t) => {
  const { west, secret, proxy } = await eastMesh(t);
  const legacy = await secret('spiffe://west.example', { ...proxy, metadata: { disable_spiffe_cert_validation: true } });
  t.equal(Buffer.from(legacy.validation_context.trusted_ca.inline_bytes, 'base64').toString(), west.root.certPem);
});

t.test('a trust domain meshd does not federate with is refused, and stops resolving when federation ends', async (t) => {
  const { generator, proxy, setForeign, secret } = await eastMesh(t);
  await t.rejects(generator.generate(proxy, { names: new Set(['spiffe://north.example']) }),
    { constructor: GeneratorError, code: status.PERMISSION_DENIED, message: /no bundle for trust domain north\.example/ });
  await secret('spiffe://west.example');
  setForeign(new Map());
  await t.rejects(generator.generate(proxy, { names: new Set(['spiffe://west.example']) }), { message: /no bundle for trust domain west\.example/ });
  t.same([...spiffeBundlesOf(await secret('ALL')).keys()], ['east.example'], 'ALL shrinks back to the own trust domain');
});

t.test('a foreign map naming the own trust domain cannot replace its roots', async (t) => {
  const { ca, west, setForeign, secret } = await eastMesh(t);
  setForeign(new Map([['east.example', { rootsPem: [west.root.certPem] }], ['west.example', { rootsPem: [west.root.certPem] }]]));
  const all = spiffeBundlesOf(await secret('ALL'));
  t.same(all.get('east.example'), [...ca.trustBundle().rootsPem], 'east\'s entry is east\'s CA');
});

t.test('real TLS: a foreign CA\'s SVID validates for its own trust domain\'s IDs only', async (t) => {
  const { west, secret, svids } = await eastMesh(t);
  const bundles = spiffeBundlesOf(await secret('ALL'));
  const eastServer = await svids.get('cart-1', EAST_ID);
  const server = await spiffeTlsServer(eastServer, () => bundles);
  t.teardown(() => server.close());

  const westId = 'spiffe://west.example/ns/web/sa/front';
  const westClient = await west.issuer.issue({ spiffeId: westId });
  t.equal(await spiffeTlsCall(server.port, westClient, EAST_ID, bundles), `ok ${westId}`, 'west\'s workload is accepted');
  t.match(server.verdicts.at(-1), { ok: true, trustDomain: 'west.example' }, 'verified by west\'s bundle');

  // West's root signs an SVID claiming an east identity: east's bundle decides, and refuses it.
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const forgedLeaf = await leafSignedWithoutChecks(west.root, 'spiffe://east.example/ns/shop/sa/admin', publicKey.export({ type: 'spki', format: 'der' }));
  const forged = { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, chainPem: forgedLeaf };
  await t.rejects(spiffeTlsCall(server.port, forged, EAST_ID, bundles), 'the forged client is refused');
  t.match(server.verdicts.at(-1), { ok: false, reason: 'untrusted', trustDomain: 'east.example' });

  // As a server, the forged east identity fails the client's handshake: only east's bundle is its CA.
  const forgedServer = await spiffeTlsServer(forged, () => bundles);
  t.teardown(() => forgedServer.close());
  await t.rejects(spiffeTlsCall(forgedServer.port, westClient, 'spiffe://east.example/ns/shop/sa/admin', bundles), /unable to verify|certificate/i,
    'a client expecting an east server refuses a west-signed certificate');
  // West's genuine server is accepted by an east client expecting west's identity.
  const westServer = await spiffeTlsServer(westClient, () => bundles);
  t.teardown(() => westServer.close());
  t.equal(await spiffeTlsCall(westServer.port, eastServer, westId, bundles), `ok ${EAST_ID}`);

  const north = await testCa({ trustDomain: 'north.example' });
  const northClient = await north.issuer.issue({ spiffeId: 'spiffe://north.example/ns/a/sa/b' });
  await t.rejects(spiffeTlsCall(server.port, northClient, EAST_ID, bundles), 'an unfederated mesh\'s workload is refused');
  t.match(server.verdicts.at(-1), { ok: false, reason: 'unknown-trust-domain', trustDomain: 'north.example' });
});
