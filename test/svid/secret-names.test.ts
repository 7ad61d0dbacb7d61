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
