import t from 'tap';
import { connect, createServer, type PeerCertificate, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { openCertificateAuthority } from '../../src/ca/authority.js';
import type { IssuedKeyPair } from '../../src/ca/types.js';
import { makeCacerts } from './cacerts.js';
import { tempDir } from './helpers.js';

const SERVER_ID = 'spiffe://cluster.local/ns/shop/sa/server';
const CLIENT_ID = 'spiffe://cluster.local/ns/shop/sa/client';

/** The peer's SPIFFE ID: its single URI SAN, as Envoy's SPIFFE validator reads it. */
function spiffeIdOf(cert: PeerCertificate): string | undefined {
  const uris = (cert.subjectaltname ?? '').split(', ').filter((n) => n.startsWith('URI:'));
  return uris.length === 1 ? uris[0]!.slice(4) : undefined;
}

interface Outcome {
  clientSawServer?: string;
  serverSawClient?: string;
  clientError?: string;
  serverError?: string;
}

/** One real TLS 1.3 handshake over 127.0.0.1, both sides requiring and checking a certificate. */
async function handshake(server: { svid: IssuedKeyPair; roots: string }, client: { svid: IssuedKeyPair; roots: string; expectServer?: string }): Promise<Outcome> {
  const outcome: Outcome = {};
  // The server checks the chain itself (rejectUnauthorized: false + sock.authorized) so the
  // test can read OpenSSL's reason; an unauthorized client is dropped before any data.
  const srv = createServer({ key: server.svid.keyPem, cert: server.svid.chainPem, ca: server.roots, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.3' }, (sock) => {
    if (!sock.authorized) {
      outcome.serverError = String(sock.authorizationError);
      sock.destroy();
      return;
    }
    const id = spiffeIdOf(sock.getPeerCertificate());
    outcome.serverSawClient = id;
    sock.end(id === CLIENT_ID ? 'welcome' : 'wrong identity');
  });
  srv.on('tlsClientError', (e) => { outcome.serverError = e.message; });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as AddressInfo;
  try {
    await new Promise<void>((resolve) => {
      const sock: TLSSocket = connect({
        host: '127.0.0.1', port, key: client.svid.keyPem, cert: client.svid.chainPem, ca: client.roots, minVersion: 'TLSv1.3',
        // SPIFFE authenticates by ID, not host name: check the server's URI SAN instead.
        checkServerIdentity: (_host, cert) => {
          outcome.clientSawServer = spiffeIdOf(cert);
          return outcome.clientSawServer === (client.expectServer ?? SERVER_ID) ? undefined : new Error(`unexpected server identity ${outcome.clientSawServer}`);
        },
      });
      let data = '';
      sock.on('data', (d) => { data += d; });
      sock.on('error', (e) => { outcome.clientError = e.message; resolve(); });
      sock.on('close', () => { if (data !== 'welcome' && !outcome.clientError) outcome.clientError = `closed (${data || 'no data'})`; resolve(); });
    });
  } finally {
    await new Promise((r) => srv.close(r));
  }
  return outcome;
}

t.test('two meshd SVIDs complete mutual TLS, each side reading the other\'s SPIFFE ID', async (t) => {
  const ca = await openCertificateAuthority({ dataDir: tempDir(t), trustDomain: 'cluster.local', registry: new Registry() });
  const roots = ca.trustBundle().rootsPem.join('');
  for (const [serverKey, clientKey] of [['ec-p256', 'ec-p256'], ['rsa-2048', 'ec-p256'], ['ec-p256', 'rsa-2048']] as const) {
    const server = await ca.issue({ spiffeId: SERVER_ID, keyType: serverKey });
    const client = await ca.issue({ spiffeId: CLIENT_ID, keyType: clientKey });
    const outcome = await handshake({ svid: server, roots }, { svid: client, roots });
    t.same(outcome, { clientSawServer: SERVER_ID, serverSawClient: CLIENT_ID }, `${serverKey} server, ${clientKey} client`);
  }
});

t.test('certificates from another CA are refused on both sides', async (t) => {
  const ours = await openCertificateAuthority({ dataDir: tempDir(t), trustDomain: 'cluster.local', registry: new Registry() });
  const theirs = await openCertificateAuthority({ dataDir: tempDir(t), trustDomain: 'cluster.local', registry: new Registry() });
  const roots = ours.trustBundle().rootsPem.join('');
  const server = await ours.issue({ spiffeId: SERVER_ID });
  const impostor = await theirs.issue({ spiffeId: CLIENT_ID });
  const clientSide = await handshake({ svid: server, roots }, { svid: impostor, roots });
  t.equal(clientSide.serverSawClient, undefined, 'the server never accepted the foreign client');
  t.match(clientSide.serverError ?? '', /UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT/, `the server refused the chain: ${clientSide.serverError}`);
  t.ok(clientSide.clientError, `the client was turned away: ${clientSide.clientError}`);

  const fakeServer = await theirs.issue({ spiffeId: SERVER_ID });
  const client = await ours.issue({ spiffeId: CLIENT_ID });
  const serverSide = await handshake({ svid: fakeServer, roots: theirs.trustBundle().rootsPem.join('') }, { svid: client, roots });
  t.match(serverSide.clientError ?? '', /unable to (get local issuer|verify)|self.signed|certificate/i, `client refused: ${serverSide.clientError}`);
  t.equal(serverSide.clientSawServer, undefined, 'identity never reached: the chain failed first');

  const wrongPeer = await ours.issue({ spiffeId: 'spiffe://cluster.local/ns/shop/sa/not-the-server' });
  const idCheck = await handshake({ svid: wrongPeer, roots }, { svid: client, roots });
  t.match(idCheck.clientError ?? '', /unexpected server identity spiffe:\/\/cluster.local\/ns\/shop\/sa\/not-the-server/, 'a trusted chain with the wrong SPIFFE ID is refused too');
});

t.test('a plug-in CA\'s SVIDs handshake with their intermediate chain', async (t) => {
  const work = tempDir(t);
  const cacerts = makeCacerts(join(work, 'pki'), { levels: 2 });
  const ca = await openCertificateAuthority({ dataDir: join(work, 'data'), caDir: cacerts, trustDomain: 'cluster.local', registry: new Registry() });
  const roots = ca.trustBundle().rootsPem.join('');
  const outcome = await handshake({ svid: await ca.issue({ spiffeId: SERVER_ID }), roots }, { svid: await ca.issue({ spiffeId: CLIENT_ID }), roots });
  t.same(outcome, { clientSawServer: SERVER_ID, serverSawClient: CLIENT_ID });
});
