import t from 'tap';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { decodeStrictBytes, formatStrictErrors } from '../../src/envoy/strict-decode.js';
import { startTestMeshd, bearer } from './helpers/meshd.js';
import type { SotwResponse, SotwStream } from '../xds/helpers/xds-client.js';

/**
 * An AuthorizationPolicy written into a running meshd's config directory: the selected
 * workload's sidecar gets new listeners carrying the RBAC filters, which decode strictly (so an
 * Envoy-like client ACKs them), an unrelated sidecar gets nothing, and removing the policy
 * brings back byte-identical listeners.
 */
const POLICY = `apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata:
  name: web-deny-admin
  namespace: shop
spec:
  selector:
    matchLabels:
      app: web
  action: DENY
  rules:
  - to:
    - operation:
        paths: ["/admin*"]
`;

/** ACK when every resource decodes strictly, as Envoy would; NACK with the reasons otherwise. Returns the reasons. */
function ackOrNack(ads: SotwStream, r: SotwResponse): string[] {
  const errors: string[] = [];
  for (const res of r.resources) {
    const strict = decodeStrictBytes(r.type_url, res.value);
    if (!strict.valid) errors.push(`${res.name}: ${formatStrictErrors(r.type_url, strict)}`);
  }
  if (errors.length > 0) ads.nack(r, errors.join('; '));
  else ads.ack(r);
  return errors;
}

function rbacFilterNames(r: SotwResponse, listener: string): string[] {
  const l = r.resources.find((x) => x.name === listener);
  if (l === undefined) throw new Error(`no listener ${listener}`);
  const chains = (l.decoded as { filter_chains: Array<{ filters: Array<{ name: string; typed_config: { http_filters?: Array<{ name: string }> } }> }> }).filter_chains;
  return chains.flatMap((c) => c.filters.flatMap((f) => [f.name, ...(f.typed_config.http_filters ?? []).map((h) => h.name)])).filter((n) => n.includes('rbac'));
}

t.test('a live AuthorizationPolicy reaches exactly the selected sidecar, is ACKed, and its removal restores the old listeners', async (t) => {
  const configDir = await mkdtemp(join(tmpdir(), 'meshd-config-'));
  await cp('examples/config', configDir, { recursive: true });
  const meshd = await startTestMeshd({ configDir });
  t.teardown(() => meshd.close());

  const web = meshd.tlsClient().sotw('ads', {
    node: { id: 'sidecar~127.0.0.21~web-1.shop~shop.svc.cluster.local', metadata: { NAMESPACE: 'shop', WORKLOAD_NAME: 'web-1' } },
    metadata: bearer(await meshd.token('shop', 'shop-web')),
  });
  const api = meshd.tlsClient().sotw('ads', {
    node: { id: 'sidecar~127.0.0.11~api-1.payments~payments.svc.cluster.local', metadata: { NAMESPACE: 'payments', WORKLOAD_NAME: 'api-1' } },
    metadata: bearer(await meshd.token('payments', 'payments-api')),
  });
  web.subscribe(TypeUrl.Listener, []);
  api.subscribe(TypeUrl.Listener, []);
  const webFirst = await web.next(10_000);
  const apiFirst = await api.next(10_000);
  t.same(ackOrNack(web, webFirst), [], 'web-1: the initial listeners decode strictly');
  t.same(ackOrNack(api, apiFirst), [], 'api-1: the initial listeners decode strictly');
  t.same(rbacFilterNames(webFirst, '127.0.0.21_8080'), [], 'no RBAC filter before any policy');

  const policyFile = join(configDir, 'authz.yaml');
  await writeFile(policyFile, POLICY);
  const pushed = await web.next(5_000);
  t.equal(pushed.type_url, TypeUrl.Listener, 'web-1 gets listeners');
  t.same(ackOrNack(web, pushed), [], 'web-1 ACKs: every listener with RBAC decodes strictly');
  t.same(rbacFilterNames(pushed, '127.0.0.21_8080'), ['envoy.filters.http.rbac', 'envoy.filters.http.rbac'], 'PERMISSIVE 8080: a DENY filter on both chains (mTLS and plaintext)');
  await web.expectSilence(300);
  await api.expectSilence(300);
  t.pass('api-1 (not selected) got nothing, and web-1 nothing but LDS');

  await rm(policyFile);
  const restored = await web.next(5_000);
  t.same(ackOrNack(web, restored), [], 'web-1 ACKs the listeners without RBAC');
  const bytes = (r: SotwResponse): string[] => r.resources.map((x) => `${x.name}:${Buffer.from(x.value).toString('base64')}`).sort();
  t.same(bytes(restored), bytes(webFirst), 'byte-identical to the listeners before the policy');
  await api.expectSilence(300);

  const lds = meshd.core.connections().flatMap((c) => c.types).filter((x) => x.type === 'lds');
  t.ok(lds.every((x) => x.status === 'SYNCED' || x.status === undefined), `no NACK recorded: ${lds.map((x) => x.status).join(', ')}`);
});
