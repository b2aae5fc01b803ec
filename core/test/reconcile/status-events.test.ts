import type { CoreV1Event } from '@kubernetes/client-node';
import test from 'ava';
import { EventRecorder } from '../../src/reconcile/events.js';
import { ALWAYS_LEADING } from '../../src/state/leadership.js';
import { adminClients, useApiServer } from '../support/apiserver.js';
import { eventually, startController, type TestController } from '../support/controller.js';
import { createBackend, endpointSlice, ensureIngressClass, ingress, ingressClass, testHost } from '../support/k8s-objects.js';

const server = useApiServer(test);
let leader: TestController;
let follower: TestController;
const tunnel = 'tunnel-aaaa';

test.serial.before(async () => {
  const admin = adminClients(server());
  await ensureIngressClass(admin);
  await ensureIngressClass(admin, ingressClass('someone-else', { controller: 'example.com/other-controller' }));
  leader = await startController(server(), { identity: 'leader', tunnelId: tunnel });
  await eventually('the first controller to lead', () => leader.cp.elector!.leadership.current.leading);
  follower = await startController(server(), { identity: 'follower', tunnelId: tunnel });
});
test.after.always(async () => {
  await follower?.stop();
  await leader?.stop();
});

async function statusHostnames(ns: string, name: string): Promise<string[]> {
  const ing = await adminClients(server()).networking.readNamespacedIngressStatus({ namespace: ns, name });
  return (ing.status?.loadBalancer?.ingress ?? []).map((e) => e.hostname ?? e.ip ?? '?');
}

async function eventsFor(ns: string, name: string): Promise<CoreV1Event[]> {
  const list = await adminClients(server()).core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` });
  return list.items;
}

test.serial('owned Ingresses get the tunnel hostname; it follows the tunnel id; a class change clears it; shutdown does not', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('status');
  await createBackend(admin, ns, 'web', [testHost(2)]);
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'owned', { rules: [{ host: 'owned.example', paths: [{ service: 'web', port: 80 }] }] }) });
  await eventually('status hostname', async () => (await statusHostnames(ns, 'owned')).join() === 'tunnel-aaaa.cfargotunnel.com');

  // Written only when it differs: more rebuilds do not rewrite it.
  const before = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'owned' });
  await admin.discovery.replaceNamespacedEndpointSlice({ namespace: ns, name: 'web-slice', body: endpointSlice(ns, 'web', [testHost(3)], 8080, { sliceName: 'web-slice' }) });
  await leader.store.waitFor((tb) => tb.match('owned.example', '/')?.backend.endpoints[0]?.address === testHost(3), { timeout: 15_000 });
  await leader.cp.status.idle();
  const after = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'owned' });
  t.is(after.metadata?.resourceVersion, before.metadata?.resourceVersion, 'no status write without a difference');

  // The tunnel was replaced: publishing its id is all it takes.
  leader.tunnel.identify('tunnel-bbbb');
  follower.tunnel.identify('tunnel-bbbb');
  await eventually('updated status hostname', async () => (await statusHostnames(ns, 'owned')).join() === 'tunnel-bbbb.cfargotunnel.com');

  const current = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'owned' });
  current.spec!.ingressClassName = 'someone-else';
  await admin.networking.replaceNamespacedIngress({ namespace: ns, name: 'owned', body: current });
  await eventually('status cleared', async () => (await statusHostnames(ns, 'owned')).length === 0);

  // Back to Warren's class, then a graceful stop of every replica: the status stays.
  const again = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'owned' });
  again.spec!.ingressClassName = 'cloudflare-tunnel';
  await admin.networking.replaceNamespacedIngress({ namespace: ns, name: 'owned', body: again });
  await eventually('status hostname again', async () => (await statusHostnames(ns, 'owned')).join() === 'tunnel-bbbb.cfargotunnel.com');
  const extra = await startController(server(), { identity: 'short-lived', config: { kubernetes: { leaderElection: { enabled: false } } }, tunnelId: 'tunnel-bbbb' });
  await extra.cp.informers.waitForSync();
  await extra.stop();
  t.deepEqual(await statusHostnames(ns, 'owned'), ['tunnel-bbbb.cfargotunnel.com']);
});

test.serial('Ingresses of another class are never touched: no status, events or finalizers', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('foreign');
  await createBackend(admin, ns, 'web', [testHost(4)]);
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'theirs', { className: 'someone-else', rules: [{ host: 'theirs.example', paths: [{ service: 'missing', port: 80 }] }] }),
  });
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'invalid-class', { className: 'some-invalid-class-name', rules: [{ host: 'invalid.example', paths: [{ service: 'web', port: 80 }] }] }),
  });
  const theirs = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'theirs' });
  theirs.status = { loadBalancer: { ingress: [{ ip: '192.0.2.10' }] } };
  const theirsAfterStatus = await admin.networking.replaceNamespacedIngressStatus({ namespace: ns, name: 'theirs', body: theirs });
  // Let Warren see both and build (a marker Ingress of our own proves the build happened after them).
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'marker', { rules: [{ host: 'marker.example', paths: [{ service: 'web', port: 80 }] }] }),
  });
  await eventually('marker status', async () => (await statusHostnames(ns, 'marker')).length === 1);
  await leader.cp.status.idle();
  await leader.cp.finalizers.idle();
  await leader.cp.events.flush();
  const table = leader.store.current;
  t.false(table.ownedIngresses.some((i) => i.name === 'theirs' || i.name === 'invalid-class'));
  t.is(table.match('invalid.example', '/'), undefined);
  t.deepEqual(await statusHostnames(ns, 'theirs'), ['192.0.2.10']);
  t.deepEqual(await statusHostnames(ns, 'invalid-class'), []);
  t.deepEqual(await eventsFor(ns, 'theirs'), []);
  t.deepEqual(await eventsFor(ns, 'invalid-class'), []);
  const stored = await admin.networking.readNamespacedIngress({ namespace: ns, name: 'theirs' });
  t.deepEqual(stored.metadata?.finalizers ?? [], []);
  t.is(stored.metadata?.resourceVersion, theirsAfterStatus.metadata?.resourceVersion, 'not written to at all');
});

test.serial('Warning events for problems and Normal Synced, written by the leader only, without flooding', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('events');
  await createBackend(admin, ns, 'web', [testHost(5)]);
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'good', { rules: [{ host: 'good.example', paths: [{ service: 'web', port: 80 }] }] }) });
  const broken = ingress(ns, 'broken', {
    rules: [
      {
        host: 'broken.example',
        paths: [
          { path: '/ok', service: 'web', port: 80 },
          { path: '/nosvc', service: 'does-not-exist', port: 80 },
          { path: '/noport', service: 'web', port: 8443 },
        ],
      },
    ],
  });
  await admin.networking.createNamespacedIngress({ namespace: ns, body: broken });
  const byReason = async (name: string) => new Map((await eventsFor(ns, name)).map((e) => [e.reason, e]));
  await eventually('warnings on the broken Ingress', async () => {
    const r = await byReason('broken');
    return r.has('ServiceNotFound') && r.has('ServicePortNotFound');
  });
  await eventually('Synced on the good Ingress', async () => (await byReason('good')).has('Synced'));
  const good = (await byReason('good')).get('Synced')!;
  t.is(good.type, 'Normal');
  t.is(good.involvedObject.kind, 'Ingress');
  t.truthy(good.involvedObject.uid);
  t.regex(good.message ?? '', /generation 1 is routed: 1 route/);
  const warning = (await byReason('broken')).get('ServiceNotFound')!;
  t.is(warning.type, 'Warning');
  t.regex(warning.message ?? '', /does-not-exist/);
  // The broken Ingress's good path still routes.
  t.is(leader.store.current.match('broken.example', '/ok')?.backend.service, 'web');

  // 30 more rebuilds (endpoint churn) re-report the same diagnostics: no new Events, no count bumps.
  const snapshotOf = async () =>
    (await eventsFor(ns, 'broken'))
      .map((e) => `${e.metadata?.name}:${e.count}`)
      .sort()
      .join();
  const before = await snapshotOf();
  const generation = leader.store.current.generation;
  for (let i = 0; i < 30; i++) {
    await admin.discovery.replaceNamespacedEndpointSlice({
      namespace: ns,
      name: 'web-slice',
      body: endpointSlice(ns, 'web', [testHost(6 + (i % 2))], 8080, { sliceName: 'web-slice' }),
    });
  }
  await leader.store.waitFor((tb) => tb.generation >= generation + 5, { timeout: 15_000 });
  await leader.cp.routeSync.idle();
  await leader.cp.events.flush();
  t.is(await snapshotOf(), before);
  const suppressed = await leader.registry.getSingleMetricAsString('warren_kubernetes_events_total');
  t.regex(suppressed, /outcome="suppressed"/);

  // Only the leader wrote: every Warren event names the leader as reporting instance; the follower dropped its own.
  const all = (await adminClients(server()).core.listNamespacedEvent({ namespace: ns })).items.filter((e) => e.source?.component === 'warren');
  t.true(all.length >= 3);
  t.true(all.every((e) => e.reportingInstance === 'leader'));
  t.notRegex(await follower.registry.getSingleMetricAsString('warren_kubernetes_events_total'), /outcome="created"/);
});

test.serial('a new leader counts on from existing Events instead of duplicating them', async (t) => {
  const admin = adminClients(server());
  const ns = await server().createNamespace('handover');
  await admin.networking.createNamespacedIngress({
    namespace: ns,
    body: ingress(ns, 'lonely', { rules: [{ host: 'lonely.example', paths: [{ service: 'absent', port: 80 }] }] }),
  });
  await eventually('ServiceNotFound', async () => (await eventsFor(ns, 'lonely')).some((e) => e.reason === 'ServiceNotFound'));
  const first = (await eventsFor(ns, 'lonely')).find((e) => e.reason === 'ServiceNotFound')!;
  await leader.stop();
  await eventually('the follower to lead', () => follower.cp.elector!.leadership.current.leading, 5_000);
  await eventually('the Event to be counted again', async () => {
    const e = (await eventsFor(ns, 'lonely')).filter((x) => x.reason === 'ServiceNotFound');
    return e.length === 1 && (e[0]!.count ?? 0) >= 2 ? e : undefined;
  });
  const after = (await eventsFor(ns, 'lonely')).filter((e) => e.reason === 'ServiceNotFound');
  t.is(after.length, 1);
  t.is(after[0]!.metadata?.name, first.metadata?.name);
});

test.serial('many distinct messages are combined, and each object is rate-limited', async (t) => {
  const ns = await server().createNamespace('flood');
  const recorder = new EventRecorder({ client: server().adminClient(), logger: leader.logger, instance: 'flood-test', leadership: ALWAYS_LEADING, repeatIntervalMs: 1_000 });
  const noisy = { kind: 'Ingress', namespace: ns, name: 'noisy', uid: 'uid-noisy' };
  for (let i = 0; i < 40; i++) recorder.warning(noisy, 'InvalidAnnotation', `value ${i} of warren.dev/connect-timeout is not a duration`);
  const spammy = { kind: 'Ingress', namespace: ns, name: 'spammy', uid: 'uid-spammy' };
  for (let i = 0; i < 100; i++) recorder.warning(spammy, `Reason${i}`, 'something else is wrong');
  await recorder.flush();
  const list = async (name: string) => (await adminClients(server()).core.listNamespacedEvent({ namespace: ns, fieldSelector: `involvedObject.name=${name}` })).items;
  const noisyEvents = await list('noisy');
  t.is(noisyEvents.length, 11, '10 distinct messages, then one combined Event');
  const combined = () => noisyEvents.find((e) => (e.message ?? '').startsWith('(combined from similar events)'));
  t.regex(combined()?.message ?? '', /value 10 /, 'written at the first message past the limit');
  t.is(combined()?.count, 1, 'repeats within the interval are held back');
  t.is((await list('spammy')).length, 25, 'the per-object burst');
  // An identical event repeated: one write, repeats held back and folded into the next write after the interval.
  const repeated = { kind: 'Ingress', namespace: ns, name: 'repeated', uid: 'uid-repeated' };
  for (let i = 0; i < 21; i++) recorder.warning(repeated, 'ServiceNotFound', 'Service flood/web not found');
  await recorder.flush();
  t.deepEqual(
    (await list('repeated')).map((e) => e.count),
    [1],
  );
  await new Promise((r) => setTimeout(r, 1_100));
  recorder.warning(repeated, 'ServiceNotFound', 'Service flood/web not found');
  await recorder.flush();
  t.deepEqual(
    (await list('repeated')).map((e) => e.count),
    [22],
  );
});
