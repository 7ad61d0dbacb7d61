import t from 'tap';
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { parse } from 'yaml';
import { TokenAuthority } from '../../../src/auth/token-authority.js';
import { ManualClock } from '../../../src/common/clock.js';
import { loadConfigDir } from '../../../src/config/index.js';
import { Command } from 'commander';
import { registerBootstrap } from '../../../src/cli/bootstrap.js';
import { decodeStrict } from '../../../src/envoy/strict-decode.js';
import { BOOTSTRAP_TYPE } from '../../../src/xds/bootstrap/build-bootstrap.js';
import { generateBootstrap, type GenerateBootstrapOptions } from '../../../src/xds/bootstrap/generate-bootstrap.js';
import { openCertificateAuthority } from '../../../src/ca/index.js';
import { Registry } from 'prom-client';
import { repoPath } from '../../helpers/repo.js';

const EXAMPLES = repoPath('examples/config');
const FIXTURE_ROOT = repoPath('test/xds/bootstrap/fixtures/example-root-cert.pem');
const EXAMPLE_OUTPUT = repoPath('envoy/bootstrap-example.yaml');
const MESHD_ID = 'spiffe://cluster.local/ns/istio-system/sa/meshd';

// Real time as the origin: openssl and the token authority stamp certificates and tokens with it.
const clock = new ManualClock(Date.now());
const work = mkdtempSync(join(tmpdir(), 'meshd-bootstrap-'));
t.teardown(() => execFileSync('rm', ['-rf', work]));

// The real CA, as `meshd serve` creates it in the data dir; its serving certificate is what
// meshd presents on 15012 (src/svid/serving-identity.ts issues it the same way).
const dataDir = join(work, 'data');
const ca = await openCertificateAuthority({ dataDir, trustDomain: 'cluster.local', registry: new Registry(), clock });
const serving = await ca.issue({ spiffeId: MESHD_ID, dnsNames: ['meshd', 'localhost'] });
const rootsPem = ca.trustBundle().rootsPem;

async function tokenFor(namespace: string, serviceAccount: string, ttlMs = 720 * 3_600_000): Promise<string> {
  const authority = await TokenAuthority.open(dataDir, clock);
  const file = join(work, `token-${namespace}-${serviceAccount}-${ttlMs}`);
  writeFileSync(file, `${(await authority.issue({ namespace, serviceAccount }, ttlMs)).token}\n`);
  return file;
}

const base = (over: Partial<GenerateBootstrapOptions> = {}): GenerateBootstrapOptions => ({
  configDir: EXAMPLES, namespace: 'payments', workload: 'api-1', dataDir, xdsAddress: '127.0.0.1:15012', adminPort: 15000, ...over,
});

t.test('the bootstrap for a workload of examples/config decodes strictly and ties Envoy to its WorkloadEntry', async (t) => {
  const tokenFile = await tokenFor('payments', 'payments-api');
  const token = readFileSync(tokenFile, 'utf8').trim();
  const out = await generateBootstrap(base({ tokenFile }), clock.now());
  t.same(out.warnings, []);
  const doc = parse(out.yaml);
  const strict = decodeStrict(BOOTSTRAP_TYPE, doc);
  t.same(strict.valid ? [] : strict.errors, [], 'printed YAML decodes strictly as envoy.config.bootstrap.v3.Bootstrap');

  t.equal(doc.node.id, 'sidecar~127.0.0.11~api-1.payments~payments.svc.cluster.local');
  t.equal(doc.node.cluster, 'api-1.payments');
  t.same(doc.node.metadata, {
    NAMESPACE: 'payments', WORKLOAD_NAME: 'api-1', SERVICE_ACCOUNT: 'payments-api',
    LABELS: { app: 'payments-api', version: 'v1' }, INSTANCE_IPS: '127.0.0.11', MESH_ID: 'cluster.local', TRUST_DOMAIN: 'cluster.local',
  });

  const ads = doc.dynamic_resources.ads_config;
  t.same({ api_type: ads.api_type, transport_api_version: ads.transport_api_version, set_node_on_first_message_only: ads.set_node_on_first_message_only },
    { api_type: 'GRPC', transport_api_version: 'V3', set_node_on_first_message_only: true });
  t.same(ads.grpc_services, [{ envoy_grpc: { cluster_name: 'xds-grpc' }, initial_metadata: [{ key: 'authorization', value: `Bearer ${token}` }] }]);
  t.same(doc.dynamic_resources.lds_config, { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: '0s' });
  t.same(doc.dynamic_resources.cds_config, doc.dynamic_resources.lds_config);

  const clusters = doc.static_resources.clusters;
  t.same(clusters.map((c: { name: string }) => c.name), ['xds-grpc', 'meshd-als', 'prometheus_stats']);
  const [xds] = clusters;
  t.equal(xds.type, 'STATIC', 'an IP address needs no DNS');
  t.same(xds.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: '127.0.0.1', port_value: 15012 });
  t.ok(xds.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config.http2_protocol_options, 'gRPC needs HTTP/2');
  const tls = xds.transport_socket.typed_config;
  t.equal(tls.common_tls_context.validation_context.trusted_ca.inline_string, rootsPem.map((p) => `${p.trim()}\n`).join(''), "the CA's bundle inline");
  t.same(tls.common_tls_context.validation_context.match_typed_subject_alt_names, [{ san_type: 'URI', matcher: { exact: MESHD_ID } }]);
  t.notOk(tls.common_tls_context.tls_certificate_sds_secret_configs, 'xds-grpc presents no client certificate (the token authenticates)');
  const als = clusters[1].transport_socket.typed_config.common_tls_context;
  t.same(als.tls_certificate_sds_secret_configs, [{
    name: 'default',
    sds_config: {
      api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', set_node_on_first_message_only: true, grpc_services: ads.grpc_services },
      resource_api_version: 'V3', initial_fetch_timeout: '5s',
    },
  }], 'meshd-als presents the workload SVID, fetched over SDS on xds-grpc with the token');
  t.same(doc.admin.address.socket_address, { address: '127.0.0.1', port_value: 15000 });
});

t.test("Istio's prometheus_stats listener: 0.0.0.0:15090, only /stats/prometheus, to admin; --stats-port 0 leaves it out", async (t) => {
  const doc = parse((await generateBootstrap(base({ adminPort: 15001 }), clock.now())).yaml);
  const [listener] = doc.static_resources.listeners;
  t.same(listener.address, { socket_address: { address: '0.0.0.0', port_value: 15090 } });
  const hcm = listener.filter_chains[0].filters[0].typed_config;
  t.same(hcm.route_config.virtual_hosts.flatMap((v: { routes: unknown[] }) => v.routes), [{ match: { path: '/stats/prometheus' }, route: { cluster: 'prometheus_stats' } }],
    'one exact path: config_dump (it shows the token) and quitquitquit stay unreachable');
  const cluster = doc.static_resources.clusters.find((c: { name: string }) => c.name === 'prometheus_stats');
  t.same(cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: '127.0.0.1', port_value: 15001 }, 'the admin port given');

  const other = parse((await generateBootstrap(base({ statsPort: 19090 }), clock.now())).yaml);
  t.equal(other.static_resources.listeners[0].address.socket_address.port_value, 19090);
  const none = parse((await generateBootstrap(base({ statsPort: 0 }), clock.now())).yaml);
  t.equal(none.static_resources.listeners, undefined, 'no listener');
  t.same(none.static_resources.clusters.map((c: { name: string }) => c.name), ['xds-grpc', 'meshd-als'], 'and no stats cluster');
  t.same(decodeStrict(BOOTSTRAP_TYPE, none).valid, true);
});

t.test('every WorkloadEntry of examples/config gets a strictly valid bootstrap', async (t) => {
  const snapshot = await loadConfigDir(EXAMPLES);
  t.ok(snapshot.workloadEntries.length > 0, 'the examples have workloads');
  for (const we of snapshot.workloadEntries) {
    if (we.spec.serviceAccount === '') continue;
    const out = await generateBootstrap(base({ namespace: we.meta.namespace, workload: we.meta.name, xdsAddress: 'meshd.istio-system.svc:15012' }), clock.now());
    const strict = decodeStrict(BOOTSTRAP_TYPE, parse(out.yaml));
    t.same(strict.valid ? [] : strict.errors, [], `${we.meta.namespace}/${we.meta.name}`);
  }
});

t.test('a DNS name for meshd gives a STRICT_DNS cluster with that SNI; access logs can go elsewhere', async (t) => {
  const out = await generateBootstrap(base({ xdsAddress: 'meshd.istio-system.svc:15012', alsAddress: '[::1]:15013' }), clock.now());
  const [xds, als] = (out.bootstrap['static_resources'] as { clusters: any[] }).clusters;
  t.equal(xds.type, 'STRICT_DNS');
  t.equal(xds.dns_lookup_family, 'V4_PREFERRED');
  t.equal(xds.transport_socket.typed_config.sni, 'meshd.istio-system.svc');
  t.equal(als.type, 'STATIC');
  t.same(als.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: '::1', port_value: 15013 });
  t.equal(als.transport_socket.typed_config.sni, 'meshd');
  t.match(out.warnings, [/no --token-file: Envoy sends no credential/]);
  t.notOk(JSON.stringify(out.bootstrap).includes('initial_metadata'), 'no token, no metadata');
});

t.test('several meshd replicas make one xds-grpc cluster of all their addresses (STATIC for IPs, STRICT_DNS with a name)', async (t) => {
  const ips = await generateBootstrap(base({ xdsAddress: '10.0.0.1:15012,10.0.0.2:15012,[fd00::3]:15012' }), clock.now());
  const [xds, als] = (ips.bootstrap['static_resources'] as { clusters: any[] }).clusters;
  t.equal(xds.type, 'STATIC');
  t.same(xds.load_assignment.endpoints[0].lb_endpoints.map((e: any) => e.endpoint.address.socket_address), [
    { address: '10.0.0.1', port_value: 15012 }, { address: '10.0.0.2', port_value: 15012 }, { address: 'fd00::3', port_value: 15012 },
  ]);
  t.equal(als.load_assignment.endpoints[0].lb_endpoints.length, 3, 'access logs go to every replica too');
  t.same(decodeStrict(BOOTSTRAP_TYPE, parse(ips.yaml)).valid, true, 'Envoy takes it');
  const mixed = await generateBootstrap(base({ xdsAddress: 'meshd-a.example:15012,10.0.0.2:15012' }), clock.now());
  const [mixedXds] = (mixed.bootstrap['static_resources'] as { clusters: any[] }).clusters;
  t.equal(mixedXds.type, 'STRICT_DNS', 'a name among them needs DNS resolution');
  t.equal(mixedXds.load_assignment.endpoints[0].lb_endpoints.length, 2);
  await t.rejects(generateBootstrap(base({ xdsAddress: '10.0.0.1:15012,,10.0.0.2:15012' }), clock.now()), /has an empty entry/);
  await t.rejects(generateBootstrap(base({ xdsAddress: '10.0.0.1:15012,10.0.0.1:15012' }), clock.now()), /lists 10\.0\.0\.1:15012 twice/);
});

t.test("the TLS settings given to Envoy verify a real meshd serving certificate", async (t) => {
  // What Envoy will do with the cluster's UpstreamTlsContext, done with node:tls: trust only the
  // inline roots, send the SNI and ALPN, then require the exact SPIFFE ID.
  const out = await generateBootstrap(base(), clock.now());
  const tls = (out.bootstrap['static_resources'] as { clusters: any[] }).clusters[0].transport_socket.typed_config;
  const server = createServer({ cert: serving.chainPem, key: serving.keyPem, ALPNProtocols: ['h2'] }, (s) => s.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const port = (server.address() as AddressInfo).port;
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = connect({
      host: '127.0.0.1', port, servername: tls.sni, ALPNProtocols: tls.common_tls_context.alpn_protocols,
      ca: tls.common_tls_context.validation_context.trusted_ca.inline_string,
      checkServerIdentity: () => undefined, // Envoy matches SANs itself (below), not the host name
    }, () => resolve(s));
    s.on('error', reject);
  });
  t.ok(socket.authorized, 'chain verifies against the inline roots');
  t.equal(socket.alpnProtocol, 'h2');
  const san = socket.getPeerCertificate().subjectaltname ?? '';
  const wanted = tls.common_tls_context.validation_context.match_typed_subject_alt_names[0].matcher.exact;
  t.ok(san.split(', ').includes(`URI:${wanted}`), `serving certificate carries ${wanted}`);
  socket.destroy();
});

t.test('refusals name the problem and the fix', async (t) => {
  const otherSa = await tokenFor('payments', 'shop-web');
  const shortLived = await tokenFor('payments', 'payments-api', 3_600_000);
  const leafFile = join(work, 'leaf.pem');
  writeFileSync(leafFile, serving.certPem);
  const pluginDir = join(work, 'cacerts');
  mkdirSync(pluginDir, { recursive: true });
  const rows: Array<[string, Partial<GenerateBootstrapOptions>, RegExp, number?]> = [
    ['unknown workload lists the namespace', { workload: 'api-9' }, /no WorkloadEntry payments\/api-9 in .*\(WorkloadEntries in payments: api-1, api-2\)/],
    ['token of another service account', { tokenFile: otherSa }, /is for system:serviceaccount:payments:shop-web, but the workload runs as system:serviceaccount:payments:payments-api: meshd would refuse this proxy \(mint one with `meshd token issue -n payments -s payments-api`\)/],
    ['expired token', { tokenFile: shortLived }, /expired at /, clock.now() + 2 * 3_600_000],
    ['missing token file', { tokenFile: join(work, 'nope') }, /cannot read --token-file .*nope: ENOENT/],
    ['no CA in the data dir', { dataDir: join(work, 'empty') }, /cannot read meshd's trust bundle: no CA in .*empty \(.*journal\.json does not exist\); start `meshd serve --data-dir .*` once to create the CA, or pass --root-cert \(meshd's \/trust-bundle\) or --ca-dir/],
    ['plug-in CA dir without root-cert.pem', { caDir: pluginDir }, /cannot read meshd's trust bundle .*cacerts\/root-cert\.pem: no such file/],
    ['a leaf passed as the root', { rootCertFile: leafFile }, /certificate 1 \(.*\) is not a CA certificate; pass meshd's root, not a leaf/],
    ['expired root', { rootCertFile: FIXTURE_ROOT }, /certificate 1 expired at 2126-/, Date.UTC(2127, 0, 1)],
    ['bad xds address', { xdsAddress: 'meshd' }, /--xds-address "meshd" must be HOST:PORT/],
    ['port out of range', { xdsAddress: 'meshd:70000' }, /port must be 1-65535/],
  ];
  for (const [name, over, expected, now] of rows) {
    await t.rejects(generateBootstrap(base(over), now ?? clock.now()), expected, name);
  }
  t.notOk(existsSync(join(work, 'empty', 'ca')), 'bootstrap never creates a CA');
  writeFileSync(join(pluginDir, 'root-cert.pem'), readFileSync(FIXTURE_ROOT));
  const plugin = await generateBootstrap(base({ caDir: pluginDir }), clock.now());
  t.equal((plugin.bootstrap['static_resources'] as { clusters: any[] }).clusters[0].transport_socket.typed_config.common_tls_context.validation_context.trusted_ca.inline_string,
    readFileSync(FIXTURE_ROOT, 'utf8'), "--ca-dir trusts the plug-in CA's root-cert.pem");
  const soon = await generateBootstrap(base({ tokenFile: shortLived }), clock.now());
  t.match(soon.warnings, [/expires at .*: after that Envoy cannot reconnect to meshd until it gets a new bootstrap/], 'a token close to expiry warns');
});

t.test('meshd bootstrap --output writes the same YAML with mode 0600 (it holds the token)', async (t) => {
  const tokenFile = await tokenFor('payments', 'payments-api');
  const output = join(work, 'out', 'envoy.yaml');
  const stderr: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string) => { stderr.push(String(chunk)); return true; }) as typeof process.stderr.write;
  try {
    const program = new Command('meshd').exitOverride();
    registerBootstrap(program);
    await program.parseAsync(['bootstrap', '--config-dir', EXAMPLES, '-n', 'payments', '-w', 'api-1', '--token-file', tokenFile, '--data-dir', dataDir, '-o', output], { from: 'user' });
  } finally {
    process.stderr.write = write;
  }
  t.equal(statSync(output).mode & 0o777, 0o600);
  const expected = await generateBootstrap(base({ tokenFile }), clock.now());
  t.equal(readFileSync(output, 'utf8'), expected.yaml);
  t.match(stderr.join(''), /wrote .*envoy\.yaml for sidecar~127\.0\.0\.11~api-1\.payments~payments\.svc\.cluster\.local/);
});

/**
 * envoy/bootstrap-example.yaml is this command's output for payments/api-1 (fixture root, a
 * placeholder instead of a token, meshd reached as meshd:15012 as in docker-compose). Regenerate:
 * MESHD_UPDATE_EXAMPLES=1 npx tap test/xds/bootstrap/bootstrap.test.ts
 */
t.test('envoy/bootstrap-example.yaml is what the command prints today', async (t) => {
  const placeholder = join(work, 'placeholder-token');
  writeFileSync(placeholder, 'REPLACE_WITH_OUTPUT_OF_meshd_token_issue\n');
  const out = await generateBootstrap(base({ xdsAddress: 'meshd:15012', rootCertFile: FIXTURE_ROOT, tokenFile: placeholder }), clock.now());
  t.match(out.warnings, [/is not a JWT; it is sent as is/]);
  if (process.env['MESHD_UPDATE_EXAMPLES'] === '1') writeFileSync(EXAMPLE_OUTPUT, out.yaml);
  t.equal(readFileSync(EXAMPLE_OUTPUT, 'utf8'), out.yaml, 'stale: regenerate with MESHD_UPDATE_EXAMPLES=1');
});
