import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import tls from 'node:tls';
import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { leafSignedWithoutChecks, rsaKeyWithExponent } from '../ca/helpers.js';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { TokenAuthority } from '../../src/auth/token-authority.js';
import { ManualClock } from '../../src/common/clock.js';
import { startTestMeshd, bearer, type TestMeshd } from './helpers/meshd.js';
import type { SotwResponse, DecodedAny } from '../xds/helpers/xds-client.js';

const SECRET = TypeUrl.Secret;

function secretNamed(r: SotwResponse, name: string): Record<string, any> {
  const found = r.resources.find((x: DecodedAny) => x.name === name);
  if (!found) throw new Error(`no secret ${name} in response (${r.resources.map((x) => x.name).join(', ')})`);
  return found.decoded as Record<string, any>;
}

function pemOf(field: { inline_bytes?: unknown }): string {
  return Buffer.from(field.inline_bytes as Buffer).toString('utf8');
}

function uriSan(pem: string): string {
  const san = new X509Certificate(pem).subjectAltName ?? '';
  return san.split(', ').find((s) => s.startsWith('URI:'))!.slice(4);
}

/** default + ROOTCA on one SDS stream, ACKed, as Envoy's istio-style config asks for them. */
async function fetchIdentity(meshd: TestMeshd, ns: string, sa: string, nodeId = `sds-only-${ns}-${sa}`) {
  const client = meshd.tlsClient();
  const stream = client.sotw('sds', { node: { id: nodeId }, metadata: bearer(await meshd.token(ns, sa)) });
  stream.subscribe(SECRET, ['default', 'ROOTCA']);
  const response = await stream.next(10_000);
  stream.ack(response);
  const def = secretNamed(response, 'default');
  const root = secretNamed(response, 'ROOTCA');
  return {
    stream, client, response,
    chainPem: pemOf(def.tls_certificate.certificate_chain),
    keyPem: pemOf(def.tls_certificate.private_key),
    rootsPem: pemOf(root.validation_context.trusted_ca),
  };
}

t.test('an Envoy-like SDS client gets its own SVID and the bundle, and they complete a real mTLS handshake both ways', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const server = await fetchIdentity(meshd, 'payments', 'api');
  const client = await fetchIdentity(meshd, 'shop', 'web');
  t.equal(uriSan(server.chainPem), 'spiffe://cluster.local/ns/payments/sa/api');
  t.equal(uriSan(client.chainPem), 'spiffe://cluster.local/ns/shop/sa/web');
  t.equal(server.response.resources.length, 2, 'exactly the two requested secrets');
  await server.stream.expectSilence(300);

  const tlsServer = tls.createServer({ key: server.keyPem, cert: server.chainPem, ca: server.rootsPem, requestCert: true, rejectUnauthorized: true }, (socket) => {
    socket.end(`hello ${(socket.getPeerCertificate().subjectaltname ?? '')}`);
  });
  tlsServer.listen(0, '127.0.0.1');
  await once(tlsServer, 'listening');
  t.teardown(() => tlsServer.close());
  const port = (tlsServer.address() as AddressInfo).port;
  const socket = tls.connect({
    host: '127.0.0.1', port, key: client.keyPem, cert: client.chainPem, ca: client.rootsPem,
    checkServerIdentity: (_h, cert) => (cert.subjectaltname === 'URI:spiffe://cluster.local/ns/payments/sa/api' ? undefined : new Error(`unexpected server ${cert.subjectaltname}`)),
  });
  const chunks: Buffer[] = [];
  socket.on('data', (d: Buffer) => chunks.push(d));
  await once(socket, 'end');
  t.equal(Buffer.concat(chunks).toString(), 'hello URI:spiffe://cluster.local/ns/shop/sa/web', 'server saw the client SVID; client verified the server SVID');
});

t.test('a proxy that reconnects with the same node id gets its current SVID back, not a new one', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const first = await fetchIdentity(meshd, 'payments', 'api', 'node-a');
  first.stream.cancel();
  const again = await fetchIdentity(meshd, 'payments', 'api', 'node-a');
  const other = await fetchIdentity(meshd, 'payments', 'api', 'node-b');
  t.equal(new X509Certificate(again.chainPem).serialNumber, new X509Certificate(first.chainPem).serialNumber);
  t.not(new X509Certificate(other.chainPem).serialNumber, new X509Certificate(first.chainPem).serialNumber, 'each node id has its own key pair');
  t.not(other.keyPem, first.keyPem);
});

t.test('SVIDs rotate on the open stream before they expire: new key, new serial, no reconnect', async (t) => {
  // meshd runs on a clock the test moves: each rotation is the clock set past the SVID's
  // rotation point (80 % ± 2 % of its 24h lifetime), checked by meshd's once-a-second sweep.
  // meshd's own serving certificate rotates on the same clock; the open stream keeps its handshake.
  const clock = new ManualClock(Date.now());
  const meshd = await startTestMeshd({ clock });
  t.teardown(() => meshd.close());
  const { stream, chainPem, keyPem } = await fetchIdentity(meshd, 'payments', 'api');
  const firstCert = new X509Certificate(chainPem);
  let previous = { serial: firstCert.serialNumber, key: keyPem, notBefore: Date.parse(firstCert.validFrom), notAfter: Date.parse(firstCert.validTo) };
  for (let i = 0; i < 2; i++) {
    const lifetime = previous.notAfter - previous.notBefore;
    clock.set(previous.notBefore + Math.ceil(lifetime * 0.82) + 1000);
    const pushed = await stream.next(10_000);
    stream.ack(pushed);
    t.same(pushed.resources.map((r) => r.name), ['default'], 'only the rotated secret is pushed');
    const def = secretNamed(pushed, 'default');
    const cert = new X509Certificate(pemOf(def.tls_certificate.certificate_chain));
    t.not(cert.serialNumber, previous.serial, `rotation ${i + 1}: new serial`);
    t.not(pemOf(def.tls_certificate.private_key), previous.key, `rotation ${i + 1}: new key`);
    t.ok(clock.now() < previous.notAfter, `rotation ${i + 1} arrived before the old SVID expired`);
    previous = { serial: cert.serialNumber, key: pemOf(def.tls_certificate.private_key), notBefore: Date.parse(cert.validFrom), notAfter: Date.parse(cert.validTo) };
  }
});

t.test('a root rotation pushes the new bundle to every open stream', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const a = await fetchIdentity(meshd, 'payments', 'api');
  const b = await fetchIdentity(meshd, 'shop', 'web');
  await meshd.ca.prepareNextRoot();
  for (const s of [a, b]) {
    const pushed = await s.stream.next(5_000);
    s.stream.ack(pushed);
    const roots = pemOf(secretNamed(pushed, 'ROOTCA').validation_context.trusted_ca);
    t.equal(roots.match(/BEGIN CERTIFICATE/g)?.length, 2, 'old and new root both trusted');
  }
});

t.test('SPIRE-style names: own SPIFFE ID, trust domain ID and ALL through the SPIFFE validator', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const id = 'spiffe://cluster.local/ns/payments/sa/api';
  const stream = meshd.tlsClient().sotw('sds', { node: { id: 'spire-style' }, metadata: bearer(await meshd.token('payments', 'api')) });
  stream.subscribe(SECRET, [id, 'spiffe://cluster.local', 'ALL']);
  const r = await stream.next(10_000);
  t.equal(uriSan(pemOf(secretNamed(r, id).tls_certificate.certificate_chain)), id);
  for (const name of ['spiffe://cluster.local', 'ALL']) {
    const validator = secretNamed(r, name).validation_context.custom_validator_config;
    t.equal(validator.name, 'envoy.tls.cert_validator.spiffe', `${name} uses Envoy's SPIFFE validator`);
    t.same(validator.typed_config.trust_domains.map((d: { name: string }) => d.name), ['cluster.local']);
  }
});

t.test('secrets over ADS and FetchSecrets go through the same path', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const token = await meshd.token('payments', 'api');
  const ads = meshd.tlsClient().sotw('ads', { node: { id: 'ads-node' }, metadata: bearer(token) });
  ads.subscribe(SECRET, ['default']);
  const r = await ads.next(10_000);
  t.equal(r.type_url, SECRET);
  t.equal(uriSan(pemOf(secretNamed(r, 'default').tls_certificate.certificate_chain)), 'spiffe://cluster.local/ns/payments/sa/api');
  const fetched = await meshd.tlsClient().fetch('sds', { node: { id: 'ads-node' }, type_url: SECRET, resource_names: ['default'] }, bearer(token));
  t.equal(fetched.nonce, '', 'Fetch has no nonce');
  t.equal(uriSan(pemOf(secretNamed(fetched, 'default').tls_certificate.certificate_chain)), 'spiffe://cluster.local/ns/payments/sa/api');
  t.equal(new X509Certificate(pemOf(secretNamed(fetched, 'default').tls_certificate.certificate_chain)).serialNumber,
    new X509Certificate(pemOf(secretNamed(r, 'default').tls_certificate.certificate_chain)).serialNumber, 'same node id, same SVID');
});

t.test('refusals: no token, expired, forged, another identity, foreign client certificate', async (t) => {
  const meshd = await startTestMeshd();
  const other = await startTestMeshd();
  t.teardown(async () => { await meshd.close(); await other.close(); });
  const open = (metadata: Record<string, string>, names = ['default'], client = meshd.tlsClient()) => {
    const s = client.sotw('sds', { node: { id: 'n' }, metadata });
    s.subscribe(SECRET, names);
    return s.status;
  };
  const none = await open({});
  t.equal(none.code, grpc.status.UNAUTHENTICATED);
  t.match(none.details, /no credential/);

  // Signed with meshd's own key two hours ago for one hour: beyond any clock-skew tolerance.
  const past = await TokenAuthority.open(meshd.dataDir, new ManualClock(Date.now() - 2 * 3_600_000));
  const expired = await open(bearer((await past.issue({ namespace: 'payments', serviceAccount: 'api' }, 3_600_000)).token));
  t.equal(expired.code, grpc.status.UNAUTHENTICATED);
  t.match(expired.details, /expired/);

  const forgedToken = await other.token('payments', 'api');
  const forged = await open(bearer(forgedToken));
  t.equal(forged.code, grpc.status.UNAUTHENTICATED);
  t.notMatch(forged.details, forgedToken.slice(-20), 'the token never appears in the status');

  const denied = await open(bearer(await meshd.token('shop', 'web')), ['spiffe://cluster.local/ns/payments/sa/api']);
  t.equal(denied.code, grpc.status.PERMISSION_DENIED);
  t.match(denied.details, /spiffe:\/\/cluster\.local\/ns\/payments\/sa\/api/, 'names the resource');

  const foreign = await other.ca.issue({ spiffeId: 'spiffe://cluster.local/ns/payments/sa/api' });
  const foreignStatus = await open({}, ['default'], meshd.tlsClient({ keyPem: foreign.keyPem, chainPem: foreign.chainPem }));
  t.equal(foreignStatus.code, grpc.status.UNAUTHENTICATED);
  // TLS does not verify it against meshd's roots; meshd checks it itself and says why it is refused.
  t.match(foreignStatus.details, /client certificate \(issuer .*\) is not signed by this mesh's CA/);
  t.match(await meshd.metricsText(), /citadel_server_authentication_failure_count \d+/);
});

t.test('a client SVID signed by meshd\'s own root for an RSA key with exponent 3 is refused over real TLS', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  // What a CA that signed any CSR would have handed out: meshd's root key, an e = 3 key.
  const rootDir = join(meshd.dataDir, 'ca/roots/root-1');
  const root = {
    certDer: new X509Certificate(readFileSync(join(rootDir, 'ca-cert.pem'))).raw,
    key: { privateKey: createPrivateKey(readFileSync(join(rootDir, 'ca-key.pem'))), keyType: 'ec-p256' as const },
  };
  const e3 = rsaKeyWithExponent(3);
  const chainPem = await leafSignedWithoutChecks(root, 'spiffe://cluster.local/ns/payments/sa/api', e3.spki);
  const s = meshd.tlsClient({ keyPem: e3.key.export({ type: 'pkcs8', format: 'pem' }) as string, chainPem }).sotw('sds', { node: { id: 'e3-node' } });
  s.subscribe(SECRET, ['default']);
  const st = await s.status;
  t.equal(st.code, grpc.status.UNAUTHENTICATED);
  t.match(st.details, /client certificate key is refused: RSA public exponent 3 is not accepted \(only 65537\)/);
});

t.test('a client SVID from meshd proves the identity without a token; the plaintext port demands credentials too', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const svid = await meshd.ca.issue({ spiffeId: 'spiffe://cluster.local/ns/payments/sa/api' });
  const s = meshd.tlsClient({ keyPem: svid.keyPem, chainPem: svid.chainPem }).sotw('sds', { node: { id: 'cert-node' } });
  s.subscribe(SECRET, ['default']);
  const r = await s.next(10_000);
  t.equal(uriSan(pemOf(secretNamed(r, 'default').tls_certificate.certificate_chain)), 'spiffe://cluster.local/ns/payments/sa/api');

  const plain = meshd.plaintextClient().sotw('sds', { node: { id: 'p' } });
  plain.subscribe(SECRET, ['default']);
  t.equal((await plain.status).code, grpc.status.UNAUTHENTICATED);
  const plainOk = meshd.plaintextClient().sotw('sds', { node: { id: 'p' }, metadata: bearer(await meshd.token('payments', 'api')) });
  plainOk.subscribe(SECRET, ['default']);
  t.equal((await plainOk.next(10_000)).resources.length, 1);
});

t.test('1,000 concurrent proxies each get their own SVID', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const clients = Array.from({ length: 10 }, () => meshd.tlsClient());
  const tokens = await Promise.all(Array.from({ length: 50 }, (_, i) => meshd.token('fleet', `sa-${i}`)));
  const results = await Promise.all(Array.from({ length: 1000 }, async (_, i) => {
    const s = clients[i % clients.length]!.sotw('sds', { node: { id: `proxy-${i}` }, metadata: bearer(tokens[i % 50]!) });
    s.subscribe(SECRET, ['default']);
    const r = await s.next(60_000);
    s.ack(r);
    const cert = new X509Certificate(pemOf(secretNamed(r, 'default').tls_certificate.certificate_chain));
    return { i, serial: cert.serialNumber, id: uriSan(cert.toString()) };
  }));
  t.equal(new Set(results.map((r) => r.serial)).size, 1000, '1,000 distinct SVIDs');
  t.ok(results.every((r) => r.id === `spiffe://cluster.local/ns/fleet/sa/sa-${r.i % 50}`), 'each carries the identity its token proved');
});

t.test('shutdown ends open streams with UNAVAILABLE so proxies reconnect elsewhere', async (t) => {
  const meshd = await startTestMeshd();
  const { stream } = await fetchIdentity(meshd, 'payments', 'api');
  await meshd.stop(2000);
  const st = await stream.status;
  t.equal(st.code, grpc.status.UNAVAILABLE);
  await meshd.close();
});

