import t from 'tap';
import { simulateConnection, type Outcome } from '../../src/check/simulate-connection.js';
import { docs, pa, se, snapshotOf, we, workload } from '../xds/generators/fixtures.js';

/**
 * `meshd check`'s matrix: namespace mode × port-level override × client inside/outside the
 * mesh × HTTP/TCP. Expected outcomes follow Istio:
 * - a client outside the mesh sends plaintext: reset (NR) under STRICT, plaintext otherwise;
 * - a mesh client uses auto mTLS only when the server's namespace is not DISABLE (the inferred
 *   service mode, as in Istio's cluster builder) and the endpoint's own mode for the port is not DISABLE; so a
 *   port-level STRICT inside a DISABLE namespace is reset even for mesh clients, as in Istio.
 */
type Mode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

function expected(ns: Mode, override: Mode | undefined, client: 'inside' | 'outside'): Outcome {
  const effective = override ?? ns;
  const clientMtls = client === 'inside' && ns !== 'DISABLE' && effective !== 'DISABLE';
  if (clientMtls) return 'mtls';
  return effective === 'STRICT' ? 'reset' : 'plaintext';
}

for (const protocol of ['HTTP', 'TCP']) {
  for (const ns of ['STRICT', 'PERMISSIVE', 'DISABLE'] as const) {
    const snapFor = (override: Mode | undefined) => snapshotOf(docs(
      pa('srv', 'default', ns),
      ...(override ? [pa('srv', 'api-port', 'UNSET', { selector: { app: 'api' }, ports: { 9000: override } })] : []),
      se('srv', 'api', { ports: [{ number: 80, name: 'main', protocol, targetPort: 9000 }], selector: { app: 'api' } }),
      we('srv', 'api-1', { address: '10.0.1.1', labels: { app: 'api' }, serviceAccount: 'api' }),
      we('cli', 'cli-1', { address: '10.0.2.1', labels: { app: 'cli' }, serviceAccount: 'cli' }),
    ));
    for (const override of [undefined, 'STRICT', 'PERMISSIVE', 'DISABLE'] as const) {
      for (const client of ['inside', 'outside'] as const) {
        const want = expected(ns, override, client);
        t.test(`${protocol}, namespace ${ns}${override ? `, port 9000 ${override}` : ''}, client ${client}: ${want}`, async (t) => {
          const snap = snapFor(override);
          const from = client === 'outside' ? { kind: 'outside' as const } : { kind: 'workload' as const, workload: workload(snap, 'cli', 'cli-1') };
          const r = simulateConnection(snap, from, workload(snap, 'srv', 'api-1'), 9000);
          t.equal(r.outcome, want, r.summary);
          t.equal(r.serverMode, override ?? ns);
          t.equal(r.decidedBy, override ? 'PeerAuthentication/srv/api-port' : 'PeerAuthentication/srv/default', 'names the deciding policy');
          if (want === 'mtls') {
            t.equal(r.peerIdentity, 'spiffe://cluster.local/ns/cli/sa/cli', 'server sees the client SVID');
            t.equal(r.serverIdentity, 'spiffe://cluster.local/ns/srv/sa/api');
            t.equal(r.chain, 'inbound|9000|mtls');
            t.equal(r.transportSocket, 'tlsMode-istio');
          }
          if (want === 'plaintext') t.equal(r.chain, 'inbound|9000|plaintext');
          if (want === 'reset') t.match(r.summary, /no filter chain accepts transport protocol raw_buffer.*NR/);
        });
      }
    }
  }
}

t.test('no PeerAuthentication at all: PERMISSIVE by default, said so', async (t) => {
  const snap = snapshotOf(docs(
    se('srv', 'api', { ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], selector: { app: 'api' } }),
    we('srv', 'api-1', { address: '10.0.1.1', labels: { app: 'api' }, serviceAccount: 'api' }),
  ));
  const r = simulateConnection(snap, { kind: 'outside' }, workload(snap, 'srv', 'api-1'), 80);
  t.equal(r.outcome, 'plaintext');
  t.match(r.decidedBy, /no PeerAuthentication applies \(default PERMISSIVE\)/);
});

t.test('a port no ServiceEntry exposes is refused, not reset', async (t) => {
  const snap = snapshotOf(docs(
    se('srv', 'api', { ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], selector: { app: 'api' } }),
    we('srv', 'api-1', { address: '10.0.1.1', labels: { app: 'api' }, serviceAccount: 'api' }),
  ));
  const r = simulateConnection(snap, { kind: 'outside' }, workload(snap, 'srv', 'api-1'), 81);
  t.equal(r.outcome, 'refused');
});

t.test('a mesh client that cannot see the service connects directly, in plaintext', async (t) => {
  const snap = snapshotOf(docs(
    pa('srv', 'default', 'STRICT'),
    se('srv', 'api', { ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], selector: { app: 'api' }, exportTo: ['.'] }),
    we('srv', 'api-1', { address: '10.0.1.1', labels: { app: 'api' }, serviceAccount: 'api' }),
    we('cli', 'cli-1', { address: '10.0.2.1', labels: { app: 'cli' }, serviceAccount: 'cli' }),
  ));
  const r = simulateConnection(snap, { kind: 'workload', workload: workload(snap, 'cli', 'cli-1') }, workload(snap, 'srv', 'api-1'), 80);
  t.equal(r.outcome, 'reset');
  t.match(r.steps.join('\n'), /has no outbound cluster with endpoint 10\.0\.1\.1:80/);
});

t.test('enableAutoMtls false: mesh clients send plaintext, so STRICT resets them', async (t) => {
  const snap = snapshotOf(docs(
    pa('srv', 'default', 'STRICT'),
    se('srv', 'api', { ports: [{ number: 80, name: 'http', protocol: 'HTTP' }], selector: { app: 'api' } }),
    we('srv', 'api-1', { address: '10.0.1.1', labels: { app: 'api' }, serviceAccount: 'api' }),
    we('cli', 'cli-1', { address: '10.0.2.1', labels: { app: 'cli' }, serviceAccount: 'cli' }),
  ), 'enableAutoMtls: false\n');
  const r = simulateConnection(snap, { kind: 'workload', workload: workload(snap, 'cli', 'cli-1') }, workload(snap, 'srv', 'api-1'), 80);
  t.equal(r.outcome, 'reset');
  t.match(r.steps.join('\n'), /has no auto mTLS/);
});
