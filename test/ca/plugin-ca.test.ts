import t from 'tap';
import { cpSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { generateKeyPairSync } from 'node:crypto';
import { openCertificateAuthority } from '../../src/ca/authority.js';
import { CaMaterialError } from '../../src/ca/errors.js';
import { makeCacerts, makeIntermediate, makeRoot } from './cacerts.js';
import { metricValue, nodeCsr, opensslCsr, opensslVerify, tempDir, x509 } from './helpers.js';

const ID = 'spiffe://cluster.local/ns/payments/sa/api';

function open(caDir: string, dataDir: string, registry = new Registry()) {
  return openCertificateAuthority({ dataDir, caDir, trustDomain: 'cluster.local', registry });
}

for (const levels of [1, 2] as const) {
  t.test(`a plug-in CA with ${levels} intermediate(s) signs SVIDs that verify with the chain it hands out`, async (t) => {
    const work = tempDir(t);
    const cacerts = makeCacerts(join(work, 'pki'), { levels, intermediateKey: levels === 1 ? 'rsa' : 'ec' });
    const registry = new Registry();
    const ca = await open(cacerts, join(work, 'data'), registry);
    t.equal(ca.mode, 'plug-in');
    const rootPem = readFileSync(join(cacerts, 'root-cert.pem'), 'utf8');
    t.same(ca.trustBundle().rootsPem, [rootPem], 'the bundle is root-cert.pem');
    t.notOk(existsSync(join(work, 'data/ca/roots')), 'no built-in root generated');

    const viaKey = await ca.issue({ spiffeId: ID });
    const pair = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const viaCsr = await ca.signCsr({ spiffeId: ID, csrPem: nodeCsr(pair.privateKey, pair.publicKey.export({ type: 'spki', format: 'der' })) });
    const viaOpenssl = await ca.signCsr({ spiffeId: ID, csrPem: opensslCsr(work, ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']).csrPem });
    for (const issued of [viaKey, viaCsr, viaOpenssl]) {
      const intermediates = issued.chainPem.slice(issued.certPem.length);
      t.equal(intermediates.match(/BEGIN CERTIFICATE/g)?.length, levels, 'chain: leaf then every intermediate, no root');
      t.ok(issued.chainPem.startsWith(issued.certPem));
      const v = opensslVerify(work, issued.rootsPem, issued.certPem, intermediates);
      t.ok(v.ok, `openssl verify -untrusted chain: ${v.output.trim()}`);
      t.notOk(opensslVerify(work, issued.rootsPem, issued.certPem).ok, 'and not without the intermediates');
      t.equal(x509(issued.certPem).subjectAltName, `URI:${ID}`);
      t.equal(issued.issuerFingerprint, x509(readFileSync(join(cacerts, 'ca-cert.pem'), 'utf8')).fingerprint256.replace(/:/g, '').toLowerCase());
    }
    const text = await registry.metrics();
    const chainExpiry = metricValue(text, 'citadel_server_cert_chain_expiry_timestamp')!;
    // The intermediates are made one after another with the same lifetime, so the upper one may
    // end a second earlier than ca-cert.pem: the chain expires with the first of them.
    const chainPems = readFileSync(join(cacerts, 'cert-chain.pem'), 'utf8').match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g)!;
    const firstNotAfter = Math.min(...chainPems.map((pem) => Math.floor(new Date(x509(pem).validTo).getTime() / 1000)));
    t.equal(chainExpiry, firstNotAfter, 'chain expiry = the earliest notAfter in cert-chain.pem');
    t.ok(metricValue(text, 'citadel_server_root_cert_expiry_timestamp')! > chainExpiry);
    t.equal(viaKey.notAfter.getTime() <= chainExpiry * 1000, true);
    await t.rejects(ca.prepareNextRoot(), /not meshd's to do for a plug-in CA/);
  });
}

t.test('a cacerts directory whose signing key has RSA public exponent 3 is refused, naming the file and the exponent, and nothing is written', async (t) => {
  const work = tempDir(t);
  const cacerts = makeCacerts(join(work, 'pki'), { intermediateKey: 'rsa-e3' });
  t.equal(x509(readFileSync(join(cacerts, 'ca-cert.pem'), 'utf8')).publicKey.asymmetricKeyDetails?.publicExponent, 3n, 'openssl made an e = 3 key');
  const data = join(work, 'data');
  const err = await open(cacerts, data).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof CaMaterialError, 'refused');
  t.match((err as Error).message, `plug-in CA ${join(cacerts, 'ca-cert.pem')}: certificate 1 (O=Example, CN=signing) has a refused key: RSA public exponent 3 is not accepted (only 65537)`);
  t.notOk(existsSync(data), 'nothing written: not even the data dir');

  // The key file alone says the same when the certificate beside it is not the problem's first witness.
  const keyOnly = join(work, 'key-only');
  cpSync(makeCacerts(join(work, 'pki-good')), keyOnly, { recursive: true });
  writeFileSync(join(keyOnly, 'ca-key.pem'), readFileSync(join(cacerts, 'ca-key.pem')));
  await t.rejects(open(keyOnly, data), { message: `plug-in CA ${join(keyOnly, 'ca-key.pem')}: refused key: RSA public exponent 3 is not accepted (only 65537)` });
  t.notOk(existsSync(data), 'still nothing written');
});

t.test('each failed check of a cacerts directory says which check and which file', async (t) => {
  const work = tempDir(t);
  const good = makeCacerts(join(work, 'pki'));
  makeRoot(join(work, 'pki'), 'stranger');
  makeIntermediate(join(work, 'pki'), 'leafish', 'root', { ext: 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n' });
  makeIntermediate(join(work, 'pki'), 'foreign', 'root', { ext: 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign\nsubjectAltName=URI:spiffe://other.domain\n' });
  const pki = (f: string) => readFileSync(join(work, 'pki', f), 'utf8');
  const cases: [string, string, (d: string) => void, RegExp][] = [
    ['cert-chain.pem missing', 'cert-chain.pem', (d) => rmSync(join(d, 'cert-chain.pem')), /file is missing \(the cacerts layout needs ca-cert.pem, ca-key.pem, root-cert.pem, cert-chain.pem\)/],
    ['ca-key.pem missing', 'ca-key.pem', (d) => rmSync(join(d, 'ca-key.pem')), /file is missing/],
    ['signing cert is not a CA', 'ca-cert.pem', (d) => { writeFileSync(join(d, 'ca-cert.pem'), pki('leafish-cert.pem')); writeFileSync(join(d, 'ca-key.pem'), pki('leafish-key.pem')); }, /cannot sign SVIDs: basicConstraints cA is not TRUE: not a CA certificate/],
    ['signing cert for another trust domain', 'ca-cert.pem', (d) => { writeFileSync(join(d, 'ca-cert.pem'), pki('foreign-cert.pem')); writeFileSync(join(d, 'ca-key.pem'), pki('foreign-key.pem')); }, /spiffe:\/\/other.domain is not in trust domain cluster.local/],
    ['key does not match', 'ca-key.pem', (d) => writeFileSync(join(d, 'ca-key.pem'), pki('stranger-key.pem')), /the key does not match the certificate in ca-cert.pem/],
    ['key is garbage', 'ca-key.pem', (d) => writeFileSync(join(d, 'ca-key.pem'), 'garbage'), /not a readable unencrypted private key/],
    ['root-cert.pem is garbage', 'root-cert.pem', (d) => writeFileSync(join(d, 'root-cert.pem'), 'garbage'), /not PEM certificates/],
    ['root-cert.pem holds a non-root', 'root-cert.pem', (d) => writeFileSync(join(d, 'root-cert.pem'), pki('signing-cert.pem')), /is not self-signed/],
    ['chain leads to a root not in root-cert.pem', 'cert-chain.pem', (d) => writeFileSync(join(d, 'root-cert.pem'), pki('stranger-cert.pem')), /ends in a self-signed root .* that is not in root-cert.pem/],
    ['chain without its root, wrong root file', 'cert-chain.pem', (d) => { writeFileSync(join(d, 'cert-chain.pem'), pki('signing-cert.pem')); writeFileSync(join(d, 'root-cert.pem'), pki('stranger-cert.pem')); }, /does not lead to a root in root-cert.pem: nothing there issued ca-cert.pem/],
    ['chain holds an unrelated certificate', 'cert-chain.pem', (d) => writeFileSync(join(d, 'cert-chain.pem'), pki('signing-cert.pem') + pki('stranger-cert.pem')), /certificate 2 \(.*stranger.*\) did not issue ca-cert.pem/],
  ];
  for (const [what, file, damage, message] of cases) {
    const dir = join(work, what.replace(/\W+/g, '-'));
    cpSync(good, dir, { recursive: true });
    damage(dir);
    const err = await open(dir, join(work, 'data')).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof CaMaterialError, `${what}: refused`);
    t.match((err as Error).message, message, what);
    t.match((err as Error).message, `plug-in CA ${join(dir, file)}:`, `${what}: names ${file}`);
  }
  t.ok(await open(good, join(work, 'data')), 'the intact directory loads (each failure above was the damage)');
});

t.test('a new intermediate under the same root is picked up on refresh; a broken update keeps the old one', async (t) => {
  const work = tempDir(t);
  const cacerts = makeCacerts(join(work, 'pki'));
  const ca = await open(cacerts, join(work, 'data'));
  const before = (await ca.issue({ spiffeId: ID })).issuerFingerprint;
  makeIntermediate(join(work, 'pki'), 'next', 'root');
  writeFileSync(join(cacerts, 'ca-key.pem'), readFileSync(join(work, 'pki/next-key.pem')));
  await t.rejects(ca.refresh(), /the key does not match the certificate in ca-cert.pem/, 'half-updated directory refused');
  t.equal((await ca.issue({ spiffeId: ID })).issuerFingerprint, before, 'still signing with the last good intermediate');
  const next = readFileSync(join(work, 'pki/next-cert.pem'), 'utf8');
  writeFileSync(join(cacerts, 'ca-cert.pem'), next);
  writeFileSync(join(cacerts, 'cert-chain.pem'), next + readFileSync(join(cacerts, 'root-cert.pem'), 'utf8'));
  await ca.refresh();
  const after = await ca.issue({ spiffeId: ID });
  t.not(after.issuerFingerprint, before, 'new intermediate in use');
  t.ok(opensslVerify(work, after.rootsPem, after.certPem, after.chainPem.slice(after.certPem.length)).ok);
  t.equal(ca.trustBundle().sequence, 1, 'same roots: same spiffe_sequence');
});
