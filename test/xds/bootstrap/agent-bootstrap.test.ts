import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { parse } from 'yaml';
import { registerBootstrap } from '../../../src/cli/bootstrap.js';
import { loadConfigDir } from '../../../src/config/index.js';
import { decodeStrict, formatStrictErrors } from '../../../src/envoy/strict-decode.js';
import { BOOTSTRAP_TYPE } from '../../../src/xds/bootstrap/build-bootstrap.js';
import { generateBootstrap, type GenerateBootstrapOptions } from '../../../src/xds/bootstrap/generate-bootstrap.js';
import { repoPath } from '../../helpers/repo.js';

/**
 * `meshd bootstrap --agent`: Envoy behind `meshd agent`, in istio-agent's layout. What the file
 * must hold (ADS and SDS on the agent's sockets, the marker meshd reads) and must not (a token,
 * a key, meshd's roots, meshd's address outside the access-log cluster).
 */

const EXAMPLES = repoPath('examples/config');
const MESHD_ID = 'spiffe://cluster.local/ns/istio-system/sa/meshd';
const work = mkdtempSync(join(tmpdir(), 'meshd-agent-bootstrap-'));
t.teardown(() => execFileSync('rm', ['-rf', work]));

const agent = { xdsSocket: '/var/run/meshd/api-1/xds.sock', sdsSocket: '/var/run/meshd/api-1/sds.sock' };
// No data dir holds a CA here: the agent layout must not need meshd's data dir or roots.
const base = (over: Partial<GenerateBootstrapOptions> = {}): GenerateBootstrapOptions => ({
  configDir: EXAMPLES, namespace: 'payments', workload: 'api-1', dataDir: join(work, 'no-ca'), xdsAddress: 'meshd:15012', adminPort: 15000, agent, ...over,
});

type AnyCluster = Record<string, any>;
const clusterOf = (doc: any, name: string): AnyCluster => doc.static_resources.clusters.find((c: { name: string }) => c.name === name);
const pipeOf = (c: AnyCluster): unknown => c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe;

t.test('--agent: decodes strictly; ADS on the agent\'s xDS socket, secrets from its SDS socket, no credential and no roots', async (t) => {
  const out = await generateBootstrap(base(), Date.now());
  t.same(out.warnings, []);
  const doc = parse(out.yaml);
  const strict = decodeStrict(BOOTSTRAP_TYPE, doc);
  t.same(strict.valid ? [] : strict.errors, [], formatStrictErrors(BOOTSTRAP_TYPE, strict));
  t.same(strict.warnings, [], 'no deprecated field');

  t.equal(doc.node.id, 'sidecar~127.0.0.11~api-1.payments~payments.svc.cluster.local', 'the same node id as a direct bootstrap');
  t.equal(doc.node.metadata.MESHD_SDS_SOURCE, 'agent', 'tells meshd to point secret references at sds-grpc');
  t.equal(doc.node.metadata.SERVICE_ACCOUNT, 'payments-api');

  t.same(doc.dynamic_resources.ads_config.grpc_services, [{ envoy_grpc: { cluster_name: 'xds-grpc' } }], 'no initial_metadata: no token');
  t.same(doc.static_resources.clusters.map((c: AnyCluster) => c.name), ['xds-grpc', 'sds-grpc', 'meshd-als', 'prometheus_stats'],
    'sds-grpc is defined before meshd-als, whose secrets come from it');
  for (const [name, path] of [['xds-grpc', agent.xdsSocket], ['sds-grpc', agent.sdsSocket]] as const) {
    const c = clusterOf(doc, name);
    t.same(pipeOf(c), { path }, `${name} dials ${path}`);
    t.equal(c.type, 'STATIC');
    t.ok(c.typed_extension_protocol_options['envoy.extensions.upstreams.http.v3.HttpProtocolOptions'].explicit_http_config.http2_protocol_options, `${name}: gRPC needs HTTP/2`);
    t.notOk(c.transport_socket, `${name}: plaintext on the 0600 socket`);
  }

  const text = out.yaml;
  t.notMatch(text, /initial_metadata|authorization|Bearer/, 'no token');
  t.notMatch(text, /BEGIN|inline_string|inline_bytes|private_key/, 'no key, no certificate, no roots inline');
  const addressed = doc.static_resources.clusters.filter((c: AnyCluster) => JSON.stringify(c).includes('socket_address') && c.name !== 'prometheus_stats');
  t.same(addressed.map((c: AnyCluster) => c.name), ['meshd-als'], "meshd's address appears only for the access logs");
});

t.test('--agent: the access-log cluster presents the agent\'s SVID and checks meshd against the agent\'s ROOTCA', async (t) => {
  const doc = parse((await generateBootstrap(base({ alsAddress: '10.0.0.5:15012' }), Date.now())).yaml);
  const als = clusterOf(doc, 'meshd-als');
  t.same(als.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address, { address: '10.0.0.5', port_value: 15012 });
  const tls = als.transport_socket.typed_config.common_tls_context;
  const fromAgent = (name: string) => ({
    name,
    sds_config: {
      api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', set_node_on_first_message_only: true, grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] },
      resource_api_version: 'V3', initial_fetch_timeout: '5s',
    },
  });
  t.same(tls.tls_certificate_sds_secret_configs, [fromAgent('default')]);
  t.same(tls.combined_validation_context, {
    default_validation_context: { match_typed_subject_alt_names: [{ san_type: 'URI', matcher: { exact: MESHD_ID } }] },
    validation_context_sds_secret_config: fromAgent('ROOTCA'),
  });
});

t.test('--agent: every WorkloadEntry of examples/config gets a strictly valid bootstrap', async (t) => {
  const snapshot = await loadConfigDir(EXAMPLES);
  for (const we of snapshot.workloadEntries) {
    if (we.spec.serviceAccount === '') continue;
    for (const statsPort of [15090, 0]) {
      const out = await generateBootstrap(base({ namespace: we.meta.namespace, workload: we.meta.name, statsPort }), Date.now());
      const strict = decodeStrict(BOOTSTRAP_TYPE, parse(out.yaml));
      t.same(strict.valid ? [] : strict.errors, [], `${we.meta.namespace}/${we.meta.name} stats port ${statsPort}`);
    }
  }
});

t.test('--agent refuses what would put a credential or roots in the file, and socket paths Envoy cannot dial', async (t) => {
  const rows: Array<[string, Partial<GenerateBootstrapOptions>, RegExp]> = [
    ['a token', { tokenFile: '/tmp/t' }, /^--token-file does not go with --agent: the agent holds the credential \(`meshd agent --token-file`\)/],
    ['roots from a file', { rootCertFile: '/tmp/r.pem' }, /^--root-cert does not go with --agent: Envoy trusts the roots the agent serves as ROOTCA/],
    ['a plug-in CA', { caDir: '/tmp/cacerts' }, /^--ca-dir does not go with --agent/],
    ['a relative socket', { agent: { ...agent, sdsSocket: 'run/sds.sock' } }, /^--sds-socket "run\/sds\.sock" must be an absolute path/],
    ['a socket path over sun_path', { agent: { ...agent, xdsSocket: `/${'x'.repeat(107)}` } }, /^--xds-socket "\/x+" is 108 bytes; a Unix socket path holds at most 107$/],
  ];
  for (const [name, over, expected] of rows) await t.rejects(generateBootstrap(base(over), Date.now()), expected, name);
});

async function cli(args: string[]): Promise<{ stdout: string; error?: Error }> {
  const chunks: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  const writeErr = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((c: string) => { chunks.push(String(c)); return true; }) as typeof process.stdout.write;
  process.stderr.write = (() => true) as typeof process.stderr.write;
  try {
    const program = new Command('meshd').exitOverride();
    registerBootstrap(program);
    await program.parseAsync(['bootstrap', '--config-dir', EXAMPLES, '-n', 'payments', '-w', 'api-1', ...args], { from: 'user' });
    return { stdout: chunks.join('') };
  } catch (error) {
    return { stdout: chunks.join(''), error: error as Error };
  } finally {
    process.stdout.write = write;
    process.stderr.write = writeErr;
  }
}

t.test('meshd bootstrap --agent --certs DIR: the sockets default to where `meshd agent --out DIR` has them', async (t) => {
  const { stdout, error } = await cli(['--agent', '--certs', '/var/lib/meshd/api-1']);
  t.equal(error, undefined);
  const doc = parse(stdout);
  t.same(pipeOf(clusterOf(doc, 'xds-grpc')), { path: '/var/lib/meshd/api-1/xds.sock' }, "meshd agent's default xDS socket, <out>/xds.sock");
  t.same(pipeOf(clusterOf(doc, 'sds-grpc')), { path: '/var/lib/meshd/api-1/sds.sock' });

  const given = parse((await cli(['--agent', '--certs', '/d', '--sds-socket', '/run/sds', '--xds-socket', '/run/xds'])).stdout);
  t.same([pipeOf(clusterOf(given, 'xds-grpc')), pipeOf(clusterOf(given, 'sds-grpc'))], [{ path: '/run/xds' }, { path: '/run/sds' }], 'explicit paths win');

  const output = join(work, 'agent-envoy.yaml');
  t.equal((await cli(['--agent', '--certs', '/var/lib/meshd/api-1', '-o', output])).error, undefined);
  t.equal(readFileSync(output, 'utf8'), stdout);
  t.equal(statSync(output).mode & 0o777, 0o600);

  process.env['MESHD_CA_DIR'] = '/etc/meshd/cacerts';
  try {
    t.equal((await cli(['--agent', '--certs', '/d'])).error, undefined, "MESHD_CA_DIR in the environment (meshd serve's) is not a --ca-dir given to --agent");
    t.match((await cli(['--agent', '--certs', '/d', '--ca-dir', '/x'])).error?.message, /^--ca-dir does not go with --agent/, 'a --ca-dir on the command line is');
  } finally {
    delete process.env['MESHD_CA_DIR'];
  }
  t.match((await cli(['--agent'])).error?.message, /--agent needs --certs <the agent's --out dir> or --xds-socket/);
  t.match((await cli(['--certs', '/d'])).error?.message, /--certs, --xds-socket and --sds-socket go with --agent/);
});
