import t from 'tap';
import {
  buildSpiffeId, parseSpiffeId, parseWorkloadId, SpiffeIdError, trustDomainId, tryParseSpiffeId, workloadId,
  type SpiffeIdRule,
} from '../../src/ca/spiffe-id.js';

t.test('valid SPIFFE IDs parse into trust domain and path', async (t) => {
  const table: [string, string, string][] = [
    ['spiffe://cluster.local/ns/default/sa/demo', 'cluster.local', '/ns/default/sa/demo'],
    ['spiffe://cluster.local', 'cluster.local', ''],
    ['spiffe://example.org/Path/With-Caps_and.dots', 'example.org', '/Path/With-Caps_and.dots'],
    ['spiffe://td_with-under.score/a', 'td_with-under.score', '/a'],
    ['spiffe://192.168.1.1/ip/looking', '192.168.1.1', '/ip/looking'],
    ['spiffe://a/.../..a/a..', 'a', '/.../..a/a..'],
    [`spiffe://td/${'a'.repeat(2048 - 'spiffe://td/'.length)}`, 'td', `/${'a'.repeat(2048 - 'spiffe://td/'.length)}`],
  ];
  for (const [input, trustDomain, path] of table) {
    const id = parseSpiffeId(input);
    t.same({ trustDomain: id.trustDomain, path: id.path, id: id.id }, { trustDomain, path, id: input }, input.slice(0, 60));
  }
});

t.test('invalid SPIFFE IDs are rejected naming the rule they break', async (t) => {
  const table: [string, SpiffeIdRule, RegExp][] = [
    ['', 'empty', /empty/],
    ['http://cluster.local/ns/a', 'scheme', /scheme must be "spiffe"/],
    ['SPIFFE://cluster.local/ns/a', 'scheme', /lowercase/],
    ['spiffe:/cluster.local/ns/a', 'scheme', /scheme/],
    ['cluster.local/ns/a', 'scheme', /scheme/],
    ['spiffe://', 'trust-domain-missing', /trust domain is empty/],
    ['spiffe:///ns/a', 'trust-domain-missing', /trust domain is empty/],
    ['spiffe://Cluster.local/ns/a', 'trust-domain-uppercase', /lowercase/],
    ['spiffe://user@cluster.local/ns/a', 'trust-domain-userinfo', /userinfo/],
    ['spiffe://cluster.local:8443/ns/a', 'trust-domain-port', /port/],
    ['spiffe://[::1]/ns/a', 'trust-domain-port', /port|IPv6/],
    ['spiffe://clu$ter.local/ns/a', 'trust-domain-charset', /a-z 0-9 \. - _ .*"\$"/],
    ['spiffe://clu%41ster/ns/a', 'percent-encoding', /percent/],
    [`spiffe://${'a'.repeat(256)}/x`, 'trust-domain-too-long', /255 bytes/],
    ['spiffe://cluster.local/ns/a?x=1', 'query', /query/],
    ['spiffe://cluster.local/ns/a#frag', 'fragment', /fragment/],
    ['spiffe://cluster.local/', 'path-trailing-slash', /lone "\/"/],
    ['spiffe://cluster.local/ns/a/', 'path-trailing-slash', /end with "\/"/],
    ['spiffe://cluster.local//ns/a', 'path-empty-segment', /empty segment/],
    ['spiffe://cluster.local/ns//a', 'path-empty-segment', /empty segment/],
    ['spiffe://cluster.local/ns/./a', 'path-dot-segment', /"\." segment/],
    ['spiffe://cluster.local/ns/../a', 'path-dot-segment', /"\.\." segment/],
    ['spiffe://cluster.local/ns/a/..', 'path-dot-segment', /"\.\." segment/],
    ['spiffe://cluster.local/.', 'path-dot-segment', /"\." segment/],
    [`spiffe://${'a'.repeat(255)}/${'b'.repeat(2048 - 255 - 'spiffe:///'.length)}c`, 'too-long', /2049 bytes/],
    ['spiffe://cluster.local/ns/a b', 'path-charset', /found " "/],
    ['spiffe://cluster.local/ns/ü', 'path-charset', /found "ü"/],
    ['spiffe://cluster.local/ns/a%20b', 'percent-encoding', /percent/],
    [`spiffe://td/${'a'.repeat(2049 - 'spiffe://td/'.length)}`, 'too-long', /2049 bytes, above the 2048-byte limit/],
  ];
  for (const [input, rule, message] of table) {
    const result = tryParseSpiffeId(input);
    if (result.ok) {
      t.fail(`accepted ${input}`);
      continue;
    }
    t.equal(result.error.rule, rule, `${input.slice(0, 50)} breaks ${rule}`);
    t.match(result.error.message, message);
    t.match(result.error.message, /^invalid SPIFFE ID /);
  }
});

t.test('workload IDs are built and parsed in Istio form', async (t) => {
  t.equal(workloadId('cluster.local', 'default', 'demo'), 'spiffe://cluster.local/ns/default/sa/demo');
  t.same(parseWorkloadId('spiffe://cluster.local/ns/payments/sa/api'), {
    trustDomain: 'cluster.local', path: '/ns/payments/sa/api', id: 'spiffe://cluster.local/ns/payments/sa/api',
    namespace: 'payments', serviceAccount: 'api',
  });
  t.equal(trustDomainId('example.org'), 'spiffe://example.org');
  t.equal(buildSpiffeId('td', 'a', 'b'), 'spiffe://td/a/b');
  const bad: [() => unknown, SpiffeIdRule][] = [
    [() => workloadId('cluster.local', '', 'demo'), 'path-empty-segment'],
    [() => workloadId('cluster.local', 'a/b', 'demo'), 'path-charset'],
    [() => workloadId('Cluster.local', 'a', 'b'), 'trust-domain-uppercase'],
    [() => workloadId('cluster.local', '..', 'b'), 'path-dot-segment'],
    [() => parseWorkloadId('spiffe://cluster.local/ns/a'), 'not-workload-id'],
    [() => parseWorkloadId('spiffe://cluster.local/ns/a/sa/b/c'), 'not-workload-id'],
    [() => parseWorkloadId('spiffe://cluster.local/namespace/a/sa/b'), 'not-workload-id'],
  ];
  for (const [fn, rule] of bad) {
    try {
      fn();
      t.fail(`no error for ${rule}`);
    } catch (e) {
      t.ok(e instanceof SpiffeIdError, 'a SpiffeIdError');
      t.equal((e as SpiffeIdError).rule, rule);
    }
  }
});
