import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { decodeStrictAny } from '../../src/envoy/strict-decode.js';
import { splitPemCertificates } from '../../src/ca/pem.js';
import { checkSpiffePeer, type BundlesByTrustDomain, type SpiffePeerCheck } from '../../src/svid/spiffe-peer.js';
import { tryParseSpiffeId } from '../../src/ca/spiffe-id.js';

/** A Secret resource body (Any) decoded strictly; throws with every error when Envoy's protos refuse it. */
export function strictSecret(body: Uint8Array): Record<string, any> {
  const r = decodeStrictAny(body);
  if (!r.valid) throw new Error(`secret refused by Envoy's protos: ${r.errors.join('; ')}`);
  if (r.warnings.length > 0) throw new Error(`secret decoded with warnings: ${r.warnings.join('; ')}`);
  return r.message.toJSON() as Record<string, any>;
}

const SPIFFE_VALIDATOR = 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.SPIFFECertValidatorConfig';

/** The SPIFFE validator's trust_domains of a validation-context Secret, as a map of PEM roots. */
export function spiffeBundlesOf(secret: Record<string, any>): Map<string, string[]> {
  const custom = secret.validation_context?.custom_validator_config;
  if (custom?.name !== 'envoy.tls.cert_validator.spiffe' || custom.typed_config?.['@type'] !== SPIFFE_VALIDATOR) {
    throw new Error(`secret ${secret.name} does not use Envoy's SPIFFE certificate validator`);
  }
  const out = new Map<string, string[]>();
  for (const td of custom.typed_config.trust_domains as Array<{ name: string; trust_bundle: { inline_bytes: string } }>) {
    out.set(td.name, splitPemCertificates(Buffer.from(td.trust_bundle.inline_bytes, 'base64').toString()));
  }
  return out;
}

export interface Credentials { keyPem: string; chainPem: string }

/**
 * A TLS server that requests a client certificate and judges it as Envoy's SPIFFE validator
 * would, over the real chain the handshake delivered; it answers "ok <id>" or closes.
 */
export async function spiffeTlsServer(own: Credentials, bundles: () => BundlesByTrustDomain): Promise<{ port: number; verdicts: SpiffePeerCheck[]; setCredentials(c: Credentials): void; close(): Promise<void> }> {
  const verdicts: SpiffePeerCheck[] = [];
  const server = tls.createServer({ key: own.keyPem, cert: own.chainPem, requestCert: true, rejectUnauthorized: false }, (socket) => {
    const chain: X509Certificate[] = [];
    for (let c = socket.getPeerX509Certificate(); c !== undefined; ) {
      chain.push(c);
      const next = c.issuerCertificate;
      c = next !== undefined && next.fingerprint256 !== c.fingerprint256 ? next : undefined;
    }
    const verdict = checkSpiffePeer(chain, bundles(), Date.now());
    verdicts.push(verdict);
    if (verdict.ok) socket.end(`ok ${verdict.spiffeId}\n`);
    else socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    verdicts,
    // New handshakes present the new SVID; open connections keep theirs (as Envoy's SDS update does).
    setCredentials: (c) => server.setSecureContext({ key: c.keyPem, cert: c.chainPem }),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/**
 * A client that expects the server to be `expectedId`: the server's chain must end at a root of
 * the expected ID's trust domain (only that domain's bundle is the `ca`), and its URI SAN must be
 * the ID. Resolves to the server's answer; rejects when the handshake fails.
 */
export async function spiffeTlsCall(port: number, own: Credentials, expectedId: string, bundles: BundlesByTrustDomain): Promise<string> {
  const id = tryParseSpiffeId(expectedId);
  if (!id.ok) throw new Error(id.error.message);
  const roots = bundles.get(id.value.trustDomain);
  if (!roots) throw new Error(`no bundle for trust domain ${id.value.trustDomain}`);
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1', port, key: own.keyPem, cert: own.chainPem, ca: roots.join(''), servername: 'workload',
      checkServerIdentity: (_host, cert) => ((cert.subjectaltname ?? '').split(', ').includes(`URI:${expectedId}`) ? undefined : new Error(`server is not ${expectedId}: ${cert.subjectaltname}`)),
    });
    let text = '';
    socket.setEncoding('utf8');
    socket.on('data', (d: string) => { text += d; });
    socket.on('end', () => (text.startsWith('ok ') ? resolve(text.trim()) : reject(new Error(`server closed without an answer`))));
    socket.on('close', () => { if (!text) reject(new Error('server closed the connection')); });
    socket.on('error', reject);
  });
}
