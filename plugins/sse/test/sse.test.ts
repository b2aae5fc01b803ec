import test from 'ava';
import http from 'node:http';
import { startOrigin, startProxyHarness, testRoute, testRouteTable, type TestRouteInit } from '@warren/core/testing';
import sse, { atEventBoundary } from '../src/index.js';

async function harness(t: { teardown(f: () => unknown): void }, route: TestRouteInit, withPlugin = true) {
  const proxy = await startProxyHarness({ plugins: withPlugin ? [{ module: sse }] : [], table: testRouteTable([testRoute(route)]) });
  t.teardown(() => proxy.close());
  return proxy;
}

/**
 * Reads an event stream, calling `onText` with everything received so far after each chunk. The client gives up
 * after `limitMs` (then `complete` is false).
 */
function stream(url: string, onText: (text: string) => void = () => {}, limitMs = 10_000): Promise<{ status: number; text: string; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http
      .get(url, { agent: false, headers: { accept: 'text/event-stream' } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          text += c;
          onText(text);
        });
        res.on('end', () => resolve({ status: res.statusCode!, text, complete: res.complete }));
        res.on('error', () => resolve({ status: res.statusCode!, text, complete: false }));
        res.on('aborted', () => resolve({ status: res.statusCode!, text, complete: false }));
      })
      .on('error', reject);
    const limit = setTimeout(() => req.destroy(), limitMs);
    req.on('close', () => clearTimeout(limit));
  });
}

test('the client receives the first event before the origin sends the second', async (t) => {
  let clientGotFirst!: () => void;
  const firstArrived = new Promise<void>((resolve) => (clientGotFirst = resolve));
  let receivedBeforeSecond = false;
  const origin = await startOrigin({
    handler: async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('id: 1\ndata: first\n\n');
      // Bounded wait: a buffering proxy would never deliver the first event, and the test then fails below.
      receivedBeforeSecond = await Promise.race([firstArrived.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 3_000))]);
      res.end('id: 2\ndata: second\n\n');
    },
  });
  t.teardown(() => origin.close());
  const proxy = await harness(t, { endpoints: [origin.key] });
  const result = await stream(`${proxy.url}/events`, (text) => {
    if (text.includes('data: first\n\n')) clientGotFirst();
  });
  t.true(receivedBeforeSecond, 'the first event reached the client while the origin held the second');
  t.is(result.text, 'id: 1\ndata: first\n\nid: 2\ndata: second\n\n');
});

test("an open event stream has its own idle bound instead of the route's idle timeout; without the plugin it is cut", async (t) => {
  const origin = await startOrigin({
    handler: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      let n = 0;
      const tick = setInterval(() => {
        res.write(`data: ${n}\n\n`);
        if (++n === 3) {
          clearInterval(tick);
          res.end();
        }
      }, 400);
      res.on('close', () => clearInterval(tick));
    },
  });
  t.teardown(() => origin.close());
  const route = { endpoints: [origin.key], annotations: { 'idle-timeout': 250 } };
  const withPlugin = await harness(t, route);
  const kept = await stream(`${withPlugin.url}/`);
  t.true(kept.complete);
  t.is(kept.text, 'data: 0\n\ndata: 1\n\ndata: 2\n\n');

  const without = await harness(t, route, false);
  const cut = await stream(`${without.url}/`);
  t.false(cut.complete, 'the idle timeout ended the stream early');
  t.is(cut.text, 'data: 0\n\n', 'cut after the first event (the head went out with it)');
});

test('heartbeat comments fill silences, only between events', async (t) => {
  const origin = await startOrigin({
    handler: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: a');
      // Half an event, then silence: no heartbeat may land inside it.
      setTimeout(() => res.write('\n\n'), 200);
      // A long silence, so that a loaded machine still fits several 100 ms heartbeats into it.
      setTimeout(() => res.end('data: b\n\n'), 1500);
    },
  });
  t.teardown(() => origin.close());
  const proxy = await harness(t, { endpoints: [origin.key], annotations: { 'sse-heartbeat': 100 } });
  const result = await stream(`${proxy.url}/`);
  t.true(result.text.startsWith('data: a\n\n'), JSON.stringify(result.text));
  const beats = result.text.split(': keep-alive\n\n').length - 1;
  t.true(beats >= 2, `${beats} heartbeats`);
  t.is(result.text.replaceAll(': keep-alive\n\n', ''), 'data: a\n\ndata: b\n\n');
});

test('other responses are untouched: no heartbeat, idle timeout applies', async (t) => {
  const origin = await startOrigin({
    handler: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('partial');
    },
  });
  t.teardown(() => origin.kill());
  const proxy = await harness(t, { endpoints: [origin.key], annotations: { 'sse-heartbeat': 50, 'idle-timeout': 300 } });
  const result = await stream(`${proxy.url}/`);
  t.false(result.complete);
  t.is(result.text, 'partial');
});

test('event boundaries and settings', (t) => {
  t.true(atEventBoundary('a\n\n'));
  t.true(atEventBoundary('\r\n\r\n'));
  t.true(atEventBoundary('x\r\r'));
  t.false(atEventBoundary('a\n'));
  t.false(atEventBoundary('\r\n'));
  t.is(sse.manifest.configSchema.parse({}).heartbeat, 0);
  t.is(sse.manifest.configSchema.parse({}).idleTimeout, 300_000);
  t.throws(() => sse.manifest.configSchema.parse({ idleTimeout: 0 }));
  t.is(sse.manifest.configSchema.parse({ heartbeat: '15s' }).heartbeat, 15_000);
  t.throws(() => sse.manifest.configSchema.parse({ heartbeat: 'often' }));
  t.false(sse.manifest.annotations![0]!.schema.safeParse('2h').success);
});

test('a silent event stream is ended at sse-idle-timeout even while Warren sends heartbeats; one the origin keeps alive is not', async (t) => {
  const origin = await startOrigin({
    handler: (req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: hello\n\n');
      if (req.url === '/silent') return; // a pod that stopped talking but keeps the connection
      // Origin comments every 150 ms for 1.2 s, then the end: activity that must keep the stream open.
      let n = 0;
      const tick = setInterval(() => {
        if (++n === 8) {
          clearInterval(tick);
          res.end('data: bye\n\n');
        } else res.write(': ping\n\n');
      }, 150);
      res.on('close', () => clearInterval(tick));
    },
  });
  t.teardown(() => origin.kill());
  const proxy = await harness(t, { endpoints: [origin.key], annotations: { 'sse-idle-timeout': 500, 'sse-heartbeat': 100 } });
  const began = Date.now();
  const silent = await stream(`${proxy.url}/silent`, undefined, 5_000);
  const took = Date.now() - began;
  t.false(silent.complete, 'the silent stream was ended as broken, not as complete');
  t.true(silent.text.startsWith('data: hello\n\n'));
  t.true(silent.text.includes(': keep-alive'), 'heartbeats were sent meanwhile');
  t.true(took >= 450 && took < 4_500, `ended after ${took} ms (the client gives up at 5 s)`);

  const active = await stream(`${proxy.url}/active`);
  t.true(active.complete);
  t.true(active.text.endsWith('data: bye\n\n'));
});
