import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/**
 * Per-request metrics of the proxy pipeline (prom-client, `warren_` prefix). Label sets are bounded: the
 * route's namespace, Ingress, Service and configured host (never the request's Host or path), the status
 * class and a method from a fixed list. Requests that match no route carry empty route labels.
 */
export interface ProxyMetrics {
  readonly requests: Counter<'namespace' | 'ingress' | 'service' | 'host' | 'status_class' | 'method'>;
  readonly duration: Histogram<'namespace' | 'ingress' | 'service' | 'status_class'>;
  readonly retries: Counter<'namespace' | 'ingress' | 'service'>;
  readonly ejections: Counter<'namespace' | 'service'>;
  readonly inflight: Gauge;
  readonly generation: Gauge;
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
        help: 'Time from request head to the end of the response (upgraded sessions: to the 101)',
        labelNames: ['namespace', 'ingress', 'service', 'status_class'] as const,
        buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 100],
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
  };
}
