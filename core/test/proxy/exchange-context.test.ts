import test from 'ava';
import { injectable } from 'tsyringe';
import { z } from 'zod';
import { defineExchangeKey } from '../../src/plugin-api/exchange-key.js';
import { defineManifest } from '../../src/plugin-api/manifest.js';
import { definePlugin } from '../../src/plugin-api/module.js';
import type { UpstreamDispatch, UpstreamInterceptor, UpstreamPlugin } from '../../src/plugin-api/upstream.js';
import { capturedLogger, getText, loggedError, startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';

/** The value one plugin leaves for the next, and a second key that merely shares its name. */
const PATH_SEEN = defineExchangeKey<{ readonly path: string }>('test.path-seen');
const SAME_NAME = defineExchangeKey<{ readonly path: string }>('test.path-seen');

/** A policy plugin of the given order whose interceptor is `wrap`. */
function policyPlugin(id: string, order: number, wrap: UpstreamInterceptor) {
  @injectable()
  class Policy implements UpstreamPlugin {
    interceptor(): UpstreamInterceptor {
      return wrap;
    }
  }
  const manifest = defineManifest({
    id,
    name: id.replace('.', '-'),
    description: 'test',
    coreRange: '^0.1.0',
    kind: 'policy',
    order,
    configSchema: z.object({}).strict(),
  });
  return definePlugin({ manifest, plugin: Policy });
}

const writer = policyPlugin('test.writer', 10, (next: UpstreamDispatch) => (options, handler) => {
  options.context.set(PATH_SEEN, { path: options.context.exchange.head.path });
  next(options, handler);
});

const reader = policyPlugin('test.reader', 20, (next: UpstreamDispatch) => (options, handler) => {
  const seen = options.context.get(PATH_SEEN);
  const other = options.context.get(SAME_NAME);
  options.headers.push('x-seen', `${seen?.path ?? 'none'}|${other?.path ?? 'none'}`);
  next(options, handler);
});

const seenOf = (body: string): string | undefined => (JSON.parse(body) as { headers: Record<string, string> }).headers['x-seen'];

test('a value one plugin sets on the exchange context is read by the next, per exchange and per key', async (t) => {
  const origin = await startOrigin();
  const proxy = await startProxyHarness({
    plugins: [{ module: reader }, { module: writer }],
    table: testRouteTable([testRoute({ endpoints: [origin.key] })]),
  });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const [first, second] = await Promise.all([getText(`${proxy.url}/first`, 'x.test'), getText(`${proxy.url}/second`, 'x.test')]);
  t.is(first.status, 200);
  t.is(seenOf(first.body), '/first|none', 'the writer ran first (lower order); a key with the same name is another key');
  t.is(seenOf(second.body), '/second|none', 'each exchange has its own values');
});

test('core refuses dispatch options whose context a plugin replaced, with a log line that says so', async (t) => {
  const origin = await startOrigin();
  const forger = policyPlugin('test.forger', 10, (next: UpstreamDispatch) => (options, handler) => {
    next({ ...options, context: { ...options.context } }, handler);
  });
  const { logger, lines } = capturedLogger();
  const proxy = await startProxyHarness({ plugins: [{ module: forger }], table: testRouteTable([testRoute({ endpoints: [origin.key] })]), logger });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const reply = await getText(`${proxy.url}/`, 'x.test');
  t.is(reply.status, 502);
  t.regex(loggedError(lines), /exchange context that core did not create/);
  t.is(origin.requests, 0);
});
