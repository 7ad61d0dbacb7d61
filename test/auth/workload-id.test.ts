import t from 'tap';
import { parseWorkloadId } from '../../src/auth/workload-id.js';
import { AuthenticationError } from '../../src/auth/identity.js';

t.test('a client SVID of the mesh trust domain is an identity', async (t) => {
  t.strictSame(parseWorkloadId('spiffe://cluster.local/ns/shop/sa/web', 'cluster.local'), {
    spiffeId: 'spiffe://cluster.local/ns/shop/sa/web', trustDomain: 'cluster.local', namespace: 'shop', serviceAccount: 'web',
  });
});

t.test('anything else is refused with the reason', async (t) => {
  const rows: Array<[string, RegExp]> = [
    ['spiffe://other.org/ns/shop/sa/web', /^identity spiffe:\/\/other\.org\/ns\/shop\/sa\/web is not of the form spiffe:\/\/cluster\.local\/ns\/<namespace>\/sa\/<service-account>$/],
    ['spiffe://cluster.localx/ns/shop/sa/web', /is not of the form spiffe:\/\/cluster\.local\/ns\/<namespace>\/sa\/<service-account>$/],
    ['spiffe://cluster.local/ns/shop/sa/web/extra', /is not of the form/],
    ['spiffe://cluster.local/ns/shop', /is not of the form/],
    ['spiffe://cluster.local/ns/Shop/sa/web', /^identity spiffe:\/\/cluster\.local\/ns\/Shop\/sa\/web names no valid workload: /],
  ];
  for (const [id, message] of rows) {
    let caught: unknown;
    try {
      parseWorkloadId(id, 'cluster.local');
    } catch (err) {
      caught = err;
    }
    t.type(caught, AuthenticationError, id);
    t.match((caught as Error).message, message, id);
    t.equal((caught as AuthenticationError).reason, 'invalid', id);
  }
});
