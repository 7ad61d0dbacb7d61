/**
 * `npm run bench:ca`: X.509-SVID issuance rates against the native ceiling, in one run.
 *
 *   EC P-256, meshd makes the key  : ca.issue() end to end (keygen, template, sign,
 *                                    validate, PEM of chain and key) vs Node's own
 *                                    generateKeyPairSync + crypto.sign loop; and
 *                                    ca.issueBatch() of 32, as SDS mints for a fleet;
 *                                    the same on a mint worker
 *   RSA 2048 by CSR                : ca.signCsr() with an RSA 2048 root (Istio's default
 *                                    root key) vs Node's crypto.sign with that key
 *   openssl speed                  : the signature alone, from the openssl CLI
 *
 * Single-threaded figures (one request at a time), interleaved so that every ratio
 * compares figures measured side by side. Targets: EC issuance at least
 * 50% of the native keygen+sign ceiling; RSA CSR signing at least 75% of native RSA signing.
 */
import { execFileSync } from 'node:child_process';
import { createECDH, generateKeyPair, generateKeyPairSync, randomBytes, sign } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { Registry } from 'prom-client';
import { openCertificateAuthority, type ManagedCertificateAuthority } from '../src/ca/authority.js';
import { bitString, oid, sequence, set, smallInteger, utf8String, explicit } from '../src/ca/der.js';
import { OID } from '../src/ca/oids.js';
import { toPem } from '../src/ca/pem.js';

const SECONDS = Number(process.env.BENCH_SECONDS ?? 2);
const ID = 'spiffe://cluster.local/ns/bench/sa/workload';
/** SvidCache's batch size: the SVIDs asked for in one event-loop turn, up to 32. */
const BATCH = 32;

type Op = () => unknown;

/** Ops per second of `op` over about `ms` milliseconds (awaiting it when it returns a promise). */
async function slice(op: Op, ms: number): Promise<number> {
  let n = 0;
  const start = performance.now();
  let elapsed = 0;
  do {
    const r = op();
    if (r instanceof Promise) await r;
    n++;
    elapsed = performance.now() - start;
  } while (elapsed < ms);
  return n / (elapsed / 1000);
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

/**
 * Runs the ops in interleaved rounds (A B C, A B C, ...) rather than one after the other: on
 * a shared 2-vCPU machine the load drifts within seconds, and interleaving lets every ratio
 * compare figures taken side by side. Reports the median rate of each op.
 */
async function interleaved(ops: Record<string, Op>, rounds = 8): Promise<{ rates: Record<string, number>; perRound: Record<string, number[]> }> {
  const sliceMs = (SECONDS * 1000) / rounds;
  for (const op of Object.values(ops)) await slice(op, Math.min(300, sliceMs)); // warm-up (JIT, caches)
  const perRound: Record<string, number[]> = Object.fromEntries(Object.keys(ops).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) {
    for (const [name, op] of Object.entries(ops)) perRound[name]!.push(await slice(op, sliceMs));
  }
  const rates = Object.fromEntries(Object.entries(perRound).map(([k, v]) => [k, median(v)]));
  for (const [name, r] of Object.entries(rates)) line(name, r);
  return { rates, perRound };
}

/** Median over rounds of a/b: the ratio of figures measured side by side. */
function ratio(perRound: Record<string, number[]>, a: string, b: string): number {
  return median(perRound[a]!.map((x, i) => x / perRound[b]![i]!));
}

function line(name: string, perSecond: number, extra = ''): void {
  console.log(`  ${name.padEnd(58)} ${perSecond.toFixed(0).padStart(8)} /s  ${(1e6 / perSecond).toFixed(1).padStart(8)} µs${extra}`);
}

function pct(a: number, b = 1): string {
  return `${((100 * a) / b).toFixed(0)}%`;
}

/** A PKCS#10 CSR for an RSA key, built with Node's crypto (what an agent would send). */
function rsaCsr(privateKey: import('node:crypto').KeyObject, spki: Buffer): string {
  const info = sequence(smallInteger(0), sequence(set(sequence(oid(OID.organizationName), utf8String('bench')))), spki, explicit(0, Buffer.alloc(0)));
  return toPem('CERTIFICATE REQUEST', sequence(info, sequence(oid(OID.sha256WithRSAEncryption), Buffer.from([5, 0])), bitString(sign('sha256', info, privateKey))));
}

function opensslSpeed(): { ecdsaSign?: number; rsaSign?: number; raw: string } {
  const raw = execFileSync('openssl', ['speed', '-seconds', String(SECONDS), 'ecdsap256', 'rsa2048'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  const rsa = /^rsa\s+2048 bits\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/m.exec(raw);
  const ec = /256 bits ecdsa \(nistp256\)\s+\S+\s+\S+\s+([\d.]+)\s+([\d.]+)/m.exec(raw);
  return { ...(ec ? { ecdsaSign: Number(ec[1]) } : {}), ...(rsa ? { rsaSign: Number(rsa[1]) } : {}), raw };
}

async function openCa(dir: string, rootKeyType: 'ec-p256' | 'rsa-2048', mintWorkers = 0): Promise<ManagedCertificateAuthority> {
  return openCertificateAuthority({ dataDir: join(dir, `${rootKeyType}-${mintWorkers}`), trustDomain: 'cluster.local', registry: new Registry(), rootKeyType, mintWorkers });
}

/**
 * issueBatch() of BATCH on one mint worker, batch after batch, in SVIDs/s: what a worker
 * sustains, messages included. (How much event-loop time it saves is what bench:sds shows;
 * Node 20 has no per-thread CPU clock to show it here.)
 */
async function onMintWorker(ca: ManagedCertificateAuthority, batch: Array<{ spiffeId: string }>): Promise<number> {
  // Until its worker is online the CA mints inline: warm up first.
  for (const until = performance.now() + 1000; performance.now() < until;) await ca.issueBatch(batch);
  const start = performance.now();
  let svids = 0;
  while (performance.now() - start < SECONDS * 1000) svids += (await ca.issueBatch(batch)).length;
  return svids / ((performance.now() - start) / 1000);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'meshd-bench-ca-'));
  try {
    console.log(`meshd CA benchmark: Node ${process.version}, openssl ${execFileSync('openssl', ['version'], { encoding: 'utf8' }).trim()}`);
    console.log(`one request at a time on the event loop; ops interleaved in 8 rounds over ${SECONDS}s each; medians`);
    const tbs = randomBytes(520); // about the size of a leaf TBSCertificate

    console.log('\nEC P-256, meshd generates the key (the SDS path)');
    const ecCaKey = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    const ec = await openCa(dir, 'ec-p256');
    const E = {
      keygen: 'native: generateKeyPairSync P-256',
      ecdh: 'native: ECDH generateKeys P-256 (what meshd uses)',
      sign: 'native: crypto.sign ECDSA P-256 / SHA-256',
      ceiling: 'native ceiling: generateKeyPairSync + sign',
      meshd: 'meshd ca.issue(): keygen, sign, validate, PEM chain + key',
      batch: `meshd ca.issueBatch() of ${BATCH} (the SDS path; batches)`,
    };
    const batch = Array.from({ length: BATCH }, () => ({ spiffeId: ID }));
    const ecRun = await interleaved({
      [E.keygen]: () => generateKeyPairSync('ec', { namedCurve: 'P-256' }),
      [E.ecdh]: () => { const e = createECDH('prime256v1'); e.generateKeys(); return e.getPrivateKey(); },
      [E.sign]: () => sign('sha256', tbs, ecCaKey),
      [E.ceiling]: () => { generateKeyPairSync('ec', { namedCurve: 'P-256' }); return sign('sha256', tbs, ecCaKey); },
      [E.meshd]: () => ec.issue({ spiffeId: ID }),
      [E.batch]: () => ec.issueBatch(batch),
    });
    const perSvidInBatch = ecRun.rates[E.batch]! * BATCH;
    line(`  = per SVID, ${BATCH} minted phase by phase`, perSvidInBatch);
    const batchRatio = median(ecRun.perRound[E.batch]!.map((b, i) => (b * BATCH) / ecRun.perRound[E.ceiling]![i]!));
    const ecRatio = ratio(ecRun.perRound, E.meshd, E.ceiling);
    const stricter = median(ecRun.perRound[E.meshd]!.map((m, i) => m * (1 / ecRun.perRound[E.ecdh]![i]! + 1 / ecRun.perRound[E.sign]![i]!)));
    console.log(`  => ${pct(ecRatio)} of the native keygen+sign ceiling (target >= 50%); ${pct(stricter)} of a stricter ceiling built from ECDH keygen + sign`);
    console.log(`  => in batches of ${BATCH} (what SDS does when many proxies ask at once): ${pct(batchRatio)} of that ceiling`);

    console.log(`\nEC P-256 on a mint worker (meshd serve's default on 2 cores: --ca-workers 1)`);
    const pooled = await openCa(dir, 'ec-p256', 1);
    const worker = await onMintWorker(pooled, batch);
    pooled.stop();
    line(`meshd ca.issueBatch() of ${BATCH} on one mint worker, per SVID`, worker);
    console.log(`  => ${pct(worker, perSvidInBatch)} of the inline batch rate (messages to and from the worker included)`);

    console.log('\nRSA 2048 CSR signing (RSA 2048 root: Istio\'s default root key)');
    const rsa = await openCa(dir, 'rsa-2048');
    const rsaRootKey = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey;
    const generate = promisify(generateKeyPair);
    const csrs = await Promise.all(Array.from({ length: 8 }, async () => {
      const pair = await generate('rsa', { modulusLength: 2048 });
      return rsaCsr(pair.privateKey, pair.publicKey.export({ type: 'spki', format: 'der' }));
    }));
    let i = 0;
    let j = 0;
    const R = {
      sign: 'native: crypto.sign RSA 2048 PKCS#1 v1.5 / SHA-256',
      meshd: 'meshd ca.signCsr(): parse, verify CSR, sign, validate, PEM',
      onEc: 'for scale: the same RSA CSRs under the default EC P-256 root',
    };
    const rsaRun = await interleaved({
      [R.sign]: () => sign('sha256', tbs, rsaRootKey),
      [R.meshd]: () => rsa.signCsr({ spiffeId: ID, csrPem: csrs[i++ % csrs.length]! }),
      [R.onEc]: () => ec.signCsr({ spiffeId: ID, csrPem: csrs[j++ % csrs.length]! }),
    });
    const rsaRatio = ratio(rsaRun.perRound, R.meshd, R.sign);
    console.log(`  => ${pct(rsaRatio)} of the native RSA signature rate (target >= 75%)`);

    console.log('\nRSA 2048, meshd generates the key (keygen on the libuv pool, never on the event loop)');
    const loop = monitorEventLoopDelay({ resolution: 1 });
    loop.enable();
    const rsaKeyStart = performance.now();
    let rsaKeys = 0;
    while (performance.now() - rsaKeyStart < SECONDS * 1000) {
      await ec.issue({ spiffeId: ID, keyType: 'rsa-2048' });
      rsaKeys++;
    }
    loop.disable();
    line('meshd ca.issue({keyType: rsa-2048})', rsaKeys / ((performance.now() - rsaKeyStart) / 1000), `   (event loop delay max ${(loop.max / 1e6).toFixed(1)} ms)`);

    console.log(`\nopenssl speed -seconds ${SECONDS} ecdsap256 rsa2048 (the signature alone, OpenSSL's own loop)`);
    const speed = opensslSpeed();
    if (speed.ecdsaSign) line('openssl: ECDSA P-256 sign', speed.ecdsaSign);
    if (speed.rsaSign) line('openssl: RSA 2048 sign', speed.rsaSign);
    if (speed.ecdsaSign === undefined || speed.rsaSign === undefined) console.log(speed.raw);

    const ecIssue = ecRun.rates[E.meshd]!;
    const rsaCsrRate = rsaRun.rates[R.meshd]!;
    console.log('\nsummary');
    console.log(`  EC P-256 issuance    ${ecIssue.toFixed(0)}/s = ${pct(ecRatio)} of native generateKeyPairSync+sign (${ecRun.rates[E.ceiling]!.toFixed(0)}/s) [target 50%]; ${pct(stricter)} of ECDH keygen+sign`
      + `${speed.ecdsaSign ? `; ${pct(ecIssue, speed.ecdsaSign)} of openssl speed's bare ECDSA sign (${speed.ecdsaSign.toFixed(0)}/s)` : ''}`);
    console.log(`  EC P-256 in batches ${perSvidInBatch.toFixed(0)}/s = ${pct(batchRatio)} of the same ceiling (keys, then signatures, back to back)`);
    console.log(`  EC P-256 on a mint worker ${worker.toFixed(0)}/s = ${pct(worker, perSvidInBatch)} of the inline batch rate`);
    console.log(`  RSA 2048 CSR signing ${rsaCsrRate.toFixed(0)}/s = ${pct(rsaRatio)} of native RSA 2048 sign (${rsaRun.rates[R.sign]!.toFixed(0)}/s) [target 75%]`
      + `${speed.rsaSign ? `; ${pct(rsaCsrRate, speed.rsaSign)} of openssl speed's (${speed.rsaSign.toFixed(0)}/s)` : ''}`);
    console.log(`  load average at the end: ${loadavg().map((l) => l.toFixed(2)).join(' ')} (2 vCPU: above ~1 means other work shared the core)`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
