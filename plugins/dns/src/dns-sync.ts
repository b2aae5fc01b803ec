import { CloudflareApiError, ZoneDirectory, callCloudflare, matchZone, planLimits, type Cloudflare, type ZoneInfo } from '@warren/core';
import { routeOwnerKey, routeOwnerRef, type EventSink, type IngressRef, type RouteTable } from '@warren/core/plugin';
import type { Logger } from 'pino';
import { hostClaims, type HostClaim } from './desired.js';
import { hostOfRegistryName, registryContent, registryName, unquote } from './names.js';
import type { DnsConfig } from './config.js';

/** The part of a DNS record the plugin reasons about. */
interface DnsRecord {
  readonly id: string;
  readonly name: string;
  readonly type: string;
  readonly content: string;
  readonly proxied: boolean;
}

type RecordBody = { type: 'CNAME' | 'TXT'; name: string; content: string; ttl: 1; proxied?: boolean; comment: string };

/** Every change for one host, applied together in one batch so a host is never half done. */
interface HostChange {
  readonly host: string;
  readonly claim: HostClaim | undefined;
  readonly kind: 'create' | 'update' | 'takeover' | 'delete' | 'release';
  readonly deletes: string[];
  readonly patches: Array<RecordBody & { id: string }>;
  readonly posts: RecordBody[];
}

/** What one sync did; counts are hosts. */
export interface DnsSyncReport {
  created: number;
  updated: number;
  deleted: number;
  released: number;
  conflicts: number;
  failed: number;
  /** Routed hosts (of owned Ingresses and Gateway API routes) that no allowed zone contains. */
  withoutZone: number;
  /** Hosts whose zone belongs to another account than the tunnel (Cloudflare would not route them). */
  otherAccount: number;
}

const emptyReport = (): DnsSyncReport => ({ created: 0, updated: 0, deleted: 0, released: 0, conflicts: 0, failed: 0, withoutZone: 0, otherAccount: 0 });

/** Marks "the tunnel's account could not be told apart": no zone is in it. */
const UNKNOWN_ACCOUNT = '';

/** A zone's records as last read, kept up to date with the results of Warren's own writes. */
class ZoneRecords {
  readonly #byId = new Map<string, DnsRecord>();
  readonly #byName = new Map<string, Set<string>>();
  constructor(
    readonly zone: ZoneInfo,
    readonly loadedAt: number,
    records: Iterable<DnsRecord>,
  ) {
    for (const r of records) this.put(r);
  }
  at(name: string): DnsRecord[] {
    return [...(this.#byName.get(name) ?? [])].map((id) => this.#byId.get(id)!);
  }
  *all(): Iterable<DnsRecord> {
    yield* this.#byId.values();
  }
  put(r: DnsRecord): void {
    this.remove(r.id);
    this.#byId.set(r.id, r);
    let ids = this.#byName.get(r.name);
    if (!ids) this.#byName.set(r.name, (ids = new Set()));
    ids.add(r.id);
  }
  remove(id: string): void {
    const old = this.#byId.get(id);
    if (!old) return;
    this.#byId.delete(id);
    this.#byName.get(old.name)?.delete(id);
  }
}

export interface DnsSyncOptions {
  readonly config: DnsConfig;
  /** The shared SDK client factory (`TOKENS.CloudflareClient`). */
  readonly client: () => Cloudflare;
  readonly logger: Logger;
  readonly events: EventSink;
  readonly now?: () => number;
}

/**
 * Keeps proxied CNAME records `host → <tunnel-id>.cfargotunnel.com` in step with the hosts of the route table: those
 * of owned Ingresses and of attached HTTPRoutes and GRPCRoutes alike. Records do not name the object that routes
 * them (see below), so a host that moves from an Ingress to an HTTPRoute keeps its records untouched. With a tunnel
 * per Gateway (managed tunnel), the names of a Gateway's routes point at that Gateway's own tunnel instead.
 *
 * Ownership: next to each managed name sits a TXT record `<registryPrefix>.<host>` whose content is an HMAC of the
 * name keyed with the installation's owner key (opaque; see names.ts). Warren changes or deletes only records at
 * names whose registry record it wrote; any other record at a wanted name is a conflict, reported as a Warning
 * Event on the objects (Ingresses, HTTPRoutes, GRPCRoutes) of that host and otherwise left alone (unless `overwriteUnmanaged` for records nobody
 * claims). Other installations and external-dns can therefore share a zone.
 *
 * Cost: zones are listed once per `zoneCacheTtl` and each zone's records once per `resyncInterval` (or after a
 * write failed); plans are computed against that cache, so a sync with nothing to change makes no API call.
 * Changes go out through the batch endpoint, at most `batchSize` record changes per request and never more than
 * the zone's plan allows (Free 200, paid 3,500), all changes of one host in the same request. Records are managed
 * only in zones of the tunnel's account (see #tunnelAccount). A batch refused as invalid is retried host by host, so one bad name affects only
 * itself. 429 and 5xx answers stop the sync of that zone and make `sync` reject, so core retries with back-off.
 */
export class DnsSync {
  readonly #o: DnsSyncOptions;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #zones: ZoneDirectory;
  readonly #records = new Map<string, ZoneRecords>();
  /**
   * Ingresses being deleted (by `namespace/name`, the key {@link routeOwnerKey} gives an Ingress and no other kind):
   * their hosts no longer count even while the table still lists them; an HTTPRoute of the same name still does.
   */
  readonly #deleting = new Set<string>();
  /** Last event per (host, ingress) so that an unchanged problem is reported once. */
  readonly #reported = new Map<string, string>();
  /** Host changes the API refused as invalid, by a signature of the change: not retried until something changes. */
  readonly #refused = new Map<string, string>();
  #lastTable: RouteTable | undefined;
  /**
   * Owner keys of this installation other than the current one: without `ownerId` the key is the tunnel id, and a
   * managed tunnel that was deleted in Cloudflare is replaced by another. Learnt from the keys this process synced
   * with and from `formerTunnelIds` (the replaced tunnels the lifecycle keeps in its Secret). Records owned under a
   * former key are ours: they are moved to the new tunnel and key, not reported as another owner's.
   */
  readonly #formerOwnerKeys = new Set<string>();
  #lastOwnerKey: string | undefined;
  /** The account each tunnel id was found in (see #tunnelAccount). */
  readonly #tunnelAccounts = new Map<string, string>();

  constructor(options: DnsSyncOptions) {
    this.#o = options;
    this.#log = options.logger;
    this.#now = options.now ?? Date.now;
    this.#zones = new ZoneDirectory({ client: options.client, allow: options.config.zones, ttlMs: options.config.zoneCacheTtl, now: this.#now });
  }

  /**
   * Drops everything read from Cloudflare and every report made (another leader may have changed the zones and
   * reported meanwhile): the next sync lists zones and records again and says again what still holds.
   */
  forgetRemoteState(): void {
    this.#zones.invalidate();
    this.#records.clear();
    this.#refused.clear();
    this.#reported.clear();
  }

  /** Brings DNS in line with `table`. Idempotent; rejects (after doing what it could) when the API failed in a retryable way. */
  /**
   * `gatewayTunnelIds`: the tunnel of each Gateway that has its own (managed tunnel); the names of its routes point
   * there, and wait (records left as they are) while the Gateway has no tunnel yet.
   */
  async sync(
    table: RouteTable,
    tunnelId: string,
    signal: AbortSignal,
    formerTunnelIds: readonly string[] = [],
    gatewayTunnelIds: ReadonlyMap<string, string> = new Map(),
  ): Promise<DnsSyncReport> {
    this.#lastTable = table;
    this.#learnFormerTunnels(formerTunnelIds);
    const owned = new Set(table.ownedIngresses.map(routeOwnerKey));
    for (const key of this.#deleting) if (!owned.has(key)) this.#deleting.delete(key);
    const ownerKey = this.#o.config.ownerId ?? tunnelId;
    if (this.#lastOwnerKey !== undefined && this.#lastOwnerKey !== ownerKey) {
      this.#formerOwnerKeys.add(this.#lastOwnerKey);
      this.#log.info({ tunnelId }, 'the tunnel changed; DNS records of the previous tunnel move to this one');
    }
    this.#formerOwnerKeys.delete(ownerKey);
    this.#lastOwnerKey = ownerKey;
    const targetOf = (claim: HostClaim): string | undefined => {
      const id = claim.gateway === undefined ? tunnelId : gatewayTunnelIds.get(claim.gateway);
      return id === undefined ? undefined : `${id}.cfargotunnel.com`;
    };
    const report = emptyReport();
    const { registryPrefix } = this.#o.config;
    const { claims, invalid } = hostClaims(table, this.#deleting, registryPrefix);
    for (const [host, owners] of invalid) {
      this.#report(
        host,
        owners,
        'warning',
        'DnsInvalidHost',
        `host ${JSON.stringify(host)} is not a DNS name Warren can publish (or its ownership record ${registryPrefix}.<host> would exceed 253 characters); no DNS record is managed for it`,
      );
    }
    const listed = await this.#zones.zones(signal);
    if (this.#zones.missingAllowed.length) {
      this.#log.warn({ zones: this.#zones.missingAllowed }, 'allow-listed zones are not visible to the API token');
    }
    const account = await this.#tunnelAccount(tunnelId, listed, signal);
    const zones = listed.filter((z) => inAccount(z, account));
    const byZone = new Map<string, HostClaim[]>();
    for (const claim of claims.values()) {
      const zone = matchZone(claim.host, listed);
      if (!zone) {
        report.withoutZone++;
        if (claim.managed) {
          this.#report(
            claim.host,
            claim.owners,
            'warning',
            'DnsNoZone',
            `host ${claim.host} is in no Cloudflare zone the API token can see${this.#o.config.zones.length ? ` among the allowed zones (${this.#o.config.zones.join(', ')})` : ''}; no DNS record is managed for it`,
          );
        }
        continue;
      }
      if (!inAccount(zone, account)) {
        report.otherAccount++;
        if (claim.managed) {
          const why =
            account === UNKNOWN_ACCOUNT
              ? `the API token sees zones of several accounts and the tunnel's account could not be found (set plugins.dns.accountId)`
              : `zone ${zone.name} belongs to account ${zone.accountId}, not to the tunnel's account ${account}`;
          this.#report(
            claim.host,
            claim.owners,
            'warning',
            'DnsOtherAccount',
            `no DNS record is managed for ${claim.host}: ${why}; Cloudflare routes a tunnel only from records in its own account`,
          );
        }
        continue;
      }
      if (claim.managed) this.#checkUniversalSsl(claim, zone);
      const list = byZone.get(zone.id) ?? [];
      list.push(claim);
      byZone.set(zone.id, list);
    }
    let failure: unknown;
    for (const zone of zones) {
      signal.throwIfAborted();
      try {
        const records = await this.#zoneRecords(zone, signal);
        const changes = this.#plan(records, byZone.get(zone.id) ?? [], ownerKey, targetOf, report);
        await this.#apply(records, changes, report, signal);
      } catch (err) {
        this.#records.delete(zone.id);
        if (!(err instanceof CloudflareApiError)) throw err;
        this.#log.warn({ zone: zone.name, err: err.message }, 'DNS sync of a zone failed; it will be retried');
        failure ??= err;
      }
    }
    if (report.created + report.updated + report.deleted + report.released + report.failed > 0) {
      this.#log.info(report, 'DNS records synced');
    }
    if (failure) throw failure;
    return report;
  }

  /**
   * Removes the records of a deleted Ingress's hosts that no other object of the table still routes, bounded by
   * `cleanupTimeout`. The Ingress stops counting for later syncs too, even while the table still lists it.
   */
  async releaseIngress(
    ingress: { namespace: string; name: string; hosts: readonly string[] },
    tunnelId: string | undefined,
    signal: AbortSignal,
    formerTunnelIds: readonly string[] = [],
  ): Promise<void> {
    this.#deleting.add(routeOwnerKey(ingress));
    this.#learnFormerTunnels(formerTunnelIds);
    const ownerKey = this.#o.config.ownerId ?? tunnelId;
    if (!ownerKey) {
      this.#log.warn(
        { ingress: routeOwnerKey(ingress) },
        'no owner key yet (no tunnel id and no plugins.dns.ownerId); records of the deleted Ingress are left for the next sync',
      );
      return;
    }
    const bounded = AbortSignal.any([signal, AbortSignal.timeout(this.#o.config.cleanupTimeout)]);
    const stillUsed = this.#lastTable ? hostClaims(this.#lastTable, this.#deleting, this.#o.config.registryPrefix).claims : new Map<string, HostClaim>();
    const hosts = ingress.hosts.map((h) => h.toLowerCase()).filter((h) => !stillUsed.get(h)?.managed);
    const zones = await this.#zones.zones(bounded);
    const report = emptyReport();
    for (const zone of zones) {
      const mine = hosts.filter((h) => matchZone(h, zones)?.id === zone.id);
      if (!mine.length) continue;
      const records = await this.#zoneRecords(zone, bounded);
      const changes = mine.flatMap((host) => {
        const reg = records.at(registryName(this.#o.config.registryPrefix, host)).find((r) => r.type === 'TXT' && this.#ownedByUs(r, ownerKey, host));
        if (!reg) return [];
        const cnames = records
          .at(host)
          .filter((r) => r.type === 'CNAME')
          .map((r) => r.id);
        return [{ host, claim: undefined, kind: 'delete' as const, deletes: [...cnames, reg.id], patches: [], posts: [] }];
      });
      await this.#apply(records, changes, report, bounded);
    }
  }

  /**
   * The account of tunnel `tunnelId`, whose zones alone can route it: `plugins.dns.accountId` when set; else, when
   * the visible zones span one account (or name none), that one, with no API call; else the account whose
   * `GET /accounts/{id}/cfd_tunnel/{tunnel}` finds the tunnel (once per tunnel id). {@link UNKNOWN_ACCOUNT} when
   * no account claims it, for example because the token may not read tunnels: then no zone is managed.
   */
  async #tunnelAccount(tunnelId: string, zones: readonly ZoneInfo[], signal: AbortSignal): Promise<string | undefined> {
    if (this.#o.config.accountId) return this.#o.config.accountId;
    const accounts = [...new Set(zones.map((z) => z.accountId).filter((a): a is string => Boolean(a)))].sort();
    if (accounts.length <= 1) return accounts[0];
    const known = this.#tunnelAccounts.get(tunnelId);
    if (known !== undefined && accounts.includes(known)) return known;
    const client = this.#o.client();
    for (const account of accounts) {
      try {
        const tunnel = await callCloudflare(`look up tunnel ${tunnelId} in account ${account}`, () =>
          client.zeroTrust.tunnels.cloudflared.get(tunnelId, { account_id: account }, { signal }),
        );
        if (tunnel.deleted_at) continue;
        this.#tunnelAccounts.set(tunnelId, account);
        return account;
      } catch (err) {
        // 404: not in this account; 403: the token may not read its tunnels. Either way, not confirmed here.
        if (!(err instanceof CloudflareApiError) || err.retryable) throw err;
      }
    }
    this.#log.warn(
      { tunnelId, accounts },
      'the API token sees zones of several accounts and none of them shows the tunnel; no DNS record is managed (set plugins.dns.accountId)',
    );
    return UNKNOWN_ACCOUNT;
  }

  /**
   * Without `ownerId` the owner key is the tunnel id: the tunnels this installation replaced (recorded by the
   * tunnel lifecycle in its Secret) were owner keys too, even when this process never ran them.
   */
  #learnFormerTunnels(ids: readonly string[]): void {
    if (this.#o.config.ownerId) return;
    for (const id of ids) this.#formerOwnerKeys.add(id);
  }

  /** Owned under the current key or a key this process used before (see #formerOwnerKeys). */
  #ownedByUs(record: DnsRecord, ownerKey: string, host: string): boolean {
    return isOurs(record, ownerKey, host) || isOursUnder(record, this.#formerOwnerKeys, host);
  }

  async #zoneRecords(zone: ZoneInfo, signal: AbortSignal): Promise<ZoneRecords> {
    const cached = this.#records.get(zone.id);
    const interval = this.#o.config.resyncInterval;
    if (cached && (interval === 0 || this.#now() - cached.loadedAt < interval)) return cached;
    const client = this.#o.client();
    const perPage = this.#o.config.listPageSize;
    const found: DnsRecord[] = [];
    for (let page = 1; ; page++) {
      const result = await callCloudflare(`list DNS records of ${zone.name}`, () => client.dns.records.list({ zone_id: zone.id, page, per_page: perPage }, { signal }));
      for (const r of result.result) {
        found.push({ id: r.id, name: r.name.toLowerCase(), type: r.type, content: String(r.content ?? ''), proxied: Boolean(r.proxied) });
      }
      const info = result.result_info as { total_pages?: number };
      if (result.result.length < perPage || (info.total_pages !== undefined && page >= info.total_pages)) break;
    }
    const records = new ZoneRecords(zone, this.#now(), found);
    this.#records.set(zone.id, records);
    this.#refused.clear();
    return records;
  }

  #plan(records: ZoneRecords, claims: readonly HostClaim[], ownerKey: string, targetOf: (claim: HostClaim) => string | undefined, report: DnsSyncReport): HostChange[] {
    const { registryPrefix: prefix, overwriteUnmanaged, comment } = this.#o.config;
    let target = '';
    const cnameBody = (host: string): RecordBody => ({ type: 'CNAME', name: host, content: target, proxied: true, ttl: 1, comment });
    const txtBody = (host: string): RecordBody => ({ type: 'TXT', name: registryName(prefix, host), content: registryContent(ownerKey, host), ttl: 1, comment });
    const changes: HostChange[] = [];
    const claimed = new Set<string>();
    for (const claim of claims) {
      const { host } = claim;
      claimed.add(host);
      const registry = records.at(registryName(prefix, host)).filter((r) => r.type === 'TXT');
      const ours = registry.find((r) => isOurs(r, ownerKey, host));
      const formerlyOurs = ours ? undefined : registry.find((r) => this.#ownedByUs(r, ownerKey, host));
      const atHost = records.at(host);
      const cname = atHost.find((r) => r.type === 'CNAME');
      // Cloudflare refuses a CNAME only next to A, AAAA or another CNAME: TXT, MX, CAA, SRV… may share the name (an
      // apex keeps its mail records), so they neither block Warren nor are ever deleted by a takeover.
      const blocking = atHost.filter((r) => r.type === 'A' || r.type === 'AAAA');
      const change = (kind: HostChange['kind'], ops: Partial<Pick<HostChange, 'deletes' | 'patches' | 'posts'>>) =>
        changes.push({ host, claim, kind, deletes: ops.deletes ?? [], patches: ops.patches ?? [], posts: ops.posts ?? [] });
      if (!claim.managed) {
        if (ours ?? formerlyOurs) change('release', { deletes: [(ours ?? formerlyOurs)!.id] });
        continue;
      }
      // A Gateway whose tunnel is not created yet: its names wait, and what they point at now stays.
      const wanted = targetOf(claim);
      if (wanted === undefined) continue;
      target = wanted;
      if (formerlyOurs && !blocking.length) {
        // Ours under a former tunnel: point the CNAME at this tunnel and re-key the ownership record.
        change('update', {
          patches: [{ id: formerlyOurs.id, ...txtBody(host) }, ...(cname ? [{ id: cname.id, ...cnameBody(host) }] : [])],
          posts: cname ? [] : [cnameBody(host)],
        });
        continue;
      }
      if (ours) {
        if (blocking.length) {
          this.#conflict(
            claim,
            report,
            `DNS name ${host} has ${describe(blocking)} that Warren did not create; a proxied CNAME cannot be added next to them, so the name is left alone`,
          );
        } else if (!cname) change('create', { posts: [cnameBody(host)] });
        else if (cname.content !== target || !cname.proxied) change('update', { patches: [{ id: cname.id, ...cnameBody(host) }] });
        else this.#settled(claim);
        continue;
      }
      if (registry.length) {
        this.#conflict(claim, report, `DNS name ${host} is claimed by another owner (ownership record ${registryName(prefix, host)}); leaving it alone`);
      } else if (!cname && !blocking.length) {
        change('create', { posts: [txtBody(host), cnameBody(host)] });
      } else if (overwriteUnmanaged) {
        change('takeover', {
          deletes: blocking.map((r) => r.id),
          patches: cname ? [{ id: cname.id, ...cnameBody(host) }] : [],
          posts: cname ? [txtBody(host)] : [txtBody(host), cnameBody(host)],
        });
      } else {
        this.#conflict(
          claim,
          report,
          `DNS name ${host} already has ${describe(cname ? [cname, ...blocking] : blocking)} that this Warren installation does not own; leaving it alone (plugins.dns.overwriteUnmanaged takes over records nobody claims)`,
        );
      }
    }
    for (const record of records.all()) {
      if (record.type !== 'TXT') continue;
      const host = hostOfRegistryName(prefix, record.name);
      if (!host || claimed.has(host) || !this.#ownedByUs(record, ownerKey, host)) continue;
      const cnames = records
        .at(host)
        .filter((r) => r.type === 'CNAME')
        .map((r) => r.id);
      changes.push({ host, claim: undefined, kind: 'delete', deletes: [...cnames, record.id], patches: [], posts: [] });
    }
    return changes.filter((c) => this.#refused.get(c.host) !== signature(c));
  }

  async #apply(records: ZoneRecords, changes: readonly HostChange[], report: DnsSyncReport, signal: AbortSignal): Promise<void> {
    // The zone's plan caps a batch (Free: 200 changes): a larger one is refused whole.
    const size = Math.min(this.#o.config.batchSize, planLimits(records.zone.plan).dnsBatch);
    let chunk: HostChange[] = [];
    let ops = 0;
    const chunks: HostChange[][] = [];
    for (const change of changes) {
      const n = change.deletes.length + change.patches.length + change.posts.length;
      if (ops + n > size && chunk.length) {
        chunks.push(chunk);
        chunk = [];
        ops = 0;
      }
      chunk.push(change);
      ops += n;
    }
    if (chunk.length) chunks.push(chunk);
    for (const part of chunks) {
      try {
        await this.#batch(records, part, signal);
        for (const change of part) this.#done(change, report);
      } catch (err) {
        if (!(err instanceof CloudflareApiError) || err.retryable) throw err;
        for (const change of part) {
          try {
            if (part.length > 1) await this.#batch(records, [change], signal);
            else throw err;
            this.#done(change, report);
          } catch (single) {
            if (!(single instanceof CloudflareApiError) || single.retryable) throw single;
            // A record the change names is gone (deleted by hand): the cached records are stale, so fail this
            // zone's sync; the retry lists the zone again and plans against what is there.
            if (recordMissing(single)) throw single;
            report.failed++;
            this.#refused.set(change.host, signature(change));
            this.#report(change.host, change.claim?.owners ?? [], 'warning', 'DnsRecordFailed', `Cloudflare refused the DNS change for ${change.host}: ${single.message}`);
            this.#log.warn({ host: change.host, err: single.message }, 'DNS change refused');
          }
        }
      }
    }
  }

  async #batch(records: ZoneRecords, part: readonly HostChange[], signal: AbortSignal): Promise<void> {
    const client = this.#o.client();
    const body = {
      zone_id: records.zone.id,
      deletes: part.flatMap((c) => c.deletes.map((id) => ({ id }))),
      patches: part.flatMap((c) => c.patches),
      posts: part.flatMap((c) => c.posts),
    };
    const result = await callCloudflare(`batch DNS changes in ${records.zone.name}`, () => client.dns.records.batch(body, { signal }));
    for (const id of body.deletes) records.remove(id.id);
    for (const r of [...(result.patches ?? []), ...(result.puts ?? []), ...(result.posts ?? [])]) {
      records.put({ id: r.id, name: r.name.toLowerCase(), type: r.type, content: String(r.content ?? ''), proxied: Boolean(r.proxied) });
    }
  }

  #done(change: HostChange, report: DnsSyncReport): void {
    this.#refused.delete(change.host);
    switch (change.kind) {
      case 'create':
      case 'takeover':
        report.created++;
        this.#report(change.host, change.claim?.owners ?? [], 'normal', 'DnsRecordCreated', `proxied CNAME ${change.host} points at the tunnel`);
        break;
      case 'update':
        report.updated++;
        this.#settled(change.claim);
        break;
      case 'delete':
        report.deleted++;
        break;
      case 'release':
        report.released++;
        this.#report(
          change.host,
          change.claim?.owners ?? [],
          'normal',
          'DnsReleased',
          `DNS for ${change.host} handed off: the ownership record was removed and the CNAME left in place`,
        );
        break;
    }
  }

  #conflict(claim: HostClaim, report: DnsSyncReport, message: string): void {
    report.conflicts++;
    this.#report(claim.host, claim.owners, 'warning', 'DnsConflict', message);
  }

  #settled(claim: HostClaim | undefined): void {
    if (!claim) return;
    // A settled record clears its record-topic report, so the same problem later is reported again.
    for (const owner of claim.owners) this.#reported.delete(`${claim.host}|${owner.uid}|record`);
  }

  /**
   * Cloudflare's free Universal SSL certificate covers the zone apex and one level below it (`example.com`,
   * `*.example.com`). A deeper host gets its CNAME, but visitors see a certificate error unless the zone has an
   * advanced certificate for it: say so once on each object of the host.
   */
  #checkUniversalSsl(claim: HostClaim, zone: ZoneInfo): void {
    const { host } = claim;
    const wildcard = host.startsWith('*.');
    const depth = labelCount(wildcard ? host.slice(2) : host) - labelCount(zone.name) + (wildcard ? 1 : 0);
    if (depth <= 1) return;
    this.#report(
      host,
      claim.owners,
      'warning',
      'UniversalSslNotCovered',
      `host ${host} is ${depth} levels below zone ${zone.name}; Cloudflare's Universal SSL certificate covers only ${zone.name} and *.${zone.name}, so visitors get a certificate error unless the zone has an advanced certificate for ${host} (Advanced Certificate Manager or Total TLS)`,
      'ssl',
    );
  }

  /** Reports on each object of the host, under its own kind (an HTTPRoute's Event names the HTTPRoute). */
  #report(host: string, owners: readonly IngressRef[], type: 'warning' | 'normal', reason: string, message: string, topic = 'record'): void {
    for (const owner of owners) {
      const key = `${host}|${owner.uid}|${topic}`;
      const value = `${reason}:${message}`;
      if (this.#reported.get(key) === value) continue;
      this.#reported.set(key, value);
      this.#o.events[type](routeOwnerRef(owner), reason, message);
    }
  }
}

/** True when `zone` can route the tunnel of `account` (undefined: the zones name no account, so all can). */
function inAccount(zone: ZoneInfo, account: string | undefined): boolean {
  return account === undefined || zone.accountId === undefined || zone.accountId === account;
}

/** Cloudflare's answer to a change naming a record that does not exist (81044 "Record does not exist."). */
function recordMissing(err: CloudflareApiError): boolean {
  return err.httpStatus === 404 || err.details.some((d) => d.code === 81044);
}

function labelCount(name: string): number {
  return name.split('.').length;
}

function isOurs(record: DnsRecord, ownerKey: string, host: string): boolean {
  return unquote(record.content) === unquote(registryContent(ownerKey, host));
}

function isOursUnder(record: DnsRecord, keys: Iterable<string>, host: string): boolean {
  for (const key of keys) if (isOurs(record, key, host)) return true;
  return false;
}

function describe(records: readonly DnsRecord[]): string {
  const types = [...new Set(records.map((r) => r.type))];
  return `${types.join('/')} record${records.length > 1 ? 's' : ''}`;
}

function signature(change: HostChange): string {
  return JSON.stringify([change.kind, change.deletes, change.patches, change.posts]);
}
