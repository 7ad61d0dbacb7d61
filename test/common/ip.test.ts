/**
 * Addresses and prefixes parse, fail and print as Go's net/netip does (Istio validates and
 * writes them with it), and range checks follow Envoy's CidrRange::isInRange.
 */
import t from 'tap';
import { formatIp, parseIp, parseIpBlock, parsePrefix, prefixContains } from '../../src/common/ip.js';

t.test('addresses print as netip.Addr.String()', async (t) => {
  const cases: [string, string][] = [
    ['10.1.2.3', '10.1.2.3'],
    ['2001:DB8:0:0:0:0:0:1', '2001:db8::1'],
    ['2001:db8:0:1:0:0:0:1', '2001:db8:0:1::1'], // the longer zero run wins
    ['2001:0:0:1:0:0:1:1', '2001::1:0:0:1:1'], // first of two equal runs
    ['2001:db8:1:1:1:1:0:1', '2001:db8:1:1:1:1:0:1'], // a single zero group is not compressed
    ['::', '::'],
    ['::1', '::1'],
    ['::ffff:10.0.0.1', '::ffff:10.0.0.1'],
    ['0:0:0:0:0:ffff:a00:1', '::ffff:10.0.0.1'],
    ['fe80::1%eth0', 'fe80::1%eth0'],
    ['1::', '1::'],
  ];
  for (const [input, want] of cases) {
    const p = parseIp(input);
    t.ok(p.ok, input);
    if (p.ok) t.equal(formatIp(p.value), want, input);
  }
});

t.test('bad addresses fail with netip\'s text', async (t) => {
  const cases: [string, string][] = [
    ['1.2.3', 'ParseAddr("1.2.3"): IPv4 address too short'],
    ['1.2.3.4.5', 'ParseAddr("1.2.3.4.5"): IPv4 address too long'],
    ['1.2.3.256', 'ParseAddr("1.2.3.256"): IPv4 field has value >255'],
    ['01.2.3.4', 'ParseAddr("01.2.3.4"): IPv4 field has octet with leading zero'],
    ['1..3.4', 'ParseAddr("1..3.4"): IPv4 field must have at least one digit (at ".3.4")'],
    ['1.2.3.x', 'ParseAddr("1.2.3.x"): unexpected character (at "x")'],
    ['host', 'ParseAddr("host"): unable to parse IP'],
    ['%eth0', 'ParseAddr("%eth0"): missing IPv6 address'],
    ['1:2', 'ParseAddr("1:2"): address string too short'],
    ['1::2::3', 'ParseAddr("1::2::3"): multiple :: in address (at ":3")'],
    ['12345::', 'ParseAddr("12345::"): each group must have 4 or less digits (at "12345::")'],
    ['fe80::1%', 'ParseAddr("fe80::1%"): zone must be a non-empty string'],
    ['1:2:3:4:5:6:7:8:9', 'ParseAddr("1:2:3:4:5:6:7:8:9"): trailing garbage after address (at "9")'],
  ];
  for (const [input, want] of cases) t.same(parseIp(input), { ok: false, error: want }, input);
});

t.test('prefixes: bits, zones, and single addresses as /32 or /128', async (t) => {
  t.same(parsePrefix('10.0.0.0/8'), { ok: true, value: { address: { bytes: [10, 0, 0, 0] }, bits: 8 } });
  t.same(parsePrefix('10.0.0.0/08'), { ok: false, error: 'netip.ParsePrefix("10.0.0.0/08"): bad bits after slash: "08"' });
  t.same(parsePrefix('10.0.0.0/-1'), { ok: false, error: 'netip.ParsePrefix("10.0.0.0/-1"): bad bits after slash: "-1"' });
  t.same(parsePrefix('::/129'), { ok: false, error: 'netip.ParsePrefix("::/129"): prefix length out of range' });
  t.same(parsePrefix('10.0.0.0'), { ok: false, error: 'netip.ParsePrefix("10.0.0.0"): no \'/\'' });
  t.same(parsePrefix('fe80::%eth0/64'), { ok: false, error: 'netip.ParsePrefix("fe80::%eth0/64"): IPv6 zones cannot be present in a prefix' });
  const single = parseIpBlock('fe80::1%eth0');
  t.ok(single.ok && single.value.bits === 128 && single.value.address.zone === undefined, 'a single address drops its zone');
  const host = parseIpBlock('10.1.2.3/24');
  t.ok(host.ok && formatIp(host.value.address) === '10.1.2.3', 'host bits are kept as written (netip.ParsePrefix does not mask)');
});

t.test('range checks compare the leading bits of the same family only', async (t) => {
  const prefix = (s: string) => { const p = parseIpBlock(s); if (!p.ok) throw new Error(p.error); return p.value; };
  const ip = (s: string) => { const p = parseIp(s); if (!p.ok) throw new Error(p.error); return p.value; };
  t.ok(prefixContains(prefix('10.1.0.0/16'), ip('10.1.255.3')));
  t.notOk(prefixContains(prefix('10.1.0.0/16'), ip('10.2.0.1')));
  t.ok(prefixContains(prefix('10.1.2.3/20'), ip('10.1.15.1')), 'host bits of the prefix do not matter');
  t.notOk(prefixContains(prefix('10.1.2.3/20'), ip('10.1.16.1')));
  t.ok(prefixContains(prefix('0.0.0.0/0'), ip('8.8.8.8')));
  t.notOk(prefixContains(prefix('0.0.0.0/0'), ip('::1')), 'an IPv6 address is never in an IPv4 range');
  t.notOk(prefixContains(prefix('10.0.0.0/8'), ip('::ffff:10.0.0.1')), 'nor an IPv4-mapped one');
  t.ok(prefixContains(prefix('2001:db8::/32'), ip('2001:db8:ffff::1')));
  t.ok(prefixContains(prefix('1.2.3.4'), ip('1.2.3.4')));
  t.notOk(prefixContains(prefix('1.2.3.4'), ip('1.2.3.5')));
});
