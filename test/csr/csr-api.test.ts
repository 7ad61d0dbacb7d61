import t, { type Test } from 'tap';
import * as grpc from '@grpc/grpc-js';
import { X509Certificate } from 'node:crypto';
import { startTestMeshd, type TestMeshd } from '../e2e/helpers/meshd.js';
import { generateWorkloadKey } from '../../src/agent/workload-csr.js';
import { createCertificateCall, CsrCallError, type CsrCallOptions } from '../../src/csr/csr-client.js';
import { CREATE_CERTIFICATE_PATH, decodeCertificateResponse, encodeCertificateRequest } from '../../src/csr/definition.js';
import { TokenAuthority } from '../../src/auth/token-authority.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { systemClock } from '../../src/common/clock.js';
import { forgedExponentOneCsr, nodeCsr, rsaKeyWithExponent } from '../ca/helpers.js';

/**
 * istio.v1.auth.IstioCertificateService/CreateCertificate on meshd's TLS port, over real gRPC
 * and TLS, called as istio-agent calls it.
 */
const MESHD_ID = 'spiffe://cluster.local/ns/istio-system/sa/meshd';

function uriOf(pem: string): string {
  return (new X509Certificate(pem).subjectAltName ?? '').split(', ').filter((s) => s.startsWith('URI:')).map((s) => s.slice(4)).join(',');
}

async function call(meshd: TestMeshd, overrides: Partial<CsrCallOptions> & { csrPem: string }): Promise<string[]> {
  const r = await createCertificateCall({
    address: `127.0.0.1:${meshd.ports.secureGrpc}`,
    trustedRootsPem: meshd.rootsPem(),
    serverSpiffeId: MESHD_ID,
    validitySeconds: 3600,
    ...overrides,
  });
  return r.certChain;
}

async function refused(t: Test, p: Promise<unknown>, code: grpc.status, details: RegExp, what: string): Promise<void> {
  try {
    await p;
    t.fail(`${what}: expected ${grpc.status[code]}, the call succeeded`);
  } catch (e) {
    t.ok(e instanceof CsrCallError, `${what}: a gRPC status`);
    const err = e as CsrCallError;
    t.equal(grpc.status[err.code], grpc.status[code], `${what}: ${grpc.status[code]}`);
    t.match(err.details, details, `${what}: ${err.details}`);
  }
}

t.test('CreateCertificate', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const token = await meshd.token('shop', 'web');

  t.test('a CSR that asks for another identity is issued for the caller\'s proven identity; istiod\'s response layout', async (t) => {
    const key = await generateWorkloadKey('ec-p256', 'spiffe://cluster.local/ns/payments/sa/admin');
    const chain = await call(meshd, { token, csrPem: key.csrPem, validitySeconds: 600 });
    t.ok(chain.length >= 2, 'leaf … root bundle: at least two elements');
    t.equal(uriOf(chain[0]!), 'spiffe://cluster.local/ns/shop/sa/web', 'the token\'s identity, not the CSR\'s');
    const leaf = new X509Certificate(chain[0]!);
    t.ok(leaf.publicKey.export({ type: 'spki', format: 'der' }).equals(key.spki), 'certifies the CSR\'s key');
    t.equal(chain[chain.length - 1], meshd.rootsPem(), 'the whole root bundle as ONE last element');
    for (const element of chain) t.ok(element.endsWith('\n'), 'each element ends with a newline, as istiod writes them');
    const lifetime = Date.parse(leaf.validTo) - Date.now();
    t.ok(lifetime > 500_000 && lifetime <= 600_000, `validity_duration honoured (${Math.round(lifetime / 1000)} s left)`);
  });

  t.test('RSA 2048 CSRs are signed too, and validity_duration 0 gets the CA default', async (t) => {
    const key = await generateWorkloadKey('rsa-2048', 'spiffe://cluster.local/ns/shop/sa/web');
    const chain = await call(meshd, { token, csrPem: key.csrPem, validitySeconds: 0 });
    const leaf = new X509Certificate(chain[0]!);
    t.equal(leaf.publicKey.asymmetricKeyType, 'rsa');
    const hours = (Date.parse(leaf.validTo) - Date.now()) / 3_600_000;
    t.ok(hours > 23 && hours <= 24, `default lifetime 24h (${hours.toFixed(2)} h)`);
  });

  t.test('a client SVID authenticates like a token', async (t) => {
    const issued = await meshd.ca.issue({ spiffeId: 'spiffe://cluster.local/ns/billing/sa/batch' });
    const key = await generateWorkloadKey('ec-p256', 'spiffe://cluster.local/ns/billing/sa/batch');
    const chain = await call(meshd, { clientCertificate: { keyPem: issued.keyPem, chainPem: issued.chainPem }, csrPem: key.csrPem });
    t.equal(uriOf(chain[0]!), 'spiffe://cluster.local/ns/billing/sa/batch');
  });

  t.test('precise errors', async (t) => {
    const good = await generateWorkloadKey('ec-p256', 'spiffe://cluster.local/ns/shop/sa/web');
    await refused(t, call(meshd, { csrPem: good.csrPem }), grpc.status.UNAUTHENTICATED, /request authenticate failure: no credential/, 'no token');
    const dir = await mkdtemp(join(tmpdir(), 'meshd-forged-'));
    t.teardown(() => rm(dir, { recursive: true, force: true }));
    const otherAuthority = await TokenAuthority.open(dir, systemClock);
    const forged = (await otherAuthority.issue({ namespace: 'shop', serviceAccount: 'web' }, 3_600_000)).token;
    await refused(t, call(meshd, { token: forged, csrPem: good.csrPem }), grpc.status.UNAUTHENTICATED, /request authenticate failure/, 'token signed by another key');
    await refused(t, call(meshd, { token: `${token.slice(0, -4)}AAAA`, csrPem: good.csrPem }), grpc.status.UNAUTHENTICATED, /request authenticate failure/, 'tampered token');
    await refused(t, call(meshd, { token, csrPem: 'not a csr' }), grpc.status.INVALID_ARGUMENT, /\S/, 'garbage CSR');
    await refused(t, call(meshd, { token, csrPem: '' }), grpc.status.INVALID_ARGUMENT, /csr is empty/, 'empty CSR');
    const der = Buffer.from(good.csrPem.replace(/-----[A-Z ]+-----|\s/g, ''), 'base64');
    der[der.length - 1]! ^= 0x01; // the last byte of the signature
    const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
    await refused(t, call(meshd, { token, csrPem: tampered }), grpc.status.INVALID_ARGUMENT, /\S/, 'CSR whose signature does not verify');
    await refused(t, call(meshd, { token, csrPem: good.csrPem, validitySeconds: 400 * 86_400 }), grpc.status.INVALID_ARGUMENT, /greater than the max allowed TTL/, 'TTL above the maximum');
    await refused(t, call(meshd, { token, csrPem: good.csrPem, validitySeconds: -5 }), grpc.status.INVALID_ARGUMENT, /validity_duration -5/, 'negative TTL');
    await refused(t, call(meshd, { token, csrPem: good.csrPem, metadata: { ImpersonatedIdentity: 'spiffe://cluster.local/ns/x/sa/y' } }),
      grpc.status.PERMISSION_DENIED, /ImpersonatedIdentity is not allowed/, 'impersonation');
  });

  t.test('RSA public exponents: 65537 is signed; 1 and 3 get INVALID_ARGUMENT naming the exponent, and nothing is issued', async (t) => {
    const issuedCount = async (): Promise<number> => Number(/^citadel_server_success_cert_issuance_count\S* (\d+)/m.exec(await meshd.metricsText())?.[1] ?? 0);
    const f4 = rsaKeyWithExponent(65537);
    const chain = await call(meshd, { token, csrPem: nodeCsr(f4.key, f4.spki) });
    t.equal(new X509Certificate(chain[0]!).publicKey.asymmetricKeyDetails?.publicExponent, 65537n, 'e = 65537 certified');
    const before = await issuedCount();
    const e3 = rsaKeyWithExponent(3);
    await refused(t, call(meshd, { token, csrPem: nodeCsr(e3.key, e3.spki) }), grpc.status.INVALID_ARGUMENT,
      /^unsupported key: RSA public exponent 3 is not accepted \(only 65537\)$/, 'e = 3');
    await refused(t, call(meshd, { token, csrPem: forgedExponentOneCsr({ uri: 'spiffe://cluster.local/ns/shop/sa/web' }).csrPem }), grpc.status.INVALID_ARGUMENT,
      /^unsupported key: RSA public exponent 1 is not accepted \(only 65537\): with e = 1 anyone can forge its signatures$/, 'e = 1, forged without a private key');
    t.equal(await issuedCount(), before, 'no certificate issued for either');
  });

  t.test('an agent expecting another server identity refuses to talk to meshd', async (t) => {
    const key = await generateWorkloadKey('ec-p256', 'spiffe://cluster.local/ns/shop/sa/web');
    try {
      await call(meshd, { token, csrPem: key.csrPem, serverSpiffeId: 'spiffe://cluster.local/ns/evil/sa/meshd' });
      t.fail('connected to a server with the wrong identity');
    } catch (e) {
      t.equal((e as CsrCallError).code, grpc.status.UNAVAILABLE, `refused: ${(e as Error).message.slice(0, 160)}`);
    }
  });

  t.test('the CA\'s metrics count CSR API requests (no second set of counters)', async (t) => {
    const text = await meshd.metricsText();
    const count = Number(/^citadel_server_csr_count (\d+)/m.exec(text)?.[1]);
    const csrErrors = Number(/^citadel_server_csr_sign_err_count\{error="CSR_ERROR"\} (\d+)/m.exec(text)?.[1]);
    const ttlErrors = Number(/^citadel_server_csr_sign_err_count\{error="TTL_ERROR"\} (\d+)/m.exec(text)?.[1]);
    t.ok(count >= 5, `citadel_server_csr_count ${count}`);
    t.ok(csrErrors >= 2, `CSR_ERROR ${csrErrors}`);
    t.ok(ttlErrors >= 1, `TTL_ERROR ${ttlErrors}`);
    t.notMatch(text, /csr_api/, 'no separate CSR API counters');
  });

  t.test('the service is on the plaintext port too (token-authenticated) and bytes that are not a request get INVALID_ARGUMENT naming what they are not, never a crash', async (t) => {
    const client = new grpc.Client(`127.0.0.1:${meshd.ports.grpc}`, grpc.credentials.createInsecure());
    t.teardown(() => client.close());
    const key = await generateWorkloadKey('ec-p256', 'x');
    const md = new grpc.Metadata();
    md.set('authorization', `Bearer ${token}`);
    const ok = await new Promise<string[]>((resolve, reject) => client.makeUnaryRequest(CREATE_CERTIFICATE_PATH, encodeCertificateRequest, decodeCertificateResponse,
      { csr: key.csrPem, validitySeconds: 60, metadata: {} }, md, (err, r) => (err ? reject(err) : resolve(r!.certChain))));
    t.equal(uriOf(ok[0]!), 'spiffe://cluster.local/ns/shop/sa/web');
    const issued = async (): Promise<number> => Number(/^citadel_server_success_cert_issuance_count\S* (\d+)/m.exec(await meshd.metricsText())?.[1] ?? 0);
    const before = await issued();
    const garbage = await new Promise<grpc.ServiceError>((resolve) => client.makeUnaryRequest(CREATE_CERTIFICATE_PATH, (b: Buffer) => b, (b: Buffer) => b,
      Buffer.from([0xff, 0xff, 0xff]), md, (err) => resolve(err!)));
    t.equal(grpc.status[garbage.code], 'INVALID_ARGUMENT', `garbage: ${garbage.details}`);
    t.match(garbage.details, /^the request is not an istio\.v1\.auth\.IstioCertificateRequest: /);
    t.equal(await issued(), before, 'nothing issued');
  });
});
