import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { generateWorkloadKey } from '../../src/agent/workload-csr.js';
import { createCertificateCall } from '../../src/csr/csr-client.js';
import { startTestMeshd, bearer } from '../e2e/helpers/meshd.js';
import { parseExposition, select, run } from '../telemetry/helpers/exposition.js';
import { Registry } from 'prom-client';
import { ManualClock } from '../../src/common/clock.js';
import { WorkloadCertExpiry } from '../../src/svid/workload-cert-expiry.js';
import { repoPath } from '../helpers/repo.js';

/**
 * Per identity, when the first certificate a workload holds runs out: from meshd's own SDS
 * issuance (connected proxies) and from the CSR API (agents, renewing with their SVID), on a real
 * meshd over real TLS; and the alert rules that read it, checked and unit-tested by promtool.
 */
const MESHD_ID = 'spiffe://cluster.local/ns/istio-system/sa/meshd';
const API = 'spiffe://cluster.local/ns/payments/sa/payments-api';
const repo = (p: string): string => repoPath(p);

const meshd = await startTestMeshd();
t.teardown(() => meshd.close());

async function expiry(source: string): Promise<Array<{ labels: Record<string, string>; value: number }>> {
  const samples = parseExposition(await meshd.metricsText());
  return select(samples, 'meshd_workload_cert_expiry_timestamp_seconds', { source }).map((s) => ({ labels: s.labels, value: s.value }));
}

async function issued(source: string): Promise<number[]> {
  return select(parseExposition(await meshd.metricsText()), 'meshd_workload_cert_issued_timestamp_seconds', { source }).map((s) => s.value);
}

t.test('source="csr": a token-issued certificate appears; its renewal with that SVID replaces it; another workload of the identity adds the earlier expiry', async (t) => {
  const call = async (opts: { token?: string; cert?: { keyPem: string; chainPem: string }; seconds: number }) => {
    const key = await generateWorkloadKey('ec-p256', API);
    const r = await createCertificateCall({
      address: `127.0.0.1:${meshd.ports.secureGrpc}`, trustedRootsPem: meshd.rootsPem(), serverSpiffeId: MESHD_ID, validitySeconds: opts.seconds, csrPem: key.csrPem,
      ...(opts.token ? { token: opts.token } : {}), ...(opts.cert ? { clientCertificate: opts.cert } : {}),
    });
    return { keyPem: key.keyPem, chainPem: r.certChain.slice(0, -1).join(''), leaf: new X509Certificate(r.certChain[0]!) };
  };
  t.same(await expiry('csr'), [], 'nothing before any CSR');
  const first = await call({ token: await meshd.token('payments', 'payments-api'), seconds: 3600 });
  const seconds = (c: X509Certificate, field: 'validTo' | 'validFrom'): number => Date.parse(c[field]) / 1000;
  t.same(await expiry('csr'), [{ labels: { namespace: 'payments', service_account: 'payments-api', source: 'csr' }, value: seconds(first.leaf, 'validTo') }]);
  t.same(await issued('csr'), [seconds(first.leaf, 'validFrom')], 'and its notBefore');

  // The agent renews with the SVID it holds, asking for a longer one: the series follows the new certificate.
  const renewed = await call({ cert: first, seconds: 7200 });
  t.same((await expiry('csr')).map((s) => s.value), [seconds(renewed.leaf, 'validTo')], 'the renewed certificate replaced the one that authenticated it');

  // A second workload of the same identity with a shorter certificate: the identity's first expiry is that one.
  const second = await call({ token: await meshd.token('payments', 'payments-api'), seconds: 1800 });
  t.same((await expiry('csr')).map((s) => s.value), [seconds(second.leaf, 'validTo')], 'one series per identity: the earliest expiry');
});

t.test('source="sds": a connected proxy\'s SVID is exported while its stream is open, and removed when it goes away', async (t) => {
  const stream = meshd.tlsClient().sotw('sds', { node: { id: 'expiry-node-1' }, metadata: bearer(await meshd.token('payments', 'payments-api')) });
  stream.subscribe(TypeUrl.Secret, ['default']);
  const r = await stream.next(10_000);
  const def = r.resources.find((x) => x.name === 'default')!;
  const leaf = new X509Certificate(Buffer.from((def.decoded as any).tls_certificate.certificate_chain.inline_bytes as Buffer).toString());
  t.same(await expiry('sds'), [{ labels: { namespace: 'payments', service_account: 'payments-api', source: 'sds' }, value: Date.parse(leaf.validTo) / 1000 }]);
  stream.end();
  await stream.status;
  const deadline = Date.now() + 10_000;
  let left = await expiry('sds');
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((resolve) => setImmediate(resolve));
    left = await expiry('sds');
  }
  t.same(left, [], 'no series once the proxy has gone');
});

t.test('the certificate alert rules pass promtool check rules and promtool test rules', async (t) => {
  const check = await run('promtool', ['check', 'rules', repo('envoy/prometheus-rules.yml')]);
  t.equal(check.code, 0, check.output);
  const unit = await run('promtool', ['test', 'rules', repo('test/telemetry/fixtures/cert-expiry-rules.test.yml')]);
  t.equal(unit.code, 0, unit.output);
  t.match(unit.output, /SUCCESS/);
});

t.test('a CSR certificate nobody renewed is dropped when it expires; tracking is bounded', async (t) => {
  const clock = new ManualClock(1_000_000);
  const registry = new Registry();
  const tracker = new WorkloadCertExpiry({ registry, clock, sdsHeld: () => [], maxTracked: 2 });
  const who = { namespace: 'shop', serviceAccount: 'web' };
  tracker.csrIssued(who, { serialHex: '0A1', notBefore: new Date(clock.now()), notAfter: new Date(clock.now() + 60_000) });
  tracker.csrIssued(who, { serialHex: 'b2', notBefore: new Date(clock.now()), notAfter: new Date(clock.now() + 120_000) });
  tracker.csrIssued(who, { serialHex: 'c3', notBefore: new Date(clock.now()), notAfter: new Date(clock.now() + 180_000) });
  t.equal(tracker.trackedCsr, 2, 'at most maxTracked certificates');
  const values = async () => select(parseExposition(await registry.metrics()), 'meshd_workload_cert_expiry_timestamp_seconds').map((s) => s.value);
  t.same(await values(), [1060]);
  tracker.csrIssued({ ...who, certificateSerial: '00A1' }, { serialHex: 'd4', notBefore: new Date(clock.now()), notAfter: new Date(clock.now() + 240_000) });
  t.same(await values(), [1120], 'a renewal presenting serial 00A1 replaced certificate a1 (serials compared as numbers)');
  clock.advance(200_000);
  t.same(await values(), [1240], 'the expired one is gone');
  clock.advance(100_000);
  t.same(await values(), [], 'and the series with the last one');
});
