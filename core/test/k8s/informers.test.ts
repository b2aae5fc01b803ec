import test from 'ava';
import { adminClients, useApiServer } from '../support/apiserver.js';
import { eventually, startController, type TestController } from '../support/controller.js';
import { createBackend, endpointSlice, ensureIngressClass, ingress, service, testHost } from '../support/k8s-objects.js';
import type { RouteTable } from '../../src/routes/types.js';

const server = useApiServer(test);
let controller: TestController;

test.serial.before(async () => {
  await ensureIngressClass(adminClients(server()));
  controller = await startController(server());
});
test.after.always(async () => {
  await controller?.stop();
});

const endpointsOf = (table: RouteTable, host: string, path = '/') => table.match(host, path)?.backend.endpoints.map((e) => e.key) ?? [];

test('the route store follows Ingress create, update and delete', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('ing');
  await createBackend(admin, ns, 'web', [testHost(2), testHost(3)]);
  await createBackend(admin, ns, 'api', [testHost(4)]);
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'site', { rules: [{ host: 'site.example', paths: [{ path: '/', service: 'web', port: 80 }] }] }),
  });
  let table = await controller.store.waitFor((tb) => tb.match('site.example', '/') !== undefined, { timeout: 15_000 });
  t.deepEqual(endpointsOf(table, 'site.example'), ['198.18.0.2:8080', '198.18.0.3:8080']);
  t.is(table.match('site.example', '/')?.backend.service, 'web');

  const current = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'site' });
  current.spec!.rules![0]!.http!.paths.push({ path: '/api', pathType: 'Prefix', backend: { service: { name: 'api', port: { number: 80 } } } });
  await admin.networking.replaceNamespacedIngress({ namespace: ns, name: 'site', body: current });
  table = await controller.store.waitFor((tb) => tb.match('site.example', '/api/v1')?.backend.service === 'api', { timeout: 15_000 });
  t.deepEqual(endpointsOf(table, 'site.example', '/api/v1'), ['198.18.0.4:8080']);
  t.is(table.match('site.example', '/other')?.backend.service, 'web');

  await admin.networking.deleteNamespacedIngress({ namespace: ns, name: 'site' });
  table = await controller.store.waitFor((tb) => tb.match('site.example', '/') === undefined, { timeout: 15_000 });
  t.false(table.ownedIngresses.some((i) => i.namespace === ns));
});

test('EndpointSlice and Service changes move the endpoints', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('eps');
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'app', [{ port: 80, name: 'http', targetPort: 9000 }]) });
  await admin.discovery.createNamespacedEndpointSlice({ namespace: ns, body: endpointSlice(ns, 'app', [testHost(5)], 9000, { portName: 'http', sliceName: 'app-a' }) });
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'app', { rules: [{ host: 'app.example', paths: [{ service: 'app', port: 'http' }] }] }),
  });
  await controller.store.waitFor((tb) => endpointsOf(tb, 'app.example').join() === '198.18.0.5:9000', { timeout: 15_000 });

  // A second slice adds endpoints; a not-ready endpoint is never used.
  await admin.discovery.createNamespacedEndpointSlice({
    namespace: ns,
    body: endpointSlice(ns, 'app', [testHost(6)], 9000, { portName: 'http', sliceName: 'app-b', notReady: [testHost(7)] }),
  });
  let table = await controller.store.waitFor((tb) => endpointsOf(tb, 'app.example').length === 2, { timeout: 15_000 });
  t.deepEqual(endpointsOf(table, 'app.example'), ['198.18.0.5:9000', '198.18.0.6:9000']);

  // Replacing the first slice's address moves that endpoint.
  const slice = await admin.discovery.readNamespacedEndpointSlice({ namespace: ns, name: 'app-a' });
  slice.endpoints = [{ addresses: [testHost(8)], conditions: { ready: true } }];
  await admin.discovery.replaceNamespacedEndpointSlice({ namespace: ns, name: 'app-a', body: slice });
  table = await controller.store.waitFor((tb) => endpointsOf(tb, 'app.example').includes('198.18.0.8:9000'), { timeout: 15_000 });
  t.deepEqual(endpointsOf(table, 'app.example'), ['198.18.0.6:9000', '198.18.0.8:9000']);

  // Deleting a slice removes its endpoints.
  await admin.discovery.deleteNamespacedEndpointSlice({ namespace: ns, name: 'app-b' });
  table = await controller.store.waitFor((tb) => endpointsOf(tb, 'app.example').length === 1, { timeout: 15_000 });
  t.deepEqual(endpointsOf(table, 'app.example'), ['198.18.0.8:9000']);

  // Deleting the Service leaves the rule without a backend (ServiceNotFound), and recreating it restores it.
  await admin.core.deleteNamespacedService({ namespace: ns, name: 'app' });
  table = await controller.store.waitFor((tb) => tb.diagnostics.some((d) => d.reason === 'ServiceNotFound' && d.object.namespace === ns), { timeout: 15_000 });
  t.deepEqual(endpointsOf(table, 'app.example'), []);
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'app', [{ port: 80, name: 'http', targetPort: 9000 }]) });
  table = await controller.store.waitFor((tb) => endpointsOf(tb, 'app.example').length === 1, { timeout: 15_000 });
  t.deepEqual(endpointsOf(table, 'app.example'), ['198.18.0.8:9000']);
});

test('an initial list of many objects yields one route-table build', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('bulk');
  await createBackend(admin, ns, 'shared', [testHost(9)]);
  const count = 300;
  for (let i = 0; i < count; i += 25) {
    await Promise.all(
      Array.from({ length: Math.min(25, count - i) }, (_, j) =>
        admin.networking.createNamespacedIngress({
          namespace: ns,
          body: ingress(ns, `bulk-${i + j}`, { rules: [{ host: `bulk-${i + j}.example`, paths: [{ service: 'shared', port: 80 }] }] }),
        }),
      ),
    );
  }
  // A second controller starting now sees everything in its initial lists.
  const fresh = await startController(server(), { config: { kubernetes: { namespaces: [ns], leaderElection: { enabled: false } } } });
  t.teardown(() => fresh.stop());
  await fresh.cp.informers.waitForSync();
  const table = await fresh.store.waitFor((tb) => tb.generation > 0, { timeout: 15_000 });
  await fresh.cp.routeSync.idle();
  t.is(fresh.cp.routeSync.builds, 1);
  t.is(table.ownedIngresses.length, count);
  t.is(table.match(`bulk-${count - 1}.example`, '/')?.backend.endpoints[0]?.address, testHost(9));
});

test('kubernetes.namespaces limits what is watched and cached', async (t) => {
  const admin = adminClients(server());
  const inside = await server().createNamespace('watched');
  const outside = await server().createNamespace('ignored');
  for (const ns of [inside, outside]) {
    await createBackend(admin, ns, 'web', [testHost(10)]);
    await admin.networking.createNamespacedIngress({
      namespace: ns,
      body: ingress(ns, 'web', { rules: [{ host: `${ns}.example`, paths: [{ service: 'web', port: 80 }] }] }),
    });
  }
  const scoped = await startController(server(), { config: { kubernetes: { namespaces: [inside], leaderElection: { enabled: false } } } });
  t.teardown(() => scoped.stop());
  await scoped.store.waitFor((tb) => tb.match(`${inside}.example`, '/') !== undefined, { timeout: 15_000 });
  t.is(scoped.store.current.match(`${outside}.example`, '/'), undefined);
  const counts = scoped.cp.informers.counts();
  t.is(counts.Ingress, 1);
  t.is(counts.Service, 1);
  t.is(counts.EndpointSlice, 1);
  t.true(counts.IngressClass >= 1, 'IngressClasses are cluster-scoped and always watched');
  // Later objects outside stay invisible; inside they appear.
  await admin.networking.createNamespacedIngress({
    namespace: inside,
    body: ingress(inside, 'second', { rules: [{ host: `second.${inside}.example`, paths: [{ service: 'web', port: 80 }] }] }),
  });
  await scoped.store.waitFor((tb) => tb.match(`second.${inside}.example`, '/') !== undefined, { timeout: 15_000 });
  t.is(scoped.cp.informers.counts().Ingress, 2);
});

test('only Secrets that routes reference are kept; rotations reach listeners; data never reaches the logs', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('sec');
  const caValue = 'LS0tLS1CRUdJTi1URVNULUNBLU1BVEVSSUFMLTEyMzQ1Njc4OTA=';
  await admin.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'upstream-ca' }, data: { 'ca.crt': caValue } } });
  await admin.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'unrelated' }, stringData: { password: 'hunter2-do-not-log' } } });
  await createBackend(admin, ns, 'tls-app', [testHost(11)]);
  const secrets = controller.cp.informers.secrets;
  t.is(secrets.get(ns, 'upstream-ca'), undefined, 'nothing is kept before a route references it');

  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'tls-app', {
      annotations: { 'warren.dev/test-ca-secret': 'upstream-ca' },
      rules: [{ host: 'tls-app.example', paths: [{ service: 'tls-app', port: 80 }] }],
    }),
  });
  const table = await controller.store.waitFor((tb) => tb.match('tls-app.example', '/') !== undefined, { timeout: 15_000 });
  t.deepEqual(table.match('tls-app.example', '/')?.secretRefs, [`${ns}/upstream-ca`]);
  await eventually('the referenced Secret in the cache', () => secrets.get(ns, 'upstream-ca'));
  t.deepEqual(secrets.get(ns, 'upstream-ca')?.['ca.crt'], Buffer.from(caValue, 'base64'));
  t.is(secrets.get(ns, 'unrelated'), undefined);
  t.false([...controller.cp.informers.snapshot().secrets.keys()].includes(`${ns}/unrelated`));

  const rotated: string[] = [];
  const off = secrets.onChange((namespace, name) => rotated.push(`${namespace}/${name}`));
  t.teardown(off);
  const newValue = Buffer.from('rotated-ca-material').toString('base64');
  await admin.core.replaceNamespacedSecret({ namespace: ns, name: 'upstream-ca', body: { metadata: { name: 'upstream-ca' }, data: { 'ca.crt': newValue } } });
  await eventually('the rotated Secret', () => secrets.get(ns, 'upstream-ca')?.['ca.crt']?.equals(Buffer.from(newValue, 'base64')));
  t.true(rotated.includes(`${ns}/upstream-ca`));
  // A change to an unreferenced Secret is dropped on arrival.
  await admin.core.replaceNamespacedSecret({ namespace: ns, name: 'unrelated', body: { metadata: { name: 'unrelated' }, stringData: { password: 'hunter3-do-not-log' } } });

  // Once no route references it, the Secret's data is dropped.
  await admin.networking.deleteNamespacedIngress({ namespace: ns, name: 'tls-app' });
  await eventually('the Secret to be dropped', () => secrets.get(ns, 'upstream-ca') === undefined);
  t.false(rotated.includes(`${ns}/unrelated`));
  for (const secretText of [caValue, newValue, 'hunter2-do-not-log', 'hunter3-do-not-log', Buffer.from('hunter3-do-not-log').toString('base64')]) {
    t.false(controller.logs.text.includes(secretText), 'Secret data must never be logged');
  }
});
