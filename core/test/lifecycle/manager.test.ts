import test from 'ava';
import { once } from 'node:events';
import { request } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { Registry } from 'prom-client';
import { groupOf, Manager, type Elector } from '../../src/lifecycle/manager.js';
import type { Runnable } from '../../src/plugin-api/lifecycle.js';
import { sameLeadership, type Leadership } from '../../src/state/leadership.js';
import { PublishedValue } from '../../src/state/published.js';
import { HealthServer } from '../../src/observability/health-server.js';
import { createLogger } from '../../src/observability/logger.js';
import { ControlPlaneMetrics } from '../../src/observability/metrics.js';
import { LogCapture } from '../support/controller.js';

function logger() {
  const logs = new LogCapture();
  return { logs, logger: createLogger({ level: 'debug', destination: logs }) };
}

/** What a traced runnable is: the manager derives its group from that alone. */
type Kind = 'handler' | 'acceptor' | 'cache' | 'other';

/** A runnable (named) that logs its start and stop into `trace`, and can take time to sync or to stop. */
function traced(trace: string[], name: string, kind: Kind, options: { needsLeader?: boolean; syncMs?: number; stopMs?: number; fail?: Error } = {}): [string, Runnable] {
  let synced = false;
  const runnable = {
    ...(kind === 'acceptor' ? { acceptor: true as const } : {}),
    ...(kind === 'handler' ? { handle: async () => undefined } : {}),
    needsLeader: options.needsLeader ?? false,
    async start(signal: AbortSignal) {
      trace.push(`start ${name}`);
      if (options.syncMs !== undefined) setTimeout(() => (synced = true), options.syncMs);
      if (options.fail) {
        await sleep(10);
        throw options.fail;
      }
      if (!signal.aborted) await once(signal, 'abort');
      if (options.stopMs) await sleep(options.stopMs, undefined, { ref: false });
      trace.push(`stop ${name}`);
    },
    ...(kind === 'cache'
      ? {
          async waitForSync(signal: AbortSignal) {
            while (!synced && !signal.aborted) await sleep(5);
            trace.push(`synced ${name}`);
          },
        }
      : {}),
  };
  return [name, runnable];
}

/** An elector driven by the test. */
class ManualElector implements Elector {
  readonly leadership = new PublishedValue<Leadership>({ leading: false, term: 0 }, { same: sameLeadership });
  released = false;
  set(leading: boolean) {
    const { term } = this.leadership.current;
    this.leadership.publish({ leading, term: leading ? term + 1 : term });
  }
  async run(signal: AbortSignal) {
    if (!signal.aborted) await once(signal, 'abort');
    if (this.leadership.current.leading) this.set(false);
    this.released = true;
  }
}

test('the group of a runnable follows from what it is', (t) => {
  const trace: string[] = [];
  t.is(groupOf(traced(trace, 'pipeline', 'handler')[1]), 'handlers');
  t.is(groupOf(traced(trace, 'health', 'acceptor')[1]), 'servers');
  t.is(groupOf(traced(trace, 'informers', 'cache', { syncMs: 0 })[1]), 'caches');
  t.is(groupOf(traced(trace, 'route-sync', 'other')[1]), 'others');
  t.is(groupOf(traced(trace, 'status', 'cache', { needsLeader: true })[1]), 'leader', 'leader-only whatever else it is');
});

test('starts handlers, then servers, then caches (waiting for sync), then others, then leader-only; stops in reverse', async (t) => {
  const trace: string[] = [];
  const { logger: log } = logger();
  const manager = new Manager({ logger: log, shutdownGracePeriodMs: 5_000 });
  manager
    .add(...traced(trace, 'leader-work', 'other', { needsLeader: true }))
    .add(...traced(trace, 'route-sync', 'other'))
    .add(...traced(trace, 'informers', 'cache', { syncMs: 40 }))
    .add(...traced(trace, 'health', 'acceptor'))
    .add(...traced(trace, 'pipeline', 'handler'));
  const stop = new AbortController();
  const done = manager.run(stop.signal);
  while (manager.phase !== 'running') await sleep(5);
  t.deepEqual(trace, ['start pipeline', 'start health', 'start informers', 'synced informers', 'start route-sync', 'start leader-work']);
  t.is(manager.readinessCheck(), true);
  trace.length = 0;
  stop.abort();
  await done;
  t.deepEqual(trace, ['stop leader-work', 'stop route-sync', 'stop informers', 'stop health', 'stop pipeline'], 'the handler outlives every acceptor');
  t.is(manager.readinessCheck(), 'shutting down');
});

test('leader-only runnables start on leadership, stop when it is lost, and restart when regained; the Lease is released after they stop', async (t) => {
  const trace: string[] = [];
  const elector = new ManualElector();
  const manager = new Manager({ logger: logger().logger, shutdownGracePeriodMs: 5_000, elector });
  manager.add(...traced(trace, 'status', 'other', { needsLeader: true, stopMs: 20 })).add(...traced(trace, 'sync', 'other'));
  const stop = new AbortController();
  const done = manager.run(stop.signal);
  while (manager.phase !== 'running') await sleep(5);
  t.deepEqual(trace, ['start sync']);
  elector.set(true);
  await sleep(10);
  t.true(manager.leading);
  elector.set(false);
  await sleep(40);
  t.false(manager.leading);
  elector.set(true);
  await sleep(10);
  t.deepEqual(trace, ['start sync', 'start status', 'stop status', 'start status']);
  stop.abort();
  await done;
  t.true(elector.released);
  t.deepEqual(trace.slice(4), ['stop status', 'stop sync']);
});

test('a leader-only runnable that ignores its abort signal cannot keep leadership work from restarting', async (t) => {
  const trace: string[] = [];
  const { logs, logger: log } = logger();
  const elector = new ManualElector();
  const manager = new Manager({ logger: log, shutdownGracePeriodMs: 2_000, elector, leaderStopTimeoutMs: 300 });
  // The first term of "status" hangs in a call that does not take the signal (released only at the end).
  let release: () => void = () => undefined;
  const hung = new Promise<void>((resolve) => (release = resolve));
  let runs = 0;
  manager.add('status', {
    needsLeader: true,
    async start(signal) {
      const run = ++runs;
      trace.push(`start status ${run}`);
      if (run === 1) await hung;
      else if (!signal.aborted) await once(signal, 'abort');
      trace.push(`stop status ${run}`);
    },
  });
  const abortedAt: number[] = [];
  manager.add('events', {
    needsLeader: true,
    async start(signal) {
      if (!signal.aborted) await once(signal, 'abort');
      abortedAt.push(Date.now());
    },
  });
  const stop = new AbortController();
  const done = manager.run(stop.signal);
  t.teardown(() => release());
  while (manager.phase !== 'running') await sleep(5);
  elector.set(true);
  await sleep(20);
  const lostAt = Date.now();
  elector.set(false);
  elector.set(true); // re-acquired while the first term is still winding down
  await sleep(20);
  t.true(abortedAt.length === 1 && abortedAt[0]! - lostAt < 50, 'the other leader-only runnable was aborted at once');
  const deadline = Date.now() + 3_000;
  while (!trace.includes('start status 2') && Date.now() < deadline) await sleep(10);
  t.deepEqual(trace, ['start status 1', 'start status 2'], 'the new term started although the old run still hangs');
  t.true(manager.leading);
  t.true(logs.parsed().some((l) => l.msg === 'leader-only runnables did not stop in time after leadership was lost; abandoning them'));
  release();
  stop.abort();
  await done;
  t.deepEqual(trace, ['start status 1', 'start status 2', 'stop status 1', 'stop status 2']);
});

test('a failing runnable stops everything in order and run rejects with its error', async (t) => {
  const trace: string[] = [];
  const { logger: log, logs } = logger();
  const manager = new Manager({ logger: log, shutdownGracePeriodMs: 5_000 });
  manager.add(...traced(trace, 'health', 'acceptor')).add(...traced(trace, 'broken', 'other', { fail: new Error('boom') }));
  const err = await t.throwsAsync(manager.run(new AbortController().signal));
  t.is(err?.message, 'boom');
  t.deepEqual(trace, ['start health', 'start broken', 'stop health']);
  t.true(logs.text.includes('runnable failed; stopping the controller'));
});

test('the stop is bounded by the shutdown grace period', async (t) => {
  const trace: string[] = [];
  const { logger: log, logs } = logger();
  const manager = new Manager({ logger: log, shutdownGracePeriodMs: 100 });
  manager.add(...traced(trace, 'slow-drain', 'acceptor', { stopMs: 60_000 }));
  const stop = new AbortController();
  const done = manager.run(stop.signal);
  while (manager.phase !== 'running') await sleep(5);
  stop.abort();
  await done;
  t.is(manager.phase as string, 'stopped');
  t.false(trace.includes('stop slow-drain'));
  t.true(logs.text.includes('did not stop within the shutdown grace period'));
});

function get(port: number, path: string): Promise<{ status: number; body: string; type: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: res.headers['content-type'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('the health server answers /healthz, /readyz (with reasons) and /metrics', async (t) => {
  const registry = new Registry();
  const metrics = new ControlPlaneMetrics(registry);
  metrics.routeTableGeneration.set(7);
  const health = new HealthServer({ listen: '127.0.0.1:0', registry, logger: logger().logger });
  let synced = false;
  let connections = 0;
  health.addReadinessCheck('caches', () => (synced ? true : 'informer caches not synced yet'));
  health.addReadinessCheck('tunnel', () => (connections >= 1 ? true : 'no registered tunnel connection'));
  const stop = new AbortController();
  const running = health.start(stop.signal);
  t.teardown(async () => {
    stop.abort();
    await running;
  });
  const { port } = await health.address();
  t.is((await get(port, '/healthz')).status, 200);
  const notReady = await get(port, '/readyz?verbose');
  t.is(notReady.status, 503);
  t.regex(notReady.body, /\[-\] caches not ready: informer caches not synced yet/);
  t.regex(notReady.body, /\[-\] tunnel not ready: no registered tunnel connection/);
  t.regex(notReady.body, /\nnot ready\n$/, 'a check that is not passing yet is not called a failure');
  t.notRegex(notReady.body, /failed/);
  synced = true;
  t.is((await get(port, '/readyz')).status, 503);
  connections = 1;
  const ready = await get(port, '/readyz?verbose');
  t.is(ready.status, 200);
  t.regex(ready.body, /\[\+\] caches ok\n\[\+\] tunnel ok\nok/);
  const scraped = await get(port, '/metrics');
  t.is(scraped.status, 200);
  t.regex(scraped.type ?? '', /text\/plain/);
  t.regex(scraped.body, /^warren_route_table_generation 7$/m);
  t.is((await get(port, '/nope')).status, 404);
});
