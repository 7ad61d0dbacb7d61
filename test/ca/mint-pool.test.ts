import t, { type Test } from 'tap';
import { createPrivateKey } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Registry } from 'prom-client';
import { openCertificateAuthority } from '../../src/ca/authority.js';
import { CaError } from '../../src/ca/errors.js';
import { MintPool } from '../../src/ca/mint-pool.js';
import { silentLogger } from '../../src/common/logger.js';
import { metricValue, opensslVerify, tempDir, testCa, x509 } from './helpers.js';

const ID = (i: number): string => `spiffe://cluster.local/ns/shop/sa/sa-${i}`;

/** Waits until a worker of the pool is online (a batch asked for before that is minted inline). */
async function untilReady(pool: MintPool): Promise<void> {
  for (let waited = 0; !pool.ready; waited += 10) {
    if (waited > 20_000) throw new Error('the mint worker did not come online in 20 s');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function onlinePool(t: Test, options: { workerUrl?: URL } = {}): Promise<MintPool> {
  const pool = new MintPool(1, silentLogger(), options);
  t.teardown(() => pool.close());
  await untilReady(pool);
  return pool;
}

for (const keyType of ['ec-p256', 'rsa-2048'] as const) {
  t.test(`with a ${keyType} root, leaves minted on a worker are SVIDs OpenSSL verifies, each with its own key`, async (t) => {
    const pool = await onlinePool(t);
    const ca = await testCa({ keyType, mintPool: pool });
    const requests = Array.from({ length: 40 }, (_, i) => ({ spiffeId: ID(i) }));
    requests[17] = { spiffeId: 'spiffe://elsewhere.example/ns/shop/sa/x' };
    const results = await ca.issuer.issueBatch(requests);
    t.equal(pool.minted.leaves, 39, `every leaf of the batch came from the worker (minted ${JSON.stringify(pool.minted)})`);
    t.match(results[17], CaError, 'a foreign trust domain fails alone (checked before the worker)');
    t.match((results[17] as Error).message, /not in this CA's trust domain/);
    const dir = tempDir(t);
    const serials = new Set<string>();
    const keys = new Set<string>();
    for (const [i, r] of results.entries()) {
      if (i === 17) continue;
      if (r instanceof Error) { t.fail(`request ${i}: ${r.message}`); continue; }
      const leaf = x509(r.certPem);
      t.equal(leaf.subjectAltName, `URI:${ID(i)}`, `request ${i} got its own identity`);
      t.ok(leaf.checkPrivateKey(createPrivateKey(r.keyPem)), `request ${i}: its key matches`);
      t.ok(leaf.verify(x509(ca.root.certPem).publicKey), `request ${i}: signed by the root`);
      t.equal(r.notAfter.getTime() - r.notBefore.getTime() > 23 * 3_600_000, true);
      serials.add(r.serialHex);
      keys.add(r.keyPem);
    }
    t.equal(serials.size, 39, 'distinct serials');
    t.equal(keys.size, 39, 'distinct keys');
    const first = results[0] as { certPem: string };
    const verdict = opensslVerify(dir, ca.root.certPem, first.certPem);
    t.ok(verdict.ok, `openssl verify: ${verdict.output.trim()}`);
    t.equal(metricValue(await ca.registry.metrics(), 'citadel_server_success_cert_issuance_count'), 39, 'counted as issued like inline leaves');
  });
}

t.test('a worker that dies with a batch costs a retry inline, not the batch; another worker is started', async (t) => {
  // A worker module that exits as soon as it is given anything.
  const crashing = join(tempDir(t), 'crashing-worker.mjs');
  writeFileSync(crashing, "import { parentPort } from 'node:worker_threads';\nparentPort.on('message', () => process.exit(3));\n");
  const pool = await onlinePool(t, { workerUrl: pathToFileURL(crashing) });
  const ca = await testCa({ mintPool: pool });
  const results = await ca.issuer.issueBatch(Array.from({ length: 5 }, (_, i) => ({ spiffeId: ID(i) })));
  t.equal(results.filter((r) => r instanceof Error).length, 0, 'every leaf was issued inline');
  t.equal(pool.minted.leaves, 0, 'none came from the dead worker');
  t.equal(x509((results[0] as { certPem: string }).certPem).subjectAltName, `URI:${ID(0)}`);
  await untilReady(pool);
  t.ok(pool.ready, 'a replacement worker came online');
});

t.test('a closed pool mints nothing; the issuer works inline', async (t) => {
  const pool = await onlinePool(t);
  await pool.close();
  t.equal(pool.ready, false);
  await t.rejects(pool.mint({}, () => { throw new Error('not asked'); }, Date.now(), []), /no mint worker is online/);
  const ca = await testCa({ mintPool: pool });
  const issued = await ca.issuer.issue({ spiffeId: ID(1) });
  t.equal(x509(issued.certPem).subjectAltName, `URI:${ID(1)}`);
});

t.test('the CA option is checked, and a CA with workers issues through them', async (t) => {
  await t.rejects(openCertificateAuthority({ dataDir: tempDir(t), trustDomain: 'cluster.local', registry: new Registry(), mintWorkers: -1 }),
    /mint workers must be a whole number from 0 to 64 \(got -1\)/);
  const ca = await openCertificateAuthority({ dataDir: tempDir(t), trustDomain: 'cluster.local', registry: new Registry(), mintWorkers: 1, autoRotate: false });
  t.teardown(() => ca.stop());
  const issued = await ca.issueBatch([{ spiffeId: ID(1) }, { spiffeId: ID(2) }]);
  t.equal(issued.filter((r) => r instanceof Error).length, 0);
});
