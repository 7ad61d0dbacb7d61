import t from 'tap';
import { classifySecretName } from '../../src/svid/secret-names.js';

const me = 'spiffe://cluster.local/ns/payments/sa/api';
const rows: Array<[string, string, string?]> = [
  ['default', 'certificate'],
  ['ROOTCA', 'bundle', 'trusted-ca'],
  ['ALL', 'bundle', 'spiffe'],
  [me, 'certificate'],
  ['spiffe://cluster.local', 'bundle', 'spiffe'],
  ['spiffe://cluster.local/ns/payments/sa/other', 'denied'],
  ['spiffe://cluster.local/ns/shop/sa/api', 'denied'],
  ['spiffe://evil.example', 'denied'],
  ['file-cert:/etc/certs/a.pem~/etc/certs/a-key.pem', 'unknown'],
];

for (const [name, kind, validator] of rows) {
  t.test(`${name} → ${kind}${validator ? ` (${validator})` : ''}`, async (t) => {
    const c = classifySecretName(name, me, 'cluster.local');
    t.equal(c.kind, kind);
    if (validator && c.kind === 'bundle') t.equal(c.validator, validator);
    if (c.kind === 'denied') t.match(c.reason, /not entitled|no bundle/);
  });
}

t.test('a federated trust domain\'s ID is that domain\'s bundle; its workload IDs are still denied', async (t) => {
  const federated = new Set(['west.example']);
  t.same(classifySecretName('spiffe://west.example', me, 'cluster.local', federated), { kind: 'bundle', name: 'spiffe://west.example', validator: 'spiffe', trustDomain: 'west.example' });
  t.equal(classifySecretName('spiffe://west.example/ns/a/sa/b', me, 'cluster.local', federated).kind, 'denied');
  t.equal(classifySecretName('spiffe://north.example', me, 'cluster.local', federated).kind, 'denied');
  t.same(classifySecretName('ROOTCA', me, 'cluster.local', federated), { kind: 'bundle', name: 'ROOTCA', validator: 'trusted-ca' }, 'ROOTCA names no foreign domain');
});
