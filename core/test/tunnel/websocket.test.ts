import test from 'ava';
import { once } from 'node:events';
import WebSocket from 'ws';
import { META_ORIGIN } from '../../src/tunnel/protocol.js';
import { startHarness } from './support/harness.js';

test('a WebSocket through the eyeball entrance echoes text and binary messages both ways', async (t) => {
  const h = await startHarness(t, { ha: 2 });
  await h.sim.waitForRegistrations(2);
  const ws = new WebSocket(`${h.sim.eyeballUrl.replace('http', 'ws')}/chat`, { headers: { host: 'app.example.com' } });
  t.teardown(() => ws.terminate());
  await once(ws, 'open');
  const received: Array<{ data: string; binary: boolean }> = [];
  ws.on('message', (data, binary) => received.push({ data: Buffer.from(data as Buffer).toString('latin1'), binary }));
  const binary = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i & 0xff));
  ws.send('hello');
  ws.send(binary);
  for (let i = 0; i < 20; i++) ws.send(`message ${i}`);
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${received.length} echoes`)), 5000);
    const check = () => {
      if (received.length < 22) return;
      clearTimeout(timer);
      resolve();
    };
    ws.on('message', check);
  });
  t.deepEqual(received[0], { data: 'hello', binary: false });
  t.deepEqual(received[1], { data: binary.toString('latin1'), binary: true });
  t.deepEqual(
    received.slice(2).map((m) => m.data),
    Array.from({ length: 20 }, (_, i) => `message ${i}`),
  );
  ws.close(1000, 'bye');
  const [code] = (await once(ws, 'close')) as [number];
  t.is(code, 1000);
  t.deepEqual(h.sim.violations, []);
});

test('an accepted WebSocket is answered 200 (not 101) with the handshake headers serialized', async (t) => {
  const h = await startHarness(t);
  await h.sim.waitForRegistrations(1);
  const stream = h.sim.openStream({
    ':method': 'GET',
    ':scheme': 'https',
    ':authority': 'app.example.com',
    ':path': '/ws',
    'cf-cloudflared-proxy-connection-upgrade': 'websocket',
    'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'sec-websocket-version': '13',
  });
  const [headers] = (await once(stream, 'response')) as [Record<string, string>];
  t.is(headers[':status'] as unknown as number, 200);
  t.is(headers['cf-cloudflared-response-meta'], META_ORIGIN);
  const { deserializeHeaders } = await import('../../src/tunnel/header-serialization.js');
  const decoded = new Map(deserializeHeaders(headers['cf-cloudflared-response-headers']!).map(([n, v]) => [n.toLowerCase(), v]));
  t.is(decoded.get('sec-websocket-accept'), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  t.is(decoded.get('upgrade'), 'websocket');
  t.is(decoded.get('connection'), 'Upgrade');
  // A masked text frame "hi" (client → server) comes back unmasked from the echo origin.
  stream.write(Buffer.from([0x81, 0x82, 1, 2, 3, 4, 'h'.charCodeAt(0) ^ 1, 'i'.charCodeAt(0) ^ 2]));
  const [frame] = (await once(stream, 'data')) as [Buffer];
  t.deepEqual([...frame], [0x81, 0x02, 'h'.charCodeAt(0), 'i'.charCodeAt(0)]);
  stream.close();
});

test('a WebSocket the origin refuses is forwarded as an ordinary response', async (t) => {
  const h = await startHarness(t);
  await h.sim.waitForRegistrations(1);
  h.origin.server.removeAllListeners('upgrade');
  h.origin.server.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 403 Forbidden\r\ncontent-length: 6\r\nconnection: close\r\n\r\nnope!\n'));
  const ws = new WebSocket(`${h.sim.eyeballUrl.replace('http', 'ws')}/chat`, { headers: { host: 'app.example.com' } });
  ws.on('error', () => undefined);
  const [, res] = (await once(ws, 'unexpected-response')) as [unknown, import('node:http').IncomingMessage];
  t.is(res.statusCode, 403);
  ws.terminate();
});
