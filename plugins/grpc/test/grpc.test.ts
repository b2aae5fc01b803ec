import test from 'ava';
import http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import {
  MemorySecrets,
  capturedLogger,
  createTestCa,
  issueCert,
  loggedError,
  startProxyHarness,
  testRoute,
  testRouteTable,
  type ProxyHarness,
  type TestRouteInit,
  grpcJsonCodec,
} from '@warren/core/testing';
import http2Plugin from '@warren/plugin-http2';
import tls from '@warren/plugin-tls';
import { ErrorCode, WarrenError, type ErrorAnswer, type FailedExchange } from '@warren/core/plugin';
import grpcPlugin, { GrpcPlugin, parseGrpcTimeout } from '../src/index.js';

/** A JSON-over-gRPC echo service, defined without .proto files. */
const json = grpcJsonCodec;
const service: grpc.ServiceDefinition = {
  unary: { path: '/warren.test.Echo/Unary', requestStream: false, responseStream: false, ...json },
  serverStream: { path: '/warren.test.Echo/ServerStream', requestStream: false, responseStream: true, ...json },
  clientStream: { path: '/warren.test.Echo/ClientStream', requestStream: true, responseStream: false, ...json },
  bidi: { path: '/warren.test.Echo/Bidi', requestStream: true, responseStream: true, ...json },
};
const EchoClient = grpc.makeGenericClientConstructor(service, 'Echo');
type Echo = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

interface Msg {
  n?: number;
  text?: string;
  fail?: boolean;
  delayMs?: number;
}

const seen = { cancelled: 0 };

function startServer(credentials = grpc.ServerCredentials.createInsecure()): Promise<{ server: grpc.Server; key: string }> {
  const server = new grpc.Server();
  server.addService(service, {
    unary: (call: grpc.ServerUnaryCall<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) => {
      const req = call.request;
      call.on('cancelled', () => seen.cancelled++);
      if (req.fail) return callback({ code: grpc.status.NOT_FOUND, details: 'no such thing' });
      const reply = (): void => {
        const trailer = new grpc.Metadata();
        trailer.set('x-trailer', 'from-origin');
        callback(null, { text: `echo:${req.text}:${call.metadata.get('x-meta')[0] ?? ''}` }, trailer);
      };
      if (req.delayMs) setTimeout(reply, req.delayMs);
      else reply();
    },
    serverStream: (call: grpc.ServerWritableStream<Msg, Msg>) => {
      for (let i = 0; i < call.request.n!; i++) call.write({ n: i });
      call.end();
    },
    clientStream: (call: grpc.ServerReadableStream<Msg, Msg>, callback: grpc.sendUnaryData<Msg>) => {
      let sum = 0;
      call.on('data', (m: Msg) => (sum += m.n ?? 0));
      call.on('end', () => callback(null, { n: sum }));
    },
    bidi: (call: grpc.ServerDuplexStream<Msg, Msg>) => {
      call.on('cancelled', () => seen.cancelled++);
      call.on('data', (m: Msg) => call.write({ n: (m.n ?? 0) * 2 }));
      call.on('end', () => call.end());
    },
  });
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', credentials, (err, port) => (err ? reject(err) : resolve({ server, key: `127.0.0.1:${port}` })));
  });
}

async function harness(
  t: { teardown(f: () => unknown): void },
  route: TestRouteInit,
  secrets?: MemorySecrets,
): Promise<{ proxy: ProxyHarness & { lines: Array<Record<string, unknown>> }; client: Echo }> {
  const { logger, lines } = capturedLogger();
  const proxy = Object.assign(
    await startProxyHarness({
      plugins: [{ module: grpcPlugin }, { module: http2Plugin }, { module: tls }],
      secrets,
      table: testRouteTable([testRoute({ protocol: 'grpc', ...route })]),
      logger,
    }),
    { lines },
  );
  const client = new EchoClient(`127.0.0.1:${proxy.port}`, grpc.credentials.createInsecure()) as unknown as Echo;
  t.teardown(async () => {
    client.close();
    await proxy.close();
  });
  return { proxy, client };
}

function unary(
  client: Echo,
  req: Msg,
  metadata = new grpc.Metadata(),
  options: grpc.CallOptions = {},
): Promise<{ err: grpc.ServiceError | null; res?: Msg; trailers?: grpc.Metadata }> {
  return new Promise((resolve) => {
    let trailers: grpc.Metadata | undefined;
    const call = client.unary(req, metadata, options, (err: grpc.ServiceError | null, res?: Msg) => {
      setImmediate(() => resolve({ err, res, trailers }));
    }) as grpc.ClientUnaryCall;
    call.on('status', (s: grpc.StatusObject) => (trailers = s.metadata));
  });
}

test('unary calls pass metadata, trailers and origin statuses', async (t) => {
  const { server, key } = await startServer();
  t.teardown(() => server.forceShutdown());
  const { client } = await harness(t, { endpoints: [key] });
  const md = new grpc.Metadata();
  md.set('x-meta', 'm1');
  const ok = await unary(client, { text: 'hi' }, md);
  t.is(ok.err, null);
  t.deepEqual(ok.res, { text: 'echo:hi:m1' });
  t.deepEqual(ok.trailers?.get('x-trailer'), ['from-origin']);
  const failed = await unary(client, { fail: true });
  t.is(failed.err?.code, grpc.status.NOT_FOUND);
  t.is(failed.err?.details, 'no such thing');
});

test('server-streaming, client-streaming and bidirectional calls', async (t) => {
  const { server, key } = await startServer();
  t.teardown(() => server.forceShutdown());
  const { client } = await harness(t, { endpoints: [key] });

  const streamed: number[] = [];
  await new Promise<void>((resolve, reject) => {
    const call = client.serverStream({ n: 50 }) as grpc.ClientReadableStream<Msg>;
    call.on('data', (m: Msg) => streamed.push(m.n!));
    call.on('error', reject);
    call.on('end', () => resolve());
  });
  t.deepEqual(
    streamed,
    Array.from({ length: 50 }, (_, i) => i),
  );

  const sum = await new Promise<Msg>((resolve, reject) => {
    const call = client.clientStream((err: grpc.ServiceError | null, res: Msg) => (err ? reject(err) : resolve(res))) as grpc.ClientWritableStream<Msg>;
    for (let i = 1; i <= 10; i++) call.write({ n: i });
    call.end();
  });
  t.deepEqual(sum, { n: 55 });

  const doubled = await new Promise<number[]>((resolve, reject) => {
    const call = client.bidi() as grpc.ClientDuplexStream<Msg, Msg>;
    const got: number[] = [];
    let i = 0;
    call.on('data', (m: Msg) => {
      got.push(m.n!);
      if (++i < 5) call.write({ n: i });
      else call.end();
    });
    call.on('error', reject);
    call.on('end', () => resolve(got));
    call.write({ n: 0 });
  });
  t.deepEqual(doubled, [0, 2, 4, 6, 8]);
});

test('an unreachable upstream answers UNAVAILABLE, a route with no endpoint too', async (t) => {
  const { server, key } = await startServer();
  // Wait until the listener is closed: a request that reached it first would be served, not refused.
  await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  const { client, proxy } = await harness(t, { endpoints: [key] });
  const res = await unary(client, { text: 'x' });
  t.is(res.err?.code, grpc.status.UNAVAILABLE);
  t.regex(loggedError(proxy.lines), /cannot connect to upstream/);
  t.regex(res.err!.details, /^the origin could not be reached \(reference: [\w-]+\)$/, 'the client is not told the upstream error');

  const { client: empty, proxy: emptyProxy } = await harness(t, { service: 'hidden', endpoints: [] });
  const none = await unary(empty, { text: 'x' });
  t.is(none.err?.code, grpc.status.UNAVAILABLE);
  t.regex(loggedError(emptyProxy.lines), /service default\/hidden has no ready endpoint/);
  t.notRegex(none.err!.details, /hidden|default/, 'the client is not told the Service');
});

test('grpc-timeout is enforced by the proxy: DEADLINE_EXCEEDED as a trailers-only response, upstream call cancelled', async (t) => {
  const { server, key } = await startServer();
  t.teardown(() => server.forceShutdown());
  const { proxy } = await harness(t, { endpoints: [key] });
  // A raw HTTP/2 client that does not enforce the deadline itself, so what it sees comes from the proxy.
  const session = http2.connect(proxy.url);
  t.teardown(() => session.close());
  const body = Buffer.from(JSON.stringify({ text: 'slow', delayMs: 3_000 }));
  const frame = Buffer.concat([Buffer.alloc(5), body]);
  frame.writeUInt32BE(body.length, 1);
  const cancelledBefore = seen.cancelled;
  const stream = session.request({
    ':method': 'POST',
    ':path': '/warren.test.Echo/Unary',
    'content-type': 'application/grpc',
    te: 'trailers',
    'grpc-timeout': '300m',
  });
  stream.end(frame);
  const [headers] = (await new Promise((resolve) => stream.on('response', (h) => resolve([h])))) as [http2.IncomingHttpHeaders];
  stream.resume();
  t.is(Number(headers[':status']), 200);
  t.is(headers['grpc-status'], '4');
  t.regex(String(headers['grpc-message']), /^the origin did not answer in time \(reference: [\w-]+\)$/);
  const end = Date.now() + 2_000;
  while (seen.cancelled === cancelledBefore && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  t.true(seen.cancelled > cancelledBefore, 'the upstream call was cancelled');
  t.regex(loggedError(proxy.lines), /deadline/, 'the proxy answered at the deadline; the upstream would have answered OK');
});

test('grpcs: gRPC over verified TLS', async (t) => {
  const ca = createTestCa('grpc CA');
  const cert = issueCert(ca, { dns: ['grpc.internal'] });
  const { server, key } = await startServer(grpc.ServerCredentials.createSsl(null, [{ cert_chain: Buffer.from(cert.certPem), private_key: Buffer.from(cert.keyPem) }]));
  t.teardown(() => server.forceShutdown());
  const secrets = new MemorySecrets();
  secrets.set('default', 'ca', { 'ca.crt': ca.certPem });
  const { client } = await harness(t, { endpoints: [key], protocol: 'grpcs', annotations: { 'proxy-ssl-secret': 'ca', 'proxy-ssl-name': 'grpc.internal' } }, secrets);
  const res = await unary(client, { text: 'secure' });
  t.is(res.err, null);
  t.deepEqual(res.res, { text: 'echo:secure:' });
});

test('grpc-timeout values are parsed per the gRPC spec', (t) => {
  t.is(parseGrpcTimeout('300m'), 300);
  t.is(parseGrpcTimeout('2S'), 2000);
  t.is(parseGrpcTimeout('1H'), 3_600_000);
  t.is(parseGrpcTimeout('5u'), 1);
  t.is(parseGrpcTimeout('123456789S'), undefined);
  t.is(parseGrpcTimeout('10s'), undefined);
  t.is(parseGrpcTimeout(''), undefined);
  t.throws(() => grpcPlugin.manifest.configSchema.parse({ defaultTimeout: 'later' }));
  t.is(grpcPlugin.manifest.configSchema.parse({ defaultTimeout: '5s' }).defaultTimeout, 5000);
  t.deepEqual(grpcPlugin.manifest.dependsOn, ['upstream.http2']);
});

/** A bidi call that sends `count` messages `everyMs` apart (the first at once) and then waits; resolves with its status. */
function bidiCall(client: Echo, count: number, everyMs: number, end: boolean): Promise<{ code: number; replies: number }> {
  return new Promise((resolve) => {
    // The client's own deadline only bounds the test; the proxy must end a silent call well before it.
    const call = client.bidi({ deadline: Date.now() + 5_000 }) as grpc.ClientDuplexStream<Msg, Msg>;
    let replies = 0;
    let sent = 0;
    call.on('data', () => replies++);
    call.on('error', (err: grpc.ServiceError) => {
      clearInterval(timer);
      resolve({ code: err.code, replies });
    });
    call.on('status', (s: grpc.StatusObject) => {
      if (s.code === grpc.status.OK) resolve({ code: s.code, replies });
    });
    call.write({ n: sent++ });
    const timer = setInterval(() => {
      if (sent < count) call.write({ n: sent++ });
      else {
        clearInterval(timer);
        if (end) call.end();
      }
    }, everyMs);
  });
}

test('a silent gRPC stream is ended at grpc-idle-timeout (DEADLINE_EXCEEDED, upstream cancelled); an active one is not', async (t) => {
  const { server, key } = await startServer();
  t.teardown(() => server.forceShutdown());
  const { client } = await harness(t, { endpoints: [key], annotations: { 'grpc-idle-timeout': 500 } });
  // Messages every 150 ms for 1.2 s: longer than the bound, never silent for that long.
  const active = await bidiCall(client, 8, 150, true);
  t.deepEqual(active, { code: grpc.status.OK, replies: 8 });

  const cancelledBefore = seen.cancelled;
  const began = Date.now();
  const silent = await bidiCall(client, 1, 50, false);
  const took = Date.now() - began;
  t.is(silent.code, grpc.status.DEADLINE_EXCEEDED);
  t.is(silent.replies, 1);
  t.true(took >= 450 && took < 4_500, `ended after ${took} ms (the client's own deadline is 5 s)`);
  const end = Date.now() + 2_000;
  while (seen.cancelled === cancelledBefore && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  t.true(seen.cancelled > cancelledBefore, 'the upstream call was cancelled');
});

test('stream idle settings: 5 minutes by default, annotation bounded', (t) => {
  t.is(grpcPlugin.manifest.configSchema.parse({}).idleTimeout, 300_000);
  t.is(grpcPlugin.manifest.configSchema.parse({ idleTimeout: '1m' }).idleTimeout, 60_000);
  t.throws(() => grpcPlugin.manifest.configSchema.parse({ idleTimeout: 0 }));
  const spec = grpcPlugin.manifest.annotations!.find((a) => a.key === 'grpc-idle-timeout')!;
  t.true(spec.schema.safeParse('10m').success);
  t.false(spec.schema.safeParse('0s').success);
  t.false(spec.schema.safeParse('2d').success);
});

test('an origin that dies mid-stream gives the client UNAVAILABLE, never OK with the messages it got so far', async (t) => {
  // A raw HTTP/2 origin speaking gRPC: one message of a server stream, then its connection is gone.
  const origin = http2.createServer();
  origin.on('stream', (stream) => {
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
    const body = Buffer.from(JSON.stringify({ n: 0 }));
    const frame = Buffer.concat([Buffer.alloc(5), body]);
    frame.writeUInt32BE(body.length, 1);
    stream.write(frame);
    setTimeout(() => stream.session?.socket.destroy(), 30);
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  t.teardown(() => origin.close());
  const { client } = await harness(t, { endpoints: [`127.0.0.1:${(origin.address() as import('node:net').AddressInfo).port}`] });
  const result = await new Promise<{ code: number; got: number[] }>((resolve) => {
    const got: number[] = [];
    const call = client.serverStream({ n: 5 }, { deadline: Date.now() + 5_000 }) as grpc.ClientReadableStream<Msg>;
    call.on('data', (m: Msg) => got.push(m.n!));
    call.on('error', (err: grpc.ServiceError) => resolve({ code: err.code, got }));
    call.on('end', () => resolve({ code: grpc.status.OK, got }));
  });
  t.deepEqual(result, { code: grpc.status.UNAVAILABLE, got: [0] });
});

test("failures Warren answers map to gRPC statuses; other routes and requests keep core's error page", (t) => {
  const plugin = new GrpcPlugin({ idleTimeout: 300_000 });
  const grpcRoute = plugin.bind(testRoute({ protocol: 'grpc', endpoints: [] }));
  const httpRoute = plugin.bind(testRoute({ endpoints: [] }));
  const grpcRequest = { method: 'POST', path: '/a.B/C', authority: 'x', scheme: 'http' as const, headers: ['Content-Type', 'application/grpc+proto'] };
  const plainRequest = { ...grpcRequest, headers: ['content-type', 'text/plain'] };
  const failure = (code: ErrorCode, request: typeof grpcRequest | typeof plainRequest, response?: FailedExchange['response']) =>
    ({ error: new WarrenError(code, 'secret detail'), request, route: undefined, response, publicMessage: 'fixed sentence', reference: 'ref-1' }) as unknown as FailedExchange;
  const statusOf = (answer: ErrorAnswer | undefined) => (answer && 'status' in answer ? answer.headers[answer.headers.indexOf('grpc-status') + 1] : undefined);
  t.is(statusOf(plugin.mapError(grpcRoute, failure(ErrorCode.Forbidden, plainRequest))), '7', 'a refusal is PERMISSION_DENIED, not a retryable UNAVAILABLE');
  t.is(statusOf(plugin.mapError(undefined, failure(ErrorCode.NoRoute, grpcRequest))), '12', 'no route: UNIMPLEMENTED, classified by the content type alone');
  t.is(statusOf(plugin.mapError(grpcRoute, failure(ErrorCode.BadRequest, grpcRequest))), '13');
  t.is(statusOf(plugin.mapError(grpcRoute, failure(ErrorCode.UpstreamTimeout, grpcRequest))), '4');
  t.is(statusOf(plugin.mapError(httpRoute, failure(ErrorCode.UpstreamConnect, grpcRequest))), '14');
  t.deepEqual(plugin.mapError(grpcRoute, failure(ErrorCode.NoEndpoints, grpcRequest)), {
    status: 200,
    headers: ['content-type', 'application/grpc', 'grpc-status', '14', 'grpc-message', 'fixed sentence (reference: ref-1)'],
  });
  t.is(plugin.mapError(httpRoute, failure(ErrorCode.UpstreamConnect, plainRequest)), undefined);
  t.is(plugin.mapError(undefined, failure(ErrorCode.NoRoute, plainRequest)), undefined);
  const sentGrpc = { status: 200, headers: ['content-type', 'application/grpc'], trailers: true };
  const sentHtml = { status: 200, headers: ['content-type', 'text/html'], trailers: true };
  t.deepEqual(plugin.mapError(httpRoute, failure(ErrorCode.UpstreamProtocol, plainRequest, sentGrpc)), {
    trailers: ['grpc-status', '14', 'grpc-message', 'fixed sentence (reference: ref-1)'],
  });
  t.is(plugin.mapError(httpRoute, failure(ErrorCode.UpstreamProtocol, grpcRequest, sentHtml)), undefined, 'once a head went out, its content type decides');
});

test('gRPC over an h2c route: te: trailers reaches the origin, trailers-only statuses reach the client, failures are gRPC statuses', async (t) => {
  // A raw HTTP/2 origin: records the TE it got and answers trailers-only NOT_FOUND.
  const te: Array<string | string[] | undefined> = [];
  const origin = http2.createServer();
  origin.on('stream', (stream, headers) => {
    te.push(headers.te);
    stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '5', 'grpc-message': 'no such thing' }, { endStream: true });
  });
  await new Promise<void>((resolve) => origin.listen(0, '127.0.0.1', resolve));
  t.teardown(() => origin.close());
  const { client } = await harness(t, { endpoints: [`127.0.0.1:${(origin.address() as import('node:net').AddressInfo).port}`], protocol: 'h2c' });
  const missing = await unary(client, { text: 'x' });
  t.is(missing.err?.code, grpc.status.NOT_FOUND);
  t.is(missing.err?.details, 'no such thing');
  t.deepEqual(te, ['trailers']);

  const gone = await startServer();
  await new Promise<void>((resolve) => gone.server.tryShutdown(() => resolve()));
  const { client: down } = await harness(t, { endpoints: [gone.key], protocol: 'h2c' });
  const unavailable = await unary(down, { text: 'x' });
  t.is(unavailable.err?.code, grpc.status.UNAVAILABLE);
  t.regex(unavailable.err!.details, /^the origin could not be reached \(reference: [\w-]+\)$/);
});
