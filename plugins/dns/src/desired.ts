import type { IngressRef, RouteTable } from '@warren/core/plugin';
import { DNS_MANAGED } from './manifest.js';
import { isPublishableHost } from './names.js';

/** The Ingresses that route one host, and whether any of them wants its DNS managed. */
export interface HostClaim {
  readonly host: string;
  readonly ingresses: readonly IngressRef[];
  /** False when every Ingress of the host opted out (`warren.dev/dns-managed: "false"`): hand the name off. */
  readonly managed: boolean;
}

export const ingressKey = (ref: { namespace: string; name: string }) => `${ref.namespace}/${ref.name}`;

/**
 * Hosts of the table, grouped with their Ingresses; Ingresses in `excluded` (being deleted) do not count. Hosts
 * that cannot be published next to an ownership record with `prefix` are returned as `invalid`.
 */
export function hostClaims(table: RouteTable, excluded: ReadonlySet<string>, prefix: string): { claims: Map<string, HostClaim>; invalid: Map<string, IngressRef[]> } {
  const byHost = new Map<string, { ingresses: Map<string, IngressRef>; managed: boolean }>();
  const invalid = new Map<string, IngressRef[]>();
  for (const route of table.routes) {
    if (!route.host || excluded.has(ingressKey(route.ingress))) continue;
    const host = route.host.toLowerCase();
    if (!isPublishableHost(host, prefix)) {
      const list = invalid.get(host) ?? [];
      if (!list.some((r) => r.uid === route.ingress.uid)) list.push(route.ingress);
      invalid.set(host, list);
      continue;
    }
    let entry = byHost.get(host);
    if (!entry) byHost.set(host, (entry = { ingresses: new Map(), managed: false }));
    entry.ingresses.set(route.ingress.uid, route.ingress);
    if (DNS_MANAGED.get(route) !== false) entry.managed = true;
  }
  const claims = new Map<string, HostClaim>();
  for (const [host, entry] of byHost) claims.set(host, { host, ingresses: [...entry.ingresses.values()], managed: entry.managed });
  return { claims, invalid };
}
