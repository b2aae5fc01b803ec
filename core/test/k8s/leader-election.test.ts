import test from 'ava';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { NamedRunnable } from '../../src/composition/parts.js';
import { adminClients, CONTROLLER_NAMESPACE, useApiServer } from '../support/apiserver.js';
import { eventually, startController, type TestController } from '../support/controller.js';
import { ensureIngressClass } from '../support/k8s-objects.js';

const server = useApiServer(test);

test.serial.before(async () => {
  await ensureIngressClass(adminClients(server()));
});

/** A leader-only runnable that records when it runs. */
function leaderProbe(name: string) {
  const state = { running: false, starts: 0, stops: 0 };
  const runnable: NamedRunnable = {
    name: `probe-${name}`,
    runnable: {
      needsLeader: true,
      async start(signal) {
        state.running = true;
        state.starts++;
        if (!signal.aborted) await once(signal, 'abort');
        state.running = false;
        state.stops++;
      },
    },
  };
  return { state, runnable };
}

async function lease() {
  return adminClients(server()).coordination.readNamespacedLease({ namespace: CONTROLLER_NAMESPACE, name: 'warren-leader' });
}

const FAST = { leaseDuration: '4s', renewDeadline: '3s', retryPeriod: '500ms' } as const;

async function pair(settings?: Record<string, string>, releaseOnCancel = true) {
  const probes = { a: leaderProbe('a'), b: leaderProbe('b') };
  const config = settings ? { kubernetes: { leaderElection: settings } } : {};
  const a = await startController(server(), { identity: 'replica-a', extraRunnables: [probes.a.runnable], config, releaseOnCancel });
  const b = await startController(server(), { identity: 'replica-b', extraRunnables: [probes.b.runnable], config, releaseOnCancel });
  return { a, b, probes };
}

function leaderOf(a: TestController, b: TestController): [TestController, TestController] | undefined {
  if (a.cp.elector!.leadership.current.leading && !b.cp.elector!.leadership.current.leading) return [a, b];
  if (b.cp.elector!.leadership.current.leading && !a.cp.elector!.leadership.current.leading) return [b, a];
  return undefined;
}

test.serial('two replicas: exactly one leads, and leader-only work runs only there', async (t) => {
  const { a, b, probes } = await pair();
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  const [leader, follower] = await eventually('a leader', () => leaderOf(a, b));
  for (let i = 0; i < 8; i++) {
    t.truthy(leaderOf(a, b), 'never zero or two leaders');
    await sleep(250);
  }
  t.is(leaderOf(a, b)?.[0], leader);
  const leaderProbeState = leader === a ? probes.a.state : probes.b.state;
  const followerProbeState = follower === a ? probes.a.state : probes.b.state;
  t.true(leaderProbeState.running);
  t.false(followerProbeState.running);
  t.is(followerProbeState.starts, 0);
  const record = await lease();
  t.is(record.spec?.holderIdentity, leader.cp.identity);
  t.is(record.spec?.leaseDurationSeconds, 15);
  t.is(follower.cp.elector!.leader, leader.cp.identity, 'the follower knows who leads');
  t.regex(leader.cp.identity, /^replica-[ab]$/);
  t.true((await leader.registry.getSingleMetricAsString('warren_leader')).includes('warren_leader 1'));
  t.true((await follower.registry.getSingleMetricAsString('warren_leader')).includes('warren_leader 0'));
});

test.serial('a graceful stop releases the Lease and the follower takes over at its next retry, not after expiry', async (t) => {
  const { a, b, probes } = await pair();
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  const [leader, follower] = await eventually('a leader', () => leaderOf(a, b));
  const before = await lease();
  const followerProbe = follower === a ? probes.a.state : probes.b.state;
  const leaderProbeState = leader === a ? probes.a.state : probes.b.state;
  const started = Date.now();
  await leader.stop();
  t.false(leaderProbeState.running, 'leader-only work stopped before the process ends');
  await eventually('the follower to lead', () => follower.cp.elector!.leadership.current.leading, 10_000);
  const takeoverMs = Date.now() - started;
  // Defaults: 15 s Lease, 2 s retry period. A follower that had to wait for the Lease to expire would need about 15 s;
  // after a release it takes over at its next retry. The margin over one retry period absorbs a loaded machine.
  t.true(takeoverMs < 7_500, `takeover took ${takeoverMs} ms, as if the Lease had not been released`);
  t.true(followerProbe.running);
  const after = await lease();
  t.is(after.spec?.holderIdentity, follower.cp.identity);
  t.is(after.spec?.leaseTransitions, (before.spec?.leaseTransitions ?? 0) + 1);
  t.true(leader.logs.text.includes('released the leader Lease'));
});

test.serial('a leader that stops renewing without releasing (killed) is replaced after the lease expires', async (t) => {
  const { a, b, probes } = await pair(FAST, false);
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  const [leader, follower] = await eventually('a leader', () => leaderOf(a, b));
  const followerProbe = follower === a ? probes.a.state : probes.b.state;
  const crashed = Date.now();
  await leader.stop(); // no release: the Lease still names the old leader
  t.is((await lease()).spec?.holderIdentity, leader.cp.identity);
  await eventually('the follower to lead', () => follower.cp.elector!.leadership.current.leading, 10_000);
  const takeoverMs = Date.now() - crashed;
  // The follower must wait for the Lease to expire (4 s, measured from the last change it saw, at most one retry
  // period before the crash), and must not wait much longer.
  t.true(takeoverMs >= 2_500, `took over after ${takeoverMs} ms, before the Lease could have expired`);
  t.true(takeoverMs <= 4_000 + 2_500, `took over after ${takeoverMs} ms`);
  t.true(followerProbe.running);
});

test.serial('the leader steps down when it cannot renew, and leadership resumes when the apiserver is back', async (t) => {
  const { a, b, probes } = await pair(FAST);
  t.teardown(async () => {
    await a.stop();
    await b.stop();
  });
  const [leader] = await eventually('a leader', () => leaderOf(a, b));
  const leaderProbeState = leader === a ? probes.a.state : probes.b.state;
  t.true(leaderProbeState.running);
  const termBefore = leader.cp.elector!.leadership.current.term;
  await server().stopApiServerProcess();
  try {
    // renewDeadline is 3 s: the leader must stop its leader-only work well before its 4 s Lease could expire.
    await eventually('the leader to step down', () => !a.cp.elector!.leadership.current.leading && !b.cp.elector!.leadership.current.leading, 8_000);
    t.false(probes.a.state.running);
    t.false(probes.b.state.running);
    t.true(leader.logs.text.includes('stepping down'));
  } finally {
    await server().startApiServerProcess();
  }
  const [again] = await eventually('a leader again', () => leaderOf(a, b), 20_000);
  t.true(probes.a.state.running !== probes.b.state.running);
  // Control plugins learn from the term that state they read from Cloudflare in an earlier one may be stale.
  t.true(
    again === leader ? again.cp.elector!.leadership.current.term > termBefore : again.cp.elector!.leadership.current.term >= 1,
    'every term this replica began is counted',
  );
});
