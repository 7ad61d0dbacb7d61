import t from 'tap';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/common/logger.js';
import { systemClock } from '../../src/common/clock.js';
import { startAgent } from '../../src/agent/run-agent.js';
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
