import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { CounterCell, HistogramCell } from './metric-cells.js';
import type { Config } from '../config/schema.js';
import type { RouteTable } from '../routes/types.js';

/**
 * A route's own label values: configured names, never the request's Host or path. `ingress` is the name of the
 * object the route came from and `kind` its kind (`Ingress`, `HTTPRoute`, `GRPCRoute`), so an HTTPRoute is never
 * counted as the Ingress of the same name. `kind` takes three values and is part of the capped combination, so
 * it adds no series beyond `maxRouteLabelSets`.
 */
export interface RouteLabelValues {
  readonly namespace: string;
  readonly kind: string;
  readonly ingress: string;
  readonly service: string;
  readonly host: string;
}

type RouteLabel = keyof RouteLabelValues;
type Labels<T extends string> = Partial<Record<T, string>>;

/** Setting `proxy.metrics`. */
export type ProxyMetricsConfig = Config['proxy']['metrics'];

/**
 * Per-request metrics of the proxy pipeline (prom-client, `warren_` prefix). By default their labels are a
 * status class and a method from a fixed list, so the number of series does not grow with Ingresses, hosts or
 * Services. With `proxy.metrics.routeLabels` they also carry the route's namespace, object kind and name (Ingress,
 * HTTPRoute or GRPCRoute), Service and configured host, for at most `maxRouteLabelSets` combinations (see {@link RouteLabeler}).
 */
export interface ProxyMetrics {
  readonly requests: Counter<RouteLabel | 'status_class' | 'method'>;
  /** Request latency: request head to the end of the response. Upgraded sessions are not in it. */
  readonly duration: Histogram<Exclude<RouteLabel, 'host'> | 'status_class'>;
  /** Length of upgraded (WebSocket) sessions, from the request head to the session's end. */
  readonly upgradedSessions: Histogram<Exclude<RouteLabel, 'host'>>;
  readonly retries: Counter<Exclude<RouteLabel, 'host'>>;
  readonly ejections: Counter<'namespace' | 'service'>;
  /** Exchanges in progress: counted here, read into `warren_inflight_requests` when scraped. */
  readonly inflight: InflightCount;
  readonly generation: Gauge;
  /** Ready endpoints of each Service that a route of the served table points at (0: that route answers 503). */
  readonly readyEndpoints: Gauge<'namespace' | 'service'>;
  /** Warning diagnostics in the served table by reason: objects or fields Warren rejected. */
  readonly routeWarnings: Gauge<'reason'>;
  /** The route labels a request of a route carries (none unless `routeLabels`). */
  readonly routeLabels: RouteLabeler;
  /** Sets the table whose health `readyEndpoints` and `routeWarnings` report (computed when scraped). */
  serveTable(table: RouteTable): void;
  /** The counter's and the histogram's series of a request of `set` that ended with `statusClass` and `method` labels. */
  outcome(set: RouteLabelSet, statusClass: string, method: string): OutcomeCells;
}

/** One request's series: its counter and its latency histogram, bound to their label sets (see `metric-cells.ts`). */
export interface OutcomeCells {
  readonly requests: CounterCell;
  readonly duration: HistogramCell;
}

/** Label value of every route label for traffic beyond `maxRouteLabelSets` (no Kubernetes name or host has `_`). */
export const OTHER_ROUTES = '_other';

/** The label sets of one route: with its host (request counter) and without (histograms, retries). */
interface RouteLabelSet {
  readonly withHost: Labels<RouteLabel>;
  readonly route: Labels<Exclude<RouteLabel, 'host'>>;
}

const NO_LABELS: RouteLabelSet = Object.freeze({ withHost: Object.freeze({}), route: Object.freeze({}) });
const NO_ROUTE: RouteLabelSet = routeLabelSet({ namespace: '', kind: '', ingress: '', service: '', host: '' });
const OTHER: RouteLabelSet = routeLabelSet({ namespace: OTHER_ROUTES, kind: OTHER_ROUTES, ingress: OTHER_ROUTES, service: OTHER_ROUTES, host: OTHER_ROUTES });

function routeLabelSet(v: RouteLabelValues): RouteLabelSet {
  return Object.freeze({
    withHost: Object.freeze({ namespace: v.namespace, kind: v.kind, ingress: v.ingress, service: v.service, host: v.host }),
    route: Object.freeze({ namespace: v.namespace, kind: v.kind, ingress: v.ingress, service: v.service }),
  });
}

/**
 * Hands out route label sets under a cap. Off: no route labels at all. On: the first `max` distinct
 * namespace/kind/object/Service/host combinations that see traffic get their own labels for the life of the
 * process (counters must not go backwards, so a set is never reassigned); traffic of any further combination
 * is counted under {@link OTHER_ROUTES}. Requests that match no route carry empty route labels.
 */
class RouteLabeler {
  readonly #sets = new Map<string, RouteLabelSet>();
  /** Memo per compiled route's label object, so the common case does not build a key string. */
  readonly #memo = new WeakMap<RouteLabelValues, RouteLabelSet>();

  constructor(readonly config: ProxyMetricsConfig) {}

  /** Combinations labelled so far (at most `maxRouteLabelSets`). */
  get size(): number {
    return this.#sets.size;
  }

  of(route: RouteLabelValues | undefined): RouteLabelSet {
    if (!this.config.routeLabels) return NO_LABELS;
    if (!route) return NO_ROUTE;
    let set = this.#memo.get(route);
    if (set) return set;
    const key = `${route.namespace}\n${route.kind}\n${route.ingress}\n${route.service}\n${route.host}`;
    set = this.#sets.get(key);
    if (!set) {
      if (this.#sets.size >= this.config.maxRouteLabelSets) set = OTHER;
      else this.#sets.set(key, (set = routeLabelSet(route)));
    }
    this.#memo.set(route, set);
    return set;
  }
}

/** Buckets of `warren_request_duration_seconds`: 5 ms to 30 s, 11 buckets (each costs a series per label set). */
const REQUEST_DURATION_BUCKETS: readonly number[] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30];

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE']);

/** A method label from a fixed list (anything else is `OTHER`). */
export function methodLabel(method: string): string {
  return METHODS.has(method) ? method : 'OTHER';
}

/** `2xx`, `4xx`, … */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? STATUS_CLASSES[Math.floor(status / 100) - 1]! : 'other';
}

const STATUS_CLASSES: readonly string[] = ['1xx', '2xx', '3xx', '4xx', '5xx'];

/**
 * Creates the metrics in `registry`, or returns the ones already there (several pipelines, one registry).
 * The label names follow `config.routeLabels` of the first pipeline that created them.
 */
export function createProxyMetrics(registry: Registry, config: ProxyMetricsConfig = { routeLabels: false, maxRouteLabelSets: 200 }): ProxyMetrics {
  const existing = <T>(name: string): T | undefined => registry.getSingleMetric(name) as T | undefined;
  let shared = sharedByRegistry.get(registry);
  if (!shared) sharedByRegistry.set(registry, (shared = { health: new TableHealth(), inflight: new InflightCount() }));
  const { health: served, inflight } = shared;
  const route = config.routeLabels ? (['namespace', 'kind', 'ingress', 'service'] as const) : ([] as const);
  const withHost = config.routeLabels ? ([...route, 'host'] as const) : ([] as const);
  const requests: ProxyMetrics['requests'] =
    existing('warren_requests_total') ??
    new Counter({
      name: 'warren_requests_total',
      help: 'Requests handled by the proxy pipeline',
      labelNames: [...withHost, 'status_class', 'method'],
      registers: [registry],
    });
  const duration: ProxyMetrics['duration'] =
    existing('warren_request_duration_seconds') ??
    new Histogram({
      name: 'warren_request_duration_seconds',
      help: 'Time from request head to the end of the response; upgraded sessions are in warren_upgraded_session_duration_seconds instead',
      labelNames: [...route, 'status_class'],
      buckets: [...REQUEST_DURATION_BUCKETS],
      registers: [registry],
    });
  // Made once per label set, status class and method (fixed lists, so this stays small); a request only looks
  // its cells up.
  const outcomes = new WeakMap<RouteLabelSet, Map<string, Map<string, OutcomeCells>>>();
  return {
    routeLabels: new RouteLabeler(config),
    serveTable: (table) => served.serve(table),
    outcome(set, statusClass, method) {
      let byClass = outcomes.get(set);
      if (!byClass) outcomes.set(set, (byClass = new Map()));
      let byMethod = byClass.get(statusClass);
      if (!byMethod) byClass.set(statusClass, (byMethod = new Map()));
      let cells = byMethod.get(method);
      if (!cells) {
        cells = Object.freeze({
          requests: new CounterCell(requests, Object.freeze({ ...set.withHost, status_class: statusClass, method })),
          duration: new HistogramCell(duration, Object.freeze({ ...set.route, status_class: statusClass })),
        });
        byMethod.set(method, cells);
      }
      return cells;
    },
    requests,
    duration,
    upgradedSessions:
      existing('warren_upgraded_session_duration_seconds') ??
      new Histogram({
        name: 'warren_upgraded_session_duration_seconds',
        help: 'Length of upgraded (WebSocket) sessions, from the request head to the end of the session',
        labelNames: [...route],
        buckets: [0.1, 1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600],
        registers: [registry],
      }),
    retries:
      existing('warren_upstream_retries_total') ??
      new Counter({
        name: 'warren_upstream_retries_total',
        help: 'Requests repeated on another endpoint after a connect failure',
        labelNames: [...route],
        registers: [registry],
      }),
    ejections:
      existing('warren_upstream_ejections_total') ??
      new Counter({
        name: 'warren_upstream_ejections_total',
        help: 'Endpoints ejected for a while after a connect failure',
        labelNames: ['namespace', 'service'] as const,
        registers: [registry],
      }),
    // (Registered here, in this order, so the exposition lists the metrics as it always did.)
    inflight: existing('warren_inflight_requests') ? inflight : inflightGauge(registry, inflight),
    generation:
      existing('warren_proxy_generation') ?? new Gauge({ name: 'warren_proxy_generation', help: 'Route-table generation the pipeline serves', registers: [registry] }),
    readyEndpoints:
      existing('warren_backend_ready_endpoints') ??
      new Gauge({
        name: 'warren_backend_ready_endpoints',
        help: 'Ready (not terminating) endpoints of each Service routed to by the served route table',
        labelNames: ['namespace', 'service'] as const,
        registers: [registry],
        collect() {
          served.refresh(this, undefined);
        },
      }),
    routeWarnings:
      existing('warren_route_warnings') ??
      new Gauge({
        name: 'warren_route_warnings',
        help: 'Warning diagnostics (rejected objects, annotations or fields) in the served route table, by reason',
        labelNames: ['reason'] as const,
        registers: [registry],
        collect() {
          served.refresh(undefined, this);
        },
      }),
  };
}

/** Registers `warren_inflight_requests`, which reads `count` when scraped; returns `count`. */
function inflightGauge(registry: Registry, count: InflightCount): InflightCount {
  new Gauge({
    name: 'warren_inflight_requests',
    help: 'Exchanges in progress (upgraded sessions included)',
    registers: [registry],
    collect() {
      count.report(this);
    },
  });
  return count;
}

/** What every pipeline that reports into one registry shares. */
const sharedByRegistry = new WeakMap<Registry, { readonly health: TableHealth; readonly inflight: InflightCount }>();

/**
 * Exchanges in progress, a plain count that the gauge reads when scraped: a gauge's `inc`/`dec` looks its series
 * up by labels on every call, twice per request.
 */
export class InflightCount {
  #count = 0;

  inc(): void {
    this.#count++;
  }

  dec(): void {
    this.#count--;
  }

  /** Sets `gauge` to the count (its `collect`, when scraped). */
  report(gauge: Gauge): void {
    gauge.set(this.#count);
  }
}

/**
 * The table-health gauges, computed from the served table when scraped rather than on every swap: a pass over
 * the whole table (50,000 routes at 10,000 Ingresses) per change would make each change cost as much as the
 * table, and block requests meanwhile. A scrape recomputes only when another table was served since the last.
 * Label sets of Services no longer routed to, and of reasons no longer present, disappear with it.
 */
class TableHealth {
  #table: RouteTable | undefined;
  #readyStale = false;
  #warningsStale = false;

  serve(table: RouteTable): void {
    this.#table = table;
    this.#readyStale = this.#warningsStale = true;
  }

  refresh(readyEndpoints: Gauge<'namespace' | 'service'> | undefined, routeWarnings: Gauge<'reason'> | undefined): void {
    const table = this.#table;
    if (!table) return;
    if (readyEndpoints && this.#readyStale) {
      this.#readyStale = false;
      const ready = new Map<string, { namespace: string; service: string; keys: Set<string> }>();
      for (const { backend } of table.routes) {
        const id = `${backend.namespace}/${backend.service}`;
        let entry = ready.get(id);
        if (!entry) ready.set(id, (entry = { namespace: backend.namespace, service: backend.service, keys: new Set() }));
        for (const endpoint of backend.endpoints) if (!endpoint.terminating) entry.keys.add(endpoint.key);
      }
      readyEndpoints.reset();
      for (const { namespace, service, keys } of ready.values()) readyEndpoints.set({ namespace, service }, keys.size);
    }
    if (routeWarnings && this.#warningsStale) {
      this.#warningsStale = false;
      const warnings = new Map<string, number>();
      for (const d of table.diagnostics) if (d.type === 'Warning') warnings.set(d.reason, (warnings.get(d.reason) ?? 0) + 1);
      routeWarnings.reset();
      for (const [reason, count] of warnings) routeWarnings.set({ reason }, count);
    }
  }
}
