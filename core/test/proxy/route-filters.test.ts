/**
 * Route filters (Gateway API rule filters on `Route.filters`) through the real pipeline, with real HTTP peers:
 * request and response header edits, redirects answered without a backend, URL rewrites of Host and path, and the
 * refusal of edits that would touch what the proxy owns. Also the status of routes that cannot be served.
 */
import test, { type ExecutionContext } from 'ava';
import http, { type IncomingHttpHeaders } from 'node:http';
import net from 'node:net';
import { injectable } from 'tsyringe';
import { z } from 'zod';
import { headerValue } from '../../src/model/exchange.js';
import { defineManifest } from '../../src/plugin-api/manifest.js';
import { definePlugin } from '../../src/plugin-api/module.js';
import { ForwardingHandler, type DispatchController, type ResponseHeaders, type UpstreamInterceptor, type UpstreamPlugin } from '../../src/plugin-api/upstream.js';
import { replacePath } from '../../src/proxy/route-filters.js';
import type { Route } from '../../src/routes/types.js';
import {
  capturedLogger,
  loggedError,
  startOrigin,
  startProxyHarness,
  testRoute,
  testRouteTable,
  type ProxyHarness,
  type TestOrigin,
  type TestRouteInit,
} from '../../src/testing/index.js';
import { startHarness } from '../tunnel/support/harness.js';

interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: readonly string[];
  readonly body: string;
}

function send(url: string, path: string, headers: Record<string, string | string[]> | Array<[string, string]>, method = 'GET', target?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const options = { method, headers: Array.isArray(headers) ? headers.flat() : headers, agent: false, ...(target ? { path: target } : {}) };
    const req = http.request(`${url}${path}`, options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

/** What the echo origin saw: the request target and its headers as raw `[name, value]` pairs. */
interface Echoed {
  readonly url: string;
  readonly headers: Record<string, string | undefined>;
  readonly rawHeaders: string[];
}

function fields(raw: readonly string[], name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.toLowerCase() === name) out.push(raw[i + 1]!);
  return out;
}

async function origin(t: ExecutionContext, handler?: http.RequestListener): Promise<TestOrigin> {
  const o = await startOrigin(handler ? { handler } : {});
  t.teardown(() => o.close());
  return o;
}

async function proxyWith(t: ExecutionContext, routes: readonly Route[], logger = capturedLogger()): Promise<{ proxy: ProxyHarness; lines: Array<Record<string, unknown>> }> {
  const proxy = await startProxyHarness({ table: testRouteTable(routes), logger: logger.logger });
  t.teardown(() => proxy.close());
  return { proxy, lines: logger.lines };
}

const route = (init: Partial<TestRouteInit> & Pick<TestRouteInit, 'endpoints'>): Route => testRoute({ host: 'app.example.com', ...init });

test('request header edits: set replaces every field of the name, add appends, remove drops; names case-insensitive', async (t) => {
  const o = await origin(t);
  const { proxy } = await proxyWith(t, [
    route({
      endpoints: [o.key],
      filters: {
        requestHeaders: {
          set: [
            ['X-Set', 'first'],
            ['x-set', 'new'],
          ],
          add: [
            ['x-add', 'added'],
            ['X-Gone-Too', 'never'],
          ],
          remove: ['X-Remove', 'x-gone-too'],
        },
      },
    }),
  ]);
  const reply = await send(proxy.url, '/a?q=1', [
    ['host', 'app.example.com'],
    ['x-set', 'old-1'],
    ['X-SET', 'old-2'],
    ['x-add', 'kept'],
    ['x-remove', 'bye'],
    ['X-Remove', 'bye-2'],
    ['x-gone-too', 'bye-3'],
    ['x-other', 'stays'],
  ]);
  t.is(reply.status, 200);
  const seen = JSON.parse(reply.body) as Echoed;
  t.deepEqual(fields(seen.rawHeaders, 'x-set'), ['new'], 'set replaces all values (a name set twice: the last)');
  t.deepEqual(fields(seen.rawHeaders, 'x-add'), ['kept', 'added'], 'add appends after the present values');
  t.deepEqual(fields(seen.rawHeaders, 'x-remove'), [], 'remove drops every field of the name, whatever its case');
  t.deepEqual(fields(seen.rawHeaders, 'x-gone-too'), [], 'remove wins over add');
  t.deepEqual(fields(seen.rawHeaders, 'x-other'), ['stays']);
  t.is(seen.url, '/a?q=1');
  t.is(seen.headers.host, 'app.example.com');
});

test('response header edits apply to the response head the client gets', async (t) => {
  const o = await origin(t, (_req, res) => {
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.setHeader('X-Set', 'origin');
    res.setHeader('x-remove', 'origin');
    res.setHeader('x-add', 'origin');
    res.end('ok');
  });
  const { proxy } = await proxyWith(t, [
    route({
      endpoints: [o.key],
      filters: {
        responseHeaders: {
          set: [['x-set', 'edited']],
          add: [
            ['x-add', 'more'],
            ['Set-Cookie', 'c=3'],
            ['x-new', 'n'],
          ],
          remove: ['X-Remove'],
        },
      },
    }),
  ]);
  const reply = await send(proxy.url, '/', { host: 'app.example.com' });
  t.is(reply.status, 200);
  t.is(reply.body, 'ok');
  t.deepEqual(fields(reply.rawHeaders, 'x-set'), ['edited']);
  t.deepEqual(fields(reply.rawHeaders, 'x-add'), ['origin', 'more']);
  t.deepEqual(fields(reply.rawHeaders, 'set-cookie'), ['a=1', 'b=2', 'c=3'], 'add keeps every present field');
  t.deepEqual(fields(reply.rawHeaders, 'x-new'), ['n']);
  t.is(reply.headers['x-remove'], undefined);
});

test('edits of fields the proxy owns, or with invalid values, make the route answer 500 and the log names the field', async (t) => {
  const o = await origin(t);
  const cases: ReadonlyArray<readonly [string, NonNullable<Route['filters']>, RegExp]> = [
    ['content-length.test', { requestHeaders: { set: [['Content-Length', '5']] } }, /requestHeaders\.set names "content-length"/],
    ['connection.test', { requestHeaders: { add: [['connection', 'close']] } }, /requestHeaders\.add names "connection"/],
    ['host.test', { requestHeaders: { set: [['host', 'other.example']] } }, /requestHeaders\.set names "host"/],
    ['proxy.test', { requestHeaders: { remove: ['Proxy-Authorization'] } }, /requestHeaders\.remove names "proxy-authorization"/],
    ['te.test', { responseHeaders: { set: [['transfer-encoding', 'chunked']] } }, /responseHeaders\.set names "transfer-encoding"/],
    ['value.test', { requestHeaders: { set: [['x-a', 'a\r\nx-injected: 1']] } }, /requestHeaders\.set gives "x-a" a value with control characters/],
    ['name.test', { responseHeaders: { add: [['x a', '1']] } }, /responseHeaders\.add names "x a", which is not a valid header name/],
    ['redirect-host.test', { redirect: { hostname: 'a.example/evil', statusCode: 302 } }, /redirect\.hostname is not a host name/],
    ['rewrite-host.test', { rewrite: { hostname: 'a.example:8080' } }, /rewrite\.hostname is not a host name/],
  ];
  const { proxy, lines } = await proxyWith(
    t,
    cases.map(([host, filters]) => testRoute({ host, endpoints: [o.key], filters })),
  );
  for (const [host, , cause] of cases) {
    const reply = await send(proxy.url, '/', { host });
    t.is(reply.status, 500, host);
    t.false(reply.body.includes(host), `${host}: no request data in the page`);
    t.regex(loggedError(lines, host), cause, host);
  }
  t.is(o.requests, 0, 'nothing reached the origin');
});

test('a redirect answers without a backend: Location from the request with the filter parts replaced, empty body', async (t) => {
  const redirects: ReadonlyArray<readonly [string, NonNullable<Route['filters']>['redirect'], string, string, string]> = [
    // [route path, redirect, request Host, request target, expected Location]
    ['/host', { hostname: 'example.org', statusCode: 302 }, 'app.example.com', '/host/x?a=1&b=2', 'http://example.org/host/x?a=1&b=2'],
    ['/keep-port', { hostname: 'example.org', statusCode: 302 }, 'app.example.com:8080', '/keep-port', 'http://example.org:8080/keep-port'],
    ['/default-port', { statusCode: 302 }, 'app.example.com:80', '/default-port', 'http://app.example.com/default-port'],
    ['/scheme', { scheme: 'https', statusCode: 301 }, 'app.example.com:8080', '/scheme/y', 'https://app.example.com/scheme/y'],
    ['/scheme-port', { scheme: 'https', port: 443, statusCode: 302 }, 'app.example.com', '/scheme-port', 'https://app.example.com/scheme-port'],
    ['/odd-port', { scheme: 'https', port: 8443, statusCode: 307 }, 'app.example.com', '/odd-port', 'https://app.example.com:8443/odd-port'],
    ['/port', { port: 80, statusCode: 308 }, 'app.example.com:8080', '/port', 'http://app.example.com/port'],
    ['/port2', { port: 8083, statusCode: 303 }, 'app.example.com', '/port2', 'http://app.example.com:8083/port2'],
    ['/prefix', { path: { type: 'ReplacePrefixMatch', value: '/new' }, statusCode: 302 }, 'app.example.com', '/prefix/a/b?q', 'http://app.example.com/new/a/b?q'],
    ['/full', { path: { type: 'ReplaceFullPath', value: '/elsewhere' }, statusCode: 302 }, 'app.example.com', '/full/a?q=1', 'http://app.example.com/elsewhere?q=1'],
  ];
  const { proxy } = await proxyWith(
    t,
    redirects.map(([path, redirect]) => route({ path, endpoints: [], filters: { redirect, responseHeaders: { add: [['x-filtered', 'yes']] } } })),
  );
  for (const [, redirect, host, target, location] of redirects) {
    const reply = await send(proxy.url, target, { host, 'x-forwarded-proto': 'https' }, 'POST');
    t.is(reply.status, redirect!.statusCode, target);
    t.is(reply.headers.location, location, target);
    t.is(reply.body, '', `${target}: empty body`);
    t.is(reply.headers['content-length'], '0');
    t.is(reply.headers['x-filtered'], 'yes', `${target}: response edits apply to the redirect`);
  }
});

test('a redirect escapes what a Location may not carry and never echoes the request into a body', async (t) => {
  const { proxy } = await proxyWith(t, [route({ endpoints: [], filters: { redirect: { hostname: 'example.org', statusCode: 302 } } })]);
  const reply = await send(proxy.url, '/a"b<c>d`e{f}|g^h?x="<script>"', { host: 'app.example.com' });
  t.is(reply.status, 302);
  t.is(reply.headers.location, 'http://example.org/a%22b%3Cc%3Ed%60e%7Bf%7D%7Cg%5Eh?x=%22%3Cscript%3E%22');
  t.is(reply.body, '');
});

test('a redirect of OPTIONS * points at the root', async (t) => {
  const { proxy } = await proxyWith(t, [testRoute({ host: 'redirect.test', endpoints: [], filters: { redirect: { hostname: 'example.org', statusCode: 302 } } })]);
  const redirected = await send(proxy.url, '', { host: 'redirect.test' }, 'OPTIONS', '*');
  t.is(redirected.status, 302);
  t.is(redirected.headers.location, 'http://example.org/');
});

test('a redirect keeps a bracketed IPv6 host, and without any Host sends the path alone', async (t) => {
  const { proxy } = await proxyWith(t, [
    testRoute({ path: '/secure', endpoints: [], filters: { redirect: { scheme: 'https', statusCode: 302 } } }),
    testRoute({ path: '/same', endpoints: [], filters: { redirect: { path: { type: 'ReplacePrefixMatch', value: '/moved' }, statusCode: 302 } } }),
  ]);
  t.is((await send(proxy.url, '/secure/x', { host: '[::1]:8080' })).headers.location, 'https://[::1]/secure/x');
  t.is((await send(proxy.url, '/same/x', { host: '[::1]:8080' })).headers.location, 'http://[::1]:8080/moved/x');
  const { hostname, port } = new URL(proxy.url);
  const head = await new Promise<string>((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => socket.write('GET /same/y?z HTTP/1.0\r\n\r\n'));
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => (text += c));
    socket.on('end', () => resolve(text));
    socket.on('error', reject);
  });
  t.regex(head, /^HTTP\/1\.[01] 302 /);
  t.regex(head, /\r\nlocation: \/moved\/y\?z\r\n/i);
});

test('through the tunnel a redirect keeps the visitor scheme the edge states', async (t) => {
  const { proxy } = await proxyWith(t, [route({ endpoints: [], filters: { redirect: { hostname: 'example.org', statusCode: 302 } } })]);
  const edge = await startHarness(t, { handler: proxy.pipeline, simulator: { eyeball: { tls: true } } });
  await edge.sim.waitForRegistrations(1);
  const plain = await send(edge.sim.eyeballUrl, '/x?y=1', { host: 'app.example.com' });
  t.is(plain.status, 302);
  t.is(plain.headers.location, 'http://example.org/x?y=1', 'a plain-HTTP visitor is sent to http although the tunnel hop is https');
  // The port a visitor reached at the edge is the listener's port: kept when the edge serves it, not when the Host
  // names one the edge accepts no connection on (the visitor came to the scheme's default port).
  const served = await send(edge.sim.eyeballUrl, '/x', { host: 'app.example.com:8080' });
  t.is(served.headers.location, 'http://example.org:8080/x');
  const unserved = await send(edge.sim.eyeballUrl, '/x', { host: 'app.example.com:1234' });
  t.is(unserved.headers.location, 'http://example.org/x', 'no port the edge does not serve');
});

test('URL rewrite: Host and path (prefix and full) replaced before forwarding, query kept', async (t) => {
  const o = await origin(t);
  const { proxy } = await proxyWith(t, [
    route({ path: '/prefix/one', endpoints: [o.key], filters: { rewrite: { hostname: 'backend.internal', path: { type: 'ReplacePrefixMatch', value: '/one' } } } }),
    route({ path: '/strip', endpoints: [o.key], filters: { rewrite: { path: { type: 'ReplacePrefixMatch', value: '/' } } } }),
    route({ path: '/full', endpoints: [o.key], filters: { rewrite: { path: { type: 'ReplaceFullPath', value: '/test' } } } }),
  ]);
  const cases: ReadonlyArray<readonly [string, string, string]> = [
    ['/prefix/one/two?a=1', '/one/two?a=1', 'backend.internal'],
    ['/prefix/one', '/one', 'backend.internal'],
    ['/strip/three', '/three', 'app.example.com'],
    ['/strip', '/', 'app.example.com'],
    ['/strip/', '/', 'app.example.com'],
    ['/full/a/b?x=%20y', '/test?x=%20y', 'app.example.com'],
  ];
  for (const [target, url, host] of cases) {
    const reply = await send(proxy.url, target, { host: 'app.example.com' });
    t.is(reply.status, 200, target);
    const seen = JSON.parse(reply.body) as Echoed;
    t.is(seen.url, url, target);
    t.deepEqual(fields(seen.rawHeaders, 'host'), [host], `${target}: one Host`);
    t.is(seen.headers['x-forwarded-host'], 'app.example.com', `${target}: X-Forwarded-Host stays the visitor's`);
  }
});

test('ReplacePrefixMatch follows the Gateway API table element-wise, trailing slashes included', (t) => {
  const cases: ReadonlyArray<readonly [string, string, string, string]> = [
    // request path, prefix match, replacement, modified path
    ['/foo/bar', '/foo', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo', '/xyz/', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz', '/xyz/bar'],
    ['/foo/bar', '/foo/', '/xyz/', '/xyz/bar'],
    ['/foo', '/foo', '/xyz', '/xyz'],
    ['/foo/', '/foo', '/xyz', '/xyz/'],
    ['/foo/bar', '/foo', '', '/bar'],
    ['/foo/', '/foo', '', '/'],
    ['/foo', '/foo', '', '/'],
    ['/foo/', '/foo', '/', '/'],
    ['/foo', '/foo', '/', '/'],
    ['/anything', '/', '/xyz', '/xyz/anything'],
  ];
  for (const [path, prefix, value, expected] of cases) {
    const r = testRoute({ path: prefix, endpoints: [] });
    t.is(replacePath(path, r, { type: 'ReplacePrefixMatch', value }), expected, `${path} | ${prefix} | ${JSON.stringify(value)}`);
  }
  t.is(replacePath('/foo/bar', testRoute({ path: '/foo', endpoints: [] }), { type: 'ReplaceFullPath', value: '/x/' }), '/x/');
});

test('routes that cannot be served: unresolved with its status (default 503), no backend at all 500; the page is core’s', async (t) => {
  const o = await origin(t);
  const { proxy, lines } = await proxyWith(t, [
    testRoute({ host: 'invalid-ref.test', endpoints: [o.key], unresolved: { reason: 'RefNotPermitted', message: 'backendRef not permitted', status: 500 } }),
    testRoute({ host: 'missing.test', endpoints: [], unresolved: { reason: 'ServiceNotFound', message: 'no such Service' } }),
    testRoute({ host: 'no-backend.test', service: '', endpoints: [] }),
    testRoute({ host: 'no-endpoints.test', endpoints: [] }),
  ]);
  for (const [host, status, cause] of [
    ['invalid-ref.test', 500, /RefNotPermitted/],
    ['missing.test', 503, /ServiceNotFound/],
    ['no-backend.test', 500, /has no backend/],
    ['no-endpoints.test', 503, /has no ready endpoint/],
  ] as const) {
    const reply = await send(proxy.url, '/<b>x', { host });
    t.is(reply.status, status, host);
    t.regex(reply.body, /^the service for this address is unavailable\nreference: /, host);
    t.false(reply.body.includes('<b>') || reply.body.includes(host), `${host}: nothing reflected`);
    t.regex(loggedError(lines, host), cause, host);
  }
  t.is(o.requests, 0);
});

test('filters are innermost: plugins see the client request, the origin gets the edits, plugins see the edited response', async (t) => {
  const o = await origin(t);
  const seen: { request?: { authorization?: string; path: string; plugin?: string }; response?: string | string[] } = {};
  const watch: UpstreamInterceptor = (next) => (options, handler) => {
    seen.request = { authorization: headerValue(options.headers, 'authorization'), path: options.path as string };
    options.headers.push('x-plugin', 'added');
    next(
      options,
      new (class extends ForwardingHandler {
        override onResponseStart(c: DispatchController, status: number, headers: ResponseHeaders, message?: string): void {
          seen.response = headers['x-filtered'];
          super.onResponseStart(c, status, headers, message);
        }
      })(handler),
    );
  };
  @injectable()
  class Watcher implements UpstreamPlugin {
    interceptor(): UpstreamInterceptor {
      return watch;
    }
  }
  const manifest = defineManifest({
    id: 'test.watcher',
    name: 'test-watcher',
    description: 'test',
    coreRange: '^0.1.0',
    kind: 'policy',
    order: 10,
    configSchema: z.object({}).strict(),
  });
  const proxy = await startProxyHarness({
    plugins: [{ module: definePlugin({ manifest, plugin: Watcher }) }],
    table: testRouteTable([
      route({
        path: '/api',
        endpoints: [o.key],
        filters: {
          requestHeaders: { remove: ['authorization', 'x-plugin'] },
          responseHeaders: { set: [['x-filtered', 'yes']] },
          rewrite: { path: { type: 'ReplacePrefixMatch', value: '/v2' } },
        },
      }),
    ]),
  });
  t.teardown(() => proxy.close());
  const reply = await send(proxy.url, '/api/items?x=1', { host: 'app.example.com', authorization: 'Basic dTpw' });
  t.is(reply.status, 200);
  const echoed = JSON.parse(reply.body) as Echoed;
  t.deepEqual(seen.request, { authorization: 'Basic dTpw', path: '/api/items?x=1' }, "the plugin saw the client's request");
  t.is(echoed.url, '/v2/items?x=1', 'the origin got the rewritten path');
  t.is(echoed.headers.authorization, undefined, 'and the edited headers');
  t.is(echoed.headers['x-plugin'], undefined, "the edits apply to the plugin's additions too");
  t.is(seen.response, 'yes', 'the plugin saw the edited response head');
  t.is(reply.headers['x-filtered'], 'yes');
});
