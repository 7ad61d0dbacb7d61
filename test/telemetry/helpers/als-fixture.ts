import * as grpc from '@grpc/grpc-js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Counter, Registry } from 'prom-client';
import { MeshAuthenticator } from '../../../src/auth/authenticator.js';
import { TokenAuthority } from '../../../src/auth/token-authority.js';
import { systemClock } from '../../../src/common/clock.js';
import { createLogger } from '../../../src/common/logger.js';
import { addAccessLogService, type AccessLogServiceHandle } from '../../../src/telemetry/als-service.js';
import { AccessLogIngester, type AccessLogIngesterOptions } from '../../../src/telemetry/ingester.js';
import type { WorkloadInfo, WorkloadResolver } from '../../../src/telemetry/workload-resolver.js';
import { EnvoyAlsStream, identifier } from './envoy-als.js';

/**
 * A real meshd ALS endpoint for tests: grpc-js server on 127.0.0.1:0 (plaintext, like
 * meshd's loopback port, where the same bearer-token credentials are required), the real
 * MeshAuthenticator with real tokens, a real prom-client registry and the ingester.
 */

export const TD = 'cluster.local';
export const spiffe = (ns: string, sa: string) => `spiffe://${TD}/ns/${ns}/sa/${sa}`;

/** A small mesh: bookinfo's productpage and reviews, and a legacy client without a sidecar. */
export const WORKLOADS: Record<string, WorkloadInfo> = {
  '10.0.0.1': { workload: 'productpage-v1', namespace: 'default', principal: spiffe('default', 'bookinfo-productpage'), labels: { app: 'productpage', version: 'v1' }, service: 'productpage.default.svc.cluster.local' },
  '10.0.0.2': { workload: 'reviews-v2', namespace: 'default', principal: spiffe('default', 'bookinfo-reviews'), labels: { app: 'reviews', version: 'v2' }, service: 'reviews.default.svc.cluster.local' },
  '10.0.0.3': { workload: 'mysqldb-v1', namespace: 'db', principal: spiffe('db', 'mysql'), labels: { app: 'mysqldb', version: 'v1' }, service: 'mysqldb.db.svc.cluster.local' },
  '10.0.0.9': { workload: 'legacy-client', namespace: 'legacy', labels: { app: 'legacy' } },
};

export const resolver: WorkloadResolver = {
  byAddress: (ip) => WORKLOADS[ip],
};

export interface AlsFixture {
  address: string;
  registry: Registry;
  ingester: AccessLogIngester;
  service: AccessLogServiceHandle;
  server: grpc.Server;
  client: grpc.Client;
  logs: () => string;
  token(ns: string, sa: string): Promise<string>;
  /** A StreamAccessLogs call authenticated as ns/sa with Envoy's node for that workload. */
  stream(opts: { ns: string; sa: string; ip: string; workload: string; logName: string; metadata?: Record<string, unknown> }): Promise<EnvoyAlsStream>;
  close(): Promise<void>;
}

export async function startAlsFixture(options: Partial<AccessLogIngesterOptions> = {}, extra?: (server: grpc.Server) => void): Promise<AlsFixture> {
  const dir = await mkdtemp(join(tmpdir(), 'meshd-als-'));
  const tokens = await TokenAuthority.open(dir, systemClock);
  const registry = new Registry();
  let logText = '';
  const sink = new PassThrough();
  sink.on('data', (d) => (logText += d));
  const logger = createLogger({ level: 'debug', destination: sink });
  const authenticator = new MeshAuthenticator({
    trustDomain: TD,
    tokens,
    issuers: () => [],
    clock: systemClock,
    logger,
    // The CA's counter lives on its own registry here, so `registry` holds telemetry's metrics only.
    failures: new Counter({ name: 'citadel_server_authentication_failure_count', help: 'x', registers: [new Registry()] }),
  });
  const ingester = new AccessLogIngester({ registry, logger, resolver, defaultCluster: 'Kubernetes', ...options });
  const server = new grpc.Server();
  const service = addAccessLogService(server, { authenticator, ingest: ingester, logger, registry });
  extra?.(server);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const address = `127.0.0.1:${port}`;
  const client = new grpc.Client(address, grpc.credentials.createInsecure());

  const token = async (ns: string, sa: string) => (await tokens.issue({ namespace: ns, serviceAccount: sa }, 3_600_000)).token;
  return {
    address, registry, ingester, service, server, client,
    logs: () => logText,
    token,
    async stream({ ns, sa, ip, workload, logName, metadata }) {
      const md = new grpc.Metadata();
      md.set('authorization', `Bearer ${await token(ns, sa)}`);
      const node = { id: `sidecar~${ip}~${workload}.${ns}~${ns}.svc.${TD}`, metadata: { NAMESPACE: ns, CLUSTER_ID: 'Kubernetes', ...metadata } };
      return new EnvoyAlsStream(client, identifier(node, logName), md);
    },
    async close() {
      client.close();
      service.close();
      ingester.stop();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      await rm(dir, { recursive: true, force: true });
    },
  };
}
