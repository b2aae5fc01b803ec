import test from 'ava';
import { adminClients, useApiServer } from '../support/apiserver.js';
import { eventually, startController } from '../support/controller.js';
import { createBackend, ensureIngressClass, ingress, ingressClass, testHost } from '../support/k8s-objects.js';

const server = useApiServer(test);

async function statusHostnames(ns: string, name: string): Promise<string[]> {
  const ing = await adminClients(server()).networking.readNamespacedIngressStatus({ namespace: ns, name });
  return (ing.status?.loadBalancer?.ingress ?? []).map((e) => e.hostname ?? e.ip ?? '?');
}

const owned = (names: readonly string[], ns: string, table: { ownedIngresses: ReadonlyArray<{ namespace: string; name: string }> }) =>
  names.every((n) => table.ownedIngresses.some((i) => i.namespace === ns && i.name === n));

test.serial('class selection: by IngressClass controller, legacy annotation, and class-less only with watchWithoutClass', async (t) => {
  const admin = adminClients(server());
  await ensureIngressClass(admin);
  await ensureIngressClass(admin, ingressClass('lookalike', { controller: 'example.com/not-warren' }));
  const ns = await server().createNamespace('classes');
  await createBackend(admin, ns, 'web', [testHost(2)]);
  const rule = (host: string) => [{ host, paths: [{ service: 'web', port: 80 }] }];
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'by-class', { rules: rule('by-class.example') }) });
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'lookalike', { className: 'lookalike', rules: rule('lookalike.example') }) });
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'legacy', { className: null, annotations: { 'kubernetes.io/ingress.class': 'cloudflare-tunnel' }, rules: rule('legacy.example') }),
  });
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'classless', { className: null, rules: rule('classless.example') }) });

  const strict = await startController(server(), { identity: 'strict' });
  try {
    const table = await strict.store.waitFor((tb) => owned(['by-class', 'legacy'], ns, tb), { timeout: 15_000 });
    t.false(owned(['lookalike'], ns, table), 'a class with another controller value is not ours, whatever its name');
    t.false(owned(['classless'], ns, table));
    t.is(table.match('classless.example', '/'), undefined);
    await eventually('status on by-class and legacy', async () => (await statusHostnames(ns, 'by-class')).length === 1 && (await statusHostnames(ns, 'legacy')).length === 1);
    await strict.cp.status.idle();
    t.deepEqual(await statusHostnames(ns, 'classless'), []);
    t.deepEqual(await statusHostnames(ns, 'lookalike'), []);
  } finally {
    await strict.stop();
  }

  const lenient = await startController(server(), { identity: 'lenient', config: { ingressClass: { watchWithoutClass: true } } });
  try {
    const table = await lenient.store.waitFor((tb) => owned(['by-class', 'legacy', 'classless'], ns, tb), { timeout: 15_000 });
    t.false(owned(['lookalike'], ns, table));
    t.is(table.match('classless.example', '/')?.backend.service, 'web');
    await eventually('status on classless', async () => (await statusHostnames(ns, 'classless')).length === 1);
  } finally {
    await lenient.stop();
  }
});

test.serial('a default IngressClass of Warren claims class-less Ingresses, old and new', async (t) => {
  const admin = adminClients(server());
  await ensureIngressClass(admin);
  const ns = await server().createNamespace('default-class');
  await createBackend(admin, ns, 'web', [testHost(3)]);
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'before', { className: null, rules: [{ host: 'before.example', paths: [{ service: 'web', port: 80 }] }] }),
  });
  const controller = await startController(server(), { identity: 'default-class' });
  t.teardown(async () => {
    await controller.stop();
    const cls = await admin.networking.readIngressClass({ name: 'cloudflare-tunnel' });
    delete cls.metadata!.annotations!['ingressclass.kubernetes.io/is-default-class'];
    await admin.networking.replaceIngressClass({ name: 'cloudflare-tunnel', body: cls });
  });
  await controller.cp.informers.waitForSync();
  await controller.store.waitFor((tb) => tb.generation > 0, { timeout: 15_000 });
  t.false(owned(['before'], ns, controller.store.current));

  const cls = await admin.networking.readIngressClass({ name: 'cloudflare-tunnel' });
  cls.metadata!.annotations = { ...(cls.metadata!.annotations ?? {}), 'ingressclass.kubernetes.io/is-default-class': 'true' };
  await admin.networking.replaceIngressClass({ name: 'cloudflare-tunnel', body: cls });
  await controller.store.waitFor((tb) => owned(['before'], ns, tb), { timeout: 15_000 });

  // New class-less Ingresses get the default class from the API server's admission, and so are ours too.
  const created = await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'after', { className: null, rules: [{ host: 'after.example', paths: [{ service: 'web', port: 80 }] }] }),
  });
  t.is(created.spec?.ingressClassName, 'cloudflare-tunnel');
  await controller.store.waitFor((tb) => owned(['before', 'after'], ns, tb), { timeout: 15_000 });
  await eventually('status on both', async () => (await statusHostnames(ns, 'before')).length === 1 && (await statusHostnames(ns, 'after')).length === 1);
});
