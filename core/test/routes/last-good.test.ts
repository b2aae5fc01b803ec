/**
 * Keeping good config: a new version of a routed Ingress that is rejected for its `warren.dev/` annotations does
 * not take the Ingress offline; the last good version keeps serving (against current endpoints) and the Warning
 * says so. A new Ingress with a bad annotation stays unrouted. The kept version is dropped when the Ingress is
 * deleted, recreated or leaves Warren's class.
 */
import test from 'ava';
import type { V1EndpointSlice, V1Ingress } from '@kubernetes/client-node';
import pino from 'pino';
import { RouteTableBuilder } from '../../src/routes/build.js';
import { RouteStore } from '../../src/routes/store.js';
import { snapshotFromObjects, type MutableClusterSnapshot } from '../../src/routes/snapshot.js';
import { RouteEventsReporter } from '../../src/reconcile/route-events.js';
import { failClosedCounts } from '../../src/reconcile/route-sync.js';
import { MemoryEvents } from '../../src/proxy/testing.js';
import { canonical, testRoutingConfig } from './support.js';

const KEY = 'default/shop';

function ingress(generation: number, timeout: string, options: { uid?: string; hosts?: string[]; className?: string } = {}): V1Ingress {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      name: 'shop',
      namespace: 'default',
      uid: options.uid ?? 'uid-1',
      generation,
      resourceVersion: `rv-${generation}-${options.uid ?? 'uid-1'}-${options.className ?? ''}`,
      creationTimestamp: new Date('2026-01-01T00:00:00Z'),
      annotations: { 'warren.dev/connect-timeout': timeout },
    },
    spec: {
      ingressClassName: options.className ?? 'cloudflare-tunnel',
      rules: (options.hosts ?? ['shop.example']).map((host) => ({
        host,
        http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] },
      })),
    },
  };
}

function slice(...addresses: string[]): V1EndpointSlice {
  return {
    kind: 'EndpointSlice',
    metadata: { name: 'web-1', namespace: 'default', resourceVersion: addresses.join(','), labels: { 'kubernetes.io/service-name': 'web' } },
    addressType: 'IPv4',
    ports: [{ port: 8080 }],
    endpoints: addresses.map((a) => ({ addresses: [a] })),
  };
}

function world(first: V1Ingress): MutableClusterSnapshot {
  const { snapshot } = snapshotFromObjects([
    { kind: 'IngressClass', metadata: { name: 'cloudflare-tunnel' }, spec: { controller: 'warren.dev/ingress-controller' } },
    { kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { ports: [{ port: 80 }] } },
  ]);
  snapshot.endpointSlices.set('default/web-1', slice('198.18.0.2'));
  snapshot.ingresses.set(KEY, first);
  return snapshot;
}

const endpointsOf = (route: { backend: { endpoints: readonly { key: string }[] } } | undefined) => route?.backend.endpoints.map((e) => e.key);

test('a rejected edit of a routed Ingress keeps its last good version serving, with current endpoints', (t) => {
  const snapshot = world(ingress(1, '5s'));
  const builder = new RouteTableBuilder(testRoutingConfig());
  let table = builder.build(snapshot);
  t.is(table.match('shop.example', '/')?.annotations['connect-timeout'], 5000);

  // Generation 2 has a typo and a new host: neither applies, generation 1 keeps serving.
  snapshot.ingresses.set(KEY, ingress(2, '5 seconds', { hosts: ['shop.example', 'new.example'] }));
  table = builder.build(snapshot);
  const route = table.match('shop.example', '/');
  t.is(route?.backend.service, 'web');
  t.is(route?.annotations['connect-timeout'], 5000);
  t.is(route?.ingress.generation, 1, 'the route comes from the last good generation');
  t.is(table.match('new.example', '/'), undefined, "the rejected version's new host is not routed");
  t.deepEqual(
    table.ownedIngresses.map((r) => r.generation),
    [2],
    'ownership (status) follows the current version',
  );
  const warning = table.diagnostics.find((d) => d.reason === 'InvalidAnnotation');
  t.is(warning?.field, 'metadata.annotations["warren.dev/connect-timeout"]');
  t.regex(warning?.message ?? '', /Ingress default\/shop: annotation warren\.dev\/connect-timeout has value "5 seconds"/);
  t.regex(warning?.message ?? '', /generation 2 is not applied: Warren keeps serving the last good version \(generation 1\)/);
  t.notRegex(warning?.message ?? '', /all routes of this Ingress are skipped/);

  // The same routes a fresh build of the last good version gives.
  const routesOf = (x: ReturnType<typeof canonical>) => (x as { routes: unknown }).routes;
  t.deepEqual(routesOf(canonical(table)), routesOf(canonical(new RouteTableBuilder(testRoutingConfig()).build(world(ingress(1, '5s'))))));

  // Endpoints keep following the cluster while the rejected version stands.
  snapshot.endpointSlices.set('default/web-1', slice('198.18.0.3', '198.18.0.4'));
  table = builder.build(snapshot);
  t.deepEqual(endpointsOf(table.match('shop.example', '/')), ['198.18.0.3:8080', '198.18.0.4:8080']);
  t.is(table.match('shop.example', '/')?.ingress.generation, 1);

  // A fixed generation 3 applies in full.
  snapshot.ingresses.set(KEY, ingress(3, '7s', { hosts: ['shop.example', 'new.example'] }));
  table = builder.build(snapshot);
  t.is(table.match('new.example', '/')?.annotations['connect-timeout'], 7000);
  t.is(table.match('shop.example', '/')?.ingress.generation, 3);
  t.false(table.diagnostics.some((d) => d.reason === 'InvalidAnnotation'));

  // The last good version is now generation 3: a new typo falls back to it, not to generation 1.
  snapshot.ingresses.set(KEY, ingress(4, 'x'));
  table = builder.build(snapshot);
  t.is(table.match('new.example', '/')?.ingress.generation, 3);
  t.regex(table.diagnostics.find((d) => d.reason === 'InvalidAnnotation')?.message ?? '', /generation 4 is not applied.*generation 3/);
});

test('without generations (objects from files) the Warning does not name any', (t) => {
  const unversioned = (timeout: string, host: string): V1Ingress => {
    const object = ingress(1, timeout, { hosts: [host] });
    delete object.metadata!.generation;
    delete object.metadata!.uid;
    object.metadata!.resourceVersion = undefined;
    return object;
  };
  const snapshot = world(unversioned('5s', 'shop.example'));
  const builder = new RouteTableBuilder(testRoutingConfig());
  builder.build(snapshot);
  snapshot.ingresses.set(KEY, unversioned('soon', 'new.example'));
  const table = builder.build(snapshot);
  t.is(table.match('shop.example', '/')?.annotations['connect-timeout'], 5000);
  t.is(table.match('new.example', '/'), undefined);
  t.regex(
    table.diagnostics.find((d) => d.reason === 'InvalidAnnotation')?.message ?? '',
    /"soon"; expected .*; this version is not applied: Warren keeps serving the last good version until this is fixed$/,
  );
});

test('a new Ingress with an invalid annotation stays unrouted', (t) => {
  const table = new RouteTableBuilder(testRoutingConfig()).build(world(ingress(1, 'soon')));
  t.is(table.match('shop.example', '/'), undefined);
  t.regex(table.diagnostics.find((d) => d.reason === 'InvalidAnnotation')?.message ?? '', /all routes of this Ingress are skipped/);
});

test('the last good version is dropped when the Ingress is deleted, recreated or leaves the class', (t) => {
  const cases: Array<[string, (s: MutableClusterSnapshot, b: RouteTableBuilder) => void]> = [
    [
      'deleted, then created again with a typo',
      (s, b) => {
        s.ingresses.delete(KEY);
        b.build(s);
        s.ingresses.set(KEY, ingress(1, 'soon', { uid: 'uid-1' }));
      },
    ],
    ['replaced by a new object (new uid) with a typo', (s) => s.ingresses.set(KEY, ingress(1, 'soon', { uid: 'uid-2' }))],
    [
      'moved to another class, then back with a typo',
      (s, b) => {
        s.ingresses.set(KEY, ingress(2, '5s', { className: 'other' }));
        b.build(s);
        s.ingresses.set(KEY, ingress(3, 'soon'));
      },
    ],
  ];
  for (const [name, change] of cases) {
    const snapshot = world(ingress(1, '5s'));
    const builder = new RouteTableBuilder(testRoutingConfig());
    t.truthy(builder.build(snapshot).match('shop.example', '/'), name);
    change(snapshot, builder);
    const table = builder.build(snapshot);
    t.is(table.match('shop.example', '/'), undefined, `${name}: unrouted`);
    t.regex(table.diagnostics.find((d) => d.reason === 'InvalidAnnotation')?.message ?? '', /all routes of this Ingress are skipped/, name);
  }
});

test('no Synced event for a generation that was rejected while the last good one serves', async (t) => {
  const snapshot = world(ingress(1, '5s'));
  const builder = new RouteTableBuilder(testRoutingConfig());
  const store = new RouteStore();
  const events = new MemoryEvents();
  const controller = new AbortController();
  const reporter = new RouteEventsReporter({ store, events, logger: pino({ level: 'silent' }) });
  const running = reporter.start(controller.signal);
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  store.publish(builder.build(snapshot));
  await settle();
  snapshot.ingresses.set(KEY, ingress(2, '5 seconds'));
  store.publish(builder.build(snapshot));
  await settle();
  snapshot.ingresses.set(KEY, ingress(3, '6s'));
  store.publish(builder.build(snapshot));
  await settle();
  controller.abort();
  await running;
  const synced = events.records.filter((r) => r.reason === 'Synced').map((r) => r.message);
  t.deepEqual(synced, ['Ingress generation 3 is routed: 1 route']);
  t.true(events.records.some((r) => r.type === 'Warning' && /generation 2 is not applied/.test(r.message)));
});

test('the route table gauges count rejected Ingresses and unresolved routes', (t) => {
  const snapshot = world(ingress(1, '5s'));
  const builder = new RouteTableBuilder(testRoutingConfig());
  t.deepEqual(failClosedCounts(builder.build(snapshot)), { rejectedIngresses: 0, unresolvedRoutes: 0 });
  snapshot.ingresses.set(KEY, ingress(2, '5 seconds'));
  const broken = ingress(1, '5s', { uid: 'uid-9', hosts: ['other.example'] });
  broken.metadata = { ...broken.metadata, name: 'other', resourceVersion: 'other-1' };
  broken.spec!.rules![0]!.http!.paths[0]!.backend.service!.name = 'missing';
  snapshot.ingresses.set('default/other', broken);
  t.deepEqual(failClosedCounts(builder.build(snapshot)), { rejectedIngresses: 1, unresolvedRoutes: 1 });
});
