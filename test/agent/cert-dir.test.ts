import t from 'tap';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { lstat, mkdtemp, readdir, readFile, readlink, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CERT_CHAIN_FILE, DATA_LINK, KEY_FILE, ROOT_CERT_FILE, readCertificateSet, writeCertificateSet, type CertificateSet } from '../../src/agent/cert-dir.js';
import { generateWorkloadKey } from '../../src/agent/workload-csr.js';
import { openssl } from '../ca/helpers.js';

/**
 * The agent's output directory: three files that change together, Kubernetes projected-volume
 * style (versioned directory + `..data` symlink swapped by rename).
 */
async function selfSignedSet(i: number): Promise<CertificateSet> {
  const dir = await mkdtemp(join(tmpdir(), 'meshd-set-'));
  try {
    const key = await generateWorkloadKey('ec-p256', `spiffe://cluster.local/ns/a/sa/s${i}`);
    await writeFile(join(dir, 'key.pem'), key.keyPem);
    const r = openssl(['req', '-x509', '-new', '-key', join(dir, 'key.pem'), '-subj', `/CN=set-${i}`, '-days', '1']);
    if (r.status !== 0) throw new Error(r.stderr);
    return { certChainPem: r.stdout, keyPem: key.keyPem, rootCertPem: r.stdout };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function pairs(certPem: string | Buffer, keyPem: string | Buffer): boolean {
  const cert = new X509Certificate(certPem);
  const pub = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
  return cert.publicKey.export({ type: 'spki', format: 'der' }).equals(pub);
}

t.test('layout: versioned directory, ..data symlink, stable file symlinks, key 0600', async (t) => {
  const dir = join(await mkdtemp(join(tmpdir(), 'meshd-certdir-')), 'out');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const set = await selfSignedSet(1);
  const v1 = await writeCertificateSet(dir, set, Date.UTC(2026, 4, 1, 12, 0, 0));
  t.match(v1, /^\.\.2026_05_01_12_00_00\.\w+$/, 'kubelet-style version name');
  t.equal(await readlink(join(dir, DATA_LINK)), v1);
  for (const f of [CERT_CHAIN_FILE, KEY_FILE, ROOT_CERT_FILE]) {
    t.ok((await lstat(join(dir, f))).isSymbolicLink(), `${f} is a symlink`);
    t.equal(await readlink(join(dir, f)), `${DATA_LINK}/${f}`, `${f} → ..data/${f}`);
  }
  t.equal((await stat(join(dir, KEY_FILE))).mode & 0o777, 0o600, 'key.pem is 0600');
  t.equal(await readFile(join(dir, KEY_FILE), 'utf8'), set.keyPem);
  t.same(await readCertificateSet(dir), set, 'read back as one set');

  const v2 = await writeCertificateSet(dir, await selfSignedSet(2), Date.now());
  const v3 = await writeCertificateSet(dir, await selfSignedSet(3), Date.now());
  const versions = (await readdir(dir)).filter((e) => e.startsWith('..') && e !== DATA_LINK).sort();
  t.same(versions, [v2, v3].sort(), 'the current version and the one before it are kept; older ones removed');
  t.notOk((await readdir(dir)).some((e) => e.endsWith('_tmp')), 'no temporary symlink left behind');
});

t.test('a plain-file layout from another tool is replaced by the symlinked set', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'meshd-certdir-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, CERT_CHAIN_FILE), 'old');
  const set = await selfSignedSet(4);
  await writeCertificateSet(dir, set, Date.now());
  t.equal(await readlink(join(dir, CERT_CHAIN_FILE)), `${DATA_LINK}/${CERT_CHAIN_FILE}`);
  t.equal(await readFile(join(dir, CERT_CHAIN_FILE), 'utf8'), set.certChainPem);
});

t.test('readers hammering the files during swaps never see half a file, and a set read through ..data always pairs', async (t) => {
  const dir = join(await mkdtemp(join(tmpdir(), 'meshd-certdir-')), 'out');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const sets = await Promise.all([0, 1, 2, 3].map((i) => selfSignedSet(10 + i)));
  await writeCertificateSet(dir, sets[0]!, Date.now());
  // A fixed number of swaps, each awaiting a dozen file-system calls: the readers run in between.
  const SWAPS = 40;
  let swapping = false;
  let stop = false;
  const stats = { viaData: 0, viaDataMismatch: 0, grpcStyle: 0, grpcStyleMismatch: 0, partial: 0, duringSwaps: 0 };
  const readers = [
    (async () => {
      while (!stop) {
        if (swapping) stats.duringSwaps++;
        const s = await readCertificateSet(dir);
        if (s === undefined) { stats.partial++; continue; }
        stats.viaData++;
        if (!pairs(s.certChainPem, s.keyPem)) stats.viaDataMismatch++;
      }
    })(),
    // grpc-js's file_watcher: three readFile calls started together on the stable paths.
    (async () => {
      while (!stop) {
        if (swapping) stats.duringSwaps++;
        const [cert, key, root] = await Promise.allSettled([CERT_CHAIN_FILE, KEY_FILE, ROOT_CERT_FILE].map((f) => readFile(join(dir, f))));
        if (cert.status !== 'fulfilled' || key.status !== 'fulfilled' || root.status !== 'fulfilled') { stats.partial++; continue; }
        stats.grpcStyle++;
        try {
          new X509Certificate(root.value);
          if (!pairs(cert.value, key.value)) stats.grpcStyleMismatch++;
        } catch {
          stats.partial++;
        }
      }
    })(),
  ];
  for (let swaps = 1; swaps <= SWAPS; swaps++) {
    swapping = true;
    await writeCertificateSet(dir, sets[swaps % sets.length]!, Date.now());
    swapping = false;
    await new Promise((r) => setImmediate(r));
  }
  stop = true;
  await Promise.all(readers);
  t.ok(stats.duringSwaps > 0, `the readers raced the ${SWAPS} swaps: ${stats.duringSwaps} reads started while a swap was under way`);
  t.equal(stats.partial, 0, 'no reader ever saw a missing, empty or truncated file');
  t.equal(stats.viaDataMismatch, 0, `every one of ${stats.viaData} set reads through ..data pairs key and certificate`);
  t.comment(`grpc-style reads (three separate opens): ${stats.grpcStyle}, of which ${stats.grpcStyleMismatch} straddled a swap`);
});
