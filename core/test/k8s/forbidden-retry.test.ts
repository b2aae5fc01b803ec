/**
 * A restarted apiserver answers 403 while its authorization cache warms up. The informers must treat a 403
 * right after a reconnect as transient (short retries), not back off towards their 30 s maximum: the rights come
 * back within seconds, and so must the caches.
 *
 * Reproduced deterministically with the real RBAC authorizer: the controller's ClusterRoleBinding is removed
 * for 10 s while every informer lists again, then restored.
 */
import test from 'ava';
import type { KubernetesObject } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { adminClients, loadRbacObjects, useApiServer } from '../support/apiserver.js';
import { eventually, startController } from '../support/controller.js';
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
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'before', { rules: [{ host: 'before.example', paths: [{ service: 'web', port: 80 }] }] }) });
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
