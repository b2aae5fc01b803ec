/**
 * The caches must catch up within seconds of the apiserver coming back, whatever happened while it was away —
 * otherwise an Ingress created meanwhile gets neither routes nor status for tens of seconds:
 *  - a restarted apiserver answers 403 while its authorization cache warms up: a 403 right after a reconnect is
 *    transient (short retries), not a reason to back off towards the 30 s maximum. Reproduced deterministically
 *    with the real RBAC authorizer: the controller's ClusterRoleBinding is removed for 10 s while every informer
 *    lists again, then restored;
 *  - while the apiserver is down (connection refused) the retries stay short, so the informers do not sleep
 *    through its return.
 */
import test from 'ava';
import type { KubernetesObject } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { adminClients, loadRbacObjects, useApiServer } from '../support/apiserver.js';
import { eventually, startController } from '../support/controller.js';
import { CONTROLLER_NAMESPACE } from '../support/apiserver.js';
import { createBackend, ensureIngressClass, ingress, testHost } from '../support/k8s-objects.js';

const server = useApiServer(test);

test.serial('403 answers right after a reconnect are retried shortly: the caches follow within 2 s of the rights coming back', async (t) => {
  t.timeout(60_000);
  const admin = adminClients(server());
  await ensureIngressClass(admin);
  const controller = await startController(server(), { config: { kubernetes: { leaderElection: { enabled: false } } } });
  t.teardown(() => controller.stop());
  const ns = await server().createNamespace('forbidden');
  await createBackend(admin, ns, 'web', [testHost(20)]);
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'before', { rules: [{ host: 'before.example', paths: [{ service: 'web', port: 80 }] }] }),
  });
  await eventually('the first Ingress in the route table', () => controller.store.current.hosts.includes('before.example'));

  const binding = loadRbacObjects().find((o): o is KubernetesObject => o.kind === 'ClusterRoleBinding')!;
  await admin.objects.delete(binding);
  controller.cp.informers.relistAll();
  await eventually('403 answers to the relist', () => controller.logs.text.includes('"status":403'), 10_000);
  await sleep(10_000);
  await admin.objects.create({ ...binding, metadata: { name: binding.metadata!.name! } });
  const restoredAt = Date.now();
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'after', { rules: [{ host: 'after.example', paths: [{ service: 'web', port: 80 }] }] }) });
  await eventually('the new Ingress in the route table', () => controller.store.current.hosts.includes('after.example'), 30_000);
  const tookMs = Date.now() - restoredAt;
  t.log(`caches followed ${tookMs} ms after the rights came back`);
  t.true(tookMs < 2_000, `${tookMs} ms after the ClusterRoleBinding was restored`);
  t.true(controller.logs.text.includes('refused (403) right after a reconnect; retrying shortly'));
});

test.serial('after an apiserver outage of 35 s, an Ingress created on its return gets routes and status within seconds', async (t) => {
  t.timeout(120_000);
  const admin = adminClients(server());
  await ensureIngressClass(admin);
  const controller = await startController(server(), { config: { kubernetes: { leaderElection: { leaseDuration: '4s', renewDeadline: '3s', retryPeriod: '500ms' } } } });
  t.teardown(() => controller.stop());
  const ns = await server().createNamespace('outage');
  await createBackend(admin, ns, 'web', [testHost(21)]);
  await eventually('leadership', () => controller.cp.elector!.leadership.current.leading);

  await server().stopApiServerProcess();
  await sleep(35_000); // an exponential backoff would be at 16–30 s per retry by now
  await server().startApiServerProcess();
  const backAt = Date.now();
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'back', { rules: [{ host: 'back.example', paths: [{ service: 'web', port: 80 }] }] }) });
  await eventually('the new Ingress in the route table', () => controller.store.current.hosts.includes('back.example'), 60_000);
  const routedMs = Date.now() - backAt;
  await eventually(
    'its status',
    async () => {
      const ing = await admin.networking.readNamespacedIngressStatus({ namespace: ns, name: 'back' });
      return ing.status?.loadBalancer?.ingress?.[0]?.hostname === 'test-tunnel-0000.cfargotunnel.com';
    },
    60_000,
  );
  const statusMs = Date.now() - backAt;
  t.log(`after the apiserver was ready: routed in ${routedMs} ms, status in ${statusMs} ms (Lease in ${CONTROLLER_NAMESPACE})`);
  t.true(routedMs < 6_000, `routed ${routedMs} ms after the apiserver was back`);
  t.true(statusMs < 8_000, `status ${statusMs} ms after the apiserver was back`);
});
