import t, { type Test } from 'tap';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { CaError } from '../../src/ca/errors.js';
import type { Signer } from '../../src/ca/signer.js';
import type { CertificateTemplate } from '../../src/ca/templates.js';
import { OID } from '../../src/ca/oids.js';
import { ia5Bytes, implicitPrimitive, sequence } from '../../src/ca/der.js';
import { metricValue, nodeCsr, opensslCsr, opensslText, opensslVerify, tempDir, testCa, x509 } from './helpers.js';

const ID = 'spiffe://cluster.local/ns/payments/sa/api';
type T = Test;

/** The X509-SVID table (spiffe X509-SVID.md §4) read back by Node and by OpenSSL. */
function checkLeafProfile(t: T, dir: string, leafPem: string, rootsPem: string, opts: { rsa: boolean; dnsNames?: string[]; spiffeId?: string }): void {
  const id = opts.spiffeId ?? ID;
  const leaf = x509(leafPem);
  const root = x509(rootsPem);
  const verdict = opensslVerify(dir, rootsPem, leafPem);
  t.ok(verdict.ok, `openssl verify: ${verdict.output.trim()}`);
  t.equal(leaf.subjectAltName, [`URI:${id}`, ...(opts.dnsNames ?? []).map((d) => `DNS:${d}`)].join(', '), 'exactly one URI SAN, the SPIFFE ID');
  t.ok(leaf.subject === undefined || leaf.subject === '', 'empty subject');
  t.equal(leaf.ca, false, 'cA=false');
  t.same([...(leaf.keyUsage ?? [])].sort(), [OID.serverAuth, OID.clientAuth].sort(), 'EKU serverAuth + clientAuth');
  t.ok(leaf.checkIssued(root) && leaf.verify(root.publicKey), 'issued and signed by the root');
  t.ok(/^[0-9A-F]+$/.test(leaf.serialNumber) && leaf.serialNumber.length <= 34, 'serial readable by OpenSSL');
  const text = opensslText(leafPem);
  t.match(text, /X509v3 Subject Alternative Name: critical/, 'SAN critical (empty subject)');
  t.match(text, /X509v3 Basic Constraints: critical\s+CA:FALSE/, 'basicConstraints critical, CA:FALSE');
  const ku = opts.rsa ? /X509v3 Key Usage: critical\s+Digital Signature, Key Encipherment\n/ : /X509v3 Key Usage: critical\s+Digital Signature\n/;
  t.match(text, ku, 'keyUsage critical with the right bits');
  t.match(text, /X509v3 Extended Key Usage:\s+TLS Web Server Authentication, TLS Web Client Authentication/);
  t.match(text, /X509v3 Subject Key Identifier/);
  t.match(text, /X509v3 Authority Key Identifier/);
}

for (const rootKeyType of ['ec-p256', 'rsa-2048', 'ec-p384'] as const) {
  t.test(`with a ${rootKeyType} root, both leaf key types and both paths give SVIDs OpenSSL verifies`, async (t) => {
    const dir = tempDir(t);
    const ca = await testCa({ keyType: rootKeyType });
    const rootsPem = ca.root.certPem;

    for (const keyType of ['ec-p256', 'rsa-2048'] as const) {
      const issued = await ca.issuer.issue({ spiffeId: ID, keyType });
      t.equal(issued.keyType, keyType);
      checkLeafProfile(t, dir, issued.certPem, rootsPem, { rsa: keyType === 'rsa-2048' });
      t.ok(x509(issued.certPem).checkPrivateKey(createPrivateKey(issued.keyPem)), `${keyType}: key.pem matches the certificate`);
      t.equal(issued.chainPem, issued.certPem, 'under a root the chain is the leaf alone');
      t.equal(issued.rootsPem, rootsPem);
      t.equal(issued.serialHex, x509(issued.certPem).serialNumber.toLowerCase().replace(/^0+/, ''));
      t.equal(issued.issuerFingerprint, x509(rootsPem).fingerprint256.replace(/:/g, '').toLowerCase());
    }

    const csrs = [
      { how: 'openssl req EC P-256', rsa: false, ...opensslCsr(dir, ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256']) },
      { how: 'openssl req RSA 2048', rsa: true, ...opensslCsr(dir, ['rsa:2048']) },
    ];
    for (const type of ['ec', 'rsa'] as const) {
      const pair = type === 'ec' ? generateKeyPairSync('ec', { namedCurve: 'P-256' }) : generateKeyPairSync('rsa', { modulusLength: 2048 });
      const spki = pair.publicKey.export({ type: 'spki', format: 'der' });
      csrs.push({ how: `node ${type}`, rsa: type === 'rsa', csrPem: nodeCsr(pair.privateKey, spki), keyPem: pair.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string });
    }
    for (const csr of csrs) {
      const issued = await ca.issuer.signCsr({ spiffeId: ID, csrPem: csr.csrPem });
      t.ok(x509(issued.certPem).checkPrivateKey(createPrivateKey(csr.keyPem)), `${csr.how}: certifies the CSR's key`);
      checkLeafProfile(t, dir, issued.certPem, rootsPem, { rsa: csr.rsa });
    }
  });
}

t.test('the SAN a CSR asks for is ignored: the certificate names the caller\'s proven identity', async (t) => {
  const dir = tempDir(t);
  const ca = await testCa();
  const fromOpenssl = opensslCsr(dir, ['ec', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-addext', 'subjectAltName=URI:spiffe://cluster.local/ns/kube-system/sa/admin,DNS:evil.example']);
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const fromNode = nodeCsr(pair.privateKey, pair.publicKey.export({ type: 'spki', format: 'der' }), { uri: 'spiffe://evil.example/ns/a/sa/b' });
  for (const csrPem of [fromOpenssl.csrPem, fromNode]) {
    const issued = await ca.issuer.signCsr({ spiffeId: ID, csrPem });
    t.equal(x509(issued.certPem).subjectAltName, `URI:${ID}`);
    t.ok(!x509(issued.certPem).subject, 'requested subject dropped too');
  }
});

t.test('DNS SANs (the control plane\'s own serving certificate) sit beside the single URI SAN', async (t) => {
  const dir = tempDir(t);
  const ca = await testCa();
  const issued = await ca.issuer.issue({ spiffeId: 'spiffe://cluster.local/ns/meshd-system/sa/meshd', dnsNames: ['meshd', 'localhost'] });
  checkLeafProfile(t, dir, issued.certPem, ca.root.certPem, { rsa: false, dnsNames: ['meshd', 'localhost'], spiffeId: 'spiffe://cluster.local/ns/meshd-system/sa/meshd' });
  await t.rejects(ca.issuer.issue({ spiffeId: ID, dnsNames: ['Not A Host'] }), { code: 'CSR_ERROR', message: /invalid DNS SAN "Not A Host"/ });
});

t.test('validity: 24h by default, backdated 2 minutes, capped at the signer\'s notAfter', async (t) => {
  const ca = await testCa();
  const before = Date.now();
  const issued = await ca.issuer.issue({ spiffeId: ID });
  const nb = issued.notBefore.getTime();
  const na = issued.notAfter.getTime();
  t.ok(nb <= before - 120_000 && nb > before - 122_000, 'notBefore ≈ now − 2 min');
  t.ok(na - before > 86_400_000 - 2000 && na - before <= 86_400_000, 'notAfter ≈ now + 24h');
  t.equal(new Date(x509(issued.certPem).validTo).getTime(), na, 'the certificate says the same');
  const oneHour = await ca.issuer.issue({ spiffeId: ID, ttlMs: 3_600_000 });
  t.ok(Math.abs(oneHour.notAfter.getTime() - (Date.now() + 3_600_000)) < 2000, 'requested TTL honoured');

  const shortRoot = await testCa({ rootTtlMs: 2 * 86_400_000 });
  const capped = await shortRoot.issuer.issue({ spiffeId: ID, ttlMs: 30 * 86_400_000 });
  t.equal(capped.notAfter.getTime(), new Date(x509(shortRoot.root.certPem).validTo).getTime(), 'capped at the root\'s notAfter');
});

t.test('a TTL above the maximum is rejected, not clamped, and counted as TTL_ERROR', async (t) => {
  const ca = await testCa();
  await t.rejects(ca.issuer.issue({ spiffeId: ID, ttlMs: 91 * 86_400_000 }), {
    code: 'TTL_ERROR', message: 'requested TTL 2184h is greater than the max allowed TTL 2160h',
  });
  await t.rejects(ca.issuer.signCsr({ spiffeId: ID, ttlMs: -5, csrPem: 'x' }), { code: 'TTL_ERROR' });
  t.ok(await ca.issuer.issue({ spiffeId: ID, ttlMs: 90 * 86_400_000 }), 'exactly the maximum is fine');
  const text = await ca.registry.metrics();
  t.equal(metricValue(text, 'citadel_server_csr_sign_err_count', '{error="TTL_ERROR"}'), 2);
  t.equal(metricValue(text, 'citadel_server_csr_count'), 3);
  t.equal(metricValue(text, 'citadel_server_success_cert_issuance_count'), 1);
});

t.test('identities outside the trust domain, root IDs and malformed IDs are refused', async (t) => {
  const ca = await testCa();
  const table: [string, RegExp][] = [
    ['spiffe://other.domain/ns/a/sa/b', /not in this CA's trust domain cluster.local/],
    ['spiffe://cluster.local', /has no path/],
    ['spiffe://cluster.local/ns/a/', /must not end with "\/"/],
    ['not-an-id', /scheme/],
  ];
  for (const [spiffeId, message] of table) {
    await t.rejects(ca.issuer.issue({ spiffeId }), { code: 'CSR_ERROR', message }, spiffeId);
  }
  await t.rejects(ca.issuer.issue({ spiffeId: ID, keyType: 'ec-p384' as never }), { code: 'CSR_ERROR', message: /unsupported leaf key type "ec-p384"/ });
});

t.test('metrics count requests, successes and latency with Istio\'s names', async (t) => {
  const ca = await testCa();
  await ca.issuer.issue({ spiffeId: ID });
  const pair = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  await ca.issuer.signCsr({ spiffeId: ID, csrPem: nodeCsr(pair.privateKey, pair.publicKey.export({ type: 'spki', format: 'der' })) });
  await t.rejects(ca.issuer.signCsr({ spiffeId: ID, csrPem: 'garbage' }));
  const text = await ca.registry.metrics();
  t.equal(metricValue(text, 'citadel_server_csr_count'), 3);
  t.equal(metricValue(text, 'citadel_server_success_cert_issuance_count'), 2);
  t.equal(metricValue(text, 'citadel_server_csr_parsing_err_count'), 1);
  t.equal(metricValue(text, 'citadel_server_csr_sign_err_count', '{error="CSR_ERROR"}'), 1);
  t.equal(metricValue(text, 'citadel_server_csr_sign_err_count', '{error="CERT_GEN_ERROR"}'), 0);
  t.equal(metricValue(text, 'meshd_ca_issuance_duration_seconds_count', '{key_type="ec-p256",method="key"}'), 1);
  t.equal(metricValue(text, 'meshd_ca_issuance_duration_seconds_count', '{key_type="ec-p256",method="csr"}'), 1);
  t.notMatch(text, /^citadel_\w*_total/m, "Istio's citadel_* names carry no _total suffix, as istiod exports them");
});

t.test('a signer that mints off-profile certificates is caught by the validator; nothing is handed out', async (t) => {
  const mutations: [string, (tpl: CertificateTemplate) => CertificateTemplate, RegExp][] = [
    ['second URI SAN', (tpl) => ({
      ...tpl,
      extensions: tpl.extensions.map((e) => e.oid === OID.subjectAltName
        ? { ...e, value: sequence(implicitPrimitive(6, ia5Bytes(ID)), implicitPrimitive(6, ia5Bytes('spiffe://cluster.local/ns/x/sa/y'))) }
        : e),
    }), /has 2 URI SANs/],
    ['non-critical SAN with empty subject', (tpl) => ({
      ...tpl, extensions: tpl.extensions.map((e) => (e.oid === OID.subjectAltName ? { ...e, critical: false } : e)),
    }), /subject is empty but subjectAltName is not critical/],
    ['no keyUsage', (tpl) => ({ ...tpl, extensions: tpl.extensions.filter((e) => e.oid !== OID.keyUsage) }), /no keyUsage extension/],
    ['no EKU', (tpl) => ({ ...tpl, extensions: tpl.extensions.filter((e) => e.oid !== OID.extKeyUsage) }), /no extKeyUsage/],
    ['outlives the signer', (tpl) => ({ ...tpl, notAfter: tpl.notAfter + 400 * 86_400_000 }), /later than the signing certificate's notAfter/],
    ['someone else\'s key', (tpl) => ({ ...tpl, spki: generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'der' }) }), /not the one requested/],
  ];
  for (const [what, mutate, message] of mutations) {
    const logged: string[] = [];
    const drifting = (inner: Signer): Signer => ({
      certificate: inner.certificate,
      chainPem: inner.chainPem,
      chainNotAfter: inner.chainNotAfter,
      signCertificate: (tpl) => inner.signCertificate(mutate(tpl)),
    });
    const ca = await testCa({ signer: drifting });
    (ca.issuer as unknown as { deps: { logger: { error: (o: unknown, m: string) => void } } }).deps.logger = {
      ...((ca.issuer as unknown as { deps: { logger: object } }).deps.logger),
      error: (_o: unknown, m: string) => { logged.push(m); },
    } as never;
    const err = await ca.issuer.issue({ spiffeId: ID }).then(() => undefined, (e: unknown) => e);
    t.ok(err instanceof CaError && err.code === 'CERT_GEN_ERROR', `${what}: CERT_GEN_ERROR`);
    t.match((err as Error).message, message, what);
    t.match(logged.join(), /failed X509-SVID validation/, 'logged');
    const text = await ca.registry.metrics();
    t.equal(metricValue(text, 'meshd_ca_minted_certificate_rejected_total'), 1, 'counted');
    t.equal(metricValue(text, 'citadel_server_success_cert_issuance_count'), 0);
  }
});

t.test('issueBatch: one result per request, in order; a bad request fails alone; every leaf is its own', async (t) => {
  const dir = tempDir(t);
  const ca = await testCa();
  const ids = Array.from({ length: 40 }, (_, i) => `spiffe://cluster.local/ns/batch/sa/sa-${i}`);
  const requests: Array<{ spiffeId: string; keyType?: 'ec-p256' | 'rsa-2048' }> = [
    ...ids.slice(0, 20).map((spiffeId) => ({ spiffeId })),
    { spiffeId: 'spiffe://other.domain/ns/a/sa/b' },
    { spiffeId: ids[20]!, keyType: 'rsa-2048' as const },
    ...ids.slice(21).map((spiffeId) => ({ spiffeId })),
  ];
  const results = await ca.issuer.issueBatch(requests);
  t.equal(results.length, requests.length);
  const foreign = results[20];
  t.ok(foreign instanceof CaError && foreign.code === 'CSR_ERROR', 'the foreign ID alone is refused');
  t.match((foreign as Error).message, /not in this CA's trust domain/);
  const issued = results.filter((r) => !(r instanceof Error));
  t.equal(issued.length, 40, 'every other request got an SVID');
  results.forEach((r, i) => {
    if (i === 20 || r instanceof Error) return;
    t.equal(r.spiffeId, requests[i]!.spiffeId, `result ${i} answers request ${i}`);
    t.equal(r.keyType, requests[i]!.keyType ?? 'ec-p256');
  });
  t.equal(new Set(issued.map((r) => (r as { keyPem: string }).keyPem)).size, 40, 'forty key pairs');
  t.equal(new Set(issued.map((r) => (r as { serialHex: string }).serialHex)).size, 40, 'forty serials');
  for (const r of [issued[0]!, issued[20]!, issued[39]!]) {
    if (r instanceof Error) continue;
    checkLeafProfile(t, dir, r.certPem, ca.root.certPem, { rsa: r.keyType === 'rsa-2048', spiffeId: r.spiffeId });
    t.ok(x509(r.certPem).checkPrivateKey(createPrivateKey(r.keyPem)), 'its key matches its certificate');
  }
  const text = await ca.registry.metrics();
  t.equal(metricValue(text, 'citadel_server_csr_count'), 41, 'each request counted');
  t.equal(metricValue(text, 'citadel_server_success_cert_issuance_count'), 40);
});

t.test('issueBatch: a batch signer\'s off-profile certificate fails only its own request', async (t) => {
  let n = 0;
  const ca = await testCa({
    signer: (inner) => ({
      certificate: inner.certificate,
      chainPem: inner.chainPem,
      chainNotAfter: inner.chainNotAfter,
      signCertificate: (tpl) => inner.signCertificate(tpl),
      // The third template of each batch loses its SAN's criticality.
      signCertificates: (tpls) => inner.signCertificates!(tpls.map((tpl) => (n++ % 10 === 2
        ? { ...tpl, extensions: tpl.extensions.map((e) => (e.oid === OID.subjectAltName ? { ...e, critical: false } : e)) }
        : tpl))),
    }),
  });
  const results = await ca.issuer.issueBatch(Array.from({ length: 10 }, (_, i) => ({ spiffeId: `${ID}-${i}` })));
  t.same(results.map((r) => r instanceof Error), [false, false, true, false, false, false, false, false, false, false]);
  t.match((results[2] as Error).message, /subject is empty but subjectAltName is not critical/);
  t.equal((results[2] as CaError).code, 'CERT_GEN_ERROR');
});
