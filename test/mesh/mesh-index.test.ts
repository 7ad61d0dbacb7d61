import t from 'tap';
import { indexFor } from '../../src/mesh/mesh-index.js';
import { meshWorkloadResolver } from '../../src/telemetry/mesh-resolver.js';
import { docs, se, snapshotOf } from '../xds/generators/fixtures.js';

const http = [{ number: 80, name: 'http', protocol: 'HTTP' }];
// File order: newest first. Age: private (2021, exported to its own namespace only), public (2022), newest (2024).
const snapshot = snapshotOf(docs(
  se('c', 'newest', { hosts: ['api.example.com'], ports: http, created: '2024-01-01T00:00:00Z' }),
  se('b', 'public', { hosts: ['api.example.com'], ports: http, created: '2022-01-01T00:00:00Z' }),
  se('a', 'private', { hosts: ['api.example.com'], ports: http, created: '2021-01-01T00:00:00Z', exportTo: ['.'] }),
  se('z', 'hidden', { hosts: ['hidden.example.com'], ports: http, exportTo: ['.'] }),
));
const index = indexFor(snapshot);
const owner = (host: string, ns?: string): string | undefined => {
  const e = index.hostOwner(host, ns);
  return e === undefined ? undefined : `${e.meta.namespace}/${e.meta.name}`;
};

t.test('a host belongs to the oldest ServiceEntry a namespace sees, whatever the file order', async (t) => {
  t.equal(owner('api.example.com', 'a'), 'a/private');
  t.equal(owner('api.example.com', 'b'), 'b/public', 'a/private is not exported to b');
  t.equal(owner('api.example.com', 'other'), 'b/public');
  t.equal(owner('api.example.com'), 'a/private', 'without a viewer: the oldest that declares it');
  t.equal(owner('hidden.example.com', 'other'), 'z/hidden', 'visible nowhere but z: still its owner, for telemetry');
  t.equal(owner('nope.example.com', 'a'), undefined);
});

t.test('the xDS targets and telemetry read the same owner', async (t) => {
  const resolver = meshWorkloadResolver(snapshot);
  for (const ns of ['a', 'b', 'c', 'other']) {
    const targets = index.visibleTargets(ns).targets.filter((x) => x.host === 'api.example.com');
    t.equal(targets.length, 1, ns);
    t.equal(resolver.serviceByHost?.('api.example.com', ns)?.namespace, targets[0]!.entry.meta.namespace, ns);
  }
});
