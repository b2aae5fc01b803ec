/**
 * A leader term can start before the replica built its first route table (leader election off: the term starts as
 * soon as the caches synced). Until then the route store holds an empty placeholder, by which no Ingress is
 * Warren's: the leader-only reconcilers that act per owned Ingress must wait for a built table instead of clearing
 * the status of every Ingress (status writer) or dropping every cleanup finalizer (finalizers). Real apiserver.
 * (The control plugins' runner waits too: control-plugins.test.ts.)
 */
import type { V1Ingress } from '@kubernetes/client-node';
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import pino from 'pino';
import { MemoryEvents } from '../../src/proxy/testing.js';
import { CLEANUP_FINALIZER, FinalizerController } from '../../src/reconcile/finalizer.js';
import { IngressStatusWriter, type IngressSource } from '../../src/reconcile/status.js';
import { ALWAYS_LEADING } from '../../src/state/leadership.js';
import { RouteTableBuilder } from '../../src/routes/build.js';
import { snapshotFromObjects } from '../../src/routes/snapshot.js';
import { RouteStore } from '../../src/routes/store.js';
import { TunnelStateStore } from '../../src/state/tunnel.js';
import { testRoutingConfig } from '../routes/support.js';
import { adminClients, useApiServer } from '../support/apiserver.js';
import { CLASS_NAME, CONTROLLER_VALUE, ingress } from '../support/k8s-objects.js';

const server = useApiServer(test);
const HOSTNAME = 'tunnel.example';

/** The one Ingress of a frozen cache. */
function cacheOf(ingress: V1Ingress): IngressSource {
  const cached: V1Ingress = { ...ingress, kind: 'Ingress', apiVersion: 'networking.k8s.io/v1' };
  const key = `${cached.metadata!.namespace}/${cached.metadata!.name}`;
  return { ingress: (k) => (k === key ? cached : undefined), ingresses: () => new Map([[key, cached]]), onChange: () => () => undefined };
}

/** A table built from the Ingress and its class and Service: Warren owns the Ingress. */
function builtTable(ingress: V1Ingress) {
  const ns = ingress.metadata!.namespace!;
  const { snapshot } = snapshotFromObjects([
    { kind: 'IngressClass', metadata: { name: CLASS_NAME }, spec: { controller: CONTROLLER_VALUE } },
    { kind: 'Service', metadata: { name: 'web', namespace: ns }, spec: { ports: [{ port: 80 }] } },
    { ...ingress, kind: 'Ingress', apiVersion: 'networking.k8s.io/v1' },
  ]);
  return new RouteTableBuilder(testRoutingConfig()).build(snapshot);
}

test('a term that starts before the first route table leaves the status of owned Ingresses alone, then keeps it', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('first-table');
  const created = await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'web', { rules: [{ host: 'web.example', paths: [{ service: 'web', port: 80 }] }] }),
  });
  // What the previous leader (or this replica before a restart) published.
  const withStatus = await admin.networking.replaceNamespacedIngressStatus({
    namespace: ns,
    name: 'web',
    body: { ...created, status: { loadBalancer: { ingress: [{ hostname: HOSTNAME }] } } },
  });
  const ingresses = cacheOf(withStatus);
  const store = new RouteStore();
  const status = new IngressStatusWriter({
    client: server().adminClient(),
    ingresses,
    store,
    publishHostname: HOSTNAME,
    tunnel: new TunnelStateStore(),
    logger: pino({ level: 'silent' }),
    coalesceMs: 0,
  });
  const stop = new AbortController();
  const running = status.start(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running.catch(() => undefined);
  });
  const published = async () => (await admin.networking.readNamespacedIngressStatus({ namespace: ns, name: 'web' })).status?.loadBalancer?.ingress ?? [];

  await sleep(300);
  await status.idle();
  t.deepEqual(
    (await published()).map((e) => e.hostname),
    [HOSTNAME],
    'not cleared while no route table was built',
  );

  store.publish(builtTable(withStatus));
  await sleep(100);
  await status.idle();
  t.deepEqual(
    (await published()).map((e) => e.hostname),
    [HOSTNAME],
  );
});

test('a term that starts before the first route table keeps the cleanup finalizer of owned Ingresses', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('first-table-finalizer');
  const created = await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: {
      ...ingress(ns, 'web', { rules: [{ host: 'web.example', paths: [{ service: 'web', port: 80 }] }] }),
      metadata: { name: 'web', namespace: ns, finalizers: [CLEANUP_FINALIZER] },
    },
  });
  t.teardown(() =>
    admin.networking
      .patchNamespacedIngress({ namespace: ns, name: 'web', body: [{ op: 'remove', path: '/metadata/finalizers' }] })
      .then(() => undefined)
      .catch(() => undefined),
  );
  const store = new RouteStore();
  const finalizers = new FinalizerController({
    client: server().adminClient(),
    ingresses: cacheOf(created),
    store,
    // A plugin that manages external state for every Ingress, as the DNS plugin does.
    plugins: [{ id: 'test.external', onRoutesChanged: async () => undefined, needsFinalizer: () => true }],
    events: new MemoryEvents(),
    state: { tunnel: new TunnelStateStore(), leadership: ALWAYS_LEADING },
    logger: pino({ level: 'silent' }),
    coalesceMs: 0,
  });
  const stop = new AbortController();
  const running = finalizers.start(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running.catch(() => undefined);
  });
  const present = async () => (await admin.networking.readNamespacedIngress({ namespace: ns, name: 'web' })).metadata?.finalizers ?? [];

  await sleep(300);
  await finalizers.idle();
  t.deepEqual(await present(), [CLEANUP_FINALIZER], 'kept while no route table was built');
  store.publish(builtTable(created));
  await sleep(100);
  await finalizers.idle();
  t.deepEqual(await present(), [CLEANUP_FINALIZER]);
});
