import t from 'tap';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/common/logger.js';
import { systemClock } from '../../src/common/clock.js';
import { startAgent } from '../../src/agent/run-agent.js';
import type { AgentCertificate } from '../../src/agent/agent.js';
import { agentSvidSource } from '../../src/agent/local-sds.js';
import type { IssuedKeyPair } from '../../src/ca/types.js';
import { SecretGenerator } from '../../src/svid/secret-generator.js';
import { caSvidSource } from '../../src/svid/svid-source.js';
import type { ProxyInfo } from '../../src/xds/core/types.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { startTestMeshd } from '../e2e/helpers/meshd.js';
import { XdsTestClient, type SotwResponse } from '../xds/helpers/xds-client.js';

/**
 * `meshd agent --sds-socket`: SDS for a local Envoy on a Unix socket, with meshd's secret names,
 * backed by the key the agent made (it never crossed the network), pushed again on renewal.
 */
function secret(r: SotwResponse, name: string): Record<string, any> {
  const found = r.resources.find((x) => x.name === name);
  if (!found) throw new Error(`no secret ${name} in (${r.resources.map((x) => x.name).join(', ')})`);
  return found.decoded as Record<string, any>;
}
const pem = (f: { inline_bytes?: unknown }): string => Buffer.from(f.inline_bytes as Buffer).toString('utf8');

t.test('serves default, ROOTCA, the own SPIFFE ID and the trust domain from the agent\'s files; refuses others; pushes renewals', async (t) => {
  const meshd = await startTestMeshd();
  t.teardown(() => meshd.close());
  const dir = await mkdtemp(join(tmpdir(), 'meshd-agent-sds-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'root.pem'), meshd.rootsPem());
  await writeFile(join(dir, 'token'), await meshd.token('shop', 'web'));
  const socket = join(dir, 'sds.sock');
  const running = await startAgent({
    namespace: 'shop', serviceAccount: 'web', trustDomain: 'cluster.local', tokenFile: join(dir, 'token'), outDir: join(dir, 'out'),
    meshdAddress: `127.0.0.1:${meshd.ports.secureGrpc}`, caRootFile: join(dir, 'root.pem'), sdsSocket: socket,
    logger: silentLogger(), clock: systemClock,
  });
  t.teardown(() => running.stop());
  await running.ready();
  t.equal((await stat(socket)).mode & 0o777, 0o600, 'the socket is 0600: only the workload\'s user may connect');

  const client = new XdsTestClient(`unix:${socket}`);
  t.teardown(() => client.client.close());
  const stream = client.sotw('sds', { node: { id: 'sidecar~127.0.0.1~web-1.shop~shop.svc.cluster.local' } });
  const own = 'spiffe://cluster.local/ns/shop/sa/web';
  stream.subscribe(TypeUrl.Secret, ['default', 'ROOTCA', own, 'spiffe://cluster.local']);
  const first = await stream.next(10_000);
  stream.ack(first);
  const files = running.agent.certificate()!.set;
  t.equal(pem(secret(first, 'default').tls_certificate.certificate_chain), files.certChainPem, 'default = cert-chain.pem');
  t.equal(pem(secret(first, 'default').tls_certificate.private_key), files.keyPem, 'with the agent\'s own key');
  t.equal(pem(secret(first, own).tls_certificate.certificate_chain), files.certChainPem, 'the SPIFFE ID name (SPIRE style) too');
  t.equal(pem(secret(first, 'ROOTCA').validation_context.trusted_ca), meshd.rootsPem(), 'ROOTCA = the bundle');
  t.ok(secret(first, 'spiffe://cluster.local').validation_context.custom_validator_config, 'the trust domain through the SPIFFE validator');

  await running.agent.renewNow();
  const pushed = await stream.next(10_000);
  stream.ack(pushed);
  t.equal(pem(secret(pushed, 'default').tls_certificate.certificate_chain), running.agent.certificate()!.set.certChainPem, 'a renewal is pushed on the open stream');
  t.not(running.agent.certificate()!.set.certChainPem, files.certChainPem);

  const other = client.sotw('sds', { node: { id: 'x' } });
  other.subscribe(TypeUrl.Secret, ['spiffe://cluster.local/ns/payments/sa/admin']);
  const end = await other.status;
  t.equal(end.code, 7, `another identity is PERMISSION_DENIED (${end.details})`);
});

/** A stand-in for the agent: the certificate set the test gives it, and ready() when it has one. */
function fakeAgent(set: { certChainPem: string; keyPem: string; rootCertPem: string } | undefined) {
  let current = set && ({ set } as unknown as AgentCertificate);
  let resolveReady!: () => void;
  const ready = new Promise<void>((r) => (resolveReady = r));
  if (current) resolveReady();
  return {
    ready: () => ready,
    certificate: () => current,
    identity: () => ({ spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web' }),
    give(next: { certChainPem: string; keyPem: string; rootCertPem: string }) { current = { set: next } as unknown as AgentCertificate; resolveReady(); },
  };
}

const proxy: ProxyInfo = {
  id: 'sidecar~127.0.0.1~web-1.shop~shop.svc.cluster.local', cluster: 'web', metadata: {}, userAgent: 'envoy',
  identity: { spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web', via: 'local-socket' },
};
const ALL_NAMES = new Set(['default', 'ROOTCA', 'ALL', proxy.identity.spiffeId, 'spiffe://cluster.local']);
const fakePem = (label: string): string => `-----BEGIN CERTIFICATE-----\nMIIB${label}\n-----END CERTIFICATE-----\n`;

t.test('the agent serves the bytes meshd serves for the same certificate and bundle: one secret generator', async (t) => {
  const set = { certChainPem: fakePem('leaf') + fakePem('intermediate'), keyPem: '-----BEGIN PRIVATE KEY-----\nMIGHkey\n-----END PRIVATE KEY-----\n', rootCertPem: fakePem('root1') + fakePem('root2') };
  const agentSide = new SecretGenerator({ source: agentSvidSource(fakeAgent(set)), logger: silentLogger() });
  const ca = { trustBundle: () => ({ trustDomain: 'cluster.local', rootsPem: [fakePem('root1'), fakePem('root2')], sequence: 1, refreshHintSeconds: 300 }) };
  const svid = { chainPem: set.certChainPem, keyPem: set.keyPem } as IssuedKeyPair;
  const meshdSide = new SecretGenerator({ source: caSvidSource(ca, { get: async () => svid }), logger: silentLogger() });
  const a = await agentSide.generate(proxy, { names: ALL_NAMES });
  const m = await meshdSide.generate(proxy, { names: ALL_NAMES });
  t.same(a.map((r) => r.name), [...ALL_NAMES]);
  t.same(a.map((r) => Buffer.from(r.body).toString('hex')), m.map((r) => Buffer.from(r.body).toString('hex')), 'byte for byte');
});

t.test('agent source: requests wait for the first certificate set; a new root-cert.pem re-encodes the bundles, the same set is encoded once', async (t) => {
  const agent = fakeAgent(undefined);
  const generator = new SecretGenerator({ source: agentSvidSource(agent), logger: silentLogger() });
  let answered = false;
  const pending = generator.generate(proxy, { names: new Set(['ROOTCA']) }).then((r) => { answered = true; return r; });
  await new Promise((r) => setImmediate(r));
  t.notOk(answered, 'no answer before the agent holds a certificate');
  const first = { certChainPem: fakePem('leaf1'), keyPem: 'key1', rootCertPem: fakePem('root1') };
  agent.give(first);
  const [rootca] = await pending;
  t.ok(rootca, 'answered once it does');
  const [again] = await generator.generate(proxy, { names: new Set(['ROOTCA']) });
  t.equal(again, rootca, 'the same bundle: the same encoded resource');
  const [def1] = await generator.generate(proxy, { names: new Set(['default']) });
  const [def1again] = await generator.generate(proxy, { names: new Set(['default']) });
  t.equal(def1again, def1, 'the same certificate set: the same encoded resource');
  agent.give({ ...first, rootCertPem: fakePem('root1') + fakePem('root2') });
  const [rotated] = await generator.generate(proxy, { names: new Set(['ROOTCA']) });
  t.not(rotated!.version, rootca!.version, 'a new root-cert.pem: a new ROOTCA');
  const [def2] = await generator.generate(proxy, { names: new Set(['default']) });
  t.not(def2, def1, 'a new set is encoded anew');
  t.equal(def2!.version, def1!.version, 'with the same bytes when only the bundle changed');
});
