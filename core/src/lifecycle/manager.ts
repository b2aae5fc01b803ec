import type { Logger } from 'pino';
import type { Runnable } from '../plugin-api/lifecycle.js';
import type { HealthCheck } from '../observability/health-server.js';

/**
 * Where a runnable starts and stops (controller-runtime's runnable groups, architecture §3.2 item 8):
 *  - `servers`: health/metrics endpoint, tunnel connector, plain-HTTP entry point. Start first, stop last (they
 *    may still be serving requests while everything else winds down).
 *  - `caches`: informers. Started after the servers; the manager waits until every cache synced.
 *  - `others`: everything else that runs on every replica (the route reconciler). Started once caches synced.
 * Runnables with `needsLeader: true` form the leader group whatever `group` says: they start when this replica
 * becomes leader and stop when it stops leading (and may be started again later).
 */
export type RunnableGroup = 'servers' | 'caches' | 'others';

/** A runnable with a name (for logs) and an optional group; see {@link RunnableGroup}. */
export interface ManagedRunnable extends Runnable {
  readonly name: string;
  /** Default `others`. Ignored for leader-only runnables. */
  readonly group?: RunnableGroup | undefined;
  /** For the `caches` group: resolves once the cache holds its first full list (or `signal` aborts). */
  waitForSync?(signal: AbortSignal): Promise<void>;
}

/** Names a runnable and places it in a group for the manager; `extra` adds e.g. `waitForSync`. */
export function managed(name: string, group: RunnableGroup, runnable: Runnable, extra: Partial<Pick<ManagedRunnable, 'waitForSync'>> = {}): ManagedRunnable {
  return { name, group, needsLeader: runnable.needsLeader, start: (signal) => runnable.start(signal), ...extra };
}

/** What the manager needs from leader election (implemented by `LeaderElector`). */
export interface Elector {
  readonly isLeader: boolean;
  onChange(listener: (leading: boolean) => void): () => void;
  /** Campaigns until `signal` aborts, then releases leadership. */
  run(signal: AbortSignal): Promise<void>;
}

export interface ManagerOptions {
  readonly logger: Logger;
  /**
   * Setting `shutdownGracePeriod`: the whole stop sequence, from the stop signal on, must finish within this
   * (plus a 2 s margin for closing). Runnables still running then are abandoned and the run resolves anyway.
   */
  readonly shutdownGracePeriodMs: number;
  /** Leader election; without one (setting `kubernetes.leaderElection.enabled: false`) this replica always leads. */
  readonly elector?: Elector | undefined;
  /**
   * How long a lost term waits for its leader-only runnables to return before the next term may start anyway
   * (they were aborted; one that ignores its signal is abandoned with a warning). Default 5 s.
   */
  readonly leaderStopTimeoutMs?: number | undefined;
}

type Phase = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

interface Running {
  readonly runnable: ManagedRunnable;
  readonly done: Promise<void>;
}

/**
 * Runs Warren's runnables in order and stops them in reverse (architecture §3.2 item 8):
 *
 *   start: servers → caches (wait for sync) → others → leader election → leader-only group (while leading)
 *   stop:  leader-only group → release the Lease → others → caches → servers (drain), bounded by the grace period
 *
 * So on SIGTERM a leader first stops its leader-only work and releases the Lease (a follower takes over at once),
 * while the tunnel connector and the entry point — stopped last — stop taking new streams and drain the ones in
 * flight. Readiness ({@link readinessCheck}) fails from the first moment of the stop.
 *
 * A runnable that rejects is fatal: the manager stops everything in order and `run` rejects with that error.
 */
export class Manager {
  readonly #o: ManagerOptions;
  readonly #runnables: ManagedRunnable[] = [];
  #phase: Phase = 'idle';
  #failure: unknown;
  readonly #failed = new AbortController();
  #leaderController: AbortController | undefined;
  #leaderRuns: Running[] = [];
  #leaderChain: Promise<void> = Promise.resolve();
  /** The newest leadership state the elector reported; transitions queued behind it that no longer apply are skipped. */
  #wantLeading = false;

  constructor(options: ManagerOptions) {
    this.#o = options;
  }

  /** Adds a runnable. Only before `run`. */
  add(runnable: ManagedRunnable): this {
    if (this.#phase !== 'idle') throw new Error(`cannot add runnable ${runnable.name}: the manager already started`);
    this.#runnables.push(runnable);
    return this;
  }

  get phase(): Phase {
    return this.#phase;
  }

  /** True while the leader-only group runs on this replica. */
  get leading(): boolean {
    return this.#leaderController !== undefined;
  }

  /** Readiness check for the health server: fails until started and as soon as the stop begins. */
  readonly readinessCheck: HealthCheck = () =>
    this.#phase === 'running' ? true : this.#phase === 'stopping' || this.#phase === 'stopped' ? 'shutting down' : 'starting';

  /** Starts everything, runs until `signal` aborts (or a runnable fails), then stops everything in order. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#phase !== 'idle') throw new Error('Manager.run may be called once');
    this.#phase = 'starting';
    const { logger } = this.#o;
    const stop = AbortSignal.any([signal, this.#failed.signal]);
    const groups = {
      servers: this.#runnables.filter((r) => !r.needsLeader && r.group === 'servers'),
      caches: this.#runnables.filter((r) => !r.needsLeader && r.group === 'caches'),
      others: this.#runnables.filter((r) => !r.needsLeader && (r.group ?? 'others') === 'others'),
      leader: this.#runnables.filter((r) => r.needsLeader),
    };
    const controllers = { servers: new AbortController(), caches: new AbortController(), others: new AbortController(), elector: new AbortController() };
    const running = { servers: [] as Running[], caches: [] as Running[], others: [] as Running[] };
    let electorDone: Promise<void> | undefined;
    let unsubscribe: (() => void) | undefined;

    running.servers = groups.servers.map((r) => this.#launch(r, controllers.servers.signal));
    running.caches = groups.caches.map((r) => this.#launch(r, controllers.caches.signal));
    if (!stop.aborted) {
      const synced = Promise.all(groups.caches.map((r) => r.waitForSync?.(stop) ?? Promise.resolve()));
      const waited = Date.now();
      const nag = setInterval(() => logger.warn({ waitedMs: Date.now() - waited }, 'still waiting for caches to sync'), 30_000);
      await synced.finally(() => clearInterval(nag));
    }
    if (!stop.aborted) {
      running.others = groups.others.map((r) => this.#launch(r, controllers.others.signal));
      const elector = this.#o.elector;
      if (elector) {
        unsubscribe = elector.onChange((leading) => this.#leadership(leading, groups.leader));
        electorDone = elector.run(controllers.elector.signal).catch((err) => this.#fail('leader-election', err));
      } else {
        this.#leadership(true, groups.leader);
      }
      this.#phase = 'running';
      logger.info({ runnables: this.#runnables.map((r) => r.name) }, 'controller started');
      await new Promise<void>((resolve) => (stop.aborted ? resolve() : stop.addEventListener('abort', () => resolve(), { once: true })));
    }

    this.#phase = 'stopping';
    const deadline = Date.now() + this.#o.shutdownGracePeriodMs + 2_000;
    logger.info({ reason: this.#failure ? 'failure' : 'signal', gracePeriodMs: this.#o.shutdownGracePeriodMs }, 'stopping');
    unsubscribe?.();
    this.#leadership(false, groups.leader);
    await this.#bounded('leader-only runnables', this.#leaderChain, deadline);
    controllers.elector.abort();
    if (electorDone) await this.#bounded('leader election (Lease release)', electorDone, deadline);
    for (const group of ['others', 'caches', 'servers'] as const) {
      controllers[group].abort();
      await this.#bounded(`${group} runnables`, Promise.all(running[group].map((r) => r.done)), deadline);
    }
    this.#phase = 'stopped';
    logger.info('stopped');
    if (this.#failure !== undefined) throw this.#failure;
  }

  #launch(runnable: ManagedRunnable, signal: AbortSignal): Running {
    const done = (async () => {
      try {
        await runnable.start(signal);
        if (!signal.aborted) this.#o.logger.warn({ runnable: runnable.name }, 'runnable returned before it was stopped');
      } catch (err) {
        this.#fail(runnable.name, err);
      }
    })();
    return { runnable, done };
  }

  /**
   * Applies a leadership transition. Losing leadership aborts the leader-only runnables at once, in the
   * elector's callback, whatever earlier transition is still in progress; starting and the wait for the aborted
   * runs are queued, and the wait is bounded, so a runnable that does not return can delay a new term by at most
   * `leaderStopTimeoutMs` and never keep leader-only work from restarting.
   */
  #leadership(leading: boolean, runnables: readonly ManagedRunnable[]): void {
    this.#wantLeading = leading;
    if (!leading) this.#leaderController?.abort();
    this.#leaderChain = this.#leaderChain.then(async () => {
      if (leading && this.#wantLeading && !this.#leaderController && this.#phase !== 'stopping' && this.#phase !== 'stopped') {
        const controller = new AbortController();
        this.#leaderController = controller;
        this.#leaderRuns = runnables.map((r) => this.#launch(r, controller.signal));
        this.#o.logger.info({ runnables: runnables.map((r) => r.name) }, 'started leader-only runnables');
      } else if (!leading && this.#leaderController) {
        const runs = this.#leaderRuns;
        this.#leaderController.abort();
        const pending = new Set(runs.map((r) => r.runnable.name));
        const waited = runs.map((r) => r.done.then(() => void pending.delete(r.runnable.name)));
        const timeoutMs = this.#o.leaderStopTimeoutMs ?? 5_000;
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([Promise.all(waited), new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
        clearTimeout(timer);
        this.#leaderController = undefined;
        this.#leaderRuns = [];
        if (pending.size > 0) this.#o.logger.warn({ runnables: [...pending], timeoutMs }, 'leader-only runnables did not stop in time after leadership was lost; abandoning them');
        else this.#o.logger.info('stopped leader-only runnables');
      }
    });
  }

  #fail(name: string, err: unknown): void {
    this.#o.logger.error({ runnable: name, err }, 'runnable failed; stopping the controller');
    if (this.#failure === undefined) this.#failure = err;
    this.#failed.abort();
  }

  async #bounded(what: string, work: Promise<unknown>, deadline: number): Promise<void> {
    const remaining = deadline - Date.now();
    let timer: NodeJS.Timeout | undefined;
    const timedOut = await Promise.race([
      work.then(() => false),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), Math.max(0, remaining)))),
    ]);
    clearTimeout(timer);
    if (timedOut) this.#o.logger.warn({ step: what }, 'did not stop within the shutdown grace period; continuing');
  }
}
