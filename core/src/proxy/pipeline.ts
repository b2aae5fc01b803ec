import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { inject, injectable, injectAll, type DependencyContainer } from 'tsyringe';
import type { Config } from '../config/schema.js';
import { TOKENS } from '../di/tokens.js';
import { ErrorCode, WarrenError } from '../errors.js';
import type { EventSink, Runnable, SecretReader } from '../plugin-api/lifecycle.js';
import type { PluginManifest } from '../plugin-api/manifest.js';
import type { TransportProfile, UpstreamPlugin } from '../plugin-api/upstream.js';
import { compareManifests } from '../plugins/registry.js';
import { routeChangesBetween } from '../routes/table.js';
import type { Route, RouteChanges, RouteTable } from '../routes/types.js';
import { createAccessLog, type AccessLog, type LoggedExchange } from './access-log.js';
import { EndpointStates } from './balancer.js';
import { compileRoute, unboundErrorMapper, type CompiledRoute, type PluginEntry, type ProxyDefaults } from './compile.js';
import { errorReference, failExchange, httpStatusOf } from './errors.js';
import type { Exchange, ExchangeHandler } from './exchange.js';
import { ExchangeRun, coreDispatch, type ForwardEnv, type Outcome } from './forward.js';
import { upstreamRequestHeaders, validateRequestHead, type HeaderLimits } from './headers.js';
import { createProxyMetrics, methodLabel, statusClass, type ProxyMetrics } from './metrics.js';
import { PoolRegistry, type PoolOpener } from './transport.js';

/**
 * The proxy pipeline: the `ExchangeHandler` every acceptor (tunnel connector, plain-HTTP entry) calls.
 *
 * Plugin instances live in a tsyringe child container of the root (a {@link PluginSet}: fresh
 * `ContainerScoped` instances, provisioned and validated). Consecutive generations share one set while what it
 * was provisioned from stays the same; a rotated Secret that a live route references (or `setTable` with
 * `freshPlugins`) builds a new set, and a set is disposed when the last generation using it is released.
 *
 * Each generation swaps in with one assignment. Routes compile after the swap (see `compile.ts`): on first use
 * by a request, and in the background in small batches, so a swap costs the same whatever the size of the table.
 * A generation that shares its predecessor's plugin set takes over the predecessor's compiled form of every
 * route object the table builder carried over unchanged (its bindings, balancer and pool references) without
 * visiting it: it is handed the predecessor's compiled routes and applies the table's route changes
 * (`RouteTable.routeChangesSince`), so a change costs — and re-binds — only the routes it touched. An exchange
 * holds the generation it started on until it ends; a retired generation is released (its pool references
 * dropped, its plugin set's use ended) once its last exchange ended. A failed build leaves the previous generation serving.
 *
 * Plugins are registered at the root only (multi-token registrations in a child would shadow the root's list);
 * the child only scopes their instances.
 */

/** The part of the routing model's `RouteStore` the pipeline needs. */
export interface RouteTableSource {
  /** The table to serve now, if one was published. */
  readonly current: RouteTable | undefined;
  /** Calls `listener` with every newly published table; returns an unsubscribe function. */
  subscribe(listener: (table: RouteTable) => void): () => void;
}

export interface PipelineOptions {
  /** Root container with the enabled plugins registered (`registerPlugins`). */
  readonly container: DependencyContainer;
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  /** prom-client registry for `warren_*` metrics; none → no metrics. */
  readonly metrics?: Registry | undefined;
  readonly secrets?: SecretReader | undefined;
  readonly events?: EventSink | undefined;
  /** Followed by `start()`. */
  readonly routes?: RouteTableSource | undefined;
  /** How long a retired generation may wait for its exchanges (default {@link GENERATION_DRAIN_LIMIT_MS}). */
  readonly drainLimitMs?: number | undefined;
}

/** The plugin instances of one plugin set, resolved from its child container. */
@injectable()
export class GenerationPlugins {
  constructor(
    @injectAll(TOKENS.UpstreamPlugin, { isOptional: true }) readonly plugins: UpstreamPlugin[],
    @inject(TOKENS.EnabledManifests, { isOptional: true }) readonly manifests: readonly PluginManifest[] | undefined,
  ) {}
}

const NO_SECRETS: SecretReader = { get: () => undefined, onChange: () => () => {} };
const NO_EVENTS: EventSink = { warning: () => {}, normal: () => {} };

/**
 * A retired generation whose exchanges have not all ended after this long is released anyway: long-lived
 * exchanges (WebSocket sessions, event streams, gRPC streams) must not pin every generation built during their
 * life. They keep running: each holds its compiled route, an upgraded session no longer uses a pool, and pools
 * close gracefully (requests in flight finish first) once no live generation uses them.
 */
export const GENERATION_DRAIN_LIMIT_MS = 5 * 60_000;

/** Routes compiled in the background per event-loop turn, so requests and I/O interleave with the compile. */
export const COMPILE_BATCH = 256;

/**
 * Plugin instances from one child container, provisioned and validated once, shared by consecutive generations.
 * Disposed (child container, provision signal aborted) when the last generation using it is released.
 */
class PluginSet {
  #users = 0;

  constructor(
    readonly container: DependencyContainer,
    readonly entries: readonly PluginEntry[],
    readonly abort: AbortController,
  ) {}

  use(): this {
    this.#users++;
    return this;
  }

  /** Ends one generation's use; the last one disposes the instances. */
  async release(logger: Logger): Promise<void> {
    if (--this.#users > 0) return;
    this.abort.abort();
    try {
      await this.container.dispose();
    } catch (err) {
      logger.warn({ err }, 'a plugin failed to dispose');
    }
  }
}

/** A pool key a generation holds a reference on, with what the registry needs to re-create its entry. */
interface HeldPool {
  readonly origin: string;
  readonly profile: TransportProfile;
}

/**
 * The compiled routes of a generation's table and the pools they use, plus the routes not compiled yet. Handed
 * from a generation to its successor when both share one plugin set, so that a change costs what it touched:
 * the successor removes the routes the change removed and compiles the ones it added, and takes over the rest
 * without visiting them. Owned by one generation at a time. Invariant: `compiled` keys and `pending` are disjoint
 * and together are exactly the owner's table routes.
 */
class CompiledRoutes {
  /** Keyed by the Route object (identity hashing; ids are long concatenated strings). */
  readonly compiled = new Map<Route, CompiledRoute>();
  /** Pool key → the pool and how many routes in `compiled` use it. */
  readonly poolUsers = new Map<string, { readonly pool: HeldPool; routes: number }>();

  constructor(readonly pending: Set<Route>) {}

  add(route: Route, compiled: CompiledRoute, pools: ReadonlyMap<string, HeldPool>): void {
    this.compiled.set(route, compiled);
    this.pending.delete(route);
    for (const key of poolKeysOf(compiled)) {
      const users = this.poolUsers.get(key);
      if (users) users.routes++;
      else this.poolUsers.set(key, { pool: pools.get(key)!, routes: 1 });
    }
  }

  /** Applies a table change: forgets removed routes (and pools no route uses any more), queues added ones. */
  apply(changes: RouteChanges): void {
    for (const route of changes.removed) {
      this.pending.delete(route);
      const compiled = this.compiled.get(route);
      if (compiled === undefined) continue;
      this.compiled.delete(route);
      for (const key of poolKeysOf(compiled)) {
        const users = this.poolUsers.get(key)!;
        if (--users.routes === 0) this.poolUsers.delete(key);
      }
    }
    for (const route of changes.added) if (!this.compiled.has(route)) this.pending.add(route);
  }
}

/** The distinct pool keys a compiled route uses (its upgrade pools included). */
function poolKeysOf(compiled: CompiledRoute): readonly string[] {
  const upgrade = compiled.upgradePoolKeys;
  if (upgrade === undefined || upgrade === compiled.poolKeys || upgrade.length === 0) return compiled.poolKeys;
  return [...new Set([...compiled.poolKeys, ...upgrade])];
}

/**
 * One route-table generation. Routes compile lazily: a request compiles its route on first use (memoized), and
 * the rest compile in the background in batches of {@link COMPILE_BATCH} routes per event-loop turn, so that
 * warnings and events that plugins raise in `bind` appear without a request. Until every route is compiled the
 * generation also holds the pools its predecessor held (`carried`), so kept-alive connections survive the swap.
 */
class Generation {
  inflight = 0;
  retired = false;
  /** Created on first use unless taken over from the predecessor. */
  #routes: CompiledRoutes | undefined;
  #cursor: Iterator<Route> | undefined;
  #complete = false;
  #whenComplete: Array<() => void> = [];
  #released: Promise<void> | undefined;
  #onDrained: (() => void) | undefined;
  #limit: NodeJS.Timeout | undefined;

  constructor(
    readonly serial: number,
    readonly table: RouteTable,
    readonly plugins: PluginSet,
    /** Pool keys this generation retained (for its compiled routes). */
    readonly pools: Map<string, HeldPool>,
    /** Pool keys taken over from the previous generation until this one is fully compiled. */
    readonly carried: Map<string, HeldPool>,
    readonly compile: (route: Route) => CompiledRoute,
    /** Called once when every route is compiled (not when retired first). */
    readonly onComplete: () => void,
    readonly release: () => Promise<void>,
  ) {}

  /** Every route of the table pending, unless taken over. */
  get #own(): CompiledRoutes {
    return (this.#routes ??= new CompiledRoutes(new Set(this.table.routes)));
  }

  /** Routes compiled so far. */
  get compiledRoutes(): number {
    return this.#own.compiled.size;
  }

  /** The compiled routes by Route object (a live map: it grows while this generation compiles). */
  get compiledMap(): ReadonlyMap<Route, CompiledRoute> {
    return this.#own.compiled;
  }

  /** Routes not compiled yet. */
  get pendingRoutes(): number {
    return this.#own.pending.size;
  }

  /** True once every route of the table is compiled. */
  get complete(): boolean {
    return this.#complete;
  }

  /**
   * Takes over `predecessor`'s compiled routes (same plugin set; `changes` lead from its table to this one's),
   * leaving it none: call only when this generation replaces it, before it could compile anything itself. Takes a
   * reference on every pool the routes taken over use.
   */
  takeOver(predecessor: Generation, changes: RouteChanges, retain: (key: string, pool: HeldPool) => string): void {
    const routes = predecessor.#own;
    predecessor.#routes = new CompiledRoutes(new Set());
    predecessor.#cursor = undefined;
    routes.apply(changes);
    this.#routes = routes;
    this.#cursor = undefined;
    for (const [key, { pool }] of routes.poolUsers) {
      if (!this.pools.has(key)) this.pools.set(retain(key, pool), pool);
    }
  }

  /** The compiled form of `route` (a route of this generation's table), compiling it now if needed. */
  route(route: Route): CompiledRoute {
    const routes = this.#own;
    let compiled = routes.compiled.get(route);
    if (compiled) return compiled;
    if (this.retired) throw new WarrenError(ErrorCode.NoRoute, `generation ${this.table.generation} was replaced before route ${route.id} was compiled`);
    compiled = this.compile(route);
    routes.add(route, compiled, this.pools);
    return compiled;
  }

  /** Compiles the routes no request needed yet, a batch per event-loop turn, until done or retired. */
  compileInBackground(): void {
    const step = (): void => {
      if (this.retired) return;
      const pending = this.#own.pending;
      // A Set iterator survives deletions, so each turn resumes where the last stopped.
      this.#cursor ??= pending.values();
      for (let n = 0; n < COMPILE_BATCH; n++) {
        const next = this.#cursor.next();
        if (next.done) break;
        this.route(next.value);
      }
      if (pending.size > 0) {
        setImmediate(step);
        return;
      }
      this.#cursor = undefined;
      this.#complete = true;
      this.onComplete();
      for (const resolve of this.#whenComplete.splice(0)) resolve();
    };
    setImmediate(step);
  }

  /** Resolves when every route is compiled, or when the generation is retired first. */
  whenComplete(): Promise<void> {
    if (this.#complete || this.retired) return Promise.resolve();
    return new Promise((resolve) => this.#whenComplete.push(resolve));
  }

  enter(): void {
    this.inflight++;
  }

  leave(): void {
    if (--this.inflight === 0 && this.retired) void this.#releaseOnce();
  }

  /** Stops new exchanges (the caller swapped in another generation) and releases once drained. */
  retire(drainLimitMs: number): Promise<void> {
    this.retired = true;
    // Exchanges in flight hold their compiled route; the table-sized map is not needed any more (and may have
    // been handed to the successor).
    this.#routes = new CompiledRoutes(new Set());
    this.#cursor = undefined;
    for (const resolve of this.#whenComplete.splice(0)) resolve();
    if (this.inflight === 0) return this.#releaseOnce();
    this.#limit = setTimeout(() => void this.#releaseOnce(), drainLimitMs);
    this.#limit.unref();
    return new Promise((resolve) => (this.#onDrained = resolve));
  }

  #releaseOnce(): Promise<void> {
    clearTimeout(this.#limit);
    this.#released ??= this.release().finally(() => this.#onDrained?.());
    return this.#released;
  }
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class Pipeline implements ExchangeHandler, Runnable {
  readonly needsLeader = false;
  readonly #options: PipelineOptions;
  readonly #logger: Logger;
  readonly #limits: HeaderLimits;
  readonly #defaults: ProxyDefaults;
  readonly #preserveHost: boolean;
  readonly #states = new EndpointStates();
  /** Endpoint states left by the last prune (see #pruneStates). */
  #statesKept = 0;
  readonly #pools: PoolRegistry;
  readonly #metrics: ProxyMetrics | undefined;
  readonly #accessLog: AccessLog | undefined;
  readonly #env: ForwardEnv;
  readonly #retiring = new Set<Promise<void>>();
  #live: Generation | undefined;
  #serial = 0;
  #wanted: { table: RouteTable; waiters: Waiter[]; freshPlugins: boolean } | undefined;
  #building: Promise<void> | undefined;
  #closed = false;
  #unsubscribeSecrets: (() => void) | undefined;
  readonly #drainLimitMs: number;

  constructor(options: PipelineOptions) {
    this.#drainLimitMs = options.drainLimitMs ?? GENERATION_DRAIN_LIMIT_MS;
    this.#options = options;
    this.#logger = options.logger.child({ component: 'pipeline' });
    const proxy = options.config.proxy;
    this.#limits = { maxHeaderBytes: proxy.maxHeaderBytes, maxRequestHeaders: proxy.maxRequestHeaders, paths: proxy.paths };
    this.#defaults = {
      connectTimeout: proxy.connectTimeout,
      responseHeaderTimeout: proxy.responseHeaderTimeout,
      idleTimeout: proxy.idleTimeout,
      requestBodyTimeout: proxy.requestBodyTimeout,
      upstreamQueueTimeout: proxy.upstreamQueueTimeout,
      loadBalancing: proxy.loadBalancing,
    };
    const admission = { maxQueued: proxy.maxQueuedRequests, queueTimeout: proxy.upstreamQueueTimeout, uploadShare: proxy.uploadSlotShare };
    this.#pools = PoolRegistry.admitting(admission);
    this.#preserveHost = proxy.preserveHost;
    this.#metrics = options.metrics ? createProxyMetrics(options.metrics, proxy.metrics) : undefined;
    this.#accessLog = createAccessLog(options.logger, proxy.accessLog);
    const metrics = this.#metrics;
    this.#env = {
      states: this.#states,
      pools: this.#pools,
      retries: proxy.retries,
      requestBufferBytes: proxy.requestBufferBytes,
      errorDetails: proxy.errorDetails,
      onRetry: metrics
        ? (run, ejected) => {
            metrics.retries.inc(metrics.routeLabels.of(run.compiled.labels).route);
            if (ejected) metrics.ejections.inc({ namespace: run.compiled.labels.namespace, service: run.compiled.labels.service });
          }
        : undefined,
      onUpgradeError: (run, err) => this.#logger.warn({ id: run.exchange.id, err }, 'upgraded session ended with an error'),
      // An upstream that broke a response is an error; a bound Warren enforced (idle, deadline) is a warning.
      onBrokenResponse: (run, err) =>
        this.#logger[err.code === ErrorCode.UpstreamProtocol ? 'error' : 'warn'](
          { id: run.exchange.id, route: run.route.id, upstream: run.endpoint, code: err.code, err: err.message },
          'response cut off after its head was sent; the client gets a reset (gRPC: an error status), never a complete response',
        ),
    };
  }

  /**
   * Builds a pipeline from a root container that holds `TOKENS.Config` and `TOKENS.Logger`, and optionally
   * `TOKENS.Metrics`, `TOKENS.Secrets`, `TOKENS.Events` and `TOKENS.RouteStore`.
   */
  static fromContainer(container: DependencyContainer, overrides: Partial<PipelineOptions> = {}): Pipeline {
    const optional = <T>(token: symbol): T | undefined =>
      container.isRegistered(token, true) ? (container.resolve(token) as T) : undefined;
    return new Pipeline({
      container,
      config: container.resolve(TOKENS.Config) as Readonly<Config>,
      logger: container.resolve(TOKENS.Logger) as Logger,
      metrics: optional<Registry>(TOKENS.Metrics as symbol),
      secrets: optional<SecretReader>(TOKENS.Secrets as symbol),
      events: optional<EventSink>(TOKENS.Events as symbol),
      routes: optional<RouteTableSource>(TOKENS.RouteStore as symbol),
      ...overrides,
    });
  }

  /** Generation number of the route table being served, if any. */
  get generation(): number | undefined {
    return this.#live?.table.generation;
  }

  /** Compiled generations not yet released (the live one included). For tests and diagnostics. */
  get generationsAlive(): number {
    return (this.#live ? 1 : 0) + this.#retiring.size;
  }

  /**
   * Resolves when the live generation has compiled every route (or was replaced first). Requests never wait for
   * this: an uncompiled route compiles on first use. For tests and diagnostics.
   */
  whenCompiled(): Promise<void> {
    return this.#live?.whenComplete() ?? Promise.resolve();
  }

  /**
   * The live generation's compiled routes, how many routes wait to compile, and the pool keys it holds for its
   * routes. For tests and diagnostics.
   */
  get liveCompiled(): { readonly routes: ReadonlyMap<Route, CompiledRoute>; readonly pending: number; readonly pools: ReadonlySet<string> } | undefined {
    const live = this.#live;
    return live && { routes: live.compiledMap, pending: live.pendingRoutes, pools: new Set(live.pools.keys()) };
  }

  /** Pools currently open. For tests and diagnostics. */
  get openPools(): number {
    return this.#pools.openPools;
  }

  /**
   * Compiles `table` and makes it live. Calls made while a build runs coalesce: only the newest table is
   * built, and every caller's promise settles with that build. The new generation shares the live one's plugin
   * instances unless `freshPlugins` is set (then they are provisioned anew; used when a referenced Secret
   * changed). Rejects (leaving the previous generation live) when a plugin fails to provision or validate.
   */
  setTable(table: RouteTable, options: { readonly freshPlugins?: boolean } = {}): Promise<void> {
    if (this.#closed) return Promise.reject(new WarrenError(ErrorCode.ShuttingDown, 'the pipeline is closed'));
    this.#watchSecrets();
    return new Promise<void>((resolve, reject) => {
      const waiters = this.#wanted?.waiters ?? [];
      waiters.push({ resolve, reject });
      this.#wanted = { table, waiters, freshPlugins: (this.#wanted?.freshPlugins ?? false) || options.freshPlugins === true };
      this.#startBuilding();
    });
  }

  #startBuilding(): void {
    // A table wanted after the loop's last check but before this `finally` ran starts the next loop.
    this.#building ??= this.#buildLoop().finally(() => {
      this.#building = undefined;
      if (this.#wanted) this.#startBuilding();
    });
  }

  /** Serves `source.current` and every table it publishes later. Returns the unsubscribe function. */
  follow(source: RouteTableSource): () => void {
    const apply = (table: RouteTable): void => {
      this.setTable(table).catch((err) => this.#logger.error({ err, generation: table.generation }, 'route table not applied; the previous one keeps serving'));
    };
    const unsubscribe = source.subscribe(apply);
    if (source.current) apply(source.current);
    return unsubscribe;
  }

  /** Runnable: follows the route store until `signal` aborts, then drains and closes. */
  async start(signal: AbortSignal): Promise<void> {
    const routes = this.#options.routes;
    const unsubscribe = routes ? this.follow(routes) : () => {};
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    unsubscribe();
    await this.close(this.#options.config.shutdownGracePeriod);
  }

  /**
   * Stops taking exchanges (new ones get 503), waits up to `graceMs` for the running ones, then releases every
   * generation and closes all pools.
   */
  async close(graceMs = this.#options.config.shutdownGracePeriod): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#unsubscribeSecrets?.();
    await this.#building?.catch(() => {});
    const live = this.#live;
    this.#live = undefined;
    if (live) this.#retire(live);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#retiring]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
    await this.#pools.closeAll(Math.min(graceMs, 1_000));
  }

  async handle(accepted: Exchange): Promise<void> {
    const logged = this.#accessLog?.begin(accepted);
    const exchange = logged?.exchange ?? accepted;
    const gen = this.#live;
    const head = exchange.head;
    const started = performance.now();
    if (!gen) {
      const err = this.#closed
        ? new WarrenError(ErrorCode.ShuttingDown, 'shutting down')
        : new WarrenError(ErrorCode.NoRoute, 'routes are not loaded yet', { status: 503 });
      // No generation, so no plugin instance to answer in another protocol: core's error page.
      const status = failExchange(exchange, err, { details: this.#env.errorDetails });
      this.#observe(exchange, started, undefined, { status, error: err, endpoint: undefined, attempts: 0 }, logged);
      return;
    }
    gen.enter();
    this.#metrics?.inflight.inc();
    let compiled: CompiledRoute | undefined;
    let outcome: Outcome;
    try {
      const framing = validateRequestHead(head, this.#limits);
      // Routes match the canonical path, and the upstream gets that same path (framing.target).
      const route = gen.table.match(head.authority, framing.path);
      if (!route) throw new WarrenError(ErrorCode.NoRoute, `no route for ${head.authority}${framing.path}`.slice(0, 300));
      compiled = gen.route(route);
      if (compiled.unavailable) throw compiled.unavailable;
      if (route.unresolved) throw new WarrenError(ErrorCode.NoEndpoints, `route ${route.id} is unresolved (${route.unresolved.reason}): ${route.unresolved.message}`);
      if (compiled.balancer.endpoints.length === 0) {
        throw new WarrenError(ErrorCode.NoEndpoints, `service ${route.backend.namespace}/${route.backend.service} has no ready endpoint`);
      }
      const headers = upstreamRequestHeaders(head, {
        hostOverride: compiled.hostOverride,
        preserveHost: this.#preserveHost,
        // Plugins whose protocol needs `te: trailers` put it back (their interceptor reads the client's head).
        keepTeTrailers: false,
        contentLength: framing.sendLength,
      });
      outcome = await new ExchangeRun(exchange, compiled, this.#env, framing, headers).run();
    } catch (err) {
      const status = failExchange(exchange, err, {
        mapError: compiled ? compiled.mapError : unboundErrorMapper(gen.plugins.entries),
        route: compiled?.route,
        details: this.#env.errorDetails,
      });
      outcome = { status, error: err as WarrenError, endpoint: undefined, attempts: 0 };
    } finally {
      gen.leave();
      this.#metrics?.inflight.dec();
    }
    this.#observe(exchange, started, compiled, outcome, logged);
  }

  #observe(exchange: Exchange, started: number, compiled: CompiledRoute | undefined, outcome: Outcome, logged: LoggedExchange | undefined): void {
    const ms = performance.now() - started;
    const m = this.#metrics;
    if (m) {
      const l = m.routeLabels.of(compiled?.labels);
      const cls = statusClass(outcome.status);
      m.requests.inc({ ...l.withHost, status_class: cls, method: methodLabel(exchange.head.method) });
      // An upgraded session lasts as long as the client stays: its length is not a request latency.
      if (outcome.status === 101) m.upgradedSessions.observe(l.route, ms / 1000);
      else m.duration.observe({ ...l.route, status_class: cls }, ms / 1000);
    }
    if (logged) this.#accessLog?.write({
      id: exchange.id,
      method: exchange.head.method,
      host: exchange.head.authority,
      path: exchange.head.path,
      status: outcome.status,
      durationMs: ms,
      route: compiled?.route.id,
      upstream: outcome.endpoint,
      attempts: outcome.attempts,
      error: outcome.error ? `${outcome.error.code}: ${outcome.error.message}` : undefined,
      clientAddress: exchange.head.clientAddress,
    }, logged);
    else if (outcome.error && outcome.status !== 499 && httpStatusOf(outcome.error) >= 500) {
      // Not in the access log (off or sampled out): the reference on the error page must still lead to the cause.
      const error = `${outcome.error.code}: ${outcome.error.message}`;
      this.#logger.warn({ id: exchange.id, reference: errorReference(exchange), route: compiled?.route.id, upstream: outcome.endpoint, error }, 'request failed');
    }
  }

  async #buildLoop(): Promise<void> {
    while (this.#wanted) {
      const { table, waiters, freshPlugins } = this.#wanted;
      this.#wanted = undefined;
      try {
        if (this.#closed) throw new WarrenError(ErrorCode.ShuttingDown, 'the pipeline is closed');
        const next = await this.#build(table, freshPlugins);
        if (this.#closed) {
          this.#retire(next);
          throw new WarrenError(ErrorCode.ShuttingDown, 'the pipeline is closed');
        }
        const previous = this.#live;
        if (previous) {
          // Same plugin instances: the unchanged routes keep their compiled form without being visited.
          if (previous.plugins === next.plugins) {
            next.takeOver(previous, routeChangesBetween(previous.table, table), (key, pool) => this.#pools.retain(key, pool.origin, pool.profile));
          }
          this.#carryPools(previous, next);
        }
        this.#live = next;
        if (this.#metrics) {
          this.#metrics.generation.set(table.generation);
          this.#metrics.serveTable(table);
        }
        if (previous) this.#retire(previous);
        next.compileInBackground();
        this.#logger.debug({ generation: table.generation, compiled: next.compiledRoutes }, 'route table live');
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err);
      }
    }
  }

  /**
   * Builds a generation up to the point where it can serve: the live generation's plugin set (unless
   * `freshPlugins` or there is none), else a new one provisioned and validated. Routes are compiled later (see
   * {@link Generation}); unchanged route objects are taken over from the live generation when the set is shared.
   */
  async #build(table: RouteTable, freshPlugins: boolean): Promise<Generation> {
    const serial = ++this.#serial;
    const predecessor = freshPlugins ? undefined : this.#live;
    const plugins = predecessor ? predecessor.plugins.use() : await this.#provisionPlugins();
    const held = new Map<string, HeldPool>();
    const carried = new Map<string, HeldPool>();
    const release = () => this.#release(plugins, held, carried);
    const env = {
      plugins: plugins.entries,
      defaults: this.#defaults,
      states: this.#states,
      coreDispatch,
      retainPool: (key: string, origin: string, profile: TransportProfile, open?: PoolOpener): string => {
        // One reference per generation and distinct pool, however many routes share it.
        if (held.has(key)) return this.#pools.canonical(key) ?? key;
        const canonical = this.#pools.retain(key, origin, profile, open);
        held.set(canonical, { origin, profile });
        return canonical;
      },
    };
    const compile = (route: Route): CompiledRoute => {
      const compiled = compileRoute(route, env);
      if (compiled.unavailable) this.#logger.warn({ route: route.id, err: compiled.unavailable.message }, 'route unavailable');
      return compiled;
    };
    const onComplete = (): void => {
      // Every route now holds its own pools: let go of the predecessor's, and forget endpoints that left.
      for (const key of carried.keys()) this.#pools.release(key);
      carried.clear();
      this.#pruneStates(table);
    };
    return new Generation(serial, table, plugins, held, carried, compile, onComplete, release);
  }

  /** A new plugin set: child container, every plugin provisioned then validated. Disposed again if one fails. */
  async #provisionPlugins(): Promise<PluginSet> {
    const plugins = new PluginSet(this.#options.container.createChildContainer(), [], new AbortController()).use();
    try {
      const resolved = plugins.container.resolve(GenerationPlugins);
      const entries = sortPlugins(resolved.plugins, resolved.manifests ?? []);
      (plugins.entries as PluginEntry[]).push(...entries);
      for (const { plugin } of entries) {
        await plugin.provision?.({
          logger: this.#options.logger.child({ plugin: plugin.id }),
          signal: plugins.abort.signal,
          secrets: this.#options.secrets ?? NO_SECRETS,
          events: this.#options.events ?? NO_EVENTS,
        });
      }
      for (const { plugin } of entries) await plugin.validate?.();
      return plugins;
    } catch (err) {
      await plugins.release(this.#logger);
      throw err;
    }
  }

  /**
   * `next` takes a reference on every pool `previous` holds (its own and those it still carries), until `next`
   * has compiled all its routes; otherwise retiring `previous` would close pools whose routes `next` simply has
   * not compiled yet, dropping their kept-alive connections.
   */
  #carryPools(previous: Generation, next: Generation): void {
    for (const source of [previous.pools, previous.carried]) {
      for (const [key, pool] of source) {
        if (next.carried.has(key)) continue;
        next.carried.set(this.#pools.retain(key, pool.origin, pool.profile), pool);
      }
    }
  }

  #retire(gen: Generation): void {
    const done = gen.retire(this.#drainLimitMs).finally(() => this.#retiring.delete(done));
    this.#retiring.add(done);
  }

  async #release(plugins: PluginSet, ...held: Array<Map<string, HeldPool>>): Promise<void> {
    await plugins.release(this.#logger);
    for (const keys of held) {
      for (const key of keys.keys()) this.#pools.release(key);
      keys.clear();
    }
  }

  /**
   * Drops the state of endpoints that left. A pass over every endpoint of the table costs (and allocates) as much
   * as the table, once per generation; a departed endpoint's state is a few numbers (an ejection it carries ends
   * within `EJECT_MAX_MS`), so the pass runs only once states could outnumber those kept by the last one.
   */
  #pruneStates(table: RouteTable): void {
    if (this.#states.size <= 2 * this.#statesKept + 64) return;
    const live = new Set<string>();
    const routes = table.routes;
    for (let i = 0; i < routes.length; i++) {
      const endpoints = routes[i]!.backend.endpoints;
      for (let j = 0; j < endpoints.length; j++) live.add(endpoints[j]!.key);
    }
    this.#states.prune(live);
    this.#statesKept = this.#states.size;
  }

  /** A rotated Secret that a live route references rebuilds the generation (new connections use it). */
  #watchSecrets(): void {
    if (this.#unsubscribeSecrets || !this.#options.secrets) return;
    this.#unsubscribeSecrets = this.#options.secrets.onChange((namespace, name) => {
      const live = this.#live;
      const ref = `${namespace}/${name}`;
      if (!live || this.#closed || !live.table.routes.some((r) => r.secretRefs.includes(ref))) return;
      this.#logger.info({ secret: ref }, 'referenced Secret changed; recompiling routes with fresh plugin instances');
      // A newer table may be waiting for the current build: rebuild that one, not the older live table.
      this.setTable(this.#wanted?.table ?? live.table, { freshPlugins: true }).catch((err) => this.#logger.error({ err }, 'recompiling after a Secret change failed'));
    });
  }
}

/** Pairs each plugin with its manifest and sorts them in chain order (kind, order, id). */
export function sortPlugins(plugins: readonly UpstreamPlugin[], manifests: readonly PluginManifest[]): PluginEntry[] {
  const byId = new Map(manifests.map((m) => [m.id, m]));
  return plugins
    .map((plugin) => {
      const manifest = byId.get(plugin.id);
      if (!manifest) {
        throw new WarrenError(ErrorCode.PluginLoad, `upstream plugin ${plugin.id} has no enabled manifest (register plugins with registerPlugins)`, {
          terminal: true,
        });
      }
      return { plugin, manifest };
    })
    .sort((a, b) => compareManifests(a.manifest, b.manifest));
}
