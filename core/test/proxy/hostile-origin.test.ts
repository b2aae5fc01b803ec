import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { getText, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';

/**
 * Broken or hostile HTTP/1.1 origins on raw sockets. Informational responses and then nothing: every bound that
 * holds for a silent origin must hold after a 1xx too, since a 1xx is not the response. A body cut off by a
 * connection reset: the client must see it incomplete, whatever the body's framing.
 */

const HINT = 'HTTP/1.1 103 Early Hints\r\nlink: </a.css>; rel=preload\r\n\r\n';

/** A raw TCP origin that runs `answer` on the first bytes of each request, behind a proxy with a 1 s head timeout. */
async function setup(t: ExecutionContext, answer: (socket: net.Socket) => void): Promise<string> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('data', () => answer(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const proxy = await startProxyHarness({
    settings: { proxy: { responseHeaderTimeout: '1s', idleTimeout: '60s' } },
    table: testRouteTable([testRoute({ endpoints: [`127.0.0.1:${(server.address() as AddressInfo).port}`] })]),
  });
  t.teardown(() => proxy.close());
  return proxy.url;
}

/** The status of a GET through the proxy, or -1 when none came within 8 s. */
async function statusWithin8s(url: string): Promise<number> {
  const answer = await Promise.race([getText(`${url}/`, 'test'), new Promise<{ status: number }>((resolve) => setTimeout(() => resolve({ status: -1 }), 8_000).unref())]);
  return answer.status;
}

test('an origin that sends 103 Early Hints and then falls silent still gets the response-head timeout', async (t) => {
  const url = await setup(t, (socket) => socket.write(HINT));
  t.is(await statusWithin8s(url), 504);
});

test('an origin that keeps sending 103 Early Hints without a final response gets the response-head timeout', async (t) => {
  const timers = new Set<NodeJS.Timeout>();
  t.teardown(() => {
    for (const timer of timers) clearInterval(timer);
  });
  const url = await setup(t, (socket) => {
    let sent = 0;
    // Bounded: at most 40 hints (12 s), far beyond the 1 s response-head timeout.
    const timer = setInterval(() => {
      if (++sent > 40 || socket.destroyed) return clearInterval(timer);
      socket.write(HINT);
    }, 300);
    timers.add(timer);
  });
  const started = Date.now();
  t.is(await statusWithin8s(url), 504, `answered after ${Date.now() - started} ms`);
});

for (const [framing, head] of [
  ['close-delimited', 'HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n'],
  ['chunked', 'HTTP/1.1 200 OK\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\n3e8\r\n'],
] as const) {
  test(`a ${framing} body the origin cuts off with a reset reaches the client as incomplete`, async (t) => {
    const url = await setup(t, (socket) => socket.write(head + 'x'.repeat(1000), () => setTimeout(() => socket.resetAndDestroy(), 100)));
    const outcome = await new Promise<string>((resolve) => {
      const req = http.get(`${url}/`, { headers: { host: 'test' }, agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve('complete'));
        res.on('error', () => resolve('incomplete'));
      });
      req.on('error', () => resolve('incomplete'));
    });
    t.is(outcome, 'incomplete');
  });
}
