/** `meshd validate` as a user runs it: a real process, its output and exit status. */
import t from 'tap';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pa, yaml } from './helpers.js';
import { meshdCommand } from '../helpers/meshd-cli.js';
import { REPO } from '../helpers/repo.js';

const ROOT = REPO;

function meshd(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(...meshdCommand(args), { cwd: ROOT }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

t.test('the example config validates clean (exit 0, no warnings)', async (t) => {
  const r = await meshd('validate', 'examples/config');
  t.equal(r.code, 0, r.stdout + r.stderr);
  t.equal(r.stdout, '"examples/config" is valid: 4 PeerAuthentications, 3 ServiceEntries, 4 WorkloadEntries\n');
});

t.test('errors and warnings are printed with file and line; exit 1', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'meshd-validate-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'shop.yaml'), pa('shop', 'default', 'STRICT') + yaml`
    ---
    apiVersion: security.istio.io/v1
    kind: PeerAuthentication
    metadata: {name: web, namespace: shop}
    spec:
      selector: {}
      portLevelMtls:
        8080: {mode: DISABLE}
  `);
  const r = await meshd('validate', dir);
  t.equal(r.code, 1);
  const file = join(dir, 'shop.yaml');
  t.equal(r.stdout, [
    `Warning: ${file}:14: PeerAuthentication/shop/web: workload selector specified without labels`,
    `Error: ${file}:15: PeerAuthentication/shop/web: mesh/namespace peer authentication cannot have port level mTLS`,
    `"${dir}": 1 error, 1 warning in 1 file`,
    '',
  ].join('\n'));
});

t.test('warnings alone pass (exit 0)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'meshd-validate-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'vs.yaml'), 'apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata: {name: x}\nspec: {hosts: [a]}\n');
  const r = await meshd('validate', join(dir, 'vs.yaml'));
  t.equal(r.code, 0);
  t.match(r.stdout, /^Warning: .*vs\.yaml:1: VirtualService\/default\/x: VirtualService is not supported by meshd and is ignored\n.* has 1 warning: 0 PeerAuthentications/);
});

t.test('AuthorizationPolicies and DestinationRules are counted, and refused in Istio\'s words with file and line', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'meshd-validate-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const ap = (name: string, spec: string): string => `apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {name: ${name}, namespace: shop}\nspec:\n${spec}`;
  const dr = 'apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {name: api, namespace: shop}\nspec:\n  host: api.shop.svc.cluster.local\n  trafficPolicy:\n    tls: {mode: ISTIO_MUTUAL}\n';
  await writeFile(join(dir, 'authz.yaml'), [ap('allow-nothing', '  {}\n'), ap('deny-dev', '  action: DENY\n  rules:\n  - from:\n    - source: {namespaces: [dev]}\n'), dr].join('---\n'));
  const good = await meshd('validate', dir);
  t.equal(good.code, 0, good.stdout + good.stderr);
  t.match(good.stdout, /is valid: 0 PeerAuthentications, 0 ServiceEntries, 0 WorkloadEntries, 2 AuthorizationPolicies, 1 DestinationRule\n$/, 'enforced and applied: no warnings');

  await writeFile(join(dir, 'authz.yaml'), ap('deny-dev', '  action: DENY\n  rules:\n  - from:\n    - source: {ipBlocks: ["10.0.0.0/40"]}\n'));
  const bad = await meshd('validate', dir);
  t.equal(bad.code, 1);
  t.equal(bad.stdout.split('\n')[0], `Error: ${join(dir, 'authz.yaml')}:8: AuthorizationPolicy/shop/deny-dev: bad CIDR range (10.0.0.0/40): netip.ParsePrefix("10.0.0.0/40"): prefix length out of range`);
});

t.test('a missing path is an error', async (t) => {
  const r = await meshd('validate', '/nonexistent/meshd-config');
  t.equal(r.code, 1);
  t.match(r.stderr, 'cannot read /nonexistent/meshd-config: ENOENT');
});

t.test('ClusterFederatedTrustDomains are counted; federating with meshd\'s own trust domain is an error with file and line', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'meshd-validate-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const cftd = (name: string, td: string): string => yaml`
    apiVersion: spire.spiffe.io/v1alpha1
    kind: ClusterFederatedTrustDomain
    metadata: {name: ${name}}
    spec:
      trustDomain: ${td}
      bundleEndpointURL: https://${td}:8443/
      bundleEndpointProfile: {type: https_web}
  `;
  await writeFile(join(dir, 'mesh.yaml'), 'trustDomain: east.example\n');
  await writeFile(join(dir, 'federation.yaml'), `${cftd('west', 'west.example')}---\n${cftd('north', 'north.example')}`);
  const ok = await meshd('validate', dir);
  t.equal(ok.code, 0, ok.stdout + ok.stderr);
  t.equal(ok.stdout, `"${dir}" is valid: 0 PeerAuthentications, 0 ServiceEntries, 0 WorkloadEntries, 2 ClusterFederatedTrustDomains\n`);

  await writeFile(join(dir, 'self.yaml'), cftd('self', 'east.example'));
  const bad = await meshd('validate', dir);
  t.equal(bad.code, 1);
  t.equal(bad.stdout, [
    `Error: ${join(dir, 'self.yaml')}:1: ClusterFederatedTrustDomain/self: spec.trustDomain east.example is meshd's own trust domain; only meshd's CA signs for it, so it cannot be federated`,
    `"${dir}": 1 error, 0 warnings in 3 files`,
    '',
  ].join('\n'));
});
