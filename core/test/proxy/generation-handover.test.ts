import test from 'ava';
import fc from 'fast-check';
import type { Route, RouteChanges, RouteTable } from '../../src/routes/types.js';
import { getText, startOrigin, startProxyHarness, testRoute, testRouteTable } from '../../src/testing/index.js';

/**
 * A generation that shares its predecessor's plugin set takes over the predecessor's compiled routes and applies
 * only the table's route changes. These tests pin that against a full compile of the same table.
 */

/** One step between tables: route slots replaced by new objects, dropped, or added. */
const stepArb = fc.record({
  replace: fc.array(fc.nat(), { maxLength: 3 }),
  drop: fc.array(fc.nat(), { maxLength: 2 }),
  add: fc.nat({ max: 2 }),
  /** Publish without waiting, so the next table replaces this one mid-compile (or before it was built). */
  burst: fc.boolean(),
  /** Send a request to one route (compiles it on first use) before the next step. */
  request: fc.option(fc.nat(), { nil: undefined }),
});

/** A test table that records its route changes against its predecessor, as an incrementally built table does. */
function recordedTable(routes: readonly Route[], generation: number, previous: RecordedTable | undefined, step: RouteChanges | undefined): RecordedTable {
  const table = testRouteTable(routes, generation) as RouteTable;
  return Object.freeze({
    ...table,
    routes: table.routes,
    match: table.match.bind(table),
    previous,
    step,
    routeChangesSince(older: RouteTable): RouteChanges | undefined {
      // Walk back to `older`, then compose the steps forward.
      const chain: RouteChanges[] = [];
      let t: RecordedTable | undefined = this as RecordedTable;
      while (t !== undefined && t !== older) {
        if (!t.step) return undefined;
        chain.unshift(t.step);
        t = t.previous;
      }
      if (t === undefined) return undefined;
      const added = new Set<Route>();
      const removed = new Set<Route>();
      for (const s of chain) {
        for (const r of s.removed) if (!added.delete(r)) removed.add(r);
        for (const r of s.added) if (!removed.delete(r)) added.add(r);
      }
      return { added: [...added], removed: [...removed] };
    },
  });
}

interface RecordedTable extends RouteTable {
  readonly previous: RecordedTable | undefined;
  readonly step: RouteChanges | undefined;
}

test('a generation that takes over its predecessor compiles exactly what a full compile of its table does', async (t) => {
  const origins = await Promise.all([startOrigin(), startOrigin(), startOrigin()]);
  t.teardown(() => Promise.all(origins.map((o) => o.close())));
  let serial = 0;
  const makeRoute = (slot: number, endpoint: number): Route =>
    testRoute({ id: `r${slot}-${++serial}`, host: `h${slot}.test`, service: `svc${endpoint}`, endpoints: [origins[endpoint % origins.length]!.key] });
  const deadline = Date.now() + 60_000;
  let takenOver = 0;

  await fc.assert(
    fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 8 }), fc.boolean(), async (steps, recorded) => {
      if (Date.now() > deadline) return true;
      // More routes than one background batch, so that generations are replaced while compiling.
      let slots: Route[] = Array.from({ length: 600 }, (_, i) => makeRoute(i, i));
      let table: RouteTable = recorded ? recordedTable(slots, 1, undefined, undefined) : testRouteTable(slots, 1);
      const proxy = await startProxyHarness({ table });
      try {
        await proxy.pipeline.whenCompiled();
        let pending: Promise<void> = Promise.resolve();
        for (const [i, step] of steps.entries()) {
          const next = [...slots];
          const added: Route[] = [];
          const removed: Route[] = [];
          for (const n of step.replace) {
            const at = n % next.length;
            removed.push(next[at]!);
            next[at] = makeRoute(at, n + 1);
            added.push(next[at]!);
          }
          for (const n of step.drop) {
            if (next.length <= 1) break;
            removed.push(...next.splice(n % next.length, 1));
          }
          for (let k = 0; k < step.add; k++) {
            const route = makeRoute(slots.length + 1000 + k, k);
            next.push(route);
            added.push(route);
          }
          // A route replaced and then dropped in the same step was never in a table.
          const change = { added: added.filter((r) => next.includes(r)), removed: removed.filter((r) => slots.includes(r)) };
          slots = next;
          table = recorded ? recordedTable(slots, i + 2, table as RecordedTable, change) : testRouteTable(slots, i + 2);
          pending = proxy.setTable(table);
          if (!step.burst) await pending;
          if (step.request !== undefined) {
            const route = slots[step.request % slots.length]!;
            const reply = await getText(`${proxy.url}/`, route.host!);
            if (reply.status !== 200 && proxy.pipeline.generation === table.generation) {
              t.fail(`request to ${route.host} answered ${reply.status}`);
              return false;
            }
          }
        }
        await pending;
        await proxy.pipeline.whenCompiled();
        const live = proxy.pipeline.liveCompiled!;
        const ids = (routes: Iterable<Route>) => [...routes].map((r) => r.id).sort();
        t.is(live.pending, 0);
        t.deepEqual(ids(live.routes.keys()), ids(table.routes), 'compiled routes are exactly the table routes');
        for (const [route, compiled] of live.routes) {
          if (compiled.route !== route) {
            t.fail(`route ${route.id} has the compiled form of another route object`);
            return false;
          }
        }
        const used = new Set([...live.routes.values()].flatMap((c) => [...c.poolKeys, ...(c.upgradePoolKeys ?? [])]));
        t.deepEqual([...live.pools].sort(), [...used].sort(), 'the generation holds exactly the pools its routes use');

        // Full recomputation: a fresh pipeline compiling the same table.
        const fresh = await startProxyHarness({ table: testRouteTable(table.routes, table.generation) });
        try {
          await fresh.pipeline.whenCompiled();
          const full = fresh.pipeline.liveCompiled!;
          const keysById = (m: ReadonlyMap<Route, { poolKeys: readonly string[] }>) => Object.fromEntries([...m].map(([r, c]) => [r.id, [...c.poolKeys].sort()]).sort());
          t.deepEqual(keysById(live.routes), keysById(full.routes));
          t.deepEqual([...live.pools].sort(), [...full.pools].sort());
        } finally {
          await fresh.close();
        }
        if (steps.length > 1) takenOver++;
        return true;
      } finally {
        await proxy.close();
      }
    }),
    { numRuns: 20 },
  );
  t.true(takenOver > 0);
});

test('a generation with a change record never reads its whole route list', async (t) => {
  const origin = await startOrigin();
  t.teardown(() => origin.close());
  const routes = Array.from({ length: 600 }, (_, i) => testRoute({ id: `big-${i}`, host: `b${i}.test`, endpoints: [origin.key] }));
  const first = recordedTable(routes, 1, undefined, undefined);
  const proxy = await startProxyHarness({ table: first });
  t.teardown(() => proxy.close());
  await proxy.pipeline.whenCompiled();

  const added = testRoute({ id: 'new', host: 'new.test', endpoints: [origin.key] });
  const next = recordedTable([...routes.slice(1), added], 2, first, { added: [added], removed: [routes[0]!] });
  let reads = 0;
  const watched = Object.create(next, {
    routes: {
      get: () => {
        reads++;
        return next.routes;
      },
    },
  }) as RecordedTable;
  await proxy.setTable(watched);
  await proxy.pipeline.whenCompiled();
  t.is(reads, 0, 'the hand-over applied the change record instead of visiting every route');
  t.is(proxy.pipeline.liveCompiled!.routes.size, 600);
  t.is((await getText(`${proxy.url}/`, 'new.test')).status, 200);
  t.is((await getText(`${proxy.url}/`, 'b0.test')).status, 404);
});
