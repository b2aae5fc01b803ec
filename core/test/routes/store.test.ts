import test from 'ava';
import { RouteTableBuilder } from '../../src/routes/build.js';
import { snapshotFromObjects } from '../../src/routes/snapshot.js';
import { RouteStore } from '../../src/routes/store.js';
import { emptyRouteTable } from '../../src/routes/table.js';
import type { RouteTable } from '../../src/routes/types.js';
import { testRoutingConfig } from './support.js';

function world(hosts: readonly string[]) {
  return snapshotFromObjects([
    { kind: 'IngressClass', metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } },
    { kind: 'Service', metadata: { name: 'echo', namespace: 'default' }, spec: { ports: [{ port: 80 }] } },
    ...hosts.map((host, i) => ({
      kind: 'Ingress',
      metadata: { name: `ing-${i}`, namespace: 'default' },
      spec: {
        ingressClassName: 'cloudflare-tunnel',
        rules: [{ host, http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'echo', port: { number: 80 } } } }] } }],
      },
    })),
  ]).snapshot;
}

test('starts with an empty table of generation 0 and swaps to each published table', (t) => {
  const store = new RouteStore();
  t.is(store.current.generation, 0);
  t.is(store.current.match('a.test', '/'), undefined);
  const builder = new RouteTableBuilder(testRoutingConfig());
  const first = builder.build(world(['a.test']));
  t.true(store.publish(first));
  t.is(store.current, first);
  t.truthy(store.current.match('a.test', '/'));
});

test('refuses a table that is not newer, and tells listeners only about accepted ones', (t) => {
  const store = new RouteStore();
  const seen: number[] = [];
  const unsubscribe = store.subscribe((table) => seen.push(table.generation));
  t.true(store.publish(emptyRouteTable(2)));
  t.false(store.publish(emptyRouteTable(1)), 'older generation refused');
  t.false(store.publish(emptyRouteTable(2)), 'equal generation refused');
  t.true(store.publish(store.current), 'republishing the current table is a no-op');
  t.true(store.publish(emptyRouteTable(5)));
  unsubscribe();
  t.true(store.publish(emptyRouteTable(6)));
  t.deepEqual(seen, [2, 5]);
  t.is(store.current.generation, 6);
});

test('a throwing listener does not stop the others, and its error is reported', (t) => {
  const errors: unknown[] = [];
  const store = new RouteStore(undefined, (err) => errors.push(err));
  let called = 0;
  store.subscribe(() => {
    throw new Error('listener bug');
  });
  store.subscribe(() => called++);
  t.true(store.publish(emptyRouteTable(1)));
  t.is(called, 1);
  t.is((errors[0] as Error).message, 'listener bug');
});

test('async iteration yields the current table, then the latest one after each wake-up', async (t) => {
  const store = new RouteStore();
  const controller = new AbortController();
  const seen: number[] = [];
  const done = (async () => {
    for await (const table of store.changes(controller.signal)) {
      seen.push(table.generation);
      if (table.generation === 3) controller.abort();
    }
  })();
  await new Promise((r) => setImmediate(r));
  // Two publishes before the consumer runs again: it skips to the latest (level-based).
  store.publish(emptyRouteTable(1));
  store.publish(emptyRouteTable(2));
  await new Promise((r) => setImmediate(r));
  store.publish(emptyRouteTable(3));
  await done;
  t.deepEqual(seen, [0, 2, 3]);
});

test('breaking out of iteration unsubscribes', async (t) => {
  const store = new RouteStore();
  let count = 0;
  for await (const table of store) {
    count++;
    if (table.generation === 0) break;
  }
  t.is(count, 1);
  // No listener is left behind: publishing must not resume anything.
  t.true(store.publish(emptyRouteTable(1)));
});

test('waitFor resolves with the first matching table, now or later, and times out otherwise', async (t) => {
  const store = new RouteStore();
  const builder = new RouteTableBuilder(testRoutingConfig());
  const immediate = await store.waitFor((table) => table.generation === 0);
  t.is(immediate.generation, 0);

  const pending = store.waitFor((table: RouteTable) => table.match('b.test', '/') !== undefined, { timeout: 5000 });
  store.publish(builder.build(world(['a.test'])));
  store.publish(builder.build(world(['a.test', 'b.test'])));
  const table = await pending;
  t.is(table.generation, 2);

  const error = await t.throwsAsync(store.waitFor(() => false, { timeout: 20 }));
  t.regex(error!.message, /no route table matched within 20 ms \(generation 2\)/);

  const controller = new AbortController();
  const aborted = store.waitFor(() => false, { signal: controller.signal });
  controller.abort(new Error('stopped'));
  await t.throwsAsync(aborted, { message: 'stopped' });

  await t.throwsAsync(
    store.waitFor(() => {
      throw new Error('predicate bug');
    }),
    { message: 'predicate bug' },
  );
});

test('builders started later continue the generation sequence', (t) => {
  const store = new RouteStore();
  store.publish(new RouteTableBuilder(testRoutingConfig()).build(world(['a.test'])));
  const replacement = new RouteTableBuilder(testRoutingConfig({ ingressClass: { watchWithoutClass: true } }), {
    firstGeneration: store.current.generation + 1,
  });
  t.true(store.publish(replacement.build(world(['a.test']))));
  t.is(store.current.generation, 2);
});
