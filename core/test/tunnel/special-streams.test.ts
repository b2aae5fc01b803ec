import test from 'ava';
import { constants as h2 } from 'node:http2';
import { META_CLOUDFLARED, META_ORIGIN } from '../../src/tunnel/protocol.js';
import type { Exchange, ExchangeHandler } from '../../src/proxy/exchange.js';
import { startHarness } from './support/harness.js';

const CONFIG_BODY =
  '{"version": 2, "config": {"warp-routing": {"enabled": true}, "originRequest": {"connectTimeout": 10}, "ingress": [{"hostname": "test", "service": "https://localhost:8000"}, {"service": "http_status:404"}]}}';

test('configuration pushes are acknowledged with the reference answer and never reach the handler', async (t) => {
  let exchanges = 0;
  const h = await startHarness(t, {
    handler: {
      handle: async (e: Exchange) => {
        exchanges++;
        e.fail({ status: 500, message: 'unexpected' });
      },
    },
  });
  await h.sim.waitForRegistrations(1);
  const first = await h.sim.request({ kind: 'configuration', method: 'PUT', path: '/ok', authority: 'localhost:8080', body: CONFIG_BODY });
  t.is(first.status, 200);
  t.is(first.body.toString(), '{"lastAppliedVersion":2,"err":null}');
  t.is(first.metaRaw, undefined, 'configuration answers carry no meta');
  const older = await h.sim.request({ kind: 'configuration', method: 'PUT', body: '{"version":1,"config":{}}' });
  t.is(older.body.toString(), '{"lastAppliedVersion":2,"err":null}', 'an older version is a no-op reporting the current one');
  const newer = await h.sim.request({ kind: 'configuration', method: 'PUT', body: '{"version":7,"config":{}}' });
  t.is(newer.body.toString(), '{"lastAppliedVersion":7,"err":null}');
  for (const bad of ['not json', '{"config":{}}', '{"version":"2"}', '[1]', '{"version":4294967296}']) {
    const reply = await h.sim.request({ kind: 'configuration', method: 'PUT', body: bad });
    t.is(reply.status, 502, bad);
    t.is(reply.metaRaw, META_CLOUDFLARED, bad);
  }
  t.is(exchanges, 0);
});

test('raw TCP (WARP routing) streams get a connector error, not a dial', async (t) => {
  const h = await startHarness(t);
  await h.sim.waitForRegistrations(1);
  const reply = await h.sim.request({ kind: 'tcp', authority: `127.0.0.1:${h.origin.port}` });
  t.is(reply.status, 502);
  t.is(reply.metaRaw, META_CLOUDFLARED);
  t.is(h.origin.seen.length, 0, 'nothing was dialled');
});

test('a second control stream on a registered connection is refused and the first keeps working', async (t) => {
  const h = await startHarness(t);
  const [connection] = await h.sim.waitForRegistrations(1);
  const reply = await h.sim.request({ headers: [['cf-cloudflared-proxy-connection-upgrade', 'control-stream']] });
  t.is(reply.status, 400);
  t.is(reply.metaRaw, META_CLOUDFLARED);
  t.true(connection!.routable);
  t.is((await h.sim.request({ path: '/status/201' })).status, 201);
});

test('malformed requests from the edge are refused (400, or a PROTOCOL_ERROR reset by HTTP/2 itself) without disturbing the connection', async (t) => {
  const h = await startHarness(t);
  const [connection] = await h.sim.waitForRegistrations(1);
  const refused = (reply: { status: number; metaRaw: string | undefined } | Error) =>
    reply instanceof Error ? /rst code 1\b/.test(reply.message) : reply.status === 400 && reply.metaRaw === META_CLOUDFLARED;
  const attempt = (options: Parameters<typeof h.sim.request>[0]) => h.sim.request(options).catch((err: Error) => err);
  t.true(refused(await attempt({ method: 'POST', path: '/echo', headers: [['content-length', 'abc']], body: 'x' })), 'content-length abc');
  t.true(refused(await attempt({ method: 'GE(T', path: '/echo' })), 'method GE(T');
  t.true(refused(await attempt({ path: 'no-slash' })), 'relative path');
  t.true(refused(await attempt({ authority: '' })), 'empty authority');
  t.true(connection!.routable);
  t.is((await h.sim.request({ path: '/status/200' })).status, 200);
  t.is(h.origin.seen.length, 1, 'only the valid request reached the origin');
});

function handlerOf(fn: (e: Exchange) => Promise<void> | void): ExchangeHandler {
  return { handle: async (e) => fn(e) };
}

test("a failure before the response head is a 502 (or the given status) marked as the connector's", async (t) => {
  const h = await startHarness(t, {
    handler: handlerOf((e) => {
      if (e.head.path === '/gone') return e.fail({ status: 504, message: 'upstream timeout' });
      if (e.head.path === '/grpc')
        return e.fail({ status: 200, message: 'unavailable', headers: ['grpc-status', '14', 'content-type', 'application/grpc'], body: Buffer.alloc(0) });
      e.fail({ status: 502, message: 'connect refused', body: 'upstream unreachable' });
    }),
  });
  await h.sim.waitForRegistrations(1);
  const plain = await h.sim.request({ path: '/x' });
  t.is(plain.status, 502);
  t.is(plain.metaRaw, META_CLOUDFLARED);
  t.false(plain.hasSerializedHeaders);
  t.is(plain.body.toString(), 'upstream unreachable');
  const timeout = await h.sim.request({ path: '/gone' });
  t.is(timeout.status, 504);
  const grpc = await h.sim.request({ path: '/grpc' });
  t.is(grpc.status, 200);
  t.deepEqual(grpc.headers, [
    ['grpc-status', '14'],
    ['content-type', 'application/grpc'],
  ]);
});

test('a failure after the response head resets the stream with INTERNAL_ERROR', async (t) => {
  const h = await startHarness(t, {
    handler: handlerOf((e) => {
      const sink = e.respond({ status: 200, headers: ['Content-Type', 'text/plain'] });
      sink.write('partial');
      setTimeout(() => e.fail({ status: 502, message: 'upstream broke' }), 20);
    }),
  });
  await h.sim.waitForRegistrations(1);
  const reply = await h.sim.request({ path: '/x' });
  t.is(reply.status, 200);
  t.is(reply.rstCode, h2.NGHTTP2_INTERNAL_ERROR);
  t.is(reply.body.toString(), 'partial');
});

test("handlers that throw or finish without responding get a 502; responses Warren made are marked as the connector's", async (t) => {
  const h = await startHarness(t, {
    handler: handlerOf((e) => {
      if (e.head.path === '/throw') throw new Error('boom');
      if (e.head.path === '/silent') return;
      const sink = e.respond({ status: 404, headers: ['Content-Type', 'text/plain'], source: 'warren', contentLength: 9 });
      sink.end('no route\n');
    }),
  });
  await h.sim.waitForRegistrations(1);
  for (const path of ['/throw', '/silent']) {
    const reply = await h.sim.request({ path });
    t.is(reply.status, 502, path);
    t.is(reply.metaRaw, META_CLOUDFLARED, path);
  }
  const own = await h.sim.request({ path: '/none' });
  t.is(own.status, 404);
  t.is(own.metaRaw, META_CLOUDFLARED);
  t.is(own.h2Headers['content-length'], '9');
  t.is(own.body.toString(), 'no route\n');
  t.is((await h.sim.request({ path: '/none' })).metaRaw, META_CLOUDFLARED);
  void META_ORIGIN;
});

test('the exchange sees the request head the edge sent and its signal aborts when the edge resets the stream', async (t) => {
  let seen: Exchange | undefined;
  const aborted = new Promise<void>((resolve) => {
    void startHarness(t, {
      handler: handlerOf(async (e) => {
        seen = e;
        await new Promise<void>((done) => e.signal.addEventListener('abort', () => done()));
        resolve();
      }),
    }).then(async (h) => {
      await h.sim.waitForRegistrations(1);
      const stream = h.sim.openStream(
        {
          ':method': 'POST',
          ':scheme': 'https',
          ':authority': 'app.example.com:443',
          ':path': '/p?q=1',
          cookie: ['a=1', 'b=2'],
          'cf-connecting-ip': '198.18.0.9',
          'content-length': '3',
          'x-a': '1',
        },
        {},
      );
      stream.on('error', () => undefined);
      stream.write('abc');
      setTimeout(() => stream.close(h2.NGHTTP2_CANCEL), 50);
    });
  });
  await aborted;
  t.truthy(seen);
  const head = seen!.head;
  t.is(head.method, 'POST');
  t.is(head.scheme, 'https');
  t.is(head.authority, 'app.example.com:443');
  t.is(head.path, '/p?q=1');
  t.is(head.clientAddress, '198.18.0.9');
  t.is(head.contentLength, 3);
  t.is(head.upgrade, undefined);
  const cookie = head.headers.indexOf('cookie');
  t.true(cookie % 2 === 0 && head.headers[cookie + 1] === 'a=1; b=2', 'the cookie fields arrive joined as one');
  t.false(head.headers.some((n, i) => i % 2 === 0 && n.startsWith(':')));
  t.true(seen!.signal.aborted);
});

test('a request beyond the header-count limit is refused on its own stream; the connection stays up', async (t) => {
  const h = await startHarness(t, { connector: { limits: { maxHeaderPairs: 64 } } });
  const [connection] = await h.sim.waitForRegistrations(1);
  const headers = Array.from({ length: 100 }, (_, i) => [`x-h-${i}`, 'v'] as [string, string]);
  const outcome = await h.sim.request({ path: '/echo', headers }).then(
    (reply) => `status ${reply.status}`,
    (err: Error) => err.message,
  );
  t.regex(outcome, /rst code 11\b|status 431/, 'ENHANCE_YOUR_CALM reset (or a 431)');
  t.is(h.origin.seen.length, 0);
  t.true(connection!.routable);
  t.is((await h.sim.request({ path: '/status/200' })).status, 200);
});

test('a failure after the head of a response with a declared length never looks complete to the edge', async (t) => {
  const h = await startHarness(t, {
    handler: handlerOf((e) => {
      const sink = e.respond({ status: 200, headers: ['Content-Length', '100'], contentLength: 100 });
      sink.write('only part of it');
      setTimeout(() => e.fail({ status: 502, message: 'upstream broke' }), 20);
    }),
  });
  await h.sim.waitForRegistrations(1);
  const outcome = await h.sim.request({ path: '/x' }).then(
    (reply) => ({ rst: reply.rstCode, length: reply.body.length }),
    (err: Error) => ({ rst: -1, length: 0, message: err.message }),
  );
  t.not(outcome.rst, 0, 'reset, or refused by HTTP/2 as shorter than content-length');
  t.true(outcome.length < 100);
});
