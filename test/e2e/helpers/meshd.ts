import * as grpc from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger, type Logger } from '../../../src/common/logger.js';
import { systemClock } from '../../../src/common/clock.js';
import { startMeshd, type MeshdOptions, type RunningMeshd } from '../../../src/server/meshd.js';
import { XdsTestClient } from '../../xds/helpers/xds-client.js';

export interface TestMeshd extends RunningMeshd {
  dataDir: string;
  trustDomain: string;
  /** The PEM bundle a client uses to verify meshd's serving certificate. */
  rootsPem(): string;
  token(namespace: string, serviceAccount: string, ttlMs?: number): Promise<string>;
  /** A client on the TLS port that verifies meshd's SVID (by URI SAN, as Envoy's xds-grpc cluster does). */
  tlsClient(clientCert?: { keyPem: string; chainPem: string }): XdsTestClient;
  plaintextClient(): XdsTestClient;
  metricsText(): Promise<string>;
  close(): Promise<void>;
}

/** An in-process meshd on ephemeral loopback ports with its own temporary data dir. */
export async function startTestMeshd(overrides: Partial<MeshdOptions> & { logger?: Logger } = {}): Promise<TestMeshd> {
  const dataDir = overrides.dataDir ?? (await mkdtemp(join(tmpdir(), 'meshd-e2e-')));
  const trustDomain = overrides.trustDomain ?? 'cluster.local';
  const meshd = await startMeshd({
    dataDir,
    trustDomain,
    secureGrpcAddr: '127.0.0.1:0',
    grpcAddr: '127.0.0.1:0',
    monitoringAddr: '127.0.0.1:0',
    logger: overrides.logger ?? silentLogger(),
    clock: systemClock,
    // SVIDs are minted on the event loop unless a test asks for workers. A mint worker started
    // from the sources loads tsx and the CA's modules on its own thread (about a second of CPU
    // for each meshd a test starts); the pool has its own tests (test/ca/mint-pool.test.ts),
    // and every `meshd serve` a test runs as a process mints on its default workers.
    caWorkers: 0,
    ...overrides,
  });
  const clients: XdsTestClient[] = [];
  const track = (c: XdsTestClient): XdsTestClient => { clients.push(c); return c; };
  return {
    ...meshd,
    dataDir,
    trustDomain,
    rootsPem: () => meshd.ca.trustBundle().rootsPem.join(''),
    token: async (ns, sa, ttlMs = 3_600_000) => (await meshd.tokens.issue({ namespace: ns, serviceAccount: sa }, ttlMs)).token,
    tlsClient(clientCert) {
      const creds = grpc.credentials.createSsl(
        Buffer.from(meshd.ca.trustBundle().rootsPem.join('')),
        clientCert ? Buffer.from(clientCert.keyPem) : null,
        clientCert ? Buffer.from(clientCert.chainPem) : null,
        {
          // meshd's SVID names it by URI SAN (and DNS "meshd"/"localhost"): check the SPIFFE ID, as Envoy's xds-grpc cluster does.
          checkServerIdentity: (_host, cert) => {
            const expected = `URI:spiffe://${trustDomain}/ns/istio-system/sa/meshd`;
            return (cert.subjectaltname ?? '').split(', ').includes(expected) ? undefined : new Error(`server is not ${expected}: ${cert.subjectaltname}`);
          },
        },
      );
      return track(new XdsTestClient(`127.0.0.1:${meshd.ports.secureGrpc}`, creds, { 'grpc.ssl_target_name_override': 'meshd', 'grpc.use_local_subchannel_pool': 1 }));
    },
    plaintextClient: () => track(new XdsTestClient(`127.0.0.1:${meshd.ports.grpc}`)),
    metricsText: async () => (await fetch(`http://127.0.0.1:${meshd.ports.monitoring}/metrics`)).text(),
    async close() {
      for (const c of clients) c.close();
      await meshd.stop(2000);
      if (!overrides.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

export function bearer(token: string): Record<string, string> {
  return { authorization: `Bearer ${token}` };
}
