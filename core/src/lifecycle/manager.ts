import type { Logger } from 'pino';
import type { Runnable } from '../plugin-api/lifecycle.js';
import type { HealthCheck } from '../observability/health-server.js';
import { ALWAYS_LEADING, type Leadership } from '../state/leadership.js';
import type { Published } from '../state/published.js';

/**
 * Where a runnable starts and stops. The group follows from what the runnable is, never from how it was added,
 * so no caller can put one in the wrong group:
 *  - `handlers`: a runnable that handles what acceptors take in (the proxy pipeline, an {@link ExchangeHandling}).
 *    Started first and stopped after every acceptor drained, so a request in flight is served to its end.
 *  - `servers`: an {@link Acceptor} (health/metrics endpoint, tunnel connector, plain-HTTP entry point). Started
 *    before the caches, stopped after everything but the handlers (they may still be serving requests while
 *    everything else winds down).
 *  - `caches`: a {@link Cache} (informers, the manifest folder). The manager waits until every cache synced.
 *  - `others`: everything else that runs on every replica (the route reconciler). Started once caches synced.
 *  - `leader`: `needsLeader: true`, whatever else it is: started when this replica becomes leader, stopped when it
 *    stops leading (and may be started again later).
 */
export type RunnableGroup = 'handlers' | 'servers' | 'caches' | 'others' | 'leader';

/** Holds a cache the rest of the controller reads: started early, and the manager waits until it synced. */
export interface Cache extends Runnable {
  /** Resolves once the cache holds its first full list (or `signal` aborts). */
  waitForSync(signal: AbortSignal): Promise<void>;
}

/** Takes requests or connections from outside: started early, stopped late so that what it accepted drains. */
export interface Acceptor extends Runnable {
  readonly acceptor: true;
}

/** Handles what acceptors take in (an `ExchangeHandler` that runs): outlives every acceptor. */
interface ExchangeHandling extends Runnable {
  handle(exchange: never): Promise<void>;
}

/** The group a runnable belongs to, from what it is; see {@link RunnableGroup}. */
export function groupOf(runnable: Runnable): RunnableGroup {
  if (runnable.needsLeader) return 'leader';
  if (typeof (runnable as Partial<Cache>).waitForSync === 'function') return 'caches';
  if ((runnable as Partial<Acceptor>).acceptor === true) return 'servers';
  if (typeof (runnable as Partial<ExchangeHandling>).handle === 'function') return 'handlers';
  return 'others';
}

/** What the manager needs from leader election (implemented by `LeaderElector`). */
export interface Elector {
  readonly leadership: Published<Leadership>;
  /** Campaigns until `signal` aborts, then releases leadership. */
  run(signal: AbortSignal): Promise<void>;
}

/** No leader election (`kubernetes.leaderElection.enabled: false`, folder mode): this replica always leads. */
export const NO_ELECTION: Elector = {
  leadership: ALWAYS_LEADING,
  run: (signal) => new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true }))),
};

export interface ManagerOptions {
  readonly logger: Logger;
  /**
   * Setting `shutdownGracePeriod`: the whole stop sequence, from the stop signal on, must finish within this
   * (plus a 2 s margin for closing). Runnables still running then are abandoned and the run resolves anyway.
   */
  readonly shutdownGracePeriodMs: number;
  /** Leader election; default {@link NO_ELECTION} (setting `kubernetes.leaderElection.enabled: false`): this replica always leads. */
  readonly elector?: Elector | undefined;
  /**
   * How long a lost term waits for its leader-only runnables to return before the next term may start anyway
   * (they were aborted; one that ignores its signal is abandoned with a warning). Default 5 s.
   */
  readonly leaderStopTimeoutMs?: number | undefined;
}

type Phase = 'idle' | 'starting' | 'running' | 'stopping' | 'stopped';

/** A runnable and the name it carries in logs. */
export interface NamedRunnable {
  readonly name: string;
  readonly runnable: Runnable;
}

interface Running {
  readonly runnable: NamedRunnable;
  readonly done: Promise<void>;
}

/**
 * Runs Warren's runnables in order and stops them in reverse:
 *
 *   start: handlers → servers → caches (wait for sync) → others → leader election → leader-only group (while leading)
 *   stop:  leader-only group → release the Lease → others → caches → servers (drain) → handlers, bounded by the grace period
 *
 * So on SIGTERM a leader first stops its leader-only work and releases the Lease (a follower takes over at once),
 * while the tunnel connector and the entry point — stopped after everything but the pipeline — stop taking new
 * streams and drain the ones in flight through the pipeline, which is closed last. Readiness
 * ({@link readinessCheck}) fails from the first moment of the stop.
 *
 * A runnable that rejects is fatal: the manager stops everything in order and `run` rejects with that error.
 */
export class Manager {
  readonly #o: ManagerOptions;
  readonly #runnables: NamedRunnable[] = [];
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

  /** Adds a runnable, named for logs; its group follows from what it is ({@link groupOf}). Only before `run`. */
  add(name: string, runnable: Runnable): this {
    if (this.#phase !== 'idle') throw new Error(`cannot add runnable ${name}: the manager already started`);
    this.#runnables.push({ name, runnable });
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
  readonly readinessCheck: HealthCheck = () => (this.#phase === 'running' ? true : this.#phase === 'stopping' || this.#phase === 'stopped' ? 'shutting down' : 'starting');

  /** Starts everything, runs until `signal` aborts (or a runnable fails), then stops everything in order. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#phase !== 'idle') throw new Error('Manager.run may be called once');
    this.#phase = 'starting';
    const { logger } = this.#o;
    const stop = AbortSignal.any([signal, this.#failed.signal]);
    const groups: Record<RunnableGroup, NamedRunnable[]> = { handlers: [], servers: [], caches: [], others: [], leader: [] };
    for (const r of this.#runnables) groups[groupOf(r.runnable)].push(r);
    const controllers = {
      handlers: new AbortController(),
      servers: new AbortController(),
      caches: new AbortController(),
      others: new AbortController(),
      elector: new AbortController(),
    };
    const running = { handlers: [] as Running[], servers: [] as Running[], caches: [] as Running[], others: [] as Running[] };
    let electorDone: Promise<void> = Promise.resolve();
    let unsubscribe: (() => void) | undefined;

    running.handlers = groups.handlers.map((r) => this.#launch(r, controllers.handlers.signal));
    running.servers = groups.servers.map((r) => this.#launch(r, controllers.servers.signal));
    running.caches = groups.caches.map((r) => this.#launch(r, controllers.caches.signal));
    if (!stop.aborted) {
      const synced = Promise.all(groups.caches.map((r) => (r.runnable as Cache).waitForSync(stop)));
      const waited = Date.now();
      const nag = setInterval(() => logger.warn({ waitedMs: Date.now() - waited }, 'still waiting for caches to sync'), 30_000);
      await synced.finally(() => clearInterval(nag));
    }
    if (!stop.aborted) {
      running.others = groups.others.map((r) => this.#launch(r, controllers.others.signal));
      const elector = this.#o.elector ?? NO_ELECTION;
      unsubscribe = elector.leadership.subscribe(({ leading }) => this.#leadership(leading, groups.leader));
      if (elector.leadership.current.leading) this.#leadership(true, groups.leader);
      electorDone = elector.run(controllers.elector.signal).catch((err) => this.#fail('leader-election', err));
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
    await this.#bounded('leader election (Lease release)', electorDone, deadline);
    for (const group of ['others', 'caches', 'servers', 'handlers'] as const) {
      controllers[group].abort();
      await this.#bounded(`${group} runnables`, Promise.all(running[group].map((r) => r.done)), deadline);
    }
    this.#phase = 'stopped';
    logger.info('stopped');
    if (this.#failure !== undefined) throw this.#failure;
  }

  #launch(runnable: NamedRunnable, signal: AbortSignal): Running {
    const done = (async () => {
      try {
        await runnable.runnable.start(signal);
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
  #leadership(leading: boolean, runnables: readonly NamedRunnable[]): void {
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
        if (pending.size > 0)
          this.#o.logger.warn({ runnables: [...pending], timeoutMs }, 'leader-only runnables did not stop in time after leadership was lost; abandoning them');
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
    const timedOut = await Promise.race([work.then(() => false), new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(true), Math.max(0, remaining))))]);
    clearTimeout(timer);
    if (timedOut) this.#o.logger.warn({ step: what }, 'did not stop within the shutdown grace period; continuing');
  }
}
