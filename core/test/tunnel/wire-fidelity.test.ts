import test from 'ava';
import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import type { ExchangeHandler } from '../../src/proxy/exchange.js';
import { grpcJsonCodec, testRoute } from '../../src/testing/index.js';
import { eyeballRequest } from './support/client.js';
import { startHarness } from './support/harness.js';
import { startTestOrigin } from './support/origin.js';
import { startProxiedHarness } from './support/proxied.js';

test('HEAD: the origin content-length travels at the HTTP/2 level too, and the eyeball sees it', async (t) => {
  const origin = await startTestOrigin();
  t.teardown(() => origin.close());
  const h = await startProxiedHarness(t, [testRoute({ host: 'app.example.com', endpoints: [new URL(origin.url).host] })]);
  const direct = await h.sim.request({ method: 'HEAD', path: '/bytes?n=12345' });
  t.is(direct.status, 200);
  t.is(direct.h2Headers['content-length'], '12345', 'HTTP/2 content-length is the origin value');
  t.deepEqual(
    direct.headers.filter(([n]) => n.toLowerCase() === 'content-length'),
    [['Content-Length', '12345']],
  );
  t.is(direct.body.length, 0);

  const h1 = await eyeballRequest(`${h.sim.eyeballUrl}/bytes?n=12345`, { method: 'HEAD' });
  t.is(h1.status, 200);
  t.is(h1.headers['content-length'], '12345');
  t.is(h1.body.length, 0);

  const client = http2.connect(h.sim.eyeballUrl);
  t.teardown(() => client.close());
  const reply = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
    const req = client.request({ ':method': 'HEAD', ':path': '/bytes?n=12345', ':authority': 'app.example.com' }, { endStream: true });
    req.on('response', resolve);
    req.on('error', reject);
    req.resume();
  });
  t.is(Number(reply[':status']), 200);
  t.is(reply['content-length'], '12345');

  // GET keeps its length, chunked stays without one.
  const get = await eyeballRequest(`${h.sim.eyeballUrl}/bytes?n=777`);
  t.is(get.headers['content-length'], '777');
  t.is(get.body.length, 777);
  const chunked = await eyeballRequest(`${h.sim.eyeballUrl}/bytes?n=777&chunked=1`);
  t.is(chunked.headers['content-length'], undefined);
  t.is(chunked.body.length, 777);
  t.deepEqual(h.sim.violations, []);
});

test('non-ASCII response header bytes reach the eyeball unchanged (HTTP/1.1 and h2 eyeballs)', async (t) => {
  const h = await startHarness(t);
  await h.waitForConnections(1);
  // "é €" in UTF-8, and bytes that are not UTF-8. Node's HTTP/1.1 and HTTP/2 APIs read and write header
  // strings as latin1, one character per byte.
  const utf8Value = 'c3a920e282ac';
  const direct = await h.sim.request({ path: `/raw-header?hex=${utf8Value}` });
  t.is(Buffer.from(direct.headers.find(([n]) => n === 'X-Raw')![1], 'latin1').toString('hex'), utf8Value, 'serialized by the connector unchanged');
  for (const hex of [utf8Value, '41e942']) {
    const h1 = await eyeballRequest(`${h.sim.eyeballUrl}/raw-header?hex=${hex}`);
    const raw = h1.rawHeaders[h1.rawHeaders.indexOf('X-Raw') + 1]!;
    t.is(Buffer.from(raw, 'latin1').toString('hex'), hex, `HTTP/1.1 eyeball, ${hex}`);
  }
  const client = http2.connect(h.sim.eyeballUrl);
  t.teardown(() => client.close());
  for (const hex of [utf8Value, '41e942']) {
    const headers = await new Promise<http2.IncomingHttpHeaders>((resolve, reject) => {
      const req = client.request({ ':path': `/raw-header?hex=${hex}`, ':authority': 'app.example.com' }, { endStream: true });
      req.on('response', resolve);
      req.on('error', reject);
      req.resume();
    });
    t.is(Buffer.from(String(headers['x-raw']), 'latin1').toString('hex'), hex, `h2 eyeball, ${hex}`);
  }
  t.deepEqual(h.sim.violations, []);
});

test('a gRPC trailers-only error in cloudflared form (status in the serialized head, then an empty end) reaches a gRPC client', async (t) => {
  // Answers every call the way cloudflared relays an origin's trailers-only error.
  const handler: ExchangeHandler = {
    async handle(exchange) {
      exchange.body.resume();
      exchange.respond({ status: 200, headers: ['Content-Type', 'application/grpc', 'Grpc-Status', '5', 'Grpc-Message', 'no%20such%20thing'] }).end();
    },
  };
  const h = await startHarness(t, { handler });
  await h.waitForConnections(1);
  const wire = await h.sim.request({
    method: 'POST',
    path: '/test.Echo/unary',
    headers: [
      ['content-type', 'application/grpc'],
      ['te', 'trailers'],
    ],
    body: Buffer.alloc(5),
  });
  t.is(wire.status, 200);
  t.true(
    wire.headers.some(([n, v]) => n === 'Grpc-Status' && v === '5'),
    'the status is in the serialized head',
  );
  t.is(wire.body.length, 0);
  t.is(wire.trailers, undefined, 'the stream ends without trailers');

  const service: grpc.ServiceDefinition = { unary: { path: '/test.Echo/unary', requestStream: false, responseStream: false, ...grpcJsonCodec } };
  const Client = grpc.makeGenericClientConstructor(service, 'Echo');
  const client = new Client(new URL(h.sim.eyeballUrl).host, grpc.credentials.createInsecure(), { 'grpc.default_authority': 'grpc.example.com' }) as unknown as grpc.Client & {
    unary(request: unknown, callback: (err: grpc.ServiceError | null) => void): void;
  };
  t.teardown(() => client.close());
  const error = await new Promise<grpc.ServiceError | null>((resolve) => client.unary({ v: 'x' }, resolve));
  t.is(error?.code, grpc.status.NOT_FOUND, error?.message);
  t.is(error?.details, 'no such thing');
  t.deepEqual(h.sim.violations, []);
});
