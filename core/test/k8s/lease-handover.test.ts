import test from 'ava';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import type { KubeClient } from '../../src/k8s/api/client.js';
import { apiPath } from '../../src/k8s/api/client.js';
import { LeaderElector } from '../../src/k8s/leader-election.js';
import { useApiServer } from '../support/apiserver.js';
import { eventually } from '../support/controller.js';

const server = useApiServer(test);
const RETRY_MS = 400;

/** The admin client without watches: a replica whose Lease watch is down learns only from its own requests. */
function blindClient(client: KubeClient): KubeClient {
  return {
    get: client.get.bind(client),
    put: client.put.bind(client),
    post: client.post.bind(client),
    watch: (_path: string, _query: unknown, _handler: unknown, options: { signal: AbortSignal }) =>
      new Promise((resolve) => options.signal.addEventListener('abort', () => resolve('aborted'), { once: true })),
  } as unknown as KubeClient;
}

/** A replica on Lease `name` in `default` with the short timings of these tests. */
const replica = (client: KubeClient, name: string, identity: string) =>
  new LeaderElector({
    client,
    namespace: 'default',
    name,
    identity,
    leaseDurationMs: 4_000,
    renewDeadlineMs: 3_000,
    retryPeriodMs: RETRY_MS,
    logger: pino({ level: 'silent' }),
  });

test.serial('with every Lease watch down, a deleted Lease is re-created only after its old holder stopped leading', async (t) => {
  const name = `handover-${randomBytes(3).toString('hex')}`;
  const transitions: Array<{ who: string; leading: boolean; at: number }> = [];
  const elector = (who: string) => {
    const e = replica(blindClient(server().adminClient()), name, `handover-${who}`);
    e.leadership.subscribe(({ leading }) => transitions.push({ who, leading, at: performance.now() }));
    return e;
  };
  const replicas = { a: elector('a'), b: elector('b') };
  const stop = new AbortController();
  const runs = Object.values(replicas).map((e) => e.run(stop.signal));
  t.teardown(async () => {
    stop.abort();
    await Promise.all(runs);
  });
  const admin = server().adminClient();
  const leading = () => Object.values(replicas).filter((e) => e.leadership.current.leading).length;
  for (let round = 0; round < 12; round++) {
    await eventually('a single leader', () => leading() === 1, 15_000);
    // Delete at a random phase of the renewals, once the Lease has lived a few retry periods: without watches, a
    // Lease that lives less than one retry period can go unseen by the other replica (see operations.md).
    await new Promise((resolve) => setTimeout(resolve, (2 + Math.random()) * RETRY_MS));
    const from = transitions.length;
    await admin.delete(apiPath('coordination.k8s.io/v1', 'leases', 'default', name));
    await eventually('a leader after the deletion', () => transitions.slice(from).some((x) => x.leading), 15_000);
  }
  // Both replicas run in this process, so the transitions are in the order they happened.
  const holders = new Set<string>();
  for (const { who, leading: now, at } of transitions) {
    if (now && holders.size > 0) t.fail(`${who} began leading at ${Math.round(at)} ms while ${[...holders].join(', ')} still led`);
    if (now) holders.add(who);
    else holders.delete(who);
  }
  t.true(transitions.filter((x) => x.leading).length >= 13, 'leadership moved on after every deletion');
});

test.serial("a replica whose create of the Lease conflicted still leaves a deleted Lease's holder the hand-over gap", async (t) => {
  // b finds no Lease and sends its create only once a has created the Lease and leads, so the create conflicts and
  // b reads nothing: it knows of a's term only from its watch. A deletion right after must not let b take the Lease
  // at once, while a may still have a write on the way; b waits the gap of a validly held Lease (1.5 retry periods).
  const name = `race-${randomBytes(3).toString('hex')}`;
  const admin = server().adminClient();
  const leasePath = apiPath('coordination.k8s.io/v1', 'leases', 'default', name);
  let aLeads = (): void => {};
  const aLed = new Promise<void>((resolve) => {
    aLeads = resolve;
  });
  let bCreateDone = (): void => {};
  const bCreateAnswered = new Promise<void>((resolve) => {
    bCreateDone = resolve;
  });
  const lateCreate = {
    get: admin.get.bind(admin),
    put: admin.put.bind(admin),
    watch: admin.watch.bind(admin),
    post: async (...args: Parameters<KubeClient['post']>) => {
      await aLed;
      try {
        return await admin.post(...args);
      } finally {
        bCreateDone();
      }
    },
  } as unknown as KubeClient;
  const b = replica(lateCreate, name, 'race-b');
  const a = replica(admin, name, 'race-a');
  a.leadership.subscribe(({ leading }) => {
    if (leading) aLeads();
  });
  const stop = new AbortController();
  const runs = [b.run(stop.signal)];
  t.teardown(async () => {
    stop.abort();
    await Promise.all(runs);
  });
  // b's first attempt is waiting on its create before a starts.
  await new Promise((resolve) => setTimeout(resolve, 100));
  runs.push(a.run(stop.signal));
  await bCreateAnswered;
  t.false(b.leadership.current.leading, "b's create conflicted");
  const deletedAt = performance.now();
  await admin.delete(leasePath);
  await eventually('b to lead after the deletion', () => b.leadership.current.leading, 10_000);
  const takeoverMs = performance.now() - deletedAt;
  t.true(takeoverMs >= 1.5 * RETRY_MS - 50, `b re-created the deleted Lease ${Math.round(takeoverMs)} ms after the deletion, inside the hand-over gap`);
  t.false(a.leadership.current.leading);
});
