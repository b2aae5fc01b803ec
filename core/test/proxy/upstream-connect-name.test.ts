import test from 'ava';
import diagnostics from 'node:diagnostics_channel';
import { runExchange, startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';

test('a cleartext upstream connection is opened by the endpoint address, never by a name from the client Host header', async (t) => {
  const origin = await startOrigin();
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ host: 'named.test', endpoints: [origin.key] })]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const names: unknown[] = [];
  const onConnect = (message: unknown): void => {
    names.push((message as { connectParams: { servername?: unknown } }).connectParams.servername);
  };
  diagnostics.subscribe('undici:client:beforeConnect', onConnect);
  t.teardown(() => diagnostics.unsubscribe('undici:client:beforeConnect', onConnect));

  const r = await runExchange(proxy.pipeline, { authority: 'named.test', path: '/x' });
  t.is(r.response?.status, 200);
  t.deepEqual(names, [origin.key.slice(0, origin.key.lastIndexOf(':'))]);
});
