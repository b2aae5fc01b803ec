import test from 'ava';
import { adminClients, useApiServer } from '../support/apiserver.js';

const server = useApiServer(test);

test.serial('the harness serves the core and networking APIs and restarts on the same port', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('harness');
  await admin.core.createNamespacedService({ namespace: ns, body: { metadata: { name: 'svc' }, spec: { ports: [{ port: 80 }] } } });
  const list = await admin.core.listNamespacedService({ namespace: ns });
  t.deepEqual(list.items.map((s) => s.metadata?.name), ['svc']);
  await server().restartApiServer();
  const again = await admin.core.readNamespacedService({ namespace: ns, name: 'svc' });
  t.is(again.metadata?.name, 'svc');
});

test.serial('a controller token is authenticated and limited to deploy/rbac.yaml', async (t) => {
  const token = await server().controllerToken();
  const { CoreV1Api } = await import('@kubernetes/client-node');
  const core = server().configForToken(token).makeApiClient(CoreV1Api);
  const services = await core.listServiceForAllNamespaces();
  t.true(Array.isArray(services.items));
  const err = await t.throwsAsync(core.listPodForAllNamespaces());
  t.is((err as unknown as { code: number }).code, 403);
});
