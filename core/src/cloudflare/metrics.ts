import { Counter, Gauge, type Registry } from 'prom-client';

/** Per zone, how many Ingresses have firewall lists that Cloudflare's edge does not enforce. */
export interface UnenforcedFirewallGauge {
  set(zone: string, ingresses: number): void;
}

/**
 * `warren_firewall_unenforced_ingresses{zone}` in `registry` (created once per registry), so the firewall plugin
 * can report without a metrics library of its own. Alert on any value above 0: those Ingresses are open to
 * requests their lists should refuse.
 */
export function unenforcedFirewallGauge(registry: Registry): UnenforcedFirewallGauge {
  const name = 'warren_firewall_unenforced_ingresses';
  const gauge =
    (registry.getSingleMetric(name) as Gauge<'zone'> | undefined) ??
    new Gauge({
      name,
      help: "Ingresses whose firewall lists are not enforced at the edge (custom-rule limit of the plan, or a rule Cloudflare refused; Warren's proxy still enforces them), by zone",
      labelNames: ['zone'],
      registers: [registry],
    });
  return { set: (zone, ingresses) => gauge.set({ zone }, ingresses) };
}

/** Why Warren's proxy refused a request by an Ingress's firewall lists. */
export type OriginRefusalReason = 'deny-ips' | 'allow-ips' | 'deny-countries' | 'allow-countries' | 'no-client-address' | 'not-from-edge';

/** Counts refusals of one Ingress for one reason; bound once per route so that a refusal costs one increment. */
export type OriginRefusalCounter = (labels: {
  readonly namespace: string;
  /** `Ingress`, `HTTPRoute` or `GRPCRoute`: the kind of the object named by `ingress`. */
  readonly kind: string;
  readonly ingress: string;
  readonly reason: OriginRefusalReason;
}) => { inc(): void };

/**
 * `warren_firewall_origin_refusals_total{namespace,kind,ingress,reason}` in `registry` (created once per registry):
 * requests Warren's proxy refused with 403 by the firewall lists of an Ingress, HTTPRoute or GRPCRoute (`kind`;
 * `ingress` is the object's name). Labels are bounded by the configuration.
 */
export function originRefusalCounter(registry: Registry): OriginRefusalCounter {
  const name = 'warren_firewall_origin_refusals_total';
  const counter =
    (registry.getSingleMetric(name) as Counter<'namespace' | 'kind' | 'ingress' | 'reason'> | undefined) ??
    new Counter({
      name,
      help: 'Requests Warren refused (403) by the firewall lists of their Ingress (or HTTPRoute, GRPCRoute), by object and reason',
      labelNames: ['namespace', 'kind', 'ingress', 'reason'],
      registers: [registry],
    });
  return (labels) => counter.labels(labels);
}
