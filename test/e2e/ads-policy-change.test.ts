import t from 'tap';
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TypeUrl } from '../../src/envoy/type-urls.js';
import { startTestMeshd, bearer } from './helpers/meshd.js';
import type { SotwResponse } from '../xds/helpers/xds-client.js';

/** The transport protocols the filter chains of shop/web-1's inbound listener on `port` accept. */
function inboundTransports(r: SotwResponse, port: number): string[] {
  const listener = r.resources.find((x) => x.name === `127.0.0.21_${port}`);
  if (!listener) throw new Error(`no inbound listener for ${port} in ${r.resources.map((x) => x.name).join(', ')}`);
  const chains = (listener.decoded as { filter_chains: Array<{ filter_chain_match?: { transport_protocol?: string } }> }).filter_chains;
  return chains.map((c) => c.filter_chain_match?.transport_protocol ?? '(any)').sort();
}

async function until<T>(fn: () => Promise<T | undefined>, what: string, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

t.test('a live PERMISSIVE → STRICT edit reaches the ADS stream; an invalid edit next keeps STRICT in force and is reported', async (t) => {
  const configDir = await mkdtemp(join(tmpdir(), 'meshd-config-'));
  await cp('examples/config', configDir, { recursive: true });
  const meshd = await startTestMeshd({ configDir });
  t.teardown(() => meshd.close());

  const ads = meshd.tlsClient().sotw('ads', {
    node: { id: 'sidecar~127.0.0.21~web-1.shop~shop.svc.cluster.local', metadata: { NAMESPACE: 'shop', WORKLOAD_NAME: 'web-1' } },
    metadata: bearer(await meshd.token('shop', 'shop-web')),
  });
  ads.subscribe(TypeUrl.Listener, []);
  const first = await ads.next(10_000);
  ads.ack(first);
  t.same(inboundTransports(first, 8080), ['raw_buffer', 'tls'], 'PERMISSIVE: TLS and plaintext chains, told apart by tls_inspector');
  t.same(inboundTransports(first, 9090), ['raw_buffer'], 'port-level DISABLE on 9090: plaintext only');

  const shopFile = join(configDir, 'shop.yaml');
  const original = await readFile(shopFile, 'utf8');
  const strict = original.replace(/mode: PERMISSIVE/, 'mode: STRICT');
  t.not(strict, original);
  const editedAt = Date.now();
  await writeFile(shopFile, strict);
  const pushed = await ads.next(5_000);
  const latency = Date.now() - editedAt;
  t.not(pushed.version_info, first.version_info, 'a new listener version');
  t.same(inboundTransports(pushed, 8080), ['tls'], 'STRICT: no plaintext chain left on 8080');
  t.same(inboundTransports(pushed, 9090), ['raw_buffer'], 'the port-level DISABLE still applies to 9090');
  ads.ack(pushed);
  // The issue asks for "within a second"; timing is reported, not asserted (the suite runs on loaded CI machines).
  t.comment(`the new listeners arrived ${latency} ms after the edit (debounce 100 ms)`);
  const synced = await until(async () => {
    const lds = meshd.core.connections().flatMap((c) => c.types).find((x) => x.type === 'lds');
    return lds?.status === 'SYNCED' && lds.versionAcked === pushed.version_info ? lds : undefined;
  }, 'the ACK to be recorded');
  t.equal(synced.versionAcked, pushed.version_info, 'meshd saw the ACK');

  await writeFile(shopFile, strict.replace(/mode: STRICT/, 'mode: STRIKT'));
  const report = await until(async () => {
    const res = await fetch(`http://127.0.0.1:${meshd.ports.monitoring}/debug/config`);
    const body = (await res.json()) as { messages: Array<{ level: string; message: string; source: { file: string; line: number } }> };
    return body.messages.find((m) => m.level === 'error' && m.source.file.endsWith('shop.yaml'));
  }, 'the invalid edit to be reported');
  t.match(report.message, /STRIKT/, 'the error names the bad value');
  t.ok(report.source.line > 0, `with its line (${report.source.line})`);
  await ads.expectSilence(500);
  const lds = meshd.core.connections().flatMap((c) => c.types).find((x) => x.type === 'lds');
  t.equal(lds?.versionSent, pushed.version_info, 'the last good (STRICT) listeners stay in force: nothing else was sent');
  t.equal(lds?.status, 'SYNCED');
});
