import test from 'ava';
import http from 'node:http';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { MemorySecrets, createTestCa, issueCert, startOrigin, startProxyHarness, testRoute, testRouteTable } from '@warren/core/testing';
import tls from '@warren/plugin-tls';
import http2Plugin from '../src/index.js';

const ca = createTestCa('h2 test CA');
const cert = issueCert(ca, { dns: ['origin.test'] });

interface H2Origin {
  key: string;
  sessions: number;
  maxConcurrent: number;
  /** Most streams open at once on any one session. */
  maxPerSession: number;
  close(): Promise<void>;
}

/** An HTTP/2 origin (h2c, or h2 over TLS with ALPN h2 only) that reports the protocol version it saw. */
async function h2Origin(options: { tls?: boolean; delayMs?: number; goawayAfterResponse?: boolean } = {}): Promise<H2Origin> {
  const server = options.tls ? http2.createSecureServer({ cert: cert.certPem, key: cert.keyPem, allowHTTP1: false }) : http2.createServer();
  let sessions = 0;
  let active = 0;
  let maxConcurrent = 0;
  let maxPerSession = 0;
  const perSession = new WeakMap<http2.ServerHttp2Session, number>();
  const open = new Set<http2.ServerHttp2Session>();
  server.on('session', (s: http2.ServerHttp2Session) => {
    sessions++;
    open.add(s);
    s.on('close', () => open.delete(s));
  });
  server.on('stream', (stream, headers) => {
    active++;
    maxConcurrent = Math.max(maxConcurrent, active);
    const owner = stream.session as http2.ServerHttp2Session;
    const onSession = (perSession.get(owner) ?? 0) + 1;
    perSession.set(owner, onSession);
    maxPerSession = Math.max(maxPerSession, onSession);
    stream.on('close', () => {
      active--;
      perSession.set(owner, (perSession.get(owner) ?? 1) - 1);
    });
    let bytes = 0;
    stream.on('data', (c: Buffer) => (bytes += c.length));
    stream.on('end', () => {
      setTimeout(() => {
        if (stream.destroyed) return;
        stream.respond({ ':status': 200, 'content-type': 'application/json', 'x-origin-proto': 'h2' }, { waitForTrailers: true });
        stream.on('wantTrailers', () => stream.sendTrailers({ 'x-trailer': 'done' }));
        stream.end(JSON.stringify({ path: headers[':path'], authority: headers[':authority'], bytes }));
        const session = stream.session;
        if (options.goawayAfterResponse) stream.once('close', () => session?.close());
      }, options.delayMs ?? 0);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    key: `127.0.0.1:${port}`,
    get sessions() {
      return sessions;
    },
    get maxConcurrent() {
      return maxConcurrent;
    },
    get maxPerSession() {
      return maxPerSession;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of open) s.destroy();
        server.close(() => resolve());
      }),
  };
}

function get(url: string, host = 'app.test'): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders; trailers: NodeJS.Dict<string> }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, headers: { host } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers, trailers: res.trailers }));
      })
      .on('error', reject);
  });
}

test('h2c: speaks HTTP/2 with prior knowledge and reuses one connection', async (t) => {
  const origin = await h2Origin();
  const proxy = await startProxyHarness({ plugins: [{ module: http2Plugin }], table: testRouteTable([testRoute({ endpoints: [origin.key], protocol: 'h2c' })]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  for (let i = 0; i < 10; i++) {
    const reply = await get(`${proxy.url}/h2c/${i}`);
    t.is(reply.status, 200);
    t.is(reply.headers['x-origin-proto'], 'h2');
    t.deepEqual(JSON.parse(reply.body), { path: `/h2c/${i}`, authority: 'app.test', bytes: 0 });
    t.is(reply.trailers['x-trailer'], 'done');
  }
  t.is(origin.sessions, 1);
});

test('h2 over TLS: negotiated by ALPN and verified like any TLS upstream', async (t) => {
  const origin = await h2Origin({ tls: true });
  const secrets = new MemorySecrets();
  secrets.set('default', 'ca', { 'ca.crt': ca.certPem });
  const route = testRoute({ endpoints: [origin.key], protocol: 'h2', annotations: { 'proxy-ssl-secret': 'ca', 'proxy-ssl-name': 'origin.test' } });
  const proxy = await startProxyHarness({ plugins: [{ module: http2Plugin }, { module: tls }], secrets, table: testRouteTable([route]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  for (let i = 0; i < 5; i++) {
    const reply = await get(`${proxy.url}/tls`);
    t.is(reply.status, 200);
    t.is(reply.headers['x-origin-proto'], 'h2');
  }
  t.is(origin.sessions, 1);
});

test('h2 over TLS falls back to HTTP/1.1 when the upstream does not offer h2', async (t) => {
  const origin = await startOrigin({
    tls: { cert: cert.certPem, key: cert.keyPem },
    handler: (req, res) => res.end(`http/${req.httpVersion}`),
  });
  const secrets = new MemorySecrets();
  secrets.set('default', 'ca', { 'ca.crt': ca.certPem });
  const route = testRoute({ endpoints: [origin.key], protocol: 'h2', annotations: { 'proxy-ssl-secret': 'ca', 'proxy-ssl-name': 'origin.test' } });
  const proxy = await startProxyHarness({ plugins: [{ module: http2Plugin }, { module: tls }], secrets, table: testRouteTable([route]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const reply = await get(`${proxy.url}/`);
  t.is(reply.status, 200);
  t.is(reply.body, 'http/1.1');
});

test('h2c: an upstream that closes its connection (GOAWAY) after each response gets a new one for the next request', async (t) => {
  const origin = await h2Origin({ goawayAfterResponse: true });
  const proxy = await startProxyHarness({ plugins: [{ module: http2Plugin }], table: testRouteTable([testRoute({ endpoints: [origin.key], protocol: 'h2c' })]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  for (let i = 0; i < 4; i++) t.is((await get(`${proxy.url}/${i}`)).status, 200);
  t.is(origin.sessions, 4);
});

test('upstream-max-concurrent-streams limits streams per connection', async (t) => {
  const origin = await h2Origin({ delayMs: 100 });
  const route = testRoute({ endpoints: [origin.key], protocol: 'h2c', annotations: { 'upstream-max-concurrent-streams': 2 } });
  const proxy = await startProxyHarness({ plugins: [{ module: http2Plugin }], table: testRouteTable([route]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => get(`${proxy.url}/${i}`)));
  t.true(replies.every((r) => r.status === 200));
  t.is(origin.maxPerSession, 2, 'never more than 2 streams on one connection, and the limit was reached');
  t.true(origin.sessions >= 2, 'more connections were opened instead');
});

test('an h2c client reaches an h2c upstream end to end (HTTP/2 on both sides), trailers included', async (t) => {
  const origin = await h2Origin();
  const proxy = await startProxyHarness({ plugins: [{ module: http2Plugin }], table: testRouteTable([testRoute({ endpoints: [origin.key], protocol: 'h2c' })]) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const client = http2.connect(proxy.url);
  t.teardown(() => client.close());
  const stream = client.request({ ':method': 'POST', ':path': '/upload', ':authority': 'app.test' });
  stream.end(Buffer.alloc(300_000, 1));
  const result = await new Promise<{ status: number; body: string; trailers: http2.IncomingHttpHeaders }>((resolve, reject) => {
    let status = 0;
    let body = '';
    let trailers: http2.IncomingHttpHeaders = {};
    stream.on('response', (h) => (status = Number(h[':status'])));
    stream.on('trailers', (h) => (trailers = h));
    stream.setEncoding('utf8');
    stream.on('data', (c: string) => (body += c));
    stream.on('end', () => resolve({ status, body, trailers }));
    stream.on('error', reject);
  });
  t.is(result.status, 200);
  t.deepEqual(JSON.parse(result.body), { path: '/upload', authority: 'app.test', bytes: 300_000 });
  t.is(result.trailers['x-trailer'], 'done');
});

test('routes of other protocols are left alone and settings are validated', (t) => {
  t.throws(() => http2Plugin.manifest.configSchema.parse({ maxConcurrentStreams: 0 }));
  t.deepEqual(http2Plugin.manifest.configSchema.parse({}), { maxConcurrentStreams: 100 });
  const spec = http2Plugin.manifest.annotations![0]!;
  t.is(spec.schema.parse('7'), 7);
  t.false(spec.schema.safeParse('many').success);
});
