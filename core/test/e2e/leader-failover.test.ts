/**
 * High availability with two real controller processes against one apiserver and one edge simulator: exactly one
 * holds the leader Lease (and says so in `warren_leader`), both serve traffic as connectors of the same tunnel,
 * and when the leader dies the other takes over, while requests through the edge keep succeeding:
 *  - SIGKILL: the Lease is not released, so the follower waits for it to expire: it leads within the lease
 *    duration plus two retry periods (its last sight of a renewal may be one retry period late, and it checks
 *    once per retry period);
 *  - SIGTERM: the leader releases the Lease on its way out, so the follower leads within 2 s.
 */
import test, { type ExecutionContext } from 'ava';
import type { EdgeSimulator } from '../../src/edge-simulator/index.js';
import { adminClients, useApiServer, type AdminClients } from '../support/apiserver.js';
import { endpointSlice, ensureIngressClass, ingress, service, testHost } from '../support/k8s-objects.js';
import { describeExit, waitUntil } from './support/children.js';
import { statusAddresses } from './support/cluster.js';
import { startEchoService, type EchoService } from './support/echo.js';
import { sendUntil } from './support/http.js';
import { TrafficLoop } from './support/traffic.js';
import { controllerKubeconfig, leaseHolder, startEdge, startWarren, tunnelHostname, type WarrenProcess } from './support/warren.js';

const LEASE_MS = 4_000;
const RETRY_MS = 500;
/** The lease settings both replicas run with. */
const LEASE_SETS = [
  `kubernetes.leaderElection.leaseDuration=${LEASE_MS}ms`,
  'kubernetes.leaderElection.renewDeadline=3s',
  `kubernetes.leaderElection.retryPeriod=${RETRY_MS}ms`,
];
const HOST = 'failover.example';

const server = useApiServer(test);
let admin: AdminClients;
let edge: EdgeSimulator;
let kubeconfigFile: string;
let backend: EchoService;
let ns: string;
const running = new Set<WarrenProcess>();

test.serial.before(async () => {
  admin = adminClients(server());
  await ensureIngressClass(admin);
  edge = await startEdge();
  kubeconfigFile = await controllerKubeconfig(server());
  backend = await startEchoService('failover-web', [testHost(2), testHost(3)]);
  ns = await server().createNamespace('failover');
  await admin.core.createNamespacedService({ namespace: ns, body: service(ns, 'web', [{ port: 80, targetPort: backend.port }]) });
  await admin.discovery.createNamespacedEndpointSlice({ namespace: ns, body: endpointSlice(ns, 'web', backend.addresses, backend.port) });
  await admin.networking.createNamespacedIngress({ namespace: ns, body: ingress(ns, 'failover', { rules: [{ host: HOST, paths: [{ service: 'web', port: 80 }] }] }) });
});

test.after.always(async () => {
  await Promise.all([...running].map((w) => w.stop()));
  await edge?.close();
  await backend?.close();
});

/** Starts two replicas (stopped when the test ends) and waits until all four HA connections are registered. */
async function startPair(t: ExecutionContext, a: string, b: string): Promise<[WarrenProcess, WarrenProcess]> {
  const started = await Promise.allSettled([a, b].map((podName) => startWarren({ podName, kubeconfigFile, edge, sets: LEASE_SETS })));
  const pair = started.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  for (const w of pair) running.add(w);
  t.teardown(async () => {
    if (!t.passed) for (const w of pair) t.log(w.child.tail(60));
    await Promise.all(pair.map((w) => w.stop()));
    for (const w of pair) running.delete(w);
  });
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) throw failed.reason;
  await edge.waitForRegistrations(4, 15_000);
  return [pair[0]!, pair[1]!];
}

/** Waits until exactly one of `pair` holds the Lease and both metrics agree; returns [leader, follower]. */
async function electedOf(pair: readonly [WarrenProcess, WarrenProcess]): Promise<[WarrenProcess, WarrenProcess]> {
  let result: [WarrenProcess, WarrenProcess] | undefined;
  await waitUntil(
    'one leader, agreed by the Lease and both warren_leader gauges',
    async () => {
      const holder = await leaseHolder(server().adminConfig());
      const leader = pair.find((w) => holder?.startsWith(`${w.podName}_`));
      if (!leader) return false;
      const follower = pair.find((w) => w !== leader)!;
      if ((await leader.metric('warren_leader')) !== 1 || (await follower.metric('warren_leader')) !== 0) return false;
      result = [leader, follower];
      return true;
    },
    LEASE_MS * 3,
  );
  return result!;
}

/** Waits until the Lease names `who`; resolves with Date.now() at that moment. */
async function leads(who: WarrenProcess, timeoutMs: number): Promise<number> {
  await waitUntil(`${who.podName} to hold the Lease`, async () => (await leaseHolder(server().adminConfig()))?.startsWith(`${who.podName}_`) === true, timeoutMs);
  return Date.now();
}

/** Both processes answered requests coming through the tunnel (each is a connector of the same tunnel). */
async function bothServe(pair: readonly WarrenProcess[], traffic: TrafficLoop): Promise<void> {
  await waitUntil('both processes to serve traffic', () => pair.every((w) => w.accessLog().some((l) => l.host === HOST && l.status === 200)), 15_000);
  await traffic.next(1);
}

test.serial('SIGKILL of the leader: the follower takes over when the Lease expires; requests keep succeeding', async (t) => {
  const pair = await startPair(t, 'warren-a', 'warren-b');
  const [leader, follower] = await electedOf(pair);
  t.is(await leader.metric('warren_leader'), 1);
  t.is(await follower.metric('warren_leader'), 0);
  await waitUntil('the leader to publish the status', async () => (await statusAddresses(admin, ns, 'failover')).join() === tunnelHostname(edge), 20_000);

  const traffic = new TrafficLoop({ baseUrl: edge.eyeballUrl, host: HOST, maxRequests: 3_000, maxMs: 60_000, concurrency: 2 }).start();
  let killedAt = Number.POSITIVE_INFINITY;
  try {
    await bothServe(pair, traffic);

    // Kill between two requests, and resume once the edge has seen the killed process's connections close —
    // as Cloudflare's edge stops routing to a connector whose connections are gone.
    await traffic.pause();
    leader.child.process.kill('SIGKILL');
    killedAt = Date.now();
    const exit = await leader.child.exited;
    running.delete(leader);
    t.is(exit.signal, 'SIGKILL', describeExit(exit));
    await edge.waitFor(() => edge.registeredConnections().length === 2, 10_000, "the killed connector's connections to close");
    traffic.resume();

    const takeoverAt = await leads(follower, LEASE_MS * 4);
    const bound = LEASE_MS + 2 * RETRY_MS;
    t.log(`SIGKILL: the follower led ${takeoverAt - killedAt} ms after the kill`);
    t.true(takeoverAt - killedAt <= bound + 1_000, `took over ${takeoverAt - killedAt} ms after the kill (bound ${bound} ms + 1 s for observation)`);
    await waitUntil('warren_leader 1 on the new leader', async () => (await follower.metric('warren_leader')) === 1, 5_000);

    // The new leader does the leader's work: a new Ingress gets its status.
    await admin.networking.createNamespacedIngress({
      namespace: ns,
      body: ingress(ns, 'after-failover', { rules: [{ host: 'after.example', paths: [{ service: 'web', port: 80 }] }] }),
    });
    await waitUntil('status written by the new leader', async () => (await statusAddresses(admin, ns, 'after-failover')).join() === tunnelHostname(edge), 20_000);
    await sendUntil(edge.eyeballUrl, '/', { host: 'after.example' }, (a) => a.status === 200, 10_000, 'after.example routed');
    await traffic.next(20);
  } finally {
    await traffic.stop();
  }
  t.true(traffic.results.length >= 40, `${traffic.results.length} requests sent`);
  t.deepEqual(traffic.failures(), [], 'every request through the edge succeeded');
  t.true(traffic.results.filter((r) => r.at > killedAt).length >= 20, 'requests were sent after the kill too');

  // Leave no leader behind for the next test: the survivor stops gracefully.
  const survivorExit = await follower.stop();
  running.delete(follower);
  t.is(survivorExit.code, 0, describeExit(survivorExit));
});

test.serial('SIGTERM of the leader: it releases the Lease, the follower leads before the Lease could expire; requests keep succeeding', async (t) => {
  const pair = await startPair(t, 'warren-c', 'warren-d');
  const [leader, follower] = await electedOf(pair);
  // Four requests in flight most of the time, so some arrive while the leader is draining its connections.
  const traffic = new TrafficLoop({ baseUrl: edge.eyeballUrl, host: HOST, maxRequests: 5_000, maxMs: 60_000, concurrency: 4, intervalMs: 10 }).start();
  let handoverMs: number;
  try {
    await bothServe(pair, traffic);
    // No pause this time: the leader drains its tunnel connections while requests keep arriving.
    leader.child.signal('SIGTERM');
    const termAt = Date.now();
    const takeoverAt = await leads(follower, LEASE_MS * 4);
    handoverMs = takeoverAt - termAt;
    const exit = await leader.child.exited;
    running.delete(leader);
    t.is(exit.code, 0, `the old leader stops gracefully (${describeExit(exit)})`);
    await waitUntil('warren_leader 1 on the new leader', async () => (await follower.metric('warren_leader')) === 1, 5_000);
    await traffic.next(20);
  } finally {
    await traffic.stop();
  }
  t.log(`SIGTERM: the follower led ${handoverMs} ms after the signal; ${traffic.results.length} requests`);
  // Without the release the follower would wait for the Lease to expire: at least LEASE_MS - RETRY_MS after the signal.
  t.true(handoverMs < LEASE_MS - RETRY_MS, `the follower led ${handoverMs} ms after the SIGTERM, as if the Lease had not been released`);
  t.true(traffic.results.length >= 20, `${traffic.results.length} requests sent`);
  t.deepEqual(traffic.failures(), [], 'every request through the edge succeeded');
  t.true(follower.accessLog().length > 0);
});
