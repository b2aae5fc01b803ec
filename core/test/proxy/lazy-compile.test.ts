import test from 'ava';
import { z } from 'zod';
import { injectable } from '../../src/plugin-api/index.js';
import { defineManifest } from '../../src/plugin-api/manifest.js';
import { definePlugin } from '../../src/plugin-api/module.js';
import type { EventSink, ProvisionContext } from '../../src/plugin-api/lifecycle.js';
import type { RouteBinding, UpstreamPlugin } from '../../src/plugin-api/upstream.js';
import type { Route } from '../../src/routes/types.js';
import { getText, startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';

const call = (url: string, host: string) => getText(url, host);

/** Route ids each plugin instance (one per plugin set, in creation order) bound. */
type BindJournal = string[][];

/** A policy plugin that records every `bind` and raises a Warning for routes annotated `test-warn`. */
function bindRecorder(journal: BindJournal) {
  @injectable()
  class BindRecorder implements UpstreamPlugin {
    readonly #bound: string[] = [];
    #events: EventSink | undefined;

    constructor() {
      journal.push(this.#bound);
    }

    provision(ctx: ProvisionContext): void {
      this.#events = ctx.events;
    }

    bind(route: Route): RouteBinding {
      this.#bound.push(route.id);
      if (route.annotations['test-warn']) {
        this.#events?.warning(
          { kind: 'Ingress', namespace: route.ingress.namespace, name: route.ingress.name, uid: route.ingress.uid },
          'TestBindWarning',
          `route ${route.id} warned`,
        );
      }
      return { route, options: {} };
    }
  }
  const manifest = defineManifest({
    id: 'test.binds',
    name: 'test-binds',
    description: 'test',
    coreRange: '^0.1.0',
    kind: 'policy',
    order: 1,
    configSchema: z.object({}).strict(),
  });
  return definePlugin({ manifest, plugin: BindRecorder });
}

/** `count` routes, one host each (`h<i>.test`), to `endpoint`. */
function manyRoutes(count: number, endpoint: string, tag: string): Route[] {
  return Array.from({ length: count }, (_, i) => testRoute({ id: `${tag}-${i}`, host: `h${i}.test`, endpoints: [endpoint] }));
}

test('the new generation serves before its routes are compiled; a request compiles its route once, the rest compile in the background', async (t) => {
  const journal: BindJournal = [];
  const origin = await startOrigin();
  const proxy = await startProxyHarness({ plugins: [{ module: bindRecorder(journal) }] });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const routes = manyRoutes(2_000, origin.key, 'r');

  await proxy.setTable(testRouteTable(routes, 1));
  t.is(proxy.pipeline.generation, 1, 'live as soon as the plugins are provisioned');
  t.is(journal.length, 1);
  t.true(journal[0]!.length < routes.length, 'not every route was compiled before the swap');

  const reply = await call(`${proxy.url}/`, 'h1500.test');
  t.is(reply.status, 200);
  t.true(journal[0]!.includes('r-1500'), 'the request compiled its route');

  await proxy.pipeline.whenCompiled();
  t.is(journal[0]!.length, routes.length, 'every route was bound exactly once (memoized)');
  t.deepEqual([...journal[0]!].sort(), routes.map((r) => r.id).sort());
  t.is((await call(`${proxy.url}/`, 'h1999.test')).status, 200);
  t.is(journal[0]!.length, routes.length, 'a compiled route is not compiled again');
});

test('warnings that plugins raise in bind appear without any request', async (t) => {
  const journal: BindJournal = [];
  const origin = await startOrigin();
  const proxy = await startProxyHarness({ plugins: [{ module: bindRecorder(journal) }] });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));
  const routes = manyRoutes(1_000, origin.key, 'w');
  routes.push(testRoute({ id: 'warned', ingress: 'noisy', host: 'noisy.test', endpoints: [origin.key], annotations: { 'test-warn': true } }));

  await proxy.setTable(testRouteTable(routes, 1));
  await proxy.pipeline.whenCompiled();
  const warnings = proxy.events.records.filter((e) => e.reason === 'TestBindWarning');
  t.is(warnings.length, 1);
  t.is(warnings[0]!.object.name, 'noisy');
  t.is(warnings[0]!.message, 'route warned warned');
});

test('a generation replaced before it finished compiling stops compiling and is released', async (t) => {
  const journal: BindJournal = [];
  const origin = await startOrigin();
  const proxy = await startProxyHarness({ plugins: [{ module: bindRecorder(journal) }] });
  t.teardown(() => Promise.all([proxy.close(), origin.close()]));

  await proxy.setTable(testRouteTable(manyRoutes(5_000, origin.key, 'big'), 1));
  await proxy.setTable(testRouteTable(manyRoutes(3, origin.key, 'small'), 2));
  await proxy.pipeline.whenCompiled();
  // Let any batch the first generation had scheduled run.
  await new Promise((r) => setImmediate(r));
  t.is(journal.length, 1, 'both generations share one plugin instance');
  const bound = journal[0]!;
  t.true(bound.filter((id) => id.startsWith('big-')).length < 5_000, 'the replaced generation did not compile its whole table');
  t.is(bound.filter((id) => id.startsWith('small-')).length, 3);
  t.is(proxy.pipeline.generationsAlive, 1);
  t.is((await call(`${proxy.url}/`, 'h2.test')).status, 200);
  t.is((await call(`${proxy.url}/`, 'h3.test')).status, 404, 'the route of the replaced generation is gone');
});

test('pools survive a swap to a generation that has not compiled their routes yet, and close once no route needs them', async (t) => {
  const first = await startOrigin();
  const second = await startOrigin();
  const proxy = await startProxyHarness();
  t.teardown(() => Promise.all([proxy.close(), first.close(), second.close()]));
  const route = (endpoint: string) => testRoute({ id: 'p', host: 'p.test', endpoints: [endpoint] });
  // Many routes to another (never used) endpoint come first, so that route `p` compiles batches after the swap.
  const filler = manyRoutes(3_000, '127.0.0.1:9', 'f');

  await proxy.setTable(testRouteTable([route(first.key)], 1));
  t.is((await call(`${proxy.url}/`, 'p.test')).status, 200);
  t.is(proxy.pipeline.openPools, 1);

  await proxy.setTable(testRouteTable([...filler, route(first.key)], 2));
  for (let i = 0; i < 1_000 && proxy.pipeline.generationsAlive > 1; i++) await new Promise((r) => setImmediate(r));
  t.is(proxy.pipeline.generationsAlive, 1, 'generation 1 had nothing in flight and was released');
  t.is(proxy.pipeline.openPools, 1, 'its pool stays open while generation 2 compiles');
  await proxy.pipeline.whenCompiled();
  t.is(proxy.pipeline.openPools, 1, 'the compiled route holds it now');

  await proxy.setTable(testRouteTable([route(second.key)], 3));
  await proxy.pipeline.whenCompiled();
  t.is(proxy.pipeline.openPools, 0, 'the pool of the old endpoint closed once no generation could use it');
  t.is((await call(`${proxy.url}/`, 'p.test')).status, 200);
  t.is(proxy.pipeline.openPools, 1);
});
