import { CloudflareApiError, ZoneDirectory, callCloudflare, type Cloudflare, type ZoneInfo } from '@warren/core';
import type { EventSink, RouteTable } from '@warren/core/plugin';
import type { Logger } from 'pino';
import { desiredRules, refPrefix, type DesiredRule } from './rules.js';
import type { FirewallSettings } from './settings.js';

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
}

/** What one sync changed, in rules. */
export interface FirewallSyncReport {
  created: number;
  updated: number;
  deleted: number;
  problems: number;
}

export interface FirewallSyncOptions {
  readonly settings: FirewallSettings;
  readonly client: () => Cloudflare;
  readonly logger: Logger;
  readonly events: EventSink;
  readonly now?: () => number;
}

type RulesetLike = { id: string; rules?: Array<Record<string, unknown>> };

/**
 * Keeps the WAF custom rules generated from Ingress annotations in each zone's `http_request_firewall_custom`
 * entrypoint. Only rules whose `ref` starts with this installation's prefix are created, changed or deleted, each
 * through the single-rule endpoints, so rules written by people or other tools are never touched (not even
 * rewritten). The entrypoint is created with `POST /rulesets` when missing (which fails rather than overwrite a
 * concurrent one). Reads are cached (`resyncInterval`), so a sync with nothing to change makes no API call.
 */
export class FirewallSync {
  readonly #o: FirewallSyncOptions;
  readonly #now: () => number;
  readonly #zones: ZoneDirectory;
  readonly #state = new Map<string, ZoneRules>();
  readonly #reported = new Map<string, string>();
  readonly #refused = new Map<string, string>();

  constructor(options: FirewallSyncOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#zones = new ZoneDirectory({ client: options.client, allow: options.settings.zones, ttlMs: options.settings.zoneCacheTtl, now: this.#now });
  }

  /**
   * `formerOwnerKeys`: keys this installation owned rules under before (tunnels replaced while `ownerId` is
   * unset); their rules count as ours, so they are replaced by rules under `ownerKey` instead of being left behind.
   */
  async sync(table: RouteTable, ownerKey: string, signal: AbortSignal, formerOwnerKeys: readonly string[] = []): Promise<FirewallSyncReport> {
    const zones = await this.#zones.zones(signal);
    const { rules, problems } = desiredRules(table, zones, ownerKey, this.#o.settings.wildcardMatch);
    const report: FirewallSyncReport = { created: 0, updated: 0, deleted: 0, problems: problems.length };
    const current = new Set<string>();
    for (const p of problems) {
      const key = `${p.ingress.uid}|${p.reason}`;
      current.add(key);
      if (this.#reported.get(key) === p.message) continue;
      this.#reported.set(key, p.message);
      this.#o.events.warning({ kind: 'Ingress', namespace: p.ingress.namespace, name: p.ingress.name, uid: p.ingress.uid }, p.reason, p.message);
    }
    for (const key of this.#reported.keys()) if (!current.has(key) && !key.endsWith('|FirewallRuleRejected')) this.#reported.delete(key);
    const prefixes = [ownerKey, ...formerOwnerKeys.filter((k) => k !== ownerKey)].map(refPrefix);
    let failure: unknown;
    for (const zone of zones) {
      const wanted = rules.filter((r) => r.zone.id === zone.id);
      try {
        const state = await this.#load(zone, prefixes, signal, wanted.length > 0);
        if (state) await this.#reconcile(zone, state, wanted, prefixes, report, signal);
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
    const interval = this.#o.settings.resyncInterval;
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
    const state: ZoneRules = { loadedAt: this.#now(), rulesetId: undefined, owned: new Map() };
    this.#absorb(state, ruleset, prefixes);
    this.#state.set(zone.id, state);
    return state;
  }

  #absorb(state: ZoneRules, ruleset: RulesetLike | undefined, prefixes: readonly string[]): void {
    state.rulesetId = ruleset?.id;
    state.owned = new Map();
    for (const r of ruleset?.rules ?? []) {
      const ref = typeof r.ref === 'string' ? r.ref : '';
      if (!prefixes.some((p) => ref.startsWith(p))) continue;
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

  async #reconcile(zone: ZoneInfo, state: ZoneRules, wanted: readonly DesiredRule[], prefixes: readonly string[], report: FirewallSyncReport, signal: AbortSignal): Promise<void> {
    const client = this.#o.client();
    const body = (r: DesiredRule) => ({ ref: r.ref, action: r.action as 'block', expression: r.expression, description: r.description, enabled: true });
    const wantedRefs = new Set(wanted.map((r) => r.ref));
    const pending = wanted.filter((r) => {
      const have = state.owned.get(r.ref);
      return (!have || have.action !== r.action || have.expression !== r.expression || have.description !== r.description || !have.enabled) && this.#refused.get(r.ref) !== signatureOf(r);
    });
    if (!state.rulesetId && pending.length) {
      try {
        const created = (await callCloudflare(`create the firewall entrypoint of ${zone.name}`, () =>
          client.rulesets.create({ zone_id: zone.id, kind: 'zone', phase: PHASE, name: 'default', description: 'zone custom firewall rules', rules: [] }, { signal }),
        )) as RulesetLike;
        this.#absorb(state, created, prefixes);
      } catch (err) {
        if (!(err instanceof CloudflareApiError && err.httpStatus === 400)) throw err;
        this.#absorb(state, (await client.rulesets.phases.get(PHASE, { zone_id: zone.id }, { signal })) as unknown as RulesetLike, prefixes);
      }
    }
    for (const rule of pending) {
      const have = state.owned.get(rule.ref);
      try {
        const result = (await callCloudflare(`${have ? 'update' : 'create'} firewall rule in ${zone.name}`, () =>
          have
            ? client.rulesets.rules.edit(have.id, { zone_id: zone.id, ruleset_id: state.rulesetId!, ...body(rule) }, { signal })
            : client.rulesets.rules.create(state.rulesetId!, { zone_id: zone.id, ...body(rule) }, { signal }),
        )) as RulesetLike;
        this.#absorb(state, result, prefixes);
        if (have) report.updated++;
        else report.created++;
        this.#refused.delete(rule.ref);
      } catch (err) {
        if (!(err instanceof CloudflareApiError) || err.retryable) throw err;
        this.#refused.set(rule.ref, signatureOf(rule));
        const ing = rule.ingress;
        this.#o.events.warning({ kind: 'Ingress', namespace: ing.namespace, name: ing.name, uid: ing.uid }, 'FirewallRuleRejected', `Cloudflare refused the firewall rule ${rule.description} in zone ${zone.name}: ${err.message}`);
      }
    }
    for (const [ref, have] of [...state.owned]) {
      if (wantedRefs.has(ref)) continue;
      const result = (await callCloudflare(`delete firewall rule in ${zone.name}`, () =>
        client.rulesets.rules.delete(have.id, { zone_id: zone.id, ruleset_id: state.rulesetId! }, { signal }),
      )) as RulesetLike;
      this.#absorb(state, result, prefixes);
      report.deleted++;
    }
  }
}

function signatureOf(rule: DesiredRule): string {
  return `${rule.action}|${rule.expression}|${rule.description}`;
}
