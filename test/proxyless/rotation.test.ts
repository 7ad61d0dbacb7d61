import t from 'tap';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GrpcProcess } from './helpers/child.js';
import { callUntil, expectAlive, expectNoNacks, sleep } from './helpers/calls.js';
import { freePort, startProxylessMesh, TARGET } from './helpers/mesh.js';
import { CERT_CHAIN_FILE, KEY_FILE, ROOT_CERT_FILE, readCertificateSet } from '../../src/agent/cert-dir.js';

/**
 * Short-lived certificates (12 s, renewed by `meshd agent` after a quarter of their life, so
 * every ~3 s, re-read every second by gRPC's file_watcher) while a client makes calls on fresh
 * connections (a new handshake each time) and on one long-lived connection, and while this
 * process reads the files as gRPC does. Renewing early leaves 9 s between a renewal and the
 * expiry of the certificate it replaces, so a machine under load that delays a renewal or a
 * file re-read by seconds still never serves an expired certificate. The test runs until both
 * sides have rotated at least three times and the client has seen three certificates of each
 * side on fresh connections, rather than for a fixed time.
 */
interface LoopResult { calls: number; failures: number; errors: string[]; peerSerials: string[]; serverSerials: string[] }

function pairs(cert: string | Buffer, key: string | Buffer): boolean {
  const pub = createPublicKey(createPrivateKey(key)).export({ type: 'spki', format: 'der' });
  return new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' }).equals(pub);
}

t.test('calls keep succeeding across several certificate rotations; the files always pair key and certificate', async (t) => {
  const port = await freePort();
  const mesh = await startProxylessMesh({ mode: 'STRICT', servers: [{ name: 'greeter-1', port }], ttlMs: 12_000, rotationFraction: 0.25 });
  const server = new GrpcProcess('server', 'greeter-server.mjs', [String(port), 'greeter-1'], await mesh.bootstrap('server', 'greeter-1', 1));
  const client = new GrpcProcess('client', 'greeter-client.mjs', [], await mesh.bootstrap('client', 'caller', 1));
  t.teardown(async () => {
    await client.stop();
    await server.stop();
    await mesh.close();
  });
  // Deadlines for outcomes, generous for a loaded machine (two Node processes start here).
  await server.waitFor((l) => l.event === 'bound', 60_000, 'XdsServer serving');
  await client.waitFor((l) => l.event === 'ready', 60_000, 'client');
  await callUntil(client, { target: TARGET }, (l) => l.ok === true, 30_000, 'first call');

  const renewalsBefore = { server: mesh.agents.server.agent.status().renewals, client: mesh.agents.client.agent.status().renewals };
  let stop = false;
  const files = { reads: 0, unpaired: 0, straddled: 0, setReads: 0 };
  const readers = [mesh.certDirs.server, mesh.certDirs.client].map(async (dir) => {
    while (!stop) {
      // As gRPC's file_watcher reads them: three files, three opens, started together.
      const [cert, key, root] = await Promise.all([CERT_CHAIN_FILE, KEY_FILE, ROOT_CERT_FILE].map((f) => readFile(join(dir, f))));
      new X509Certificate(root!);
      files.reads++;
      if (!pairs(cert!, key!)) {
        // Only possible if a swap landed between two of those opens; the set itself must pair.
        const set = await readCertificateSet(dir);
        if (set && pairs(set.certChainPem, set.keyPem)) files.straddled++;
        else files.unpaired++;
      }
      const set = await readCertificateSet(dir);
      files.setReads++;
      if (!set || !pairs(set.certChainPem, set.keyPem)) files.unpaired++;
      // Paced, not a wait for anything: back to back, these reads would take the CPU the agents
      // and the workloads under test need.
      await sleep(2);
    }
  });

  await client.request({ op: 'loop-start', loop: 'fresh', target: TARGET, intervalMs: 40, fresh: true });
  await client.request({ op: 'loop-start', loop: 'kept', target: TARGET, intervalMs: 40 });
  const renewedSince = (): { server: number; client: number } => ({
    server: mesh.agents.server.agent.status().renewals - renewalsBefore.server,
    client: mesh.agents.client.agent.status().renewals - renewalsBefore.client,
  });
  const deadline = Date.now() + 90_000;
  for (;;) {
    const progress = (await client.request({ op: 'loop-status', loop: 'fresh' })).result as { peerSerials: number; serverSerials: number };
    const r = renewedSince();
    if (r.server >= 3 && r.client >= 3 && progress.peerSerials >= 3 && progress.serverSerials >= 3) break;
    if (Date.now() > deadline) throw new Error(`not enough rotations seen within 90 s: renewed ${JSON.stringify(r)}, fresh connections saw ${JSON.stringify(progress)}`);
    await sleep(250);
  }
  const fresh = (await client.request({ op: 'loop-stop', loop: 'fresh' })).result as LoopResult;
  const kept = (await client.request({ op: 'loop-stop', loop: 'kept' })).result as LoopResult;
  stop = true;
  await Promise.all(readers);

  const renewed = renewedSince();
  t.ok(renewed.server >= 3 && renewed.client >= 3, `several rotations on both sides (server ${renewed.server}, client ${renewed.client})`);
  t.equal(fresh.failures, 0, `${fresh.calls} calls on fresh connections, none failed${fresh.errors.length ? `: ${fresh.errors.join(' | ')}` : ''}`);
  t.equal(kept.failures, 0, `${kept.calls} calls on a kept connection, none failed${kept.errors.length ? `: ${kept.errors.join(' | ')}` : ''}`);
  t.ok(fresh.peerSerials.length >= 3, `the server saw ${fresh.peerSerials.length} successive client certificates on new connections`);
  t.ok(fresh.serverSerials.length >= 3, `the client saw ${fresh.serverSerials.length} successive server certificates on new connections`);
  t.equal(kept.peerSerials.length, 1, 'the kept connection keeps the certificate of its handshake (gRPC never re-checks it)');
  t.equal(files.unpaired, 0, `${files.reads} gRPC-style reads and ${files.setReads} set reads: the files on disk always pair key and certificate`);
  t.comment(`gRPC-style reads that straddled a swap (three opens, set itself paired): ${files.straddled}`);
  expectAlive(t, server);
  expectAlive(t, client);
  await expectNoNacks(t, mesh);
});
