import test from 'ava';
import type { ProvisionContext, SecretReader } from '../../src/plugin-api/lifecycle.js';
import type { RouteBinding, UpstreamPlugin } from '../../src/plugin-api/upstream.js';
import type { Route } from '../../src/routes/types.js';
import { adminClients, useApiServer } from '../support/apiserver.js';
import { eventually, startController } from '../support/controller.js';
import { createBackend, ensureIngressClass, ingress, testHost } from '../support/k8s-objects.js';

const server = useApiServer(test);

test.before(async () => {
  await ensureIngressClass(adminClients(server()));
});

/** What the plugin instances saw: one entry per provisioning, and the CA each binding read from its Secret. */
interface Seen {
  provisions: number;
  readonly boundCas: string[];
}

/** A data-plane plugin that reads the Secret its route references, as the tls plugin reads a CA bundle. */
class SecretUser implements UpstreamPlugin {
  #secrets: SecretReader | undefined;

  constructor(readonly seen: Seen) {}

  provision(ctx: ProvisionContext): void {
    this.#secrets = ctx.secrets;
    this.seen.provisions++;
  }

  bind(route: Route): RouteBinding | undefined {
    const ref = route.secretRefs[0];
    if (!ref) return undefined;
    const [namespace, name] = ref.split('/') as [string, string];
    const ca = this.#secrets?.get(namespace, name)?.['ca.crt'];
    if (ca) this.seen.boundCas.push(ca.toString());
    return undefined;
  }
}

/** Resolves once `count()` has not changed for `quietMs` (bounded by `timeoutMs`). */
async function settled(count: () => number, quietMs = 500, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = count();
  let since = Date.now();
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 25));
    if (count() !== last) {
      last = count();
      since = Date.now();
    } else if (Date.now() - since >= quietMs) return;
  }
  throw new Error('the pipeline did not settle');
}

test('a rotated Secret that a route references builds the pipeline once, with freshly provisioned plugins', async (t) => {
  const seen: Seen = { provisions: 0, boundCas: [] };
  const controller = await startController(server(), { proxy: true, upstreamPlugins: [() => new SecretUser(seen)] });
  t.teardown(() => controller.stop());
  const pipeline = controller.pipeline!;
  // Every generation the pipeline builds goes through setTable (following the route store, or a Secret rotation).
  let builds = 0;
  const setTable = pipeline.setTable.bind(pipeline);
  pipeline.setTable = (table, options) => {
    builds++;
    return setTable(table, options);
  };
  let published = 0;
  controller.store.subscribe(() => published++);

  const admin = adminClients(server());
  const ns = await server().createNamespace('rotation');
  await admin.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 'upstream-ca' }, stringData: { 'ca.crt': 'first-ca' } } });
  await createBackend(admin, ns, 'app', [testHost(12)]);
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'app', { annotations: { 'warren.dev/test-ca-secret': 'upstream-ca' }, rules: [{ host: 'app.example', paths: [{ service: 'app', port: 80 }] }] }),
  });
  await eventually('the route bound with the first CA', () => seen.boundCas.includes('first-ca'));
  await settled(() => builds + published + seen.provisions);

  const before = { builds, published, provisions: seen.provisions };
  await admin.core.replaceNamespacedSecret({ namespace: ns, name: 'upstream-ca', body: { metadata: { name: 'upstream-ca' }, stringData: { 'ca.crt': 'rotated-ca' } } });
  await eventually('the route bound with the rotated CA', () => seen.boundCas.includes('rotated-ca'));
  // Longer than the coalescing window of route sync (kubernetes.resyncBurstWindow), so a second path would show.
  await settled(() => builds + published + seen.provisions);

  t.is(seen.provisions - before.provisions, 1, 'the plugins are provisioned anew once');
  t.is(builds - before.builds, 1, 'one pipeline build per rotation');
  t.is(published - before.published, 0, 'the route table does not change: route sync ignores the Secret');
});
