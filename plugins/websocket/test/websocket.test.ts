import test from 'ava';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { MemorySecrets, capturedLogger, createTestCa, issueCert, loggedError, startProxyHarness, testRoute, testRouteTable, type TestRouteInit } from '@warren/core/testing';
import tls from '@warren/plugin-tls';
import websocket from '../src/index.js';
import { WebsocketPlugin, websocketAccept } from '../src/websocket-plugin.js';

interface WsOrigin {
  key: string;
  /** Upgrade requests the origin saw (headers). */
  handshakes: http.IncomingHttpHeaders[];
  wss: WebSocketServer;
  close(): Promise<void>;
}

/** 101 heads (after the status line) that do not complete a WebSocket handshake, by request path. */
const WRONG_HANDSHAKES: Record<string, (key: string) => string> = {
  '/h2c': () => 'connection: Upgrade\r\nupgrade: h2c\r\n',
  '/wrong-accept': () => `connection: Upgrade\r\nupgrade: websocket\r\nsec-websocket-accept: ${websocketAccept('another key')}\r\n`,
  '/no-accept': () => 'connection: Upgrade\r\nupgrade: websocket\r\n',
  '/h2c-with-accept': (key) => `connection: Upgrade\r\nupgrade: h2c\r\nsec-websocket-accept: ${websocketAccept(key)}\r\n`,
};
/** Per answer of one of {@link WRONG_HANDSHAKES}: resolves when Warren closed that upstream connection. */
const upstreamEnds: Array<Promise<boolean>> = [];

/**
 * A `ws` echo origin; `/refuse` answers 403 instead of upgrading; `/bye` closes with 4001 after the first message;
 * the paths of {@link WRONG_HANDSHAKES} answer a 101 that does not complete the handshake.
 */
async function wsOrigin(options: { tls?: { cert: string; key: string } } = {}): Promise<WsOrigin> {
  const server = options.tls ? https.createServer(options.tls) : http.createServer();
  const wss = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 * 1024 });
  const handshakes: http.IncomingHttpHeaders[] = [];
  server.on('upgrade', (req, socket, head) => {
    handshakes.push(req.headers);
    const wrong = WRONG_HANDSHAKES[req.url ?? ''];
    if (wrong) {
      upstreamEnds.push(
        new Promise((resolve) => {
          socket.once('end', () => {
            socket.destroy();
            resolve(true);
          });
          socket.once('close', () => resolve(true));
          socket.resume();
        }),
      );
      socket.write(`HTTP/1.1 101 Switching Protocols\r\n${wrong(String(req.headers['sec-websocket-key']))}\r\n`);
      return;
    }
    if (req.url === '/refuse') {
      socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 7\r\nconnection: close\r\n\r\nrefused');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('message', (data: RawData, isBinary: boolean) => {
        if (req.url === '/bye') ws.close(4001, 'origin says bye');
        else ws.send(data, { binary: isBinary });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    key: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    handshakes,
    wss,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function harness(t: { teardown(f: () => unknown): void }, route: TestRouteInit, extra: { secrets?: MemorySecrets; withTls?: boolean } = {}) {
  const { logger, lines } = capturedLogger();
  const proxy = await startProxyHarness({
    plugins: [{ module: websocket }, ...(extra.withTls ? [{ module: tls }] : [])],
    secrets: extra.secrets,
    table: testRouteTable([testRoute(route)]),
    logger,
  });
  t.teardown(() => proxy.close());
  return Object.assign(proxy, { lines });
}

async function open(url: string, path = '/'): Promise<WebSocket> {
  const ws = new WebSocket(`${url.replace('http', 'ws')}${path}`, { maxPayload: 64 * 1024 * 1024 });
  await once(ws, 'open');
  return ws;
}

function nextMessage(ws: WebSocket): Promise<{ data: Buffer; isBinary: boolean }> {
  return new Promise((resolve) => ws.once('message', (data: RawData, isBinary: boolean) => resolve({ data: data as Buffer, isBinary })));
}

test('echoes text, binary and a 10 MB message through a route with no annotation', async (t) => {
  const origin = await wsOrigin();
  t.teardown(() => origin.close());
  const proxy = await harness(t, { endpoints: [origin.key] });
  const ws = await open(proxy.url);
  t.teardown(() => ws.terminate());

  ws.send('hello');
  const text = await nextMessage(ws);
  t.is(text.data.toString(), 'hello');
  t.false(text.isBinary);

  ws.send(Buffer.from([0, 1, 2, 255]));
  const binary = await nextMessage(ws);
  t.true(binary.isBinary);
  t.deepEqual([...binary.data], [0, 1, 2, 255]);

  const big = Buffer.alloc(10 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big[i] = i % 251;
  ws.send(big);
  const echoed = await nextMessage(ws);
  t.is(echoed.data.length, big.length);
  t.true(echoed.data.equals(big));

  ws.close(1000, 'done');
  const [code] = (await once(ws, 'close')) as [number];
  t.is(code, 1000);
  const handshake = origin.handshakes[0]!;
  t.is(handshake.upgrade, 'websocket');
  t.is(handshake['sec-websocket-version'], '13');
  t.truthy(handshake['sec-websocket-key']);
  t.is(handshake['x-forwarded-for'], '127.0.0.1');
});

test('the origin closing the session reaches the client with its close code and reason', async (t) => {
  const origin = await wsOrigin();
  t.teardown(() => origin.close());
  const proxy = await harness(t, { endpoints: [origin.key] });
  const ws = await open(proxy.url, '/bye');
  ws.send('x');
  const [code, reason] = (await once(ws, 'close')) as [number, Buffer];
  t.is(code, 4001);
  t.is(reason.toString(), 'origin says bye');
  await new Promise((r) => setTimeout(r, 50));
  t.is(proxy.pipeline.generationsAlive, 1);
});

test("an upgrade the origin refuses is answered with the origin's response", async (t) => {
  const origin = await wsOrigin();
  t.teardown(() => origin.close());
  const proxy = await harness(t, { endpoints: [origin.key] });
  const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/refuse`);
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage];
  t.is(res.statusCode, 403);
  res.destroy();
});

test('wss: upgrades over a verified TLS upstream', async (t) => {
  const ca = createTestCa('ws CA');
  const cert = issueCert(ca, { dns: ['ws.internal'] });
  const origin = await wsOrigin({ tls: { cert: cert.certPem, key: cert.keyPem } });
  t.teardown(() => origin.close());
  const secrets = new MemorySecrets();
  secrets.set('default', 'ca', { 'ca.crt': ca.certPem });
  const proxy = await harness(
    t,
    { endpoints: [origin.key], protocol: 'wss', annotations: { 'proxy-ssl-secret': 'ca', 'proxy-ssl-name': 'ws.internal' } },
    { secrets, withTls: true },
  );
  const ws = await open(proxy.url);
  t.teardown(() => ws.terminate());
  ws.send('over tls');
  t.is((await nextMessage(ws)).data.toString(), 'over tls');
});

test('an idle session is closed after websocket-idle-timeout', async (t) => {
  const origin = await wsOrigin();
  t.teardown(() => origin.close());
  const proxy = await harness(t, { endpoints: [origin.key], annotations: { 'websocket-idle-timeout': 300 } });
  const ws = await open(proxy.url);
  ws.send('ping');
  await nextMessage(ws);
  const serverSide = [...origin.wss.clients][0]!;
  const upstreamClosed = once(serverSide, 'close');
  const [code] = (await once(ws, 'close')) as [number];
  t.is(code, 1006, 'the connection was cut without a close frame');
  await upstreamClosed;
  t.is(origin.wss.clients.size, 0, 'the upstream side of the session was closed too');
});

test('a client that goes away ends the upstream session', async (t) => {
  const origin = await wsOrigin();
  t.teardown(() => origin.close());
  const proxy = await harness(t, { endpoints: [origin.key] });
  const ws = await open(proxy.url);
  ws.send('x');
  await nextMessage(ws);
  const [serverSide] = [...origin.wss.clients];
  const closed = once(serverSide!, 'close');
  ws.terminate();
  await closed;
  t.pass();
});

test('the accept value is the one RFC 6455 gives for its sample key', (t) => {
  t.is(websocketAccept('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
});

test('a 101 that does not complete the WebSocket handshake (h2c, wrong or missing accept) gives 502 and closes the upstream', async (t) => {
  const origin = await wsOrigin();
  t.teardown(() => origin.close());
  const proxy = await harness(t, { endpoints: [origin.key] });
  for (const path of Object.keys(WRONG_HANDSHAKES)) {
    const before = upstreamEnds.length;
    const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}${path}`);
    ws.on('error', () => {}); // the refused handshake is what this test expects
    t.teardown(() => ws.terminate());
    const [, res] = (await once(ws, 'unexpected-response')) as [unknown, http.IncomingMessage];
    t.is(res.statusCode, 502, path);
    let body = '';
    for await (const chunk of res) body += String(chunk);
    t.regex(loggedError(proxy.lines), /WebSocket handshake/, path);
    t.regex(body, /^the origin sent an invalid or incomplete response\n/, `${path}: the client is not told the upstream's mistake`);
    t.is(upstreamEnds.length, before + 1, path);
    const closed = await Promise.race([upstreamEnds.at(-1)!, sleep(3_000).then(() => false)]);
    t.true(closed, `${path}: the upstream connection was closed`);
  }
  // A correct handshake on the same route still works.
  const ws = await open(proxy.url);
  t.teardown(() => ws.terminate());
  ws.send('still fine');
  t.is((await nextMessage(ws)).data.toString(), 'still fine');
});

test("upgrade requests of a route that speaks HTTP/2 get HTTP/1.1 pools of their own; other routes share the route's", (t) => {
  const plugin = new WebsocketPlugin({ idleTimeout: 60_000 });
  const binding = plugin.bind(testRoute({ endpoints: [] }));
  const h2 = { scheme: 'http:', http2: 'prior-knowledge', connectTimeout: 1_000, maxConcurrentStreams: 50 } as const;
  t.deepEqual(plugin.upgradeProfile(binding, h2), { scheme: 'http:', http2: 'off', connectTimeout: 1_000, maxConcurrentStreams: undefined });
  t.is(h2.http2, 'prior-knowledge', "the route's profile is left alone");
  const h1 = { scheme: 'https:', http2: 'off', connectTimeout: 1_000 } as const;
  t.is(plugin.upgradeProfile(binding, h1), h1, 'an HTTP/1.1 route upgrades over its own pools');
});
