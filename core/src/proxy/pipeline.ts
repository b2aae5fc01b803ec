import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { DependencyContainer } from 'tsyringe';
import type { Config } from '../config/schema.js';
import { ErrorCode, WarrenError } from '../errors.js';
import type { EventSink, Runnable, SecretReader } from '../plugin-api/lifecycle.js';
import type { Route, RouteTable } from '../routes/types.js';
import { isBuiltTable } from '../routes/store.js';
import { createAccessLog, type AccessLog, type LoggedExchange } from './access-log.js';
import { EndpointStates } from './balancer.js';
import { unboundErrorMapper, type CompiledRoute, type ProxyDefaults } from './compile.js';
import { errorReference, failExchange, httpStatusOf } from './errors.js';
import type { Exchange, ExchangeHandler } from './exchange.js';
import { gatewayEntranceOf } from '../model/entrance.js';
import { ExchangeRun, type ForwardEnv, type Outcome } from './forward.js';
import { GenerationFactory } from './generation-factory.js';
import { GenerationSwap } from './generation-swap.js';
import { GENERATION_DRAIN_LIMIT_MS, type Generation } from './generation.js';
import { upstreamRequestHeaders, validateRequestHead, type HeaderLimits } from './headers.js';
import { createProxyMetrics, methodLabel, statusClass, type ProxyMetrics } from './metrics.js';
import { PoolRegistry } from './transport.js';

/**
 * The proxy pipeline: the `ExchangeHandler` every acceptor (tunnel connector, plain-HTTP entry) calls. A façade
 * over the parts of the request path, each with one job:
 *
 *  - `handle` below: the request entry (validate the head, match a route, run the exchange, observe it);
 *  - {@link GenerationSwap} (`generation-swap.ts`): which route-table generation is live, coalesced builds, the
 *    hand-over from one generation to the next, retiring and draining the old one (`generation.ts`);
 *  - {@link GenerationFactory} (`generation-factory.ts`): what a generation is built from: a plugin set
 *    (`plugin-set.ts`: provisioning, sharing, disposal) and pool references (`pool-references.ts`);
 *  - `route-compilation.ts`: when routes compile (on first use and in the background, after the swap);
 *  - `forward.ts`: one exchange through its compiled route.
 *
 * Consecutive generations share one plugin set while what it was provisioned from stays the same; a rotated
 * Secret that a live route references (or `setTable` with `freshPlugins`) builds a new set. An exchange holds the
 * generation it started on until it ends; a failed build leaves the previous generation serving.
 */

/** What `handle` returns for an exchange it ended before running it. */
const DONE = Promise.resolve();

/** A route whose backend cannot be served: its own status (500 for an invalid Gateway API backendRef), else 503. */
function unresolved(route: Route, why: NonNullable<Route['unresolved']>): WarrenError {
  return new WarrenError(ErrorCode.NoEndpoints, `route ${route.id} is unresolved (${why.reason}): ${why.message}`, { status: why.status });
}

/** No endpoint to send to: 503, or 500 for a route that names no backend at all (a Gateway API rule without backendRefs). */
function noEndpoint(route: Route): WarrenError {
  if (route.backend.service === '') return new WarrenError(ErrorCode.NoEndpoints, `route ${route.id} has no backend`, { status: 500 });
  return new WarrenError(ErrorCode.NoEndpoints, `service ${route.backend.namespace}/${route.backend.service} has no ready endpoint`);
}

/** The part of the routing model's `RouteStore` the pipeline needs. */
export interface RouteTableSource {
  /** The table to serve now; undefined, or the placeholder of generation 0, while none was published. */
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

export class Pipeline implements ExchangeHandler, Runnable {
  readonly needsLeader = false;
  readonly #options: PipelineOptions;
  readonly #logger: Logger;
  readonly #limits: HeaderLimits;
  readonly #defaults: ProxyDefaults;
  readonly #preserveHost: boolean;
  readonly #states = new EndpointStates();
  readonly #pools: PoolRegistry;
  readonly #metrics: ProxyMetrics | undefined;
  readonly #accessLog: AccessLog | undefined;
  readonly #env: ForwardEnv;
  readonly #swap: GenerationSwap;
  #unsubscribeSecrets: (() => void) | undefined;
  readonly #drainLimitMs: number;
  /**
   * The ends of `whenRouting` waits, called when the first generation goes live. A wait its signal ends leaves the
   * set: a reaction on a promise that only the first table settles would keep every such signal until then.
   */
  readonly #routingWaits = new Set<() => void>();

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
    this.#swap = this.#generationSwap();
  }

  /** The generation swap over a factory built from the pools, endpoint states and defaults set up above. */
  #generationSwap(): GenerationSwap {
    const factory = new GenerationFactory({
      container: this.#options.container,
      services: this.#options,
      logger: this.#logger,
      pools: this.#pools,
      defaults: this.#defaults,
      states: this.#states,
    });
    const metrics = this.#metrics;
    return new GenerationSwap({
      build: (table, predecessor) => factory.build(table, predecessor),
      onLive: ({ table }) => {
        for (const end of this.#routingWaits) end();
        metrics?.generation.set(table.generation);
        metrics?.serveTable(table);
      },
      logger: this.#logger,
      drainLimitMs: this.#drainLimitMs,
    });
  }

  get #live(): Generation | undefined {
    return this.#swap.live;
  }

  get #closed(): boolean {
    return this.#swap.closed;
  }

  get #wanted(): { readonly table: RouteTable } | undefined {
    return this.#swap.wanted;
  }

  /**
   * Resolves once a route table is live (see `ExchangeHandler.whenRouting`), or when `signal` aborts. Until then
   * every request is answered 503 `routes are not loaded yet`.
   */
  whenRouting(signal: AbortSignal): Promise<void> {
    if (this.#live || signal.aborted) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = (): void => {
        this.#routingWaits.delete(done);
        signal.removeEventListener('abort', done);
        resolve();
      };
      this.#routingWaits.add(done);
      signal.addEventListener('abort', done, { once: true });
    });
  }

  /** Generation number of the route table being served, if any. */
  get generation(): number | undefined {
    return this.#live?.table.generation;
  }

  /** Compiled generations not yet released (the live one included). For tests and diagnostics. */
  get generationsAlive(): number {
    return this.#swap.alive;
  }

  /**
   * Resolves when the live generation has compiled every route (or was replaced first). Requests never wait for
   * this: an uncompiled route compiles on first use. For tests and diagnostics.
   */
  whenCompiled(): Promise<void> {
    return this.#live?.compilation.whenComplete() ?? Promise.resolve();
  }

  /**
   * The live generation's compiled routes, how many routes wait to compile, and the pool keys it holds for its
   * routes. For tests and diagnostics.
   */
  get liveCompiled(): { readonly routes: ReadonlyMap<Route, CompiledRoute>; readonly pending: number; readonly pools: ReadonlySet<string> } | undefined {
    const live = this.#live;
    return live && { routes: live.compilation.compiledMap, pending: live.compilation.pendingRoutes, pools: new Set(live.pools.held.keys()) };
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
    return this.#swap.setTable(table, options);
  }

  /** Serves `source.current` and every table it publishes later. Returns the unsubscribe function. */
  follow(source: RouteTableSource): () => void {
    const apply = (table: RouteTable): void => {
      this.setTable(table).catch((err) => this.#logger.error({ err, generation: table.generation }, 'route table not applied; the previous one keeps serving'));
    };
    const unsubscribe = source.subscribe(apply);
    // Generation 0 is the route store's placeholder before its first build, not routes: serving it would answer
    // every request 404 `no route matches` instead of 503 `routes are not loaded yet`.
    if (source.current && isBuiltTable(source.current)) apply(source.current);
    return unsubscribe;
  }

  /**
   * Runnable (a handler: the manager starts it before the acceptors and stops it after they drained): follows the
   * route store until `signal` aborts, then closes. Exchanges still running then were abandoned by their acceptor
   * (which drained its own already): they get 2 s at most to end.
   */
  async start(signal: AbortSignal): Promise<void> {
    const routes = this.#options.routes;
    const unsubscribe = routes ? this.follow(routes) : () => {};
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    unsubscribe();
    await this.close(Math.min(2_000, this.#options.config.shutdownGracePeriod));
  }

  /**
   * Stops taking exchanges (new ones get 503), waits up to `graceMs` for the running ones, then releases every
   * generation and closes all pools.
   */
  async close(graceMs = this.#options.config.shutdownGracePeriod): Promise<void> {
    if (this.#closed) return;
    this.#unsubscribeSecrets?.();
    await this.#swap.close(graceMs);
    await this.#pools.closeAll(Math.min(graceMs, 1_000));
  }

  handle(accepted: Exchange): Promise<void> {
    try {
      return this.#handle(accepted);
    } catch (err) {
      // The contract: a handler never throws; what would (the bookkeeping of an exchange that failed early) rejects.
      return Promise.reject(err);
    }
  }

  #handle(accepted: Exchange): Promise<void> {
    const logged = this.#accessLog?.begin(accepted);
    const exchange = logged?.exchange ?? accepted;
    const gen = this.#live;
    const head = exchange.head;
    const started = performance.now();
    if (!gen) {
      const err = this.#closed ? new WarrenError(ErrorCode.ShuttingDown, 'shutting down') : new WarrenError(ErrorCode.NoRoute, 'routes are not loaded yet', { status: 503 });
      // No generation, so no plugin instance to answer in another protocol: core's error page.
      const status = failExchange(exchange, err, { details: this.#env.errorDetails });
      this.#observe(exchange, started, undefined, { status, error: err, endpoint: undefined, attempts: 0 }, logged);
      return DONE;
    }
    gen.enter();
    this.#metrics?.inflight.inc();
    let compiled: CompiledRoute | undefined;
    // Set once the run reported its end: a throw after that must not end the exchange a second time.
    let ended = false;
    try {
      const framing = validateRequestHead(head, this.#limits);
      // Routes match the canonical path, and the upstream gets that same path (framing.target). The framing is
      // also the request facts that route conditions (method, headers, query) are checked against.
      const route = gen.table.match(head.authority, framing.path, framing, gatewayEntranceOf(accepted));
      if (!route) throw new WarrenError(ErrorCode.NoRoute, `no route for ${head.authority}${framing.path}`.slice(0, 300));
      compiled = gen.route(route);
      if (compiled.unavailable) throw compiled.unavailable;
      if (!compiled.answersItself) {
        if (route.unresolved) throw unresolved(route, route.unresolved);
        if (compiled.balancer.endpoints.length === 0) throw noEndpoint(route);
      }
      const headers = upstreamRequestHeaders(head, {
        hostOverride: compiled.hostOverride,
        preserveHost: this.#preserveHost,
        contentLength: framing.sendLength,
      });
      const routed = compiled;
      return new ExchangeRun(exchange, routed, this.#env, framing, headers, (outcome) => {
        ended = true;
        this.#ended(gen, exchange, started, routed, outcome, logged);
      }).run();
    } catch (err) {
      if (ended) throw err;
      const status = failExchange(exchange, err, {
        mapError: compiled ? compiled.mapError : unboundErrorMapper(gen.plugins.entries),
        route: compiled?.route,
        details: this.#env.errorDetails,
      });
      this.#ended(gen, exchange, started, compiled, { status, error: err as WarrenError, endpoint: undefined, attempts: 0 }, logged);
      return DONE;
    }
  }

  /** An exchange that entered `gen` ended: it leaves the generation and is observed. */
  #ended(gen: Generation, exchange: Exchange, started: number, compiled: CompiledRoute | undefined, outcome: Outcome, logged: LoggedExchange | undefined): void {
    gen.leave();
    this.#metrics?.inflight.dec();
    this.#observe(exchange, started, compiled, outcome, logged);
  }

  #observe(exchange: Exchange, started: number, compiled: CompiledRoute | undefined, outcome: Outcome, logged: LoggedExchange | undefined): void {
    const ms = performance.now() - started;
    const m = this.#metrics;
    if (m) {
      const l = m.routeLabels.of(compiled?.labels);
      const cells = m.outcome(l, statusClass(outcome.status), methodLabel(exchange.head.method));
      cells.requests.inc();
      // An upgraded session lasts as long as the client stays: its length is not a request latency.
      if (outcome.status === 101) m.upgradedSessions.observe(l.route, ms / 1000);
      else cells.duration.observe(ms / 1000);
    }
    if (logged)
      this.#accessLog?.write(
        {
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
        },
        logged,
      );
    else if (outcome.error && outcome.status !== 499 && httpStatusOf(outcome.error) >= 500) {
      // Not in the access log (off or sampled out): the reference on the error page must still lead to the cause.
      const error = `${outcome.error.code}: ${outcome.error.message}`;
      this.#logger.warn({ id: exchange.id, reference: errorReference(exchange), route: compiled?.route.id, upstream: outcome.endpoint, error }, 'request failed');
    }
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
