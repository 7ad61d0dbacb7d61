import type * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { generateWorkloadKey } from '../../../src/agent/workload-csr.js';
import { createCertificateCall, CsrCallError } from '../../../src/csr/csr-client.js';
import type { TestMeshd } from './meshd.js';

const MESHD_ID = 'spiffe://cluster.local/ns/istio-system/sa/meshd';

/** What a CreateCertificate call came to: the certificate's URI SAN, or the refusal's status and message. */
export type CsrOutcome = string | { code: grpc.status; details: string };

/**
 * One CreateCertificate on meshd's TLS port (meshd's SPIFFE ID checked) with a bearer token and a
 * fresh EC key whose CSR names `spiffeId`: the URI of the certificate meshd signed, or the refusal.
 */
export async function csrWithToken(meshd: Pick<TestMeshd, 'ports' | 'rootsPem'>, token: string, spiffeId: string): Promise<CsrOutcome> {
  const key = await generateWorkloadKey('ec-p256', spiffeId);
  return createCertificateCall({
    address: `127.0.0.1:${meshd.ports.secureGrpc}`, trustedRootsPem: meshd.rootsPem(), serverSpiffeId: MESHD_ID, validitySeconds: 3600, token, csrPem: key.csrPem,
  }).then(
    (r) => (new X509Certificate(r.certChain[0]!).subjectAltName ?? '').replace(/^URI:/, ''),
    (e: unknown) => { if (e instanceof CsrCallError) return { code: e.code, details: e.details }; throw e; },
  );
}
