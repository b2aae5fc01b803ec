import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric of Warren's own starts with this (process, Node and cloudflared-compatible series do not). */
const METRIC_PREFIX = 'warren_';

/**
 * Creates the process-wide prom-client registry. With `defaultMetrics` (the default) it also collects Node's
 * process metrics (CPU, RSS, event-loop lag, GC) under their conventional unprefixed names
 * (`process_*`, `nodejs_*`), so standard Node.js dashboards and alerts match. Tests pass `false` to keep
 * registries cheap.
 */
export function createMetricsRegistry(options: { defaultMetrics?: boolean } = {}): Registry {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  return registry;
}

/**
 * Returns the metric named `name` from `registry`, creating it with `create` when absent. Lets several
 * components (or several controller instances in one test process) share one registry without
 * "metric already registered" errors.
 */
function sharedMetric<T>(registry: Registry, name: string, create: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? create();
}

/** Per registry, how to count the newest route table for `warren_route_table_objects`, until a scrape did. */
const pendingCounts = new WeakMap<Registry, () => Record<string, number>>();

/**
 * The control plane's metrics. Label values are bounded: controller names, kinds, results and reasons are
 * fixed vocabularies; no object names appear in labels.
 */
export class ControlPlaneMetrics {
  /** Reconciles by controller (`routes`, `status`, `finalizer`) and result (`success`, `error`, `terminal`). */
  readonly reconciles: Counter<'controller' | 'result'>;
  /** Time a reconcile took, by controller. */
  readonly reconcileSeconds: Histogram<'controller'>;
  /** Generation of the route table currently served. */
  readonly routeTableGeneration: Gauge;
  /** Time to build one route table from a snapshot. */
  readonly routeTableBuildSeconds: Histogram;
  /**
   * Routes, owned Ingresses and diagnostics in the current table, by `type`. Set through
   * {@link countRouteTableWhenScraped}: counting walks the whole table, so it runs per scrape, not per change.
   */
  readonly routeTableSize: Gauge<'type'>;
  readonly #registry: Registry;
  /** 1 while this replica holds the leader Lease. */
  readonly leader: Gauge;
  /** Leadership transitions observed by this replica (acquired or lost). */
  readonly leaderTransitions: Counter<'event'>;
  /** Watch events received, by kind and type (ADDED, MODIFIED, DELETED, BOOKMARK, RELIST). */
  readonly informerEvents: Counter<'kind' | 'type'>;
  /** Watch restarts, by kind and cause (`ended`, `error`, `gone`). */
  readonly informerRestarts: Counter<'kind' | 'cause'>;
  /** Objects in each informer cache. */
  readonly informerObjects: Gauge<'kind'>;
  /** 1 once every informer finished its first list. */
  readonly cachesSynced: Gauge;
  /** Keys waiting in a work queue. */
  readonly queueDepth: Gauge<'queue'>;
  /** Retries scheduled with backoff, by queue. */
  readonly queueRetries: Counter<'queue'>;
  /** Kubernetes Events written (created or aggregated) and suppressed, by type and outcome. */
  readonly events: Counter<'type' | 'outcome'>;
  /** Ingress status writes, by action (`set`, `clear`) and result. */
  readonly statusWrites: Counter<'action' | 'result'>;

  constructor(registry: Registry) {
    const p = METRIC_PREFIX;
    const reg = [registry];
    this.reconciles = sharedMetric(
      registry,
      `${p}reconcile_total`,
      () => new Counter({ name: `${p}reconcile_total`, help: 'Reconciles by controller and result', labelNames: ['controller', 'result'], registers: reg }),
    );
    this.reconcileSeconds = sharedMetric(
      registry,
      `${p}reconcile_duration_seconds`,
      () =>
        new Histogram({
          name: `${p}reconcile_duration_seconds`,
          help: 'Reconcile duration by controller',
          labelNames: ['controller'],
          buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
          registers: reg,
        }),
    );
    this.routeTableGeneration = sharedMetric(
      registry,
      `${p}route_table_generation`,
      () => new Gauge({ name: `${p}route_table_generation`, help: 'Generation of the route table being served', registers: reg }),
    );
    this.routeTableBuildSeconds = sharedMetric(
      registry,
      `${p}route_table_build_duration_seconds`,
      () =>
        new Histogram({
          name: `${p}route_table_build_duration_seconds`,
          help: 'Time to build a route table from the object caches',
          buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
          registers: reg,
        }),
    );
    this.#registry = registry;
    this.routeTableSize = sharedMetric(
      registry,
      `${p}route_table_objects`,
      () =>
        new Gauge({
          name: `${p}route_table_objects`,
          help: 'Routes, owned Ingresses, hosts and diagnostics in the current route table',
          labelNames: ['type'],
          registers: reg,
          collect() {
            const count = pendingCounts.get(registry);
            if (count === undefined) return;
            pendingCounts.delete(registry);
            for (const [type, value] of Object.entries(count())) this.set({ type }, value);
          },
        }),
    );
    this.leader = sharedMetric(registry, `${p}leader`, () => new Gauge({ name: `${p}leader`, help: '1 while this replica holds the leader Lease', registers: reg }));
    this.leaderTransitions = sharedMetric(
      registry,
      `${p}leader_transitions_total`,
      () => new Counter({ name: `${p}leader_transitions_total`, help: 'Leadership acquired or lost by this replica', labelNames: ['event'], registers: reg }),
    );
    this.informerEvents = sharedMetric(
      registry,
      `${p}informer_events_total`,
      () => new Counter({ name: `${p}informer_events_total`, help: 'Watch events received by kind and type', labelNames: ['kind', 'type'], registers: reg }),
    );
    this.informerRestarts = sharedMetric(
      registry,
      `${p}informer_watch_restarts_total`,
      () => new Counter({ name: `${p}informer_watch_restarts_total`, help: 'Watch restarts by kind and cause', labelNames: ['kind', 'cause'], registers: reg }),
    );
    this.informerObjects = sharedMetric(
      registry,
      `${p}informer_objects`,
      () => new Gauge({ name: `${p}informer_objects`, help: 'Objects held in each informer cache', labelNames: ['kind'], registers: reg }),
    );
    this.cachesSynced = sharedMetric(
      registry,
      `${p}informer_caches_synced`,
      () => new Gauge({ name: `${p}informer_caches_synced`, help: '1 once every informer finished its first list', registers: reg }),
    );
    this.queueDepth = sharedMetric(
      registry,
      `${p}workqueue_depth`,
      () => new Gauge({ name: `${p}workqueue_depth`, help: 'Keys waiting in a work queue', labelNames: ['queue'], registers: reg }),
    );
    this.queueRetries = sharedMetric(
      registry,
      `${p}workqueue_retries_total`,
      () => new Counter({ name: `${p}workqueue_retries_total`, help: 'Keys requeued with backoff after a failure', labelNames: ['queue'], registers: reg }),
    );
    this.events = sharedMetric(
      registry,
      `${p}kubernetes_events_total`,
      () =>
        new Counter({
          name: `${p}kubernetes_events_total`,
          help: 'Kubernetes Events by type and outcome (created, aggregated, suppressed, combined, rate-limited, failed, dropped)',
          labelNames: ['type', 'outcome'],
          registers: reg,
        }),
    );
    this.statusWrites = sharedMetric(
      registry,
      `${p}ingress_status_writes_total`,
      () => new Counter({ name: `${p}ingress_status_writes_total`, help: 'Ingress status writes by action and result', labelNames: ['action', 'result'], registers: reg }),
    );
  }
  /**
   * `warren_route_table_objects` becomes `count()` of the newest table at the next scrape (a newer call replaces an
   * older one that no scrape used).
   */
  countRouteTableWhenScraped(count: () => Record<string, number>): void {
    pendingCounts.set(this.#registry, count);
  }
}
