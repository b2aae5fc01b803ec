import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ControlContext } from '../../src/plugin-api/control.js';
import type { ControlPluginInstance } from '../../src/plugin-api/registered.js';
import { ControlPluginRunner } from '../../src/reconcile/control-plugins.js';
import { RouteStore } from '../../src/routes/store.js';
import { emptyRouteTable } from '../../src/routes/table.js';
import type { RouteTable } from '../../src/routes/types.js';
import { createLogger } from '../../src/observability/logger.js';
import { ALWAYS_LEADING } from '../../src/state/leadership.js';
import { TunnelStateStore } from '../../src/state/tunnel.js';
import { LogCapture } from '../support/controller.js';

/** A control plugin whose calls take time and can be told to fail. */
class SlowPlugin implements ControlPluginInstance {
  readonly calls: Array<{ generation: number; tunnelId: string | undefined }> = [];
  active = 0;
  maxActive = 0;
  failures = 0;
  constructor(readonly id: string) {}
  async onRoutesChanged(table: RouteTable, ctx: ControlContext): Promise<void> {
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    try {
      await sleep(15);
      this.calls.push({ generation: table.generation, tunnelId: ctx.tunnelId });
      if (this.failures > 0) {
        this.failures--;
        throw new Error('Cloudflare API answered 503');
      }
    } finally {
      this.active--;
    }
  }
}

/** A runner over a store that already holds a built table (generation 1), unless `store` is given. */
function setup(plugins: ControlPluginInstance[], store = new RouteStore(emptyRouteTable(1))) {
  const logs = new LogCapture();
  const tunnel = new TunnelStateStore();
  const runner = new ControlPluginRunner({
    plugins,
    store,
    state: { tunnel, leadership: ALWAYS_LEADING },
    logger: createLogger({ level: 'debug', destination: logs }),
    coalesceMs: 30,
    retryBaseMs: 10,
  });
  const controller = new AbortController();
  const done = runner.start(controller.signal);
  return {
    store,
    runner,
    logs,
    setTunnel: (id: string) => tunnel.identify(id),
    stop: async () => {
      controller.abort();
      await done;
    },
  };
}

test('runs every plugin once on start, then with the latest table after changes, never overlapping', async (t) => {
  const dns = new SlowPlugin('cloud.dns');
  const firewall = new SlowPlugin('cloud.firewall');
  const { store, runner, stop } = setup([dns, firewall]);
  t.teardown(stop);
  await sleep(5);
  await runner.idle();
  t.deepEqual(
    dns.calls.map((c) => c.generation),
    [1],
  );
  t.deepEqual(
    firewall.calls.map((c) => c.generation),
    [1],
  );
  for (let g = 1; g <= 20; g++) store.publish(emptyRouteTable(g));
  await sleep(5);
  await runner.idle();
  t.is(dns.calls.at(-1)?.generation, 20, 'the last call sees the newest table');
  t.true(dns.calls.length <= 4, `a burst of 20 tables is coalesced (${dns.calls.length} calls)`);
  t.is(dns.maxActive, 1);
  t.is(firewall.maxActive, 1);
});

test('a rejected call is retried with backoff until it succeeds; a newly published tunnel id re-applies every plugin with it', async (t) => {
  const dns = new SlowPlugin('cloud.dns');
  dns.failures = 3;
  const { runner, logs, setTunnel, stop } = setup([dns]);
  t.teardown(stop);
  await sleep(20);
  await runner.idle();
  t.is(dns.calls.length, 4, 'three failures, then success');
  t.is(dns.failures, 0);
  t.is((logs.text.match(/reconcile failed; retrying with backoff/g) ?? []).length, 3);
  const calls = dns.calls.length;
  setTunnel('6ff42ae2-765d-4adf-8112-31c55c1551ef');
  await sleep(40);
  await runner.idle();
  t.is(dns.calls.at(-1)?.tunnelId, '6ff42ae2-765d-4adf-8112-31c55c1551ef');
  t.is(dns.calls.length, calls + 1, 'one call for the new tunnel id');
});

test('a term that starts before the first route table was built applies none until it is: the placeholder would remove what plugins manage', async (t) => {
  const firewall = new SlowPlugin('cloud.firewall');
  const { store, runner, stop } = setup([firewall], new RouteStore());
  t.teardown(stop);
  await sleep(60);
  await runner.idle();
  t.deepEqual(firewall.calls, [], 'nothing applied while the store holds its generation-0 placeholder');
  store.publish(emptyRouteTable(1));
  await sleep(30);
  await runner.idle();
  t.deepEqual(
    firewall.calls.map((c) => c.generation),
    [1],
  );
});
