/**
 * meshd's SPIFFE bundle endpoint over real TLS on loopback: both profiles, what it serves,
 * certificate changes, and requests it must refuse without falling over.
 */
import t from 'tap';
import { request } from 'node:https';
import { connect, type PeerCertificate } from 'node:tls';
import { copyFileSync, writeFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { Registry } from 'prom-client';
import { silentLogger } from '../../src/common/logger.js';
import { encodeBundleDocument, parseBundleDocument } from '../../src/federation/bundle-document.js';
import { startBundleEndpoint, type BundleEndpointHandle } from '../../src/federation/bundle-endpoint.js';
import { fetchBundleBody } from '../../src/federation/fetch-bundle.js';
import { ManualClock, systemClock } from '../../src/common/clock.js';
import { captureLogger, sample, SwitchableIdentity, tempDir, trustDomainCa, until, webPki } from './helpers.js';

const ENDPOINT_ID = 'spiffe://east.example/ns/istio-system/sa/meshd';

interface Answer { status: number; headers: Record<string, string | string[] | undefined>; body: string; cert: PeerCertificate }

function get(port: number, opts: { ca: string; path?: string; method?: string; servername?: string }): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: '127.0.0.1', port, path: opts.path ?? '/', method: opts.method ?? 'GET', agent: false, ca: opts.ca,
      // The SPIFFE profile is not about host names; the chain is what is checked here.
      checkServerIdentity: () => undefined,
    }, (res) => {
      const cert = (res.socket as unknown as { getPeerCertificate(): PeerCertificate }).getPeerCertificate();
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString(), cert }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Writes raw bytes over TLS and returns what comes back until the server closes or 2 s pass. */
function raw(port: number, ca: string, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, ca, checkServerIdentity: () => undefined }, () => socket.end(bytes));
    let out = '';
    socket.on('data', (d: Buffer) => { out += d.toString(); });
    socket.on('close', () => resolve(out));
    socket.on('error', reject);
    socket.setTimeout(2000, () => socket.destroy());
  });
}

t.test('https_spiffe: GET / is meshd\'s bundle as application/json, over meshd\'s own SVID, and follows the CA', async (t) => {
  const ca = await trustDomainCa(t, 'east.example');
  const identity = new SwitchableIdentity(await ca.issue({ spiffeId: ENDPOINT_ID, dnsNames: ['meshd'] }));
  const registry = new Registry();
  const endpoint = await startBundleEndpoint({ host: '127.0.0.1', port: 0, profile: { type: 'https_spiffe', identity }, bundle: () => ca.bundleJwks(), logger: silentLogger(), registry });
  t.teardown(() => endpoint.close());
  const roots = ca.trustBundle().rootsPem.join('');

  const r = await get(endpoint.port, { ca: roots });
  t.equal(r.status, 200);
  t.equal(r.headers['content-type'], 'application/json');
  t.equal(r.body, encodeBundleDocument(ca.bundleJwks()), 'the same bytes as /trust-bundle');
  t.equal(r.cert.subjectaltname, `URI:${ENDPOINT_ID}, DNS:meshd`, 'served with meshd\'s X509-SVID');

  // The federation client authenticates it exactly as a foreign meshd would.
  const fetched = await fetchBundleBody({ url: `https://127.0.0.1:${endpoint.port}/`, profile: { type: 'https_spiffe', endpointSpiffeId: ENDPOINT_ID }, rootsPem: ca.trustBundle().rootsPem }, { clock: systemClock });
  t.ok(fetched.ok && parseBundleDocument(fetched.body, 'east.example').ok, 'fetched and parsed by the https_spiffe client');

  // A new root is served at once (the bundle is read per request).
  await ca.prepareNextRoot({ overlapMs: 0 });
  const after = await get(endpoint.port, { ca: roots });
  t.equal((JSON.parse(after.body) as { spiffe_sequence: number; keys: unknown[] }).keys.length, 2);
  t.equal(after.body, encodeBundleDocument(ca.bundleJwks()));

  // A renewed SVID is served to new connections.
  const renewed = await ca.issue({ spiffeId: ENDPOINT_ID });
  identity.set(renewed);
  const third = await get(endpoint.port, { ca: ca.trustBundle().rootsPem.join('') });
  t.equal(third.cert.serialNumber.toLowerCase().replace(/^0+/, ''), renewed.serialHex, 'the renewed certificate');
  t.equal(await sample(registry, 'meshd_federation_endpoint_requests_total', { code: '200' }), 4, 'four GETs answered 200');
});

t.test('https_web: the operator\'s certificate files, re-read when they change; a bad pair keeps the one served', async (t) => {
  const dir = tempDir(t, 'meshd-fed-web-');
  const ca = await trustDomainCa(t, 'east.example');
  const first = webPki(dir, 'first');
  const second = webPki(dir, 'second');
  const certFile = `${dir}/served.pem`;
  const keyFile = `${dir}/served.key`;
  copyFileSync(first.certFile, certFile);
  copyFileSync(first.keyFile, keyFile);
  const clock = new ManualClock();
  const log = captureLogger();
  const endpoint: BundleEndpointHandle = await startBundleEndpoint({
    host: '127.0.0.1', port: 0, profile: { type: 'https_web', certFile, keyFile }, bundle: () => ca.bundleJwks(), logger: log.logger, clock, filePollMs: 10_000,
  });
  t.teardown(() => endpoint.close());
  const fingerprint = (pem: string): string => new X509Certificate(pem).fingerprint256;

  const r = await fetchBundleBody({ url: `https://127.0.0.1:${endpoint.port}/`, profile: { type: 'https_web' }, extraCaPem: first.caPem }, { clock: systemClock });
  t.ok(r.ok, 'Web PKI: the server certificate is valid for 127.0.0.1 under the test CA');
  t.equal((await get(endpoint.port, { ca: first.caPem })).cert.fingerprint256, fingerprint(first.certPem));

  // A key that does not match the certificate: refused, the served certificate stays.
  copyFileSync(second.certFile, certFile);
  clock.advance(10_000);
  await until(() => log.lines().some((l) => l.msg === 'the bundle endpoint keeps its current certificate'), 'the refusal to be logged');
  t.match(log.lines().find((l) => l.msg === 'the bundle endpoint keeps its current certificate')!.err, /do not load/);
  t.equal((await get(endpoint.port, { ca: first.caPem })).cert.fingerprint256, fingerprint(first.certPem));

  // The matching key arrives: the next poll serves the new pair.
  copyFileSync(second.keyFile, keyFile);
  clock.advance(10_000);
  await until(() => log.lines().some((l) => l.msg === 'bundle endpoint certificate reloaded'), 'the reload');
  t.equal((await get(endpoint.port, { ca: second.caPem })).cert.fingerprint256, fingerprint(second.certPem));
  t.same(clock.timerDelays(), [10_000], 'polling goes on');
});

t.test('every request gets an answer and the endpoint keeps serving: wrong methods, paths, targets, huge headers', async (t) => {
  const ca = await trustDomainCa(t, 'east.example');
  const identity = new SwitchableIdentity(await ca.issue({ spiffeId: ENDPOINT_ID }));
  const endpoint = await startBundleEndpoint({ host: '127.0.0.1', port: 0, profile: { type: 'https_spiffe', identity }, bundle: () => ca.bundleJwks(), logger: silentLogger() });
  t.teardown(() => endpoint.close());
  const roots = ca.trustBundle().rootsPem.join('');

  const post = await get(endpoint.port, { ca: roots, method: 'POST' });
  t.equal(post.status, 405);
  t.equal(post.headers.allow, 'GET, HEAD');
  const del = await get(endpoint.port, { ca: roots, method: 'DELETE' });
  t.equal(del.status, 405);
  const other = await get(endpoint.port, { ca: roots, path: '/debug/config' });
  t.equal(other.status, 404);
  t.equal(other.body, 'not found: the SPIFFE bundle is served at /\n');
  const query = await get(endpoint.port, { ca: roots, path: '/?x=1' });
  t.equal(query.status, 200, 'a query string does not change the bundle');
  const head = await get(endpoint.port, { ca: roots, method: 'HEAD' });
  t.equal(head.status, 200);
  t.equal(head.body, '');

  t.match(await raw(endpoint.port, roots, 'GET http://[::1 HTTP/1.1\r\nhost: x\r\n\r\n'), /^HTTP\/1\.1 400 /, 'an unparsable target: 400');
  t.match(await raw(endpoint.port, roots, 'NOT-HTTP\r\n\r\n'), /^HTTP\/1\.1 400 /, 'not HTTP at all: 400');
  t.match(await raw(endpoint.port, roots, `GET / HTTP/1.1\r\nhost: x\r\nx-pad: ${'a'.repeat(20_000)}\r\n\r\n`), /^HTTP\/1\.1 (431|400) /, 'headers beyond 8 KiB are refused');

  const still = await get(endpoint.port, { ca: roots });
  t.equal(still.status, 200, 'and it still serves the bundle');
});

t.test('start-up refuses what cannot work, naming it', async (t) => {
  const dir = tempDir(t, 'meshd-fed-web-');
  const ca = await trustDomainCa(t, 'east.example');
  const pki = webPki(dir);
  const base = { host: '127.0.0.1', port: 0, bundle: () => ca.bundleJwks(), logger: silentLogger() };
  await t.rejects(startBundleEndpoint({ ...base, profile: { type: 'https_web', certFile: `${dir}/missing.pem`, keyFile: pki.keyFile } }),
    { message: `cannot read the bundle endpoint certificate ${dir}/missing.pem: ENOENT` });
  writeFileSync(`${dir}/garbage.pem`, 'not a certificate\n');
  await t.rejects(startBundleEndpoint({ ...base, profile: { type: 'https_web', certFile: `${dir}/garbage.pem`, keyFile: pki.keyFile } }),
    { message: new RegExp(`^the bundle endpoint certificate ${dir}/garbage.pem and key ${pki.keyFile} do not load: `) });
  const taken = await startBundleEndpoint({ ...base, profile: { type: 'https_web', certFile: pki.certFile, keyFile: pki.keyFile } });
  t.teardown(() => taken.close());
  await t.rejects(startBundleEndpoint({ ...base, port: taken.port, profile: { type: 'https_web', certFile: pki.certFile, keyFile: pki.keyFile } }),
    { message: new RegExp(`^cannot listen on 127\\.0\\.0\\.1:${taken.port} for the bundle endpoint: .*EADDRINUSE`) });
});
