import test from 'ava';
import { request } from 'undici';
import WebSocket from 'ws';

interface DemoOrigin {
  servers: Array<{ name: string; port: number; url: string }>;
  close(): Promise<void>;
}

const ORIGIN = new URL('../../../../examples/local/origin/server.js', import.meta.url).href;

async function startOrigin(t: import('ava').ExecutionContext): Promise<DemoOrigin> {
  const { startDemoOrigin } = (await import(ORIGIN)) as { startDemoOrigin: (o: unknown) => Promise<DemoOrigin> };
  const origin = await startDemoOrigin({
    services: [
      { name: 'web', port: 0 },
      { name: 'api', port: 0 },
    ],
  });
  t.teardown(() => origin.close());
  return origin;
}

test('every demo service answers with JSON describing the request', async (t) => {
  const origin = await startOrigin(t);
  t.deepEqual(
    origin.servers.map((s) => s.name),
    ['web', 'api'],
  );
  for (const server of origin.servers) {
    const res = await request(`${server.url}/v1/items?page=2`, { method: 'POST', headers: { 'x-demo': 'yes' }, body: 'hi' });
    t.is(res.statusCode, 200);
    t.regex(String(res.headers['content-type']), /^application\/json/);
    const body = (await res.body.json()) as Record<string, unknown>;
    t.is(body.service, server.name);
    t.is(body.method, 'POST');
    t.is(body.path, '/v1/items');
    t.deepEqual(body.query, { page: '2' });
    t.is((body.headers as Record<string, string>)['x-demo'], 'yes');
    t.is((body.client as { address: string }).address, '127.0.0.1');
  }
});

test('GET /events streams the requested number of server-sent events, then ends', async (t) => {
  const origin = await startOrigin(t);
  const res = await request(`${origin.servers[1]!.url}/v1/events?count=3&interval=10`);
  t.is(res.headers['content-type'], 'text/event-stream');
  const text = await res.body.text();
  const events = text.trim().split('\n\n');
  t.is(events.length, 3);
  t.deepEqual(
    events.map(
      (e) =>
        JSON.parse(
          e
            .split('\n')
            .find((l) => l.startsWith('data: '))!
            .slice(6),
        ) as unknown,
    ),
    [1, 2, 3].map((n) => ({ service: 'api', n, of: 3 })),
  );
});

test('a WebSocket on /ws greets and echoes text and binary messages', async (t) => {
  const origin = await startOrigin(t);
  const ws = new WebSocket(`ws://127.0.0.1:${origin.servers[0]!.port}/ws`);
  t.teardown(() => ws.terminate());
  const received: Array<{ data: Buffer; binary: boolean }> = [];
  const done = new Promise<void>((resolve, reject) => {
    ws.on('error', reject);
    ws.on('message', (data: Buffer, binary: boolean) => {
      received.push({ data, binary });
      if (received.length === 1) {
        ws.send('ping');
        ws.send(Buffer.from([0, 1, 2]));
      }
      if (received.length === 3) resolve();
    });
  });
  await done;
  t.is(JSON.parse(received[0]!.data.toString()).service, 'web');
  t.deepEqual([received[1]!.data.toString(), received[1]!.binary], ['ping', false]);
  t.deepEqual([[...received[2]!.data], received[2]!.binary], [[0, 1, 2], true]);
});

test('an upgrade on another path is refused with 404', async (t) => {
  const origin = await startOrigin(t);
  const ws = new WebSocket(`ws://127.0.0.1:${origin.servers[0]!.port}/nope`);
  const status = await new Promise<number>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('error', () => resolve(-1));
  });
  t.is(status, 404);
});
