import type Cloudflare from 'cloudflare';
import { callCloudflare } from './errors.js';
import { zonePlan, type ZonePlan } from './plans.js';

/** A zone the API token can see. */
export interface ZoneInfo {
  readonly id: string;
  /** Lower-case zone apex, e.g. `example.com`. */
  readonly name: string;
  /** The account that owns the zone (a tunnel routes only from records in its own account). */
  readonly accountId?: string | undefined;
  /** The zone's plan; undefined when the API named one Warren does not know (treated as Free). */
  readonly plan?: ZonePlan | undefined;
}

export interface ZoneDirectoryOptions {
  readonly client: () => Cloudflare;
  /** Zone names to manage; empty means every zone the token can see. */
  readonly allow?: readonly string[];
  /** Restrict the listing to one account. */
  readonly accountId?: string | undefined;
  /** How long a listing is reused before the next call lists again. */
  readonly ttlMs: number;
  readonly now?: () => number;
}

/** Page size of the zone listing (the API's maximum). */
const ZONES_PER_PAGE = 50;

/**
 * The zones the token can see, listed page by page through the SDK and cached for `ttlMs`, filtered by the
 * allow-list. Hosts are matched to zones by longest suffix (`a.b.example.com` belongs to `b.example.com` when the
 * token sees both zones). Moved zones are ignored.
 */
export class ZoneDirectory {
  readonly #options: ZoneDirectoryOptions;
  readonly #now: () => number;
  readonly #allow: ReadonlySet<string>;
  #cache: { at: number; zones: readonly ZoneInfo[] } | undefined;

  constructor(options: ZoneDirectoryOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
    this.#allow = new Set((options.allow ?? []).map((z) => z.toLowerCase().replace(/\.$/, '')));
  }

  /** Allow-listed names the token cannot see (after the last listing). */
  missingAllowed: readonly string[] = [];

  /** Drops the cache so that the next call lists again. */
  invalidate(): void {
    this.#cache = undefined;
  }

  /** True when the next {@link zones} call will use the API. */
  get stale(): boolean {
    return !this.#cache || this.#now() - this.#cache.at >= this.#options.ttlMs;
  }

  /** Zones to manage, from the cache when fresh. */
  async zones(signal?: AbortSignal): Promise<readonly ZoneInfo[]> {
    if (!this.stale) return this.#cache!.zones;
    const client = this.#options.client();
    const found: ZoneInfo[] = [];
    for (let page = 1; ; page++) {
      const query = {
        page,
        per_page: ZONES_PER_PAGE,
        ...(this.#options.accountId ? { account: { id: this.#options.accountId } } : {}),
      };
      const result = await callCloudflare('list zones', () => client.zones.list(query, signal ? { signal } : undefined));
      for (const zone of result.result) {
        if (zone.status === 'moved') continue;
        const name = zone.name.toLowerCase();
        if (this.#allow.size && !this.#allow.has(name)) continue;
        found.push({ id: zone.id, name, accountId: zone.account?.id ?? undefined, plan: zonePlan(zone.plan) });
      }
      const info = result.result_info as { total_pages?: number };
      if (result.result.length < ZONES_PER_PAGE || (info.total_pages !== undefined && page >= info.total_pages)) break;
    }
    found.sort((a, b) => b.name.length - a.name.length || (a.name < b.name ? -1 : 1));
    this.missingAllowed = [...this.#allow].filter((name) => !found.some((z) => z.name === name));
    this.#cache = { at: this.#now(), zones: Object.freeze(found) };
    return this.#cache.zones;
  }

  /** The zone of `host` (exact or `*.` wildcard), by longest suffix, or undefined. */
  async zoneFor(host: string, signal?: AbortSignal): Promise<ZoneInfo | undefined> {
    return matchZone(host, await this.zones(signal));
  }
}

/** Longest-suffix match of `host` among `zones` (any order). */
export function matchZone(host: string, zones: readonly ZoneInfo[]): ZoneInfo | undefined {
  const h = host.toLowerCase();
  let best: ZoneInfo | undefined;
  for (const zone of zones) {
    if ((h === zone.name || h.endsWith(`.${zone.name}`)) && (!best || zone.name.length > best.name.length)) best = zone;
  }
  return best;
}
