import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Where the bootstrap gets meshd's trust bundle (the roots Envoy trusts for the xds-grpc TLS).
 *
 * INTEGRATION POINT (CA): with no --root-cert, the roots are read from the data dir's
 * `root-cert.pem` (Istio's file name for the root a CA publishes, `cacerts` layout). When the
 * CA module exposes a read-only view of its bundle, this is the one place to switch to it.
 * `--root-cert FILE` always wins: a sidecar host without the data dir fetches the bundle from
 * meshd's /trust-bundle endpoint and passes the file.
 */
export const ROOT_CERT_FILE = 'root-cert.pem';

export interface TrustBundleSource {
  rootCertFile?: string;
  dataDir: string;
}

export async function readTrustBundlePem(source: TrustBundleSource, nowMs: number): Promise<string> {
  const file = source.rootCertFile ?? join(source.dataDir, ROOT_CERT_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const hint = source.rootCertFile === undefined
      ? ` (start \`meshd serve --data-dir ${source.dataDir}\` once to create the CA, or pass --root-cert with meshd's trust bundle)`
      : '';
    throw new Error(`cannot read meshd's trust bundle ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}${hint}`);
  }
  return normaliseBundle(text, file, nowMs);
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
