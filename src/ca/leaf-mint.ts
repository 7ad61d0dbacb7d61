import { toPem } from './pem.js';
import { leafTemplate, type CertificateTemplate, type IssuerInfo } from './templates.js';
import { validateLeafSvid } from './svid-validator.js';
import type { LeafKeyType } from './types.js';

/**
 * The CPU-bound part of issuing leaves, shared by the issuer (inline, any Signer) and the
 * mint workers (mint-worker.ts, a key held in this process): templates, signatures, reading
 * each certificate back against the X509-SVID rules, PEM. Each phase runs over the whole
 * batch (OpenSSL's curve tables stay in the CPU cache between signatures). Pure apart from
 * `sign`: identity checks, serials, the time and the signer are the caller's.
 */

export interface LeafJob {
  spiffeId: string;
  dnsNames: string[];
  ttlMs: number;
  /** DER INTEGER content, drawn by the caller. */
  serial: Buffer;
  /** The key to certify. */
  spki: Buffer;
}

export interface LeafBatchContext {
  trustDomain: string;
  issuer: IssuerInfo;
  /** Validity starts here (the caller's clock). */
  now: number;
  keyType: LeafKeyType;
}

export type LeafOutcome =
  | { ok: true; certPem: string; notBefore: number; notAfter: number }
  /** `invalid`: the certificate broke an X509-SVID rule when read back (a meshd bug; nothing is handed out). */
  | { ok: false; error: string; invalid?: string[] };

/** Signs templates in order; an item may fail alone. */
export type SignTemplates = (templates: CertificateTemplate[]) => Array<Buffer | Error> | Promise<Array<Buffer | Error>>;

export async function mintLeaves(jobs: readonly LeafJob[], ctx: LeafBatchContext, sign: SignTemplates): Promise<LeafOutcome[]> {
  const templates = jobs.map((job) => leafTemplate({
    spiffeId: job.spiffeId,
    dnsNames: job.dnsNames,
    spki: job.spki,
    keyType: ctx.keyType,
    serial: job.serial,
    now: ctx.now,
    ttlMs: job.ttlMs,
    issuer: ctx.issuer,
  }));
  const signed = await sign(templates);
  return jobs.map((job, i): LeafOutcome => {
    const der = signed[i];
    if (!Buffer.isBuffer(der)) return { ok: false, error: der?.message ?? 'the signer returned fewer certificates than templates' };
    const template = templates[i]!;
    let check;
    try {
      check = validateLeafSvid(der, {
        spiffeId: job.spiffeId,
        trustDomain: ctx.trustDomain,
        dnsNames: job.dnsNames,
        spki: job.spki,
        rsa: ctx.keyType === 'rsa-2048',
        issuer: ctx.issuer,
        now: ctx.now,
      });
    } catch (e) {
      return { ok: false, error: `reading the minted certificate back failed: ${e instanceof Error ? e.message : String(e)}` };
    }
    if (!check.valid) return { ok: false, error: `minted certificate failed X509-SVID validation: ${check.errors.join('; ')}`, invalid: check.errors };
    return { ok: true, certPem: toPem('CERTIFICATE', der), notBefore: template.notBefore, notAfter: template.notAfter };
  });
}
