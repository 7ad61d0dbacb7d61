import t from 'tap';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { silentLogger } from '../../src/common/logger.js';
import { systemClock } from '../../src/common/clock.js';
import { startAgent } from '../../src/agent/run-agent.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { generateBootstrap } from '../../src/xds/bootstrap/generate-bootstrap.js';
import { envoyRejects } from '../xds/generators/envoy-accepts.js';
import { XdsTestClient, type DecodedAny, type SotwResponse } from '../xds/helpers/xds-client.js';
import { bearer, startTestMeshd } from './helpers/meshd.js';
import { repoPath } from '../helpers/repo.js';

/**
 * The recommended sidecar layout end to end, with real parts: meshd, `meshd agent` with its xDS
 * proxy and SDS sockets, and an Envoy-like client that follows `meshd bootstrap --agent` to the
 * letter (ADS on the xds-grpc pipe, with the bootstrap's node; secrets on the sds-grpc pipe).
 */

const EXAMPLES = repoPath('examples/config');

/** Every SdsSecretConfig in a decoded resource, typed_config Anys included (the client decodes them). */
function secretRefs(value: unknown): Array<{ name: string; source: Record<string, any> }> {
  if (Array.isArray(value)) return value.flatMap(secretRefs);
  if (typeof value !== 'object' || value === null) return [];
  const o = value as Record<string, unknown>;
  if (typeof o['name'] === 'string' && typeof o['sds_config'] === 'object') return [{ name: o['name'], source: o['sds_config'] as Record<string, any> }];
  return Object.values(o).flatMap(secretRefs);
}

const sdsCluster = (s: Record<string, any>): unknown => s['api_config_source']?.grpc_services?.[0]?.envoy_grpc?.cluster_name;

t.test('an Envoy bootstrapped with --agent gets its config through the agent, secret references on sds-grpc, and its key from the agent only', async (t) => {
  const meshd = await startTestMeshd({ configDir: EXAMPLES });
  t.teardown(() => meshd.close());
  const dir = await mkdtemp(join(tmpdir(), 'meshd-behind-agent-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'root.pem'), meshd.rootsPem());
  await writeFile(join(dir, 'token'), await meshd.token('payments', 'payments-api'));
  const out = join(dir, 'agent');

  const generated = await generateBootstrap({
    configDir: EXAMPLES, namespace: 'payments', workload: 'api-1', dataDir: join(dir, 'no-ca'),
    xdsAddress: `127.0.0.1:${meshd.ports.secureGrpc}`, adminPort: 15000, agent: { xdsSocket: join(out, 'xds.sock'), sdsSocket: join(out, 'sds.sock') },
  }, Date.now());
  const boot = parse(generated.yaml);
  const pipe = (name: string): string => boot.static_resources.clusters.find((c: { name: string }) => c.name === name).load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.pipe.path;

  const running = await startAgent({
    namespace: 'payments', serviceAccount: 'payments-api', trustDomain: 'cluster.local', tokenFile: join(dir, 'token'), outDir: out,
    meshdAddress: `127.0.0.1:${meshd.ports.secureGrpc}`, caRootFile: join(dir, 'root.pem'),
    xdsSocket: pipe('xds-grpc'), sdsSocket: pipe('sds-grpc'), logger: silentLogger(), clock: systemClock,
  });
  t.teardown(() => running.stop());
  await running.ready();

  // ADS as Envoy would open it on xds-grpc: the bootstrap's node, string metadata only (what the test client sends).
  const node = { id: boot.node.id, cluster: boot.node.cluster, metadata: Object.fromEntries(Object.entries(boot.node.metadata).filter(([, v]) => typeof v === 'string')) };
  const ads = new XdsTestClient(`unix:${pipe('xds-grpc')}`);
  t.teardown(() => ads.close());
  const stream = ads.sotw('ads', { node });
  const resources: DecodedAny[] = [];
  for (const typeUrl of [TypeUrl.Cluster, TypeUrl.Listener]) {
    stream.subscribe(typeUrl, []);
    const r: SotwResponse = await stream.next(15_000);
    t.equal(r.type_url, typeUrl);
    stream.ack(r);
    resources.push(...r.resources);
  }
  const refs = resources.flatMap((r) => secretRefs(r.decoded).map((ref) => ({ ...ref, resource: r.name })));
  t.ok(refs.some((r) => r.name === 'default') && refs.some((r) => r.name === 'ROOTCA'), `TLS contexts name default and ROOTCA (${refs.length} references)`);
  t.same(refs.filter((r) => sdsCluster(r.source) !== 'sds-grpc').map((r) => `${r.resource}: ${r.name}`), [], 'every one resolves on sds-grpc, a cluster the bootstrap defines');
  t.ok(boot.static_resources.clusters.some((c: { name: string }) => c.name === 'sds-grpc'));
  for (const r of resources) t.same(envoyRejects(r.type_url, r.decoded), [], `${r.name} decodes strictly`);

  // SDS as Envoy would open it on sds-grpc.
  const sds = new XdsTestClient(`unix:${pipe('sds-grpc')}`);
  t.teardown(() => sds.close());
  const secrets = sds.sotw('sds', { node });
  secrets.subscribe(TypeUrl.Secret, ['default', 'ROOTCA']);
  const first = await secrets.next(10_000);
  const byName = new Map(first.resources.map((r) => [r.name, r.decoded as Record<string, any>]));
  const keyPem = Buffer.from(byName.get('default')!['tls_certificate'].private_key.inline_bytes).toString('utf8');
  t.equal(keyPem, await readFile(join(out, 'key.pem'), 'utf8'), "default carries the key the agent made, from the agent's directory");
  t.equal(Buffer.from(byName.get('ROOTCA')!['validation_context'].trusted_ca.inline_bytes).toString('utf8'), meshd.rootsPem(), 'ROOTCA is the mesh bundle');
});

t.test('meshd itself answers MESHD_SDS_SOURCE: agent with sds-grpc references and refuses an unknown value', async (t) => {
  const meshd = await startTestMeshd({ configDir: EXAMPLES });
  t.teardown(() => meshd.close());
  const token = await meshd.token('payments', 'payments-api');
  const node = (source: string) => ({ id: 'sidecar~127.0.0.11~api-1.payments~payments.svc.cluster.local', metadata: { NAMESPACE: 'payments', WORKLOAD_NAME: 'api-1', MESHD_SDS_SOURCE: source } });

  const client = meshd.tlsClient();
  const ok = client.sotw('ads', { node: node('agent'), metadata: bearer(token) });
  ok.subscribe(TypeUrl.Listener, []);
  const lds = await ok.next(10_000);
  const refs = lds.resources.flatMap((r) => secretRefs(r.decoded));
  t.ok(refs.length > 0);
  t.same([...new Set(refs.map((r) => sdsCluster(r.source)))], ['sds-grpc']);
  ok.cancel();

  const bad = client.sotw('ads', { node: node('Agent'), metadata: bearer(token) });
  bad.subscribe(TypeUrl.Listener, []);
  const end = await bad.status;
  t.equal(end.code, 3, 'INVALID_ARGUMENT');
  t.match(end.details, /node metadata MESHD_SDS_SOURCE is "Agent"; it must be "agent"/);
});
