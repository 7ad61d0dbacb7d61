import t from 'tap';
import { encodeAny } from '../../src/envoy/protos.js';
import { decodeStrictAny } from '../../src/envoy/strict-decode.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { tlsCertificateSecret, tlsCertificateSecretAny } from '../../src/svid/secret-resources.js';

/** The hand-written tls_certificate Secret is exactly what protobufjs writes, and Envoy's protos accept it. */

const pem = (label: string, bytes: number) => `-----BEGIN ${label}-----\n${'A'.repeat(Math.max(0, bytes - 40))}\n-----END ${label}-----\n`;

t.test('byte for byte equal to protobufjs, across varint length boundaries', async (t) => {
  const names = ['default', 'spiffe://cluster.local/ns/a/sa/b', 'n'.repeat(127), 'n'.repeat(128), 'ünïcödé'];
  const sizes = [0, 1, 127, 128, 900, 16_383, 16_384, 70_000];
  for (const name of names) {
    for (const size of sizes) {
      const chain = size === 0 ? '' : pem('CERTIFICATE', size);
      const key = pem('PRIVATE KEY', Math.max(1, size >> 2));
      const ours = tlsCertificateSecretAny(name, chain, key);
      const reference = Buffer.from(encodeAny(TypeUrl.Secret, tlsCertificateSecret(name, chain, key)));
      if (!ours.equals(reference)) t.fail(`name ${name.slice(0, 12)}… chain ${size} B: bytes differ`);
    }
  }
  t.pass(`${names.length * sizes.length} combinations equal`);
});

t.test('decodes strictly as an envoy Secret with the chain and key inline', async (t) => {
  const bytes = tlsCertificateSecretAny('default', pem('CERTIFICATE', 800), pem('PRIVATE KEY', 240));
  const r = decodeStrictAny(bytes);
  if (!r.valid) { t.fail(r.errors.join('; ')); return; }
  t.same(r.warnings, [], 'no unknown fields, no rule broken');
  const secret = r.message.toJSON() as { name: string; tls_certificate: { certificate_chain: { inline_bytes: string }; private_key: { inline_bytes: string } } };
  t.equal(secret.name, 'default');
  t.match(Buffer.from(secret.tls_certificate.certificate_chain.inline_bytes, 'base64').toString(), /^-----BEGIN CERTIFICATE-----/);
  t.match(Buffer.from(secret.tls_certificate.private_key.inline_bytes, 'base64').toString(), /^-----BEGIN PRIVATE KEY-----/);
});
