import { Gauge, type Registry } from 'prom-client';

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
      help: 'Ingresses whose firewall lists are not enforced at the edge (custom-rule limit of the plan, or a rule Cloudflare refused), by zone',
      labelNames: ['zone'],
      registers: [registry],
    });
  return { set: (zone, ingresses) => gauge.set({ zone }, ingresses) };
}
