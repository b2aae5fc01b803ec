import test from 'ava';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { startOrigin, startProxyHarness, testRoute, testRouteTable } from '@warren/core/testing';
import keepalive, { KEEPALIVE_CONNECTIONS, KEEPALIVE_TIMEOUT } from '../src/index.js';

function get(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode!));
      })
      .on('error', reject);
  });
}

test('reuses one upstream connection for sequential requests', async (t) => {
  const origin = await startOrigin();
  const proxy = await startProxyHarness({ plugins: [{ module: keepalive }], table: testRouteTable([testRoute({ endpoints: [origin.key] })]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  for (let i = 0; i < 20; i++) t.is(await get(`${proxy.url}/`), 200);
  t.is(origin.requests, 20);
  t.is(origin.connections, 1);
});

test('without the plugin every request opens its own upstream connection', async (t) => {
  const origin = await startOrigin();
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ endpoints: [origin.key] })]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  for (let i = 0; i < 5; i++) t.is(await get(`${proxy.url}/`), 200);
  t.is(origin.connections, 5);
});

test('upstream-keepalive-connections caps concurrent connections per endpoint; extra requests queue', async (t) => {
  const origin = await startOrigin({
    handler: (_req, res) => {
      setTimeout(() => res.end('slow'), 100);
    },
  });
  const route = testRoute({ endpoints: [origin.key], annotations: { 'upstream-keepalive-connections': 2 } });
  const proxy = await startProxyHarness({ plugins: [{ module: keepalive }], table: testRouteTable([route]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const statuses = await Promise.all(Array.from({ length: 10 }, () => get(`${proxy.url}/`)));
  t.deepEqual(statuses, Array(10).fill(200));
  t.is(origin.connections, 2);
});

test('an idle connection is closed after upstream-keepalive-timeout and the next request reconnects', async (t) => {
  const origin = await startOrigin();
  // Long enough that two back-to-back requests on a loaded machine still share the connection.
  const route = testRoute({ endpoints: [origin.key], annotations: { 'upstream-keepalive-timeout': 800 } });
  const proxy = await startProxyHarness({ plugins: [{ module: keepalive }], table: testRouteTable([route]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  t.is(await get(`${proxy.url}/`), 200);
  t.is(await get(`${proxy.url}/`), 200);
  t.is(origin.connections, 1);
  await sleep(2_500);
  t.is(await get(`${proxy.url}/`), 200);
  t.is(origin.connections, 2);
});

test('settings and annotations are validated with messages that name the value', (t) => {
  t.throws(() => keepalive.manifest.configSchema.parse({ maxConnectionsPerEndpoint: 0 }));
  t.throws(() => keepalive.manifest.configSchema.parse({ idleTimeout: 'soon' }));
  t.throws(() => keepalive.manifest.configSchema.parse({ unknown: 1 }));
  t.deepEqual(keepalive.manifest.configSchema.parse({}), { idleTimeout: 60_000, maxConnectionsPerEndpoint: 128 });
  const [timeout, connections] = [KEEPALIVE_TIMEOUT, KEEPALIVE_CONNECTIONS];
  t.deepEqual(keepalive.manifest.annotations, [timeout, connections]);
  t.is(timeout!.schema.parse('2s'), 2000);
  t.false(timeout!.schema.safeParse('2 hours').success);
  t.false(timeout!.schema.safeParse('0s').success);
  t.is(connections!.schema.parse('32'), 32);
  const bad = connections!.schema.safeParse('-1');
  t.false(bad.success);
  t.regex(JSON.stringify(bad.error?.issues), /whole number from 1 to 4096/);
  t.false(connections!.schema.safeParse('5000').success);
});
