import * as grpc from '@grpc/grpc-js';
import { Writable } from 'node:stream';
import { Registry } from 'prom-client';
import { createLogger } from '../../../src/common/logger.js';
import { DiscoveryCore, type DiscoveryCoreOptions } from '../../../src/xds/core/discovery-core.js';
import type { AdmitProxy, Generator } from '../../../src/xds/core/types.js';
import type { Authenticator } from '../../../src/auth/identity.js';
import { addDiscoveryServices } from '../../../src/xds/services/add-discovery-services.js';
import { HeaderAuthenticator } from './test-authenticator.js';
import { HandlerErrors } from '../../../src/common/handler-errors.js';
import { XdsTestClient } from './xds-client.js';

export interface TestXdsServer {
  address: string;
  core: DiscoveryCore;
  registry: Registry;
  server: grpc.Server;
  /** Every log line, parsed. */
  logs: Array<Record<string, any>>;
  client(): XdsTestClient;
  /** Reads one metric sample's value (0 when absent). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

/** A real grpc-js server on 127.0.0.1:0 with the discovery services over one core. */
export async function startXdsServer(options: {
  generators: Generator[];
  authenticator?: Authenticator;
  admit?: AdmitProxy;
  core?: Partial<DiscoveryCoreOptions>;
}): Promise<TestXdsServer> {
  const logs: Array<Record<string, any>> = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  const registry = new Registry();
  const errors = new HandlerErrors({ logger, registry });
  const core = new DiscoveryCore({ logger, registry, errors, generators: options.generators, ...options.core });
  const server = new grpc.Server();
  addDiscoveryServices(server, { core, authenticator: options.authenticator ?? new HeaderAuthenticator(), logger, admit: options.admit, errors });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const address = `127.0.0.1:${port}`;
  const clients: XdsTestClient[] = [];
  return {
    address, core, registry, server, logs,
    client() {
      const c = new XdsTestClient(address);
      clients.push(c);
      return c;
    },
    async metric(name, labels = {}) {
      const metric = registry.getSingleMetric(name);
      if (!metric) return 0;
      const { values } = await metric.get();
      const match = values.find((v) => Object.entries(labels).every(([k, val]) => String((v.labels as Record<string, unknown>)[k]) === val)
        && (!('metricName' in v) || v.metricName === name || v.metricName === `${name}_count`));
      return match?.value ?? 0;
    },
    async close() {
      for (const c of clients) c.close();
      core.close();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    },
  };
}

/** Polls `condition` until it holds (for effects that cross the network, such as a cancel reaching the server). */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
