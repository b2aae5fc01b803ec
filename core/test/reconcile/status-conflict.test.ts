/**
 * The Ingress status writer when its cache is behind the API server (a watch that has not caught up yet, as after a
 * compaction under load): the write conflicts, and the writer decides again on the live object instead of waiting
 * for the cache. Real apiserver; the cache is a snapshot that is never refreshed.
 */
import type { V1Ingress } from '@kubernetes/client-node';
import test from 'ava';
import pino from 'pino';
import { IngressStatusWriter, type IngressSource } from '../../src/reconcile/status.js';
import { RouteTableBuilder } from '../../src/routes/build.js';
import { snapshotFromObjects } from '../../src/routes/snapshot.js';
import { RouteStore } from '../../src/routes/store.js';
import { TunnelStateStore } from '../../src/state/tunnel.js';
import { testRoutingConfig } from '../routes/support.js';
import { adminClients, useApiServer } from '../support/apiserver.js';
import { eventually } from '../support/controller.js';
import { CLASS_NAME, CONTROLLER_VALUE, ingress } from '../support/k8s-objects.js';

const server = useApiServer(test);

/** An Ingress cache frozen at one moment. */
class FrozenIngresses implements IngressSource {
  constructor(readonly items: ReadonlyMap<string, V1Ingress>) {}
  ingress(key: string): V1Ingress | undefined {
    return this.items.get(key);
  }
  ingresses(): ReadonlyMap<string, V1Ingress> {
    return this.items;
  }
  onChange(): () => void {
    return () => undefined;
  }
}

test('a status write that conflicts with a newer object is made against the live object, without waiting for the cache', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('stale');
  const created = await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'web', { rules: [{ host: 'web.example', paths: [{ service: 'web', port: 80 }] }] }),
  });
  const cached = { ...created, kind: 'Ingress', apiVersion: 'networking.k8s.io/v1' };
  // Someone else changes the object after the cache saw it: the cached resourceVersion is now stale.
  const changed = await admin.networking.replaceNamespacedIngress({
    namespace: ns,
    name: 'web',
    body: { ...created, metadata: { ...created.metadata, labels: { touched: 'yes' } } },
  });
  t.not(changed.metadata?.resourceVersion, created.metadata?.resourceVersion);

  const ingresses = new FrozenIngresses(new Map([[`${ns}/web`, cached]]));
  const { snapshot } = snapshotFromObjects([
    { kind: 'IngressClass', metadata: { name: CLASS_NAME }, spec: { controller: CONTROLLER_VALUE } },
    { kind: 'Service', metadata: { name: 'web', namespace: ns }, spec: { ports: [{ port: 80 }] } },
    cached,
  ]);
  const store = new RouteStore();
  store.publish(new RouteTableBuilder(testRoutingConfig()).build(snapshot));
  const status = new IngressStatusWriter({
    client: server().adminClient(),
    ingresses,
    store,
    publishHostname: 'tunnel.example',
    tunnel: new TunnelStateStore(),
    logger: pino({ level: 'silent' }),
  });
  const stop = new AbortController();
  const running = status.start(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running.catch(() => undefined);
  });

  // Without the live read every retry would send the stale resourceVersion and conflict again, forever.
  const live = await eventually(
    'status written',
    async () => {
      const now = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'web' });
      return now.status?.loadBalancer?.ingress?.[0]?.hostname === 'tunnel.example' ? now : undefined;
    },
    5_000,
  );
  t.is(live.metadata?.labels?.touched, 'yes', "the other writer's change is kept");
});
