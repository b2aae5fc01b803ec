import test from 'ava';
import { Deadline, deadlineListCount } from '../../src/proxy/deadlines.js';

/**
 * The shared deadline lists behind the exchanges' idle timeouts: an entry expires no earlier than its duration after
 * it was last (re)started, whatever else shares its list, and not at all once cancelled.
 */

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// The lists' timers do not keep the process running (an exchange's sockets do): this interval stands in for them.
let keepAlive: NodeJS.Timeout | undefined;
test.before(() => {
  keepAlive = setInterval(() => {}, 1_000);
});
test.after.always(() => clearInterval(keepAlive));

/** Starts an entry of `ms` and resolves with the milliseconds from its start to its expiry. */
function expiry(ms: number, setup?: (d: Deadline) => void): { deadline: Deadline; elapsed: Promise<number> } {
  let deadline!: Deadline;
  const started = performance.now();
  const elapsed = new Promise<number>((resolve) => {
    deadline = new Deadline(() => resolve(performance.now() - started));
  });
  deadline.start(ms);
  setup?.(deadline);
  return { deadline, elapsed };
}

test('entries of one duration expire in turn, none before its time, each one soon after', async (t) => {
  const ms = 73;
  const runs: Promise<number>[] = [];
  for (let i = 0; i < 5; i++) {
    runs.push(expiry(ms).elapsed);
    await sleep(15);
  }
  for (const elapsed of await Promise.all(runs)) {
    t.true(elapsed >= ms, `expired after ${elapsed} ms, before its ${ms} ms`);
    t.true(elapsed < ms + 500, `expired ${elapsed} ms after its start`);
  }
});

test('a refreshed entry expires its duration after the last refresh; a cancelled one never', async (t) => {
  const ms = 80;
  let refreshedAt = 0;
  const refreshed = expiry(ms);
  const cancelled = expiry(300);
  let cancelledFired = false;
  cancelled.elapsed.then(() => (cancelledFired = true));
  // An entry behind it in the same list, so the list's timer has something to expire meanwhile.
  const other = expiry(ms);
  for (let i = 0; i < 4; i++) {
    await sleep(40);
    if (i === 0) cancelled.deadline.cancel();
    refreshed.deadline.refresh();
    refreshedAt = performance.now();
  }
  const since = await refreshed.elapsed.then(() => performance.now() - refreshedAt);
  t.true(since >= ms - 1, `expired ${since} ms after the last refresh`);
  t.true((await other.elapsed) >= ms);
  // Past the cancelled entry's time: its list's timer fired with nothing left to expire.
  await sleep(300);
  t.false(cancelledFired);
  t.false(cancelled.deadline.pending);
});

test('entries of different durations, and entries started by an expiring one, keep their own times', async (t) => {
  const long = expiry(150);
  const short = expiry(30);
  let second: Promise<number> | undefined;
  const chained = new Promise<number>((resolve) => {
    const first = new Deadline(() => {
      // Started from a callback of the list it joins: it must not wait for a later arming of that list.
      const { elapsed } = expiry(30);
      second = elapsed;
      resolve(0);
    });
    first.start(30);
  });
  await chained;
  t.true((await short.elapsed) >= 30);
  const s = await second!;
  t.true(s >= 30 && s < 500, `chained entry expired after ${s} ms`);
  const l = await long.elapsed;
  t.true(l >= 150 && l < 650, `long entry expired after ${l} ms`);
});

test('a restart with another duration moves the entry to that duration', async (t) => {
  const { deadline, elapsed } = expiry(400);
  deadline.start(40);
  const at = await elapsed;
  t.true(at >= 40 && at < 380, `expired after ${at} ms`);
});

test.serial('lists of durations no longer in use go away once their timer fired', async (t) => {
  const before = deadlineListCount();
  const fired: number[] = [];
  // Fifty durations nothing else uses: half expire, half are cancelled at once.
  for (let i = 0; i < 50; i++) {
    const d = new Deadline(() => fired.push(i));
    d.start(1_000 + i);
    if (i % 2 === 1) d.cancel();
  }
  t.is(deadlineListCount(), before + 50);
  const until = performance.now() + 5_000;
  while ((fired.length < 25 || deadlineListCount() > before) && performance.now() < until) await sleep(50);
  t.is(fired.length, 25);
  t.is(deadlineListCount(), before);
});
