import t from 'tap';
import { createPrivateKey, createPublicKey, generateKeyPairSync, X509Certificate } from 'node:crypto';
import { namedBits, oid, smallInteger, time, unsignedInteger } from '../../src/ca/der.js';
import { generateP256, generateKey, keyIdentifier, keyTypeOf } from '../../src/ca/keys.js';
import { randomSerial, serialHex } from '../../src/ca/serial.js';
import { decodePem } from '../../src/ca/pem.js';
import { KeyUsageBit } from '../../src/ca/oids.js';

const hex = (b: Buffer): string => b.toString('hex');

t.test('INTEGERs are minimal and positive (the forge serial pitfall)', async (t) => {
  const table: [string, string][] = [
    ['00', '020100'],
    ['01', '020101'],
    ['7f', '02017f'],
    ['80', '02020080'],
    ['0000000003e8', '020203e8'],
    ['ff00', '020300ff00'],
    ['00ff', '020200ff'],
  ];
  for (const [input, want] of table) t.equal(hex(unsignedInteger(Buffer.from(input, 'hex'))), want, input);
  t.equal(hex(smallInteger(2)), '020102');
});

t.test('random serials are 128-bit, positive, minimal DER', async (t) => {
  const fixed = (bytes: string) => () => Buffer.from(bytes, 'hex');
  t.equal(hex(randomSerial(fixed('80'.padEnd(32, '0')))), '0080'.padEnd(34, '0'), 'top bit set gets a 00 prefix');
  t.equal(hex(randomSerial(fixed('0001'.padEnd(32, 'f')))), '01'.padEnd(30, 'f'), 'leading zeros dropped');
  let calls = 0;
  const zeroThenOne = () => (calls++ === 0 ? Buffer.alloc(16) : Buffer.from('00'.repeat(15) + '05', 'hex'));
  t.equal(hex(randomSerial(zeroThenOne)), '05', 'zero is never a serial');
  t.equal(serialHex(Buffer.from('0080ff', 'hex')), '80ff');
  for (let i = 0; i < 200; i++) {
    const s = randomSerial();
    t.ok(s.length >= 1 && s.length <= 17 && (s[0]! & 0x80) === 0, 'positive and at most 17 octets');
    if (s.length > 1 && s[0] === 0) t.ok((s[1]! & 0x80) !== 0, 'a leading zero only before a high bit');
  }
});

t.test('OIDs, named bits and times encode per X.690 and RFC 5280', async (t) => {
  t.equal(hex(oid('1.2.840.10045.4.3.2')), '06082a8648ce3d040302');
  t.equal(hex(oid('2.5.29.17')), '0603551d11');
  t.equal(hex(namedBits([KeyUsageBit.digitalSignature])), '03020780');
  t.equal(hex(namedBits([KeyUsageBit.digitalSignature, KeyUsageBit.keyEncipherment])), '030205a0');
  t.equal(hex(namedBits([KeyUsageBit.keyCertSign, KeyUsageBit.cRLSign])), '03020106');
  t.equal(time(Date.UTC(2049, 11, 31, 23, 59, 59, 999)).toString('latin1', 2), '491231235959Z', 'UTCTime through 2049');
  t.equal(time(Date.UTC(2049, 11, 31, 23, 59, 59))[0], 0x17);
  t.equal(time(Date.UTC(2050, 0, 1)).toString('latin1', 2), '20500101000000Z', 'GeneralizedTime from 2050');
  t.equal(time(Date.UTC(2050, 0, 1))[0], 0x18);
});

t.test('the P-256 fast path writes exactly the PKCS#8 and SPKI OpenSSL writes', async (t) => {
  // 1000 keys: about 98% of runs include a scalar with a leading zero octet, which must be padded.
  let mismatches = 0;
  for (let i = 0; i < 1000; i++) {
    const key = generateP256();
    const parsed = createPrivateKey(key.privateKeyPem);
    const samePkcs8 = parsed.export({ type: 'pkcs8', format: 'pem' }) === key.privateKeyPem;
    const sameSpki = hex(createPublicKey(parsed).export({ type: 'spki', format: 'der' })) === hex(key.spki);
    if (!samePkcs8 || !sameSpki || keyTypeOf(parsed) !== 'ec-p256') mismatches++;
  }
  t.equal(mismatches, 0, 'OpenSSL re-encodes every key to the same PKCS#8 PEM and SPKI');
  const fromOpenssl = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'der' });
  t.equal(fromOpenssl.length, decodePem(generateP256().privateKeyPem, 'k')[0]!.der.length, 'same layout as a key OpenSSL generated');
});

t.test('every key type generates and is recognised; key identifiers follow RFC 5280 method 1', async (t) => {
  for (const type of ['ec-p256', 'ec-p384', 'rsa-2048'] as const) {
    const key = await generateKey(type);
    t.equal(keyTypeOf(key.privateKey), type, type);
    t.equal(keyIdentifier(key.spki).length, 20);
  }
  // Cross-check the SKI against OpenSSL's own computation on a real certificate.
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(`${tmpdir()}/meshd-ski-`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', '/O=x',
    '-keyout', `${dir}/k.pem`, '-out', `${dir}/c.pem`, '-addext', 'subjectKeyIdentifier=hash'], { stdio: 'pipe' });
  const cert = new X509Certificate(execFileSync('cat', [`${dir}/c.pem`]));
  const text = execFileSync('openssl', ['x509', '-in', `${dir}/c.pem`, '-noout', '-ext', 'subjectKeyIdentifier']).toString();
  const skiHex = /([0-9A-F]{2}(:[0-9A-F]{2}){19})/.exec(text)![1]!.replace(/:/g, '').toLowerCase();
  t.equal(hex(keyIdentifier(cert.publicKey.export({ type: 'spki', format: 'der' }))), skiHex);
});
