import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, createPublicKey, createPrivateKey, generateKeyPairSync, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { systemClock, type Clock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/common/logger.js';
import { explicit, ia5Bytes, implicitPrimitive, octetString, oid, sequence, set, smallInteger, utf8String, bitString } from '../../src/ca/der.js';
import { SvidIssuer } from '../../src/ca/issuer.js';
import type { KeyType } from '../../src/ca/keys.js';
import { signatureAlgorithmFor } from '../../src/ca/keys.js';
import { CaMetrics } from '../../src/ca/metrics.js';
import { OID } from '../../src/ca/oids.js';
import { toPem } from '../../src/ca/pem.js';
import { mintRoot, type MintedRoot } from '../../src/ca/root-mint.js';
import { LocalKeySigner, signingCertificate, signTemplate, type Signer } from '../../src/ca/signer.js';
import { leafTemplate, rootTemplate } from '../../src/ca/templates.js';
import { randomSerial, systemRandom } from '../../src/ca/serial.js';
import type { MintPool } from '../../src/ca/mint-pool.js';
import { REPO, nodeScript, testModule } from '../helpers/repo.js';

export interface Tap {
  teardown(fn: () => void | Promise<void>): void;
}

export function tempDir(t: Tap, prefix = 'meshd-ca-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export function openssl(args: string[], input?: string): { status: number; stdout: string; stderr: string } {
  const r = spawnSync('openssl', args, { input, encoding: 'utf8' });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** `openssl verify -CAfile roots [-untrusted chain] leaf`; returns its output and exit status. */
export function opensslVerify(dir: string, rootsPem: string, leafPem: string, untrustedPem?: string, atMs?: number): { ok: boolean; output: string } {
  const name = Math.random().toString(36).slice(2);
  const roots = join(dir, `${name}-roots.pem`);
  const leaf = join(dir, `${name}-leaf.pem`);
  writeFileSync(roots, rootsPem);
  writeFileSync(leaf, leafPem);
  const args = ['verify', '-purpose', 'sslclient', '-CAfile', roots];
  if (atMs !== undefined) args.push('-attime', String(Math.floor(atMs / 1000)));
  if (untrustedPem) {
    const untrusted = join(dir, `${name}-untrusted.pem`);
    writeFileSync(untrusted, untrustedPem);
    args.push('-untrusted', untrusted);
  }
  args.push(leaf);
  const r = openssl(args);
  // Both purposes: an X509-SVID is for servers and clients alike.
  const server = openssl(args.map((a) => (a === 'sslclient' ? 'sslserver' : a)));
  return { ok: r.status === 0 && server.status === 0, output: r.stdout + r.stderr + server.stderr };
}

/** The extension block of `openssl x509 -text`, to read criticality OpenSSL's way. */
export function opensslText(pem: string): string {
  return openssl(['x509', '-noout', '-text'], pem).stdout;
}

export interface TestCa {
  root: MintedRoot;
  signer: Signer;
  issuer: SvidIssuer;
  registry: Registry;
  metrics: CaMetrics;
}

export async function testCa(opts: { keyType?: KeyType; trustDomain?: string; clock?: Clock; rootTtlMs?: number; signer?: (s: Signer) => Signer; mintPool?: MintPool } = {}): Promise<TestCa> {
  const clock = opts.clock ?? systemClock;
  const trustDomain = opts.trustDomain ?? 'cluster.local';
  const root = await mintRoot({ trustDomain, keyType: opts.keyType ?? 'ec-p256', ttlMs: opts.rootTtlMs ?? 365 * 86_400_000, now: clock.now() });
  const local = new LocalKeySigner(signingCertificate(root.certDer), root.key.privateKey, root.key.keyType);
  const signer = opts.signer ? opts.signer(local) : local;
  const registry = new Registry();
  const metrics = new CaMetrics(registry, clock);
  const issuer = new SvidIssuer({
    trustDomain, clock, logger: silentLogger(), metrics, defaultTtlMs: 86_400_000, maxTtlMs: 90 * 86_400_000,
    current: () => ({ signer, rootsPem: root.certPem }),
    mintPool: opts.mintPool,
  });
  return { root, signer, issuer, registry, metrics };
}

/** A CSR made with `openssl req` (key written next to it). */
export function opensslCsr(dir: string, keyArgs: string[], extra: string[] = []): { csrPem: string; keyPem: string } {
  const name = Math.random().toString(36).slice(2);
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  execFileSync('openssl', ['req', '-new', '-newkey', ...keyArgs, '-nodes', '-keyout', key, '-out', csr, '-subj', '/O=requested', ...extra], { stdio: 'pipe' });
  return { csrPem: execFileSync('cat', [csr]).toString(), keyPem: execFileSync('cat', [key]).toString() };
}

/**
 * A CSR built in-process with Node's crypto (RFC 2986), asking for a SAN of its choosing;
 * `tamper` lets a test corrupt the signature or the signed bytes.
 */
export function nodeCsr(key: KeyObject, spki: Buffer, opts: { uri?: string; tamper?: 'signature' | 'info' } = {}): string {
  const attrs = opts.uri
    ? explicit(0, sequence(oid(OID.extensionRequest), set(sequence(sequence(oid(OID.subjectAltName), octetString(sequence(implicitPrimitive(6, ia5Bytes(opts.uri)))))))))
    : explicit(0, Buffer.alloc(0));
  const subject = sequence(set(sequence(oid(OID.organizationName), utf8String('requested'))));
  const info = sequence(smallInteger(0), subject, spki, attrs);
  const keyType = key.asymmetricKeyType === 'ec' ? 'ec-p256' : 'rsa-2048';
  const alg = signatureAlgorithmFor(keyType);
  const signature = sign('sha256', info, key);
  if (opts.tamper === 'signature') signature[signature.length - 3]! ^= 0x01;
  const signedInfo = opts.tamper === 'info' ? sequence(smallInteger(0), sequence(set(sequence(oid(OID.organizationName), utf8String('Requested')))), spki, attrs) : info;
  return toPem('CERTIFICATE REQUEST', sequence(signedInfo, alg.der, bitString(signature)));
}

export function x509(pem: string): X509Certificate {
  return new X509Certificate(pem);
}

export function keyFromPem(pem: string): KeyObject {
  return createPrivateKey(pem);
}

export function metricValue(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `) || (labels === '' && l.startsWith(`${name} `)));
  return line === undefined ? undefined : Number(line.split(' ').pop());
}

/** An RSA 2048 key pair with the public exponent asked for (OpenSSL accepts any odd e ≥ 3). */
export function rsaKeyWithExponent(publicExponent: number): { key: KeyObject; spki: Buffer } {
  const pair = generateKeyPairSync('rsa', { modulusLength: 2048, publicExponent });
  return { key: pair.privateKey, spki: pair.publicKey.export({ type: 'spki', format: 'der' }) };
}

/** DigestInfo prefix for SHA-256 (RFC 8017 §9.2, note 1). */
const SHA256_DIGEST_INFO = Buffer.from('3031300d060960864801650304020105000420', 'hex');

/**
 * An RSA 2048 CSR with public exponent 1, made WITHOUT any private key: with e = 1,
 * s^e mod n = s, so the EMSA-PKCS1-v1_5 encoding of the hash (RFC 8017 §9.2) is itself a
 * signature that verifies. The modulus is borrowed from a real key, the exponent replaced.
 */
export function forgedExponentOneCsr(opts: { uri?: string } = {}): { csrPem: string; spki: Buffer } {
  const n = generateKeyPairSync('rsa', { modulusLength: 2048 }).publicKey.export({ format: 'jwk' }).n!;
  const spki = createPublicKey({ key: { kty: 'RSA', n, e: 'AQ' }, format: 'jwk' }).export({ type: 'spki', format: 'der' });
  const attrs = opts.uri
    ? explicit(0, sequence(oid(OID.extensionRequest), set(sequence(sequence(oid(OID.subjectAltName), octetString(sequence(implicitPrimitive(6, ia5Bytes(opts.uri)))))))))
    : explicit(0, Buffer.alloc(0));
  const info = sequence(smallInteger(0), sequence(), spki, attrs);
  const t = Buffer.concat([SHA256_DIGEST_INFO, createHash('sha256').update(info).digest()]);
  const em = Buffer.concat([Buffer.from([0, 1]), Buffer.alloc(256 - t.length - 3, 0xff), Buffer.from([0]), t]);
  const csr = sequence(info, signatureAlgorithmFor('rsa-2048').der, bitString(em));
  return { csrPem: toPem('CERTIFICATE REQUEST', csr), spki };
}

/**
 * A leaf SVID for any public key, signed directly with a root's key: what a CA that did not
 * check the key (meshd before it refused small RSA exponents) would have handed out.
 */
export async function leafSignedWithoutChecks(root: { certDer: Buffer; key: { privateKey: KeyObject; keyType: KeyType } }, spiffeId: string, spki: Buffer): Promise<string> {
  const template = leafTemplate({
    spiffeId, spki, keyType: 'rsa-2048', serial: randomSerial(systemRandom), now: Date.now(), ttlMs: 3_600_000,
    issuer: signingCertificate(root.certDer),
  });
  return toPem('CERTIFICATE', await signTemplate(template, root.key.privateKey, root.key.keyType));
}

/** A self-signed SPIFFE root over a key of the test's choosing (mintRoot always makes its own). */
export async function rootForKey(key: KeyObject, spki: Buffer, trustDomain = 'cluster.local'): Promise<{ certPem: string; keyPem: string; fingerprint256: string }> {
  const template = rootTemplate({ trustDomain, spki, serial: randomSerial(systemRandom), now: Date.now(), ttlMs: 365 * 86_400_000 });
  const der = await signTemplate(template, key, 'rsa-2048');
  return { certPem: toPem('CERTIFICATE', der), keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string, fingerprint256: signingCertificate(der).fingerprint256 };
}

/** The unprivileged user a permission case runs as when the tests run as root (root reads any file). */
const NOBODY = 65534;

export function chownToNobody(dir: string): void {
  execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, dir]);
}

/** openCertificateAuthority in a child process as nobody (setpriv, util-linux); its outcome as JSON. */
export function openAsNobody(dir: string): { ok: boolean; name?: string; message?: string; file?: string } {
  const out = execFileSync('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups',
    ...nodeScript(testModule(import.meta.url, 'fixtures/open-ca'), [dir]).flat()], { cwd: REPO, encoding: 'utf8', env: { ...process.env, HOME: '/tmp' } });
  return JSON.parse(out.trim().split('\n').pop()!) as { ok: boolean; name?: string; message?: string; file?: string };
}
