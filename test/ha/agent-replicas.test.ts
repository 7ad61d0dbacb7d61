import t from 'tap';
import { X509Certificate } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/common/logger.js';
import { meshdTarget } from '../../src/agent/meshd-target.js';
import { startAgent } from '../../src/agent/run-agent.js';
import { tempDir } from '../ca/helpers.js';
import { startPostgres } from '../store/helpers/postgres.js';
import { waitFor } from '../store/helpers/store.js';
import { parseExposition, total } from '../telemetry/helpers/exposition.js';
import { fastStore, startReplica, storeKeyFile } from './helpers.js';

/**
 * `meshd agent --xds-address A,B` in front of two replicas on one store: it renews with
 * whichever replica is up. The replica that signed its first certificate is stopped; the next
 * renewal goes to the other one, with the agent's SVID (no token), and the certificate stays valid throughout.
 */

t.test('several addresses become one gRPC target; what gRPC cannot express is refused', async (t) => {
  t.equal(meshdTarget('meshd.istio-system:15012'), 'meshd.istio-system:15012', 'one name stays as it is');
  t.equal(meshdTarget('10.0.0.1:15012'), '10.0.0.1:15012');
  t.equal(meshdTarget('10.0.0.1:15012, 10.0.0.2:15012'), 'ipv4:10.0.0.1:15012,10.0.0.2:15012');
  t.equal(meshdTarget('[fd00::1]:15012,[fd00::2]:15013'), 'ipv6:[fd00::1]:15012,[fd00::2]:15013');
  t.throws(() => meshdTarget('a.example:15012,b.example:15012'), /several addresses must all be IP:PORT; for names, give one DNS name/);
  t.throws(() => meshdTarget('10.0.0.1:15012,[fd00::1]:15012'), /IPv4 or IPv6 addresses, not both/);
  t.throws(() => meshdTarget('10.0.0.1:15012,10.0.0.1:15012'), /lists 10\.0\.0\.1:15012 twice/);
  t.throws(() => meshdTarget('10.0.0.1:15012,'), /empty entry/);
});

t.test('the agent renews through the other replica when the one it used stops', async (t) => {
  const pg = await startPostgres(t);
  const url = await pg.createDatabase();
  const keyFile = await storeKeyFile(t);
  const a = await startReplica(t, fastStore(url, keyFile, 'replica-a'));
  const b = await startReplica(t, fastStore(url, keyFile, 'replica-b'));
  const dir = tempDir(t);
  const tokenFile = join(dir, 'token');
  await writeFile(tokenFile, await a.token('payments', 'payments-api', 60_000), { mode: 0o600 });
  const caRoot = join(dir, 'root.pem');
  await writeFile(caRoot, a.rootsPem());
  // Certificates each replica signed for workloads since here (each also signs its own serving SVID).
  const signed = async (replica: typeof a): Promise<number> => total(parseExposition(await replica.metricsText()), 'citadel_server_success_cert_issuance_count');
  const baseline = new Map([[a, await signed(a)], [b, await signed(b)]]);
  const issued = async (replica: typeof a): Promise<number> => (await signed(replica)) - baseline.get(replica)!;

  const agent = await startAgent({
    namespace: 'payments', serviceAccount: 'payments-api', trustDomain: 'cluster.local', tokenFile, caRootFile: caRoot,
    outDir: join(dir, 'certs'), meshdAddress: `127.0.0.1:${a.ports.secureGrpc},127.0.0.1:${b.ports.secureGrpc}`,
    // 6 s certificates renewed at half-life: a renewal every ~3 s.
    ttlMs: 6_000, rotation: { fraction: 0.5, jitter: 0.01 }, backoff: { initialMs: 100, maxMs: 500 },
    logger: silentLogger(), clock: systemClock,
  });
  t.teardown(() => agent.stop());
  await agent.ready();
  // pick_first tries the addresses in order, but starts on the next one when a connection is slow
  // to come up (Happy Eyeballs), so either replica may have signed the first certificate.
  const counts = [await issued(a), await issued(b)];
  t.same(counts.slice().sort(), [0, 1], `one replica signed the first certificate (a: ${counts[0]}, b: ${counts[1]})`);
  const [used, other] = counts[0] === 1 ? [a, b] : [b, a];

  const serial = async (): Promise<string> => new X509Certificate(await readFile(join(dir, 'certs', 'cert-chain.pem'))).serialNumber;
  const before = await serial();
  await used.close();
  await waitFor('a renewal through the other replica', async () => ((await issued(other)) >= 1 ? true : undefined), 20_000);
  await waitFor('the renewed certificate in the agent\'s directory', async () => ((await serial()) !== before ? true : undefined), 10_000);
  const cert = new X509Certificate(await readFile(join(dir, 'certs', 'cert-chain.pem')));
  t.ok(Date.parse(cert.validTo) > Date.now(), 'the agent holds a valid certificate');
  t.equal(cert.subjectAltName, 'URI:spiffe://cluster.local/ns/payments/sa/payments-api');
  const refused = total(parseExposition(await other.metricsText()), 'meshd_authentication_failures_total');
  t.equal(refused, 0, 'the other replica refused nothing: the agent renewed with its SVID, signed by the root both replicas share');
});
