import t from 'tap';
import * as grpc from '@grpc/grpc-js';
import { Writable } from 'node:stream';
import { createLogger } from '../../src/common/logger.js';
import { startTestMeshd, bearer } from '../e2e/helpers/meshd.js';
import { generateWorkloadKey } from '../../src/agent/workload-csr.js';
import { createCertificateCall, CsrCallError } from '../../src/csr/csr-client.js';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import type { CoreStream, OpenStreamOptions } from '../../src/xds/core/connection.js';
import { waitFor } from '../xds/helpers/xds-server.js';

/**
 * meshd's own gRPC services, as the composition root wires them: an unexpected error in a
 * handler (here made by a failing dependency) ends that call with INTERNAL and a short message,
 * is counted in meshd_handler_errors_total{server="grpc",handler=<method>}, and meshd keeps
 * serving. The xDS case throws while grpc-js delivers a request ('data'): without the guard
 * that is an uncaught exception and ends the process (this test's).
 */

const logs: Array<Record<string, any>> = [];
const logger = createLogger({
  destination: new Writable({
    write(chunk, _enc, cb) {
      for (const line of String(chunk).split('\n')) if (line.trim()) logs.push(JSON.parse(line));
      cb();
    },
  }),
});
const meshd = await startTestMeshd({ logger });
t.teardown(() => meshd.close());
const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const CSR = '/istio.v1.auth.IstioCertificateService/CreateCertificate';

async function handlerErrors(handler: string): Promise<number> {
  const m = new RegExp(`^meshd_handler_errors_total\\{server="grpc",handler="${handler}"\\} (\\d+)$`, 'm').exec(await meshd.metricsText());
  return m ? Number(m[1]) : -1;
}

t.test('every gRPC method meshd serves has a zero series before any error', async (t) => {
  for (const handler of [ADS, CSR, '/envoy.service.secret.v3.SecretDiscoveryService/FetchSecrets', '/envoy.service.accesslog.v3.AccessLogService/StreamAccessLogs']) {
    t.equal(await handlerErrors(handler), 0, handler);
  }
});

t.test('xDS: a throw while a request is handed to the core ends that stream with INTERNAL; the core forgets it', async (t) => {
  // The core fails on one resource name, synchronously, inside grpc-js's delivery of the request.
  const core = meshd.core;
  const openStream = core.openStream.bind(core);
  core.openStream = (options: OpenStreamOptions): CoreStream => {
    const inner = openStream(options);
    return {
      id: inner.id,
      receive: (r) => {
        if (r.kind === 'sotw' && r.resourceNames.includes('explode')) throw new TypeError('Cannot read properties of undefined (reading \'explode\')');
        inner.receive(r);
      },
      closed: () => inner.closed(),
    };
  };
  t.teardown(() => { core.openStream = openStream; });

  const token = await meshd.token('payments', 'api');
  const client = meshd.plaintextClient();
  const s = client.sotw('ads', { node: { id: 'handler-errors-proxy' }, metadata: bearer(token) });
  s.subscribe(TypeUrl.Secret, ['ROOTCA']);
  t.equal((await s.next(10_000)).resources[0]?.name, 'ROOTCA', 'served before the failure');
  await waitFor(() => core.connectedCount === 1, 'the stream to be open');
  s.subscribe(TypeUrl.Secret, ['ROOTCA', 'explode']);
  const ended = await s.status;
  t.equal(ended.code, grpc.status.INTERNAL);
  t.equal(ended.details, 'meshd internal error: Cannot read properties of undefined (reading \'explode\')', 'a short message, no stack');
  t.equal(await handlerErrors(ADS), 1);
  await waitFor(() => core.connectedCount === 0, 'the core to forget the failed stream');
  const logged = logs.filter((l) => l.msg === 'unexpected error in a request handler; answered as an internal error' && l.handler === ADS);
  t.equal(logged.length, 1, 'logged once');

  const again = client.sotw('ads', { node: { id: 'handler-errors-proxy' }, metadata: bearer(token) });
  again.subscribe(TypeUrl.Secret, ['ROOTCA']);
  t.equal((await again.next(10_000)).resources[0]?.name, 'ROOTCA', 'meshd keeps serving');
  again.cancel();
});

t.test('CSR API: an unexpected error of the CA is INTERNAL with a short message, and counted', async (t) => {
  const ca = meshd.ca;
  const signCsr = ca.signCsr.bind(ca);
  ca.signCsr = () => Promise.reject(new TypeError('Cannot read properties of null (reading \'subject\')'));
  t.teardown(() => { ca.signCsr = signCsr; });
  const key = await generateWorkloadKey('ec-p256', 'spiffe://cluster.local/ns/shop/sa/web');
  const err = await createCertificateCall({
    address: `127.0.0.1:${meshd.ports.secureGrpc}`, trustedRootsPem: meshd.rootsPem(), serverSpiffeId: 'spiffe://cluster.local/ns/istio-system/sa/meshd',
    token: await meshd.token('shop', 'web'), csrPem: key.csrPem, validitySeconds: 3600,
  }).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof CsrCallError, 'a gRPC status');
  t.equal((err as CsrCallError).code, grpc.status.INTERNAL);
  t.equal((err as CsrCallError).details, 'certificate issuance failed: Cannot read properties of null (reading \'subject\')');
  t.equal(await handlerErrors(CSR), 1);
});
