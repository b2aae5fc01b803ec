import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, WarrenError } from '../../src/errors.js';
import { WorkQueue } from '../../src/reconcile/workqueue.js';

function running<K>(queue: WorkQueue<K>, reconcile: (key: K, signal: AbortSignal) => void | Promise<void>) {
  const controller = new AbortController();
  const done = queue.run(reconcile, controller.signal);
  return {
    stop: async () => {
      controller.abort();
      await done;
    },
    done,
  };
}

test('a burst of 10,000 adds of one key yields one reconcile', async (t) => {
  const queue = new WorkQueue<string>({ name: 'routes', coalesceMs: 20 });
  const seen: string[] = [];
  const r = running(queue, (key) => void seen.push(key));
  t.teardown(r.stop);
  for (let i = 0; i < 10_000; i++) queue.add('routes');
  await queue.idle();
  t.deepEqual(seen, ['routes']);
});

test('distinct keys are each processed once, duplicates deduplicated', async (t) => {
  const queue = new WorkQueue<string>({ name: 'status', coalesceMs: 5, concurrency: 2 });
  const counts = new Map<string, number>();
  const r = running(queue, (key) => void counts.set(key, (counts.get(key) ?? 0) + 1));
  t.teardown(r.stop);
  for (let round = 0; round < 3; round++) for (let i = 0; i < 500; i++) queue.add(`ns/ing-${i}`);
  await queue.idle();
  t.is(counts.size, 500);
  t.true([...counts.values()].every((n) => n === 1));
});

test('a key added while it is processed runs once more afterwards, never concurrently', async (t) => {
  const queue = new WorkQueue<string>({ name: 'q', concurrency: 4 });
  let active = 0;
  let maxActive = 0;
  let runs = 0;
  let release!: () => void;
  const gate = new Promise<void>((resolve) => (release = resolve));
  const r = running(queue, async () => {
    active++;
    maxActive = Math.max(maxActive, active);
    runs++;
    if (runs === 1) await gate;
    active--;
  });
  t.teardown(r.stop);
  queue.add('k');
  while (runs === 0) await sleep(1);
  queue.add('k');
  queue.add('k');
  await sleep(10);
  t.is(runs, 1, 'the second run waits for the first');
  release();
  await queue.idle();
  t.is(runs, 2);
  t.is(maxActive, 1);
});

test('failures are retried with growing backoff, success resets the count', async (t) => {
  const queue = new WorkQueue<string>({ name: 'q', baseRetryMs: 5, maxRetryMs: 40 });
  t.is(queue.backoff(1), 5);
  t.is(queue.backoff(2), 10);
  t.is(queue.backoff(4), 40);
  t.is(queue.backoff(10), 40);
  let attempts = 0;
  const failuresSeen: number[] = [];
  const r = running(queue, (key) => {
    failuresSeen.push(queue.failures(key));
    attempts++;
    if (attempts < 4) throw new Error('transient');
  });
  t.teardown(r.stop);
  queue.add('k');
  await queue.idle();
  t.is(attempts, 4);
  t.deepEqual(failuresSeen, [0, 1, 2, 3]);
  t.is(queue.failures('k'), 0);
});

test('a terminal WarrenError is not retried', async (t) => {
  const queue = new WorkQueue<string>({ name: 'q', baseRetryMs: 1 });
  let attempts = 0;
  const r = running(queue, () => {
    attempts++;
    throw new WarrenError(ErrorCode.InvalidObject, 'Ingress ns/x: spec.rules[0].host is invalid', { terminal: true });
  });
  t.teardown(r.stop);
  queue.add('k');
  await queue.idle();
  await sleep(20);
  t.is(attempts, 1);
  t.is(queue.length, 0);
});

test('run resolves after abort once the reconcile in flight finished; later adds are ignored', async (t) => {
  const queue = new WorkQueue<string>({ name: 'q' });
  let finished = false;
  const controller = new AbortController();
  const done = queue.run(async (_key, signal) => {
    await sleep(30);
    finished = signal.aborted;
  }, controller.signal);
  queue.add('k');
  await sleep(5);
  controller.abort();
  await done;
  t.true(finished);
  queue.add('other');
  t.is(queue.length, 0);
});

test('addAfter keeps the earliest pending time', async (t) => {
  const queue = new WorkQueue<string>({ name: 'q' });
  const times: number[] = [];
  const start = Date.now();
  const r = running(queue, () => void times.push(Date.now() - start));
  t.teardown(r.stop);
  queue.addAfter('k', 10_000);
  queue.addAfter('k', 10);
  queue.addAfter('k', 5_000);
  await queue.idle();
  t.is(times.length, 1);
  t.true(times[0]! < 5_000);
});

test('the coalescing window throttles: an isolated change runs at once, changes right after wait for the window', async (t) => {
  const queue = new WorkQueue<string>({ name: 'routes', coalesceMs: 400 });
  let runs = 0;
  const r = running(queue, () => void runs++);
  t.teardown(r.stop);
  queue.add('routes');
  await sleep(50);
  t.is(runs, 1, 'no delay after a quiet spell');
  for (let i = 0; i < 20; i++) queue.add('routes');
  await sleep(50);
  t.is(runs, 1, 'changes within the window wait for its end');
  await queue.idle();
  t.is(runs, 2, 'and then run together, once');
});
