import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseConfig } from '../../src/config/load.js';
import { resolvePlugins } from '../../src/plugins/registry.js';
import { createPool } from '../../src/proxy/transport.js';
import type { Route } from '../../src/routes/types.js';
import { startOrigin, startProxyHarness, testRoute, testRouteTable, type ProxyHarness } from '../../src/testing/index.js';

/**
 * Upstream resource bounds: slow request bodies must not pin a Service's connections, waiting for a connection
 * is bounded in time and in queue length (503 + Retry-After), and a stalled request body ends with 408.
 */

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request on its own connection; rejects on a transport error or after `timeoutMs`. */
function send(url: string, options: { method?: string; host?: string; body?: string; timeoutMs?: number; headers?: http.OutgoingHttpHeaders } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', agent: false, headers: { host: options.host ?? 'test', ...options.headers } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode!, headers: res.headers, body });
      });
      res.on('error', reject);
    });
    const limit = options.timeoutMs ?? 10_000;
    const timer = setTimeout(() => req.destroy(new Error(`no answer within ${limit} ms`)), limit);
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(options.body);
  });
}

/**
 * A client that declares `length` bytes (or streams chunked when undefined) and sends one byte every
 * `everyMs` until stopped. Resolves `answer` with the status it got, or 0 when the connection failed.
 */
function slowUpload(url: string, length: number | undefined, everyMs: number): { stop(): void; answer: Promise<number> } {
  let timer: NodeJS.Timeout | undefined;
  const headers: http.OutgoingHttpHeaders = { host: 'test' };
  if (length !== undefined) headers['content-length'] = length;
  const req = http.request(url, { method: 'POST', agent: false, headers });
  const answer = new Promise<number>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      clearInterval(timer);
      resolve(res.statusCode!);
    });
    req.on('error', () => resolve(0));
    req.on('close', () => resolve(0));
  });
  req.flushHeaders();
  let sent = 0;
  timer = setInterval(() => {
    if (length !== undefined && sent >= length - 1) return; // never complete the body
    sent++;
    req.write('x');
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      req.destroy();
    },
    answer,
  };
}

/** A POST whose body the test writes; `answer` resolves with the response status. */
function partialUpload(url: string, headers: http.OutgoingHttpHeaders): { upload: http.ClientRequest; answer: Promise<number> } {
  const upload = http.request(url, { method: 'POST', agent: false, headers: { host: 'test', ...headers } });
  const answer = new Promise<number>((resolve, reject) => {
    upload.on('response', (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    upload.on('error', reject);
  });
  return { upload, answer };
}

async function harness(t: ExecutionContext, route: Route, settings: Record<string, unknown> = {}): Promise<ProxyHarness> {
  const proxy = await startProxyHarness({ loadedPlugins: await resolvePlugins(parseConfig({})), settings, table: testRouteTable([route]) });
  t.teardown(() => proxy.close());
  return proxy;
}

test('slow uploaders do not starve a canary on the same Service', async (t) => {
  const seen = new Map<string, number>();
  const origin = await startOrigin({
    handler: (req, res) => {
      seen.set(req.url!, (seen.get(req.url!) ?? 0) + 1);
      req.resume();
      req.on('end', () => res.end('ok'));
    },
  });
  t.teardown(() => origin.kill());
  // Four connections to the only endpoint; six times as many uploaders sending one byte every 250 ms: small
  // declared bodies (read before a connection is taken), chunked and large declared ones (streamed).
  const proxy = await harness(t, testRoute({ endpoints: [origin.key], annotations: { 'upstream-keepalive-connections': 4 } }));
  const uploaders = [
    ...Array.from({ length: 12 }, () => slowUpload(`${proxy.url}/small`, 2_000, 250)),
    ...Array.from({ length: 6 }, () => slowUpload(`${proxy.url}/chunked`, undefined, 250)),
    ...Array.from({ length: 6 }, () => slowUpload(`${proxy.url}/large`, 1_000_000, 250)),
  ];
  t.teardown(() =>
    uploaders.forEach((u) => {
      u.stop();
    }),
  );
  await sleep(300);
  let ok = 0;
  const tries = 60;
  const started = Date.now();
  for (let i = 0; i < tries && Date.now() - started < 20_000; i++) {
    const reply = await send(`${proxy.url}/canary`, { timeoutMs: 2_000 }).catch(() => undefined);
    if (reply?.status === 200) ok++;
    await sleep(20);
  }
  t.true(ok / tries >= 0.99, `canary succeeded ${ok} of ${tries} times`);
  t.is(seen.get('/canary'), ok);
  // Small bodies are still being read by Warren; streamed uploads hold half the connections (proxy.uploadSlotShare).
  t.is(seen.get('/small'), undefined);
  t.is((seen.get('/chunked') ?? 0) + (seen.get('/large') ?? 0), 2);
  for (const u of uploaders) u.stop();
  t.deepEqual(await Promise.all(uploaders.map((u) => u.answer)), Array(uploaders.length).fill(0));
});

test('a streamed upload that stalls ends with 408 and frees its upstream connection', async (t) => {
  let aborted = 0;
  const origin = await startOrigin({
    handler: (req, res) => {
      req.on('close', () => {
        if (!req.complete) aborted++;
      });
      req.resume();
      req.on('end', () => res.end('done'));
    },
  });
  t.teardown(() => origin.kill());
  const proxy = await harness(t, testRoute({ endpoints: [origin.key], annotations: { 'request-body-timeout': 400, 'upstream-keepalive-connections': 1 } }));
  // Chunked: streamed to the origin as it comes. Three bytes, then silence.
  const { upload, answer } = partialUpload(`${proxy.url}/upload`, { 'transfer-encoding': 'chunked' });
  upload.write('abc');
  const began = Date.now();
  t.is(await Promise.race([answer, sleep(5_000).then(() => 0)]), 408);
  const took = Date.now() - began;
  t.true(took >= 350 && took < 3_000, `answered after ${took} ms`);
  upload.destroy();
  // The one connection is free again: a plain request goes through at once.
  const next = await send(`${proxy.url}/after`, { timeoutMs: 2_000 });
  t.is(next.status, 200);
  await sleep(100);
  t.true(aborted >= 1, 'the origin saw the stalled upload cut off');
});

test('a small declared body that stalls is answered 408 without reaching the origin', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.kill());
  const proxy = await harness(t, testRoute({ endpoints: [origin.key], annotations: { 'request-body-timeout': 300 } }));
  const { upload, answer } = partialUpload(`${proxy.url}/upload`, { 'content-length': 100 });
  t.teardown(() => upload.destroy());
  upload.write('only ten b');
  t.is(await Promise.race([answer, sleep(5_000).then(() => 0)]), 408);
  t.is(origin.requests, 0);
});

test('waiting for a busy endpoint is bounded: 503 with Retry-After after the queue timeout, and at once when the queue is full', async (t) => {
  const held: http.ServerResponse[] = [];
  const origin = await startOrigin({
    handler: (req, res) => {
      if (req.url === '/hold') held.push(res);
      else res.end('quick');
    },
  });
  t.teardown(() => origin.kill());
  t.teardown(() =>
    held.forEach((res) => {
      res.end();
    }),
  );
  const route = testRoute({ endpoints: [origin.key], annotations: { 'upstream-keepalive-connections': 2, 'upstream-queue-timeout': 1_500 } });
  // Error details on: the page says which bound answered (the queue timeout or the full queue).
  const proxy = await harness(t, route, { proxy: { maxQueuedRequests: 1, errorDetails: true } });
  const holding = [send(`${proxy.url}/hold`), send(`${proxy.url}/hold`)];
  holding.forEach((p) => {
    p.catch(() => undefined);
  });
  const deadline = Date.now() + 5_000;
  while (held.length < 2 && Date.now() < deadline) await sleep(10);
  t.is(held.length, 2);

  // Both connections busy: this one waits (the queue holds one), the next finds the queue full.
  const began = Date.now();
  let waited: number | undefined;
  const waiting = send(`${proxy.url}/wait`).finally(() => (waited = Date.now() - began));
  await sleep(100);
  const full = await send(`${proxy.url}/full`);
  t.is(full.status, 503);
  t.is(full.headers['retry-after'], '2');
  t.is(waited, undefined, 'a full queue answers at once, while the queued request still waits');
  t.regex(full.body, /proxy\.maxQueuedRequests/);

  const timedOut = await waiting;
  t.is(timedOut.status, 503);
  t.is(timedOut.headers['retry-after'], '2');
  t.true(waited! >= 1_450, `the queued request waited for the queue timeout (${waited} ms)`);
  t.regex(timedOut.body, /no free connection/);

  // A request that gets a slot while waiting is served normally.
  const served = send(`${proxy.url}/served`);
  await sleep(50);
  held.shift()!.end('released');
  t.is((await served).status, 200);
  held.shift()!.end('released');
  t.deepEqual(
    (await Promise.all(holding)).map((r) => r.status),
    [200, 200],
  );
  t.is(origin.requests, 3);
});

test('closing a pool gracefully still serves the requests waiting for a slot, and refuses new ones', async (t) => {
  const origin = await startOrigin({ handler: (_req, res) => setTimeout(() => res.end('ok'), 100) });
  t.teardown(() => origin.kill());
  const pool = createPool(
    `http://${origin.key}`,
    { scheme: 'http:', http2: 'off', connectTimeout: 2_000, keepAlive: { timeout: 2_000, maxConnections: 1 } },
    { maxQueued: 10, queueTimeout: 5_000, uploadShare: 0.5 },
  );
  t.teardown(() => pool.destroy());
  const request = (): Promise<number | string> =>
    new Promise((resolve) => {
      let status = 0;
      pool.dispatch(
        { origin: `http://${origin.key}`, path: '/', method: 'GET', headers: ['host', 'test'] },
        {
          onResponseStart: (_c, code) => void (status = code),
          onResponseData: () => {},
          onResponseEnd: () => resolve(status),
          onResponseError: (_c, err) => resolve((err as { code?: string }).code ?? err.message),
        },
      );
    });
  const answers = [request(), request(), request()];
  await pool.close();
  t.deepEqual(await Promise.all(answers), [200, 200, 200]);
  t.is(origin.connections, 1);
  t.is(await request(), 'UND_ERR_CLOSED');
});
