import t from 'tap';
import { createServer, type Server } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../proxyless/helpers/mesh.js';
import { startTestMeshd } from '../e2e/helpers/meshd.js';

/**
 * A start-up that fails half-way (the monitoring port is taken, after the gRPC ports were bound)
 * undoes what it did: the gRPC ports are free again and the same data dir starts a meshd at once.
 */
const listen = (port: number): Promise<Server> => new Promise((resolve, reject) => {
  const s = createServer();
  s.once('error', reject);
  s.listen(port, '127.0.0.1', () => resolve(s));
});
const close = (s: Server): Promise<void> => new Promise((r) => s.close(() => r()));

t.test('the monitoring port taken: start-up fails, naming it, and leaves the gRPC ports free', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'meshd-startup-'));
  t.teardown(() => rm(dataDir, { recursive: true, force: true }));
  const [securePort, plainPort, monitoringPort] = [await freePort(), await freePort(), await freePort()];
  const squatter = await listen(monitoringPort);
  t.teardown(() => close(squatter));
  const addrs = { dataDir, secureGrpcAddr: `127.0.0.1:${securePort}`, grpcAddr: `127.0.0.1:${plainPort}` };

  await t.rejects(startTestMeshd({ ...addrs, monitoringAddr: `127.0.0.1:${monitoringPort}` }), /EADDRINUSE|in use/, 'start-up refuses, naming the cause');
  for (const [name, port] of [['secure gRPC', securePort], ['plaintext gRPC', plainPort]] as const) {
    const probe = await listen(port).catch((err: Error) => err);
    t.notOk(probe instanceof Error, `${name} port ${port} is free again${probe instanceof Error ? `: ${probe.message}` : ''}`);
    if (!(probe instanceof Error)) await close(probe);
  }

  const meshd = await startTestMeshd({ ...addrs, monitoringAddr: '127.0.0.1:0' });
  t.teardown(() => meshd.close());
  t.equal(meshd.ports.secureGrpc, securePort, 'the same data dir and ports start a meshd right away');
});
