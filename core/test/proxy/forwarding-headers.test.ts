/**
 * The trust model of forwarding headers, end to end to a real origin on loopback: what the edge states is
 * delivered as the edge stated it (X-Forwarded-For once, X-Forwarded-Proto from the edge), what Warren sets
 * replaces the visitor's claims, and what a backend could mistake for a trusted proxy's statement is dropped.
 * Also: the origin's `Trailer` field is not passed on while the trailers themselves are.
 */
import test, { type ExecutionContext } from 'ava';
import http from 'node:http';
import https from 'node:https';
import { runExchange, startOrigin, startProxyHarness, testRoute, testRouteTable, type ProxyHarness, type TestOrigin } from '../../src/testing/index.js';
import { startHarness, type Harness } from '../tunnel/support/harness.js';

type Seen = Record<string, string | undefined>;

/** Visitor-sent headers that claim to come from a trusted proxy. */
const SPOOFED: Record<string, string> = {
  'x-forwarded-for': '203.0.113.9',
  'x-forwarded-proto': 'https',
  'x-forwarded-host': 'evil.test',
  'x-forwarded-port': '8443',
  'x-forwarded-prefix': '/admin',
  'x-real-ip': '6.6.6.6',
  forwarded: 'for=6.6.6.6;proto=https',
  'true-client-ip': '6.6.6.6',
  'x-client-ip': '6.6.6.6',
  'x-original-url': '/admin',
  'x-rewrite-url': '/admin',
  'cf-connecting-ip': '6.6.6.6',
  'cf-visitor': '{"scheme":"https"}',
  'x-keep': 'yes',
};

async function setup(t: ExecutionContext): Promise<{ origin: TestOrigin; proxy: ProxyHarness; edge: Harness }> {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ host: 'app.example.com', endpoints: [origin.key] })]) });
  t.teardown(() => proxy.close());
  const edge = await startHarness(t, { handler: proxy.pipeline, simulator: { eyeball: { tls: true } } });
  await edge.sim.waitForRegistrations(1);
  return { origin, proxy, edge };
}

function echo(url: string, headers: Record<string, string>): Promise<Seen> {
  return new Promise((resolve, reject) => {
    const client = url.startsWith('https:') ? https : http;
    const req = client.get(url, { agent: false, headers, rejectUnauthorized: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`status ${res.statusCode}: ${body}`));
        resolve((JSON.parse(body) as { headers: Seen }).headers);
      });
    });
    req.on('error', reject);
  });
}

function assertSpoofsDropped(t: ExecutionContext, seen: Seen, client: string): void {
  for (const name of ['x-forwarded-port', 'x-forwarded-prefix', 'forwarded', 'true-client-ip', 'x-client-ip', 'x-original-url', 'x-rewrite-url']) {
    t.is(seen[name], undefined, `${name} is dropped`);
  }
  t.is(seen['x-real-ip'], client, 'x-real-ip is the client address');
  t.is(seen['x-forwarded-host'], 'app.example.com', 'x-forwarded-host is the request Host');
  t.is(seen['x-keep'], 'yes');
}

test('through the edge: X-Forwarded-For once as the edge sent it, X-Forwarded-Proto as the edge says, spoofs dropped', async (t) => {
  const { edge } = await setup(t);
  const plain = await echo(`${edge.sim.eyeballUrl}/`, { host: 'app.example.com', ...SPOOFED });
  t.is(plain['x-forwarded-for'], '203.0.113.9, 127.0.0.1', 'the edge appended the visitor; Warren adds nothing');
  t.is(plain['x-forwarded-proto'], 'http', 'a plain-HTTP visitor, as the edge says');
  t.is(plain['cf-visitor'], '{"scheme":"http"}');
  t.is(plain['cf-connecting-ip'], '127.0.0.1', "the edge overwrote the visitor's value");
  assertSpoofsDropped(t, plain, '127.0.0.1');

  const secure = await echo(`${edge.sim.eyeballTlsUrl!}/`, { host: 'app.example.com', ...SPOOFED, 'x-forwarded-proto': 'http' });
  t.is(secure['x-forwarded-proto'], 'https', 'an HTTPS visitor');
  t.is(secure['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
});

test('through the edge: the scheme falls back to Cf-Visitor, then https; True-Client-IP stays when the edge set it', async (t) => {
  const { edge } = await setup(t);
  const seen = async (headers: Array<[string, string]>): Promise<Seen> => {
    const reply = await edge.sim.request({ authority: 'app.example.com', path: '/', headers: [['cf-connecting-ip', '198.51.100.7'], ...headers] });
    t.is(reply.status, 200);
    return (JSON.parse(reply.body.toString()) as { headers: Seen }).headers;
  };
  const visitor = await seen([['cf-visitor', '{"scheme":"http"}']]);
  t.is(visitor['x-forwarded-proto'], 'http');
  t.is(visitor['x-forwarded-for'], '198.51.100.7', 'no X-Forwarded-For from the edge: the connecting address');
  t.is((await seen([]))['x-forwarded-proto'], 'https');
  t.is(
    (
      await seen([
        ['x-forwarded-proto', 'bogus'],
        ['cf-visitor', '{"scheme":"https"}'],
      ])
    )['x-forwarded-proto'],
    'https',
  );
  t.is((await seen([['true-client-ip', '198.51.100.7']]))['true-client-ip'], '198.51.100.7');
  t.is((await seen([['true-client-ip', '6.6.6.6']]))['true-client-ip'], undefined);
  t.is(
    (
      await seen([
        ['x-forwarded-for', '10.0.0.1'],
        ['x-forwarded-for', '198.51.100.7'],
      ])
    )['x-forwarded-for'],
    '10.0.0.1, 198.51.100.7',
  );
});

test('from a direct client (plain-HTTP entry): the peer is appended, its cf-* claims and spoofs dropped', async (t) => {
  const { proxy } = await setup(t);
  const seen = await echo(`${proxy.url}/`, { host: 'app.example.com', ...SPOOFED });
  t.is(seen['x-forwarded-for'], '203.0.113.9, 127.0.0.1');
  t.is(seen['x-forwarded-proto'], 'http', "the scheme of the connection, not the client's claim");
  t.is(seen['cf-connecting-ip'], undefined);
  t.is(seen['cf-visitor'], undefined);
  assertSpoofsDropped(t, seen, '127.0.0.1');
});

test("the origin's Trailer field is not serialized into the tunnel response; the trailers still arrive", async (t) => {
  const origin = await startOrigin({
    handler: (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
      res.addTrailers({ 'x-checksum': 'abc' });
      res.end('body');
    },
  });
  t.teardown(() => origin.close());
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ host: 'app.example.com', endpoints: [origin.key] })]) });
  t.teardown(() => proxy.close());
  const edge = await startHarness(t, { handler: proxy.pipeline });
  await edge.sim.waitForRegistrations(1);
  const reply = await edge.sim.request({ authority: 'app.example.com', path: '/' });
  t.is(reply.status, 200);
  t.is(reply.body.toString(), 'body');
  t.deepEqual(
    reply.headers.filter(([name]) => name.toLowerCase() === 'trailer'),
    [],
  );
  t.is(reply.trailers?.['x-checksum'], 'abc');
});

test('runExchange carries forwardedBy, so in-memory exchanges can stand for edge traffic', async (t) => {
  const { proxy } = await setup(t);
  const edge = await runExchange(proxy.pipeline, {
    authority: 'app.example.com',
    forwardedBy: 'edge',
    clientAddress: '198.51.100.7',
    headers: ['x-forwarded-for', '198.51.100.7'],
  });
  t.is((JSON.parse(edge.body.toString()) as { headers: Seen }).headers['x-forwarded-for'], '198.51.100.7');
  const direct = await runExchange(proxy.pipeline, { authority: 'app.example.com', clientAddress: '198.51.100.7', headers: ['x-forwarded-for', '198.51.100.7'] });
  t.is((JSON.parse(direct.body.toString()) as { headers: Seen }).headers['x-forwarded-for'], '198.51.100.7, 198.51.100.7');
});

/** Sends a GET with `host` as the Host field and resolves with the status; the body is discarded. */
function statusFor(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false, headers: { host } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

test('a Host that is more than a host and a port is refused before routing: a backend would read another host from it', async (t) => {
  const { origin, proxy } = await setup(t);
  // Each is matched as app.example.com by its leading host, while a backend that takes the last element of
  // X-Forwarded-Host, or builds a URL from Host (`http://app.example.com:@evil.test/`), sees evil.test.
  for (const host of ['app.example.com:80, evil.test', 'app.example.com:@evil.test', 'app.example.com:80/../evil', 'app.example.com:x', 'app.example.com:1@evil.test']) {
    t.is(await statusFor(`${proxy.url}/`, host), 400, host);
  }
  t.is(origin.requests, 0, 'nothing reached the origin');
  for (const host of ['app.example.com', 'APP.example.com', 'app.example.com:8080']) {
    t.is(await statusFor(`${proxy.url}/`, host), 200, host);
  }
});
