import { Client, Metadata, credentials } from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import type { MeshdCredential } from './credentials.js';

/**
 * A gRPC channel from the agent to meshd's TLS port for one stream: meshd verified by its SPIFFE
 * ID (URI SAN), and the agent's credential presented as Envoy would present it: the SVID as the
 * TLS client certificate, or the token as `authorization: Bearer …` (then no client certificate
 * at all, never an expired one). One channel per stream, so each stream carries the credential
 * current when it opened: a renewed SVID is used by the next stream without any cache to flush.
 */
export interface MeshdTarget {
  /** host:port of meshd's TLS gRPC port. */
  address: string;
  /** The SPIFFE ID meshd must present. */
  spiffeId: string;
}

function uriSans(cert: PeerCertificate): string[] {
  return (cert.subjectaltname ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4));
}

export function meshdChannel(target: MeshdTarget, rootsPem: string, credential: MeshdCredential): { client: Client; metadata: Metadata } {
  const svid = credential.kind === 'svid' ? credential : undefined;
  const creds = credentials.createSsl(
    Buffer.from(rootsPem),
    svid ? Buffer.from(svid.keyPem) : null,
    svid ? Buffer.from(svid.chainPem) : null,
    {
      checkServerIdentity: (_h, cert) => (uriSans(cert).includes(target.spiffeId)
        ? undefined
        : new Error(`meshd at ${target.address} presented ${cert.subjectaltname ?? 'no SAN'}, not ${target.spiffeId}`)),
    },
  );
  // SNI "meshd" (a DNS SAN of meshd's serving certificate); Node refuses IP literals as SNI.
  const client = new Client(target.address, creds, { 'grpc.ssl_target_name_override': 'meshd', 'grpc.use_local_subchannel_pool': 1 });
  const metadata = new Metadata();
  if (credential.kind === 'token') metadata.set('authorization', `Bearer ${credential.token}`);
  return { client, metadata };
}
