import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { X509Certificate, createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { ACCESS_LOG_NAMES } from '../../src/telemetry/access-log-config.js';
import { createCertificateCall, CsrCallError } from '../../src/csr/csr-client.js';
import { generateWorkloadKey } from '../../src/agent/workload-csr.js';
import { leafTemplate } from '../../src/ca/templates.js';
import { signingCertificate, signTemplate } from '../../src/ca/signer.js';
import { randomSerial, systemRandom } from '../../src/ca/serial.js';
import { toPem } from '../../src/ca/pem.js';
import { unverifiedClientCertificate } from '../../src/auth/tls-peer.js';
import { startTestMeshd, type TestMeshd } from './helpers/meshd.js';
import { EnvoyAlsStream, httpEntry, identifier } from '../telemetry/helpers/envoy-als.js';
import { RotatingServerCredentials } from '../../src/server/rotating-credentials.js';
import { parseExposition, total } from '../telemetry/helpers/exposition.js';

/**
 * A workload SVID issued by this mesh's CA is a credential wherever a bearer token is: the CSR
 * API, SDS, ADS, a per-type xDS service and the access-log service, over real TLS on meshd's
 * port, proving exactly the identity in the certificate. What is refused, on every service, and
 * named: an expired SVID, one from another CA, and a certificate naming meshd's own identity.
 */
const API = 'spiffe://cluster.local/ns/payments/sa/payments-api';
const WEB = 'spiffe://cluster.local/ns/shop/sa/shop-web';
const MESHD_ID = 'spiffe://cluster.local/ns/istio-system/sa/meshd';
const API_1 = 'sidecar~127.0.0.11~api-1.payments~payments.svc.cluster.local';

interface Cert { keyPem: string; chainPem: string }

const meshd = await startTestMeshd({ configDir: 'examples/config' });
const other = await startTestMeshd();
t.teardown(async () => { await meshd.close(); await other.close(); });

/** An SVID for `spiffeId` signed by meshd's own root, valid for an hour two days ago. */
async function expiredSvid(m: TestMeshd, spiffeId: string): Promise<Cert> {
  const rootDir = join(m.dataDir, 'ca/roots/root-1');
  const rootDer = new X509Certificate(readFileSync(join(rootDir, 'ca-cert.pem'))).raw;
  const rootKey = createPrivateKey(readFileSync(join(rootDir, 'ca-key.pem')));
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const template = leafTemplate({
    spiffeId, spki: publicKey.export({ type: 'spki', format: 'der' }), keyType: 'ec-p256', serial: randomSerial(systemRandom),
    now: Date.now() - 2 * 86_400_000, ttlMs: 3_600_000, issuer: signingCertificate(rootDer),
  });
  const der = await signTemplate(template, rootKey, 'ec-p256');
  return { keyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, chainPem: toPem('CERTIFICATE', der) };
}

function uriOf(pem: string): string {
  return (new X509Certificate(pem).subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4)).join(',');
}

/** The outcome of one call on each service with `cert` and no token: a status, or what was served. */
interface Outcomes { csr: grpc.StatusObject | string; sds: grpc.StatusObject | string; ads: grpc.StatusObject | string; cds: grpc.StatusObject | string; als: grpc.StatusObject }

async function streamOutcome(cert: Cert, service: 'sds' | 'ads' | 'cds', typeUrl: string, names: string[]): Promise<grpc.StatusObject | string> {
  const s = meshd.tlsClient(cert).sotw(service, { node: { id: API_1 } });
  s.subscribe(typeUrl, names);
  const served = s.next(15_000).then((r) => {
    s.end();
    if (typeUrl === TypeUrl.Secret) {
      const def = r.resources.find((x) => x.name === 'default')!;
      return uriOf(Buffer.from((def.decoded as any).tls_certificate.certificate_chain.inline_bytes as Buffer).toString());
    }
    return `${r.resources.length} clusters`;
  }, () => new Promise<never>(() => undefined));
  return Promise.race([s.status, served]);
}

async function outcomes(cert: Cert, alsNamespace = 'payments'): Promise<Outcomes> {
  const key = await generateWorkloadKey('ec-p256', WEB);
  const csr = createCertificateCall({
    address: `127.0.0.1:${meshd.ports.secureGrpc}`, trustedRootsPem: meshd.rootsPem(), serverSpiffeId: MESHD_ID, validitySeconds: 3600,
    clientCertificate: cert,
    // Asks for another identity: the certificate must name the caller's.
    csrPem: key.csrPem,
  }).then((r) => uriOf(r.certChain[0]!), (e: unknown) => {
    if (!(e instanceof CsrCallError)) throw e;
    return { code: e.code, details: e.details, metadata: new grpc.Metadata() };
  });
  const creds = grpc.credentials.createSsl(Buffer.from(meshd.rootsPem()), Buffer.from(cert.keyPem), Buffer.from(cert.chainPem), { checkServerIdentity: () => undefined });
  const client = new grpc.Client(`127.0.0.1:${meshd.ports.secureGrpc}`, creds, { 'grpc.ssl_target_name_override': 'meshd', 'grpc.use_local_subchannel_pool': 1 });
  const node = { id: API_1, metadata: { NAMESPACE: alsNamespace, WORKLOAD_NAME: 'api-1' } };
  const als = new EnvoyAlsStream(client, identifier(node, ACCESS_LOG_NAMES.inbound));
  await als.sendHttp([httpEntry({ responseCode: 200 })]);
  // meshd reads nothing before authentication: a half-close now ends an accepted stream with OK, a refused one with its status.
  const alsDone = als.end();
  const [csrOut, sds, ads, cds, alsOut] = await Promise.all([
    csr, streamOutcome(cert, 'sds', TypeUrl.Secret, ['default']), streamOutcome(cert, 'ads', TypeUrl.Cluster, []), streamOutcome(cert, 'cds', TypeUrl.Cluster, []), alsDone,
  ]);
  client.close();
  return { csr: csrOut, sds, ads, cds, als: { ...alsOut, metadata: new grpc.Metadata() } };
}

function issuedCount(text: string): number {
  return total(parseExposition(text), 'citadel_server_success_cert_issuance_count');
}

function refusedEverywhere(t: Test, got: Outcomes, code: grpc.status, details: RegExp, what: string): void {
  for (const [service, outcome] of Object.entries(got) as Array<[string, grpc.StatusObject | string]>) {
    if (typeof outcome === 'string') {
      t.fail(`${what}: ${service} served (${outcome}) instead of refusing`);
      continue;
    }
    t.equal(grpc.status[outcome.code], grpc.status[code], `${what}: ${service} ends with ${grpc.status[code]}`);
    t.match(outcome.details, details, `${what}: ${service} names the reason (${outcome.details})`);
  }
}

t.test('a still-valid workload SVID renews and serves on the CSR API, SDS, ADS, CDS and ALS, as its own identity only', async (t) => {
  const svid = await meshd.ca.issue({ spiffeId: API });
  const got = await outcomes(svid);
  t.equal(got.csr, API, 'CSR API: a CSR asking for shop-web is signed for the SVID\'s identity');
  t.equal(got.sds, API, 'SDS: the default secret is the SVID\'s identity');
  t.match(got.ads, /^[1-9]\d* clusters$/, 'ADS: the node of the SVID\'s WorkloadEntry gets its clusters');
  t.match(got.cds, /^[1-9]\d* clusters$/, 'per-type CDS too');
  t.equal(got.als.code, grpc.status.OK, `ALS: the stream is accepted (${got.als.details})`);

  // The same SVID cannot act for another workload: its identity, not the node, decides.
  const web = await meshd.ca.issue({ spiffeId: WEB });
  const foreignNode = await outcomes(web, 'payments');
  const ads = foreignNode.ads as grpc.StatusObject;
  t.equal(ads.code, grpc.status.PERMISSION_DENIED, 'a shop-web SVID naming payments/api-1\'s node is refused on ADS');
  t.equal(foreignNode.als.code, grpc.status.PERMISSION_DENIED, 'and on ALS (its node claims namespace payments)');
  t.match(foreignNode.als.details, /authenticated as spiffe:\/\/cluster\.local\/ns\/shop\/sa\/shop-web/);
});

t.test('an expired SVID from this mesh\'s CA is refused as expired on every service, counted against its identity, nothing minted', async (t) => {
  const before = issuedCount(await meshd.metricsText());
  const got = await outcomes(await expiredSvid(meshd, API));
  refusedEverywhere(t, got, grpc.status.UNAUTHENTICATED, /client certificate has expired \(notAfter /, 'expired SVID');
  const text = await meshd.metricsText();
  t.equal(issuedCount(text), before, 'nothing was minted');
  t.equal(total(parseExposition(text), 'meshd_authentication_failures_total', { reason: 'expired', namespace: 'payments', service_account: 'payments-api' }), 5,
    'five refusals counted with reason="expired" for payments/payments-api');
});

t.test('an expired SVID presented together with a valid token: the token decides (an agent falling back to its join token)', async (t) => {
  const expired = await expiredSvid(meshd, API);
  const key = await generateWorkloadKey('ec-p256', API);
  const r = await createCertificateCall({
    address: `127.0.0.1:${meshd.ports.secureGrpc}`, trustedRootsPem: meshd.rootsPem(), serverSpiffeId: MESHD_ID, validitySeconds: 3600,
    clientCertificate: expired, token: await meshd.token('payments', 'payments-api'), csrPem: key.csrPem,
  });
  t.equal(uriOf(r.certChain[0]!), API);
});

t.test('an SVID from another CA is refused as untrusted on every service, counted without an identity', async (t) => {
  const before = issuedCount(await meshd.metricsText());
  const foreign = await other.ca.issue({ spiffeId: API });
  const got = await outcomes(foreign);
  refusedEverywhere(t, got, grpc.status.UNAUTHENTICATED, /client certificate \(issuer .*\) is not signed by this mesh's CA/, 'foreign SVID');
  const samples = parseExposition(await meshd.metricsText());
  t.equal(issuedCount(await meshd.metricsText()), before, 'nothing was minted');
  t.equal(total(samples, 'meshd_authentication_failures_total', { reason: 'untrusted', namespace: '', service_account: '' }), 5,
    'a caller-chosen identity is never a label');
});

t.test('a certificate naming meshd\'s own identity is not a workload credential: PERMISSION_DENIED on every service', async (t) => {
  const imposter = await meshd.ca.issue({ spiffeId: MESHD_ID });
  const before = issuedCount(await meshd.metricsText());
  const got = await outcomes(imposter, 'istio-system');
  refusedEverywhere(t, got, grpc.status.PERMISSION_DENIED, /spiffe:\/\/cluster\.local\/ns\/istio-system\/sa\/meshd, meshd's own identity: it is not a workload credential/, 'meshd identity');
  t.equal(issuedCount(await meshd.metricsText()), before, 'nothing was minted');
});

t.test('the certificate TLS did not verify is found on a real grpc-js call (the only way to name an expired one)', async (t) => {
  // The socket path the authenticator reads is grpc-js internals: prove it is found on a real call.
  const expired = await expiredSvid(meshd, API);
  const server = new grpc.Server();
  let seen: Buffer | undefined;
  server.addService({ Echo: { path: '/test.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: (b: Buffer) => b, requestDeserialize: (b: Buffer) => b, responseSerialize: (b: Buffer) => b, responseDeserialize: (b: Buffer) => b } }, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => { seen = unverifiedClientCertificate(call); cb(null, Buffer.alloc(0)); },
  });
  const serving = await meshd.ca.issue({ spiffeId: MESHD_ID });
  // meshd's own TLS settings: a client certificate is requested, not required.
  const credentials = new RotatingServerCredentials({ keyPem: serving.keyPem, chainPem: serving.chainPem, rootsPem: meshd.rootsPem() });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', credentials, (e, p) => (e ? reject(e) : resolve(p))));
  t.teardown(() => server.forceShutdown());
  const creds = grpc.credentials.createSsl(Buffer.from(meshd.rootsPem()), Buffer.from(expired.keyPem), Buffer.from(expired.chainPem), { checkServerIdentity: () => undefined });
  const client = new grpc.Client(`127.0.0.1:${port}`, creds, { 'grpc.ssl_target_name_override': 'meshd' });
  t.teardown(() => client.close());
  await new Promise<void>((resolve, reject) => client.makeUnaryRequest('/test.Echo/Echo', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), (e) => (e ? reject(e) : resolve())));
  t.ok(seen, 'the unverified client certificate is found');
  t.equal(new X509Certificate(seen!).serialNumber, new X509Certificate(expired.chainPem).serialNumber, 'and it is the one the client presented');
});
