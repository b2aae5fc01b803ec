import { CloudflareApiError, ZoneDirectory, callCloudflare, planLimits, type Cloudflare, type UnenforcedFirewallGauge, type ZoneInfo } from '@warren/core';
import { routeOwnerKey, routeOwnerKind, routeOwnerRef, type EventSink, type IngressRef, type RouteTable } from '@warren/core/plugin';
import type { Logger } from 'pino';
import { desiredRules, packRules, refPrefix, type DesiredRule, type RuleClause } from './rules.js';
import type { FirewallConfig } from './config.js';

/** The phase whose zone entrypoint holds WAF custom rules. */
export const PHASE = 'http_request_firewall_custom';

interface OwnedRule {
  readonly id: string;
  readonly ref: string;
  readonly action: string;
  readonly expression: string;
  readonly description: string;
  readonly enabled: boolean;
}

interface ZoneRules {
  readonly loadedAt: number;
  rulesetId: string | undefined;
  owned: Map<string, OwnedRule>;
  /** Rules of the phase that are not this installation's: they count against the plan's limit too. */
  foreign: number;
}

/** What one sync changed, in rules. */
export interface FirewallSyncReport {
  created: number;
  updated: number;
  deleted: number;
  problems: number;
  /** Ingresses whose lists Cloudflare does not enforce (no free rule slot, or a rule refused), summed over zones. */
  unenforced: number;
}

export interface FirewallSyncOptions {
  readonly config: FirewallConfig;
  readonly client: () => Cloudflare;
  readonly logger: Logger;
  readonly events: EventSink;
  /** Where the number of unenforced Ingresses per zone is reported. */
  readonly unenforced?: UnenforcedFirewallGauge | undefined;
  readonly now?: () => number;
}

type RulesetLike = { id: string; rules?: Array<Record<string, unknown>> };

/**
 * Keeps the WAF custom rules generated from Ingress annotations in each zone's `http_request_firewall_custom`
 * entrypoint. Only rules whose `ref` starts with this installation's prefix are created, changed or deleted, each
 * through the single-rule endpoints, so rules written by people or other tools are never touched (not even
 * rewritten). The entrypoint is created with `POST /rulesets` when missing (which fails rather than overwrite a
 * concurrent one). Reads are cached (`resyncInterval`), so a sync with nothing to change makes no API call.
 *
 * Cloudflare limits the rules of the phase per plan (Free 5, Pro 20, Business 100, Enterprise 1,000), counting
 * rules people wrote. Rules are packed (see `desiredRules`); when they do not all fit and their Ingresses ask for
 * several actions, they are packed again with the strictest, `block` (a `FirewallActionTightened` Warning on the
 * Ingresses that asked for a challenge): refusing more is safer than enforcing nothing. When they still do not
 * all fit, allow-list rules get the free slots first and the Ingresses of the rest get a `FirewallRuleLimit` Warning and count in
 * `warren_firewall_unenforced_ingresses`: their lists are not enforced at the edge (the proxy's
 * `FirewallOriginGuard` still enforces them). Rules that did not fit or that
 * Cloudflare refused are tried again on every sync, and after every re-read of the zone (a slot freed by hand, a
 * plan upgrade).
 */
export class FirewallSync {
  readonly #o: FirewallSyncOptions;
  readonly #now: () => number;
  readonly #zones: ZoneDirectory;
  readonly #state = new Map<string, ZoneRules>();
  readonly #reported = new Map<string, string>();
  /** Refused rules per zone (ref → signature): not sent again until they change or the zone is read again. */
  readonly #refused = new Map<string, Map<string, string>>();
  /** Zone-level Warnings last given (ingress|reason|zone → message), cleared once the problem is gone. */
  readonly #zoneReported = new Map<string, string>();

  constructor(options: FirewallSyncOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#zones = new ZoneDirectory({ client: options.client, allow: options.config.zones, ttlMs: options.config.zoneCacheTtl, now: this.#now });
  }

  /**
   * Drops everything read from Cloudflare and every report made (another leader may have changed the rules and
   * reported meanwhile): the next sync lists zones and rules again and says again what still holds.
   */
  forgetRemoteState(): void {
    this.#zones.invalidate();
    this.#state.clear();
    this.#refused.clear();
    this.#reported.clear();
    this.#zoneReported.clear();
  }

  /**
   * `formerOwnerKeys`: keys this installation owned rules under before (tunnels replaced while `ownerId` is
   * unset); their rules count as ours, so they are replaced by rules under `ownerKey` instead of being left behind.
   */
  async sync(table: RouteTable, ownerKey: string, signal: AbortSignal, formerOwnerKeys: readonly string[] = []): Promise<FirewallSyncReport> {
    const zones = await this.#zones.zones(signal);
    const { rules, clauses, problems } = desiredRules(table, zones, ownerKey, this.#o.config.wildcardMatch);
    const report: FirewallSyncReport = { created: 0, updated: 0, deleted: 0, problems: problems.length, unenforced: 0 };
    const current = new Set<string>();
    for (const p of problems) {
      const key = `${p.ingress.uid}|${p.reason}`;
      current.add(key);
      if (this.#reported.get(key) === p.message) continue;
      this.#reported.set(key, p.message);
      this.#o.events.warning(routeOwnerRef(p.ingress), p.reason, p.message);
    }
    for (const key of this.#reported.keys()) if (!current.has(key)) this.#reported.delete(key);
    const prefixes = [ownerKey, ...formerOwnerKeys.filter((k) => k !== ownerKey)].map(refPrefix);
    let failure: unknown;
    for (const zone of zones) {
      const wanted = rules.filter((r) => r.zone.id === zone.id);
      try {
        const state = await this.#load(zone, prefixes, signal, wanted.length > 0);
        const zoneClauses = clauses.filter((c) => c.zone.id === zone.id);
        if (state) await this.#reconcile(zone, state, { wanted, clauses: zoneClauses, ownerKey }, prefixes, report, signal);
      } catch (err) {
        this.#state.delete(zone.id);
        if (!(err instanceof CloudflareApiError)) throw err;
        this.#o.logger.warn({ zone: zone.name, err: err.message }, 'firewall sync of a zone failed; it will be retried');
        failure ??= err;
      }
    }
    if (report.created + report.updated + report.deleted > 0) this.#o.logger.info(report, 'firewall rules synced');
    if (failure) throw failure;
    return report;
  }

  async #load(zone: ZoneInfo, prefixes: readonly string[], signal: AbortSignal, needed: boolean): Promise<ZoneRules | undefined> {
    const cached = this.#state.get(zone.id);
    const interval = this.#o.config.resyncInterval;
    if (cached && (interval === 0 || this.#now() - cached.loadedAt < interval)) return cached;
    const client = this.#o.client();
    let ruleset: RulesetLike | undefined;
    try {
      ruleset = (await callCloudflare(`read firewall rules of ${zone.name}`, () =>
        client.rulesets.phases.get(PHASE, { zone_id: zone.id }, { signal }),
      )) as unknown as RulesetLike;
    } catch (err) {
      if (err instanceof CloudflareApiError && err.httpStatus === 404) ruleset = undefined;
      else if (err instanceof CloudflareApiError && !err.retryable && !needed) {
        this.#o.logger.debug({ zone: zone.name, err: err.message }, 'cannot read firewall rules of a zone Warren has no rules for; skipping it');
        return undefined;
      } else throw err;
    }
    const state: ZoneRules = { loadedAt: this.#now(), rulesetId: undefined, owned: new Map(), foreign: 0 };
    this.#absorb(state, ruleset, prefixes);
    this.#state.set(zone.id, state);
    this.#refused.delete(zone.id); // fresh facts: refused rules get another chance
    return state;
  }

  #absorb(state: ZoneRules, ruleset: RulesetLike | undefined, prefixes: readonly string[]): void {
    state.rulesetId = ruleset?.id;
    state.owned = new Map();
    state.foreign = 0;
    for (const r of ruleset?.rules ?? []) {
      const ref = typeof r.ref === 'string' ? r.ref : '';
      if (!prefixes.some((p) => ref.startsWith(p))) {
        state.foreign++;
        continue;
      }
      state.owned.set(ref, {
        id: String(r.id),
        ref,
        action: String(r.action),
        expression: String(r.expression),
        description: String(r.description ?? ''),
        enabled: r.enabled !== false,
      });
    }
  }

  async #reconcile(
    zone: ZoneInfo,
    state: ZoneRules,
    desired: { readonly wanted: readonly DesiredRule[]; readonly clauses: readonly RuleClause[]; readonly ownerKey: string },
    prefixes: readonly string[],
    report: FirewallSyncReport,
    signal: AbortSignal,
  ): Promise<void> {
    const client = this.#o.client();
    const limit = planLimits(zone.plan).customRules;
    const notices = new Map<string, { ingress: IngressRef; reason: string; message: string }>();
    let wanted = desired.wanted;
    if (wanted.length > limit - state.foreign && new Set(wanted.map((r) => r.action)).size > 1) {
      const strict = packRules(desired.clauses, desired.ownerKey, 'block');
      if (strict.length < wanted.length) {
        for (const clause of desired.clauses) {
          if (clause.action === 'block') continue;
          const message =
            `zone ${zone.name} (${zone.plan ?? 'unknown, counted as free'} plan) has room for ${Math.max(0, limit - state.foreign)} of Warren's custom rules: ` +
            `the firewall lists of this ${routeOwnerKind(clause.ingress)} are enforced with action block instead of ${clause.action}, so that more lists fit`;
          notices.set(`${clause.ingress.uid}|tightened`, { ingress: clause.ingress, reason: 'FirewallActionTightened', message });
        }
        wanted = strict;
      }
    }
    const body = (r: DesiredRule) => ({ ref: r.ref, action: r.action as 'block', expression: r.expression, description: r.description, enabled: true });
    const wantedRefs = new Set(wanted.map((r) => r.ref));
    // Deletions first: they free slots for the rules still to be created.
    for (const [ref, have] of [...state.owned]) {
      if (wantedRefs.has(ref)) continue;
      const result = (await callCloudflare(`delete firewall rule in ${zone.name}`, () =>
        client.rulesets.rules.delete(have.id, { zone_id: zone.id, ruleset_id: state.rulesetId! }, { signal }),
      )) as RulesetLike;
      this.#absorb(state, result, prefixes);
      report.deleted++;
    }
    const refused = this.#refused.get(zone.id) ?? new Map<string, string>();
    this.#refused.set(zone.id, refused);
    const unenforced = new Map<string, { ingress: IngressRef; reason: string; message: string }>();
    const overflow: DesiredRule[] = [];
    // Messages name the object they are reported on by its kind ("this HTTPRoute").
    const rejected = (rule: DesiredRule, message: (kind: string) => string) => {
      refused.set(rule.ref, signatureOf(rule));
      for (const ingress of rule.ingresses) {
        unenforced.set(ingress.uid, { ingress, reason: 'FirewallRuleRejected', message: `${message(routeOwnerKind(ingress))}${this.#meanwhile()}` });
      }
    };
    for (const rule of wanted) {
      const have = state.owned.get(rule.ref);
      if (have && have.action === rule.action && have.expression === rule.expression && have.description === rule.description && have.enabled) continue;
      if (refused.get(rule.ref) === signatureOf(rule)) {
        rejected(
          rule,
          (kind) =>
            `Cloudflare refused the firewall rule for this ${kind} in zone ${zone.name}; its lists are not enforced at the edge (tried again when the zone is read again)`,
        );
        continue;
      }
      if (!have && state.foreign + state.owned.size >= limit) {
        overflow.push(rule);
        continue;
      }
      if (!state.rulesetId) {
        const problem = await this.#createEntrypoint(zone, state, prefixes, signal);
        if (problem) {
          rejected(rule, () => `Cloudflare refused to create the custom-rules entrypoint of zone ${zone.name}: ${problem}; the firewall lists are not enforced at the edge`);
          continue;
        }
      }
      try {
        const result = (await callCloudflare(`${have ? 'update' : 'create'} firewall rule in ${zone.name}`, () =>
          have
            ? client.rulesets.rules.edit(have.id, { zone_id: zone.id, ruleset_id: state.rulesetId!, ...body(rule) }, { signal })
            : client.rulesets.rules.create(state.rulesetId!, { zone_id: zone.id, ...body(rule) }, { signal }),
        )) as RulesetLike;
        this.#absorb(state, result, prefixes);
        if (have) report.updated++;
        else report.created++;
        refused.delete(rule.ref);
      } catch (err) {
        if (!(err instanceof CloudflareApiError) || err.retryable) throw err;
        // The rule to edit is gone (deleted by hand): the cached view of the zone is stale, so fail this zone's
        // sync; the retry reads the zone again and creates the rule.
        if (have && err.httpStatus === 404) throw err;
        rejected(rule, () => `Cloudflare refused the firewall rule ${rule.description} in zone ${zone.name}: ${err.message}; its lists are not enforced at the edge`);
      }
    }
    for (const rule of overflow) {
      const message = (kind: string) =>
        `zone ${zone.name} (${zone.plan ?? 'unknown, counted as free'} plan) allows ${limit} custom rules and ${state.foreign} of them are not Warren's: ` +
        `${overflow.length} of Warren's ${wanted.length} rules for the zone do not fit, so the firewall lists of this ${kind} are NOT enforced at the edge ` +
        '(free slots go to allow lists first; remove custom rules or upgrade the plan, and Warren installs them on its next sync)' +
        this.#meanwhile();
      for (const ingress of rule.ingresses) {
        if (!unenforced.has(ingress.uid)) unenforced.set(ingress.uid, { ingress, reason: 'FirewallRuleLimit', message: message(routeOwnerKind(ingress)) });
      }
    }
    this.#reportZone(zone, [...unenforced.values(), ...notices.values()]);
    report.unenforced += unenforced.size;
    this.#o.unenforced?.set(zone.name, unenforced.size);
  }

  /**
   * Creates the missing entrypoint with `POST /rulesets` (which fails rather than overwrite one created meanwhile:
   * then it is read instead). Returns why it could not be had when Cloudflare refused; throws what may pass.
   */
  async #createEntrypoint(zone: ZoneInfo, state: ZoneRules, prefixes: readonly string[], signal: AbortSignal): Promise<string | undefined> {
    const client = this.#o.client();
    try {
      const created = (await callCloudflare(`create the firewall entrypoint of ${zone.name}`, () =>
        client.rulesets.create({ zone_id: zone.id, kind: 'zone', phase: PHASE, name: 'default', description: 'zone custom firewall rules', rules: [] }, { signal }),
      )) as RulesetLike;
      this.#absorb(state, created, prefixes);
      return undefined;
    } catch (err) {
      if (!(err instanceof CloudflareApiError) || err.retryable) throw err;
      // A 400 may mean "one exists already" (created meanwhile) or anything else: only a successful read says which.
      try {
        const existing = (await callCloudflare(`read firewall rules of ${zone.name}`, () =>
          client.rulesets.phases.get(PHASE, { zone_id: zone.id }, { signal }),
        )) as unknown as RulesetLike;
        this.#absorb(state, existing, prefixes);
        return undefined;
      } catch (again) {
        if (!(again instanceof CloudflareApiError) || again.retryable) throw again;
        return err.message;
      }
    }
  }

  /** What enforces the lists of an Ingress whose rule the edge lacks, for its Warning. */
  #meanwhile(): string {
    return this.#o.config.originEnforcement === 'all'
      ? "; Warren's proxy refuses what they refuse meanwhile (403)"
      : "; Warren's proxy enforces them meanwhile unless the Ingress's action is a challenge (plugins.firewall.originEnforcement: block-only)";
  }

  /** Warnings for the zone's Ingresses, once per problem; a solved problem may be reported again later. */
  #reportZone(zone: ZoneInfo, problems: ReadonlyArray<{ ingress: IngressRef; reason: string; message: string }>): void {
    const current = new Set<string>();
    for (const { ingress, reason, message } of problems) {
      const key = `${ingress.uid}|${reason}|${zone.id}`;
      current.add(key);
      if (this.#zoneReported.get(key) === message) continue;
      this.#zoneReported.set(key, message);
      this.#o.events.warning(routeOwnerRef(ingress), reason, message);
      this.#o.logger.warn({ zone: zone.name, ingress: routeOwnerKey(ingress), reason }, 'firewall lists not enforced as asked at the edge');
    }
    for (const key of this.#zoneReported.keys()) if (key.endsWith(`|${zone.id}`) && !current.has(key)) this.#zoneReported.delete(key);
  }
}

function signatureOf(rule: DesiredRule): string {
  return `${rule.action}|${rule.expression}|${rule.description}`;
}
