/**
 * Routes of HTTPRoutes and GRPCRoutes share the table with Ingress routes, but Warren's Ingress writers — status,
 * finalizers, `Synced` Events — act on Ingresses only: an HTTPRoute named like an Ingress of another controller
 * must never make Warren write to that Ingress. Real apiserver; the writers run as the control plane runs them,
 * fed by hand-published tables (the real builder with a stand-in route source, then a table whose owned list
 * wrongly names the HTTPRoute, as a faulty source or builder would).
 */
import type { KubernetesObject, V1Ingress } from '@kubernetes/client-node';
import test from 'ava';
import pino from 'pino';
import type { ControlPluginInstance } from '../../src/plugin-api/registered.js';
import { CLEANUP_FINALIZER, FinalizerController } from '../../src/reconcile/finalizer.js';
import { RouteEventsReporter } from '../../src/reconcile/route-events.js';
import { IngressStatusWriter, type IngressSource } from '../../src/reconcile/status.js';
import { RouteTableBuilder } from '../../src/routes/build.js';
import { snapshotFromObjects } from '../../src/routes/snapshot.js';
import { RouteStore } from '../../src/routes/store.js';
import type { IngressRef, Route, RouteTable } from '../../src/routes/types.js';
import { ALWAYS_LEADING } from '../../src/state/leadership.js';
import { TunnelStateStore } from '../../src/state/tunnel.js';
import { RecordingEventSink } from '../../src/testing/fake-cloudflare/control-harness.js';
import { FAKE_KIND, type FakeRoute, fakeRouteSource, testRoutingConfig } from '../routes/support.js';
import { adminClients, useApiServer } from '../support/apiserver.js';
import { eventually } from '../support/controller.js';
import { CLASS_NAME, CONTROLLER_VALUE, ingress } from '../support/k8s-objects.js';

const server = useApiServer(test);
const FOREIGN_STATUS = [{ ip: '192.0.2.10' }];

/** The Ingress cache, read from the apiserver every 50 ms while followed (what the informers hold). */
class ApiIngresses implements IngressSource {
  #items = new Map<string, V1Ingress>();
  constructor(readonly namespace: string) {}
  async follow(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      await this.refresh().catch(() => undefined);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  async refresh(): Promise<void> {
    const list = await adminClients(server()).networking.listNamespacedIngress({ namespace: this.namespace });
    this.#items = new Map(list.items.map((i) => [`${i.metadata!.namespace}/${i.metadata!.name}`, { ...i, kind: 'Ingress' }]));
  }
  ingress(key: string): V1Ingress | undefined {
    return this.#items.get(key);
  }
  ingresses(): ReadonlyMap<string, V1Ingress> {
    return this.#items;
  }
  onChange(): () => void {
    return () => undefined;
  }
}

/** A control plugin that wants the finalizer on every Ingress it is asked about (as the DNS plugin does by default). */
const finalizing: ControlPluginInstance = { id: 'test.finalizing', onRoutesChanged: async () => undefined, needsFinalizer: () => true };

test('an HTTPRoute named like an Ingress of another controller never gets that Ingress a status, a finalizer or a Synced Event', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('gwowned');
  // The Ingress `app` belongs to another controller; `marker` is Warren's and shows the writers ran.
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'app', { className: 'someone-else', rules: [{ host: 'app.example', paths: [{ service: 'web', port: 80 }] }] }),
  });
  const app = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'app' });
  app.status = { loadBalancer: { ingress: FOREIGN_STATUS } };
  const appWritten = await admin.networking.replaceNamespacedIngressStatus({ namespace: ns, name: 'app', body: app });
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'marker', { rules: [{ host: 'marker.example', paths: [{ service: 'web', port: 80 }] }] }),
  });

  const ingresses = new ApiIngresses(ns);
  await ingresses.refresh();
  const objects: unknown[] = [
    { kind: 'IngressClass', metadata: { name: CLASS_NAME }, spec: { controller: CONTROLLER_VALUE } },
    { kind: 'IngressClass', metadata: { name: 'someone-else' }, spec: { controller: 'example.com/other-controller' } },
    { kind: 'Service', metadata: { name: 'web', namespace: ns }, spec: { ports: [{ port: 80 }] } },
    ...ingresses.ingresses().values(),
  ];
  const { snapshot } = snapshotFromObjects(objects);
  const builder = new RouteTableBuilder({ ...testRoutingConfig(), sources: [fakeRouteSource] });
  const store = new RouteStore();
  store.publish(builder.build(snapshot));

  const logger = pino({ level: 'silent' });
  const events = new RecordingEventSink();
  const client = server().adminClient();
  const status = new IngressStatusWriter({ client, ingresses, store, publishHostname: 'tunnel.example', tunnel: new TunnelStateStore(), logger });
  const finalizers = new FinalizerController({
    client,
    ingresses,
    store,
    plugins: [finalizing],
    events,
    state: { tunnel: new TunnelStateStore(), leadership: ALWAYS_LEADING },
    logger,
  });
  const reporter = new RouteEventsReporter({ store, events, logger });
  const stop = new AbortController();
  const running = [ingresses.follow(stop.signal), status.start(stop.signal), finalizers.start(stop.signal), reporter.start(stop.signal)];
  t.teardown(async () => {
    stop.abort();
    await Promise.allSettled(running);
  });
  // Idle writers, bounded: a write that keeps failing would otherwise keep them busy forever.
  const settle = async () => {
    await ingresses.refresh();
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('the writers did not settle within 10 s')), 10_000);
    });
    try {
      await Promise.race([Promise.all([status.idle(), finalizers.idle()]), bound]);
    } finally {
      clearTimeout(timer);
    }
  };
  await eventually('status and finalizer on the marker', async () => {
    await settle();
    const marker = ingresses.ingress(`${ns}/marker`);
    return marker?.status?.loadBalancer?.ingress?.[0]?.hostname === 'tunnel.example' && marker.metadata?.finalizers?.includes(CLEANUP_FINALIZER);
  });

  // The HTTPRoute `app` (the builder's stand-in source) routes a host of its own.
  const httpRoute: FakeRoute = {
    kind: 'FakeRoute',
    metadata: { name: 'app', namespace: ns, uid: 'httproute-app-uid', creationTimestamp: '2026-01-01T00:00:00Z' },
    spec: { hostname: 'gw.example', rules: [{ backends: [{ service: 'web', port: 80 }] }] },
  };
  const withRoute = builder.build({ ...snapshot, extra: new Map([[FAKE_KIND, new Map([[`${ns}/app`, httpRoute as KubernetesObject]])]]) });
  t.is(withRoute.match('gw.example', '/')?.ingress.kind, 'HTTPRoute');
  t.false(
    withRoute.ownedIngresses.some((i) => i.name === 'app'),
    "the builder keeps the table's owned list to Ingresses",
  );
  store.publish(withRoute);
  await settle();

  // A table whose owned list names the HTTPRoute (a faulty source or builder), with a new generation of the
  // marker so that the Synced Event of the marker shows the reporter has seen it.
  const gatewayRef = withRoute.match('gw.example', '/')!.ingress;
  const markerRoute = withRoute.match('marker.example', '/')!;
  const marker2: IngressRef = { ...markerRoute.ingress, generation: 2 };
  const routes: Route[] = withRoute.routes.map((r) => (r === markerRoute ? { ...r, ingress: marker2 } : r));
  const leaked: RouteTable = {
    generation: withRoute.generation + 1,
    routes,
    diagnostics: [],
    ownedIngresses: [marker2, gatewayRef],
    hosts: withRoute.hosts,
    match: (host, path, request) => withRoute.match(host, path, request),
  };
  store.publish(leaked);
  await eventually('Synced for generation 2 of the marker', () =>
    events.events.some((e) => e.reason === 'Synced' && e.object.name === 'marker' && /generation 2/.test(e.message)),
  );
  await settle();

  const stored = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'app' });
  t.is(stored.metadata?.resourceVersion, appWritten.metadata?.resourceVersion, 'the Ingress app was never written to');
  t.deepEqual(
    stored.status?.loadBalancer?.ingress?.map((e) => e.ip ?? e.hostname),
    FOREIGN_STATUS.map((e) => e.ip),
  );
  t.deepEqual(stored.metadata?.finalizers ?? [], []);
  t.deepEqual(
    events.events.filter((e) => e.object.kind === 'Ingress' && e.object.name === 'app'),
    [],
    'no Event on an Ingress named app',
  );
  t.false(events.events.some((e) => e.object.uid === gatewayRef.uid && e.object.kind === 'Ingress'));
});
