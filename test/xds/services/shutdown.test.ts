import t from 'tap';
import { status } from '@grpc/grpc-js';
import { startXdsServer } from '../helpers/xds-server.js';
import { TestGenerator } from '../helpers/test-generator.js';
import { identityHeader } from '../helpers/test-authenticator.js';
import { TypeUrl } from '../../../src/envoy/type-urls.js';

t.test('shutdown: core.close() ends every stream with UNAVAILABLE so proxies reconnect elsewhere', async (t) => {
  const secrets = new TestGenerator(TypeUrl.Secret);
  secrets.set('default', 'cert');
  const server = await startXdsServer({ generators: [secrets] });
  t.teardown(() => server.close());
  const client = server.client();
  const md = identityHeader('apps', 'web');
  const ads = client.sotw('ads', { node: { id: 'a' }, metadata: md });
  const sds = client.delta('sds', { node: { id: 'b' }, metadata: md });
  ads.subscribe(TypeUrl.Secret, ['default']);
  sds.subscribe(TypeUrl.Secret, ['default']);
  await ads.next();
  await sds.next();
  t.equal(server.core.connectedCount, 2);

  server.core.close(status.UNAVAILABLE, 'meshd is shutting down; reconnect to another instance');
  for (const s of [ads, sds]) {
    const st = await s.status;
    t.equal(st.code, status.UNAVAILABLE);
    t.equal(st.details, 'meshd is shutting down; reconnect to another instance');
  }
  t.equal(server.core.connectedCount, 0);
  t.equal(await server.metric('pilot_xds', { version: 'meshd' }), 0, 'pilot_xds back to 0');

  const late = client.sotw('ads', { node: { id: 'c' }, metadata: md });
  late.subscribe(TypeUrl.Secret, ['default']);
  t.equal((await late.status).code, status.UNAVAILABLE, 'a stream opened during shutdown is refused');
  await t.rejects(client.fetch('sds', { node: { id: 'd' }, resource_names: ['default'] }, md), { code: status.UNAVAILABLE });
  const callsBefore = secrets.calls.length;
  const triggersBefore = await server.metric('pilot_push_triggers', { type: 'secret' });
  await server.core.push({ reason: 'secret' });
  await server.core.idle();
  t.equal(secrets.calls.length, callsBefore, 'a push after close is a no-op: nothing is generated');
  t.equal(await server.metric('pilot_push_triggers', { type: 'secret' }), triggersBefore, 'and it is not counted as a push');
});
