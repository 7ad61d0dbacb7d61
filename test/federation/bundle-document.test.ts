/**
 * The SPIFFE bundle document: meshd's own, encoded, reads back exactly; a foreign one is read
 * strictly, and every way it can be wrong is refused with a reason and a message that says
 * what is wrong and where.
 */
import t from 'tap';
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { ManualClock } from '../../src/common/clock.js';
import { spiffeBundleDocument } from '../../src/ca/bundle.js';
import { decodePemOf } from '../../src/ca/pem.js';
import {
  encodeBundleDocument, MAX_BUNDLE_BYTES, MAX_BUNDLE_KEYS, parseBundleDocument, type BundleRefusal,
} from '../../src/federation/bundle-document.js';
import { trustDomainCa } from './helpers.js';
import { repoPath } from '../helpers/repo.js';

const fixture = (name: string): string => readFileSync(repoPath('test/federation/fixtures', name), 'utf8');

type Jwk = Record<string, unknown>;
type Doc = { keys: Jwk[]; [k: string]: unknown };

t.test('meshd\'s own bundle: encoded as /trust-bundle serves it, read back to the same roots and sequence', async (t) => {
  const ca = await trustDomainCa(t, 'east.example');
  await ca.prepareNextRoot({ overlapMs: 0 });
  const text = encodeBundleDocument(ca.bundleJwks());
  t.equal(text, `${JSON.stringify(ca.bundleJwks(), null, 2)}\n`, 'pretty JSON and a newline, byte for byte what /trust-bundle served before');
  const r = parseBundleDocument(text, 'east.example');
  if (!r.ok) throw new Error(r.message);
  t.equal(r.bundle.rootsPem.length, 2);
  t.same(r.bundle.rootsPem, ca.trustBundle().rootsPem, 'both roots, in order');
  t.equal(r.bundle.sequence, BigInt(ca.trustBundle().sequence));
  t.equal(r.bundle.refreshHintSeconds, 300);
  t.same(r.bundle.skipped, []);
});

t.test('RSA and P-384 roots read back too', async (t) => {
  const { openCertificateAuthority } = await import('../../src/ca/index.js');
  const { Registry } = await import('prom-client');
  const { tempDir } = await import('./helpers.js');
  for (const rootKeyType of ['ec-p384', 'rsa-2048'] as const) {
    const ca = await openCertificateAuthority({ dataDir: tempDir(t), trustDomain: 'west.example', registry: new Registry(), clock: new ManualClock(Date.now()), rootKeyType, autoRotate: false });
    const r = parseBundleDocument(encodeBundleDocument(ca.bundleJwks()), 'west.example');
    t.ok(r.ok, `${rootKeyType}: ${r.ok ? 'read' : r.message}`);
  }
});

t.test('a bundle written by SPIRE (spire-controller-manager docs/clusterfederatedtrustdomain-crd.md) is read; its jwt-svid key is skipped', async (t) => {
  const r = parseBundleDocument(fixture('spire-bundle.json'), 'cluster1.demo');
  if (!r.ok) throw new Error(r.message);
  t.equal(r.bundle.rootsPem.length, 1);
  t.equal(new X509Certificate(r.bundle.rootsPem[0]!).subjectAltName, 'URI:spiffe://cluster1.demo');
  t.equal(r.bundle.sequence, undefined, 'no spiffe_sequence: none is made up');
  t.equal(r.bundle.refreshHintSeconds, undefined);
  t.same(r.bundle.skipped, ['keys[1]: a jwt-svid key (meshd validates X.509-SVIDs only)']);
  // The same docs pair that bundle with `trustDomain: backend`: its CA says it belongs to cluster1.demo.
  const wrong = parseBundleDocument(fixture('spire-bundle.json'), 'backend');
  t.same(wrong, { ok: false, reason: 'wrong-trust-domain', message: 'keys[0]: the certificate is an authority of trust domain cluster1.demo (spiffe://cluster1.demo), not backend' });
});

t.test('spiffe_sequence keeps 64 bits; unknown top-level members are allowed', async (t) => {
  const ca = await trustDomainCa(t, 'east.example');
  const doc = ca.bundleJwks() as unknown as Doc;
  const text = encodeBundleDocument(ca.bundleJwks()).replace(/"spiffe_sequence": \d+/, '"spiffe_sequence": 18446744073709551615');
  const r = parseBundleDocument(text.replace('{', '{"x_vendor_extension": {"anything": [1, 2]},'), 'east.example');
  if (!r.ok) throw new Error(r.message);
  t.equal(r.bundle.sequence, 18446744073709551615n);
  t.ok(doc.keys.length > 0);
});

t.test('JWKs the spec says to ignore are skipped, and the usable ones kept', async (t) => {
  const ca = await trustDomainCa(t, 'east.example');
  const doc = ca.bundleJwks() as unknown as Doc;
  const good = doc.keys[0]!;
  doc.keys.push(
    { kty: 'EC', x5c: good.x5c }, // no use
    { ...good, use: 'X509-SVID' }, // values are case-sensitive
    { ...good, use: 'sig' },
    { ...good, kty: 'OKP' }, // a key type meshd cannot check
    { ...good }, // the same certificate again
  );
  const r = parseBundleDocument(JSON.stringify(doc), 'east.example');
  if (!r.ok) throw new Error(r.message);
  t.equal(r.bundle.rootsPem.length, 1);
  t.same(r.bundle.skipped, [
    'keys[1]: no "use"',
    'keys[2]: unknown "use" "X509-SVID"',
    'keys[3]: unknown "use" "sig"',
    'keys[4]: key type "OKP" is not one meshd can check',
    'keys[5]: the same certificate as an earlier key',
  ]);
});

/** Table of refusals: each a mutation of a good bundle, its reason and its message. */
t.test('every malformed or untrustworthy document is refused with a precise reason', async (t) => {
  const east = await trustDomainCa(t, 'east.example');
  const north = await trustDomainCa(t, 'north.example');
  const good = (): Doc => JSON.parse(JSON.stringify(east.bundleJwks())) as Doc;
  const goodKey = good().keys[0]!;
  const leaf = await east.issue({ spiffeId: 'spiffe://east.example/ns/a/sa/b' });
  const leafDer = decodePemOf(leaf.certPem, 'CERTIFICATE', 'leaf')[0]!;
  const tamperedRoot = Buffer.from(goodKey.x5c instanceof Array ? String(goodKey.x5c[0]) : '', 'base64');
  tamperedRoot[tamperedRoot.length - 5]! ^= 0x01; // inside the signature
  const withKeys = (...keys: unknown[]): string => JSON.stringify({ ...good(), keys });

  const rows: Array<{ name: string; text: string | Buffer; reason: BundleRefusal; message: string | RegExp }> = [
    { name: 'not JSON', text: 'keys: []', reason: 'malformed-json', message: 'not JSON: unexpected character "k" at line 1, column 1' },
    { name: 'not UTF-8', text: Buffer.from([0x7b, 0xff, 0x7d]), reason: 'malformed-json', message: 'the document is not UTF-8 text' },
    { name: 'a duplicate member name', text: '{"keys": [], "spiffe_sequence": 1, "keys": []}', reason: 'malformed-json', message: 'not JSON: duplicate member name "keys" at line 1, column 36' },
    { name: 'an array, not a JWK Set', text: '[]', reason: 'invalid-jwks', message: 'a SPIFFE bundle is a JSON object (a JWK Set), got an array' },
    { name: 'no keys', text: '{"spiffe_sequence": 1}', reason: 'invalid-jwks', message: 'the JWK Set has no "keys" member' },
    { name: 'keys not an array', text: '{"keys": {}}', reason: 'invalid-jwks', message: '"keys" must be an array, got an object' },
    { name: 'a key that is not an object', text: withKeys(goodKey, 'x'), reason: 'invalid-jwks', message: 'keys[1] must be a JWK object, got a string' },
    { name: 'sequence a string', text: JSON.stringify({ ...good(), spiffe_sequence: '3' }), reason: 'invalid-jwks', message: 'spiffe_sequence must be an integer, got a string' },
    { name: 'sequence a fraction', text: JSON.stringify({ ...good(), spiffe_sequence: 1.5 }), reason: 'invalid-jwks', message: 'spiffe_sequence must be an integer, got the number 1.5' },
    { name: 'sequence negative', text: JSON.stringify({ ...good(), spiffe_sequence: -1 }), reason: 'invalid-jwks', message: 'spiffe_sequence -1 is outside 0..2^64-1' },
    { name: 'sequence above 64 bits', text: encodeBundleDocument(east.bundleJwks()).replace(/"spiffe_sequence": \d+/, '"spiffe_sequence": 18446744073709551616'), reason: 'invalid-jwks', message: 'spiffe_sequence 18446744073709551616 is outside 0..2^64-1' },
    { name: 'refresh hint null', text: JSON.stringify({ ...good(), spiffe_refresh_hint: null }), reason: 'invalid-jwks', message: 'spiffe_refresh_hint must be an integer, got null' },
    { name: 'refresh hint negative', text: JSON.stringify({ ...good(), spiffe_refresh_hint: -300 }), reason: 'invalid-jwks', message: 'spiffe_refresh_hint -300 is negative' },
    { name: 'kty not a string', text: withKeys({ ...goodKey, kty: 7 }), reason: 'invalid-jwks', message: 'keys[0].kty must be a string, got the number 7' },
    { name: 'a kid on an x509-svid key', text: withKeys({ ...goodKey, kid: 'k1' }), reason: 'invalid-jwks', message: 'keys[0] has a "kid"; an x509-svid JWK must not (X509-SVID §6.1)' },
    { name: 'no x5c', text: withKeys({ ...goodKey, x5c: undefined }), reason: 'invalid-jwks', message: 'keys[0].x5c must be an array holding the CA certificate, got nothing' },
    { name: 'empty x5c', text: withKeys({ ...goodKey, x5c: [] }), reason: 'invalid-jwks', message: 'keys[0].x5c must hold exactly one certificate, got 0 (X509-SVID §6.1)' },
    { name: 'two certificates in x5c', text: withKeys({ ...goodKey, x5c: [(goodKey.x5c as string[])[0], (goodKey.x5c as string[])[0]] }), reason: 'invalid-jwks', message: 'keys[0].x5c must hold exactly one certificate, got 2 (X509-SVID §6.1)' },
    { name: 'x5c url-safe base64', text: withKeys({ ...goodKey, x5c: [Buffer.from((goodKey.x5c as string[])[0]!, 'base64').toString('base64url')] }), reason: 'invalid-jwks', message: 'keys[0].x5c[0] must be a standard base64 DER certificate' },
    { name: 'x5c not a certificate', text: withKeys({ ...goodKey, x5c: [Buffer.from('hello world!').toString('base64')] }), reason: 'invalid-certificate', message: /^keys\[0\]\.x5c\[0\] is malformed: / },
    { name: 'a workload SVID, not a CA', text: withKeys({ ...goodKey, x5c: [leafDer.toString('base64')] }), reason: 'not-a-ca', message: 'keys[0]: the certificate is not a CA certificate (basicConstraints cA is not set), so it cannot sign SVIDs' },
    { name: 'a CA of another trust domain', text: JSON.stringify(north.bundleJwks()), reason: 'wrong-trust-domain', message: /^keys\[0\]: the certificate is an authority of trust domain north\.example \(spiffe:\/\/north\.example\), not east\.example$/ },
    { name: 'a JWK whose key is not its certificate\'s', text: withKeys({ ...goodKey, x: (north.bundleJwks().keys[0]!).x }), reason: 'key-mismatch', message: 'keys[0]: the JWK does not describe its certificate\'s key: x is not the certificate\'s key' },
    { name: 'a JWK without its key members', text: withKeys({ ...goodKey, y: undefined }), reason: 'key-mismatch', message: 'keys[0]: the JWK does not describe its certificate\'s key: y is missing' },
    { name: 'an RSA kty on an EC certificate', text: withKeys({ ...goodKey, kty: 'RSA' }), reason: 'key-mismatch', message: 'keys[0]: the JWK does not describe its certificate\'s key: kty is "RSA" but the certificate holds an EC key' },
    { name: 'a self-signed root whose signature does not verify', text: withKeys({ ...goodKey, x5c: [tamperedRoot.toString('base64')] }), reason: 'invalid-certificate', message: 'keys[0]: the certificate is self-signed but its signature does not verify with its own key' },
    { name: 'empty keys (would revoke the trust domain)', text: '{"keys": []}', reason: 'no-x509-authorities', message: '"keys" is empty, which would revoke every identity of the trust domain; refusing it rather than distrusting east.example (remove its ClusterFederatedTrustDomain to end the federation)' },
    { name: 'only keys with the wrong use', text: withKeys({ ...goodKey, use: 'X509-SVID' }, { ...goodKey, use: 'jwt-svid' }), reason: 'no-x509-authorities', message: 'none of its 2 keys is a usable x509-svid authority (keys[0]: unknown "use" "X509-SVID"; keys[1]: a jwt-svid key (meshd validates X.509-SVIDs only)); refusing it rather than distrusting east.example (remove its ClusterFederatedTrustDomain to end the federation)' },
    { name: 'too many keys', text: withKeys(...Array.from({ length: MAX_BUNDLE_KEYS + 1 }, () => ({ use: 'jwt-svid' }))), reason: 'too-large', message: `the bundle has ${MAX_BUNDLE_KEYS + 1} keys, above the limit of ${MAX_BUNDLE_KEYS}` },
    { name: 'too many bytes', text: `{"keys": [], "pad": "${'x'.repeat(MAX_BUNDLE_BYTES - 22)}"}`, reason: 'too-large', message: `the document is ${MAX_BUNDLE_BYTES + 1} bytes, above the ${MAX_BUNDLE_BYTES}-byte limit` },
  ];
  for (const row of rows) {
    const r = parseBundleDocument(row.text, 'east.example');
    t.equal(r.ok, false, `${row.name}: refused`);
    if (r.ok) continue;
    t.equal(r.reason, row.reason, `${row.name}: reason`);
    if (typeof row.message === 'string') t.equal(r.message, row.message, `${row.name}: message`);
    else t.match(r.message, row.message, `${row.name}: message`);
  }
});

t.test('spiffeBundleDocument output is what parseBundleDocument accepts for any number of roots', async (t) => {
  const ca = await trustDomainCa(t, 'east.example');
  const bundle = ca.trustBundle();
  const three = { ...bundle, rootsPem: [bundle.rootsPem[0]!, (await trustDomainCa(t, 'east.example')).trustBundle().rootsPem[0]!, (await trustDomainCa(t, 'east.example')).trustBundle().rootsPem[0]!], sequence: 7 };
  const r = parseBundleDocument(encodeBundleDocument(spiffeBundleDocument(three)), 'east.example');
  if (!r.ok) throw new Error(r.message);
  t.same(r.bundle.rootsPem, three.rootsPem);
  t.equal(r.bundle.sequence, 7n);
});
