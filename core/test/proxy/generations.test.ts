import test from 'ava';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { z } from 'zod';
import { TOKENS } from '../../src/di/tokens.js';
import { ErrorCode, WarrenError } from '../../src/errors.js';
import { definePlugin } from '../../src/plugin-api/module.js';
import type { ProvisionContext } from '../../src/plugin-api/lifecycle.js';
import { defineManifest, type PluginConfig, type UpstreamKind } from '../../src/plugin-api/manifest.js';
import { inject, injectable } from '../../src/plugin-api/index.js';
import type { RouteBinding, UpstreamInterceptor, UpstreamPlugin } from '../../src/plugin-api/upstream.js';
import type { Route } from '../../src/routes/types.js';
import { capturedLogger, getText, loggedError, startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';

const call = (url: string, host = 'x.test') => getText(url, host);

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

/** Shared record of what test plugin instances did. */
interface Journal {
  created: number;
  provisioned: number[];
  disposed: number[];
  failProvision: boolean;
  /** `<route id>@<instance>` for every bind call. */
  bound?: string[];
}

/** A test plugin whose interceptor appends `<id>#<instance>` to the `x-chain` request header. */
function chainPlugin(id: string, kind: UpstreamKind, order: number, journal: Journal) {
  const manifest = defineManifest({
    id,
    name: id.replace('.', '-'),
    description: 'test',
    coreRange: '^0.1.0',
    kind,
    order,
    configSchema: z.object({ tag: z.string().default(id) }).strict(),
  });
  @injectable()
  class ChainPlugin implements UpstreamPlugin {
    readonly serial: number;

    constructor(@inject(manifest.configToken) readonly config: PluginConfig<typeof manifest>) {
      this.serial = ++journal.created;
    }

    provision(_ctx: ProvisionContext): void {
      if (journal.failProvision) throw new WarrenError(ErrorCode.ConfigInvalid, `${id} refuses to provision`);
      journal.provisioned.push(this.serial);
    }

    dispose(): void {
      journal.disposed.push(this.serial);
    }

    bind(route: Route): RouteBinding | undefined {
      journal.bound?.push(`${route.id}@${this.serial}`);
      if (route.annotations['test-unbindable'] === id) throw new WarrenError(ErrorCode.UpstreamConnect, `${id} cannot serve ${route.id}`);
      return { route, options: {} };
    }

    interceptor(): UpstreamInterceptor {
      const tag = `${this.config.tag}#${this.serial}`;
      return (next) =>
        function chain(options, handler) {
          const i = options.headers.indexOf('x-chain');
          if (i === -1) options.headers.push('x-chain', tag);
          else options.headers[i + 1] += `,${tag}`;
          next(options, handler);
        };
    }
  }
  return definePlugin({ manifest, plugin: ChainPlugin });
}

const chainOf = (body: string): string => (JSON.parse(body) as { headers: Record<string, string> }).headers['x-chain'] ?? '';

test('interceptors run in manifest order (kind, order, id), never registration order', async (t) => {
  const journal: Journal = { created: 0, provisioned: [], disposed: [], failProvision: false };
  const origin = await startOrigin();
  const proxy = await startProxyHarness({
    plugins: [
      { module: chainPlugin('test.zeta', 'policy', 20, journal), config: { tag: 'zeta' } },
      { module: chainPlugin('test.beta', 'policy', 10, journal), config: { tag: 'beta' } },
      { module: chainPlugin('test.alpha', 'policy', 10, journal), config: { tag: 'alpha' } },
      { module: chainPlugin('test.wire', 'transport', 50, journal), config: { tag: 'wire' } },
    ],
    table: testRouteTable([testRoute({ endpoints: [origin.key] })]),
  });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const reply = await call(`${proxy.url}/`);
  t.is(chainOf(reply.body).replace(/#\d+/g, ''), 'wire,alpha,beta,zeta');
});

test('generations share plugin instances; only new or changed route objects are bound again', async (t) => {
  const journal: Journal = { created: 0, provisioned: [], disposed: [], failProvision: false, bound: [] };
  const origin = await startOrigin();
  const kept = testRoute({ id: 'kept', host: 'kept.test', endpoints: [origin.key] });
  const proxy = await startProxyHarness({
    plugins: [{ module: chainPlugin('test.share', 'policy', 1, journal) }],
    table: testRouteTable([kept, testRoute({ id: 'changed', host: 'changed.test', endpoints: [origin.key] })], 1),
  });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  await proxy.pipeline.whenCompiled();
  t.deepEqual(journal.bound!.sort(), ['changed@1', 'kept@1']);

  // Generation 2 carries `kept` over as the same object and replaces `changed` with a new one.
  const changed = testRoute({ id: 'changed', host: 'changed.test', endpoints: [origin.key], annotations: { note: 'v2' } });
  await proxy.setTable(testRouteTable([kept, changed], 2));
  await proxy.pipeline.whenCompiled();
  t.deepEqual(journal.provisioned, [1], 'no new plugin instances for a table change');
  t.deepEqual(journal.bound!.sort(), ['changed@1', 'changed@1', 'kept@1'], 'only the changed route was bound again');
  t.is(chainOf((await call(`${proxy.url}/`, 'kept.test')).body), 'test.share#1');
  t.is(chainOf((await call(`${proxy.url}/`, 'changed.test')).body), 'test.share#1');
  t.deepEqual(journal.disposed, [], 'the shared instances stay while a generation uses them');
  t.is(proxy.pipeline.generationsAlive, 1, 'generation 1 was released without disposing the shared set');
});

test('fresh plugin instances bind every route; the old ones are disposed after their last exchange', async (t) => {
  const journal: Journal = { created: 0, provisioned: [], disposed: [], failProvision: false, bound: [] };
  let releaseHeld: (() => void) | undefined;
  const origin = await startOrigin({
    handler: (req, res) => {
      const body = JSON.stringify({ headers: req.headers });
      if (req.url === '/hold') releaseHeld = () => res.end(body);
      else res.end(body);
    },
  });
  const route = testRoute({ id: 'r', endpoints: [origin.key] });
  const proxy = await startProxyHarness({ plugins: [{ module: chainPlugin('test.gen', 'policy', 1, journal) }], table: testRouteTable([route], 1) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  t.deepEqual(journal.provisioned, [1]);
  const held = call(`${proxy.url}/hold`);
  while (!releaseHeld) await new Promise((r) => setTimeout(r, 5));

  await proxy.setTable(testRouteTable([route], 2), { freshPlugins: true });
  await proxy.pipeline.whenCompiled();
  t.deepEqual(journal.provisioned, [1, 2]);
  t.deepEqual(journal.bound, ['r@1', 'r@2'], 'the unchanged route object was bound by the fresh instances too');
  t.is(chainOf((await call(`${proxy.url}/`)).body), 'test.gen#2');
  t.deepEqual(journal.disposed, [], 'generation 1 still has an exchange in flight');

  releaseHeld();
  t.is(chainOf((await held).body), 'test.gen#1', 'the held request finished on the generation it started on');
  while (journal.disposed.length === 0) await new Promise((r) => setTimeout(r, 5));
  t.deepEqual(journal.disposed, [1]);
  t.is(proxy.pipeline.generationsAlive, 1);
});

test('a shared plugin set is disposed only when the last generation using it is released', async (t) => {
  const journal: Journal = { created: 0, provisioned: [], disposed: [], failProvision: false };
  let releaseHeld: (() => void) | undefined;
  const origin = await startOrigin({
    handler: (req, res) => {
      if (req.url === '/hold') releaseHeld = () => res.end('held');
      else res.end('now');
    },
  });
  const route = testRoute({ id: 'r', endpoints: [origin.key] });
  const proxy = await startProxyHarness({ plugins: [{ module: chainPlugin('test.last', 'policy', 1, journal) }], table: testRouteTable([route], 1) });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  await proxy.setTable(testRouteTable([route], 2)); // shares set 1
  const held = call(`${proxy.url}/hold`); // on generation 2
  while (!releaseHeld) await new Promise((r) => setTimeout(r, 5));
  await proxy.setTable(testRouteTable([route], 3), { freshPlugins: true });
  t.deepEqual(journal.provisioned, [1, 2]);
  await new Promise((r) => setTimeout(r, 50));
  t.deepEqual(journal.disposed, [], 'generation 2 still uses set 1');
  releaseHeld();
  t.deepEqual(await held, { status: 200, body: 'held' });
  while (journal.disposed.length === 0) await new Promise((r) => setTimeout(r, 5));
  t.deepEqual(journal.disposed, [1]);
  t.is((await call(`${proxy.url}/`)).body, 'now');
});

test('a long-lived exchange does not pin its generation past the drain limit, and still completes', async (t) => {
  const journal: Journal = { created: 0, provisioned: [], disposed: [], failProvision: false };
  let releaseHeld: (() => void) | undefined;
  const origin = await startOrigin({
    handler: (req, res) => {
      if (req.url === '/hold') releaseHeld = () => res.end('late');
      else res.end('now');
    },
  });
  const route = (): Route => testRoute({ id: 'r', endpoints: [origin.key] });
  const proxy = await startProxyHarness({
    plugins: [{ module: chainPlugin('test.pinned', 'policy', 1, journal) }],
    table: testRouteTable([route()], 1),
    drainLimitMs: 100,
  });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const held = call(`${proxy.url}/hold`);
  while (!releaseHeld) await new Promise((r) => setTimeout(r, 5));
  await proxy.setTable(testRouteTable([route()], 2), { freshPlugins: true });
  while (journal.disposed.length === 0) await new Promise((r) => setTimeout(r, 5));
  t.deepEqual(journal.disposed, [1], 'generation 1 was released while its exchange still ran');
  t.is(proxy.pipeline.generationsAlive, 1);
  releaseHeld();
  t.deepEqual(await held, { status: 200, body: 'late' });
  t.is((await call(`${proxy.url}/`)).body, 'now');
});

test('a generation whose plugins fail to provision is rejected and the previous one keeps serving', async (t) => {
  const journal: Journal = { created: 0, provisioned: [], disposed: [], failProvision: false };
  const origin = await startOrigin();
  const proxy = await startProxyHarness({
    plugins: [{ module: chainPlugin('test.flaky', 'policy', 1, journal) }],
    table: testRouteTable([testRoute({ id: 'r', endpoints: [origin.key] })], 7),
  });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  journal.failProvision = true;
  const err = await t.throwsAsync(proxy.setTable(testRouteTable([testRoute({ id: 'r', endpoints: [] })], 8), { freshPlugins: true }));
  t.regex(err!.message, /test\.flaky refuses to provision/);
  t.is(proxy.pipeline.generation, 7);
  t.is((await call(`${proxy.url}/`)).status, 200);
  t.true(journal.disposed.includes(2), 'the half-built generation was disposed');
});

test('a plugin that cannot bind a route makes only that route unavailable, with its message', async (t) => {
  const journal: Journal = { created: 0, provisioned: [], disposed: [], failProvision: false };
  const origin = await startOrigin();
  const table = testRouteTable([
    testRoute({ host: 'bad.test', endpoints: [origin.key], annotations: { 'test-unbindable': 'test.picky' } }),
    testRoute({ host: 'good.test', endpoints: [origin.key] }),
  ]);
  const { logger, lines } = capturedLogger();
  const proxy = await startProxyHarness({ plugins: [{ module: chainPlugin('test.picky', 'policy', 1, journal) }], table, logger });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const bad = await call(`${proxy.url}/`, 'bad.test');
  t.is(bad.status, 502);
  t.regex(loggedError(lines, 'bad.test'), /test\.picky cannot serve/, "the log has the plugin's message");
  t.notRegex(bad.body, /test\.picky/, 'the client does not');
  t.is((await call(`${proxy.url}/`, 'good.test')).status, 200);
  t.is(origin.requests, 1);
});

test('a route whose protocol no enabled plugin serves is unavailable', async (t) => {
  const origin = await startOrigin();
  const { logger, lines } = capturedLogger();
  const proxy = await startProxyHarness({ table: testRouteTable([testRoute({ endpoints: [origin.key], protocol: 'h2c' })]), logger });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const reply = await call(`${proxy.url}/`);
  t.is(reply.status, 502);
  t.regex(loggedError(lines), /backend protocol "h2c" .* is served by no enabled plugin/);
  t.notRegex(reply.body, /h2c|plugin/, 'the client is not told the route or the protocol');
  t.is(origin.requests, 0);
});

test('tables published in a burst coalesce: only the newest is built', async (t) => {
  const journal: Journal = { created: 0, provisioned: [], disposed: [], failProvision: false };
  const origin = await startOrigin();
  const proxy = await startProxyHarness({ plugins: [{ module: chainPlugin('test.burst', 'policy', 1, journal) }] });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const tables = Array.from({ length: 10 }, (_, i) => testRouteTable([testRoute({ id: 'r', endpoints: [origin.key] })], i + 1));
  await Promise.all(tables.map((table) => proxy.setTable(table, { freshPlugins: true })));
  t.is(proxy.pipeline.generation, 10);
  t.true(journal.provisioned.length <= 3, `built ${journal.provisioned.length} generations for 10 tables`);
});

test('requests before the first table get 503; after close 503 too', async (t) => {
  const proxy = await startProxyHarness();
  t.teardown(() => proxy.close());
  const early = await call(`${proxy.url}/`);
  t.is(early.status, 503);
  t.regex(early.body, /routes are not loaded yet/);
  await proxy.pipeline.close(100);
  const late = await call(`${proxy.url}/`);
  t.is(late.status, 503);
  t.regex(late.body, /shutting down/);
});

test('following the route store, nothing routes before its first build: 503 "not loaded", and whenRouting waits for it', async (t) => {
  const origin = await startOrigin();
  const proxy = await startProxyHarness();
  const store = proxy.container.resolve(TOKENS.RouteStore);
  const stop = new AbortController();
  const serving = proxy.pipeline.start(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await serving;
    await Promise.all([proxy.close(), origin.close()]);
  });
  let routing = false;
  const whenRouting = proxy.pipeline.whenRouting(stop.signal).then(() => (routing = true));
  await new Promise((resolve) => setImmediate(resolve));
  // The store's placeholder (generation 0) is not a table: a 404 would say the host has no route.
  const early = await call(`${proxy.url}/`);
  t.is(early.status, 503);
  t.regex(early.body, /routes are not loaded yet/);
  t.false(routing);
  t.is(proxy.pipeline.generation, undefined);

  store.publish(testRouteTable([testRoute({ host: 'x.test', endpoints: [origin.key] })], 1));
  await whenRouting;
  t.is(proxy.pipeline.generation, 1);
  t.is((await call(`${proxy.url}/`)).status, 200);
});

test('whenRouting settles when its signal aborts, without a route table', async (t) => {
  const proxy = await startProxyHarness();
  t.teardown(() => proxy.close());
  const abort = new AbortController();
  const waiting = proxy.pipeline.whenRouting(abort.signal);
  abort.abort();
  await waiting;
  t.is(proxy.pipeline.generation, undefined);
});

test('whenRouting keeps nothing of a wait whose signal ended: connectors stopped before the first table do not stay reachable', async (t) => {
  const proxy = await startProxyHarness();
  t.teardown(() => proxy.close());
  const waits: Array<WeakRef<AbortSignal>> = [];
  // Each wait in its own function, so that nothing of it stays on this stack.
  const waitAndAbort = async (): Promise<void> => {
    const abort = new AbortController();
    const waiting = proxy.pipeline.whenRouting(abort.signal);
    waits.push(new WeakRef(abort.signal));
    abort.abort();
    await waiting;
  };
  for (let i = 0; i < 20; i++) await waitAndAbort();
  await new Promise((resolve) => setImmediate(resolve));
  gc();
  gc();
  t.is(waits.filter((w) => w.deref() !== undefined).length, 0, 'the signals of ended waits are collectable');
  t.is(proxy.pipeline.generation, undefined, 'still no route table: the waits ended by their signals');
});
