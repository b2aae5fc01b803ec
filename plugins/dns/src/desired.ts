import { routeOwnerKey, type IngressRef, type RouteTable } from '@warren/core/plugin';
import { DNS_MANAGED } from './manifest.js';
import { isPublishableHost } from './names.js';

/**
 * The objects that route one host (Ingresses, HTTPRoutes, GRPCRoutes), and whether any of them wants its DNS
 * managed. Gateway API routes carry no annotations, so they always do.
 */
export interface HostClaim {
  readonly host: string;
  readonly owners: readonly IngressRef[];
  /** False when every object of the host opted out (`warren.dev/dns-managed: "false"` on Ingresses): hand the name off. */
  readonly managed: boolean;
  /**
   * The Gateway (`namespace/name`) whose own tunnel the name points at, or undefined for the main tunnel. A name
   * routed through several tunnels (an Ingress and a Gateway, or two Gateways, each with its own tunnel) points at
   * one: the main tunnel when an Ingress routes it, else the tunnel of the oldest route's Gateway.
   */
  readonly gateway: string | undefined;
}

/**
 * Hosts of the table, grouped with the objects that route them; objects whose {@link routeOwnerKey} is in
 * `excluded` (Ingresses being deleted) do not count. Hosts that cannot be published next to an ownership record
 * with `prefix` are returned as `invalid`.
 */
export function hostClaims(table: RouteTable, excluded: ReadonlySet<string>, prefix: string): { claims: Map<string, HostClaim>; invalid: Map<string, IngressRef[]> } {
  const byHost = new Map<string, { owners: Map<string, IngressRef>; managed: boolean; main: boolean; gateway: { key: string; by: IngressRef } | undefined }>();
  const invalid = new Map<string, IngressRef[]>();
  for (const route of table.routes) {
    if (!route.host || excluded.has(routeOwnerKey(route.ingress))) continue;
    const host = route.host.toLowerCase();
    if (!isPublishableHost(host, prefix)) {
      const list = invalid.get(host) ?? [];
      if (!list.some((r) => r.uid === route.ingress.uid)) list.push(route.ingress);
      invalid.set(host, list);
      continue;
    }
    let entry = byHost.get(host);
    if (!entry) byHost.set(host, (entry = { owners: new Map(), managed: false, main: false, gateway: undefined }));
    entry.owners.set(route.ingress.uid, route.ingress);
    if (route.gateway === undefined) entry.main = true;
    else if (!entry.gateway || precedes(route.ingress, route.gateway, entry.gateway.by, entry.gateway.key)) entry.gateway = { key: route.gateway, by: route.ingress };
    if (DNS_MANAGED.get(route) !== false) entry.managed = true;
  }
  const claims = new Map<string, HostClaim>();
  for (const [host, entry] of byHost) {
    claims.set(host, { host, owners: [...entry.owners.values()], managed: entry.managed, gateway: entry.main ? undefined : entry.gateway?.key });
  }
  return { claims, invalid };
}

/** Older object first (creation time as RFC 3339 text compares in time order), then the Gateway key. */
function precedes(a: IngressRef, aGateway: string, b: IngressRef, bGateway: string): boolean {
  const at = a.creationTimestamp || '\uffff';
  const bt = b.creationTimestamp || '\uffff';
  if (at !== bt) return at < bt;
  return aGateway < bGateway;
}
