/**
 * Warren's own error answers (404, 400, 414, 431, 502, 503, 504, gRPC statuses) never reflect the request: not the
 * host, not the path, not a header. Nor, by default, do they disclose the cause (namespaces, Services, Ingresses,
 * endpoint addresses, upstream errors): a fixed sentence and a reference, which leads to the cause in the log.
 * Plain-text pages carry `x-content-type-options: nosniff`. Checked through the plain-HTTP entry and through the
 * edge simulator and the tunnel.
 */
import test, { type ExecutionContext } from 'ava';
import net from 'node:net';
import { parseConfig } from '../../src/config/load.js';
import { resolvePlugins } from '../../src/plugins/registry.js';
import { capturedLogger, startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';
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
  return testRouteTable([testRoute({ host, path: '/', endpoints: [origin.key] }), testRoute({ host: host.replace('app', 'down'), endpoints: [dead.key] })]);
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

/** The built-in plugins as the controller loads them by default: gRPC answers are the gRPC plugin's. */
const builtinPlugins = () => resolvePlugins(parseConfig({}));

test('gRPC failures carry a grpc-message that reflects nothing from the request', async (t) => {
  const proxy = await startProxyHarness({ table: await routes(t, 'app.test'), loadedPlugins: await builtinPlugins() });
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

const SECRET_NS = 'zq7ns';
const SECRET_SVC = 'zq7svc';
const SECRET_INGRESS = 'zq7ing';

/**
 * Routes that fail in every way a 502/503/504 can come about, each with names an outsider must not learn: a
 * Service with no ready endpoint, a path whose Service does not exist, a route no plugin can serve, a refused
 * connection, an origin that never answers.
 */
async function failingRoutes(t: ExecutionContext) {
  const dead = await startOrigin();
  await dead.kill();
  const silent = await startOrigin({ handler: () => {} });
  t.teardown(() => silent.close());
  const named = { namespace: SECRET_NS, ingress: SECRET_INGRESS, service: SECRET_SVC };
  const unresolved = {
    ...testRoute({ ...named, host: 'typo.test', endpoints: [] }),
    unresolved: {
      reason: 'ServiceNotFound',
      message: `Ingress ${SECRET_NS}/${SECRET_INGRESS}: spec.rules[0].http.paths[0].backend.service: Service "${SECRET_SVC}-typo" not found; requests to this path get 503`,
    },
  };
  const table = testRouteTable([
    testRoute({ ...named, host: 'empty.test', endpoints: [] }),
    unresolved,
    testRoute({ ...named, host: 'noplugin.test', endpoints: [dead.key], protocol: 'zq7proto' as never }),
    testRoute({ ...named, host: 'refused.test', endpoints: [dead.key] }),
    testRoute({ ...named, host: 'silent.test', endpoints: [silent.key], annotations: { 'response-header-timeout': 300 } }),
  ]);
  const cases = [
    { host: 'empty.test', status: 503, sentence: 'the service for this address is unavailable', cause: `${SECRET_NS}/${SECRET_SVC} has no ready endpoint` },
    { host: 'typo.test', status: 503, sentence: 'the service for this address is unavailable', cause: `(ServiceNotFound): Ingress ${SECRET_NS}/${SECRET_INGRESS}` },
    { host: 'noplugin.test', status: 502, sentence: 'the origin could not be reached', cause: `route ${SECRET_NS}/${SECRET_INGRESS}` },
    { host: 'refused.test', status: 502, sentence: 'the origin could not be reached', cause: 'ECONNREFUSED' },
    { host: 'silent.test', status: 504, sentence: 'the origin did not answer in time', cause: 'no response head in time' },
  ] as const;
  return { table, cases, addresses: [dead.key, silent.key, String(dead.port), String(silent.port), '127.0.0.1'] };
}

function assertDiscloses(t: ExecutionContext, text: string, what: string, secrets: readonly string[]): void {
  for (const secret of [SECRET_NS, SECRET_SVC, SECRET_INGRESS, ...secrets]) {
    t.false(text.includes(secret), `${what}: the page discloses ${secret}: ${JSON.stringify(text)}`);
  }
}

test("502/503/504 pages name no Service, namespace, Ingress, address or port; the access log has the cause under the page's reference", async (t) => {
  const { table, cases, addresses } = await failingRoutes(t);
  const { logger, lines } = capturedLogger();
  const proxy = await startProxyHarness({ table, logger, settings: { proxy: { retries: 0 } } });
  t.teardown(() => proxy.close());
  for (const c of cases) {
    const reply = await raw(proxy.url, get('/x', c.host));
    t.is(reply.status, c.status, c.host);
    assertDiscloses(t, reply.body, c.host, addresses);
    const match = /^(.+)\nreference: ([\w-]+)\n$/.exec(reply.body);
    t.truthy(match, `${c.host}: a fixed sentence and a reference: ${JSON.stringify(reply.body)}`);
    t.is(match?.[1], c.sentence, c.host);
    const logged = lines.find((l) => l.component === 'access' && l.id === match?.[2]);
    t.truthy(logged, `${c.host}: the access log has a record with the page's reference`);
    t.is(logged?.status, c.status, c.host);
    t.true(String(logged?.error).includes(c.cause), `${c.host}: the access log names the cause: ${String(logged?.error)}`);
  }
  const typo = lines.find((l) => l.component === 'access' && l.host === 'typo.test');
  t.false(String(typo?.error).includes('has no ready endpoint'), 'an unresolved path logs why it is unresolved, not a missing endpoint');
});

test("without an access log, a 5xx page's reference leads to a warning with the cause", async (t) => {
  const { table, cases, addresses } = await failingRoutes(t);
  const { logger, lines } = capturedLogger();
  const proxy = await startProxyHarness({ table, logger, settings: { proxy: { retries: 0, accessLog: { enabled: false } } } });
  t.teardown(() => proxy.close());
  for (const c of cases) {
    const reply = await raw(proxy.url, get('/x', c.host));
    assertDiscloses(t, reply.body, c.host, addresses);
    const reference = /reference: ([\w-]+)\n$/.exec(reply.body)?.[1];
    const logged = lines.find((l) => l.msg === 'request failed' && l.reference === reference);
    t.truthy(logged, `${c.host}: a 'request failed' line with reference ${reference}`);
    t.true(String(logged?.error).includes(c.cause), `${c.host}: ${String(logged?.error)}`);
  }
  t.false(
    lines.some((l) => l.component === 'access'),
    'the access log stays off',
  );
});

test('with proxy.errorDetails the page shows the cause, still never the request', async (t) => {
  const { table, cases } = await failingRoutes(t);
  const proxy = await startProxyHarness({ table, settings: { proxy: { retries: 0, errorDetails: true } } });
  t.teardown(() => proxy.close());
  for (const c of cases) {
    const reply = await raw(proxy.url, get(`/${MARK}`, c.host));
    t.is(reply.status, c.status, c.host);
    t.true(reply.body.includes(c.cause), `${c.host}: ${JSON.stringify(reply.body)}`);
    t.regex(reply.body, /\nreference: [\w-]+\n$/, c.host);
    t.false(reply.body.includes(MARK), `${c.host}: reflects the request`);
  }
  const missing = await raw(proxy.url, get(`/${MARK}`, HOST));
  t.is(missing.body.split('\n')[0], 'no route matches this request', 'a missing route keeps its fixed sentence');
});

test("through the tunnel the reference is the Ray ID; a direct client's cf-ray is never shown", async (t) => {
  const { table } = await failingRoutes(t);
  const { logger, lines } = capturedLogger();
  const proxy = await startProxyHarness({ table, logger, settings: { proxy: { retries: 0 } } });
  t.teardown(() => proxy.close());
  const harness = await startHarness(t, { handler: proxy.pipeline });
  await harness.sim.waitForRegistrations(1);
  const viaEdge = await raw(harness.sim.eyeballUrl, get('/x', 'empty.test'));
  t.is(viaEdge.status, 503);
  const ray = /reference: ([\w-]+)\n/.exec(viaEdge.body)?.[1];
  t.regex(ray ?? '', /^[0-9a-f]{16}-SIM$/, viaEdge.body);
  t.truthy(
    lines.find((l) => l.component === 'access' && l.cfRay === ray && l.status === 503),
    'the access log records that Ray ID',
  );

  const direct = await raw(proxy.url, get('/x', 'empty.test', 'cf-ray: 0123456789abcdef-AMS\r\n'));
  t.false(direct.body.includes('0123456789abcdef'), direct.body);
  const id = /reference: ([\w-]+)\n$/.exec(direct.body)?.[1];
  t.truthy(
    lines.find((l) => l.component === 'access' && l.id === id),
    'a direct request is referenced by its exchange id',
  );
});

test('gRPC failures carry a fixed grpc-message with the reference, and the same status codes', async (t) => {
  const { table, cases, addresses } = await failingRoutes(t);
  const proxy = await startProxyHarness({ table, settings: { proxy: { retries: 0 } }, loadedPlugins: await builtinPlugins() });
  t.teardown(() => proxy.close());
  // Failures decided before dispatch; a gRPC route's connect failure is covered end to end (end-to-end.test.ts).
  for (const c of cases.filter((x) => ['empty.test', 'typo.test', 'noplugin.test'].includes(x.host))) {
    const reply = await raw(proxy.url, `POST /pkg.Svc/Call HTTP/1.1\r\nHost: ${c.host}\r\ncontent-type: application/grpc\r\ncontent-length: 0\r\nConnection: close\r\n\r\n`);
    t.is(reply.status, 200, c.host);
    t.regex(reply.head, /\r\ngrpc-status: 14\r\n/, `${c.host}: UNAVAILABLE, as before`);
    const message = /\r\ngrpc-message: ([^\r]*)/.exec(reply.head)?.[1] ?? '';
    t.is(decodeURIComponent(message).replace(/ \(reference: [\w-]+\)$/, ''), c.sentence, `${c.host}: ${message}`);
    assertDiscloses(t, message, c.host, addresses);
  }
});
