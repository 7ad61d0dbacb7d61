import t from 'tap';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { Registry } from 'prom-client';
import { openCertificateAuthority, type CertificateAuthorityOptions } from '../../src/ca/authority.js';
import { CaMaterialError } from '../../src/ca/errors.js';
import { chownToNobody, openAsNobody, opensslVerify, rootForKey, rsaKeyWithExponent, tempDir, x509 } from './helpers.js';

const ID = 'spiffe://cluster.local/ns/default/sa/demo';

function open(dataDir: string, extra: Partial<CertificateAuthorityOptions> = {}) {
  return openCertificateAuthority({ dataDir, trustDomain: 'cluster.local', registry: new Registry(), ...extra });
}

/** Every file under dir with its bytes and mode: to prove a failed start touched nothing. */
function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      const st = statSync(p);
      if (st.isDirectory()) walk(p);
      else out[relative(dir, p)] = `${(st.mode & 0o777).toString(8)}:${readFileSync(p).toString('base64')}`;
    }
  };
  walk(dir);
  return out;
}

t.test('first start creates a root with a private key file; a restart loads the same root', async (t) => {
  const dir = tempDir(t);
  const first = await open(dir);
  const leaf = await first.issue({ spiffeId: ID });
  const caDir = join(dir, 'ca');
  t.equal(statSync(join(caDir, 'roots/root-1/ca-key.pem')).mode & 0o777, 0o600, 'key is 0600');
  t.ok(existsSync(join(caDir, 'roots/root-1/ca-cert.pem')));
  t.same(readdirSync(caDir).sort(), ['journal.json', 'roots'], 'no temporary or lock files left behind');
  const root = x509(first.trustBundle().rootsPem[0]!);
  t.equal(root.subject.split('\n')[0], 'O=cluster.local', 'subject O=<trust domain>');
  t.equal(root.subjectAltName, 'URI:spiffe://cluster.local');
  t.equal(root.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1', 'EC P-256 by default');
  const years = (new Date(root.validTo).getTime() - new Date(root.validFrom).getTime()) / (365.25 * 86_400_000);
  t.ok(years > 9.99 && years < 10.01, '10-year life');

  const before = snapshot(dir);
  const second = await open(dir);
  t.same(snapshot(dir), before, 'a restart writes nothing');
  t.same(second.trustBundle().rootsPem, first.trustBundle().rootsPem, 'same root after restart');
  t.ok(opensslVerify(dir, second.trustBundle().rootsPem.join(''), leaf.certPem).ok, 'an SVID from before the restart verifies after it');
  const after = await second.issue({ spiffeId: ID });
  t.equal(after.issuerFingerprint, leaf.issuerFingerprint);
});

t.test('root key type and TTL follow the options', async (t) => {
  const startedAt = Math.floor(Date.now() / 1000) * 1000;
  const ca = await open(tempDir(t), { rootKeyType: 'rsa-3072', rootTtlMs: 30 * 86_400_000 });
  const openedAt = Date.now();
  const root = x509(ca.trustBundle().rootsPem[0]!);
  t.equal(root.publicKey.asymmetricKeyDetails?.modulusLength, 3072);
  t.equal(ca.status().roots[0]!.keyType, 'rsa-3072');
  // notAfter = the moment of creation + 30 days, whole seconds; creation happened inside open().
  const notAfter = new Date(root.validTo).getTime();
  t.ok(notAfter >= startedAt + 30 * 86_400_000 && notAfter <= openedAt + 30 * 86_400_000, `notAfter ${root.validTo} is 30 days after the root was made`);
});

t.test('two processes starting on an empty data dir end up with one root', async (t) => {
  const dir = tempDir(t);
  const [a, b] = await Promise.all([open(dir), open(dir)]);
  t.same(a.trustBundle().rootsPem, b.trustBundle().rootsPem);
  t.same(readdirSync(join(dir, 'ca/roots')), ['root-1']);
});

t.test('corrupt, unreadable or mismatched material stops start-up, names the file, and is left untouched', async (t) => {
  const pristine = tempDir(t);
  await open(pristine);
  const other = tempDir(t);
  await open(other);
  const e3 = rsaKeyWithExponent(3);
  const e3Root = await rootForKey(e3.key, e3.spki);
  const cert = 'ca/roots/root-1/ca-cert.pem';
  const key = 'ca/roots/root-1/ca-key.pem';
  const journal = 'ca/journal.json';
  const cases: { what: string; file: string; damage: (dir: string) => void; message: RegExp; opts?: Partial<CertificateAuthorityOptions>; root?: boolean }[] = [
    { what: 'certificate is garbage', file: cert, damage: (d) => writeFileSync(join(d, cert), 'not a certificate'), message: /root certificate .* is corrupt: .*no PEM block/ },
    { what: 'certificate truncated', file: cert, damage: (d) => writeFileSync(join(d, cert), readFileSync(join(d, cert), 'utf8').slice(0, 300)), message: /is corrupt/ },
    { what: 'certificate bytes flipped', file: cert, damage: (d) => writeFileSync(join(d, cert), readFileSync(join(d, cert), 'utf8').replace(/\n([A-Za-z])/, (_m, c: string) => `\n${c === 'A' ? 'B' : 'A'}`)), message: /is not the one .*journal.json records|corrupt/ },
    { what: 'certificate missing', file: cert, damage: (d) => rmSync(join(d, cert)), message: /cannot read root certificate .*ca-cert.pem: file is missing/ },
    { what: 'certificate from another CA', file: cert, damage: (d) => cpSync(join(other, cert), join(d, cert)), message: /is not the one .*journal.json records/ },
    { what: 'key is garbage', file: key, damage: (d) => writeFileSync(join(d, key), '-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n'), message: /root key .*ca-key.pem is corrupt/ },
    { what: 'key from another CA', file: key, damage: (d) => cpSync(join(other, key), join(d, key)), message: /root key .*ca-key.pem does not match certificate .*ca-cert.pem/ },
    { what: 'key missing', file: key, damage: (d) => rmSync(join(d, key)), message: /cannot read root key .*ca-key.pem: file is missing/ },
    { what: 'key unreadable', file: key, damage: (d) => chmodSync(join(d, key), 0o000), message: /cannot read root key .*ca-key.pem: EACCES/, root: true },
    { what: 'key path is a directory', file: key, damage: (d) => { rmSync(join(d, key)); mkdirSync(join(d, key)); }, message: /cannot read root key .*ca-key.pem: EISDIR/ },
    {
      what: 'key and certificate with RSA public exponent 3', file: key, message: /root key .*ca-key.pem is refused: RSA public exponent 3 is not accepted \(only 65537\)/,
      damage: (d) => {
        writeFileSync(join(d, cert), e3Root.certPem);
        writeFileSync(join(d, key), e3Root.keyPem);
        const j = JSON.parse(readFileSync(join(d, journal), 'utf8')) as { roots: Array<{ keyType: string; fingerprint256: string }> };
        j.roots[0]!.keyType = 'rsa-2048';
        j.roots[0]!.fingerprint256 = e3Root.fingerprint256;
        writeFileSync(join(d, journal), JSON.stringify(j));
      },
    },
    { what: 'journal is not JSON', file: journal, damage: (d) => writeFileSync(join(d, journal), '{"version": 1, "roo'), message: /CA journal .*journal.json is corrupt: not valid JSON/ },
    { what: 'journal has a bad field', file: journal, damage: (d) => writeFileSync(join(d, journal), readFileSync(join(d, journal), 'utf8').replace(/"ec-p256"/, '"dsa-1024"')), message: /journal.json is corrupt: roots\[0\].keyType must be one of/ },
    { what: 'journal is for another trust domain', file: journal, damage: () => undefined, opts: { trustDomain: 'example.org' }, message: /journal.json belongs to trust domain "cluster.local", but this CA was started for "example.org"/ },
    // A journal missing beside root-1 alone is what a first start killed before the journal leaves: first-root-recovery.test.ts.
  ];
  for (const c of cases) {
    const dir = tempDir(t);
    cpSync(pristine, dir, { recursive: true });
    // Root reads any file: a permission case then opens the CA in a child process as nobody.
    const asNobody = c.root === true && process.getuid?.() === 0;
    if (asNobody) chownToNobody(dir);
    c.damage(dir);
    const before = snapshot(dir);
    const err = asNobody ? openAsNobody(dir) : await open(dir, c.opts).then(() => undefined, (e: unknown) => e);
    t.ok(asNobody ? (err as { name: string }).name === 'CaMaterialError' : err instanceof CaMaterialError, `${c.what}: refused${asNobody ? ' (opened as nobody)' : ''}`);
    t.match((err as Error).message, c.message, c.what);
    t.match((err as Error).message, join(dir, c.file), `${c.what}: names ${c.file}`);
    t.equal((err as CaMaterialError).file, join(dir, c.file));
    t.same(snapshot(dir), before, `${c.what}: files untouched`);
    if (existsSync(join(dir, key)) && statSync(join(dir, key)).isFile()) chmodSync(join(dir, key), 0o600); // so the teardown can remove it
  }
});
