import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { systemClock } from '../../common/clock.js';
import { openCertificateAuthority } from '../../ca/index.js';
import { CA_SUBDIR, JOURNAL_FILE } from '../../ca/store.js';

/**
 * Where the bootstrap gets meshd's trust bundle (the roots Envoy trusts for the TLS to meshd),
 * first match wins:
 *  1. --root-cert FILE: any PEM bundle, e.g. fetched from meshd's /trust-bundle on a host that
 *     does not have the data dir;
 *  2. --ca-dir DIR: a plug-in CA in Istio's cacerts layout; its `root-cert.pem` is the bundle;
 *  3. the built-in CA in the data dir: every root currently in its bundle (all of them during a
 *     root rotation, so a sidecar bootstrapped mid-rotation trusts old and new).
 * Never creates CA material: a data dir without a CA is an error, not a new root.
 */
export const PLUGIN_ROOT_FILE = 'root-cert.pem';

export interface TrustBundleSource {
  rootCertFile?: string;
  caDir?: string;
  dataDir: string;
  trustDomain: string;
}

export async function readTrustBundlePem(source: TrustBundleSource, nowMs: number): Promise<string> {
  if (source.rootCertFile !== undefined) return normaliseBundle(await readText(source.rootCertFile, ''), source.rootCertFile, nowMs);
  if (source.caDir !== undefined) {
    const file = join(source.caDir, PLUGIN_ROOT_FILE);
    return normaliseBundle(await readText(file, ''), file, nowMs);
  }
  const journal = join(source.dataDir, CA_SUBDIR, JOURNAL_FILE);
  try {
    await readFile(journal);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? `no CA in ${source.dataDir} (${journal} does not exist)` : `cannot read ${journal}: ${(err as Error).message}`;
    throw new Error(`cannot read meshd's trust bundle: ${why}; start \`meshd serve --data-dir ${source.dataDir}\` once to create the CA, or pass --root-cert (meshd's /trust-bundle) or --ca-dir`);
  }
  // Opening an existing built-in CA only reads it (src/ca/store.ts: "reading never writes").
  const ca = await openCertificateAuthority({
    dataDir: source.dataDir,
    trustDomain: source.trustDomain,
    registry: new Registry(),
    clock: { now: () => nowMs, timer: systemClock.timer },
    autoRotate: false,
  });
  return normaliseBundle(ca.trustBundle().rootsPem.join('\n'), journal, nowMs);
}

async function readText(file: string, hint: string): Promise<string> {
  try {
    return await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`cannot read meshd's trust bundle ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}${hint}`);
  }
}

/**
 * Keeps only the CERTIFICATE blocks, each checked to be a parseable CA certificate that has
 * not expired, so Envoy is never handed a bundle it would reject (or one that trusts nothing).
 */
export function normaliseBundle(text: string, file: string, nowMs: number): string {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error(`${file} holds no PEM CERTIFICATE block`);
  const kept: string[] = [];
  blocks.forEach((block, i) => {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch (err) {
      throw new Error(`${file}: certificate ${i + 1} does not parse: ${(err as Error).message}`);
    }
    if (!cert.ca) throw new Error(`${file}: certificate ${i + 1} (${cert.subject || 'no subject'}) is not a CA certificate; pass meshd's root, not a leaf`);
    if (Date.parse(cert.validTo) <= nowMs) throw new Error(`${file}: certificate ${i + 1} expired at ${new Date(cert.validTo).toISOString()}`);
    kept.push(`${block}\n`);
  });
  return kept.join('');
}
