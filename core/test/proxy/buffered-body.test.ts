import test from 'ava';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';

/**
 * Bodies small enough to be read whole before a connection is taken (`proxy.requestBufferBytes`) cost memory for
 * what the client sent, not for what it declared: otherwise a client that declares 64 KiB and sends one byte
 * makes the proxy hold 64 KiB for as long as the request-body timeout lets it wait.
 */

const CLIENTS = 150;
const DECLARED = 65_536;

test('a declared but unsent small body costs no memory up front', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ endpoints: [origin.key] })]) });
  t.teardown(() => proxy.close());
  const url = new URL(proxy.url);
  const sockets: net.Socket[] = [];
  t.teardown(() => {
    for (const s of sockets) s.destroy();
  });
  const before = process.memoryUsage().arrayBuffers;
  for (let i = 0; i < CLIENTS; i++) {
    const socket = net.connect(Number(url.port), url.hostname);
    socket.on('error', () => {});
    socket.write(`POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: ${DECLARED}\r\n\r\nx`);
    sockets.push(socket);
  }
  // Every request reaches the proxy and waits for the rest of its body (bounded by 5 s).
  const until = Date.now() + 5_000;
  while (sockets.some((s) => s.writableLength > 0 || s.connecting) && Date.now() < until) await sleep(50);
  await sleep(500);
  const grown = process.memoryUsage().arrayBuffers - before;
  t.log(`array buffers grew by ${grown} bytes`);
  t.is(origin.requests, 0, 'no request was forwarded before its body was complete');
  // Declared: 150 × 64 KiB ≈ 9.4 MiB. Received: 150 bytes (in buffers of a few KiB each at most).
  t.true(grown < 3 * 1024 * 1024, `array buffers grew by ${grown} bytes`);
});
