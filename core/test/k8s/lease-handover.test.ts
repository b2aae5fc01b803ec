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

test.serial('with every Lease watch down, a deleted Lease is re-created only after its old holder stopped leading', async (t) => {
  const name = `handover-${randomBytes(3).toString('hex')}`;
  const transitions: Array<{ who: string; leading: boolean; at: number }> = [];
  const elector = (who: string) => {
    const e = new LeaderElector({
      client: blindClient(server().adminClient()),
      namespace: 'default',
      name,
      identity: `handover-${who}`,
      leaseDurationMs: 4_000,
      renewDeadlineMs: 3_000,
      retryPeriodMs: RETRY_MS,
      logger: pino({ level: 'silent' }),
    });
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
