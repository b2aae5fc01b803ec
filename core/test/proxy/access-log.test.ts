import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import { parseConfig } from '../../src/config/load.js';
import { createAccessLog } from '../../src/proxy/access-log.js';
import type { Exchange } from '../../src/proxy/exchange.js';
import { resolvePlugins } from '../../src/plugins/registry.js';
import type { Route } from '../../src/routes/types.js';
import { grpcJsonCodec, startOrigin, startProxyHarness, testRoute, testRouteTable, type ProxyHarness } from '../../src/testing/index.js';

type Line = Record<string, unknown>;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** A proxy with the built-in plugins whose access log the test reads. */
async function loggingProxy(t: ExecutionContext, routes: Route[]): Promise<{ proxy: ProxyHarness; lines: Line[] }> {
  const lines: Line[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Line);
      cb();
    },
  });
  const proxy = await startProxyHarness({
    logger: pino({ level: 'info' }, sink),
    loadedPlugins: await resolvePlugins(parseConfig({})),
    table: testRouteTable(routes),
  });
  t.teardown(() => proxy.close());
  return { proxy, lines };
}

const access = (lines: Line[]): Line[] => lines.filter((l) => l.component === 'access');

test('the access log carries cf-ray, bytes each way and the upstream address', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const { proxy, lines } = await loggingProxy(t, [testRoute({ host: 'bytes.test', endpoints: [origin.key] })]);
  const body = Buffer.alloc(12_345, 7);
  const answer = await new Promise<Buffer>((resolve, reject) => {
    const req = http.request(`${proxy.url}/upload`, { method: 'POST', agent: false, headers: { host: 'bytes.test', 'cf-ray': '8f1e2d3c4b5a6978-AMS' } }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () => resolve(Buffer.concat(parts)));
    });
    req.on('error', reject);
    req.end(body);
  });
  const [line] = access(lines);
  t.truthy(line);
  t.is(line!.cfRay, '8f1e2d3c4b5a6978-AMS');
  t.is(line!.bytesIn, body.length);
  t.is(line!.bytesOut, answer.length);
  t.true(answer.length > 0);
  t.is(line!.upstream, origin.key);
  t.is(line!.grpcStatus, undefined, 'no gRPC status on a plain HTTP exchange');
});

test('a failed gRPC call logs its grpc-status next to HTTP 200, from the origin and from Warren', async (t) => {
  const service: grpc.ServiceDefinition = {
    unary: { path: '/log.Echo/Unary', requestStream: false, responseStream: false, ...grpcJsonCodec },
    stream: { path: '/log.Echo/Stream', requestStream: false, responseStream: true, ...grpcJsonCodec },
  };
  const server = new grpc.Server();
  server.addService(service, {
    unary: (call: grpc.ServerUnaryCall<{ v: string }, unknown>, cb: grpc.sendUnaryData<unknown>) =>
      call.request.v === 'missing' ? cb({ code: grpc.status.NOT_FOUND, details: 'not here' }) : cb(null, { echo: call.request.v }),
    stream: (call: grpc.ServerWritableStream<{ n: number }, unknown>) => {
      for (let i = 0; i < call.request.n; i++) call.write({ i });
      call.emit('error', { code: grpc.status.RESOURCE_EXHAUSTED, details: 'enough' });
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  t.teardown(() => server.forceShutdown());
  const { proxy, lines } = await loggingProxy(t, [
    testRoute({ host: 'grpc.test', endpoints: [`127.0.0.1:${port}`], protocol: 'grpc' }),
    testRoute({ host: 'gone.test', endpoints: ['127.0.0.1:1'], protocol: 'grpc' }),
  ]);
  const Client = grpc.makeGenericClientConstructor(service, 'Echo');
  const client = (authority: string) => {
    const c = new Client(`127.0.0.1:${proxy.port}`, grpc.credentials.createInsecure(), { 'grpc.default_authority': authority });
    t.teardown(() => c.close());
    return c as unknown as Record<string, (...a: unknown[]) => unknown> & grpc.Client;
  };
  const ok = client('grpc.test');
  await new Promise((resolve, reject) => ok.unary({ v: 'fine' }, (e: Error | null, r: unknown) => (e ? reject(e) : resolve(r))));
  const notFound = await new Promise<grpc.ServiceError>((resolve) => ok.unary({ v: 'missing' }, (e: grpc.ServiceError) => resolve(e)));
  t.is(notFound.code, grpc.status.NOT_FOUND);
  const streamed = await new Promise<grpc.ServiceError>((resolve) => {
    const call = ok.stream({ n: 3 }) as grpc.ClientReadableStream<unknown>;
    call.on('data', () => {});
    call.on('error', (e: grpc.ServiceError) => resolve(e));
  });
  t.is(streamed.code, grpc.status.RESOURCE_EXHAUSTED);
  const gone = client('gone.test');
  const unavailable = await new Promise<grpc.ServiceError>((resolve) => gone.unary({ v: 'x' }, (e: grpc.ServiceError) => resolve(e)));
  t.is(unavailable.code, grpc.status.UNAVAILABLE);

  const logged = access(lines).map((l) => ({ host: l.host, status: l.status, grpcStatus: l.grpcStatus }));
  t.deepEqual(logged, [
    { host: 'grpc.test', status: 200, grpcStatus: grpc.status.OK },
    { host: 'grpc.test', status: 200, grpcStatus: grpc.status.NOT_FOUND },
    { host: 'grpc.test', status: 200, grpcStatus: grpc.status.RESOURCE_EXHAUSTED },
    { host: 'gone.test', status: 200, grpcStatus: grpc.status.UNAVAILABLE },
  ]);
});

test('a WebSocket session is kept out of the request-latency histogram and measured on its own', async (t) => {
  const server = http.createServer();
  const wss = new WebSocketServer({ server });
  wss.on('connection', (ws) => ws.on('message', (data: RawData, isBinary: boolean) => ws.send(data, { binary: isBinary })));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(
    () =>
      new Promise<void>((resolve) => {
        for (const c of wss.clients) c.terminate();
        server.close(() => resolve());
      }),
  );
  const route = testRoute({ host: 'ws.test', namespace: 'chat', ingress: 'web', service: 'socket', endpoints: [`127.0.0.1:${(server.address() as AddressInfo).port}`] });
  const { proxy, lines } = await loggingProxy(t, [route]);
  const ws = new WebSocket(`${proxy.url.replace('http', 'ws')}/socket`, { headers: { host: 'ws.test' } });
  t.teardown(() => ws.terminate());
  await once(ws, 'open');
  ws.send('x'.repeat(1000));
  await once(ws, 'message');
  await new Promise((resolve) => setTimeout(resolve, 150));
  ws.close(1000);
  await once(ws, 'close');
  await new Promise((resolve) => setTimeout(resolve, 100));

  const text = await proxy.metrics.metrics();
  t.notRegex(text, /warren_request_duration_seconds_count\{[^}]*status_class="1xx"/, 'no upgraded session counted as a 1xx request');
  t.regex(text, /^warren_upgraded_session_duration_seconds_count 1$/m);
  const sum = Number(/^warren_upgraded_session_duration_seconds_sum ([\d.e-]+)$/m.exec(text)?.[1]);
  t.true(sum >= 0.15, `the session's length (${sum} s) is recorded`);
  t.regex(text, /^warren_requests_total\{status_class="1xx",method="GET"\} 1$/m);
  const [line] = access(lines);
  t.is(line?.status, 101);
  t.true((line?.bytesIn as number) > 1000 && (line?.bytesOut as number) > 1000, `session bytes in ${String(line?.bytesIn)}, out ${String(line?.bytesOut)}`);
});

test('bytesIn counts body bytes that arrived before the exchange reached the log', async (t) => {
  // Through the tunnel a small body's DATA frame often arrives with its HEADERS: the bytes are buffered in
  // the body before the pipeline starts on the exchange.
  const body = new Readable({ read() {} });
  body.push(Buffer.alloc(16, 1));
  const exchange = {
    id: 'x-1',
    head: { method: 'POST', scheme: 'https', authority: 'early.test', path: '/', headers: [] },
    body,
    signal: new AbortController().signal,
    onClientGone: () => true,
    responded: false,
    respond: () => new Writable({ write: (_c, _e, cb) => cb() }),
    setTrailers: () => undefined,
    fail: () => undefined,
  } as unknown as Exchange;
  const log = createAccessLog(pino({ level: 'silent' }), { enabled: true, sampleRate: 1 })!;
  const logged = log.begin(exchange)!;
  body.push(Buffer.alloc(10, 2));
  body.push(null);
  logged.exchange.body.resume();
  await once(logged.exchange.body, 'end');
  t.is(logged.meter.bytesIn, 26);
});

/** A logged exchange over streams the caller keeps; returns the streams, what was counted, and refs to the exchanges. */
async function loggedThenDropped(): Promise<{ body: Readable; sink: Writable; counted: [number, number]; exchanges: Array<WeakRef<object>> }> {
  const body = new Readable({ read() {} });
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  const exchange = {
    id: 'x-2',
    head: { method: 'POST', scheme: 'https', authority: 'kept.test', path: '/', headers: [] },
    body,
    state: Buffer.alloc(64 * 1024),
    signal: new AbortController().signal,
    onClientGone: () => true,
    responded: false,
    respond: () => sink,
    setTrailers: () => undefined,
    fail: () => undefined,
  } as unknown as Exchange;
  const logged = createAccessLog(pino({ level: 'silent' }), { enabled: true, sampleRate: 1 })!.begin(exchange)!;
  body.push(Buffer.alloc(7));
  body.push(null);
  logged.exchange.body.resume();
  await once(logged.exchange.body, 'end');
  const out = logged.exchange.respond({ status: 200, headers: [] });
  out.write('abc');
  out.end(Buffer.alloc(5));
  await once(out, 'finish');
  return { body, sink, counted: [logged.meter.bytesIn, logged.meter.bytesOut], exchanges: [new WeakRef(exchange), new WeakRef(logged.exchange)] };
}

test("a logged exchange's streams keep nothing that leads back to it: with the streams still referenced, the exchange is collected", async (t) => {
  // A finished stream can outlive the young generation; what it points at goes with it.
  const { body, sink, counted, exchanges } = await loggedThenDropped();
  t.deepEqual(counted, [7, 8]);
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  gc();
  t.deepEqual(
    exchanges.map((ref) => ref.deref() === undefined),
    [true, true],
  );
  // The streams still work as streams.
  t.true(body.readableEnded);
  t.true(sink.writableFinished);
});
