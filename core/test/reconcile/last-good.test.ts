/**
 * Keeping good config on a real API server, with real requests: an edit that brings an invalid `warren.dev/`
 * annotation leaves a routed Ingress serving its last good version (the Warning Event says which generations), and
 * an Ingress deleted and created again with the bad annotation stays unrouted.
 */
import test from 'ava';
import { adminClients, useApiServer } from '../support/apiserver.js';
import { eventually, startController, type TestController } from '../support/controller.js';
import { endpointSlice, ensureIngressClass, ingress, service, testHost } from '../support/k8s-objects.js';
import { getText, startOrigin } from '../../src/proxy/testing.js';

const server = useApiServer(test);
let controller: TestController;

test.serial.before(async () => {
  await ensureIngressClass(adminClients(server()));
  controller = await startController(server(), { proxy: true });
});
test.after.always(async () => {
  await controller?.stop();
});

test.serial('a typo in an annotation of a live Ingress keeps its last good version serving', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('last-good');
  const origin = await startOrigin({ host: testHost(12) });
  t.teardown(() => origin.close());
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'web', [{ port: 80, targetPort: origin.port }]) });
  await admin.discovery.createNamespacedEndpointSlice({ namespace: ns, body: endpointSlice(ns, 'web', [testHost(12)], origin.port) });
  const spec = (timeout: string, hosts: string[]) => ({
    annotations: { 'warren.dev/connect-timeout': timeout },
    rules: hosts.map((host) => ({ host, paths: [{ path: '/', service: 'web', port: 80 }] })),
  });
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'shop', spec('5s', ['shop.example'])) });
  const get = (host: string) => getText(`${controller.entryUrl}/`, host);
  await eventually('shop.example served', async () => (await get('shop.example')).status === 200);

  // Generation 2: a typo, and a new host.
  const current = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'shop' });
  const edited = ingress(ns, 'shop', spec('5 seconds', ['shop.example', 'new.example']));
  await admin.networking.replaceNamespacedIngress({
    namespace: ns,
    name: 'shop',
    body: { ...edited, metadata: { ...edited.metadata, resourceVersion: current.metadata!.resourceVersion } },
  });
  const event = await eventually('the InvalidAnnotation Warning', async () => {
    const list = await admin.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=shop' });
    return list.items.find((e) => e.reason === 'InvalidAnnotation');
  });
  t.is(event.type, 'Warning');
  t.regex(event.message ?? '', /warren\.dev\/connect-timeout has value "5 seconds".*generation 2 is not applied: Warren keeps serving the last good version \(generation 1\)/);
  t.is((await get('shop.example')).status, 200, 'the last good version still serves');
  t.is(origin.requests, 2);
  t.is((await get('new.example')).status, 404, "the rejected version's new host is not routed");
  t.is(controller.store.current.match('shop.example', '/')?.ingress.generation, 1);

  // Deleted and created again with the typo: a new object, which stays unrouted.
  await admin.networking.deleteNamespacedIngress({ namespace: ns, name: 'shop' });
  await eventually('shop.example gone', async () => (await get('shop.example')).status === 404);
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'shop', spec('5 seconds', ['shop.example'])) });
  await eventually('the recreated Ingress is owned', () => controller.store.current.ownedIngresses.some((i) => i.namespace === ns && i.name === 'shop'));
  t.is((await get('shop.example')).status, 404);
  t.regex(
    controller.store.current.diagnostics.find((d) => d.object.namespace === ns && d.reason === 'InvalidAnnotation')?.message ?? '',
    /all routes of this Ingress are skipped/,
  );
});
