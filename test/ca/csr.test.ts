import t from 'tap';
import { createPublicKey, generateKeyPairSync, verify, X509Certificate } from 'node:crypto';
import { readHeader } from '../../src/ca/der.js';
import { parseCsr, CsrError } from '../../src/ca/csr.js';
import { decodePem, toPem } from '../../src/ca/pem.js';
import { Registry } from 'prom-client';
import { openCertificateAuthority } from '../../src/ca/authority.js';
import { forgedExponentOneCsr, metricValue, nodeCsr, opensslCsr, rsaKeyWithExponent, tempDir, testCa } from './helpers.js';

const ID = 'spiffe://cluster.local/ns/payments/sa/api';

function ecPair() {
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return { key: pair.privateKey, spki: pair.publicKey.export({ type: 'spki', format: 'der' }) };
}

t.test('CSRs from OpenSSL and from Node parse to the key they carry', async (t) => {
  const dir = tempDir(t);
  const ec = parseCsr(opensslCsr(dir, ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-addext', `subjectAltName=URI:${ID}`]).csrPem);
  t.equal(ec.keyType, 'ec-p256');
  t.same(ec.requestedUris, [ID], 'the requested SAN is reported (and later ignored)');
  t.equal(parseCsr(opensslCsr(dir, ['rsa:2048']).csrPem).keyType, 'rsa-2048');
  const { key, spki } = ecPair();
  const parsed = parseCsr(nodeCsr(key, spki));
  t.ok(parsed.spki.equals(spki), 'SPKI carried verbatim');
  t.equal(parseCsr(nodeCsr(key, spki).replace(/CERTIFICATE REQUEST/g, 'NEW CERTIFICATE REQUEST')).keyType, 'ec-p256', 'legacy NEW CERTIFICATE REQUEST label accepted');
});

t.test('bad CSRs are rejected with a precise reason', async (t) => {
  const dir = tempDir(t);
  const { key, spki } = ecPair();
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const rsaSpki = rsa.publicKey.export({ type: 'spki', format: 'der' });
  const good = nodeCsr(key, spki);
  const der = decodePem(good, 'x')[0]!.der;
  // The same CSR with its outer length in a needlessly long form: valid BER, not DER.
  t.equal(der[1], 0x81, 'outer length in the one-octet long form');
  const ber = Buffer.concat([Buffer.from([0x30, 0x82, 0x00, der[2]!]), der.subarray(3)]);
  const table: [string, string, RegExp][] = [
    ['empty', '', /CSR is empty/],
    ['not PEM', 'hello world', /no PEM block found/],
    ['wrong PEM label', good.replace(/CERTIFICATE REQUEST/g, 'CERTIFICATE'), /is "CERTIFICATE", expected "CERTIFICATE REQUEST"/],
    ['bad base64', '-----BEGIN CERTIFICATE REQUEST-----\n@@@@\n-----END CERTIFICATE REQUEST-----\n', /not valid base64/],
    ['two CSRs', good + good, /expected one CERTIFICATE REQUEST block, found 2/],
    ['truncated DER', toPem('CERTIFICATE REQUEST', der.subarray(0, der.length - 10)), /not valid ASN.1/],
    ['random bytes', toPem('CERTIFICATE REQUEST', Buffer.from('3003020100', 'hex')), /CSR|ASN/],
    ['BER, not DER', toPem('CERTIFICATE REQUEST', ber), /CSR is BER, not DER/],
    ['signature corrupted', nodeCsr(key, spki, { tamper: 'signature' }), /signature does not verify/],
    ['signed bytes altered', nodeCsr(key, spki, { tamper: 'info' }), /signature does not verify/],
    ['RSA CSR with a bad signature', nodeCsr(rsa.privateKey, rsaSpki, { tamper: 'signature' }), /signature does not verify/],
    ['key of one CSR, signature by another key', nodeCsr(ecPair().key, spki), /signature does not verify/],
    ['EC P-384 key', opensslCsr(dir, ['ec', '-pkeyopt', 'ec_paramgen_curve:P-384']).csrPem, /unsupported key: EC P-384 \(supported: EC P-256, RSA 2048\)/],
    ['RSA 1024 key', opensslCsr(dir, ['rsa:1024']).csrPem, /unsupported key: RSA 1024/],
    ['Ed25519 key', opensslCsr(dir, ['ed25519']).csrPem, /unsupported key: Ed25519/],
  ];
  for (const [what, pem, message] of table) {
    try {
      parseCsr(pem);
      t.fail(`${what}: accepted`);
    } catch (e) {
      t.ok(e instanceof CsrError, `${what}: a CsrError`);
      t.match((e as Error).message, message, what);
    }
  }
});

t.test('the CA answers a bad CSR with CSR_ERROR and counts a parsing error', async (t) => {
  const ca = await testCa();
  const { key, spki } = ecPair();
  await t.rejects(ca.issuer.signCsr({ spiffeId: ID, csrPem: nodeCsr(key, spki, { tamper: 'signature' }) }), {
    code: 'CSR_ERROR', message: /signature does not verify/,
  });
  const text = await ca.registry.metrics();
  t.match(text, /citadel_server_csr_parsing_err_count 1/);
  t.match(text, /citadel_server_csr_sign_err_count\{error="CSR_ERROR"\} 1/);
});

t.test('RSA CSRs: public exponent 65537 is signed; 1 (forgeable without a private key) and 3 are refused before anything is minted', async (t) => {
  const registry = new Registry();
  const ca = await openCertificateAuthority({ dataDir: tempDir(t), trustDomain: 'cluster.local', registry, autoRotate: false });
  t.teardown(() => ca.stop());
  const f4 = rsaKeyWithExponent(65537);
  const issued = await ca.signCsr({ spiffeId: ID, csrPem: nodeCsr(f4.key, f4.spki) });
  t.equal(new X509Certificate(issued.certPem).publicKey.asymmetricKeyDetails?.publicExponent, 65537n, 'e = 65537 is certified');

  const forged = forgedExponentOneCsr({ uri: ID });
  t.ok(verify('sha256', csrInfo(forged.csrPem), createPublicKey({ key: forged.spki, format: 'der', type: 'spki' }), csrSignature(forged.csrPem)),
    'the e = 1 CSR really does verify: its "signature" was made without any key');
  const e3 = rsaKeyWithExponent(3);
  const cases: [string, string, RegExp][] = [
    ['e = 1', forged.csrPem, /^unsupported key: RSA public exponent 1 is not accepted \(only 65537\): with e = 1 anyone can forge its signatures$/],
    ['e = 3', nodeCsr(e3.key, e3.spki), /^unsupported key: RSA public exponent 3 is not accepted \(only 65537\)$/],
  ];
  for (const [what, csrPem, message] of cases) {
    t.throws(() => parseCsr(csrPem), { name: 'CsrError', message }, `${what}: parseCsr refuses`);
    await t.rejects(ca.signCsr({ spiffeId: ID, csrPem }), { code: 'CSR_ERROR', message }, `${what}: the CA refuses with CSR_ERROR`);
  }
  const text = await registry.metrics();
  t.equal(metricValue(text, 'citadel_server_success_cert_issuance_count'), 1, 'only the e = 65537 CSR was signed');
});

/** CertificationRequestInfo and the signature bits of a PEM CSR (for checking a forged one verifies). */
function csrInfo(pem: string): Buffer {
  const der = decodePem(pem, 'CERTIFICATE REQUEST')[0]!.der;
  const outer = readHeader(der, 0);
  const info = readHeader(der, outer.headerLength);
  return der.subarray(outer.headerLength, info.end);
}

function csrSignature(pem: string): Buffer {
  const der = decodePem(pem, 'CERTIFICATE REQUEST')[0]!.der;
  const outer = readHeader(der, 0);
  const info = readHeader(der, outer.headerLength);
  const alg = readHeader(der, info.end);
  const bits = readHeader(der, alg.end);
  return der.subarray(bits.end - bits.length + 1, bits.end);
}
