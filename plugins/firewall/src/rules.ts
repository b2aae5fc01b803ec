import { ownershipDigest, type ZoneInfo, matchZone } from '@warren/core';
import { routeOwnerKey, routeOwnerText, type AnnotationSpec, type IngressRef, type Route, type RouteTable } from '@warren/core/plugin';
import type { ParsedList } from './lists.js';
import { ACTION, ALLOW_COUNTRIES, ALLOW_IPS, DENY_COUNTRIES, DENY_IPS } from './manifest.js';

/** The four kinds of generated rule, one per list annotation. */
export type RuleKind = 'allow-ips' | 'deny-ips' | 'allow-countries' | 'deny-countries';

const KINDS: ReadonlyArray<{ kind: RuleKind; annotation: AnnotationSpec<ParsedList>; condition: (set: string) => string }> = [
  { kind: 'deny-ips', annotation: DENY_IPS, condition: (set) => `ip.src in {${set}}` },
  { kind: 'deny-countries', annotation: DENY_COUNTRIES, condition: (set) => `ip.src.country in {${set}}` },
  { kind: 'allow-ips', annotation: ALLOW_IPS, condition: (set) => `not ip.src in {${set}}` },
  { kind: 'allow-countries', annotation: ALLOW_COUNTRIES, condition: (set) => `not ip.src.country in {${set}}` },
];

/** The Rules language's limit on one expression. */
export const MAX_EXPRESSION = 4096;

/** A WAF custom rule Warren wants in one zone's `http_request_firewall_custom` entrypoint. */
export interface DesiredRule {
  readonly zone: ZoneInfo;
  /** `warren-<owner tag>-<digest of zone, action and position>`: marks the rule as this installation's. */
  readonly ref: string;
  readonly description: string;
  readonly action: string;
  readonly expression: string;
  /** The Ingresses whose lists the rule carries. */
  readonly ingresses: readonly IngressRef[];
  /** It carries an allow list: such rules get the free slots first when the plan's limit leaves too few. */
  readonly allows: boolean;
}

/** The lists of one Ingress in one zone, as one `or`-able condition under its host condition. */
export interface RuleClause {
  readonly zone: ZoneInfo;
  readonly action: string;
  readonly ingress: IngressRef;
  readonly name: string;
  readonly allows: boolean;
  readonly expression: string;
}

/** Most characters of a rule description. */
const MAX_DESCRIPTION = 500;

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
    const deeper = tableHosts
      .filter((h) => h.startsWith('*.') && h !== wildcard && h.endsWith(suffix))
      .map((h) => h.slice(1))
      .sort();
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
 * Rules for every owned Ingress that carries list annotations, packed to use as few of the zone's custom-rule slots
 * as Cloudflare's plan limits allow (5 on Free, counting everyone's rules): each Ingress gets one clause per zone,
 * `(<its hosts>) and (<list 1> or <list 2> …)`, and the clauses of one zone and action are joined with `or` into
 * rules of at most 4,096 characters. A clause too long on its own is split into one clause per list; a single
 * list still too long is reported and skipped. Allow-list clauses are packed first. Invalid list entries are
 * skipped (and reported); a list with no valid entry and a host in no zone are reported, never fatal.
 */
export function desiredRules(
  table: RouteTable,
  zones: readonly ZoneInfo[],
  ownerKey: string,
  mode: 'suffix' | 'regex',
): { rules: DesiredRule[]; clauses: RuleClause[]; problems: RuleProblem[] } {
  const clauses: RuleClause[] = [];
  const problems: RuleProblem[] = [];
  const byIngress = new Map<string, { ref: IngressRef; hosts: Set<string>; hostless: boolean; route: Route }>();
  // Every object of the table counts here, HTTPRoutes and GRPCRoutes too (their `warren.dev/` annotations are
  // lists as an Ingress's are), keyed by uid: an HTTPRoute never shares an entry with the Ingress of its name.
  const routedBy = new Map<string, Map<string, IngressRef>>();
  for (const route of table.routes) {
    const key = route.ingress.uid;
    let entry = byIngress.get(key);
    if (!entry) byIngress.set(key, (entry = { ref: route.ingress, hosts: new Set(), hostless: false, route }));
    if (route.host) {
      entry.hosts.add(route.host.toLowerCase());
      const owners = routedBy.get(route.host.toLowerCase()) ?? new Map<string, IngressRef>();
      owners.set(key, route.ingress);
      routedBy.set(route.host.toLowerCase(), owners);
    } else entry.hostless = true;
  }
  for (const { ref, hosts, hostless, route } of byIngress.values()) {
    const lists = KINDS.map((k) => ({ ...k, key: k.annotation.key, list: k.annotation.get(route) })).filter((k) => k.list);
    if (!lists.length) continue;
    // `namespace/name` for an Ingress (as its rules always said), `HTTPRoute:namespace/name` for the others.
    const name = routeOwnerKey(ref);
    const action = ACTION.get(route) ?? 'block';
    for (const { key, list } of lists) {
      if (list!.invalid.length) {
        problems.push({
          ingress: ref,
          reason: 'FirewallInvalidEntry',
          message: `annotation warren.dev/${key}: skipped ${list!.invalid.map((i) => `"${i.entry}" (${i.reason})`).join(', ')}; the other entries apply`,
        });
      }
    }
    if (hostless)
      problems.push({ ingress: ref, reason: 'FirewallHostless', message: `firewall rules cover only the named hosts of ${name}; its rules without a host are not protected` });
    const shared = [...hosts].filter((h) => (routedBy.get(h)?.size ?? 0) > 1);
    if (shared.length) {
      const others = new Map<string, string>();
      for (const h of shared) for (const [uid, owner] of routedBy.get(h)!) if (uid !== ref.uid) others.set(uid, routeOwnerText(owner));
      problems.push({
        ingress: ref,
        reason: 'FirewallSharedHost',
        message: `hosts ${shared.join(', ')} are also routed by ${namesOf([...others.values()].sort())}; firewall rules apply to the whole host, their traffic included`,
      });
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
    const usable = lists.filter(({ key, list }) => {
      if (list!.entries.length) return true;
      problems.push({ ingress: ref, reason: 'FirewallRuleSkipped', message: `annotation warren.dev/${key} has no valid entry; its rule is skipped` });
      return false;
    });
    if (!usable.length) continue;
    const conditions = usable.map(({ kind, list, condition }) => ({
      kind,
      condition: condition(kind.endsWith('countries') ? list!.entries.map(quote).join(' ') : list!.entries.join(' ')),
    }));
    for (const { zone, hosts: zoneHosts } of perZone.values()) {
      const hostMatch = hostCondition(zoneHosts, table.hosts, mode);
      const clause = (parts: typeof conditions): RuleClause => ({
        zone,
        action,
        ingress: ref,
        name,
        allows: parts.some((p) => p.kind.startsWith('allow')),
        expression: parts.length === 1 ? `${hostMatch} and ${parts[0]!.condition}` : `${hostMatch} and (${parts.map((p) => p.condition).join(' or ')})`,
      });
      const whole = clause(conditions);
      if (whole.expression.length <= MAX_EXPRESSION) {
        clauses.push(whole);
        continue;
      }
      for (const part of conditions) {
        const single = clause([part]);
        if (single.expression.length <= MAX_EXPRESSION) {
          clauses.push(single);
          continue;
        }
        problems.push({
          ingress: ref,
          reason: 'FirewallRuleTooLong',
          message: `the ${part.kind} rule for ${name} in zone ${zone.name} would be ${single.expression.length} characters (limit ${MAX_EXPRESSION}); it is skipped`,
        });
      }
    }
  }
  return { rules: packRules(clauses, ownerKey), clauses, problems };
}

/**
 * Joins the clauses of each zone and action with `or` into as few rules as fit in {@link MAX_EXPRESSION}, allow
 * lists first, then by Ingress name. Refs come from zone, action and position, so an unchanged set keeps its refs.
 * With `action`, every clause gets that action: one group per zone, so fewer rules.
 */
export function packRules(clauses: readonly RuleClause[], ownerKey: string, action?: string): DesiredRule[] {
  const groups = new Map<string, RuleClause[]>();
  for (const original of clauses) {
    const clause = action ? { ...original, action } : original;
    const key = `${clause.zone.id}|${clause.action}`;
    groups.set(key, [...(groups.get(key) ?? []), clause]);
  }
  const prefix = refPrefix(ownerKey);
  const rules: DesiredRule[] = [];
  for (const group of groups.values()) {
    group.sort((a, b) => Number(b.allows) - Number(a.allows) || a.name.localeCompare(b.name) || a.expression.localeCompare(b.expression));
    const joined = (parts: readonly RuleClause[]) => (parts.length === 1 ? parts[0]!.expression : parts.map((c) => `(${c.expression})`).join(' or '));
    const chunks: RuleClause[][] = [];
    for (const clause of group) {
      const last = chunks.at(-1);
      if (last && joined([...last, clause]).length <= MAX_EXPRESSION) last.push(clause);
      else chunks.push([clause]);
    }
    chunks.forEach((chunk, index) => {
      const { zone, action } = chunk[0]!;
      const names = [...new Set(chunk.map((c) => c.name))];
      const description = `Warren ${action} ${index + 1}: ${names.join(', ')}`;
      rules.push({
        zone,
        ref: `${prefix}${ownershipDigest(ownerKey, `${zone.id}/${action}/${index}`, 16)}`,
        description: description.length > MAX_DESCRIPTION ? `${description.slice(0, MAX_DESCRIPTION - 1)}…` : description,
        action,
        expression: joined(chunk),
        ingresses: [...new Map(chunk.map((c) => [c.ingress.uid, c.ingress])).values()],
        allows: chunk.some((c) => c.allows),
      });
    });
  }
  return rules.sort((a, b) => Number(b.allows) - Number(a.allows));
}

/** At most three names, then how many more: a message stays short whatever shares the host. */
function namesOf(names: readonly string[]): string {
  return names.length <= 3 ? names.join(', ') : `${names.slice(0, 3).join(', ')} and ${names.length - 3} more`;
}
