import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import http2 from 'node:http2';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { parseConfig } from '../../src/config/load.js';
import { tunnelSchema } from '../../src/config/schema.js';
import { startEdgeSimulator, type EdgeSimulator } from '../../src/edge-simulator/simulator.js';
import { resolvePlugins } from '../../src/plugins/registry.js';
import type { Route } from '../../src/routes/types.js';
import { TunnelConnector } from '../../src/tunnel/connector.js';
import {
  createTestCa,
  issueCert,
  MemorySecrets,
  startOrigin,
  startProxyHarness,
  testRoute,
  testRouteTable,
  type ProxyHarness,
  grpcJsonCodec,
  capturedLogger,
} from '../../src/testing/index.js';
import { pino, type Logger } from 'pino';

/**
 * End to end: client → edge simulator (eyeball entrance) → tunnel connector (HTTP/2 over TLS) → proxy
 * pipeline with the built-in plugins → origin, everything on loopback.
 */

interface Stack {
  sim: EdgeSimulator;
  proxy: ProxyHarness;
  url: string;
  host: string;
}

async function stack(t: ExecutionContext, routes: Route[], secrets?: MemorySecrets, logger?: Logger): Promise<Stack> {
  const sim = await startEdgeSimulator();
  const proxy = await startProxyHarness({ loadedPlugins: await resolvePlugins(parseConfig({})), secrets, logger, table: testRouteTable(routes) });
  const controller = new AbortController();
  const connector = new TunnelConnector({
    config: {
      tunnel: tunnelSchema.parse({ edgeAddresses: [sim.edgeAddress], edgeCaFile: sim.caFile, haConnections: 1, rpcTimeout: 2000 }),
      shutdownGracePeriod: 1000,
    },
    handler: proxy.pipeline,
    logger: pino({ level: process.env.WARREN_TEST_LOG ?? 'silent' }),
    env: { TUNNEL_TOKEN: sim.token },
    registrationIntervalMs: 20,
    backoff: { baseMs: 20 },
  });
  const running = connector.start(controller.signal).catch(() => undefined);
  t.teardown(async () => {
    controller.abort();
    await running;
    await sim.close();
    await proxy.close();
  });
  await sim.waitForRegistrations(1);
  const url = new URL(sim.eyeballUrl);
  return { sim, proxy, url: sim.eyeballUrl, host: url.host };
}

function request(
  url: string,
  options: { method?: string; host: string; body?: string | Buffer },
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: options.method ?? 'GET', agent: false, headers: { host: options.host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
    });
    req.on('error', reject);
    req.end(options.body);
  });
}

test('HTTP: requests, bodies, forwarding headers and Warren-generated errors through the tunnel', async (t) => {
  const origin = await startOrigin({ host: '127.0.0.2' });
  const dead = await startOrigin({ host: '127.0.0.3' });
  await dead.kill();
  t.teardown(() => origin.close());
  const s = await stack(t, [testRoute({ host: 'app.example.com', endpoints: [origin.key] }), testRoute({ host: 'down.example.com', endpoints: [dead.key] })]);
  const get = await request(`${s.url}/hello?x=1`, { host: 'app.example.com' });
  t.is(get.status, 200);
  const seen = JSON.parse(get.body) as { url: string; headers: Record<string, string> };
  t.is(seen.url, '/hello?x=1');
  t.is(seen.headers.host, 'app.example.com');
  t.is(seen.headers['x-forwarded-proto'], 'http', 'the eyeball is plain HTTP: the edge says http');

  const post = await request(`${s.url}/upload`, { method: 'POST', host: 'app.example.com', body: Buffer.alloc(2_000_000, 3) });
  t.is((JSON.parse(post.body) as { bodyBytes: number }).bodyBytes, 2_000_000);

  t.is((await request(`${s.url}/`, { host: 'unknown.example.com' })).status, 404);
  t.is((await request(`${s.url}/`, { host: 'down.example.com' })).status, 502);
});

test('WebSocket echo (text, binary, 10 MB) through the tunnel', async (t) => {
  const server = http.createServer();
  const wss = new WebSocketServer({ server, maxPayload: 32 * 1024 * 1024 });
  wss.on('connection', (ws) => ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data, { binary: isBinary })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        server.close(() => resolve());
      }),
  );
  const s = await stack(t, [testRoute({ host: 'ws.example.com', endpoints: [`127.0.0.1:${(server.address() as AddressInfo).port}`] })]);
  const ws = new WebSocket(`${s.url.replace('http', 'ws')}/socket`, { headers: { host: 'ws.example.com' }, maxPayload: 32 * 1024 * 1024 });
  t.teardown(() => ws.terminate());
  await once(ws, 'open');
  const next = (): Promise<[Buffer, boolean]> => new Promise((resolve) => ws.once('message', (d: RawData, b: boolean) => resolve([d as Buffer, b])));
  ws.send('text frame');
  t.deepEqual((await next()).map(String), ['text frame', 'false']);
  ws.send(Buffer.from([1, 2, 3]));
  const [bin, isBinary] = await next();
  t.true(isBinary);
  t.deepEqual([...bin], [1, 2, 3]);
  const big = Buffer.alloc(10 * 1024 * 1024, 9);
  ws.send(big);
  t.true((await next())[0].equals(big));
  ws.close(1000);
  t.is(((await once(ws, 'close')) as [number])[0], 1000);
});

test('gRPC unary, server streaming and an unreachable upstream through the tunnel', async (t) => {
  const json = grpcJsonCodec;
  const service: grpc.ServiceDefinition = {
    unary: { path: '/e2e.Echo/Unary', requestStream: false, responseStream: false, ...json },
    stream: { path: '/e2e.Echo/Stream', requestStream: false, responseStream: true, ...json },
  };
  const server = new grpc.Server();
  server.addService(service, {
    unary: (call: grpc.ServerUnaryCall<{ v: string }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
      call.request.v === 'missing' ? cb({ code: grpc.status.NOT_FOUND, details: 'not here' }) : cb(null, { echo: call.request.v }),
    stream: (call: grpc.ServerWritableStream<{ n: number }, unknown>) => {
      for (let i = 0; i < call.request.n; i++) call.write({ i });
      call.end();
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  t.teardown(() => server.forceShutdown());
  const { logger, lines } = capturedLogger();
  const s = await stack(
    t,
    [
      testRoute({ host: 'grpc.example.com', endpoints: [`127.0.0.1:${port}`], protocol: 'grpc' }),
      testRoute({ host: 'gone.example.com', endpoints: ['127.0.0.1:1'], protocol: 'grpc' }),
    ],
    undefined,
    logger,
  );
  const Client = grpc.makeGenericClientConstructor(service, 'Echo');
  const options = (authority: string) => ({ 'grpc.default_authority': authority });
  const client = new Client(s.host, grpc.credentials.createInsecure(), options('grpc.example.com')) as unknown as Record<string, (...a: unknown[]) => unknown> & grpc.Client;
  t.teardown(() => {
    client.close();
  });
  const reply = await new Promise((resolve, reject) => client.unary({ v: 'through the tunnel' }, (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r))));
  t.deepEqual(reply, { echo: 'through the tunnel' });
  const notFound = await new Promise<grpc.ServiceError>((resolve) => client.unary({ v: 'missing' }, (e: grpc.ServiceError) => resolve(e)));
  t.is(notFound.code, grpc.status.NOT_FOUND, 'an origin status in a trailers-only response reaches the client');
  t.is(notFound.details, 'not here');
  const items: unknown[] = [];
  await new Promise<void>((resolve, reject) => {
    const call = client.stream({ n: 20 }) as grpc.ClientReadableStream<unknown>;
    call.on('data', (d: unknown) => items.push(d));
    call.on('end', () => resolve());
    call.on('error', reject);
  });
  t.is(items.length, 20);
  // What goes back into the tunnel for an unreachable gRPC upstream: a trailers-only gRPC status.
  const frame = Buffer.concat([Buffer.alloc(5), Buffer.from('{"v":"x"}')]);
  frame.writeUInt32BE(frame.length - 5, 1);
  const tunnelReply = await s.sim.request({
    method: 'POST',
    authority: 'gone.example.com',
    path: '/e2e.Echo/Unary',
    headers: [
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
    ],
    body: frame,
  });
  t.is(tunnelReply.status, 200);
  const fields = Object.fromEntries(tunnelReply.headers.map(([name, value]) => [name.toLowerCase(), value]));
  t.is(fields['content-type'], 'application/grpc');
  t.is(fields['grpc-status'], String(grpc.status.UNAVAILABLE));
  // The client reads a fixed sentence and a reference; the cause is in the access log under that reference.
  const message = decodeURIComponent(fields['grpc-message'] ?? '');
  const reference = /^the origin could not be reached \(reference: ([\w-]+)\)$/.exec(message)?.[1];
  t.truthy(reference, message);
  t.notRegex(message, /127\.0\.0\.1|cannot connect/, 'no address, no upstream error');
  const record = lines.find((l) => l.component === 'access' && (l.cfRay === reference || l.id === reference));
  t.regex(String(record?.error), /cannot connect to upstream: ECONNREFUSED/);
  t.is(record?.grpcStatus, grpc.status.UNAVAILABLE);
  t.is(tunnelReply.body.length, 0);
  // And a real gRPC client behind the edge reads it as the gRPC status, not as a broken stream.
  const gone = new Client(s.host, grpc.credentials.createInsecure(), options('gone.example.com')) as unknown as Record<string, (...a: unknown[]) => unknown> & grpc.Client;
  t.teardown(() => gone.close());
  const unavailable = await new Promise<grpc.ServiceError>((resolve) => gone.unary({ v: 'x' }, (e: grpc.ServiceError) => resolve(e)));
  t.is(unavailable.code, grpc.status.UNAVAILABLE);
  t.regex(unavailable.details, /^the origin could not be reached \(reference: [\w-]+\)$/);
});

test('SSE through the tunnel: the first event arrives before the origin sends the second', async (t) => {
  let clientGotFirst!: () => void;
  const first = new Promise<boolean>((resolve) => (clientGotFirst = () => resolve(true)));
  let inOrder = false;
  const origin = await startOrigin({
    handler: async (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: one\n\n');
      inOrder = await Promise.race([first, new Promise<boolean>((r) => setTimeout(() => r(false), 3_000))]);
      res.end('data: two\n\n');
    },
  });
  t.teardown(() => origin.close());
  const s = await stack(t, [testRoute({ host: 'sse.example.com', endpoints: [origin.key] })]);
  const text = await new Promise<string>((resolve, reject) => {
    http
      .get(`${s.url}/events`, { agent: false, headers: { host: 'sse.example.com' } }, (res) => {
        let all = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          all += c;
          if (all.includes('data: one\n\n')) clientGotFirst();
        });
        res.on('end', () => resolve(all));
      })
      .on('error', reject);
  });
  t.true(inOrder);
  t.is(text, 'data: one\n\ndata: two\n\n');
});

test('h2c and verified HTTPS upstreams through the tunnel', async (t) => {
  const h2 = http2.createServer((req, res) => res.end(`h2:${req.headers[':authority']}`));
  await new Promise<void>((resolve) => h2.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => h2.close(() => resolve())));
  const ca = createTestCa('e2e CA');
  const cert = issueCert(ca, { dns: ['api.internal'] });
  const tlsOrigin = await startOrigin({ tls: { cert: cert.certPem, key: cert.keyPem }, handler: (_q, r) => r.end('tls ok') });
  t.teardown(() => tlsOrigin.close());
  const secrets = new MemorySecrets();
  secrets.set('default', 'ca', { 'ca.crt': ca.certPem });
  const s = await stack(
    t,
    [
      testRoute({ host: 'h2c.example.com', endpoints: [`127.0.0.1:${(h2.address() as AddressInfo).port}`], protocol: 'h2c' }),
      testRoute({ host: 'tls.example.com', endpoints: [tlsOrigin.key], protocol: 'https', annotations: { 'proxy-ssl-secret': 'ca', 'proxy-ssl-name': 'api.internal' } }),
      testRoute({ host: 'bad-tls.example.com', endpoints: [tlsOrigin.key], protocol: 'https', annotations: { 'proxy-ssl-name': 'api.internal' } }),
    ],
    secrets,
  );
  t.deepEqual(await request(`${s.url}/`, { host: 'h2c.example.com' }).then((r) => [r.status, r.body]), [200, 'h2:h2c.example.com']);
  t.deepEqual(await request(`${s.url}/`, { host: 'tls.example.com' }).then((r) => [r.status, r.body]), [200, 'tls ok']);
  t.is((await request(`${s.url}/`, { host: 'bad-tls.example.com' })).status, 502, 'an unverifiable upstream is refused');
});

/** A GET through the eyeball entrance that reports whether the body arrived complete. */
function fetchBody(url: string, host: string): Promise<{ status: number; bytes: number; complete: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { host } }, (res) => {
      let bytes = 0;
      res.on('data', (c: Buffer) => (bytes += c.length));
      res.on('end', () => resolve({ status: res.statusCode!, bytes, complete: res.complete }));
      res.on('aborted', () => resolve({ status: res.statusCode!, bytes, complete: false }));
      res.on('error', () => resolve({ status: res.statusCode!, bytes, complete: false }));
    });
    req.on('error', reject);
  });
}

/** Origins that send a response head and part of the body, then lose the connection. */
async function dyingOrigins(t: ExecutionContext, tls: { cert: string; key: string }): Promise<{ h2c: string; h2: string; h1: string }> {
  const h2 = http2.createServer();
  const h2s = http2.createSecureServer({ ...tls, allowHTTP1: false });
  const dieMidBody = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void => {
    // With and without a declared length: the tunnel sends neither as complete.
    stream.respond({ ':status': 200, 'content-type': 'application/octet-stream', ...(headers[':path'] === '/sized' ? { 'content-length': '100000' } : {}) });
    stream.write(Buffer.alloc(20_000, 1));
    setTimeout(() => stream.session?.socket.destroy(), 30);
  };
  h2.on('stream', dieMidBody);
  h2s.on('stream', dieMidBody);
  const h1 = http.createServer((req, res) => {
    if (req.url === '/chunked') res.writeHead(200, { 'content-type': 'application/octet-stream' });
    else res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': 100_000 });
    res.write(Buffer.alloc(20_000, 1));
    setTimeout(() => res.socket?.destroy(), 30);
  });
  for (const server of [h2, h2s, h1]) await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    h2.close();
    h2s.close();
    h1.closeAllConnections();
    h1.close();
  });
  const key = (server: http.Server | http2.Http2Server | http2.Http2SecureServer): string => `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { h2c: key(h2), h2: key(h2s), h1: key(h1) };
}

test('an upstream that dies mid-body: the tunnel stream is reset, the visitor sees an incomplete response, the log says error', async (t) => {
  const ca = createTestCa('dying origin CA');
  const cert = issueCert(ca, { dns: ['origin.internal'] });
  const origins = await dyingOrigins(t, { cert: cert.certPem, key: cert.keyPem });
  const secrets = new MemorySecrets();
  secrets.set('default', 'ca', { 'ca.crt': ca.certPem });
  const { logger, lines } = capturedLogger();
  const s = await stack(
    t,
    [
      testRoute({ host: 'h2c.example.com', endpoints: [origins.h2c], protocol: 'h2c' }),
      testRoute({ host: 'h2.example.com', endpoints: [origins.h2], protocol: 'h2', annotations: { 'proxy-ssl-secret': 'ca', 'proxy-ssl-name': 'origin.internal' } }),
      testRoute({ host: 'h1.example.com', endpoints: [origins.h1] }),
    ],
    secrets,
    logger,
  );
  const cases = [
    ['h2c.example.com', '/streamed'],
    ['h2c.example.com', '/sized'],
    ['h2.example.com', '/streamed'],
    ['h2.example.com', '/sized'],
    ['h1.example.com', '/sized'],
    ['h1.example.com', '/chunked'],
  ] as const;
  for (const [host, path] of cases) {
    const reply = await fetchBody(`${s.url}${path}`, host);
    t.is(reply.status, 200, `${host}${path}`);
    t.false(reply.complete, `${host}${path}: a cut-off body must not arrive as complete`);
    t.true(reply.bytes < 100_000, `${host}${path}`);
  }
  const deadline = Date.now() + 3_000;
  const access = (): Array<Record<string, unknown>> => lines.filter((l) => l.component === 'access');
  while (access().length < cases.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  const entries = access();
  t.is(entries.length, cases.length);
  for (const entry of entries) {
    t.is(entry.status, 502, JSON.stringify(entry));
    t.regex(String(entry.error), /WARREN_ERR_UPSTREAM_PROTOCOL/);
  }
  t.is(lines.filter((l) => l.level === 50 && /cut off/.test(String(l.msg))).length, cases.length);
});

test('a visitor that stops reading holds the origin back through the tunnel and the pipeline, and then gets the whole body', async (t) => {
  const size = 256 * 1024 * 1024;
  // What the hops between origin and visitor may hold: kernel buffers of three connections and the HTTP/2 windows.
  const bound = 48 * 1024 * 1024;
  const chunk = Buffer.alloc(64 * 1024, 'b');
  let sent = 0;
  const origin = await startOrigin({
    handler: (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size });
      const pump = (): void => {
        while (sent < size) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    },
  });
  t.teardown(() => origin.kill());
  const s = await stack(t, [testRoute({ host: 'slow.example.com', endpoints: [origin.key] })]);
  const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
    const req = http.request(s.url, { agent: false, headers: { host: 'slow.example.com' } }, resolve);
    req.on('error', reject);
    req.end();
  });
  t.is(res.statusCode, 200);
  res.pause();

  // Every buffer on the way fills; then the origin must have stalled well short of the body.
  let before = -1;
  for (let i = 0; i < 100 && sent !== before; i++) {
    before = sent;
    await sleep(300);
  }
  t.is(sent, before, 'the origin kept sending while the visitor read nothing');
  t.true(sent < bound, `the origin sent ${(sent / 1048576).toFixed(1)} MiB to a visitor that read nothing`);
  t.log(`held back after ${(sent / 1048576).toFixed(1)} MiB of ${size / 1048576} MiB`);

  let received = 0;
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`only ${received} bytes within 60 s`)), 60_000);
    res.on('data', (c: Buffer) => (received += c.length));
    res.on('end', () => {
      clearTimeout(timer);
      resolve();
    });
    res.on('error', reject);
    res.resume();
  });
  t.is(received, size);
});
