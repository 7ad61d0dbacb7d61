import t from 'tap';
import { createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GrpcProcess } from './helpers/child.js';
import { callUntil, expectAlive, expectNoNacks, sleep } from './helpers/calls.js';
import { freePort, startProxylessMesh, TARGET } from './helpers/mesh.js';
import { CERT_CHAIN_FILE, KEY_FILE, ROOT_CERT_FILE, readCertificateSet } from '../../src/agent/cert-dir.js';

/**
 * Short-lived certificates (6 s, renewed at half-life by `meshd agent`, re-read every second by
 * gRPC's file_watcher) while a client makes calls on fresh connections (a new handshake each
 * time) and on one long-lived connection, and while this process reads the files as gRPC does.
 */
interface LoopResult { calls: number; failures: number; errors: string[]; peerSerials: string[]; serverSerials: string[] }

function pairs(cert: string | Buffer, key: string | Buffer): boolean {
  const pub = createPublicKey(createPrivateKey(key)).export({ type: 'spki', format: 'der' });
  return new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' }).equals(pub);
}

t.test('calls keep succeeding across several certificate rotations; the files always pair key and certificate', async (t) => {
  const port = await freePort();
  const mesh = await startProxylessMesh({ mode: 'STRICT', servers: [{ name: 'greeter-1', port }], ttlMs: 6000 });
  const server = new GrpcProcess('server', 'greeter-server.mjs', [String(port), 'greeter-1'], await mesh.bootstrap('server', 'greeter-1', 1));
  const client = new GrpcProcess('client', 'greeter-client.mjs', [], await mesh.bootstrap('client', 'caller', 1));
  t.teardown(async () => {
    await client.stop();
    await server.stop();
    await mesh.close();
  });
  await server.waitFor((l) => l.event === 'bound', 15_000, 'XdsServer serving');
  await client.waitFor((l) => l.event === 'ready', 15_000, 'client');
  await sleep(100);
  await callUntil(client, { target: TARGET }, (l) => l.ok === true, 10_000, 'first call');

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
      await sleep(2);
    }
  });

  await client.request({ op: 'loop-start', loop: 'fresh', target: TARGET, intervalMs: 40, fresh: true });
  await client.request({ op: 'loop-start', loop: 'kept', target: TARGET, intervalMs: 40 });
  await sleep(13_000);
  const fresh = (await client.request({ op: 'loop-stop', loop: 'fresh' })).result as LoopResult;
  const kept = (await client.request({ op: 'loop-stop', loop: 'kept' })).result as LoopResult;
  stop = true;
  await Promise.all(readers);

  const renewed = {
    server: mesh.agents.server.agent.status().renewals - renewalsBefore.server,
    client: mesh.agents.client.agent.status().renewals - renewalsBefore.client,
  };
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
