/**
 * One leader at a time when the Lease is deleted (`kubectl delete lease warren-leader`), checked by an
 * independent witness: the apiserver's own audit log.
 *
 * Two real controller processes; each round deletes the Lease while the leader is busy with leader-only writes
 * (a burst of new Ingresses: status and `Synced` Events). The follower re-creates the Lease and leads. From the
 * audit log the test then asserts that no leader-only write (Ingress status or finalizers, Events, Secrets) from
 * the old leader — told apart by the holder identity in its User-Agent — reached the apiserver after the new
 * holder's Lease write completed, and that the old leader had been writing just before (the round was not idle).
 */
import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { EdgeSimulator } from '../../src/edge-simulator/index.js';
import { adminClients, auditMicros, CONTROLLER_NAMESPACE, useApiServer, type AdminClients, type AuditEvent } from '../support/apiserver.js';
import { ensureIngressClass, ingress, testHost } from '../support/k8s-objects.js';
import { waitUntil } from './support/children.js';
import { createEchoBackend, statusAddresses } from './support/cluster.js';
import { startEchoService, type EchoService } from './support/echo.js';
import { controllerKubeconfig, LEASE_NAME, leaseHolder, startEdge, startWarren, tunnelHostname, type WarrenProcess } from './support/warren.js';

const ROUNDS = 20;
/** Bound on the whole loop; a round takes about 1–3 s. */
const MAX_LOOP_MS = 150_000;
const BURST = 10;

const server = useApiServer(test, { audit: true });
let admin: AdminClients;
let edge: EdgeSimulator;
let backend: EchoService;
let ns: string;
const running = new Set<WarrenProcess>();

test.serial.before(async () => {
  admin = adminClients(server());
  await ensureIngressClass(admin);
  edge = await startEdge();
  backend = await startEchoService('fencing-web', [testHost(4)]);
  ns = await server().createNamespace('fencing');
  await createEchoBackend(admin, ns, backend);
});

test.after.always(async () => {
  await Promise.all([...running].map((w) => w.stop()));
  await edge?.close();
  await backend?.close();
});

/** A write only the leader makes: Ingress status or finalizers, Events, Secrets (tunnel lifecycle). */
function leaderOnlyWrite(e: AuditEvent): boolean {
  if (!['create', 'update', 'patch', 'delete'].includes(e.verb)) return false;
  const resource = e.objectRef?.resource;
  return resource === 'ingresses' || resource === 'events' || resource === 'secrets';
}

function describe(e: AuditEvent): string {
  const o = e.objectRef ?? {};
  return `${e.verb} ${o.resource}${o.subresource ? `/${o.subresource}` : ''} ${o.namespace}/${o.name} received ${e.requestReceivedTimestamp} (${e.responseStatus?.code})`;
}

/** The Ingress's published hostnames; none while it does not exist yet. */
const published = (name: string): Promise<string> =>
  statusAddresses(admin, ns, name).then(
    (a) => a.join(),
    () => '',
  );

const holderOf = (e: AuditEvent): string | undefined => (e.requestObject as { spec?: { holderIdentity?: string } } | undefined)?.spec?.holderIdentity;

test.serial("Lease deleted under a busy leader: it stops at once and sends no leader-only write after the new holder's Lease write (audit log, 20 rounds)", async (t) => {
  t.timeout(MAX_LOOP_MS + 60_000);
  const kubeconfigFile = await controllerKubeconfig(server());
  const pair = await Promise.all(['fence-a', 'fence-b'].map((podName) => startWarren({ podName, kubeconfigFile, edge })));
  for (const w of pair) running.add(w);
  t.teardown(async () => {
    if (!t.passed) for (const w of pair) t.log(w.child.tail(40));
    await Promise.all(pair.map((w) => w.stop()));
  });
  const hostname = tunnelHostname(edge);
  const started = Date.now();
  let rounds = 0;
  let handoverMs = 0;
  for (let round = 0; round < ROUNDS && Date.now() - started < MAX_LOOP_MS; round++) {
    // The current leader, agreed by the Lease and both gauges.
    let holder: string | undefined;
    let leader: WarrenProcess | undefined;
    await waitUntil(
      `round ${round}: one leader`,
      async () => {
        holder = await leaseHolder(server().adminConfig());
        leader = pair.find((w) => holder?.startsWith(`${w.podName}_`));
        const follower = pair.find((w) => w !== leader);
        return !!leader && (await leader.metric('warren_leader')) === 1 && (await follower!.metric('warren_leader')) === 0;
      },
      15_000,
    );
    const oldLeader = leader!;
    const oldIdentity = holder!;
    const newLeader = pair.find((w) => w !== oldLeader)!;

    // Leader-only work in flight: a burst of new Ingresses, each needing a status write and an Event.
    const names = Array.from({ length: BURST }, (_, i) => `r${round}-${i}`);
    const burst = (async () => {
      for (const name of names) {
        await admin.networking.createNamespacedIngress({
          namespace: ns,
          body: ingress(ns, name, { rules: [{ host: `${name}.fencing.example`, paths: [{ service: backend.name, port: 80 }] }] }),
        });
        await sleep(30);
      }
    })();
    await waitUntil(`round ${round}: the leader to publish a status`, async () => (await published(names[0]!)) === hostname, 10_000);

    const deletedAt = Date.now();
    await admin.coordination.deleteNamespacedLease({ namespace: CONTROLLER_NAMESPACE, name: LEASE_NAME });
    let newHolder: string | undefined;
    await waitUntil(`round ${round}: a new Lease`, async () => !!(newHolder = await leaseHolder(server().adminConfig())), 10_000);
    handoverMs = Math.max(handoverMs, Date.now() - deletedAt);
    t.true(newHolder!.startsWith(`${newLeader.podName}_`), `round ${round}: the follower took the deleted Lease (holder ${newHolder})`);
    // The old leader knew before the new Lease existed; its gauge says so by the next scrape.
    await waitUntil(`round ${round}: warren_leader 0 on the old leader`, async () => (await oldLeader.metric('warren_leader')) === 0, 1_000);

    await burst;
    await waitUntil(
      `round ${round}: the new leader to publish every status`,
      async () => {
        for (const name of names) if ((await published(name)) !== hostname) return false;
        return true;
      },
      15_000,
    );

    // The witness.
    const audit = server().auditEvents();
    const deletion = audit.findLast((e) => e.verb === 'delete' && e.objectRef?.resource === 'leases' && e.objectRef.name === LEASE_NAME);
    t.truthy(deletion, `round ${round}: the Lease deletion is on record`);
    const after = auditMicros(deletion!.requestReceivedTimestamp);
    const takeover = audit.find(
      (e) =>
        e.objectRef?.resource === 'leases' &&
        e.objectRef.name === LEASE_NAME &&
        (e.verb === 'create' || e.verb === 'update') &&
        (e.responseStatus?.code ?? 0) < 300 &&
        holderOf(e) === newHolder &&
        auditMicros(e.requestReceivedTimestamp) > after,
    );
    t.truthy(takeover, `round ${round}: the new holder's Lease write is on record`);
    const fence = auditMicros(takeover!.stageTimestamp);
    const fromOld = audit.filter((e) => e.userAgent?.includes(`(${oldIdentity})`) && leaderOnlyWrite(e));
    const busy = fromOld.filter((e) => auditMicros(e.requestReceivedTimestamp) > after - 2_000_000n && auditMicros(e.requestReceivedTimestamp) <= fence);
    const late = fromOld.filter((e) => auditMicros(e.requestReceivedTimestamp) > fence);
    t.true(busy.length > 0, `round ${round}: the old leader was writing in the 2 s before it lost the Lease`);
    t.deepEqual(late.map(describe), [], `round ${round}: leader-only writes from ${oldIdentity} after ${newHolder} wrote the Lease at ${takeover!.stageTimestamp}`);
    rounds++;
  }
  t.log(`${rounds} rounds in ${Date.now() - started} ms; longest deletion-to-new-Lease ${handoverMs} ms`);
  t.true(rounds >= ROUNDS, `${rounds} of ${ROUNDS} rounds ran within ${MAX_LOOP_MS} ms`);
});
