import { ownershipDigest, type ZoneInfo, matchZone } from '@warren/core';
import type { IngressRef, RouteTable } from '@warren/core/plugin';
import type { ParsedList } from './lists.js';

/** Annotation keys (without prefix) the firewall plugin owns. */
export const ANNOTATIONS = {
  allowIps: 'firewall-allow-ips',
  denyIps: 'firewall-deny-ips',
  allowCountries: 'firewall-allow-countries',
  denyCountries: 'firewall-deny-countries',
  action: 'firewall-action',
} as const;

/** The four kinds of generated rule, one per list annotation. */
export type RuleKind = 'allow-ips' | 'deny-ips' | 'allow-countries' | 'deny-countries';

const KINDS: ReadonlyArray<{ kind: RuleKind; key: string; condition: (set: string) => string }> = [
  { kind: 'deny-ips', key: ANNOTATIONS.denyIps, condition: (set) => `ip.src in {${set}}` },
  { kind: 'deny-countries', key: ANNOTATIONS.denyCountries, condition: (set) => `ip.src.country in {${set}}` },
  { kind: 'allow-ips', key: ANNOTATIONS.allowIps, condition: (set) => `not ip.src in {${set}}` },
  { kind: 'allow-countries', key: ANNOTATIONS.allowCountries, condition: (set) => `not ip.src.country in {${set}}` },
];

/** The Rules language's limit on one expression. */
export const MAX_EXPRESSION = 4096;

/** A WAF custom rule Warren wants in one zone's `http_request_firewall_custom` entrypoint. */
export interface DesiredRule {
  readonly zone: ZoneInfo;
  /** `warren-<owner tag>-<digest>`: marks the rule as this installation's and keeps it stable across syncs. */
  readonly ref: string;
  readonly description: string;
  readonly action: string;
  readonly expression: string;
  readonly ingress: IngressRef;
}

/** A problem to report as a Warning Event on an Ingress. */
export interface RuleProblem {
  readonly ingress: IngressRef;
  readonly reason: string;
  readonly message: string;
}

/** Prefix of every rule ref this installation owns. */
export function refPrefix(ownerKey: string): string {
  return `warren-${ownershipDigest(ownerKey, 'firewall', 12)}-`;
}

const quote = (s: string) => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
const host = 'lower(http.host)';

/**
 * The host condition for `hosts` (one Ingress, one zone), given every host of the table.
 *
 *  - exact hosts: `lower(http.host) in {"a.example.com" "b.example.com"}`
 *  - a wildcard `*.apps.example.com`, mode `suffix`: `(ends_with(lower(http.host), ".apps.example.com") and not
 *    lower(http.host) in {<exact hosts of the table under that suffix>} and not ends_with(lower(http.host),
 *    ".x.apps.example.com") …)`: exact hosts and deeper wildcards routed elsewhere are excluded, so the rule never
 *    applies to a name another route serves. Deeper names that no route serves are covered too (they get 404).
 *  - a wildcard, mode `regex`: `(lower(http.host) matches r"^[^.]+\.apps\.example\.com$" and not lower(http.host) in
 *    {…})`: exactly one label, like Ingress matching (Business and Enterprise plans).
 */
export function hostCondition(hosts: readonly string[], tableHosts: readonly string[], mode: 'suffix' | 'regex'): string {
  const exact = hosts.filter((h) => !h.startsWith('*.')).sort();
  const parts: string[] = [];
  if (exact.length) parts.push(`${host} in {${exact.map(quote).join(' ')}}`);
  for (const wildcard of hosts.filter((h) => h.startsWith('*.')).sort()) {
    const suffix = wildcard.slice(1);
    const routedElsewhere = tableHosts.filter((h) => !h.startsWith('*.') && h.endsWith(suffix)).sort();
    const deeper = tableHosts.filter((h) => h.startsWith('*.') && h !== wildcard && h.endsWith(suffix)).map((h) => h.slice(1)).sort();
    const terms =
      mode === 'regex'
        ? [`${host} matches r"^[^.]+${suffix.replace(/\./g, '\\.')}$"`]
        : [`ends_with(${host}, ${quote(suffix)})`, ...deeper.map((d) => `not ends_with(${host}, ${quote(d)})`)];
    if (routedElsewhere.length) terms.push(`not ${host} in {${routedElsewhere.map(quote).join(' ')}}`);
    parts.push(terms.join(' and '));
  }
  const wrap = (part: string) => (part.includes(' and ') ? `(${part})` : part);
  return parts.length === 1 ? `(${parts[0]})` : `(${parts.map(wrap).join(' or ')})`;
}

/**
 * Rules for every owned Ingress that carries list annotations: one rule per list kind and zone, scoped to exactly
 * that Ingress's hosts in that zone. Invalid list entries are skipped (and reported); a list with no valid entry,
 * a host in no zone and an expression over the size limit are reported and skipped, never fatal.
 */
export function desiredRules(
  table: RouteTable,
  zones: readonly ZoneInfo[],
  ownerKey: string,
  mode: 'suffix' | 'regex',
): { rules: DesiredRule[]; problems: RuleProblem[] } {
  const rules: DesiredRule[] = [];
  const problems: RuleProblem[] = [];
  const byIngress = new Map<string, { ref: IngressRef; hosts: Set<string>; hostless: boolean; annotations: Readonly<Record<string, unknown>> }>();
  const routedBy = new Map<string, Set<string>>();
  for (const route of table.routes) {
    const key = route.ingress.uid;
    let entry = byIngress.get(key);
    if (!entry) byIngress.set(key, (entry = { ref: route.ingress, hosts: new Set(), hostless: false, annotations: route.annotations }));
    if (route.host) {
      entry.hosts.add(route.host.toLowerCase());
      const set = routedBy.get(route.host.toLowerCase()) ?? new Set<string>();
      set.add(key);
      routedBy.set(route.host.toLowerCase(), set);
    } else entry.hostless = true;
  }
  const prefix = refPrefix(ownerKey);
  for (const { ref, hosts, hostless, annotations } of byIngress.values()) {
    const lists = KINDS.map((k) => ({ ...k, list: annotations[k.key] as ParsedList | undefined })).filter((k) => k.list);
    if (!lists.length) continue;
    const name = `${ref.namespace}/${ref.name}`;
    const action = typeof annotations[ANNOTATIONS.action] === 'string' ? (annotations[ANNOTATIONS.action] as string) : 'block';
    for (const { key, list } of lists) {
      if (list!.invalid.length) {
        problems.push({
          ingress: ref,
          reason: 'FirewallInvalidEntry',
          message: `annotation warren.dev/${key}: skipped ${list!.invalid.map((i) => `"${i.entry}" (${i.reason})`).join(', ')}; the other entries apply`,
        });
      }
    }
    if (hostless) problems.push({ ingress: ref, reason: 'FirewallHostless', message: `firewall rules cover only the named hosts of ${name}; its rules without a host are not protected` });
    const shared = [...hosts].filter((h) => (routedBy.get(h)?.size ?? 0) > 1);
    if (shared.length) {
      problems.push({ ingress: ref, reason: 'FirewallSharedHost', message: `hosts ${shared.join(', ')} are also routed by other Ingresses; firewall rules apply to the whole host` });
    }
    const perZone = new Map<string, { zone: ZoneInfo; hosts: string[] }>();
    for (const h of hosts) {
      const zone = matchZone(h, zones);
      if (!zone) {
        problems.push({ ingress: ref, reason: 'FirewallNoZone', message: `host ${h} is in no Cloudflare zone the API token can see; no firewall rule protects it` });
        continue;
      }
      const slot = perZone.get(zone.id) ?? { zone, hosts: [] };
      slot.hosts.push(h);
      perZone.set(zone.id, slot);
    }
    for (const { zone, hosts: zoneHosts } of perZone.values()) {
      const hostMatch = hostCondition(zoneHosts, table.hosts, mode);
      for (const { kind, key, list, condition } of lists) {
        const set = kind.endsWith('countries') ? list!.entries.map(quote).join(' ') : list!.entries.join(' ');
        if (!list!.entries.length) {
          problems.push({ ingress: ref, reason: 'FirewallRuleSkipped', message: `annotation warren.dev/${key} has no valid entry; its rule is skipped` });
          continue;
        }
        const expression = `${hostMatch} and ${condition(set)}`;
        if (expression.length > MAX_EXPRESSION) {
          problems.push({
            ingress: ref,
            reason: 'FirewallRuleTooLong',
            message: `the ${kind} rule for ${name} in zone ${zone.name} would be ${expression.length} characters (limit ${MAX_EXPRESSION}); it is skipped`,
          });
          continue;
        }
        rules.push({
          zone,
          ref: `${prefix}${ownershipDigest(ownerKey, `${name}/${kind}`, 16)}`,
          description: `Warren ${name}: ${kind}`,
          action,
          expression,
          ingress: ref,
        });
      }
    }
  }
  return { rules, problems };
}
