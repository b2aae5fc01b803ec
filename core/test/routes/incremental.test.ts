/**
 * Incremental builds must give exactly the table a fresh build of the same snapshot gives, whether the builder
 * finds the changes itself or is handed them, with and without a route source besides Ingress; published tables
 * must never change afterwards; unchanged routes keep their identity.
 */
import test from 'ava';
import fc from 'fast-check';
import type { KubernetesObject, V1EndpointSlice, V1Ingress, V1IngressClass, V1Service } from '@kubernetes/client-node';
import { RoutedIngresses } from '../../src/reconcile/route-events.js';
import { RouteTableBuilder } from '../../src/routes/build.js';
import { emptyRouteTable, routeChangesBetween } from '../../src/routes/table.js';
import type { MutableClusterSnapshot, SnapshotChanges } from '../../src/routes/snapshot.js';
import type { RouteSource } from '../../src/routes/sources.js';
import type { RequestFacts, Route, RouteTable } from '../../src/routes/types.js';
import { canonical, FAKE_KIND, type FakeRoute, type FakeRule, fakeRouteSource, testRoutingConfig } from './support.js';

const HOSTS = ['a.test', 'b.test', '*.w.test', 'x.w.test', undefined] as const;
const PATHS = ['/', '/api', '/api/', '/api/v1', '/static'] as const;
const SERVICES = ['s0', 's1', 's2', 's3'] as const;
const ANNOTATIONS = [
  {},
  { 'warren.dev/connect-timeout': '5s' },
  { 'warren.dev/connect-timeout': 'soon' },
  { 'warren.dev/backend-protocol': 'GRPC' },
  { 'warren.dev/proxy-ssl-secret': 'ca' },
] as const;

let version = 0;
const rv = () => String(++version);

const ingressArb = fc.record({
  rules: fc.array(
    fc.record({
      host: fc.constantFrom(...HOSTS),
      paths: fc.array(
        fc.record({
          path: fc.constantFrom(...PATHS),
          type: fc.constantFrom('Exact', 'Prefix', 'ImplementationSpecific'),
          service: fc.constantFrom(...SERVICES, 'missing'),
          port: fc.constantFrom<{ number: number } | { name: string }>({ number: 80 }, { name: 'http' }, { name: 'grpc' }, { number: 81 }),
        }),
        { minLength: 1, maxLength: 3 },
      ),
    }),
    { maxLength: 3 },
  ),
  defaultBackend: fc.option(fc.constantFrom(...SERVICES), { nil: undefined }),
  annotations: fc.constantFrom(...ANNOTATIONS),
  className: fc.constantFrom('warren', 'warren', 'other', undefined),
  time: fc.integer({ min: 0, max: 3 }),
  tls: fc.boolean(),
});
type Spec<A> = A extends fc.Arbitrary<infer T> ? T : never;
type IngressSpec = Omit<Spec<typeof ingressArb>, 'rules'> & {
  rules: Array<{ host: string | undefined; paths: Array<{ path: string; type: string; service: string; port: { number: number } | { name: string } }> }>;
};

function makeIngress(name: string, s: IngressSpec): V1Ingress {
  return {
    kind: 'Ingress',
    metadata: {
      name,
      namespace: 'default',
      // Each generated version is a new object (as if deleted and recreated): the builder's last-good fallback only
      // applies to new versions of the same object, and would make the result depend on history, which a fresh
      // build cannot know. last-good.test.ts covers that fallback.
      uid: `uid-${name}-${version}`,
      resourceVersion: rv(),
      creationTimestamp: new Date(Date.UTC(2024, 0, 1, 0, 0, s.time)),
      annotations: { ...s.annotations },
    },
    spec: {
      ingressClassName: s.className,
      tls: s.tls ? [{ hosts: ['a.test'] }] : undefined,
      defaultBackend: s.defaultBackend ? { service: { name: s.defaultBackend, port: { number: 80 } } } : undefined,
      rules: s.rules.map((r) => ({
        host: r.host,
        http: { paths: r.paths.map((p) => ({ path: p.path, pathType: p.type, backend: { service: { name: p.service, port: p.port } } })) },
      })),
    },
  };
}

const serviceArb = fc.record({
  named: fc.boolean(),
  appProtocol: fc.constantFrom(undefined, 'kubernetes.io/h2c', 'grpc'),
  external: fc.constantFrom(false, false, false, false, true),
});

function makeService(name: string, s: { named: boolean; appProtocol: string | undefined; external: boolean }): V1Service {
  return {
    kind: 'Service',
    metadata: { name, namespace: 'default', resourceVersion: rv() },
    spec: s.external
      ? { type: 'ExternalName', externalName: 'example.org' }
      : {
          ports: [
            { name: s.named ? 'http' : undefined, port: 80, appProtocol: s.appProtocol },
            { name: 'grpc', port: 9000, appProtocol: 'grpc' },
          ],
        },
  };
}

const sliceArb = fc.record({
  service: fc.constantFrom(...SERVICES),
  portName: fc.constantFrom('', 'http', 'grpc'),
  endpoints: fc.array(
    fc.record({
      address: fc.integer({ min: 2, max: 9 }).map((n) => `198.18.0.${n}`),
      ready: fc.constantFrom(true, false, undefined),
      terminating: fc.boolean(),
    }),
    { maxLength: 4 },
  ),
  bad: fc.constantFrom(false, false, false, false, true),
});

function makeSlice(name: string, s: SliceSpec): V1EndpointSlice {
  return {
    kind: 'EndpointSlice',
    metadata: { name, namespace: 'default', resourceVersion: rv(), labels: { 'kubernetes.io/service-name': s.service } },
    addressType: 'IPv4',
    ports: [{ name: s.portName, port: 8080 }],
    endpoints: [
      ...s.endpoints.map((e) => ({ addresses: [e.address], conditions: { ready: e.ready, serving: true, terminating: e.terminating } })),
      ...(s.bad ? [{ addresses: ['not-an-address'] }] : []),
    ],
  };
}

function makeClass(name: string, ours: boolean, isDefault: boolean): V1IngressClass {
  return {
    kind: 'IngressClass',
    metadata: { name, resourceVersion: rv(), annotations: isDefault ? { 'ingressclass.kubernetes.io/is-default-class': 'true' } : {} },
    spec: { controller: ours ? 'warren.dev/ingress-controller' : 'example.org/other' },
  };
}

/** A cluster with no objects but the given IngressClasses. */
function emptyWorld(...classes: V1IngressClass[]): MutableClusterSnapshot {
  return {
    ingresses: new Map(),
    ingressClasses: new Map(classes.map((c) => [c.metadata!.name!, c])),
    services: new Map(),
    endpointSlices: new Map(),
    secrets: new Map(),
  };
}

type SliceSpec = Omit<Spec<typeof sliceArb>, 'service'> & { service: string };

type Mutation =
  | { op: 'ingress'; index: number; spec: IngressSpec | undefined }
  | { op: 'service'; index: number; spec: { named: boolean; appProtocol: string | undefined; external: boolean } | undefined }
  | { op: 'slice'; index: number; spec: SliceSpec | undefined }
  | { op: 'class'; ours: boolean; isDefault: boolean }
  | { op: 'touch'; index: number };

const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('ingress' as const), index: fc.integer({ min: 0, max: 7 }), spec: fc.option(ingressArb, { nil: undefined }) }),
  fc.record({ op: fc.constant('service' as const), index: fc.integer({ min: 0, max: 3 }), spec: fc.option(serviceArb, { nil: undefined, freq: 4 }) }),
  fc.record({ op: fc.constant('slice' as const), index: fc.integer({ min: 0, max: 5 }), spec: fc.option(sliceArb, { nil: undefined, freq: 4 }) }),
  fc.record({ op: fc.constant('class' as const), ours: fc.boolean(), isDefault: fc.boolean() }),
  fc.record({ op: fc.constant('touch' as const), index: fc.integer({ min: 0, max: 7 }) }),
);

/** Applies a mutation and returns the keys it touched. */
function apply(world: MutableClusterSnapshot, m: Mutation): SnapshotChanges {
  switch (m.op) {
    case 'ingress': {
      const key = `default/ing-${m.index}`;
      if (m.spec) world.ingresses.set(key, makeIngress(`ing-${m.index}`, m.spec));
      else world.ingresses.delete(key);
      return { ingresses: [key] };
    }
    case 'service': {
      const key = `default/${SERVICES[m.index]}`;
      if (m.spec) world.services.set(key, makeService(SERVICES[m.index]!, m.spec));
      else world.services.delete(key);
      return { services: [key] };
    }
    case 'slice': {
      const key = `default/slice-${m.index}`;
      if (m.spec) world.endpointSlices.set(key, makeSlice(`slice-${m.index}`, m.spec));
      else world.endpointSlices.delete(key);
      return { endpointSlices: [key] };
    }
    case 'class':
      world.ingressClasses.set('warren', makeClass('warren', m.ours, m.isDefault));
      return { ingressClasses: ['warren'] };
    case 'touch': {
      // A new object with the same resourceVersion (a relist): must count as unchanged, and change nothing.
      const key = `default/ing-${m.index}`;
      const old = world.ingresses.get(key);
      if (old) world.ingresses.set(key, structuredClone(old));
      return { ingresses: [key] };
    }
  }
}

const REQUESTS: Array<[string, string]> = [];
for (const host of ['a.test', 'b.test', 'x.w.test', 'y.w.test', 'other.test']) {
  for (const path of ['/', '/api', '/api/', '/api/v1/x', '/static/a', '/nothing']) REQUESTS.push([host, path]);
}

function answers(table: RouteTable): string[] {
  return REQUESTS.map(([h, p]) => {
    const r = table.match(h, p);
    return r ? `${r.id} ${r.protocol} ${r.backend.endpoints.map((e) => e.key).join(',')}` : '404';
  });
}

test('incremental builds (self-diffed and hinted) equal a fresh full build after every change', (t) => {
  let checkedRouteChanges = 0;
  fc.assert(
    fc.property(
      fc.array(ingressArb, { minLength: 1, maxLength: 8 }),
      fc.array(serviceArb, { minLength: 4, maxLength: 4 }),
      fc.array(sliceArb, { maxLength: 6 }),
      fc.array(mutationArb, { minLength: 1, maxLength: 15 }),
      (ingresses, services, slices, mutations) => {
        const world = emptyWorld(makeClass('warren', true, false), makeClass('other', false, false));
        ingresses.forEach((s, i) => {
          world.ingresses.set(`default/ing-${i}`, makeIngress(`ing-${i}`, s));
        });
        services.forEach((s, i) => {
          world.services.set(`default/${SERVICES[i]}`, makeService(SERVICES[i]!, s));
        });
        slices.forEach((s, i) => {
          world.endpointSlices.set(`default/slice-${i}`, makeSlice(`slice-${i}`, s));
        });
        const settings = testRoutingConfig({ proxy: { defaultBackend: { namespace: 'default', service: 's3', port: 80 } } });
        const diffing = new RouteTableBuilder(settings);
        const hinted = new RouteTableBuilder(settings);
        let before: RouteTable = diffing.build(world);
        const first = before;
        const routed = new RoutedIngresses();
        routed.update(routeChangesBetween(emptyRouteTable(), first));
        hinted.build(world);
        for (const m of mutations) {
          const changes = apply(world, m);
          const fromDiff = diffing.build(world);
          const fromHint = hinted.build(world, changes);
          const full = new RouteTableBuilder(settings).build(world);
          const expected = canonical(full);
          const owned = fromDiff.ownedChangesSince?.(before);
          const previous = before;
          before = fromDiff;
          if (owned) {
            // What the incremental table reports as changed owned Ingresses must match a full comparison.
            const key = (i: { namespace: string; name: string }) => `${i.namespace}/${i.name}`;
            const was = new Map(previous.ownedIngresses.map((i) => [key(i), JSON.stringify(i)]));
            const now = new Map(fromDiff.ownedIngresses.map((i) => [key(i), JSON.stringify(i)]));
            const differing = [...new Set([...was.keys(), ...now.keys()])].filter((k) => was.get(k) !== now.get(k)).sort();
            const reported = [...owned]
              .filter(([k, ref]) => (ref ? JSON.stringify(ref) : undefined) !== was.get(k))
              .map(([k]) => k)
              .sort();
            if (JSON.stringify(reported) !== JSON.stringify(differing) || [...owned].some(([k, ref]) => (ref ? JSON.stringify(ref) : undefined) !== now.get(k))) {
              t.deepEqual(reported, differing, `owned changes after ${JSON.stringify(m)}`);
              return false;
            }
          }
          // Route changes, between consecutive tables and from the first one, must equal a full comparison.
          for (const [older, label] of [
            [previous, 'consecutive'],
            [first, 'since the first table'],
          ] as const) {
            const routeChanges = fromDiff.routeChangesSince?.(older);
            if (!routeChanges) continue;
            const was = new Set(older.routes);
            const now = new Set(fromDiff.routes);
            const ids = (rs: Iterable<Route>) => [...rs].map((r) => r.id).sort();
            const added = ids([...now].filter((r) => !was.has(r)));
            const removed = ids([...was].filter((r) => !now.has(r)));
            if (JSON.stringify([ids(routeChanges.added), ids(routeChanges.removed)]) !== JSON.stringify([added, removed])) {
              t.deepEqual([ids(routeChanges.added), ids(routeChanges.removed)], [added, removed], `route changes (${label}) after ${JSON.stringify(m)}`);
              return false;
            }
            for (const r of routeChanges.added) checkedRouteChanges += now.has(r) ? 1 : 0;
          }
          // Routes per Ingress kept from route changes (Synced events) must equal a count over the table.
          routed.update(routeChangesBetween(previous, fromDiff));
          const counted = new Map<string, { routes: number; generation: number }>();
          for (const r of fromDiff.routes) {
            const entry = counted.get(r.ingress.uid) ?? { routes: 0, generation: r.ingress.generation };
            counted.set(r.ingress.uid, { routes: entry.routes + 1, generation: r.ingress.generation });
          }
          for (const uid of new Set([...counted.keys(), ...previous.routes.map((r) => r.ingress.uid)])) {
            if (JSON.stringify(routed.get(uid)) !== JSON.stringify(counted.get(uid))) {
              t.deepEqual(routed.get(uid), counted.get(uid), `routes of Ingress ${uid} after ${JSON.stringify(m)}`);
              return false;
            }
          }
          if (JSON.stringify(canonical(fromDiff)) !== JSON.stringify(expected)) {
            t.deepEqual(canonical(fromDiff), expected, `self-diffed build after ${JSON.stringify(m)}`);
            return false;
          }
          if (JSON.stringify(canonical(fromHint)) !== JSON.stringify(expected)) {
            t.deepEqual(canonical(fromHint), expected, `hinted build after ${JSON.stringify(m)}`);
            return false;
          }
          const want = answers(full);
          if (JSON.stringify(answers(fromDiff)) !== JSON.stringify(want) || JSON.stringify(answers(fromHint)) !== JSON.stringify(want)) {
            t.deepEqual(answers(fromDiff), want, `match results after ${JSON.stringify(m)}`);
            return false;
          }
        }
        return true;
      },
    ),
    { numRuns: 80 },
  );
  t.true(checkedRouteChanges > 0, 'incremental route changes were compared with a full comparison');
});

test('published tables never change when later builds happen (copy on write)', (t) => {
  const world = emptyWorld(makeClass('warren', true, false));
  const spec = (host: string, service: string): IngressSpec => ({
    rules: [{ host, paths: [{ path: '/', type: 'Prefix', service, port: { number: 80 } }] }],
    defaultBackend: undefined,
    annotations: {},
    className: 'warren',
    time: 0,
    tls: false,
  });
  world.services.set('default/s0', makeService('s0', { named: true, appProtocol: undefined, external: false }));
  world.endpointSlices.set(
    'default/slice-0',
    makeSlice('slice-0', { service: 's0', portName: 'http', endpoints: [{ address: '198.18.0.2', ready: true, terminating: false }], bad: false }),
  );
  world.ingresses.set('default/one', makeIngress('one', spec('a.test', 's0')));
  world.ingresses.set('default/two', makeIngress('two', spec('*.w.test', 's0')));
  const builder = new RouteTableBuilder(testRoutingConfig());
  const first = builder.build(world);
  const before = answers(first);
  const firstRoutes = [...first.routes];

  world.ingresses.set('default/one', makeIngress('one', spec('b.test', 's0')));
  world.ingresses.delete('default/two');
  world.endpointSlices.set(
    'default/slice-0',
    makeSlice('slice-0', { service: 's0', portName: 'http', endpoints: [{ address: '198.18.0.3', ready: true, terminating: false }], bad: false }),
  );
  const second = builder.build(world);

  t.deepEqual(answers(first), before, 'the first table answers as before');
  t.deepEqual([...first.routes], firstRoutes);
  t.true(second.generation > first.generation);
  t.is(second.match('a.test', '/'), undefined);
  t.is(second.match('b.test', '/')?.backend.endpoints[0]?.key, '198.18.0.3:8080');
  t.is(first.match('a.test', '/')?.backend.endpoints[0]?.key, '198.18.0.2:8080');
  t.true(Object.isFrozen(first) && Object.isFrozen(first.routes) && Object.isFrozen(first.routes[0]));
  t.throws(() => {
    (first.routes as unknown as unknown[]).push(null);
  });
});

test('a changed EndpointSlice replaces only the routes of the Ingresses that use its Service', (t) => {
  const world = emptyWorld(makeClass('warren', true, false));
  for (const [i, svc] of ['s0', 's1'].entries()) {
    world.services.set(`default/${svc}`, makeService(svc, { named: false, appProtocol: undefined, external: false }));
    world.endpointSlices.set(
      `default/slice-${i}`,
      makeSlice(`slice-${i}`, { service: svc, portName: '', endpoints: [{ address: `198.18.0.${i + 2}`, ready: true, terminating: false }], bad: false }),
    );
    world.ingresses.set(
      `default/ing-${i}`,
      makeIngress(`ing-${i}`, {
        rules: [{ host: `h${i}.test`, paths: [{ path: '/', type: 'Prefix', service: svc, port: { number: 80 } }] }],
        defaultBackend: undefined,
        annotations: {},
        className: 'warren',
        time: 0,
        tls: false,
      }),
    );
  }
  const builder = new RouteTableBuilder(testRoutingConfig());
  const first = builder.build(world);
  world.endpointSlices.set(
    'default/slice-1',
    makeSlice('slice-1', { service: 's1', portName: '', endpoints: [{ address: '198.18.0.9', ready: true, terminating: false }], bad: false }),
  );
  const second = builder.build(world, { endpointSlices: ['default/slice-1'] });
  t.is(second.match('h0.test', '/'), first.match('h0.test', '/'), 'the untouched route is the same object');
  t.not(second.match('h1.test', '/'), first.match('h1.test', '/'));
  t.deepEqual(
    second.match('h1.test', '/')?.backend.endpoints.map((e) => e.key),
    ['198.18.0.9:8080'],
  );
  // Nothing changed at all: same routes again, new generation.
  const third = builder.build(world);
  t.is(third.generation, second.generation + 1);
  t.is(third.match('h1.test', '/'), second.match('h1.test', '/'));
});

// ---- with a route source besides Ingress ------------------------------------------------------------------

interface FakeSpec {
  hostname: string | undefined;
  time: number;
  rules: FakeRule[];
}

const fakeRouteArb: fc.Arbitrary<FakeSpec> = fc
  .record({
    hostname: fc.constantFrom(...HOSTS),
    time: fc.integer({ min: 0, max: 3 }),
    rules: fc.array(
      fc.record({
        path: fc.constantFrom(...PATHS),
        type: fc.constantFrom('Exact' as const, 'Prefix' as const),
        method: fc.option(fc.constant('POST'), { nil: undefined }),
        headers: fc.option(fc.constant([{ name: 'x-env', value: 'canary' }]), { nil: undefined }),
        backends: fc.array(
          fc.record({
            service: fc.constantFrom(...SERVICES, 'missing'),
            port: fc.constantFrom(80, 81),
            weight: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
          }),
          { minLength: 1, maxLength: 2 },
        ),
      }),
      { minLength: 1, maxLength: 3 },
    ),
  })
  .map((s) => ({ ...s, rules: s.rules.map((r) => ({ ...r, headers: r.headers ? [...r.headers] : undefined })) }));

function makeFake(name: string, s: FakeSpec): FakeRoute {
  return {
    kind: 'FakeRoute',
    metadata: { name, namespace: 'default', uid: `uid-${name}-${version}`, resourceVersion: rv(), creationTimestamp: new Date(Date.UTC(2024, 0, 1, 0, 0, s.time)) },
    spec: { hostname: s.hostname, rules: s.rules },
  };
}

type SourceMutation = Mutation | { op: 'fake'; index: number; spec: FakeSpec | undefined } | { op: 'touch-fake'; index: number };

const sourceMutationArb: fc.Arbitrary<SourceMutation> = fc.oneof(
  mutationArb,
  fc.record({ op: fc.constant('fake' as const), index: fc.integer({ min: 0, max: 3 }), spec: fc.option(fakeRouteArb, { nil: undefined, freq: 4 }) }),
  fc.record({ op: fc.constant('touch-fake' as const), index: fc.integer({ min: 0, max: 3 }) }),
);

const FACTS: RequestFacts[] = [
  { method: 'GET', headers: [], query: '' },
  { method: 'POST', headers: ['x-env', 'canary'], query: '' },
  { method: 'GET', headers: ['x-env', 'canary'], query: 'a=1' },
];

function answersWithFacts(table: RouteTable): string[] {
  return REQUESTS.flatMap(([h, p]) =>
    FACTS.map((f) => {
      const r = table.match(h, p, f);
      return r ? `${r.id} ${r.unresolved?.status ?? ''} ${r.backend.endpoints.map((e) => e.key).join(',')}` : '404';
    }),
  );
}

test('with a route source, incremental builds (self-diffed and hinted) equal a fresh full build after every change', (t) => {
  let sourceRoutes = 0;
  fc.assert(
    fc.property(
      fc.array(ingressArb, { maxLength: 4 }),
      fc.array(fakeRouteArb, { minLength: 1, maxLength: 4 }),
      fc.array(serviceArb, { minLength: 4, maxLength: 4 }),
      fc.array(sliceArb, { maxLength: 4 }),
      fc.array(sourceMutationArb, { minLength: 1, maxLength: 12 }),
      (ingresses, fakes, services, slices, mutations) => {
        const fakeObjects = new Map<string, KubernetesObject>();
        const world: MutableClusterSnapshot = { ...emptyWorld(makeClass('warren', true, false)), extra: new Map([[FAKE_KIND, fakeObjects]]) };
        ingresses.forEach((s, i) => {
          world.ingresses.set(`default/ing-${i}`, makeIngress(`ing-${i}`, s));
        });
        fakes.forEach((s, i) => {
          fakeObjects.set(`default/fake-${i}`, makeFake(`fake-${i}`, s) as KubernetesObject);
        });
        services.forEach((s, i) => {
          world.services.set(`default/${SERVICES[i]}`, makeService(SERVICES[i]!, s));
        });
        slices.forEach((s, i) => {
          world.endpointSlices.set(`default/slice-${i}`, makeSlice(`slice-${i}`, s));
        });
        // A fixed "random" value: weighted picks are deterministic, so answers can be compared.
        const settings = { ...testRoutingConfig(), sources: [fakeRouteSource], random: () => 0.6 };
        const diffing = new RouteTableBuilder(settings);
        const hinted = new RouteTableBuilder(settings);
        diffing.build(world);
        hinted.build(world);
        for (const m of mutations) {
          let changes: SnapshotChanges;
          if (m.op === 'fake' || m.op === 'touch-fake') {
            const key = `default/fake-${m.index}`;
            const old = fakeObjects.get(key);
            if (m.op === 'touch-fake') {
              if (old) fakeObjects.set(key, structuredClone(old));
            } else if (m.spec) fakeObjects.set(key, makeFake(`fake-${m.index}`, m.spec) as KubernetesObject);
            else fakeObjects.delete(key);
            changes = { extra: new Map([[FAKE_KIND, [key]]]) };
          } else {
            changes = apply(world, m);
          }
          const fromDiff = diffing.build(world);
          const fromHint = hinted.build(world, changes);
          const full = new RouteTableBuilder(settings).build(world);
          sourceRoutes += full.routes.filter((r) => r.ingress.kind === 'HTTPRoute').length;
          const expected = JSON.stringify(canonical(full));
          for (const [table, label] of [
            [fromDiff, 'self-diffed'],
            [fromHint, 'hinted'],
          ] as const) {
            if (JSON.stringify(canonical(table)) !== expected) {
              t.deepEqual(canonical(table), canonical(full), `${label} build after ${JSON.stringify(m)}`);
              return false;
            }
            if (JSON.stringify(answersWithFacts(table)) !== JSON.stringify(answersWithFacts(full))) {
              t.deepEqual(answersWithFacts(table), answersWithFacts(full), `${label} match results after ${JSON.stringify(m)}`);
              return false;
            }
          }
        }
        return true;
      },
    ),
    { numRuns: 60 },
  );
  t.true(sourceRoutes > 0, 'the source contributed routes');
});

test('a route source is translated again only when its kinds, or Services and EndpointSlices it uses, change', (t) => {
  let calls = 0;
  const counting: RouteSource = {
    kinds: fakeRouteSource.kinds,
    translate(snapshot, ctx) {
      calls++;
      return fakeRouteSource.translate(snapshot, ctx);
    },
  };
  const fakeObjects = new Map<string, KubernetesObject>();
  const world: MutableClusterSnapshot = { ...emptyWorld(makeClass('warren', true, false)), extra: new Map([[FAKE_KIND, fakeObjects]]) };
  world.services.set('default/s0', makeService('s0', { named: false, appProtocol: undefined, external: false }));
  world.services.set('default/s1', makeService('s1', { named: false, appProtocol: undefined, external: false }));
  const rule: FakeRule = { path: '/', type: 'Prefix', backends: [{ service: 's0', port: 80 }] };
  fakeObjects.set('default/fake-0', makeFake('fake-0', { hostname: 'a.test', time: 0, rules: [rule] }) as KubernetesObject);
  const builder = new RouteTableBuilder({ ...testRoutingConfig(), sources: [counting] });
  const first = builder.build(world);
  t.is(calls, 1);
  const route = first.match('a.test', '/');
  t.is(route?.backend.service, 's0');

  world.services.set('default/s1', makeService('s1', { named: true, appProtocol: undefined, external: false }));
  t.is(builder.build(world).match('a.test', '/'), route, 'an unrelated Service: not translated, same route');
  t.is(calls, 1);
  world.endpointSlices.set(
    'default/slice-0',
    makeSlice('slice-0', { service: 's0', portName: '', endpoints: [{ address: '198.18.0.5', ready: true, terminating: false }], bad: false }),
  );
  const third = builder.build(world, { endpointSlices: ['default/slice-0'] });
  t.is(calls, 2, 'an EndpointSlice of a Service in use: translated again');
  t.deepEqual(
    third.match('a.test', '/')?.backend.endpoints.map((e) => e.key),
    ['198.18.0.5:8080'],
  );
  fakeObjects.set('default/fake-0', structuredClone(fakeObjects.get('default/fake-0')!));
  const fourth = builder.build(world);
  t.is(calls, 2, 'a relisted copy with the same resourceVersion is no change');
  fakeObjects.set('default/fake-1', makeFake('fake-1', { hostname: 'b.test', time: 0, rules: [rule] }) as KubernetesObject);
  const fifth = builder.build(world, { extra: new Map([[FAKE_KIND, ['default/fake-1']]]) });
  t.is(calls, 3, 'a new object of its kind: translated again');
  t.is(fifth.match('a.test', '/'), fourth.match('a.test', '/'), 'an unchanged object keeps its route objects');
  t.is(fifth.match('b.test', '/')?.backend.service, 's0');
  t.deepEqual(
    routeChangesBetween(fourth, fifth).added.map((r) => r.id),
    ['HTTPRoute:default/fake-1#r0/m0/b0'],
  );
});
