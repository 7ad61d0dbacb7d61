import { X509Certificate, createHash, createPrivateKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CaMaterialError, errorMessage } from './errors.js';
import { describeKey, keyTypeOf, rsaKeyProblem } from './keys.js';
import { certificatesToPem, decodePemOf } from './pem.js';
import { LocalKeySigner, signingCertificate } from './signer.js';
import { validateSigningCertificate } from './svid-validator.js';

/**
 * A plug-in CA in Istio's `cacerts` layout (istiod's ROOT_CA_DIR):
 *   ca-cert.pem     the signing certificate (usually an intermediate)
 *   ca-key.pem      its private key
 *   root-cert.pem   the trust root(s), possibly several
 *   cert-chain.pem  the chain from the signing certificate toward the root
 * Every check that fails says which check and which file.
 */
export const PLUGIN_FILES = ['ca-cert.pem', 'ca-key.pem', 'root-cert.pem', 'cert-chain.pem'] as const;

export interface PluginCa {
  signer: LocalKeySigner;
  /** root-cert.pem, one PEM per root. */
  rootsPem: string[];
  /** Fingerprint of the four files' contents: a hot reload compares it. */
  contentHash: string;
}

interface Cert {
  x509: X509Certificate;
  der: Buffer;
  where: string;
}

function fail(dir: string, file: string, message: string): never {
  const path = join(dir, file);
  throw new CaMaterialError(`plug-in CA ${path}: ${message}`, path);
}

function certs(dir: string, file: string, text: string): Cert[] {
  let ders: Buffer[];
  try {
    ders = decodePemOf(text, 'CERTIFICATE', file);
  } catch (e) {
    fail(dir, file, `not PEM certificates (${errorMessage(e)})`);
  }
  return ders.map((der, i) => {
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(der);
    } catch (e) {
      return fail(dir, file, `certificate ${i + 1} cannot be parsed (${errorMessage(e)})`);
    }
    // Every key this CA hands out as trusted or signs with meets the rule meshd applies to CSRs.
    const problem = rsaKeyProblem(x509.publicKey);
    if (problem) fail(dir, file, `certificate ${i + 1} (${(x509.subject || '(empty subject)').replace(/\n/g, ', ')}) has a refused key: ${problem}`);
    return { x509, der, where: `${file} certificate ${i + 1}` };
  });
}

const selfSigned = (c: Cert): boolean => c.x509.checkIssued(c.x509) && c.x509.verify(c.x509.publicKey);
const issued = (issuer: Cert, child: Cert): boolean => child.x509.checkIssued(issuer.x509) && child.x509.verify(issuer.x509.publicKey);
const subjectOf = (c: Cert): string => (c.x509.subject || '(empty subject)').replace(/\n/g, ', ');

export async function loadPluginCa(dir: string, trustDomain: string, now: number): Promise<PluginCa> {
  const texts = new Map<string, string>();
  for (const file of PLUGIN_FILES) {
    try {
      texts.set(file, await readFile(join(dir, file), 'utf8'));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      fail(dir, file, code === 'ENOENT'
        ? `file is missing (the cacerts layout needs ${PLUGIN_FILES.join(', ')})`
        : `cannot be read (${errorMessage(e)})`);
    }
  }
  const hash = createHash('sha256');
  for (const file of PLUGIN_FILES) hash.update(texts.get(file)!).update('\0');

  // 1. The signing certificate is a CA certificate, valid now.
  const signingCerts = certs(dir, 'ca-cert.pem', texts.get('ca-cert.pem')!);
  if (signingCerts.length !== 1) fail(dir, 'ca-cert.pem', `expected exactly one certificate, found ${signingCerts.length}`);
  const signing = signingCerts[0]!;
  const profile = validateSigningCertificate(signing.der, { trustDomain, now });
  if (!profile.valid) fail(dir, 'ca-cert.pem', `the signing certificate cannot sign SVIDs: ${profile.errors.join('; ')}`);

  // 2. The key is usable and belongs to that certificate.
  let key: KeyObject;
  try {
    key = createPrivateKey(texts.get('ca-key.pem')!);
  } catch (e) {
    fail(dir, 'ca-key.pem', `not a readable unencrypted private key (${errorMessage(e)})`);
  }
  const keyProblem = rsaKeyProblem(key);
  if (keyProblem) fail(dir, 'ca-key.pem', `refused key: ${keyProblem}`);
  const keyType = keyTypeOf(key);
  if (!keyType) fail(dir, 'ca-key.pem', `unsupported key ${describeKey(key)} (supported: EC P-256/P-384, RSA 2048/3072/4096)`);
  if (!signing.x509.checkPrivateKey(key)) fail(dir, 'ca-key.pem', 'the key does not match the certificate in ca-cert.pem');

  // 3. The roots are self-signed CA certificates.
  const roots = certs(dir, 'root-cert.pem', texts.get('root-cert.pem')!);
  for (const r of roots) {
    if (!r.x509.ca) fail(dir, 'root-cert.pem', `${r.where} (${subjectOf(r)}) is not a CA certificate`);
    if (!selfSigned(r)) fail(dir, 'root-cert.pem', `${r.where} (${subjectOf(r)}) is not self-signed`);
    if (now >= new Date(r.x509.validTo).getTime()) fail(dir, 'root-cert.pem', `${r.where} (${subjectOf(r)}) expired at ${r.x509.validTo}`);
  }
  const rootFingerprints = new Set(roots.map((r) => r.x509.fingerprint256));

  // 4. cert-chain.pem leads from ca-cert.pem, certificate by certificate, to one of those roots.
  const chainFile = certs(dir, 'cert-chain.pem', texts.get('cert-chain.pem')!);
  const intermediates: Cert[] = [];
  let current = signing;
  let anchor: Cert | undefined = roots.find((r) => r.x509.fingerprint256 === signing.x509.fingerprint256);
  for (const [i, c] of chainFile.entries()) {
    if (c.x509.fingerprint256 === signing.x509.fingerprint256) {
      if (i !== 0) fail(dir, 'cert-chain.pem', `the signing certificate appears as certificate ${i + 1}; it must come first or not at all`);
      continue;
    }
    if (anchor) fail(dir, 'cert-chain.pem', `certificate ${i + 1} (${subjectOf(c)}) comes after the root the chain already reached`);
    if (!issued(c, current)) {
      fail(dir, 'cert-chain.pem', `certificate ${i + 1} (${subjectOf(c)}) did not issue ${current === signing ? 'ca-cert.pem' : current.where} (issuer ${(current.x509.issuer || '').replace(/\n/g, ', ')})`);
    }
    if (!c.x509.ca) fail(dir, 'cert-chain.pem', `certificate ${i + 1} (${subjectOf(c)}) is not a CA certificate`);
    if (now >= new Date(c.x509.validTo).getTime()) fail(dir, 'cert-chain.pem', `certificate ${i + 1} (${subjectOf(c)}) expired at ${c.x509.validTo}`);
    if (selfSigned(c)) {
      if (!rootFingerprints.has(c.x509.fingerprint256)) fail(dir, 'cert-chain.pem', `ends in a self-signed root (${subjectOf(c)}) that is not in root-cert.pem`);
      anchor = c;
    } else {
      intermediates.push(c);
      current = c;
    }
  }
  if (!anchor) {
    anchor = roots.find((r) => issued(r, current));
    if (!anchor) {
      fail(dir, 'cert-chain.pem', `the chain does not lead to a root in root-cert.pem: nothing there issued ${current === signing ? 'ca-cert.pem' : current.where} (issuer ${(current.x509.issuer || '').replace(/\n/g, ', ')})`);
    }
  }

  const signingIsRoot = rootFingerprints.has(signing.x509.fingerprint256);
  const presented = signingIsRoot ? [] : [signing, ...intermediates];
  const chainNotAfter = Math.min(...[signing, ...intermediates, anchor].map((c) => new Date(c.x509.validTo).getTime()));
  return {
    signer: new LocalKeySigner(signingCertificate(signing.der, join(dir, 'ca-cert.pem')), key, keyType, certificatesToPem(presented.map((c) => c.der)), chainNotAfter),
    rootsPem: roots.map((r) => certificatesToPem([r.der])),
    contentHash: hash.digest('hex'),
  };
}
