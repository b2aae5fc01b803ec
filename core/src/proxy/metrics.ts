import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { RouteTable } from '../routes/types.js';

/**
 * Per-request metrics of the proxy pipeline (prom-client, `warren_` prefix). Label sets are bounded: the
 * route's namespace, Ingress, Service and configured host (never the request's Host or path), the status
 * class and a method from a fixed list. Requests that match no route carry empty route labels.
 */
export interface ProxyMetrics {
  readonly requests: Counter<'namespace' | 'ingress' | 'service' | 'host' | 'status_class' | 'method'>;
  /** Request latency: request head to the end of the response. Upgraded sessions are not in it. */
  readonly duration: Histogram<'namespace' | 'ingress' | 'service' | 'status_class'>;
  /** Length of upgraded (WebSocket) sessions, from the request head to the session's end. */
  readonly upgradedSessions: Histogram<'namespace' | 'ingress' | 'service'>;
  readonly retries: Counter<'namespace' | 'ingress' | 'service'>;
  readonly ejections: Counter<'namespace' | 'service'>;
  readonly inflight: Gauge;
  readonly generation: Gauge;
  /** Ready endpoints of each Service that a route of the served table points at (0: that route answers 503). */
  readonly readyEndpoints: Gauge<'namespace' | 'service'>;
  /** Warning diagnostics in the served table by reason: objects or fields Warren rejected. */
  readonly routeWarnings: Gauge<'reason'>;
}

const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'CONNECT', 'TRACE']);

/** A method label from a fixed list (anything else is `OTHER`). */
export function methodLabel(method: string): string {
  return METHODS.has(method) ? method : 'OTHER';
}

/** `2xx`, `4xx`, … */
export function statusClass(status: number): string {
  return status >= 100 && status < 600 ? `${Math.floor(status / 100)}xx` : 'other';
}

/** Creates the metrics in `registry`, or returns the ones already there (several pipelines, one registry). */
export function createProxyMetrics(registry: Registry): ProxyMetrics {
  const existing = <T>(name: string): T | undefined => registry.getSingleMetric(name) as T | undefined;
  return {
    requests:
      existing('warren_requests_total') ??
      new Counter({
        name: 'warren_requests_total',
        help: 'Requests handled by the proxy pipeline',
        labelNames: ['namespace', 'ingress', 'service', 'host', 'status_class', 'method'] as const,
        registers: [registry],
      }),
    duration:
      existing('warren_request_duration_seconds') ??
      new Histogram({
        name: 'warren_request_duration_seconds',
        help: 'Time from request head to the end of the response; upgraded sessions are in warren_upgraded_session_duration_seconds instead',
        labelNames: ['namespace', 'ingress', 'service', 'status_class'] as const,
        buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 100],
        registers: [registry],
      }),
    upgradedSessions:
      existing('warren_upgraded_session_duration_seconds') ??
      new Histogram({
        name: 'warren_upgraded_session_duration_seconds',
        help: 'Length of upgraded (WebSocket) sessions, from the request head to the end of the session',
        labelNames: ['namespace', 'ingress', 'service'] as const,
        buckets: [0.1, 1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600],
        registers: [registry],
      }),
    retries:
      existing('warren_upstream_retries_total') ??
      new Counter({
        name: 'warren_upstream_retries_total',
        help: 'Requests repeated on another endpoint after a connect failure',
        labelNames: ['namespace', 'ingress', 'service'] as const,
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
    inflight:
      existing('warren_inflight_requests') ??
      new Gauge({ name: 'warren_inflight_requests', help: 'Exchanges in progress (upgraded sessions included)', registers: [registry] }),
    generation:
      existing('warren_proxy_generation') ??
      new Gauge({ name: 'warren_proxy_generation', help: 'Route-table generation the pipeline serves', registers: [registry] }),
    readyEndpoints:
      existing('warren_backend_ready_endpoints') ??
      new Gauge({
        name: 'warren_backend_ready_endpoints',
        help: 'Ready (not terminating) endpoints of each Service routed to by the served route table',
        labelNames: ['namespace', 'service'] as const,
        registers: [registry],
      }),
    routeWarnings:
      existing('warren_route_warnings') ??
      new Gauge({
        name: 'warren_route_warnings',
        help: 'Warning diagnostics (rejected objects, annotations or fields) in the served route table, by reason',
        labelNames: ['reason'] as const,
        registers: [registry],
      }),
  };
}

/**
 * Sets the table-health gauges from the table now served. Label sets of Services no longer routed to, and of
 * reasons no longer present, disappear with it.
 */
export function recordTableHealth(metrics: ProxyMetrics, table: RouteTable): void {
  const ready = new Map<string, { namespace: string; service: string; keys: Set<string> }>();
  for (const { backend } of table.routes) {
    const id = `${backend.namespace}/${backend.service}`;
    let entry = ready.get(id);
    if (!entry) ready.set(id, (entry = { namespace: backend.namespace, service: backend.service, keys: new Set() }));
    for (const endpoint of backend.endpoints) if (!endpoint.terminating) entry.keys.add(endpoint.key);
  }
  metrics.readyEndpoints.reset();
  for (const { namespace, service, keys } of ready.values()) metrics.readyEndpoints.set({ namespace, service }, keys.size);
  const warnings = new Map<string, number>();
  for (const d of table.diagnostics) if (d.type === 'Warning') warnings.set(d.reason, (warnings.get(d.reason) ?? 0) + 1);
  metrics.routeWarnings.reset();
  for (const [reason, count] of warnings) metrics.routeWarnings.set({ reason }, count);
}
