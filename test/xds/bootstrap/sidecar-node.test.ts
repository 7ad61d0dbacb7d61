import t from 'tap';
import { localityOf } from '../../../src/xds/bootstrap/sidecar-node.js';
import { parseEndpointAddress } from '../../../src/xds/bootstrap/endpoint-address.js';

t.test('Istio locality strings become Envoy localities', async (t) => {
  t.same(localityOf('eu/eu-1/rack-3'), { region: 'eu', zone: 'eu-1', sub_zone: 'rack-3' });
  t.same(localityOf('eu'), { region: 'eu' });
  t.equal(localityOf(''), undefined);
  t.equal(localityOf(undefined), undefined);
});

t.test('meshd addresses: IPs are STATIC, names STRICT_DNS, anything else is refused', async (t) => {
  t.same(parseEndpointAddress('127.0.0.1:15012'), { host: '127.0.0.1', port: 15012, isIp: true });
  t.same(parseEndpointAddress('[::1]:15012'), { host: '::1', port: 15012, isIp: true });
  t.same(parseEndpointAddress('meshd.istio-system.svc:15012'), { host: 'meshd.istio-system.svc', port: 15012, isIp: false });
  const bad: Array<[string, RegExp]> = [
    ['meshd', /must be HOST:PORT/],
    ['::1:15012', /must be HOST:PORT/],
    ['meshd:0', /port must be 1-65535/],
    ['under_score:15012', /is neither an IP address nor a DNS name/],
  ];
  for (const [text, re] of bad) t.throws(() => parseEndpointAddress(text), re, text);
});
