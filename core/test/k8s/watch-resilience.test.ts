import test from 'ava';
import { adminClients, useApiServer } from '../support/apiserver.js';
import { startEchoBackend, viaProxy, type EchoBackend } from '../support/backends.js';
import { eventually, startController, type TestController } from '../support/controller.js';
import { createBackend, endpointSlice, ensureIngressClass, ingress, testHost } from '../support/k8s-objects.js';

// Without the watch cache, watches are served by etcd itself: a resourceVersion older than the last compaction
// then really gets 410 Gone, which the compaction test needs.
const server = useApiServer(test, { extraArgs: ['--watch-cache=false'] });
let controller: TestController;
const backends: EchoBackend[] = [];

test.serial.before(async () => {
  await ensureIngressClass(adminClients(server()));
  for (const n of [12, 13, 14]) backends.push(await startEchoBackend(testHost(n)));
  controller = await startController(server(), { proxy: true, config: { kubernetes: { leaderElection: { enabled: false } } } });
});
test.after.always(async () => {
  await controller?.stop();
  await Promise.all(backends.map((b) => b.close()));
});

const answeredBy = async (host: string, path = '/') => (await viaProxy(controller.entryUrl!, host, path)).backend;

test.serial('requests follow Ingress and EndpointSlice changes, before and after a kube-apiserver restart', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('resilient');
  await createBackend(admin, ns, 'echo', [testHost(12)]);
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'echo', { rules: [{ host: 'echo.example', paths: [{ service: 'echo', port: 80 }] }] }) });
  await eventually('traffic to .12', async () => (await answeredBy('echo.example')) === testHost(12));
  const answer = await viaProxy(controller.entryUrl!, 'echo.example', '/some/path?q=1');
  t.is(answer.status, 200);
  t.deepEqual(JSON.parse(answer.body), { backend: testHost(12), method: 'GET', path: '/some/path?q=1', host: 'echo.example' });
  t.is((await viaProxy(controller.entryUrl!, 'unknown.example')).status, 404);

  await server().restartApiServer();

  // Changes made after the restart reach the caches and the data plane.
  await admin.discovery.replaceNamespacedEndpointSlice({
    namespace: ns,
    name: 'echo-slice',
    body: endpointSlice(ns, 'echo', [testHost(13)], 8080, { sliceName: 'echo-slice' }),
  });
  await eventually('traffic to .13', async () => (await answeredBy('echo.example')) === testHost(13), 30_000);
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'late', { rules: [{ host: 'late.example', paths: [{ service: 'echo', port: 80 }] }] }) });
  await eventually('the new Ingress to route', async () => (await answeredBy('late.example')) === testHost(13));
  await admin.networking.deleteNamespacedIngress({ namespace: ns, name: 'echo' });
  await eventually('the deleted Ingress to 404', async () => (await viaProxy(controller.entryUrl!, 'echo.example')).status === 404);
  const restarts = await controller.registry.getSingleMetricAsString('warren_informer_watch_restarts_total');
  t.regex(restarts, /kind="Ingress",cause="(error|ended)"/);
});

test.serial('history compacted while the apiserver was away: 410 Gone leads to a relist, and routing carries on', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('gone');
  await createBackend(admin, ns, 'svc', [testHost(14)]);
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'first', { rules: [{ host: 'first.example', paths: [{ service: 'svc', port: 80 }] }] }) });
  await eventually('first routes', async () => (await answeredBy('first.example')) === testHost(14));
  // Move etcd's revision past every watch's resourceVersion with objects Warren does not watch.
  for (let i = 0; i < 10; i++) await admin.core.createNamespacedConfigMap({ namespace: ns, body: { metadata: { name: `filler-${i}` }, data: { i: String(i) } } });
  await server().stopApiServerProcess();
  await server().compactEtcd();
  await server().startApiServerProcess();
  await eventually(
    'a relist after 410 Gone',
    async () => /kind="Ingress",cause="gone"\} [1-9]/.test(await controller.registry.getSingleMetricAsString('warren_informer_watch_restarts_total')),
    30_000,
  );
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'second', { rules: [{ host: 'second.example', paths: [{ service: 'svc', port: 80 }] }] }),
  });
  await eventually('second routes', async () => (await answeredBy('second.example')) === testHost(14), 30_000);
  t.is(await answeredBy('first.example'), testHost(14));
  t.true(controller.cp.informers.synced);
});
