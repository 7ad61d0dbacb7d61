import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SignJWT, importPKCS8 } from 'jose';
import { TOKEN_KEY_FILE } from '../../src/auth/token-authority.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { startTestMeshd, bearer } from './helpers/meshd.js';
import { runMeshd } from './helpers/serve-process.js';

/**
 * A workload identity is made of a Kubernetes namespace and service account: names that are
 * not (".." and "." once made SDS answer INTERNAL with a SPIFFE ID error) are refused when a
 * token is issued, by the CLI and the token authority, and when one is used.
 */

t.test('meshd token issue refuses names that are not Kubernetes names, printing no token', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const cases: Array<[string[], RegExp]> = [
    [['-n', '..', '-s', '.'], /^meshd: --namespace: namespace "\.\." is not a valid Kubernetes name \(an RFC 1123 label/],
    [['-n', 'payments', '-s', '.'], /^meshd: --service-account: service account "\." is not a valid Kubernetes name \(an RFC 1123 subdomain/],
    [['-n', 'Payments', '-s', 'api'], /--namespace: namespace "Payments"/],
    [['-n', 'payments', '-s', 'api_v2'], /--service-account: service account "api_v2"/],
    [['-n', 'p'.repeat(64), '-s', 'api'], /--namespace: namespace "p+" is longer than 63 characters/],
  ];
  for (const [flags, message] of cases) {
    const r = await runMeshd(['token', 'issue', ...flags, '--data-dir', meshd.dataDir]);
    t.equal(r.code, 1, `token issue ${flags.join(' ')}: exits 1`);
    t.match(r.stderr, message);
    t.equal(r.stdout, '', 'no token printed');
  }
  const ok = await runMeshd(['token', 'issue', '-n', 'payments', '-s', 'api.v2', '--data-dir', meshd.dataDir]);
  t.equal(ok.code, 0, 'a dotted service account is a valid subdomain');
});

t.test('a token for ".." / "." signed by meshd\'s own key gets UNAUTHENTICATED on SDS, never INTERNAL or a stack trace', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const key = await importPKCS8(await readFile(join(meshd.dataDir, TOKEN_KEY_FILE), 'utf8'), 'ES256');
  const now = Math.floor(Date.now() / 1000);
  const token = await new SignJWT({}).setProtectedHeader({ alg: 'ES256', typ: 'JWT' })
    .setIssuer('meshd').setAudience('istio-ca').setSubject('system:serviceaccount:..:.').setIssuedAt(now).setExpirationTime(now + 600)
    .sign(key);
  const client = meshd.plaintextClient();

  const stream = client.sotw('sds', { node: { id: 'names-check' }, metadata: bearer(token) });
  stream.subscribe(TypeUrl.Secret, ['default']);
  const ended = await stream.status;
  t.equal(ended.code, grpc.status.UNAUTHENTICATED, `StreamSecrets: ${grpc.status[ended.code]} ${ended.details}`);
  t.match(ended.details, /namespace "\.\." is not a valid Kubernetes name/);
  t.notMatch(ended.details, /\n\s+at /, 'no stack trace');

  const fetched = await client.fetch('sds', { type_url: TypeUrl.Secret, resource_names: ['default'], node: { id: 'names-check' } }, bearer(token))
    .then(() => undefined, (e: grpc.ServiceError) => e);
  t.equal(fetched?.code, grpc.status.UNAUTHENTICATED, 'FetchSecrets too');
  t.match(await meshd.metricsText(), /^citadel_server_success_cert_issuance_count(\{[^}]*\})? 1$/m, 'nothing minted beyond meshd\'s own serving certificate');
});
