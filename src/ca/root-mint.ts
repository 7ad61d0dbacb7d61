import { X509Certificate } from 'node:crypto';
import { CaError } from './errors.js';
import { generateKey, type KeyType, type SigningKeyMaterial } from './keys.js';
import { toPem } from './pem.js';
import { randomSerial, systemRandom, type RandomSource } from './serial.js';
import { signTemplate } from './signer.js';
import { rootTemplate } from './templates.js';
import { validateSigningCertificate } from './svid-validator.js';

export interface MintedRoot {
  certDer: Buffer;
  certPem: string;
  key: SigningKeyMaterial;
}

export interface MintRootOptions {
  trustDomain: string;
  keyType: KeyType;
  ttlMs: number;
  now: number;
  random?: RandomSource;
}

/** A new self-signed SPIFFE root: fresh key, root template, signed, and validated like every leaf. */
export async function mintRoot(opts: MintRootOptions): Promise<MintedRoot> {
  const key = await generateKey(opts.keyType);
  const template = rootTemplate({
    trustDomain: opts.trustDomain,
    spki: key.spki,
    serial: randomSerial(opts.random ?? systemRandom),
    now: opts.now,
    ttlMs: opts.ttlMs,
  });
  const certDer = await signTemplate(template, key.privateKey, opts.keyType);
  const check = validateSigningCertificate(certDer, { trustDomain: opts.trustDomain, now: opts.now, selfSigned: true });
  const errors = check.valid ? [] : [...check.errors];
  const x509 = new X509Certificate(certDer);
  if (!x509.verify(x509.publicKey)) errors.push('self-signature does not verify');
  if (!x509.checkPrivateKey(key.privateKey)) errors.push('certificate does not match its key');
  if (errors.length > 0) throw new CaError('CERT_GEN_ERROR', `minted root failed validation: ${errors.join('; ')}`);
  return { certDer, certPem: toPem('CERTIFICATE', certDer), key };
}
