import test from 'ava';
import { fork, type ChildProcess } from 'node:child_process';
import { request, type ClientRequest } from 'node:http';
import { startEdgeSimulator } from '../../src/edge-simulator/simulator.js';
import type { Exchange } from '../../src/proxy/exchange.js';
import { eyeballRequest } from './support/client.js';
import { eventually, startHarness } from './support/harness.js';

const UPLOADS = 400;
const UPLOAD_BYTES = 1.5 * 1048576;
const MiB = 1048576;

function childRss(child: ChildProcess): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the connector process did not report its RSS within 5 s')), 5000);
    child.once('message', (m: { rss: number }) => {
      clearTimeout(timer);
      resolve(m.rss);
    });
    child.send('rss');
  });
}

test('400 stalled 1.5 MiB uploads hold a bounded amount of connector memory, and another host is still served', async (t) => {
  t.timeout(60_000);
  const sim = await startEdgeSimulator();
  t.teardown(() => sim.close());
  const child = fork(new URL('./support/stalled-upload-connector.js', import.meta.url), [sim.edgeAddresses[0]!, sim.caFile, sim.token, '1'], {
    execArgv: ['--expose-gc'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  t.teardown(() => void child.kill());
  await sim.waitForRegistrations(1, 15_000);
  const canary = () => eyeballRequest(sim.eyeballUrl, { headers: { host: 'canary.example.com' } });
  t.is((await canary()).status, 200);
  const before = await childRss(child);

  const body = Buffer.alloc(UPLOAD_BYTES, 0x61);
  const uploads: ClientRequest[] = [];
  const statuses: number[] = [];
  for (let i = 0; i < UPLOADS; i++) {
    const req = request(`${sim.eyeballUrl}/upload/${i}`, {
      method: 'POST',
      headers: { host: 'uploads.example.com', 'content-length': String(UPLOAD_BYTES) },
      agent: false,
    });
    req.on('error', () => undefined);
    req.on('response', (res) => {
      statuses.push(res.statusCode ?? 0);
      res.resume();
    });
    req.end(body);
    uploads.push(req);
  }
  t.teardown(() =>
    uploads.forEach((u) => {
      u.destroy();
    }),
  );

  // The uploads arrive over a few seconds on a loaded machine: sample until the held memory stops growing.
  let peak = before;
  let stableSince = Date.now();
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline && Date.now() - stableSince < 2000) {
    await new Promise((resolve) => setTimeout(resolve, 250));
    const rss = await childRss(child);
    if (rss > peak + MiB) stableSince = Date.now();
    peak = Math.max(peak, rss);
  }
  const growthMiB = (peak - before) / MiB;
  t.log(
    `connector RSS ${Math.round(before / MiB)} → ${Math.round(peak / MiB)} MiB (+${growthMiB.toFixed(1)}); ${statuses.length} uploads answered early (${[...new Set(statuses)].join(', ') || 'none'})`,
  );
  // The bound is 32 MiB of bodies (tunnel.requestBodyBufferTotalBytes) plus per-stream state; unbounded it was ~1 MiB per upload.
  t.true(growthMiB <= 64, `RSS grew by ${growthMiB.toFixed(1)} MiB`);
  t.true(
    statuses.every((s) => s === 503),
    'an upload answered early is one refused by the budget',
  );

  const started = Date.now();
  const reply = await canary();
  t.is(reply.status, 200);
  t.is(reply.body.toString(), 'ok');
  t.true(Date.now() - started < 5000);
});

/**
 * A handler that neither reads an upload nor answers it until `release()` (then it reads the body and answers
 * 200); requests without a body are answered 200 at once.
 */
function stallUploads() {
  const held: Exchange[] = [];
  const serve = (exchange: Exchange) => {
    exchange.body.resume();
    exchange.body.once('end', () => exchange.respond({ status: 200, headers: [], contentLength: 2 }).end('ok'));
  };
  return {
    handle(exchange: Exchange): Promise<void> {
      if (exchange.head.method === 'GET') {
        exchange.respond({ status: 200, headers: [], contentLength: 2 }).end('ok');
        return Promise.resolve();
      }
      held.push(exchange);
      return new Promise<void>((resolve) => exchange.signal.addEventListener('abort', () => resolve(), { once: true }));
    },
    release: () => held.splice(0).forEach(serve),
  };
}

function startUploads(url: string, count: number, bytes: number): { requests: ClientRequest[]; statuses: Array<{ status: number; retryAfter: string | undefined }> } {
  const body = Buffer.alloc(bytes, 0x62);
  const statuses: Array<{ status: number; retryAfter: string | undefined }> = [];
  const requests = Array.from({ length: count }, (_, i) => {
    const req = request(`${url}/upload/${i}`, { method: 'POST', headers: { host: 'uploads.example.com', 'content-length': String(bytes) }, agent: false });
    req.on('error', () => undefined);
    req.on('response', (res) => {
      statuses.push({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] });
      res.resume();
    });
    req.end(body);
    return req;
  });
  return { requests, statuses };
}

test('the stream window announced to the edge falls while uploads wait unread and is restored once they end', async (t) => {
  const handler = stallUploads();
  const h = await startHarness(t, { handler });
  const [edge] = await h.sim.waitForRegistrations(1);
  t.is(edge!.session.remoteSettings.initialWindowSize, 1_048_576);
  const { requests, statuses } = startUploads(h.sim.eyeballUrl, 40, 1_048_576);
  t.teardown(() =>
    requests.forEach((r) => {
      r.destroy();
    }),
  );
  // 40 unread bodies × 1 MiB would not fit half of the 16 MiB connection budget.
  await eventually(() => edge!.session.remoteSettings.initialWindowSize! <= 131_072, 10_000, 'a lowered INITIAL_WINDOW_SIZE');
  t.is((await eyeballRequest(`${h.sim.eyeballUrl}/`, { headers: { host: 'other.example.com' } })).status, 200);
  handler.release();
  await eventually(() => statuses.length === 40, 20_000, 'every upload read and answered');
  t.deepEqual(new Set(statuses.map((s) => s.status)), new Set([200]), 'the lowered window slows uploads, it refuses none');
  await eventually(() => edge!.session.remoteSettings.initialWindowSize === 1_048_576, 10_000, 'the window restored');
});

test('past the request-body budget new uploads get 503 with Retry-After, requests without a body are served', async (t) => {
  const h = await startHarness(t, { handler: stallUploads(), tunnel: { requestBodyBufferBytes: 1_048_576 } });
  await h.sim.waitForRegistrations(1);
  // 1 MiB admits at most 64 unread bodies at the 16 KiB floor.
  const { requests, statuses } = startUploads(h.sim.eyeballUrl, 100, 65_536);
  t.teardown(() =>
    requests.forEach((r) => {
      r.destroy();
    }),
  );
  await eventually(() => statuses.length >= 36, 10_000, 'refused uploads');
  t.true(
    statuses.every((s) => s.status === 503 && s.retryAfter === '1'),
    JSON.stringify(statuses.slice(0, 3)),
  );
  t.true(statuses.length < 100, 'uploads within the budget wait for the handler');
  t.is((await eyeballRequest(`${h.sim.eyeballUrl}/`, { headers: { host: 'other.example.com' } })).status, 200);
});

test('the process-wide request-body budget holds over several edge connections', async (t) => {
  const h = await startHarness(t, { ha: 2, handler: stallUploads(), tunnel: { requestBodyBufferTotalBytes: 1_048_576 } });
  await h.sim.waitForRegistrations(2);
  // Each connection's own 16 MiB budget would take all 100; together they may hold 1 MiB.
  const { requests, statuses } = startUploads(h.sim.eyeballUrl, 100, 65_536);
  t.teardown(() =>
    requests.forEach((r) => {
      r.destroy();
    }),
  );
  await eventually(() => statuses.length >= 36, 10_000, 'refused uploads');
  t.true(statuses.every((s) => s.status === 503 && s.retryAfter === '1'));
  t.true(statuses.length < 100);
});
