import t from 'tap';
import { status } from '@grpc/grpc-js';
import { createSidecarGenerators } from '../../../src/xds/generators/sidecar-generators.js';
import { admitProxy } from '../../../src/xds/admission/admit-proxy.js';
import { GeneratorError, type Generator, type Resource } from '../../../src/xds/core/types.js';
import { decodeStrictAny } from '../../../src/envoy/strict-decode.js';
import { lookupType } from '../../../src/envoy/protos.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';
import { docs, identity, pa, proxyFor, se, snapshotOf, we } from './fixtures.js';

/**
 * A sidecar behind `meshd agent` (node metadata MESHD_SDS_SOURCE=agent) gets its `default` and
 * `ROOTCA` references on the `sds-grpc` cluster, as istiod writes them for istio-agent; the same
 * config otherwise, and the direct sidecar's bytes do not move.
 */

const snap = snapshotOf(docs(
  se('srv', 'api', { ports: [{ number: 8080, name: 'http', protocol: 'HTTP' }], selector: { app: 'api' }, addresses: ['127.0.0.40'] }),
  se('srv', 'db', { ports: [{ number: 5432, name: 'pg', protocol: 'TCP' }], selector: { app: 'db' }, addresses: ['127.0.0.41'] }),
  we('srv', 'api-1', { address: '10.0.1.1', labels: { app: 'api' }, serviceAccount: 'api' }),
  we('srv', 'db-1', { address: '10.0.1.2', labels: { app: 'db' }, serviceAccount: 'db' }),
  pa('srv', 'default', 'PERMISSIVE'),
));
const gens = createSidecarGenerators(() => snap);
const direct = proxyFor('srv', 'api-1', identity('srv', 'api'), '10.0.1.1');
const behindAgent = proxyFor('srv', 'api-1', identity('srv', 'api'), '10.0.1.1', { MESHD_SDS_SOURCE: 'agent' });

const gen = (g: Generator, proxy: typeof direct): Resource[] => g.generate(proxy, { names: undefined }) as Resource[];

function decoded(r: Resource): unknown {
  const any = decodeStrictAny(r.body);
  if (!any.valid) throw new Error(`${r.name}: ${any.errors.join('; ')}`);
  const outer = lookupType('google.protobuf.Any').decode(r.body) as unknown as { type_url: string };
  return lookupType(outer.type_url.replace(/^type.googleapis.com\//, '')).toObject(any.message, { json: true, enums: String, longs: String, defaults: false });
}

/** Every SdsSecretConfig in a decoded resource (typed_config Anys decoded along the way), with its path. */
function secretRefs(value: unknown, path = ''): Array<{ path: string; name: string; source: Record<string, unknown> }> {
  if (Array.isArray(value)) return value.flatMap((v, i) => secretRefs(v, `${path}[${i}]`));
  if (typeof value !== 'object' || value === null) return [];
  const o = value as Record<string, unknown>;
  if (typeof o['@type'] === 'string' && typeof o['value'] === 'string') {
    const type = lookupType(String(o['@type']).replace(/^type.googleapis.com\//, ''));
    return secretRefs(type.toObject(type.decode(Buffer.from(String(o['value']), 'base64')), { enums: String, longs: String, defaults: false }), path);
  }
  if (typeof o['name'] === 'string' && typeof o['sds_config'] === 'object') return [{ path, name: o['name'], source: o['sds_config'] as Record<string, unknown> }];
  return Object.entries(o).flatMap(([k, v]) => secretRefs(v, `${path}.${k}`));
}

const AGENT_SOURCE = {
  api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', set_node_on_first_message_only: true, grpc_services: [{ envoy_grpc: { cluster_name: 'sds-grpc' } }] },
  resource_api_version: 'V3',
  initial_fetch_timeout: { seconds: '0' },
};

t.test('behind the agent, every default/ROOTCA reference in listeners and clusters resolves on sds-grpc; direct ones stay on ADS', async (t) => {
  let agentRefs = 0;
  for (const g of gens) {
    const mine = gen(g, behindAgent);
    const theirs = gen(g, direct);
    t.same(mine.map((r) => r.name), theirs.map((r) => r.name), `${g.typeUrl}: the same resources`);
    for (const [i, r] of mine.entries()) {
      const refs = secretRefs(decoded(r));
      const directRefs = secretRefs(decoded(theirs[i]!));
      t.same(refs.map((x) => [x.path, x.name]), directRefs.map((x) => [x.path, x.name]), `${r.name}: the same secrets at the same places`);
      for (const ref of refs) t.same(ref.source, AGENT_SOURCE, `${r.name}${ref.path} (${ref.name}) from the agent`);
      for (const ref of directRefs) t.same(ref.source, { ads: {}, resource_api_version: 'V3', initial_fetch_timeout: { seconds: '0' } }, `${r.name}${ref.path} direct: over ADS`);
      if (refs.length === 0) t.equal(r, theirs[i], `${r.name}: no secret in it, the very same encoded resource`);
      agentRefs += refs.length;
    }
  }
  t.ok(agentRefs >= 4, `TLS contexts were there to rewrite (${agentRefs} references: inbound listener, outbound clusters)`);
});

t.test('agent-fronted resources are encoded once per snapshot, whoever asks', async (t) => {
  const other = proxyFor('srv', 'db-1', identity('srv', 'db'), '10.0.1.2', { MESHD_SDS_SOURCE: 'agent' });
  const cds = gens.find((g) => g.typeUrl === TypeUrl.Cluster)!;
  const a = gen(cds, behindAgent);
  t.equal(gen(cds, behindAgent), a, 'the same array for the same workload');
  const shared = a.filter((r) => r.name.startsWith('outbound|'));
  const seen = new Map(gen(cds, other).map((r) => [r.name, r]));
  for (const r of shared) t.equal(seen.get(r.name), r, `${r.name}: one object for every agent-fronted sidecar of the namespace`);
});

t.test('admission refuses a MESHD_SDS_SOURCE it does not know, naming the key and the values', async (t) => {
  const admit = admitProxy(() => snap);
  t.doesNotThrow(() => admit(behindAgent));
  t.doesNotThrow(() => admit({ ...direct, metadata: { ...direct.metadata, MESHD_SDS_SOURCE: 'ads' } }), '"ads" is the default spelt out');
  for (const [value, shown] of [['Agent', '"Agent"'], ['x'.repeat(5000), `"${'x'.repeat(64)}"`], [{ a: 1 }, 'a object'], [['agent'], 'a list']] as const) {
    try {
      admit({ ...direct, metadata: { ...direct.metadata, MESHD_SDS_SOURCE: value } });
      t.fail(`${shown} admitted`);
    } catch (err) {
      t.type(err, GeneratorError);
      t.equal((err as GeneratorError).code, status.INVALID_ARGUMENT);
      t.equal((err as Error).message, `proxy "${direct.id}": node metadata MESHD_SDS_SOURCE is ${shown}; it must be "agent" (secrets from meshd agent's SDS socket) or "ads" (from meshd over ADS, the same as leaving it out)`);
    }
  }
});
