import test from 'ava';
import http from 'node:http';
import { startOrigin, startProxyHarness, testRoute, testRouteTable, type TestOrigin } from '../../src/testing/index.js';

function call(url: string, method = 'GET', body?: string): Promise<{ status: number; origin: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode!, origin: res.headers['x-origin'] as string }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Origins on distinct loopback addresses; `/hold` requests wait until `release()`. */
async function holdingOrigins(t: { teardown(fn: () => unknown): void }, hosts: string[]) {
  const held: Array<() => void> = [];
  const counts = new Map<string, { hold: number; quick: number }>();
  const origins: TestOrigin[] = [];
  for (const host of hosts) {
    counts.set(host, { hold: 0, quick: 0 });
    origins.push(
      await startOrigin({
        host,
        handler: (req, res) => {
          const c = counts.get(host)!;
          res.setHeader('x-origin', host);
          if (req.url === '/hold') {
            c.hold++;
            held.push(() => res.end('held'));
          } else {
            c.quick++;
            res.end('quick');
          }
        },
      }),
    );
  }
  t.teardown(() => Promise.all(origins.map((o) => o.kill())));
  return {
    origins,
    counts,
    held,
    release: () =>
      held.splice(0).forEach((f) => {
        f();
      }),
  };
}

async function until(check: () => boolean, what: string, ms = 5_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

test('least-request spreads sequential requests over every endpoint', async (t) => {
  const hosts = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
  const o = await holdingOrigins(t, hosts);
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ endpoints: o.origins.map((x) => x.key) })]) });
  t.teardown(() => proxy.close());
  for (let i = 0; i < 60; i++) t.is((await call(`${proxy.url}/`)).status, 200);
  for (const host of hosts) t.true(o.counts.get(host)!.quick > 0, `${host} got no request`);
});

test('round robin (annotation load-balancing) gives each endpoint the same share', async (t) => {
  const hosts = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
  const o = await holdingOrigins(t, hosts);
  const route = testRoute({ endpoints: o.origins.map((x) => x.key), annotations: { 'load-balancing': 'round-robin' } });
  const proxy = await startProxyHarness({ table: testRouteTable([route]) });
  t.teardown(() => proxy.close());
  for (let i = 0; i < 30; i++) t.is((await call(`${proxy.url}/`)).status, 200);
  t.deepEqual(
    hosts.map((h) => o.counts.get(h)!.quick),
    [10, 10, 10],
  );
});

test('least-request sends new requests to the endpoint with fewer outstanding ones', async (t) => {
  const hosts = ['127.0.0.2', '127.0.0.3'];
  const o = await holdingOrigins(t, hosts);
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ endpoints: o.origins.map((x) => x.key) })]) });
  t.teardown(() => proxy.close());
  const pending = call(`${proxy.url}/hold`);
  await until(() => o.held.length === 1, 'the held request');
  const busy = hosts.find((h) => o.counts.get(h)!.hold === 1)!;
  const idle = hosts.find((h) => h !== busy)!;
  for (let i = 0; i < 10; i++) t.is((await call(`${proxy.url}/quick`)).origin, idle);
  o.release();
  t.is((await pending).status, 200);
});

test('an endpoint removed mid-load gets no new requests while its in-flight ones complete', async (t) => {
  const hosts = ['127.0.0.2', '127.0.0.3'];
  const o = await holdingOrigins(t, hosts);
  const [a, b] = o.origins;
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ id: 'r', endpoints: [a!.key, b!.key] })], 1) });
  t.teardown(() => proxy.close());
  const inflight = Array.from({ length: 6 }, () => call(`${proxy.url}/hold`));
  await until(() => o.held.length === 6, 'six held requests');
  t.true(o.counts.get('127.0.0.3')!.hold > 0, 'the endpoint to remove has in-flight requests');
  await proxy.setTable(testRouteTable([testRoute({ id: 'r', endpoints: [a!.key] })], 2));
  t.is(proxy.pipeline.generation, 2);
  const before = o.counts.get('127.0.0.3')!.quick;
  const quick = await Promise.all(Array.from({ length: 12 }, () => call(`${proxy.url}/quick`)));
  t.true(quick.every((r) => r.status === 200 && r.origin === '127.0.0.2'));
  t.is(o.counts.get('127.0.0.3')!.quick, before);
  t.is(proxy.pipeline.generationsAlive, 2, 'the old generation waits for its in-flight requests');
  o.release();
  const done = await Promise.all(inflight);
  t.true(done.every((r) => r.status === 200));
  await until(() => proxy.pipeline.generationsAlive === 1, 'the old generation to be released');
});

test('a killed endpoint is retried on another one for idempotent requests, with no client-visible error', async (t) => {
  const hosts = ['127.0.0.2', '127.0.0.3', '127.0.0.4'];
  const o = await holdingOrigins(t, hosts);
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ namespace: 'n', service: 's', endpoints: o.origins.map((x) => x.key) })]) });
  t.teardown(() => proxy.close());
  for (let i = 0; i < 6; i++) t.is((await call(`${proxy.url}/`)).status, 200);
  await o.origins[2]!.kill();
  const served = o.counts.get('127.0.0.4')!.quick;
  const results = [];
  for (let i = 0; i < 30; i++) results.push(await call(`${proxy.url}/`));
  t.true(
    results.every((r) => r.status === 200),
    JSON.stringify(results.map((r) => r.status)),
  );
  t.is(o.counts.get('127.0.0.4')!.quick, served);
  const metrics = await proxy.metrics.metrics();
  const retries = Number(/^warren_upstream_retries_total (\d+)$/m.exec(metrics)?.[1] ?? 0);
  t.true(retries >= 1, 'at least one retry was counted');
  t.regex(metrics, /warren_upstream_ejections_total\{namespace="n",service="s"\} \d+/);
});

test('a request with a body is not retried: a refused connection answers 502', async (t) => {
  const dead = await startOrigin({ host: '127.0.0.2' });
  await dead.kill();
  const alive = await startOrigin({ host: '127.0.0.3' });
  t.teardown(() => alive.close());
  const route = testRoute({ endpoints: [dead.key, alive.key], annotations: { 'load-balancing': 'round-robin' } });
  const proxy = await startProxyHarness({ table: testRouteTable([route]) });
  t.teardown(() => proxy.close());
  const statuses = [(await call(`${proxy.url}/`, 'POST', 'data')).status, (await call(`${proxy.url}/`, 'POST', 'data')).status].sort();
  t.deepEqual(statuses, [200, 502]);
  t.is(alive.requests, 1);
});
