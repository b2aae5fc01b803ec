import test from 'ava';
import fc from 'fast-check';
import pino from 'pino';
import { Registry } from 'prom-client';
import { z } from 'zod';
import { defineAnnotation } from '../../src/plugin-api/manifest.js';
import type { V1Ingress } from '@kubernetes/client-node';
import type { StoreChange } from '../../src/k8s/object-store.js';
import type { WatchedKind } from '../../src/k8s/kinds.js';
import { ControlPlaneMetrics } from '../../src/observability/metrics.js';
import { RouteSync, routeTableCounts, type SnapshotSource } from '../../src/reconcile/route-sync.js';
import { RouteTableBuilder } from '../../src/routes/build.js';
import { RoutingPlugins } from '../../src/routes/plugins.js';
import { snapshotFromObjects, type SnapshotChanges } from '../../src/routes/snapshot.js';
import { RouteStore } from '../../src/routes/store.js';

/**
 * Route sync keeps the referenced Secrets from each table's route changes and counts the table for
 * `warren_route_table_objects` when scraped; both must equal a full pass over the published table.
 */

const CLASS = { kind: 'IngressClass', metadata: { name: 'warren' }, spec: { controller: 'warren.dev/ingress-controller' } };
const SERVICE = { kind: 'Service', metadata: { name: 'echo', namespace: 'default' }, spec: { ports: [{ port: 80 }] } };
const SLICE = {
  kind: 'EndpointSlice',
  metadata: { name: 'echo-1', namespace: 'default', labels: { 'kubernetes.io/service-name': 'echo' } },
  addressType: 'IPv4',
  ports: [{ port: 80 }],
  endpoints: [{ addresses: ['198.18.0.2'] }],
};

const plugins = new RoutingPlugins([
  {
    id: 'test.auth',
    name: 'auth',
    description: '',
    coreRange: '^0.1.0',
    kind: 'policy',
    order: 0,
    annotations: [defineAnnotation({ key: 'auth-secret', description: '', schema: z.string(), example: 'x', secretRef: true })],
  },
]);

let version = 0;
function ingress(name: string, host: string, paths: number, secret: string | undefined): V1Ingress {
  return {
    kind: 'Ingress',
    metadata: { name, namespace: 'default', resourceVersion: String(++version), generation: version, annotations: secret ? { 'warren.dev/auth-secret': secret } : {} },
    spec: {
      ingressClassName: 'warren',
      rules: [
        {
          host,
          http: { paths: Array.from({ length: paths }, (_, i) => ({ path: `/p${i}`, pathType: 'Prefix', backend: { service: { name: 'echo', port: { number: 80 } } } })) },
        },
      ],
    },
  } as V1Ingress;
}

const changeArb = fc.record({
  index: fc.nat({ max: 7 }),
  remove: fc.boolean(),
  host: fc.constantFrom('a.test', 'b.test', 'c.test'),
  paths: fc.integer({ min: 1, max: 3 }),
  secret: fc.option(fc.constantFrom('s1', 's2', 'other/s3'), { nil: undefined }),
});

test('referenced Secrets and table counts follow the route changes exactly as a full pass over each table', async (t) => {
  let runs = 0;
  await fc.assert(
    fc.asyncProperty(fc.array(changeArb, { minLength: 1, maxLength: 12 }), async (changes) => {
      const { snapshot } = snapshotFromObjects([CLASS, SERVICE, SLICE]);
      let pending = new Set<string>();
      const listeners = new Set<(kind: WatchedKind, changes: ReadonlyMap<string, StoreChange>) => void>();
      const references: string[][] = [];
      const source: SnapshotSource = {
        snapshot: () => ({ ...snapshot, ingresses: new Map(snapshot.ingresses) }),
        takeChanges: (): SnapshotChanges => {
          const keys = pending;
          pending = new Set();
          return { ingresses: keys };
        },
        onChange: (listener) => {
          listeners.add(listener);
          return () => listeners.delete(listener);
        },
        secrets: {
          setReferences: (refs) => {
            references.push([...refs].sort());
            return Promise.resolve();
          },
        },
      };
      const registry = new Registry();
      const store = new RouteStore();
      const sync = new RouteSync({
        source,
        builder: new RouteTableBuilder({ ingressClass: { name: 'warren', controller: 'warren.dev/ingress-controller', watchWithoutClass: false }, plugins }),
        store,
        logger: pino({ level: 'silent' }),
        metrics: new ControlPlaneMetrics(registry),
        coalesceMs: 0,
      });
      const abort = new AbortController();
      const running = sync.start(abort.signal);
      try {
        const check = async (label: string): Promise<boolean> => {
          await sync.idle();
          const table = store.current;
          const full = [...new Set(table.routes.flatMap((r) => [...r.secretRefs]))].sort();
          if (JSON.stringify(references.at(-1)) !== JSON.stringify(full)) {
            t.deepEqual(references.at(-1), full, `referenced Secrets ${label}`);
            return false;
          }
          const scraped = Object.fromEntries((await registry.getSingleMetric('warren_route_table_objects')!.get()).values.map((v) => [v.labels.type, v.value]));
          if (JSON.stringify(scraped) !== JSON.stringify(routeTableCounts(table))) {
            t.deepEqual(scraped, routeTableCounts(table), `table counts ${label}`);
            return false;
          }
          return true;
        };
        if (!(await check('after the first build'))) return false;
        for (const c of changes) {
          const key = `default/ing-${c.index}`;
          if (c.remove) snapshot.ingresses.delete(key);
          else snapshot.ingresses.set(key, ingress(`ing-${c.index}`, c.host, c.paths, c.secret));
          pending.add(key);
          for (const listener of listeners) listener('Ingress' as WatchedKind, new Map([[key, c.remove ? 'deleted' : 'updated']]));
          if (!(await check(`after ${JSON.stringify(c)}`))) return false;
        }
        runs++;
        return true;
      } finally {
        abort.abort();
        await running;
      }
    }),
    { numRuns: 40 },
  );
  t.is(runs, 40);
});
