import t, { type Test } from 'tap';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Registry } from 'prom-client';
import { openCertificateAuthority } from '../../src/ca/authority.js';
import { ManualClock } from '../../src/common/clock.js';
import { silentLogger } from '../../src/common/logger.js';
import { SecretGenerator } from '../../src/svid/secret-generator.js';
import { caSvidSource } from '../../src/svid/svid-source.js';
import { SvidCache } from '../../src/svid/svid-cache.js';
import { decodeMessage, lookupType } from '../../src/envoy/protos.js';
import type { ProxyInfo } from '../../src/xds/core/types.js';

const ID = 'spiffe://cluster.local/ns/shop/sa/cart';
const HOUR = 3_600_000;

async function setup(t: Test) {
  const dataDir = await mkdtemp(join(tmpdir(), 'meshd-secret-gen-'));
  t.teardown(() => import('node:fs/promises').then((fs) => fs.rm(dataDir, { recursive: true, force: true })));
  const clock = new ManualClock(Date.now());
  const ca = await openCertificateAuthority({ dataDir, trustDomain: 'cluster.local', registry: new Registry(), autoRotate: false });
  const svids = new SvidCache({
    ca, clock, logger: silentLogger(), ttlMs: () => 24 * HOUR, rotation: () => ({ fraction: 0.8, jitter: 0 }), onDue: () => undefined,
  });
  const generator = new SecretGenerator({ source: caSvidSource(ca, svids), logger: silentLogger() });
  const proxy: ProxyInfo = {
    id: 'cart-1', cluster: 'cart', metadata: {}, userAgent: 'envoy',
    identity: { spiffeId: ID, trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'cart', via: 'token' },
  };
  return { clock, generator, proxy };
}

/** The PEM chain inside an encoded tls_certificate Secret. */
function chainOf(body: Uint8Array): string {
  const Any = lookupType('google.protobuf.Any');
  const any = Any.toObject(Any.decode(body), { bytes: Buffer }) as { type_url: string; value: Buffer };
  const secret = decodeMessage(any.type_url, any.value) as { tls_certificate: { certificate_chain: { inline_bytes: Buffer } } };
  return secret.tls_certificate.certificate_chain.inline_bytes.toString();
}

t.test('a certificate secret is encoded once per SVID and name, under each name the proxy asks by', async (t) => {
  const { generator, proxy } = await setup(t);
  const [byDefault] = await generator.generate(proxy, { names: new Set(['default']) });
  const [again] = await generator.generate(proxy, { names: new Set(['default']) });
  t.equal(again, byDefault, 'the same name and SVID reuse the encoded resource');

  // SPIRE-style configs name the certificate by the SPIFFE ID: same SVID, its own resource.
  const [byId] = await generator.generate(proxy, { names: new Set([ID]) });
  t.equal(byId!.name, ID);
  t.not(byId, byDefault);
  t.equal(chainOf(byId!.body), chainOf(byDefault!.body), 'both names carry the same SVID');
  const [defaultThird] = await generator.generate(proxy, { names: new Set(['default']) });
  const [idAgain] = await generator.generate(proxy, { names: new Set([ID]) });
  t.equal(defaultThird, byDefault, 'the first name is still cached after a second name was added');
  t.equal(idAgain, byId);
});

t.test('a rotated SVID gets new bytes under the same name', async (t) => {
  const { clock, generator, proxy } = await setup(t);
  const [before] = await generator.generate(proxy, { names: new Set(['default']) });
  clock.advance(20 * HOUR); // past 0.8 of 24h: due
  const [after] = await generator.generate(proxy, { names: new Set(['default']) });
  t.not(after!.version, before!.version);
  t.not(chainOf(after!.body), chainOf(before!.body));
});
