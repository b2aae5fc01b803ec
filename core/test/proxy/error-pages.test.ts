/**
 * Warren's own error answers (404, 400, 414, 431, 502, gRPC statuses) never reflect the request: not the host,
 * not the path, not a header. Plain-text pages carry `x-content-type-options: nosniff`. Checked through the
 * plain-HTTP entry and through the edge simulator and the tunnel.
 */
import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import { startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';
import { startHarness } from '../tunnel/support/harness.js';

const MARK = 'zq7reflect';
const HOST = `${MARK}-host.test`;

interface Raw {
  readonly status: number;
  readonly head: string;
  readonly body: string;
}

/** One request written byte for byte; resolves with the status line's code, the head and the body as text. */
function raw(url: string, request: string): Promise<Raw> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write(request, 'latin1'));
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error('no answer')), 10_000);
    socket.on('data', (c: Buffer) => chunks.push(c));
    const done = (): void => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const at = text.indexOf('\r\n\r\n');
      resolve({ status: Number(text.slice(9, 12)), head: text.slice(0, at), body: text.slice(at + 4) });
    };
    socket.on('end', done);
    socket.on('error', (err) => (chunks.length > 0 ? done() : reject(err)));
  });
}

const get = (path: string, host: string, extra = ''): string => `GET ${path} HTTP/1.1\r\nHost: ${host}\r\n${extra}Connection: close\r\n\r\n`;

async function assertNoReflection(t: ExecutionContext, url: string, routedHost: string): Promise<void> {
  const cases: ReadonlyArray<readonly [string, string, number]> = [
    ['no route (host and path)', get(`/${MARK}-path/<script>alert(1)</script>`, HOST), 404],
    ['no route (path only)', get(`/${MARK}-path/<svg/onload=alert(1)>`, routedHost.replace('app', 'other')), 404],
    ['a refused path', get(`/x/%zz${MARK}<script>`, routedHost), 400],
    ['an encoded slash', get(`/x/..%2f${MARK}`, routedHost), 400],
    ['a target too long', get(`/${MARK}${'a'.repeat(17_000)}`, routedHost), 414],
    ['too many header fields', get('/', routedHost, Array.from({ length: 300 }, (_, i) => `x-${MARK}-${i}: v\r\n`).join('')), 431],
    ['an upstream that refuses connections', get(`/${MARK}-path`, routedHost.replace('app', 'down')), 502],
  ];
  for (const [what, request, status] of cases) {
    const reply = await raw(url, request);
    t.is(reply.status, status, what);
    t.false(reply.body.includes(MARK), `${what}: the body reflects the request: ${JSON.stringify(reply.body.slice(0, 200))}`);
    t.false(reply.body.includes('<'), `${what}: no markup`);
    t.regex(reply.head, /\r\nx-content-type-options: nosniff/i, `${what}: nosniff`);
    t.regex(reply.head, /\r\ncontent-type: text\/plain; charset=utf-8/i, what);
  }
}

async function routes(t: ExecutionContext, host: string) {
  const origin = await startOrigin();
  const dead = await startOrigin();
  await dead.kill();
  t.teardown(() => origin.close());
  return testRouteTable([
    testRoute({ host, path: '/', endpoints: [origin.key] }),
    testRoute({ host: host.replace('app', 'down'), endpoints: [dead.key] }),
  ]);
}

test('error pages from the plain-HTTP entry reflect nothing from the request and are not sniffed', async (t) => {
  const proxy = await startProxyHarness({ table: await routes(t, 'app.test'), settings: { proxy: { retries: 0 } } });
  t.teardown(() => proxy.close());
  await assertNoReflection(t, proxy.url, 'app.test');
});

test('error pages through the edge simulator and the tunnel reflect nothing from the request', async (t) => {
  const proxy = await startProxyHarness({ table: await routes(t, 'app.test'), settings: { proxy: { retries: 0 } } });
  t.teardown(() => proxy.close());
  const harness = await startHarness(t, { handler: proxy.pipeline });
  await harness.sim.waitForRegistrations(1);
  await assertNoReflection(t, harness.sim.eyeballUrl, 'app.test');
});

test('gRPC failures carry a grpc-message that reflects nothing from the request', async (t) => {
  const proxy = await startProxyHarness({ table: await routes(t, 'app.test') });
  t.teardown(() => proxy.close());
  for (const request of [
    `POST /${MARK}.Svc/Method HTTP/1.1\r\nHost: ${HOST}\r\ncontent-type: application/grpc\r\ncontent-length: 0\r\nConnection: close\r\n\r\n`,
    `POST /x/..%2f${MARK}/Method HTTP/1.1\r\nHost: app.test\r\ncontent-type: application/grpc\r\ncontent-length: 0\r\nConnection: close\r\n\r\n`,
  ]) {
    const reply = await raw(proxy.url, request);
    t.is(reply.status, 200, 'trailers-only gRPC status');
    t.regex(reply.head, /\r\ngrpc-status: \d+/);
    t.false(reply.head.includes(MARK), reply.head);
  }
});
