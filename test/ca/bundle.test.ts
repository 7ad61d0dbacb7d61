import t from 'tap';
import { createPublicKey, X509Certificate } from 'node:crypto';
import { Registry } from 'prom-client';
import { ManualClock } from '../../src/common/clock.js';
import { openCertificateAuthority } from '../../src/ca/authority.js';
import { bundlePem, spiffeBundleDocument } from '../../src/ca/bundle.js';
import { tempDir } from './helpers.js';

t.test('the SPIFFE bundle is a JWK Set: one x509-svid JWK per root, x5c with one DER, no kid', async (t) => {
  for (const rootKeyType of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
    const clock = new ManualClock(Date.now());
    const ca = await openCertificateAuthority({ dataDir: tempDir(t), trustDomain: 'example.org', registry: new Registry(), clock, rootKeyType, rotationOverlapMs: 0 });
    await ca.prepareNextRoot();
    const doc = ca.bundleJwks();
    t.equal(doc.spiffe_sequence, 2);
    t.equal(doc.spiffe_refresh_hint, 300);
    t.equal(doc.keys.length, 2);
    const roots = ca.trustBundle().rootsPem;
    doc.keys.forEach((jwk, i) => {
      t.equal(jwk.use, 'x509-svid');
      t.notOk('kid' in jwk, 'no kid (X509-SVID §6)');
      t.equal(jwk.x5c.length, 1);
      t.match(jwk.x5c[0], /^[A-Za-z0-9+/]+=*$/, 'standard base64, not url-safe');
      const cert = new X509Certificate(Buffer.from(jwk.x5c[0], 'base64'));
      t.equal(cert.raw.toString('base64'), new X509Certificate(roots[i]!).raw.toString('base64'), 'x5c is the root, in bundle order');
      const fromJwk = createPublicKey({ key: jwk as never, format: 'jwk' });
      t.ok(fromJwk.equals(cert.publicKey), `${rootKeyType}: the JWK is the certificate's public key`);
      t.equal(jwk.kty, rootKeyType.startsWith('ec') ? 'EC' : 'RSA');
      t.notOk('d' in jwk || 'p' in jwk, 'no private parameters');
    });
    const json = JSON.parse(JSON.stringify(doc)) as Record<string, unknown>;
    t.same(Object.keys(json).sort(), ['keys', 'spiffe_refresh_hint', 'spiffe_sequence']);
  }
});

t.test('spiffeBundleDocument and bundlePem are pure views of a TrustBundle', async (t) => {
  const ca = await openCertificateAuthority({ dataDir: tempDir(t), trustDomain: 'cluster.local', registry: new Registry(), refreshHintSeconds: 60 });
  const bundle = ca.trustBundle();
  t.same(spiffeBundleDocument(bundle), ca.bundleJwks());
  t.equal(spiffeBundleDocument(bundle).spiffe_refresh_hint, 60);
  t.equal(bundlePem(bundle), bundle.rootsPem.join(''));
  t.same(spiffeBundleDocument({ ...bundle, rootsPem: [] }).keys, [], 'an empty bundle is an empty key set');
});
