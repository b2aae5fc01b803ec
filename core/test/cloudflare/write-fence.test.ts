import test from 'ava';
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { LeaderElector, NotLeaderError } from '../../src/k8s/leader-election.js';
import { startFakeCloudflare } from '../../src/testing/index.js';
import { useApiServer } from '../support/apiserver.js';
import { eventually } from '../support/controller.js';

const server = useApiServer(test);
const TOKEN = 'write-fence-token-SECRET';
const RENEW_DEADLINE_MS = 1_500;

/** Blocks the whole process for `ms`, as SIGSTOP would: no timer, socket or promise runs meanwhile. */
function freeze(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

test.serial('Cloudflare writes pass the Lease fence: a leader frozen past its renew deadline sends none, reads still pass', async (t) => {
  const fake = await startFakeCloudflare({ tokens: [{ value: TOKEN }] });
  t.teardown(() => fake.close());
  const zone = fake.addZone('example.com');
  const factory = fake.clients(TOKEN, { maxRetries: 0 });
  const elector = new LeaderElector({
    client: server().adminClient(),
    namespace: 'default',
    name: `cf-fence-${randomBytes(3).toString('hex')}`,
    identity: 'cf-fence-replica',
    leaseDurationMs: 4_000,
    renewDeadlineMs: RENEW_DEADLINE_MS,
    retryPeriodMs: 300,
    logger: pino({ level: 'silent' }),
  });
  factory.fenceWrites(elector.fence);
  const stop = new AbortController();
  const running = elector.run(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running;
  });
  const create = (name: string) => factory().dns.records.create({ zone_id: zone.id, type: 'A', name: `${name}.example.com`, content: '192.0.2.1', ttl: 1 });
  const writes = () => fake.count('POST /zones/:zone/dns_records');
  /**
   * Writes as a leader. On a loaded machine a term can end between seeing the leadership and sending (a renewal
   * older than renewDeadline closes the fence, as designed): then wait for the next term and try again. A refused
   * attempt never reaches Cloudflare, so the counts below stay exact.
   */
  const createAsLeader = async (name: string) => {
    const until = Date.now() + 20_000;
    for (;;) {
      await eventually('leadership', () => elector.leadership.current.leading, 10_000);
      try {
        return await create(name);
      } catch (err) {
        if (!((err as Error).cause instanceof NotLeaderError) || Date.now() > until) throw err;
      }
    }
  };

  await createAsLeader('while-leading');
  t.is(writes(), 1, 'a leader with a fresh Lease writes');

  for (let round = 0; round < 3; round++) {
    await eventually('leadership', () => elector.leadership.current.leading, 10_000);
    freeze(RENEW_DEADLINE_MS + 300);
    // The first thing the resumed process does: nothing has run since the freeze, not even the elector's timers.
    const refused = await t.throwsAsync(create(`after-freeze-${round}`));
    t.true(refused?.cause instanceof NotLeaderError, `refused by the fence, not by Cloudflare: ${String(refused?.cause ?? refused)}`);
    t.is(writes(), 1, `round ${round}: the write of a replica whose renewal is older than renewDeadline never reaches Cloudflare`);
    t.false(elector.leadership.current.leading, 'the refused write made the replica step down');
    await t.notThrowsAsync(factory().zones.list(), 'reads are not fenced');
  }

  await createAsLeader('leading-again');
  t.is(writes(), 2, 'writes pass again in the next term');
});
