import type { Logger } from 'pino';
import type { ControlPluginInstance } from '../plugin-api/registered.js';
import type { EventSink, Runnable, SecretReader } from '../plugin-api/lifecycle.js';
import { componentLogger } from '../observability/logger.js';
import type { ControlPlaneMetrics } from '../observability/metrics.js';
import type { RouteStore } from '../routes/store.js';
import { controlContext, onTunnelIdentity, type ControlState } from './control-context.js';
import { onGatewayTunnelIdentity } from '../state/gateway-tunnels.js';
import { WorkQueue } from './workqueue.js';

export interface ControlPluginRunnerOptions {
  readonly plugins: readonly ControlPluginInstance[];
  readonly store: RouteStore;
  /** The tunnel and leadership each call's context is read from; a new tunnel id re-applies every plugin. */
  readonly state: ControlState;
  readonly logger: Logger;
  readonly metrics?: ControlPlaneMetrics | undefined;
  /** Periodic full re-apply to repair drift made outside Warren. Default 10 minutes; 0 disables. */
  readonly repairIntervalMs?: number | undefined;
  /** Coalescing window for route-table changes. Default 1 s (Cloudflare API calls are the expensive part). */
  readonly coalesceMs?: number | undefined;
  /** First retry delay after a rejection; doubles per consecutive failure. Default 2 s, capped at 5 minutes. */
  readonly retryBaseMs?: number | undefined;
}

/**
 * Drives the control plugins (DNS, firewall) on the leader, as `plugin-api/control.ts` promises:
 * `onRoutesChanged(currentTable)` after new table generations (coalesced), once after leadership is gained, when
 * the tunnel's identity changes, and every `repairIntervalMs`; calls for one plugin never overlap; a rejection is logged and retried with backoff.
 * Each call gets the latest table, never a stale one (level-based).
 */
export class ControlPluginRunner implements Runnable {
  readonly needsLeader = true;
  readonly #o: ControlPluginRunnerOptions;
  #queue: WorkQueue<string> | undefined;

  constructor(options: ControlPluginRunnerOptions) {
    this.#o = options;
  }

  /** Resolves when no plugin call is pending (tests). */
  idle(): Promise<void> {
    return this.#queue?.idle() ?? Promise.resolve();
  }

  async start(signal: AbortSignal): Promise<void> {
    const plugins = new Map(this.#o.plugins.map((p) => [p.id, p]));
    if (plugins.size === 0) {
      await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
      return;
    }
    // A term may start before the first route table was built: applying the placeholder would remove everything
    // the plugins manage (records, rules) until the first table put it back.
    if (!(await this.#o.store.whenBuilt(signal))) return;
    const base = this.#o.retryBaseMs ?? 2_000;
    const queue = new WorkQueue<string>({
      name: 'control-plugins',
      coalesceMs: this.#o.coalesceMs ?? 1_000,
      baseRetryMs: base,
      maxRetryMs: 300_000,
      concurrency: plugins.size,
      logger: this.#o.logger,
      metrics: this.#o.metrics,
    });
    this.#queue = queue;
    const all = (): void => {
      for (const id of plugins.keys()) queue.add(id);
    };
    const unsubscribe = this.#o.store.subscribe(all);
    const unsubscribeTunnel = onTunnelIdentity(this.#o.state.tunnel, all);
    const gatewayTunnels = this.#o.state.gatewayTunnels;
    const unsubscribeGateways = gatewayTunnels ? onGatewayTunnelIdentity(gatewayTunnels, all) : () => {};
    const repair = this.#o.repairIntervalMs ?? 600_000;
    const timer = repair > 0 ? setInterval(all, repair) : undefined;
    for (const id of plugins.keys()) queue.addAfter(id, 0);
    try {
      await queue.run(async (id, s) => {
        const plugin = plugins.get(id)!;
        const table = this.#o.store.current;
        await plugin.onRoutesChanged(table, controlContext(this.#o.state, s));
        this.#o.logger.debug({ plugin: id, generation: table.generation }, 'control plugin applied route table');
      }, signal);
    } finally {
      clearInterval(timer);
      unsubscribe();
      unsubscribeTunnel();
      unsubscribeGateways();
      if (this.#queue === queue) this.#queue = undefined;
    }
  }
}

export interface ControlPluginLifecycleOptions {
  readonly plugins: readonly ControlPluginInstance[];
  readonly logger: Logger;
  readonly secrets: SecretReader;
  readonly events: EventSink;
}

/** Provisions and validates the control plugins (DNS, firewall) on every replica while it runs; disposes them at the stop. */
export class ControlPluginLifecycle implements Runnable {
  readonly needsLeader = false;
  readonly #o: ControlPluginLifecycleOptions;

  constructor(options: ControlPluginLifecycleOptions) {
    this.#o = options;
  }

  async start(signal: AbortSignal): Promise<void> {
    const { plugins, logger, secrets, events } = this.#o;
    for (const plugin of plugins) {
      await plugin.provision?.({ logger: componentLogger(logger, 'plugin', { plugin: plugin.id }), signal, secrets, events });
      await plugin.validate?.();
    }
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    for (const plugin of plugins) await plugin.dispose?.();
  }
}
