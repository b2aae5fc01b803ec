import test from 'ava';
import type { IncomingMessage } from 'node:http';
import { Readable, Writable } from 'node:stream';
import { ClientGone } from '../../src/proxy/client-gone.js';
import type { Exchange } from '../../src/proxy/exchange.js';
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

test('a response whose end the client-side sink fails to take is not counted complete: it ends as the client going away', async (t) => {
  t.timeout(30_000);
  const origin = await startOrigin({ handler: (_req, res) => res.writeHead(200, { 'content-length': '2' }).end('ok') });
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ host: 'cut.test', endpoints: [origin.key] })]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));

  let responded = false;
  let written = 0;
  const exchange: Exchange = {
    id: 'sink-end-fails',
    head: { method: 'GET', scheme: 'https', authority: 'cut.test', path: '/', headers: [], clientAddress: '127.0.0.1', contentLength: 0 },
    body: Readable.from([]),
    signal: new AbortController().signal,
    onClientGone: () => true,
    get responded() {
      return responded;
    },
    respond() {
      responded = true;
      const sink: Writable = new Writable({
        write(chunk: Buffer, _encoding, callback) {
          written += chunk.length;
          callback();
        },
        // As the tunnel's stream does when a reset cuts off its end: destroyed without an error (so no 'error'
        // event), then the pending end fails. The exchange's signal does not abort.
        final(callback) {
          setImmediate(() => {
            sink.destroy();
            callback(new Error('stream reset before the end of the body'));
          });
        },
      });
      return sink;
    },
    setTrailers() {},
    fail() {
      responded = true;
    },
  };
  await proxy.pipeline.handle(exchange);
  t.is(written, 2);
  const text = await proxy.metrics.metrics();
  t.notRegex(text, /^warren_requests_total\{status_class="2xx",method="GET"\} [1-9]/m);
  t.regex(text, /^warren_requests_total\{status_class="4xx",method="GET"\} 1$/m);
  t.regex(text, /^warren_inflight_requests 0$/m);
});

test("an exchange's client-gone state: listeners before the signal's, none kept once gone, the signal made on demand carries the reason", (t) => {
  const state = new ClientGone();
  const calls: string[] = [];
  t.true(state.listen(() => calls.push('first')));
  t.true(state.listen(() => calls.push('second')));
  const early = state.signal;
  early.addEventListener('abort', () => calls.push('signal'));
  const reason = new Error('stream reset');
  state.fire(reason);
  state.fire(new Error('again'));
  t.deepEqual(calls, ['first', 'second', 'signal']);
  t.is(early.reason, reason);
  t.true(state.gone);
  t.false(state.listen(() => calls.push('late')));
  t.is(calls.length, 3);

  // Asked for only after the client went: already aborted, with the same reason.
  const lazy = new ClientGone();
  lazy.fire(reason);
  t.true(lazy.signal.aborted);
  t.is(lazy.signal.reason, reason);
  // Without a reason, as a transport's close gives none: an AbortError.
  const plain = new ClientGone();
  plain.fire();
  t.is((plain.signal.reason as Error).name, 'AbortError');
});

test('a client-gone listener that throws keeps neither the later listeners nor the signal from hearing it; its error comes after', (t) => {
  const state = new ClientGone();
  const signal = state.signal;
  const calls: string[] = [];
  state.listen(() => {
    calls.push('first');
    throw new Error('a listener broke');
  });
  state.listen(() => calls.push('second'));
  signal.addEventListener('abort', () => calls.push('signal'));
  t.throws(() => state.fire(new Error('stream reset')), { message: 'a listener broke' });
  t.deepEqual(calls, ['first', 'second', 'signal']);
  t.true(signal.aborted);
  t.true(state.gone);
});

test('a client gone before the pipeline starts on its exchange gets no answer and no upstream request', async (t) => {
  let upstream = 0;
  const origin = await startOrigin({
    handler: (_req, res) => {
      upstream++;
      res.end('late');
    },
  });
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ host: 'gone-first.test', endpoints: [origin.key] })]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const gone = new AbortController();
  gone.abort();
  const result = await runExchange(proxy.pipeline, { authority: 'gone-first.test', path: '/', signal: gone.signal });
  t.is(result.response, undefined);
  t.is(upstream, 0);
});
