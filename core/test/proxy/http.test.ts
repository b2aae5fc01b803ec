import test from 'ava';
import http from 'node:http';
import net from 'node:net';
import { Writable, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { defineManifest } from '../../src/plugin-api/manifest.js';
import { definePlugin } from '../../src/plugin-api/module.js';
import type { RouteBinding, UpstreamPlugin } from '../../src/plugin-api/upstream.js';
import type { Route } from '../../src/routes/types.js';
import { z } from 'zod';
import { capturedLogger, loggedError, startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  trailers: NodeJS.Dict<string>;
  body: Buffer;
}

function request(url: string, options: http.RequestOptions & { body?: string | Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { agent: false, ...options }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, rawHeaders: res.rawHeaders, trailers: res.trailers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

test('forwards a request from a direct client with its Host and forwarding headers, drops hop-by-hop and edge-only fields', async (t) => {
  const origin = await startOrigin();
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ host: 'app.example.com', endpoints: [origin.key] })]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));

  const reply = await request(`${proxy.url}/some/path?q=1`, {
    headers: {
      host: 'app.example.com',
      'x-forwarded-for': '203.0.113.9',
      'cf-connecting-ip': '203.0.113.9',
      'cf-ray': 'abc123',
      connection: 'keep-alive, x-drop-me',
      'x-drop-me': 'secret',
      'keep-alive': 'timeout=5',
      'proxy-authorization': 'Basic Zm9vOmJhcg==',
      te: 'gzip',
      'x-keep': 'yes',
    },
  });
  t.is(reply.status, 200);
  const seen = JSON.parse(reply.body.toString()) as { url: string; headers: Record<string, string | undefined> };
  t.is(seen.url, '/some/path?q=1');
  t.is(seen.headers.host, 'app.example.com');
  t.is(seen.headers['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
  t.is(seen.headers['x-forwarded-proto'], 'http');
  t.is(seen.headers['x-forwarded-host'], 'app.example.com');
  t.is(seen.headers['x-real-ip'], '127.0.0.1');
  t.is(seen.headers['cf-connecting-ip'], undefined, 'no edge vouches for it on the plain-HTTP entry');
  t.is(seen.headers['cf-ray'], 'abc123');
  t.is(seen.headers['x-keep'], 'yes');
  t.is(seen.headers['x-drop-me'], undefined);
  t.is(seen.headers['keep-alive'], undefined);
  t.is(seen.headers['proxy-authorization'], undefined);
  t.is(seen.headers.te, undefined);
});

test('the upstream-host annotation replaces Host and keeps the original in X-Forwarded-Host', async (t) => {
  const origin = await startOrigin();
  const route = testRoute({ endpoints: [origin.key], annotations: { 'upstream-host': 'internal.svc:8080' } });
  const proxy = await startProxyHarness({ table: testRouteTable([route]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const reply = await request(`${proxy.url}/`, { headers: { host: 'public.example.com' } });
  const seen = JSON.parse(reply.body.toString()) as { headers: Record<string, string> };
  t.is(seen.headers.host, 'internal.svc:8080');
  t.is(seen.headers['x-forwarded-host'], 'public.example.com');
});

test('response headers keep their case, order and repeats; hop-by-hop response fields are dropped; trailers pass', async (t) => {
  const origin = await startOrigin({
    handler: (_req, res) => {
      res.writeHead(201, [
        ['X-Mixed-Case', 'One'],
        ['Set-Cookie', 'a=1'],
        ['Set-Cookie', 'b=2'],
        ['Connection', 'x-hop'],
        ['X-Hop', 'dropped'],
        ['Trailer', 'X-Checksum'],
      ] as unknown as http.OutgoingHttpHeaders);
      res.write('part1,');
      res.addTrailers({ 'X-Checksum': 'abc' });
      res.end('part2');
    },
  });
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ endpoints: [origin.key] })]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const reply = await request(`${proxy.url}/`);
  t.is(reply.status, 201);
  t.is(reply.body.toString(), 'part1,part2');
  const names = reply.rawHeaders.filter((_, i) => i % 2 === 0);
  t.true(names.includes('X-Mixed-Case'));
  t.deepEqual(reply.headers['set-cookie'], ['a=1', 'b=2']);
  t.is(reply.headers['x-hop'], undefined);
  t.is(reply.trailers['x-checksum'], 'abc');
});

test('no route answers 404, a backend without endpoints 503, a refused connection 502', async (t) => {
  const closed = await startOrigin();
  await closed.close();
  const table = testRouteTable([
    testRoute({ host: 'empty.test', namespace: 'shop', service: 'cart', endpoints: [] }),
    testRoute({ host: 'down.test', endpoints: [closed.key] }),
  ]);
  const { logger, lines } = capturedLogger();
  const proxy = await startProxyHarness({ table, settings: { proxy: { retries: 0 } }, logger });
  t.teardown(() => proxy.close());
  const missing = await request(`${proxy.url}/`, { headers: { host: 'nowhere.test' } });
  t.is(missing.status, 404);
  t.regex(missing.body.toString(), /^no route matches this request\nreference: [\w-]+\n$/);
  t.is(missing.headers['x-content-type-options'], 'nosniff');
  const empty = await request(`${proxy.url}/`, { headers: { host: 'empty.test' } });
  t.is(empty.status, 503);
  t.regex(loggedError(lines, 'empty.test'), /service shop\/cart has no ready endpoint/);
  t.notRegex(empty.body.toString(), /shop|cart/, 'the client is not told the Service');
  const down = await request(`${proxy.url}/`, { headers: { host: 'down.test' } });
  t.is(down.status, 502);
  t.regex(loggedError(lines, 'down.test'), /cannot connect to upstream: ECONNREFUSED/);
  t.notRegex(down.body.toString(), /127\.0\.0\.1|ECONNREFUSED/, 'endpoint addresses and upstream errors never reach the client');
});

test('an upstream that sends no response head in time gives 504 (annotation response-header-timeout)', async (t) => {
  const silent = await startOrigin({ handler: () => {} });
  const route = testRoute({ endpoints: [silent.key], annotations: { 'response-header-timeout': 200 } });
  const { logger, lines } = capturedLogger();
  const proxy = await startProxyHarness({ table: testRouteTable([route]), logger });
  t.teardown(() => Promise.all([proxy.close(), silent.kill()]));
  const reply = await request(`${proxy.url}/`);
  t.is(reply.status, 504);
  t.regex(loggedError(lines), /no response head in time/);
});

test('a connect that does not complete (TLS handshake never answered) gives 504 (annotation connect-timeout)', async (t) => {
  const accepted = new Set<net.Socket>();
  const mute = net.createServer((socket) => accepted.add(socket));
  await new Promise<void>((resolve) => mute.listen(0, '127.0.0.1', resolve));
  const port = (mute.address() as net.AddressInfo).port;
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        mute.close(() => resolve());
        for (const s of accepted) s.destroy();
      }),
  );
  const { logger, lines } = capturedLogger();
  const route = testRoute({ endpoints: [`127.0.0.1:${port}`], protocol: 'https', annotations: { 'connect-timeout': 200 } });
  const proxy = await startProxyHarness({
    table: testRouteTable([route]),
    settings: { proxy: { retries: 0 } },
    plugins: [{ module: httpsClaim }],
    logger,
  });
  t.teardown(() => proxy.close());
  const reply = await request(`${proxy.url}/`);
  t.is(reply.status, 504);
  t.regex(loggedError(lines), /connecting to upstream timed out/);
});

test('an upstream that stalls mid-body is cut by the idle timeout: the client sees a broken response', async (t) => {
  const stall = await startOrigin({
    handler: (_req, res) => {
      res.writeHead(200, { 'content-length': '100' });
      res.write('only part');
    },
  });
  const route = testRoute({ endpoints: [stall.key], annotations: { 'idle-timeout': 200 } });
  const proxy = await startProxyHarness({ table: testRouteTable([route]) });
  t.teardown(() => Promise.all([proxy.close(), stall.kill()]));
  const err = await t.throwsAsync(request(`${proxy.url}/`));
  t.truthy(err);
});

test('bodies stream both ways with backpressure: a stalled reader holds back the writer, never a whole body', async (t) => {
  const size = 96 * 1024 * 1024;
  const bound = 32 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 7);
  let originSent = 0;
  let uploaded = 0;
  let uploadedWhileStalled = -1;
  const origin = await startOrigin({
    handler: (req, res) => {
      // Read nothing for a while: the client's upload must stall instead of piling up in the proxy.
      setTimeout(() => {
        uploadedWhileStalled = uploaded;
        let received = 0;
        req.on('data', (c: Buffer) => (received += c.length));
        req.on('end', () => {
          res.writeHead(200, { 'x-received': String(received) });
          const pump = (): void => {
            while (originSent < size) {
              originSent += chunk.length;
              if (!res.write(chunk)) return void res.once('drain', pump);
            }
            res.end();
          };
          pump();
        });
      }, 500);
    },
  });
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ endpoints: [origin.key] })]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));

  const upload = Readable.from(
    (function* () {
      while (uploaded < size) {
        uploaded += chunk.length;
        yield chunk;
      }
    })(),
  );
  const result = await new Promise<{ status: number; received: string; bytes: number; sentWhileStalled: number }>((resolve, reject) => {
    const req = http.request(`${proxy.url}/upload`, { method: 'POST', agent: false, headers: { 'transfer-encoding': 'chunked' } }, (res) => {
      // Read nothing for a while: the origin's download must stall too.
      res.pause();
      setTimeout(() => {
        const sentWhileStalled = originSent;
        let bytes = 0;
        pipeline(
          res,
          new Writable({
            write(c: Buffer, _e, cb) {
              bytes += c.length;
              cb();
            },
          }),
        )
          .then(() => resolve({ status: res.statusCode!, received: String(res.headers['x-received']), bytes, sentWhileStalled }))
          .catch(reject);
      }, 500);
    });
    req.on('error', reject);
    upload.pipe(req);
  });
  t.is(result.status, 200);
  t.is(result.received, String(size));
  t.is(result.bytes, size);
  t.true(uploadedWhileStalled >= 0 && uploadedWhileStalled < bound, `client uploaded ${uploadedWhileStalled} bytes while the origin read nothing`);
  t.true(result.sentWhileStalled < bound, `origin sent ${result.sentWhileStalled} bytes while the client read nothing`);
});

test('too many header fields or too large a header block is refused with 431 naming the limit', async (t) => {
  const origin = await startOrigin();
  const proxy = await startProxyHarness({
    table: testRouteTable([testRoute({ endpoints: [origin.key] })]),
    settings: { proxy: { maxRequestHeaders: 20, maxHeaderBytes: 4096 } },
  });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const many: Record<string, string> = {};
  for (let i = 0; i < 30; i++) many[`x-h${i}`] = 'v';
  const tooMany = await request(`${proxy.url}/`, { headers: many });
  t.is(tooMany.status, 431);
  t.regex(tooMany.body.toString(), /proxy\.maxRequestHeaders/);
  const tooBig = await request(`${proxy.url}/`, { headers: { 'x-big': 'a'.repeat(5000) } });
  t.is(tooBig.status, 431);
  t.regex(tooBig.body.toString(), /proxy\.maxHeaderBytes/);
  t.is(origin.requests, 0);
  const fine = await request(`${proxy.url}/`, { headers: { 'x-ok': 'a'.repeat(1000) } });
  t.is(fine.status, 200);
});

test('a header block above the parser default but over a raised proxy.maxHeaderBytes is refused by the pipeline, naming the limit', async (t) => {
  const origin = await startOrigin();
  const proxy = await startProxyHarness({
    table: testRouteTable([testRoute({ endpoints: [origin.key] })]),
    settings: { proxy: { maxHeaderBytes: 100_000 } },
  });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const tooBig = await request(`${proxy.url}/`, { headers: { 'x-big': 'a'.repeat(110_000) } });
  t.is(tooBig.status, 431);
  t.regex(tooBig.body.toString(), /proxy\.maxHeaderBytes/, 'the entry point leaves the answer to the pipeline');
  t.is(origin.requests, 0);
});

test('metrics count requests by route labels (proxy.metrics.routeLabels) and status class; no path label', async (t) => {
  const origin = await startOrigin();
  const route = testRoute({ host: 'm.test', namespace: 'shop', ingress: 'web', service: 'front', endpoints: [origin.key] });
  const proxy = await startProxyHarness({ table: testRouteTable([route]), settings: { proxy: { metrics: { routeLabels: true } } } });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  for (let i = 0; i < 3; i++) t.is((await request(`${proxy.url}/p${i}`, { headers: { host: 'm.test' } })).status, 200);
  t.is((await request(`${proxy.url}/`, { method: 'PROPFIND', headers: { host: 'other.test' } })).status, 404);
  const text = await proxy.metrics.metrics();
  t.regex(text, /warren_requests_total\{namespace="shop",kind="Ingress",ingress="web",service="front",host="m.test",status_class="2xx",method="GET"\} 3/);
  t.regex(text, /warren_requests_total\{namespace="",kind="",ingress="",service="",host="",status_class="4xx",method="OTHER"\} 1/);
  t.notRegex(text, /\/p0/);
  t.regex(text, /warren_request_duration_seconds_count\{namespace="shop",kind="Ingress",ingress="web",service="front",status_class="2xx"\} 3/);
});

/**
 * A protocol plugin that claims `https` (declaring it TLS) without configuring anything: core's default TLS profile
 * applies.
 */

class HttpsClaim implements UpstreamPlugin {
  bind(route: Route): RouteBinding {
    return { route, options: {} };
  }
}
const httpsClaim = definePlugin({
  manifest: defineManifest({
    id: 'test.https-claim',
    name: 'https-claim',
    description: 'claims https',
    coreRange: '^0.1.0',
    kind: 'protocol',
    order: 1,
    protocols: ['https'],
    protocolTraits: { https: { tls: true } },
    configSchema: z.object({}).strict(),
  }),
  plugin: HttpsClaim,
});
