import test from 'ava';
import { setImmediate as tick } from 'node:timers/promises';
import { deferredListener, RouteStore } from '../../src/routes/store.js';
import { emptyRouteTable } from '../../src/routes/table.js';

test('a deferred listener runs after publish returns, once per burst, with the newest table', async (t) => {
  const store = new RouteStore();
  const seen: number[] = [];
  const order: string[] = [];
  store.subscribe(
    deferredListener((table) => {
      seen.push(table.generation);
      order.push('deferred');
    }),
  );
  store.subscribe(() => order.push('direct'));
  store.publish(emptyRouteTable(1));
  store.publish(emptyRouteTable(2));
  store.publish(emptyRouteTable(3));
  t.deepEqual(seen, [], 'nothing ran inside publish');
  await tick();
  t.deepEqual(seen, [3]);
  t.deepEqual(order, ['direct', 'direct', 'direct', 'deferred']);
  store.publish(emptyRouteTable(4));
  await tick();
  t.deepEqual(seen, [3, 4], 'a later publish schedules it again');
});
