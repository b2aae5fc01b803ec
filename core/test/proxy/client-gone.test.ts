import test from 'ava';
import type { IncomingMessage } from 'node:http';
import { runExchange, startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';

test('a client that goes away while the upstream works stops the upstream request and counts as 499; going away after the end changes nothing', async (t) => {
  t.timeout(30_000);
  let held: IncomingMessage | undefined;
  let onArrival!: () => void;
  const arrived = new Promise<void>((resolve) => (onArrival = resolve));
  const origin = await startOrigin({
    handler: (req, res) => {
      if (req.url === '/hold') {
        held = req;
        onArrival();
        return; // never answers: only the client going away ends it
      }
      res.writeHead(200, { 'content-length': '2' }).end('ok');
    },
  });
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ host: 'gone.test', endpoints: [origin.key] })]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));

  const leaving = new AbortController();
  const pending = runExchange(proxy.pipeline, { authority: 'gone.test', path: '/hold', signal: leaving.signal });
  await arrived;
  const upstreamClosed = new Promise<void>((resolve) => held!.socket.once('close', () => resolve()));
  leaving.abort();
  const cut = await pending;
  t.is(cut.response, undefined);
  await upstreamClosed;

  const after = new AbortController();
  const done = await runExchange(proxy.pipeline, { authority: 'gone.test', path: '/fine', signal: after.signal });
  t.is(done.response?.status, 200);
  t.is(done.body.toString(), 'ok');
  after.abort();
  after.abort();
  await new Promise((resolve) => setImmediate(resolve));
  const text = await proxy.metrics.metrics();
  t.regex(text, /^warren_requests_total\{status_class="4xx",method="GET"\} 1$/m);
  t.regex(text, /^warren_requests_total\{status_class="2xx",method="GET"\} 1$/m);
  t.regex(text, /^warren_inflight_requests 0$/m);
});
