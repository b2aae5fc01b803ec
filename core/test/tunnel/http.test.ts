import test from 'ava';
import { createHash } from 'node:crypto';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { connect as h2connect } from 'node:http2';
import { META_ORIGIN } from '../../src/tunnel/protocol.js';
import { patternBytes } from './support/origin.js';
import { startHarness } from './support/harness.js';
import { eyeballRequest } from './support/client.js';

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const;
const SIZES = [0, 1, 65_537, 1_048_576 + 3];

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

test('every method with bodies from 0 B to 1 MiB reaches the origin intact', async (t) => {
  const h = await startHarness(t, { ha: 2 });
  await h.sim.waitForRegistrations(2);
  for (const method of METHODS) {
    for (const size of SIZES) {
      const body = patternBytes(size, size);
      const res = await eyeballRequest(`${h.sim.eyeballUrl}/echo`, {
        method,
        headers: { host: 'app.example.com', 'x-case': `${method}-${size}`, 'content-length': String(size) },
        body,
      });
      t.is(res.status, 200, `${method} ${size}`);
      const echo = JSON.parse(res.body.toString()) as { method: string; body: { length: number; sha256: string }; headers: string[] };
      t.is(echo.method, method);
      t.is(echo.body.length, size, `${method} ${size}`);
      t.is(echo.body.sha256, sha256(body));
      t.true(echo.headers.includes(`${method}-${size}`));
    }
  }
  const head = await eyeballRequest(`${h.sim.eyeballUrl}/bytes?n=1234`, { method: 'HEAD' });
  t.is(head.status, 200);
  t.is(head.headers['content-length'], '1234');
  t.is(head.body.length, 0);
  const chunked = await eyeballRequest(`${h.sim.eyeballUrl}/echo`, { method: 'POST', headers: { host: 'a', 'transfer-encoding': 'chunked' }, body: 'streamed' });
  t.is((JSON.parse(chunked.body.toString()) as { body: { length: number } }).body.length, 8);
  t.deepEqual(h.sim.violations, []);
});

test('the edge sees the headers an eyeball request carries, plus its own, and no hop-by-hop ones', async (t) => {
  const h = await startHarness(t);
  await h.sim.waitForRegistrations(1);
  const res = await eyeballRequest(`${h.sim.eyeballUrl}/echo`, { headers: { host: 'app.example.com:8443', cookie: 'a=1', 'x-forwarded-for': '203.0.113.9' } });
  const echo = JSON.parse(res.body.toString()) as { headers: string[] };
  const seen = new Map<string, string[]>();
  for (let i = 0; i < echo.headers.length; i += 2) seen.set(echo.headers[i]!.toLowerCase(), [...(seen.get(echo.headers[i]!.toLowerCase()) ?? []), echo.headers[i + 1]!]);
  t.deepEqual(seen.get('host'), ['app.example.com:8443']);
  t.deepEqual(seen.get('cookie'), ['a=1']);
  t.deepEqual(seen.get('cf-connecting-ip'), ['127.0.0.1']);
  t.deepEqual(seen.get('x-forwarded-for'), ['203.0.113.9, 127.0.0.1']);
  t.regex(seen.get('cf-ray')![0]!, /^[0-9a-f]{16}-SIM$/);
  t.false(seen.has('cf-cloudflared-proxy-connection-upgrade'));
});

test('origin responses carry status, serialized headers in order with case and repeats, origin meta and a real content-length', async (t) => {
  const h = await startHarness(t);
  await h.sim.waitForRegistrations(1);
  const reply = await h.sim.request({ path: '/cookies?n=3' });
  t.is(reply.status, 200);
  t.is(reply.metaRaw, META_ORIGIN);
  t.is(reply.h2Headers['content-length'], '2');
  const names = reply.headers.map(([n]) => n);
  t.deepEqual(
    names.filter((n) => n !== 'Date' && n !== 'Connection' && n !== 'Keep-Alive'),
    ['X-Mixed-Case', 'Set-Cookie', 'Set-Cookie', 'Set-Cookie', 'X-Empty', 'Content-Length'],
  );
  t.deepEqual(
    reply.headers.filter(([n]) => n === 'Set-Cookie').map(([, v]) => v),
    ['c0=v0; Path=/; HttpOnly', 'c1=v1; Path=/; HttpOnly', 'c2=v2; Path=/; HttpOnly'],
  );
  t.deepEqual(
    reply.headers.find(([n]) => n === 'X-Empty'),
    ['X-Empty', ''],
  );
  t.is(reply.body.toString(), 'ok');
  const eyeball = await eyeballRequest(`${h.sim.eyeballUrl}/cookies?n=5`);
  t.is(eyeball.headers['set-cookie']?.length, 5);
  t.true(eyeball.rawHeaders.includes('X-Mixed-Case'), "the eyeball gets the origin's header case");
  t.is(eyeball.headers['x-mixed-case'], 'Value One');
});

test('statuses pass through with origin meta; bodiless statuses have no body', async (t) => {
  const h = await startHarness(t);
  await h.sim.waitForRegistrations(1);
  for (const code of [200, 201, 204, 301, 304, 400, 404, 418, 500, 503]) {
    const reply = await h.sim.request({ path: `/status/${code}` });
    t.is(reply.status, code);
    t.is(reply.metaRaw, META_ORIGIN, String(code));
    t.true(reply.hasSerializedHeaders);
    if (code === 204 || code === 304) t.is(reply.body.length, 0);
    else t.is(reply.body.toString(), `status ${code}\n`);
  }
});

test('many request and response headers pass within the limits', async (t) => {
  const h = await startHarness(t);
  await h.sim.waitForRegistrations(1);
  const requestHeaders: Array<[string, string]> = Array.from({ length: 200 }, (_, i) => [`x-req-${i}`, `v${i}`]);
  const echoed = await h.sim.request({ path: '/echo', headers: requestHeaders });
  const echo = JSON.parse(echoed.body.toString()) as { headers: string[] };
  for (const [name, value] of requestHeaders) t.true(echo.headers.includes(name) && echo.headers.includes(value), name);
  const reply = await h.sim.request({ path: '/headers?n=300' });
  t.is(reply.status, 200);
  t.is(reply.headers.filter(([n]) => n.startsWith('X-Header-')).length, 300);
  t.deepEqual(
    reply.headers.find(([n]) => n === 'X-Header-299'),
    ['X-Header-299', `value-299-${'x'.repeat(20)}`],
  );
});

test('trailers travel as a real trailing HEADERS frame, to HTTP/2 and HTTP/1.1 eyeballs', async (t) => {
  const h = await startHarness(t);
  await h.sim.waitForRegistrations(1);
  const reply = await h.sim.request({ path: '/trailers' });
  t.is(reply.body.toString(), 'part one;part two');
  t.is(reply.trailers?.['grpc-status'], '0');
  t.is(reply.trailers?.['x-checksum'], 'abc123');
  t.false(
    reply.headers.some(([n]) => n.toLowerCase() === 'grpc-status'),
    'trailers are not serialized headers',
  );

  const session = h2connect(h.sim.eyeballUrl);
  t.teardown(() => session.close());
  const stream = session.request({ ':path': '/trailers', ':authority': 'app.example.com' });
  const h2trailers = await new Promise<Record<string, unknown>>((resolve, reject) => {
    stream.on('trailers', resolve);
    stream.on('error', reject);
    stream.resume();
  });
  t.is(h2trailers['grpc-status'], '0');

  const h1 = await new Promise<IncomingMessage>((resolve, reject) => {
    const req = httpRequest(`${h.sim.eyeballUrl}/trailers`, { headers: { host: 'app.example.com' } }, resolve);
    req.on('error', reject);
    req.end();
  });
  h1.resume();
  await new Promise((resolve) => h1.once('end', resolve));
  t.is(h1.trailers['x-checksum'], 'abc123');
});

test('many concurrent streams are spread over the HA connections and all complete', async (t) => {
  const h = await startHarness(t, { ha: 4 });
  const conns = await h.sim.waitForRegistrations(4);
  const session = h2connect(h.sim.eyeballUrl);
  t.teardown(() => session.close());
  const count = 300;
  const results = await Promise.all(
    Array.from(
      { length: count },
      (_, i) =>
        new Promise<string>((resolve, reject) => {
          const stream = session.request({ ':path': `/bytes?n=${1000 + i}`, ':authority': 'app.example.com' });
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => resolve(sha256(Buffer.concat(chunks))));
          stream.on('error', reject);
        }),
    ),
  );
  for (let i = 0; i < count; i++) t.is(results[i], sha256(patternBytes(0, 1000 + i)));
  for (const c of conns) t.true(c.streamsOpened > 0, `connection ${c.connIndex} carried streams`);
  t.deepEqual(h.sim.violations, []);
});
