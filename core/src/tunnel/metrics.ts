import { Counter, Gauge, type Registry } from 'prom-client';

/** `rpcName` of every registration, as cloudflared labels its registration counters. */
const REGISTER_RPC = 'registerConnection';

/**
 * Connector metrics under cloudflared's own names and labels (`cloudflared_tunnel_*`), so dashboards and
 * alerts written for cloudflared work unchanged. Where Warren counts something cloudflared does not, the
 * series carries Warren's prefix instead. Registered on an injected prom-client Registry; creating
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
  /** Successful registrations (cloudflared_tunnel_tunnel_register_success{rpcName}). */
  readonly registerSuccess: { inc(): void };
  /** Failed registrations by coarse reason (cloudflared_tunnel_tunnel_register_fail{error,rpcName}). */
  readonly registerFail: { inc(labels: { error: string }): void };
  /** Backoff waits before reconnecting a slot (Warren's own: warren_tunnel_reconnect_backoffs_total). */
  readonly timerRetries: Counter;

  constructor(registry: Registry) {
    const gauge = (name: string, help: string): Gauge => (registry.getSingleMetric(name) as Gauge | undefined) ?? new Gauge({ name, help, registers: [registry] });
    const counter = <L extends string>(name: string, help: string, labelNames: L[] = []): Counter<L> =>
      (registry.getSingleMetric(name) as Counter<L> | undefined) ?? new Counter<L>({ name, help, labelNames, registers: [registry] });
    this.haConnections = gauge('cloudflared_tunnel_ha_connections', 'Number of active (registered) connections to the Cloudflare edge');
    this.totalRequests = counter('cloudflared_tunnel_total_requests', 'Requests received from the edge');
    this.requestErrors = counter('cloudflared_tunnel_request_errors', 'Requests that ended with a connector-generated error or a stream reset');
    this.concurrentRequests = gauge('cloudflared_tunnel_concurrent_requests_per_tunnel', 'Requests currently being served through the tunnel');
    this.responseByCode = counter('cloudflared_tunnel_response_by_code', 'Responses sent to the edge, by HTTP status code', ['status_code']);
    const success = counter('cloudflared_tunnel_tunnel_register_success', 'Successful registrations of edge connections', ['rpcName']);
    const registered = success.labels({ rpcName: REGISTER_RPC });
    this.registerSuccess = { inc: () => registered.inc() };
    const fail = counter('cloudflared_tunnel_tunnel_register_fail', 'Failed attempts to establish or register an edge connection, by reason', ['error', 'rpcName']);
    this.registerFail = { inc: ({ error }) => fail.inc({ error, rpcName: REGISTER_RPC }) };
    this.timerRetries = counter('warren_tunnel_reconnect_backoffs_total', 'Backoff waits before reconnecting an edge connection slot');
  }
}
