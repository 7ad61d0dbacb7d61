import t from 'tap';
import { Command } from 'commander';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerCheck } from '../../src/cli/check.js';
import { ap, docs, pa, se, we } from '../xds/generators/fixtures.js';

/** `meshd check` as a user runs it: flags, text and JSON output, precise argument errors. */
const dir = mkdtempSync(join(tmpdir(), 'meshd-check-'));
writeFileSync(join(dir, 'mesh.yaml'), 'trustDomain: cluster.local\n');
writeFileSync(join(dir, 'objects.yaml'), docs(
  pa('payments', 'default', 'STRICT'),
  se('payments', 'api', { ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }], selector: { app: 'api' }, addresses: ['127.0.0.60'] }),
  we('payments', 'api-1', { address: '10.0.1.1', labels: { app: 'api' }, serviceAccount: 'payments-api' }),
  we('shop', 'web-1', { address: '10.0.2.1', labels: { app: 'web' }, serviceAccount: 'shop-web' }),
  pa('shop', 'default', 'PERMISSIVE'),
  se('shop', 'web', { ports: [{ number: 9000, name: 'http', protocol: 'HTTP' }, { number: 5432, name: 'pg', protocol: 'TCP' }], selector: { app: 'web' }, addresses: ['127.0.0.61'] }),
  we('shop', 'cart-1', { address: '10.0.2.2', labels: { app: 'cart' }, serviceAccount: 'shop-cart' }),
  ap('shop', 'deny-admin', { action: 'DENY', selector: { app: 'web' }, rules: '- to:\n  - operation:\n      paths: ["/admin*"]\n      methods: ["DELETE"]' }),
  ap('shop', 'allow-cart', { selector: { app: 'web' }, rules: '- from:\n  - source:\n      principals: ["cluster.local/ns/shop/sa/shop-cart"]' }),
  ap('shop', 'audit-all', { action: 'AUDIT', selector: { app: 'web' }, rules: '- {}' }),
));

async function run(...args: string[]): Promise<{ out: string; err: string; code: number }> {
  const program = new Command('meshd').exitOverride();
  registerCheck(program);
  let out = '';
  let err = '';
  const w1 = process.stdout.write.bind(process.stdout);
  const w2 = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string) => { out += s; return true; }) as typeof process.stdout.write;
  process.stderr.write = ((s: string) => { err += s; return true; }) as typeof process.stderr.write;
  process.exitCode = 0;
  try {
    await program.parseAsync(['node', 'meshd', 'check', '--config-dir', dir, ...args]);
  } finally {
    process.stdout.write = w1;
    process.stderr.write = w2;
  }
  const code = Number(process.exitCode ?? 0);
  process.exitCode = 0;
  return { out, err, code };
}

t.test('plaintext from outside into STRICT: reset with NR, and the deciding policy', async (t) => {
  const r = await run('--from', 'outside', '--to', 'payments/api-1:8080');
  t.equal(r.code, 0);
  t.match(r.out, /^outside → payments\/api-1:8080\n  reset: no filter chain accepts transport protocol raw_buffer; Envoy closes the connection and logs response flag NR\n  policy: STRICT, decided by PeerAuthentication\/payments\/default\n/);
});

t.test('mesh client: mTLS with both identities, JSON output', async (t) => {
  const r = await run('--from', 'shop/web-1', '--to', 'payments/api-1:8080', '-o', 'json');
  const j = JSON.parse(r.out);
  t.match(j, {
    from: 'shop/web-1', to: 'payments/api-1:8080', outcome: 'mtls',
    peerIdentity: 'spiffe://cluster.local/ns/shop/sa/shop-web', serverIdentity: 'spiffe://cluster.local/ns/payments/sa/payments-api',
    decidedBy: 'PeerAuthentication/payments/default', chain: 'inbound|8080|mtls',
    verifiedBy: {
      client: { secret: 'ROOTCA', trustDomain: 'cluster.local', validator: 'trusted_ca' },
      server: { secret: 'ROOTCA', trustDomain: 'cluster.local', validator: 'trusted_ca' },
    },
  });
  t.match(j.steps.join('\n'), /outbound listener 127\.0\.0\.60_8080/);
});

t.test('authorization: the verdict and the deciding policy, from the generated RBAC filters', async (t) => {
  const allowed = await run('--from', 'shop/cart-1', '--to', 'shop/web-1:9000', '--path', '/admin/x');
  t.match(allowed.out, /\n  authorization: ALLOWED: GET \/admin\/x allowed by AuthorizationPolicy\/shop\/allow-cart rule 0 \(ALLOW\); audited by AuthorizationPolicy\/shop\/audit-all rule 0\n/, 'cart may GET /admin (only DELETE is denied); AUDIT shown, verdict unchanged');
  const denied = await run('--from', 'shop/cart-1', '--to', 'shop/web-1:9000', '--method', 'DELETE', '--path', '/admin/x');
  t.match(denied.out, /authorization: DENIED: DELETE \/admin\/x denied by AuthorizationPolicy\/shop\/deny-admin rule 0 \(DENY\): 403 "RBAC: access denied"/, 'DENY before ALLOW');
  const outsider = await run('--from', 'outside', '--to', 'shop/web-1:9000', '-o', 'json');
  t.match(JSON.parse(outsider.out), { outcome: 'plaintext', authorization: { allowed: false, kind: 'http', audited: [] } }, 'PERMISSIVE plaintext: no principal, so the ALLOW matches nothing');
  t.match(JSON.parse(outsider.out).authorization.summary, /no client certificate/);
  // Istio's documented TCP behaviour: a DENY rule keeps only what applies to TCP; with paths and
  // methods gone it matches every connection, even cart's.
  const tcp = await run('--from', 'shop/cart-1', '--to', 'shop/web-1:5432');
  t.match(tcp.out, /authorization: DENIED: the TCP connection denied by AuthorizationPolicy\/shop\/deny-admin rule 0 \(DENY\): the connection is closed/, 'TCP: the HTTP-only DENY denies everything');
  const noPolicy = await run('--from', 'shop/web-1', '--to', 'payments/api-1:8080', '-o', 'json');
  t.equal(JSON.parse(noPolicy.out).authorization, undefined, 'no policy on api-1: no authorization verdict');
  await t.rejects(run('--from', 'outside', '--to', 'shop/web-1:9000', '--header', 'nonsense'), /argument 'nonsense' is invalid\. expected <name>=<value>, got "nonsense"/, 'a malformed --header is refused by the parser');
});

t.test('bad arguments: precise message, exit status 1', async (t) => {
  const rows: Array<[string[], RegExp]> = [
    [['--from', 'shop/nope', '--to', 'payments/api-1:8080'], /--from "shop\/nope": no WorkloadEntry shop\/nope in the config \(known: payments\/api-1, shop\/cart-1, shop\/web-1\)/],
    [['--from', 'shop', '--to', 'payments/api-1:8080'], /--from "shop": expected <namespace>\/<workload>/],
    [['--from', 'outside', '--to', 'payments/api-1'], /--to "payments\/api-1": expected <namespace>\/<workload>:<port>/],
    [['--from', 'outside', '--to', 'payments/api-1:0'], /port must be in range 1\.\.65535/],
  ];
  for (const [args, msg] of rows) {
    const r = await run(...args);
    t.equal(r.code, 1, args.join(' '));
    t.match(r.err, msg);
    t.equal(r.out, '');
  }
});

t.test('with a federated trust domain, the text output says which bundle verifies each side', async (t) => {
  writeFileSync(join(dir, 'federation.yaml'), [
    'apiVersion: spire.spiffe.io/v1alpha1', 'kind: ClusterFederatedTrustDomain', 'metadata: {name: west}', 'spec:',
    '  trustDomain: west.example', '  bundleEndpointURL: https://meshd.west.example:8443/', '  bundleEndpointProfile: {type: https_web}', '',
  ].join('\n'));
  t.teardown(() => rmSync(join(dir, 'federation.yaml')));
  const r = await run('--from', 'shop/web-1', '--to', 'payments/api-1:8080');
  t.match(r.out, "  client certificate verified by: cluster.local's bundle (secret ALL, spiffe-validator)\n  server certificate verified by: cluster.local's bundle (secret ROOTCA, trusted_ca)\n");
  t.match(r.out, /the server verifies spiffe:\/\/cluster\.local\/ns\/shop\/sa\/shop-web with cluster\.local's bundle \(ALL: the SPIFFE validator's entry for cluster\.local only\)/);
});
