import test from 'ava';
import type { ControlContext } from '../../src/plugin-api/control.js';
import type { ControlPluginInstance } from '../../src/plugin-api/registered.js';
import type { RouteTable } from '../../src/routes/types.js';
import { CLEANUP_FINALIZER } from '../../src/reconcile/finalizer.js';
import { adminClients, useApiServer } from '../support/apiserver.js';
import { eventually, startController, type TestController } from '../support/controller.js';
import { createBackend, ensureIngressClass, ingress, testHost } from '../support/k8s-objects.js';

const server = useApiServer(test);

/** A control plugin that manages (pretend) external state per Ingress, as the DNS plugin does. */
class ExternalStatePlugin implements ControlPluginInstance {
  readonly id = 'test.external-state';
  readonly tables: RouteTable[] = [];
  readonly deleted: Array<{ ingress: string; hosts: readonly string[]; tunnelId: string | undefined }> = [];
  failuresLeft = 0;
  async onRoutesChanged(table: RouteTable): Promise<void> {
    this.tables.push(table);
  }
  needsFinalizer(ingress: { annotations: Readonly<Record<string, string>> }): boolean {
    return ingress.annotations['test.example/external-state'] !== 'off';
  }
  async onIngressDeleted(ingress: { namespace: string; name: string; hosts: readonly string[] }, ctx: ControlContext): Promise<void> {
    if (this.failuresLeft > 0) {
      this.failuresLeft--;
      throw new Error('the external API is down');
    }
    this.deleted.push({ ingress: `${ingress.namespace}/${ingress.name}`, hosts: ingress.hosts, tunnelId: ctx.tunnelId });
  }
}

const plugin = new ExternalStatePlugin();
let controller: TestController;

test.serial.before(async () => {
  await ensureIngressClass(adminClients(server()));
  controller = await startController(server(), { controlPlugins: [plugin], cleanup: { maxAttempts: 3, retryBaseMs: 50 } });
  await eventually('leadership', () => controller.cp.elector!.leadership.current.leading);
});
test.after.always(async () => {
  await controller?.stop();
});

async function finalizersOf(ns: string, name: string): Promise<string[] | undefined> {
  try {
    return (await adminClients(server()).networking.readNamespacedIngress({ namespace: ns, name })).metadata?.finalizers ?? [];
  } catch (err) {
    if ((err as { code?: number }).code === 404) return undefined;
    throw err;
  }
}

test.serial('an Ingress with external state gets the finalizer; deletion cleans up first, then removes it', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('fin');
  await createBackend(admin, ns, 'web', [testHost(2)]);
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'managed', {
      rules: [
        { host: 'a.managed.example', paths: [{ service: 'web', port: 80 }] },
        { host: 'b.managed.example', paths: [{ service: 'web', port: 80 }] },
      ],
    }),
  });
  await eventually('the finalizer', async () => (await finalizersOf(ns, 'managed'))?.includes(CLEANUP_FINALIZER));
  await eventually('the plugin to see the route table', () => plugin.tables.some((tb) => tb.match('b.managed.example', '/') !== undefined));

  await admin.networking.deleteNamespacedIngress({ namespace: ns, name: 'managed' });
  await eventually('the Ingress to be gone', async () => (await finalizersOf(ns, 'managed')) === undefined);
  const cleanup = plugin.deleted.find((d) => d.ingress === `${ns}/managed`);
  t.truthy(cleanup);
  t.deepEqual([...cleanup!.hosts].sort(), ['a.managed.example', 'b.managed.example']);
  t.is(cleanup!.tunnelId, 'test-tunnel-0000');
});

test.serial('no finalizer when the plugin does not manage the Ingress, or for another class; opting out removes it', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('optout');
  await createBackend(admin, ns, 'web', [testHost(3)]);
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'unmanaged', { annotations: { 'test.example/external-state': 'off' }, rules: [{ host: 'unmanaged.example', paths: [{ service: 'web', port: 80 }] }] }),
  });
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'foreign', { className: 'elsewhere', rules: [{ host: 'foreign.example', paths: [{ service: 'web', port: 80 }] }] }),
  });
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'later-off', { rules: [{ host: 'later.example', paths: [{ service: 'web', port: 80 }] }] }),
  });
  await eventually('the finalizer on later-off', async () => (await finalizersOf(ns, 'later-off'))?.includes(CLEANUP_FINALIZER));
  await controller.cp.finalizers.idle();
  t.deepEqual(await finalizersOf(ns, 'unmanaged'), []);
  t.deepEqual(await finalizersOf(ns, 'foreign'), []);

  const current = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'later-off' });
  current.metadata!.annotations = { ...current.metadata!.annotations, 'test.example/external-state': 'off' };
  await admin.networking.replaceNamespacedIngress({ namespace: ns, name: 'later-off', body: current });
  await eventually('the finalizer to be removed', async () => (await finalizersOf(ns, 'later-off'))?.length === 0);
});

test.serial('cleanup that keeps failing is retried a bounded number of times, then the finalizer goes with a Warning', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('wedge');
  await createBackend(admin, ns, 'web', [testHost(4)]);
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'stuck', { rules: [{ host: 'stuck.example', paths: [{ service: 'web', port: 80 }] }] }) });
  await eventually('the finalizer', async () => (await finalizersOf(ns, 'stuck'))?.includes(CLEANUP_FINALIZER));
  plugin.failuresLeft = 100;
  t.teardown(() => {
    plugin.failuresLeft = 0;
  });
  await admin.networking.deleteNamespacedIngress({ namespace: ns, name: 'stuck' });
  await eventually('the Ingress to be gone despite failing cleanup', async () => (await finalizersOf(ns, 'stuck')) === undefined, 20_000);
  t.is(plugin.failuresLeft, 100 - 3, 'exactly maxAttempts cleanup attempts');
  await controller.cp.events.flush();
  const events = await admin.core.listNamespacedEvent({ namespace: ns, fieldSelector: 'involvedObject.name=stuck' });
  const warning = events.items.find((e) => e.reason === 'CleanupFailed');
  t.truthy(warning);
  t.is(warning?.type, 'Warning');
  t.regex(warning?.message ?? '', /after 3 failed cleanup attempts.*the external API is down/);
});
