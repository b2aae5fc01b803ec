import { Counter, Gauge, type Registry } from 'prom-client';

/**
 * Connector metrics, named after cloudflared's `cloudflared_tunnel_*` series with Warren's prefix, so
 * dashboards for one translate to the other. Registered on an injected prom-client Registry; creating
 * `TunnelMetrics` twice on one registry reuses the existing series.
 */
export class TunnelMetrics {
  /** Registered connections to the edge (cloudflared_tunnel_ha_connections). */
  readonly haConnections: Gauge;
  /** Requests proxied through the tunnel (cloudflared_tunnel_total_requests). */
  readonly totalRequests: Counter;
  /** Requests that ended in a connector-generated error or a reset (cloudflared_tunnel_request_errors). */
  readonly requestErrors: Counter;
  /** Requests in flight (cloudflared_tunnel_concurrent_requests_per_tunnel). */
  readonly concurrentRequests: Gauge;
  /** Responses by status code (cloudflared_tunnel_response_by_code). */
  readonly responseByCode: Counter<'status_code'>;
  /** Successful registrations (cloudflared_tunnel_tunnel_register_success). */
  readonly registerSuccess: Counter;
  /** Failed registrations by coarse reason (cloudflared_tunnel_tunnel_register_fail). */
  readonly registerFail: Counter<'error'>;
  /** Backoff waits before reconnecting a slot (cloudflared_tunnel_timer_retries). */
  readonly timerRetries: Counter;

  constructor(registry: Registry) {
    const gauge = (name: string, help: string): Gauge =>
      (registry.getSingleMetric(name) as Gauge | undefined) ?? new Gauge({ name, help, registers: [registry] });
    const counter = <L extends string>(name: string, help: string, labelNames: L[] = []): Counter<L> =>
      (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter<L>({ name, help, labelNames, registers: [registry] });
    this.haConnections = gauge('warren_tunnel_ha_connections', 'Number of active (registered) connections to the Cloudflare edge');
    this.totalRequests = counter('warren_tunnel_total_requests', 'Requests received from the edge');
    this.requestErrors = counter('warren_tunnel_request_errors', 'Requests that ended with a connector-generated error or a stream reset');
    this.concurrentRequests = gauge('warren_tunnel_concurrent_requests_per_tunnel', 'Requests currently being served through the tunnel');
    this.responseByCode = counter('warren_tunnel_response_by_code', 'Responses sent to the edge, by HTTP status code', ['status_code']);
    this.registerSuccess = counter('warren_tunnel_register_success', 'Successful registrations of edge connections');
    this.registerFail = counter('warren_tunnel_register_fail', 'Failed attempts to establish or register an edge connection, by reason', ['error']);
    this.timerRetries = counter('warren_tunnel_timer_retries', 'Backoff waits before reconnecting an edge connection slot');
  }
}
