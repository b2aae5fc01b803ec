/**
 * Path confusion, end to end: a corpus of request paths (dot segments in every encoding and case, mixed
 * separators, semicolons, fragments, overlong paths) sent byte for byte to Prefix, Exact and
 * ImplementationSpecific routes built by the real routing model, through the plain-HTTP entry and through the
 * edge simulator and the tunnel connector, to real origins on loopback. No variant may reach a backend path
 * outside the route that matched it, whatever normalisation that backend applies afterwards.
 */
import test, { type ExecutionContext } from 'ava';
import fc from 'fast-check';
import net from 'node:net';
import { RouteTableBuilder, routingConfig } from '../../src/routes/index.js';
import { canonicalRequestTarget, checkRulePath, DEFAULT_PATH_POLICY } from '../../src/routes/paths.js';
import { snapshotFromObjects } from '../../src/routes/snapshot.js';
import { startOrigin, startProxyHarness, type ProxyHarness, type TestOrigin } from '../../src/testing/index.js';
import { startHarness } from '../tunnel/support/harness.js';

const HOST = 'paths.test';

/** The routes under test: which backend serves which paths, as the Ingress says. */
const ROUTES = [
  { service: 'api', path: '/v1', pathType: 'Prefix', inside: (p: string) => p === '/v1' || p.startsWith('/v1/') },
  { service: 'exact', path: '/exact/only', pathType: 'Exact', inside: (p: string) => p === '/exact/only' },
  { service: 'impl', path: '/impl/', pathType: 'ImplementationSpecific', inside: (p: string) => p === '/impl' || p.startsWith('/impl/') },
] as const;
type Service = (typeof ROUTES)[number]['service'];

/** Refused by Warren with this status, or served by `service` with exactly this request target. */
type Expect = 400 | 404 | 414 | readonly [Service, string];

const long = (unit: string, times: number): string => unit.repeat(times);

const CORPUS: ReadonlyArray<readonly [string, Expect]> = [
  // dot segments, every encoding and case
  ['/v1/../admin', 404],
  ['/v1/%2e%2e/admin', 404],
  ['/v1/%2E%2E/admin', 404],
  ['/v1/%2e%2E/admin', 404],
  ['/v1/.%2e/admin', 404],
  ['/v1/%2E./admin', 404],
  ['/v1/x/../../admin', 404],
  ['/v1/x/%2e%2e/%2E%2E/admin', 404],
  ['/v1/./hello', ['api', '/v1/hello']],
  ['/v1/%2e/hello', ['api', '/v1/hello']],
  ['/v1/x/../hello', ['api', '/v1/hello']],
  ['/v1/x/%2E%2E/hello', ['api', '/v1/hello']],
  ['/v1/%2E%2E/hello', 404],
  ['/v1/..', 404],
  ['/v1/%2e%2e', 404],
  ['/v1/.', ['api', '/v1/']],
  ['/../v1/hello', ['api', '/v1/hello']],
  ['/%2e%2e/%2E%2E/v1/hello', ['api', '/v1/hello']],
  ['/admin/../v1/hello', ['api', '/v1/hello']],
  ['/v1/hello/..', ['api', '/v1/']],
  ['/v1/...', ['api', '/v1/...']],
  ['/v1/..hidden', ['api', '/v1/..hidden']],
  ['/%76%31/hello', ['api', '/v1/hello']],
  ['/%76%31/%2e%2e/admin', 404],
  ['/V1/hello', 404],
  // encoded and raw separators, double encoding, malformed and overlong escapes, NUL
  ['/v1/%2e%2e%2fadmin', 400],
  ['/v1/..%2fadmin', 400],
  ['/v1/..%2Fadmin', 400],
  ['/v1%2fhello', 400],
  ['/v1/%2fadmin', 400],
  ['/v1/%2e%2e%5cadmin', 400],
  ['/v1/..%5Cadmin', 400],
  ['/v1/..\\admin', 400],
  ['/v1\\..\\admin', 400],
  ['/v1/\\admin', 400],
  ['/v1/%252e%252e/admin', 400],
  ['/v1/%252F', 400],
  ['/v1/%255c', 400],
  ['/v1/%25%32%65%25%32%65/admin', 400],
  ['/v1/%25%32%46', 400],
  ['/v1/%c0%ae%c0%ae/admin', 400],
  ['/v1/%C0%AF', 400],
  ['/v1/%e0%80%ae', 400],
  ['/v1/%00', 400],
  ['/v1/a%00b', 400],
  ['/v1/%', 400],
  ['/v1/%zz', 400],
  ['/v1/%2', 400],
  ['/v1/caf%c3%a9', ['api', '/v1/caf%C3%A9']],
  ['/v1/100%25', ['api', '/v1/100%25']],
  // semicolons (path parameters)
  ['/v1/..;/admin', 400],
  ['/v1/.;/admin', 400],
  ['/v1/..;x=1/admin', 400],
  ['/v1/%2e%2e;/admin', 400],
  ['/v1/..%3b/admin', 400],
  ['/v1/..%3B/admin', 400],
  ['/v1;x/hello', 404],
  ['/v1/hello;jsessionid=abc', ['api', '/v1/hello;jsessionid=abc']],
  ['/admin;/../v1/hello', ['api', '/v1/hello']],
  ['/v1/x;/../hello', ['api', '/v1/hello']],
  // repeated slashes (merged)
  ['//v1/hello', ['api', '/v1/hello']],
  ['/v1//hello', ['api', '/v1/hello']],
  ['/v1///..//admin', 404],
  ['//admin', 404],
  ['/v1/hello//', ['api', '/v1/hello/']],
  // Exact
  ['/exact/only', ['exact', '/exact/only']],
  ['/exact/./only', ['exact', '/exact/only']],
  ['/exact/only/', 404],
  ['/exact/x/../only', ['exact', '/exact/only']],
  ['/exact/only/..', 404],
  ['/exact/%6Fnly', ['exact', '/exact/only']],
  ['/exact//only', ['exact', '/exact/only']],
  ['/exact/only/../../v1/hello', ['api', '/v1/hello']],
  ['/exact/only%2f..%2f..%2fv1', 400],
  // ImplementationSpecific
  ['/impl', ['impl', '/impl']],
  ['/impl/a/../b', ['impl', '/impl/b']],
  ['/impl/%2E%2E/v1/hello', ['api', '/v1/hello']],
  ['/impl/..%2f..%2fadmin', 400],
  ['/impl/../admin', 404],
  ['/implx', 404],
  // the query is never touched
  ['/v1/hello?x=/../admin', ['api', '/v1/hello?x=/../admin']],
  ['/v1/./hello?a=%2e%2e&b=%2F', ['api', '/v1/hello?a=%2e%2e&b=%2F']],
  ['/v1/%7e?q=%41', ['api', '/v1/~?q=%41']],
  ['/v1/a/../b?c/../d', ['api', '/v1/b?c/../d']],
  // fragments are never sent by clients
  ['/v1/hello#frag', 400],
  ['/v1/..#/admin', 400],
  ['/v1/%2e%2e#/../v1', 400],
  // overlong
  [`/v1/${long('a', 17_000)}`, 414],
  [`/v1/hello?${long('q', 17_000)}`, 414],
  [`/v1/${long('../', 3000)}admin`, 404],
  [`/v1/${long('x/', 2000)}${long('../', 2000)}hello`, ['api', '/v1/hello']],
  [`/v1/${long('%2e%2e/', 1500)}v1/deep`, ['api', '/v1/deep']],
];

interface Answer {
  readonly status: number;
  readonly served?: { readonly service: string; readonly url: string } | undefined;
}

/** Sends `GET <target>` byte for byte on a fresh connection and reads the whole response. */
function rawGet(url: string, target: string, host: string): Promise<Answer> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => socket.destroy(new Error(`no answer for ${target.slice(0, 80)}`)), 10_000);
    socket.on('connect', () => socket.write(`GET ${target} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`, 'latin1'));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (err) => {
      clearTimeout(timer);
      // a server may close as soon as it answered an unparsable request
      if (chunks.length > 0) resolve(parse(Buffer.concat(chunks)));
      else reject(err);
    });
    socket.on('end', () => {
      clearTimeout(timer);
      resolve(parse(Buffer.concat(chunks)));
    });
  });
}

function parse(raw: Buffer): Answer {
  const text = raw.toString('latin1');
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  const bodyAt = text.indexOf('\r\n\r\n');
  const head = text.slice(0, bodyAt);
  let body = text.slice(bodyAt + 4);
  if (/\r\ntransfer-encoding: chunked/i.test(head)) {
    let out = '';
    for (let at = 0; ; ) {
      const eol = body.indexOf('\r\n', at);
      const size = parseInt(body.slice(at, eol), 16);
      if (!size) break;
      out += body.slice(eol + 2, eol + 2 + size);
      at = eol + 2 + size + 2;
    }
    body = out;
  }
  if (status !== 200) return { status };
  const echo = JSON.parse(Buffer.from(body, 'latin1').toString('utf8')) as { origin: string; url: string };
  return { status, served: { service: echo.origin, url: echo.url } };
}

/** What backends that normalise again might make of the path they received. */
const BACKEND_VIEWS: ReadonlyArray<readonly [string, (path: string) => string | undefined]> = [
  ['as received', (p) => p],
  ['WHATWG URL', (p) => new URL(p, 'http://backend').pathname],
  [
    'decoded, then WHATWG URL',
    (p) => {
      try {
        return new URL(decodeURIComponent(p), 'http://backend').pathname;
      } catch {
        return undefined;
      }
    },
  ],
  [
    'Warren canonical form again',
    (p) => {
      const c = canonicalRequestTarget(p, DEFAULT_PATH_POLICY);
      return c.ok ? c.path : undefined;
    },
  ],
  ['path parameters dropped, then WHATWG URL', (p) => new URL(p.replace(/;[^/]*/g, ''), 'http://backend').pathname],
];

interface Backends {
  readonly byKey: Map<string, Service>;
  readonly origins: TestOrigin[];
  readonly objects: unknown[];
}

async function backends(t: ExecutionContext): Promise<Backends> {
  const byKey = new Map<string, Service>();
  const origins: TestOrigin[] = [];
  const objects: unknown[] = [{ kind: 'IngressClass', metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } }];
  const paths: unknown[] = [];
  for (const route of ROUTES) {
    const origin = await startOrigin();
    origins.push(origin);
    byKey.set(origin.key, route.service);
    objects.push(
      { kind: 'Service', metadata: { name: route.service, namespace: 'default' }, spec: { ports: [{ name: 'http', port: 80, targetPort: origin.port }] } },
      {
        kind: 'EndpointSlice',
        metadata: { name: `${route.service}-1`, namespace: 'default', labels: { 'kubernetes.io/service-name': route.service } },
        addressType: 'IPv4',
        ports: [{ name: 'http', port: origin.port }],
        endpoints: [{ addresses: ['127.0.0.1'], conditions: { ready: true } }],
      },
    );
    paths.push({ path: route.path, pathType: route.pathType, backend: { service: { name: route.service, port: { number: 80 } } } });
  }
  objects.push({
    kind: 'Ingress',
    metadata: { name: 'paths', namespace: 'default' },
    spec: { ingressClassName: 'cloudflare-tunnel', rules: [{ host: HOST, http: { paths } }] },
  });
  t.teardown(() => Promise.all(origins.map((o) => o.close())));
  return { byKey, origins, objects };
}

async function proxyFor(t: ExecutionContext, b: Backends, settings: Record<string, unknown> = {}): Promise<ProxyHarness> {
  const proxy = await startProxyHarness({ settings });
  t.teardown(() => proxy.close());
  const table = new RouteTableBuilder(routingConfig(proxy.config, [])).build(snapshotFromObjects(b.objects).snapshot);
  t.deepEqual(table.diagnostics, [], 'every test route is valid');
  await proxy.setTable(table);
  return proxy;
}

/** Edge simulator → tunnel connector → the proxy: the local-mode path. Returns the eyeball URL. */
async function throughTunnel(t: ExecutionContext, proxy: ProxyHarness): Promise<string> {
  const harness = await startHarness(t, { handler: proxy.pipeline });
  await harness.sim.waitForRegistrations(1);
  return harness.sim.eyeballUrl;
}

/** Runs the corpus against `url`: each refusal with its exact status, each served variant on its exact path. */
async function runCorpus(t: ExecutionContext, url: string, b: Backends): Promise<void> {
  t.true(CORPUS.length >= 60, `${CORPUS.length} variants`);
  const seenBefore = b.origins.reduce((n, o) => n + o.requests, 0);
  let served = 0;
  for (const [target, expect] of CORPUS) {
    const shown = target.length > 90 ? `${target.slice(0, 90)}… (${target.length} chars)` : target;
    const answer = await rawGet(url, target, HOST);
    if (typeof expect === 'number') {
      t.is(answer.status, expect, `${shown} → ${expect}`);
      t.is(answer.served, undefined, `${shown} reached no backend`);
      continue;
    }
    served++;
    t.is(answer.status, 200, `${shown} is served`);
    t.deepEqual(answer.served, { service: b.origins[ROUTES.findIndex((r) => r.service === expect[0])]!.key, url: expect[1] }, `${shown} → ${expect[0]} ${expect[1]}`);
    const service = answer.served ? b.byKey.get(answer.served.service) : undefined;
    const route = ROUTES.find((r) => r.service === service);
    if (!answer.served || !route) continue;
    const path = answer.served.url.split('?')[0]!;
    for (const [view, normalise] of BACKEND_VIEWS) {
      const seen = normalise(path);
      if (seen !== undefined) t.true(route.inside(seen), `${shown}: backend ${service} got ${path}, ${view} ${seen}: outside ${route.path}`);
    }
  }
  t.is(b.origins.reduce((n, o) => n + o.requests, 0) - seenBefore, served, 'only the served variants reached a backend');
}

test('path corpus through the plain-HTTP entry: no variant reaches a backend path outside the route that matched it', async (t) => {
  const b = await backends(t);
  const proxy = await proxyFor(t, b);
  await runCorpus(t, proxy.url, b);
});

test('path corpus through the edge simulator and the tunnel (local mode): same answers', async (t) => {
  const b = await backends(t);
  const proxy = await proxyFor(t, b);
  const eyeball = await throughTunnel(t, proxy);
  await runCorpus(t, eyeball, b);
});

test('proxy.paths settings: ambiguous encodings kept as data, slashes kept, a shorter length limit', async (t) => {
  const b = await backends(t);
  const keep = await proxyFor(t, b, { proxy: { paths: { ambiguousEncodings: 'keep', mergeSlashes: false, maxLength: 256 } } });
  const api = b.origins[0]!.key;
  const cases: ReadonlyArray<readonly [string, Answer]> = [
    ['/v1/..%2fadmin', { status: 200, served: { service: api, url: '/v1/..%2Fadmin' } }],
    ['/v1/a%5cb', { status: 200, served: { service: api, url: '/v1/a%5Cb' } }],
    ['/v1/..\\admin', { status: 200, served: { service: api, url: '/v1/..\\admin' } }],
    ['/v1/%252e%252e/x', { status: 200, served: { service: api, url: '/v1/%252e%252e/x' } }],
    ['/v1//hello', { status: 200, served: { service: api, url: '/v1//hello' } }],
    ['/v1//../admin', { status: 200, served: { service: api, url: '/v1/admin' } }],
    ['//v1/hello', { status: 404 }],
    [`/v1/${long('a', 300)}`, { status: 414 }],
    ['/v1/%00', { status: 400 }],
    ['/v1/..;/admin', { status: 400 }],
  ];
  for (const [target, want] of cases) t.deepEqual(await rawGet(keep.url, target, HOST), want, target);
});

test('canonical form: idempotent, keeps the query, never climbs above the root', (t) => {
  for (const [target] of CORPUS) {
    const once = canonicalRequestTarget(target);
    if (!once.ok) continue;
    const twice = canonicalRequestTarget(once.target);
    t.true(twice.ok && twice.target === once.target, `${target.slice(0, 80)} is stable`);
    t.is(once.path[0], '/');
    const q = target.indexOf('?');
    t.is(q === -1 ? '' : target.slice(q), once.target.slice(once.path.length), 'query unchanged');
  }
  t.deepEqual(canonicalRequestTarget('*'), { ok: true, path: '*', target: '*' });
  t.deepEqual(canonicalRequestTarget('/plain/path?x=1'), { ok: true, path: '/plain/path', target: '/plain/path?x=1' });
});

test('rule paths are compared in the canonical form; encoded dot segments in rules are refused', (t) => {
  const key = (path: string, type = 'Prefix') => {
    const c = checkRulePath(path, type);
    return c.ok ? c.key : c.problem;
  };
  t.is(key('/caf%c3%a9', 'Exact'), '/caf%C3%A9');
  t.is(key('/%61pi/'), '/api');
  t.regex(key('/v1/%2e%2e/admin'), /must not contain "\/\.\.\/" \(once decoded\)/);
  t.regex(key('/v1/%2E'), /must not end with "\/\."/);
  t.regex(key('/v1%2fx'), /must not contain "%2F"/);
  t.regex(key('/v1/%00'), /encoded NUL/);
  t.regex(key('/v1/%zz'), /percent-encoded byte/);
});

test('canonical paths are fixed points: stable, no dot segment, nothing left for a WHATWG URL parser to resolve', (t) => {
  const piece = fc.constantFrom(
    '/',
    '/',
    'a',
    'b',
    '.',
    '..',
    '%2e',
    '%2E',
    '%2e%2E',
    '%41',
    ';',
    ';x',
    '%3B',
    '%2f',
    '%5C',
    '\\',
    '%25',
    '%252e',
    '%32',
    '%65',
    '%46',
    '%c3%a9',
    '%',
  );
  fc.assert(
    fc.property(fc.array(piece, { maxLength: 14 }), fc.constantFrom('', '?q=/../a', '?%2e'), (pieces, query) => {
      const target = `/${pieces.join('')}${query}`;
      const c = canonicalRequestTarget(target);
      if (!c.ok) return;
      const again = canonicalRequestTarget(c.target);
      if (!again.ok || again.target !== c.target) throw new Error(`${target}: ${c.target} is not stable`);
      if (!c.target.endsWith(query)) throw new Error(`${target}: query changed`);
      if (c.path.split('/').some((s) => s === '.' || s === '..') || c.path.includes('//')) throw new Error(`${target}: ${c.path}`);
      const whatwg = new URL(c.path, 'http://backend').pathname;
      if (whatwg !== c.path) throw new Error(`${target}: canonical ${c.path}, WHATWG makes it ${whatwg}`);
    }),
    { numRuns: 2000 },
  );
  t.pass();
});
