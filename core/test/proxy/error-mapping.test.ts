import test from 'ava';
import http from 'node:http';
import { z } from 'zod';
import { ErrorCode } from '../../src/errors.js';
import { defineManifest } from '../../src/plugin-api/manifest.js';
import { definePlugin } from '../../src/plugin-api/module.js';
import type { ErrorAnswer, FailedExchange, RouteBinding, UpstreamPlugin } from '../../src/plugin-api/upstream.js';
import { startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';

/**
 * The error-mapping hook: plugins answer failures Warren itself produces in their own terms, asked in chain order
 * with their binding (or none: no route, or not bound to it); the first answer wins, a throwing plugin is passed
 * over, and without an answer the client gets core's HTTP error page.
 */

const asked: Array<{ plugin: string; bound: boolean; route: string | undefined; code: string; sent: number | undefined }> = [];

function mapper(
  id: string,
  order: number,
  answer: (binding: RouteBinding | undefined, failure: FailedExchange) => ErrorAnswer | undefined,
  binds: (routeHost: string | undefined) => boolean,
) {
  class Mapper implements UpstreamPlugin {
    bind(route: Parameters<NonNullable<UpstreamPlugin['bind']>>[0]): RouteBinding | undefined {
      return binds(route.host) ? { route, options: {} } : undefined;
    }
    mapError(binding: RouteBinding | undefined, failure: FailedExchange): ErrorAnswer | undefined {
      asked.push({ plugin: id, bound: binding !== undefined, route: failure.route?.host, code: failure.error.code, sent: failure.response?.status });
      return answer(binding, failure);
    }
  }
  const manifest = defineManifest({
    id,
    name: id.split('.')[1]!,
    description: 'maps errors',
    coreRange: '^0.1.0',
    kind: 'policy',
    order,
    configSchema: z.object({}).strict(),
  });
  return definePlugin({ manifest, plugin: Mapper });
}

const header = (failure: FailedExchange, name: string): string | undefined => {
  const h = failure.request.headers;
  for (let i = 0; i + 1 < h.length; i += 2) if (h[i]!.toLowerCase() === name) return h[i + 1];
  return undefined;
};

/** Throws for everything: must be passed over. */
const broken = mapper(
  'test.broken',
  1,
  () => {
    throw new Error('bug');
  },
  () => true,
);
/** Answers 418 to requests that ask for it, bound or not. */
const teapot = mapper(
  'test.teapot',
  2,
  (_b, failure) => (header(failure, 'x-teapot') ? { status: 418, headers: ['content-type', 'text/plain'], body: `${failure.publicMessage}|${failure.reference}` } : undefined),
  () => false,
);
/** Answers 299 only on routes it bound (host bound.test). */
const boundOnly = mapper(
  'test.bound',
  3,
  (binding) => (binding ? { status: 299, headers: [] } : undefined),
  (host) => host === 'bound.test',
);

function get(url: string, host: string, headers: http.OutgoingHttpHeaders = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { agent: false, headers: { host, ...headers } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode!, body }));
      })
      .on('error', reject);
  });
}

test.serial("plugins answer failures in chain order; unbound plugins are asked too; no answer leaves core's page", async (t) => {
  const dead = await startOrigin();
  await dead.kill();
  const table = testRouteTable([testRoute({ host: 'bound.test', endpoints: [] }), testRoute({ host: 'down.test', endpoints: [dead.key] })]);
  const proxy = await startProxyHarness({ plugins: [{ module: broken }, { module: teapot }, { module: boundOnly }], table, settings: { proxy: { retries: 0 } } });
  t.teardown(() => proxy.close());

  asked.length = 0;
  const noRoute = await get(proxy.url, 'nowhere.test', { 'x-teapot': '1' });
  t.is(noRoute.status, 418, 'a failure before any route matched reaches the plugins');
  t.regex(noRoute.body, /^no route matches this request\|[\w-]+$/, "the plugin gets core's public sentence and the reference");
  t.deepEqual(
    asked.map((a) => [a.plugin, a.bound, a.route, a.code]),
    [
      ['test.broken', false, undefined, ErrorCode.NoRoute],
      ['test.teapot', false, undefined, ErrorCode.NoRoute],
    ],
    'chain order, the broken one passed over, the first answer wins',
  );

  asked.length = 0;
  t.is((await get(proxy.url, 'bound.test')).status, 299, 'the bound plugin answers on its route');
  t.deepEqual(
    asked.map((a) => [a.plugin, a.bound, a.route]),
    [
      ['test.broken', true, 'bound.test'],
      ['test.teapot', false, 'bound.test'],
      ['test.bound', true, 'bound.test'],
    ],
  );

  asked.length = 0;
  const down = await get(proxy.url, 'down.test');
  t.is(down.status, 502, "nobody answered: core's HTTP error page");
  t.regex(down.body, /^the origin could not be reached\nreference: [\w-]+\n$/);
  t.deepEqual(
    asked.map((a) => [a.plugin, a.code, a.sent]),
    [
      ['test.broken', ErrorCode.UpstreamConnect, undefined],
      ['test.teapot', ErrorCode.UpstreamConnect, undefined],
      ['test.bound', ErrorCode.UpstreamConnect, undefined],
    ],
    'a failure after dispatch is mapped the same way',
  );
});
