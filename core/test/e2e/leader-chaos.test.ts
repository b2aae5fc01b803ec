/**
 * Leadership under faults, with two real controller processes: 30 rounds, each freezing the leader (SIGSTOP, then
 * SIGCONT) while a new Ingress is created, in three variants:
 *  - `freeze`: the leader alone, for longer than the lease: the follower takes over, and the frozen one resumes
 *    into a lost term;
 *  - `freeze+compact`: the same, with etcd compacted during the freeze;
 *  - `freeze-all+restart`: both replicas frozen, an Ingress created, kube-apiserver stopped, etcd compacted (every
 *    watch must relist after 410 Gone), both resumed while kube-apiserver is still down, kube-apiserver started —
 *    so the replicas back off against a missing apiserver and meet it while its authorizer warms up.
 * Each round asserts that whoever holds the Lease then writes the new Ingress's status within a bound, that exactly
 * one replica reports `warren_leader 1`, and that every term started its leader-only work.
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EdgeSimulator } from '../../src/edge-simulator/index.js';
import { adminClients, useApiServer, type AdminClients } from '../support/apiserver.js';
import { ensureIngressClass, ingress, testHost } from '../support/k8s-objects.js';
import { waitUntil } from './support/children.js';
import { createEchoBackend, statusAddresses } from './support/cluster.js';
import { startEchoService, type EchoService } from './support/echo.js';
import { controllerKubeconfig, leaseHolder, startEdge, startWarren, tunnelHostname, type WarrenProcess } from './support/warren.js';

const ROUNDS = 30;
/** Bound on the whole loop (each round is bounded too). */
const MAX_LOOP_MS = 240_000;
const LEASE = { leaseDuration: '2s', renewDeadline: '1500ms', retryPeriod: '250ms' };
/** Longer than the lease, so the follower takes over while the leader is frozen. */
const FREEZE_MS = 2_500;
/** From the moment everything is back (resumed, apiserver ready) until the new Ingress has its status. */
const STATUS_BOUND_MS = 15_000;
const KINDS = ['freeze', 'freeze+compact', 'freeze', 'freeze-all+restart'] as const;

const server = useApiServer(test);
let admin: AdminClients;
let edge: EdgeSimulator;
let backend: EchoService;
let ns: string;
const running = new Set<WarrenProcess>();

test.serial.before(async () => {
  admin = adminClients(server());
  await ensureIngressClass(admin);
  edge = await startEdge();
  backend = await startEchoService('chaos-web', [testHost(5)]);
  ns = await server().createNamespace('chaos');
  await createEchoBackend(admin, ns, backend);
});

test.after.always(async () => {
  for (const w of running) w.child.signal('SIGCONT');
  await Promise.all([...running].map((w) => w.stop()));
  await edge?.close();
  await backend?.close();
});

test.serial('30 rounds of freezes, apiserver restarts and etcd compaction: whoever holds the Lease writes status for a new Ingress in time', async (t) => {
  t.timeout(MAX_LOOP_MS + 90_000);
  const kubeconfigFile = await controllerKubeconfig(server());
  const pair = await Promise.all(['chaos-a', 'chaos-b'].map((podName) => startWarren({ podName, kubeconfigFile, edge, settings: { kubernetes: { leaderElection: LEASE } } })));
  for (const w of pair) running.add(w);
  t.teardown(async () => {
    if (!t.passed) for (const w of pair) t.log(w.child.tail(60));
    for (const w of pair) w.child.signal('SIGCONT');
    await Promise.all(pair.map((w) => w.stop()));
  });
  const hostname = tunnelHostname(edge);
  const published = (name: string): Promise<string> =>
    statusAddresses(admin, ns, name).then(
      (a) => a.join(),
      () => '',
    );
  const holder = async (): Promise<WarrenProcess | undefined> => {
    const id = await leaseHolder(server().adminConfig()).catch(() => undefined);
    return pair.find((w) => id?.startsWith(`${w.podName}_`));
  };
  const create = (name: string) =>
    admin.networking.createNamespacedIngress({
      namespace: ns,
      body: ingress(ns, name, { rules: [{ host: `${name}.chaos.example`, paths: [{ service: backend.name, port: 80 }] }] }),
    });

  const started = Date.now();
  const times: Record<(typeof KINDS)[number], number[]> = { freeze: [], 'freeze+compact': [], 'freeze-all+restart': [] };
  let rounds = 0;
  for (let round = 0; round < ROUNDS && Date.now() - started < MAX_LOOP_MS; round++) {
    const kind = KINDS[round % KINDS.length]!;
    const name = `c${round}-${kind.replace(/\W+/g, '-')}`;
    let leader: WarrenProcess | undefined;
    await waitUntil(`round ${round}: a leader`, async () => !!(leader = await holder()), 20_000);

    if (kind !== 'freeze-all+restart') {
      const frozenAt = Date.now();
      leader!.child.signal('SIGSTOP');
      await create(name);
      if (kind === 'freeze+compact') await server().compactEtcd();
      await sleep(FREEZE_MS - (Date.now() - frozenAt));
      leader!.child.signal('SIGCONT');
    } else {
      for (const w of pair) w.child.signal('SIGSTOP');
      await create(name);
      await server().stopApiServerProcess();
      await server().compactEtcd();
      for (const w of pair) w.child.signal('SIGCONT');
      await server().startApiServerProcess();
    }
    const backAt = Date.now();
    await waitUntil(`round ${round} (${kind}): status of ${name}`, async () => (await published(name)) === hostname, STATUS_BOUND_MS);
    const tookMs = Date.now() - backAt;
    times[kind].push(tookMs);
    // One leader, and it is the one holding the Lease.
    await waitUntil(
      `round ${round} (${kind}): one warren_leader 1, on the Lease holder`,
      async () => {
        const h = await holder();
        const gauges = await Promise.all(pair.map((w) => w.metric('warren_leader').catch(() => undefined)));
        return !!h && gauges.filter((g) => g === 1).length === 1 && gauges[pair.indexOf(h)] === 1;
      },
      10_000,
    );
    rounds++;
  }
  const summary = Object.entries(times)
    .map(([kind, list]) => `${kind}: n=${list.length} median=${median(list)} ms max=${Math.max(...list)} ms`)
    .join('; ');
  t.log(`${rounds} rounds in ${Date.now() - started} ms; status after recovery — ${summary}`);
  t.true(rounds >= ROUNDS, `${rounds} of ${ROUNDS} rounds ran within ${MAX_LOOP_MS} ms`);
  for (const w of pair) {
    const lines = w.logLines();
    // Every "became leader" is followed by "started leader-only runnables" (no term without its work).
    let open = false;
    for (const l of lines) {
      if (l.msg === 'became leader') open = true;
      else if (l.msg === 'started leader-only runnables') open = false;
      else if (l.msg === 'stopped leading' && open) t.fail(`${w.podName}: a term ended without its leader-only runnables ever starting`);
    }
  }
});

function median(list: readonly number[]): number {
  const sorted = [...list].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}
