/**
 * A route's own timeouts (Gateway API `timeouts`): `request` bounds the whole exchange, `backendRequest` each
 * upstream attempt; both end in 504 (a reset once the response head went out), and zero or absent means none.
 * Against a real origin that delays its answer as the request asks (`?delay=<ms>`).
 */
import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import { capturedLogger, loggedError, startOrigin, startProxyHarness, testRoute, testRouteTable, type TestOrigin } from '../../src/testing/index.js';

/** Answers after `?delay` ms; with `?body` the head goes out at once and the body after the delay. */
async function slowOrigin(t: ExecutionContext): Promise<TestOrigin> {
  const timers = new Set<NodeJS.Timeout>();
  t.teardown(() => {
    for (const timer of timers) clearTimeout(timer);
  });
  const origin = await startOrigin({
    handler: (req, res) => {
      const url = new URL(req.url ?? '/', 'http://origin');
      const delay = Number(url.searchParams.get('delay') ?? 0);
      if (url.searchParams.has('body')) {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.write('start;');
      }
      const timer = setTimeout(() => {
        timers.delete(timer);
        res.end('done');
      }, delay);
      timers.add(timer);
    },
  });
  t.teardown(() => origin.kill());
  return origin;
}

function get(url: string, host: string, path: string): Promise<{ status: number; body: string; ms: number; error?: string }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const req = http.get(`${url}${path}`, { headers: { host }, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - started }));
      res.on('error', (err) => resolve({ status: res.statusCode ?? 0, body, ms: performance.now() - started, error: err.message }));
    });
    req.on('error', (err) => resolve({ status: 0, body: '', ms: performance.now() - started, error: err.message }));
    req.setTimeout(10_000, () => req.destroy(new Error('test client gave up')));
  });
}

test('timeouts.request answers 504 when the whole exchange takes longer; 0 turns it off', async (t) => {
  const origin = await slowOrigin(t);
  const log = capturedLogger();
  const proxy = await startProxyHarness({
    logger: log.logger,
    table: testRouteTable([
      testRoute({ host: 'bounded.test', endpoints: [origin.key], timeouts: { request: 300 } }),
      testRoute({ host: 'off.test', endpoints: [origin.key], timeouts: { request: 0 } }),
    ]),
  });
  t.teardown(() => proxy.close());

  const quick = await get(proxy.url, 'bounded.test', '/?delay=0');
  t.is(quick.status, 200);
  const slow = await get(proxy.url, 'bounded.test', '/?delay=1500');
  t.is(slow.status, 504);
  t.true(slow.ms >= 250 && slow.ms < 1_400, `answered after ${slow.ms} ms`);
  t.regex(loggedError(log.lines, 'bounded.test'), /within 300 ms \(route timeouts\.request\)/);
  t.regex(slow.body, /^the origin did not answer in time\n/);

  const cut = await get(proxy.url, 'bounded.test', '/?delay=1500&body');
  t.is(cut.status, 200, 'the head went out before the bound');
  t.false(cut.body.endsWith('done'), 'the response is cut off, never complete');
  t.truthy(cut.error, 'the client sees the response end abnormally');

  const off = await get(proxy.url, 'off.test', '/?delay=600');
  t.is(off.status, 200);
  t.is(off.body, 'done');
});

test('timeouts.backendRequest bounds each upstream attempt with 504', async (t) => {
  const origin = await slowOrigin(t);
  const log = capturedLogger();
  const proxy = await startProxyHarness({
    logger: log.logger,
    table: testRouteTable([testRoute({ host: 'backend.test', endpoints: [origin.key], timeouts: { backendRequest: 300, request: 5_000 } })]),
  });
  t.teardown(() => proxy.close());
  t.is((await get(proxy.url, 'backend.test', '/?delay=50')).status, 200);
  const slow = await get(proxy.url, 'backend.test', '/?delay=1500');
  t.is(slow.status, 504);
  t.true(slow.ms >= 250 && slow.ms < 1_400, `answered after ${slow.ms} ms`);
  t.regex(loggedError(log.lines, 'backend.test'), /within 300 ms \(route timeouts\.backendRequest\)/);
});
