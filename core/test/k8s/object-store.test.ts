import type { V1EndpointSlice, V1Ingress, V1IngressClass, V1Service } from '@kubernetes/client-node';
import test from 'ava';
import fc from 'fast-check';
import { setFlagsFromString } from 'node:v8';
import { trimForCache } from '../../src/k8s/kinds.js';
import { ObjectStore, onlyStatusChanged } from '../../src/k8s/object-store.js';
import { RouteTableBuilder } from '../../src/routes/build.js';
import { testRoutingConfig } from '../routes/support.js';
import { CLASS_NAME, endpointSlice, ingress, ingressClass, service } from '../support/k8s-objects.js';

const ing = (name: string, rv: string, extra: Partial<V1Ingress['metadata']> = {}, status?: string): V1Ingress => ({
  metadata: { name, namespace: 'ns', resourceVersion: rv, generation: 1, annotations: { a: '1' }, ...extra },
  spec: { ingressClassName: 'cloudflare-tunnel' },
  ...(status ? { status: { loadBalancer: { ingress: [{ hostname: status }] } } } : {}),
});

test('snapshots are copy-on-write: later writes never show in a snapshot already handed out', (t) => {
  const store = new ObjectStore<V1Ingress>();
  store.upsert('ns/a', ing('a', '1'));
  const first = store.snapshot();
  t.is(store.snapshot(), first, 'no copy while nothing changed');
  store.upsert('ns/b', ing('b', '2'));
  store.delete('ns/a');
  t.deepEqual([...first.keys()], ['ns/a']);
  t.deepEqual([...store.snapshot().keys()], ['ns/b']);
});

test('every snapshot equals a full copy of the cache at its time, through many writes and folds', (t) => {
  fc.assert(
    fc.property(fc.array(fc.record({ key: fc.nat({ max: 150 }), remove: fc.boolean(), snapshot: fc.boolean() }), { minLength: 1, maxLength: 600 }), (writes) => {
      const store = new ObjectStore<V1Ingress>();
      const taken: Array<{ view: ReadonlyMap<string, V1Ingress>; copy: Map<string, V1Ingress> }> = [];
      const live = new Map<string, V1Ingress>();
      let rv = 0;
      for (const w of writes) {
        const key = `ns/i${w.key}`;
        if (w.remove) {
          store.delete(key);
          live.delete(key);
        } else {
          const obj = ing(`i${w.key}`, String(++rv));
          store.upsert(key, obj);
          live.set(key, obj);
        }
        if (w.snapshot) taken.push({ view: store.snapshot(), copy: new Map(live) });
      }
      taken.push({ view: store.snapshot(), copy: new Map(live) });
      for (const { view, copy } of taken) {
        const entries = new Map<string, V1Ingress>();
        view.forEach((value, key) => {
          entries.set(key, value);
        });
        const sorted = (m: Iterable<[string, V1Ingress]>) => [...m].sort(([a], [b]) => (a < b ? -1 : 1));
        if (view.size !== copy.size || JSON.stringify(sorted(view)) !== JSON.stringify(sorted(copy)) || JSON.stringify(sorted(entries)) !== JSON.stringify(sorted(copy))) {
          t.deepEqual(sorted(view), sorted(copy));
          return false;
        }
        for (const key of ['ns/i0', 'ns/i1', 'ns/i77', 'ns/missing']) if (view.get(key) !== copy.get(key) || view.has(key) !== copy.has(key)) return false;
      }
      return true;
    }),
    { numRuns: 60 },
  );
  t.pass();
});

test('a relist applies as one diff: deletions, additions and updates within its scope only', (t) => {
  const store = new ObjectStore<V1Ingress>();
  store.upsert('ns/a', ing('a', '1'));
  store.upsert('ns/b', ing('b', '1'));
  store.upsert('other/c', ing('c', '1'));
  store.takeChanges();
  const changes = store.replace(
    new Map([
      ['ns/b', ing('b', '2')],
      ['ns/d', ing('d', '1')],
    ]),
    (k) => k.startsWith('ns/'),
  );
  t.deepEqual(Object.fromEntries(changes), { 'ns/a': 'deleted', 'ns/b': 'updated', 'ns/d': 'added' });
  t.deepEqual([...store.snapshot().keys()].sort(), ['ns/b', 'ns/d', 'other/c']);
  t.deepEqual(store.takeChanges().sort(), ['ns/a', 'ns/b', 'ns/d']);
  t.deepEqual(store.takeChanges(), []);
  t.is(store.upsert('ns/b', ing('b', '2')), undefined, 'the same resourceVersion is no change');
});

test('updates that cannot change routes are classified status-only', (t) => {
  const store = new ObjectStore<V1Ingress>(onlyStatusChanged);
  store.upsert('ns/a', ing('a', '1'));
  t.is(store.upsert('ns/a', ing('a', '2', {}, 'x.cfargotunnel.com')), 'status-only');
  t.is(store.upsert('ns/a', ing('a', '3', { finalizers: ['warren.dev/cleanup'] })), 'status-only');
  t.is(store.upsert('ns/a', ing('a', '4', { annotations: { a: '2' } })), 'updated');
  t.is(store.upsert('ns/a', ing('a', '5', { annotations: { a: '2' }, generation: 2 })), 'updated');
  t.is(store.upsert('ns/a', ing('a', '6', { annotations: { a: '2' }, generation: 2, labels: { team: 'x' } })), 'updated');
  t.is(store.upsert('ns/a', ing('a', '7', { annotations: { a: '2' }, generation: 2, labels: { team: 'x' }, deletionTimestamp: new Date() })), 'updated');
});

test('a status-only update shares the unchanged spec and metadata with the version the route builder holds', (t) => {
  const store = new ObjectStore<V1Ingress>(onlyStatusChanged);
  const before = ing('a', '1', { uid: 'u-1', labels: { team: 'x' } });
  store.upsert('ns/a', before);
  const written = ing('a', '2', { uid: 'u-1', labels: { team: 'x' } }, 'x.cfargotunnel.com');
  t.is(store.upsert('ns/a', written), 'status-only');
  const cached = store.get('ns/a')!;
  t.is(cached.spec, before.spec, 'one spec for both versions');
  t.is(cached.metadata!.annotations, before.metadata!.annotations);
  t.is(cached.metadata!.labels, before.metadata!.labels);
  t.is(cached.metadata!.resourceVersion, '2');
  t.deepEqual(cached.status, { loadBalancer: { ingress: [{ hostname: 'x.cfargotunnel.com' }] } });
  // A routing change keeps its own spec.
  const changed = ing('a', '3', { uid: 'u-1', labels: { team: 'x' }, generation: 2 });
  t.is(store.upsert('ns/a', changed), 'updated');
  t.is(store.get('ns/a')!.spec, changed.spec);
  t.not(store.get('ns/a')!.spec, before.spec);
});

test('cached objects lose managedFields and the last-applied copy, nothing else', (t) => {
  const obj = ing('a', '1', {
    managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
    annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{"huge":true}', 'warren.dev/connect-timeout': '5s' },
  });
  trimForCache(obj);
  t.is(obj.metadata?.managedFields, undefined);
  t.deepEqual(obj.metadata?.annotations, { 'warren.dev/connect-timeout': '5s' });
  t.is(obj.metadata?.resourceVersion, '1');
});

test('trimming keeps cached metadata a plain fast object (no hash-table properties), as the API server sent it', (t) => {
  setFlagsFromString('--allow-natives-syntax');
  const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;
  // Property order as the API server writes it: managedFields last but one.
  const wire = JSON.parse(
    JSON.stringify({
      metadata: {
        name: 'a',
        namespace: 'ns',
        uid: 'u-1',
        resourceVersion: '7',
        generation: 1,
        creationTimestamp: '2026-01-01T00:00:00Z',
        annotations: { 'kubectl.kubernetes.io/last-applied-configuration': '{}', 'warren.dev/connect-timeout': '5s' },
        managedFields: [{ manager: 'kubectl', operation: 'Apply' }],
        finalizers: ['warren.dev/cleanup'],
      },
      spec: { ingressClassName: CLASS_NAME },
    }),
  ) as V1Ingress;
  t.true(hasFastProperties(wire.metadata!), 'parsed JSON starts fast');
  trimForCache(wire);
  t.true(hasFastProperties(wire.metadata!), 'metadata without managedFields');
  t.true(hasFastProperties(wire.metadata!.annotations!), 'annotations without the last-applied copy');
  t.deepEqual(Object.keys(wire.metadata!), ['name', 'namespace', 'uid', 'resourceVersion', 'generation', 'creationTimestamp', 'annotations', 'finalizers']);
});

test('status writes are left out of the changes, so the next incremental build keeps every route it had', (t) => {
  const ingresses = new ObjectStore<V1Ingress>(onlyStatusChanged);
  const services = new ObjectStore<V1Service>(onlyStatusChanged);
  const slices = new ObjectStore<V1EndpointSlice>();
  const classes = new ObjectStore<V1IngressClass>(onlyStatusChanged);
  classes.upsert(CLASS_NAME, { ...ingressClass(), metadata: { name: CLASS_NAME, resourceVersion: '1', generation: 1 } });
  services.upsert('ns/web', { ...service('ns', 'web', [{ port: 80 }]), metadata: { name: 'web', namespace: 'ns', resourceVersion: '1', generation: 1 } });
  slices.upsert('ns/web-slice', endpointSlice('ns', 'web', ['198.18.0.2'], 80));
  const versioned = (i: number, rv: string, status?: string): V1Ingress => {
    const obj = ingress('ns', `app-${i}`, {
      rules: [
        {
          host: `app-${i}.test`,
          paths: [
            { service: 'web', port: 80 },
            { path: '/api', service: 'web', port: 80 },
          ],
        },
      ],
    });
    return { ...obj, metadata: { ...obj.metadata, resourceVersion: rv, generation: 1 }, ...(status ? { status: { loadBalancer: { ingress: [{ hostname: status }] } } } : {}) };
  };
  const count = 500;
  for (let i = 0; i < count; i++) ingresses.upsert(`ns/app-${i}`, versioned(i, '1'));
  const snapshot = () => ({
    ingresses: ingresses.snapshot(),
    ingressClasses: classes.snapshot(),
    services: services.snapshot(),
    endpointSlices: slices.snapshot(),
    secrets: new Map(),
  });
  const take = () => ({ ingresses: ingresses.takeChanges(), ingressClasses: classes.takeChanges(), services: services.takeChanges(), endpointSlices: slices.takeChanges() });
  const builder = new RouteTableBuilder(testRoutingConfig());
  take();
  const first = builder.build(snapshot());
  t.is(first.routes.length, 2 * count);

  // Status written on every Ingress (as at start-up), then one new Ingress.
  for (let i = 0; i < count; i++) t.is(ingresses.upsert(`ns/app-${i}`, versioned(i, '2', 'tunnel.cfargotunnel.com')), 'status-only');
  ingresses.upsert(`ns/app-${count}`, versioned(count, '3'));
  // A status write after a real change of the same key still lists it.
  ingresses.upsert('ns/app-7', { ...versioned(7, '4', 'tunnel.cfargotunnel.com'), metadata: { ...versioned(7, '4').metadata, annotations: { changed: 'yes' } } });
  ingresses.upsert('ns/app-7', { ...versioned(7, '5', 'other.cfargotunnel.com'), metadata: { ...versioned(7, '5').metadata, annotations: { changed: 'yes' } } });
  const changes = take();
  t.deepEqual([...changes.ingresses].sort(), [`ns/app-${count}`, 'ns/app-7']);

  const next = builder.build(snapshot(), changes);
  t.is(next.routes.length, 2 * (count + 1));
  const before = new Set(first.routes);
  const kept = next.routes.filter((r) => before.has(r)).length;
  t.is(kept, 2 * (count - 1), 'only the routes of the Ingress that really changed are new');
  t.truthy(next.match(`app-${count}.test`, '/'));
});
