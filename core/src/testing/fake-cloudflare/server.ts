import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pino, type Logger } from 'pino';
import { createCloudflareClientFactory, type BudgetedClientFactory } from '../../cloudflare/client.js';
import { parseConfig } from '../../config/load.js';
import { buildRecord, checkConflicts, recordJson, type RecordInput } from './dns.js';
import { checkExpression } from './expression.js';
import { FakeApiError, badRequest, newId, notFound, now, paginate, textFilter, unroutable } from './http-error.js';
import { emptyState, type FakeDnsRecord, type FakeRule, type FakeRuleset, type FakeState, type FakeToken, type FakeTunnel, type FakeZone } from './state.js';

/** One request the fake answered. Never holds the token or request bodies. */
export interface FakeRequestLogEntry {
  readonly method: string;
  /** Path without the base prefix and query, e.g. `/zones/0123…/dns_records`. */
  readonly path: string;
  /** The route template, e.g. `GET /zones/:zone/dns_records`; `unrouted` when nothing matched. */
  readonly route: string;
  readonly query: string;
  readonly status: number;
  readonly at: number;
}

export interface FakeCloudflareOptions {
  /** Tokens accepted in `Authorization: Bearer …`; default one token `fake-cloudflare-token` that sees everything. */
  readonly tokens?: readonly FakeToken[];
  /**
   * Enforce Cloudflare's global limit (default off): at most `requests` per user (see `FakeToken.user`) in any
   * `windowMs`; a user over it gets 429 on every request for `blockMs` (default 5 minutes), as documented.
   */
  readonly rateLimit?: { readonly requests: number; readonly windowMs: number; readonly blockMs?: number };
  /** Added delay per request (benchmarks), ms. */
  readonly latencyMs?: number;
  /** Base path of the API (default `/client/v4`). */
  readonly basePath?: string;
}

/** Injected failures, consumed one per matching request. */
export interface FakeFaults {
  /** The next `count` requests (optionally only those whose route contains `route`) get 429 with `retry-after`. */
  rateLimit(count: number, retryAfterSeconds?: number, route?: string): void;
  /** The next `count` requests (optionally matching `route`) get `status` (default 500) with code 10000-ish errors. */
  serverError(count: number, status?: number, route?: string): void;
  /** The next `count` requests (optionally matching `route`) fail with `status` and one error `code`/`message`. */
  apiError(count: number, status: number, code: number, message: string, route?: string): void;
  /** Drops every pending fault. */
  clear(): void;
}

/** A running fake of the Cloudflare v4 API on 127.0.0.1, indistinguishable from the real one for the SDK calls Warren makes. */
export interface FakeCloudflare {
  /** Pass as the SDK's `baseURL` / setting `cloudflare.apiBaseUrl`. */
  readonly baseUrl: string;
  readonly faults: FakeFaults;
  /** Every answered request, in order. */
  readonly requests: readonly FakeRequestLogEntry[];
  /** Requests whose route template (e.g. `POST /zones/:zone/dns_records/batch`) matches; all when omitted. */
  count(route?: string | RegExp): number;
  resetLog(): void;
  addZone(name: string, options?: { accountId?: string; id?: string; plan?: FakeZone['plan']; status?: FakeZone['status'] }): { id: string; name: string };
  /** Adds a record directly (as another tool or a person would), validated like the API. */
  addRecord(zoneName: string, record: RecordInput): FakeDnsRecord;
  /** Current records of a zone, sorted by name then type. */
  records(zoneName: string): FakeDnsRecord[];
  /** Changes a record directly (drift). */
  editRecord(zoneName: string, id: string, patch: RecordInput): FakeDnsRecord;
  deleteRecord(zoneName: string, id: string): void;
  tunnels(accountId: string): FakeTunnel[];
  /** Creates a tunnel directly (as the dashboard would). */
  addTunnel(accountId: string, name: string, options?: { configSrc?: 'local' | 'cloudflare'; secret?: Buffer }): FakeTunnel;
  /** `connectors` connector processes now serve the tunnel (each holding one connection); 0 stops them. */
  connectTunnel(tunnelId: string, connectors: number): void;
  /** "Refresh token" in the dashboard: the tunnel gets a new random secret, so its old token stops working. */
  rotateTunnelSecret(tunnelId: string): Buffer;
  /**
   * The tunnel the edge sends `host` to: a proxied CNAME `<id>.cfargotunnel.com` at exactly that name, naming a
   * live tunnel of the zone's own account. Cloudflare documents that a tunnel routes only records in its account;
   * the API accepts such a record elsewhere, but it routes nowhere (undefined here).
   */
  routedTunnel(host: string): string | undefined;
  /** Changes a zone's plan (an upgrade or downgrade in the dashboard). */
  setPlan(zoneName: string, plan: FakeZone['plan']): void;
  /** The zone entrypoint ruleset of `phase`, or undefined. */
  ruleset(zoneName: string, phase?: string): FakeRuleset | undefined;
  /** Adds a rule directly to the entrypoint of `phase` (creating it), as a person would in the dashboard. */
  addRule(zoneName: string, rule: { expression: string; action: string; description?: string; ref?: string }, phase?: string): FakeRule;
  /**
   * Warren's SDK client factory pointed at this fake with API token `token` (default settings otherwise): what a
   * test needs to act as Warren, or as a user in the dashboard.
   */
  clients(token: string, options?: { readonly logger?: Logger; readonly maxRetries?: number }): BudgetedClientFactory;
  close(): Promise<void>;
}

type Params = Record<string, string>;
interface Ctx {
  readonly method: string;
  readonly path: string;
  readonly query: URLSearchParams;
  readonly params: Params;
  readonly body: unknown;
  readonly token: FakeToken;
}
type Handler = (ctx: Ctx) => { result: unknown; resultInfo?: unknown; status?: number };
interface Route {
  readonly method: string;
  readonly template: string;
  readonly pattern: RegExp;
  readonly keys: string[];
  readonly handler: Handler;
}

const FIREWALL_ACTIONS = new Set(['block', 'challenge', 'js_challenge', 'managed_challenge', 'log', 'skip']);
const CUSTOM_PHASE = 'http_request_firewall_custom';
/**
 * Custom rules a zone's `http_request_firewall_custom` phase may hold, by plan (Cloudflare's documented limits; the
 * count includes every rule of the phase, whoever wrote it). The error code and wording of the refusal below are
 * the fake's own: no observed answer was at hand.
 */
const CUSTOM_RULE_LIMITS: Readonly<Record<FakeZone['plan'], number>> = { free: 5, pro: 20, business: 100, enterprise: 1000 };
const checkRuleLimit = (zone: FakeZone, phase: string, rules: readonly unknown[]) => {
  const limit = CUSTOM_RULE_LIMITS[zone.plan];
  if (phase === CUSTOM_PHASE && rules.length > limit) {
    throw badRequest(20021, `exceeded maximum number of rules in phase ${CUSTOM_PHASE}: ${rules.length} rules, the ${zone.plan} plan allows ${limit}`);
  }
};
const DEFAULT_TOKEN: FakeToken = { value: 'fake-cloudflare-token' };

/** Starts the fake on 127.0.0.1 (random port). Close it in `t.teardown`. */
export async function startFakeCloudflare(options: FakeCloudflareOptions = {}): Promise<FakeCloudflare> {
  const state: FakeState = emptyState();
  const tokens = options.tokens ?? [DEFAULT_TOKEN];
  const basePath = (options.basePath ?? '/client/v4').replace(/\/$/, '');
  const log: FakeRequestLogEntry[] = [];
  const windows = new Map<string, number[]>();
  const blockedUntil = new Map<string, number>();
  let pending: Array<{ kind: '429' | '5xx' | 'api'; status: number; retryAfter: number; route?: string | undefined; left: number; code?: number; message?: string }> = [];

  const routes: Route[] = [];
  const on = (method: string, template: string, handler: Handler) => {
    const keys: string[] = [];
    const pattern = new RegExp(
      `^${template.replace(/:([a-z_]+)/g, (_, k: string) => {
        keys.push(k);
        return '([^/]+)';
      })}$`,
    );
    routes.push({ method, template: `${method} ${template}`, pattern, keys, handler });
  };

  // ---- access helpers
  const zoneVisible = (token: FakeToken, zone: FakeZone) => (!token.zones || token.zones.includes(zone.name)) && (!token.accounts || token.accounts.includes(zone.accountId));
  const zoneById = (ctx: Ctx): FakeZone => {
    const zone = state.zones.get(ctx.params.zone!);
    if (!zone) throw unroutable(ctx.path);
    if (!zoneVisible(ctx.token, zone)) throw new FakeApiError(403, [{ code: 10000, message: 'Authentication error' }]);
    return zone;
  };
  const account = (ctx: Ctx): string => {
    const id = ctx.params.account!;
    if (!/^[0-9a-f]{32}$/.test(id)) throw unroutable(ctx.path);
    if (ctx.token.accounts && !ctx.token.accounts.includes(id)) throw new FakeApiError(403, [{ code: 10000, message: 'Authentication error' }]);
    return id;
  };
  const zoneRecords = (zone: FakeZone) => {
    let map = state.records.get(zone.id);
    if (!map) state.records.set(zone.id, (map = new Map()));
    return map;
  };
  const zoneJson = (z: FakeZone) => ({
    id: z.id,
    name: z.name,
    status: z.status,
    paused: false,
    type: 'full',
    development_mode: 0,
    name_servers: ['ada.ns.cloudflare.com', 'bob.ns.cloudflare.com'],
    original_name_servers: null,
    original_registrar: null,
    original_dnshost: null,
    created_on: z.createdOn,
    modified_on: z.createdOn,
    activated_on: z.createdOn,
    meta: { step: 4, custom_certificate_quota: 0, page_rule_quota: 3, phishing_detected: false },
    owner: { id: null, type: 'user', email: null },
    account: { id: z.accountId, name: `account ${z.accountId.slice(0, 6)}` },
    permissions: ['#zone:read', '#dns_records:edit'],
    plan: {
      id: z.plan,
      name: `${z.plan[0]!.toUpperCase()}${z.plan.slice(1)} Website`,
      price: 0,
      currency: 'USD',
      frequency: '',
      is_subscribed: true,
      can_subscribe: false,
      legacy_id: z.plan,
      legacy_discount: false,
      externally_managed: false,
    },
  });

  // ---- zones
  on('GET', '/zones', (ctx) => {
    let zones = [...state.zones.values()].filter((z) => zoneVisible(ctx.token, z));
    const name = ctx.query.get('name');
    if (name) {
      const [op, value] = name.includes(':') ? (name.split(/:(.*)/s) as [string, string]) : ['equal', name];
      const v = value.toLowerCase();
      const tests: Record<string, (n: string) => boolean> = {
        equal: (n) => n === v,
        not_equal: (n) => n !== v,
        starts_with: (n) => n.startsWith(v),
        ends_with: (n) => n.endsWith(v),
        contains: (n) => n.includes(v),
      };
      const test = tests[op];
      if (!test) throw badRequest(1001, `Invalid name filter operator "${op}"`);
      zones = zones.filter((z) => test(z.name));
    }
    const accountId = ctx.query.get('account.id');
    if (accountId) zones = zones.filter((z) => z.accountId === accountId);
    const status = ctx.query.get('status');
    if (status) zones = zones.filter((z) => z.status === status);
    zones.sort((a, b) => (a.name < b.name ? -1 : 1));
    if (ctx.query.get('direction') === 'desc') zones.reverse();
    const page = paginate(zones, ctx.query, { defaultPerPage: 20, minPerPage: 5, maxPerPage: 50 });
    return { result: page.items.map(zoneJson), resultInfo: page.resultInfo };
  });
  on('GET', '/zones/:zone', (ctx) => ({ result: zoneJson(zoneById(ctx)) }));

  // ---- DNS records
  const listRecords = (zone: FakeZone, query: URLSearchParams) => {
    const name = textFilter(query, 'name');
    const content = textFilter(query, 'content');
    const type = query.get('type');
    const proxied = query.get('proxied');
    const anyMatch = query.get('match') === 'any';
    const checks: Array<(r: FakeDnsRecord) => boolean> = [];
    if (name) checks.push((r) => name(r.name));
    if (content) checks.push((r) => content(r.content));
    if (type) checks.push((r) => r.type === type);
    if (proxied !== null) checks.push((r) => String(r.proxied) === proxied);
    const order = (query.get('order') ?? 'type') as keyof FakeDnsRecord;
    const rows = [...zoneRecords(zone).values()]
      .filter((r) => !checks.length || (anyMatch ? checks.some((c) => c(r)) : checks.every((c) => c(r))))
      .sort((a, b) => String(a[order]).localeCompare(String(b[order])) || a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    if (query.get('direction') === 'desc') rows.reverse();
    return rows;
  };
  on('GET', '/zones/:zone/dns_records', (ctx) => {
    const zone = zoneById(ctx);
    const page = paginate(listRecords(zone, ctx.query), ctx.query, { defaultPerPage: 100, minPerPage: 1, maxPerPage: 5_000_000 });
    return { result: page.items.map((r) => recordJson(r, zone)), resultInfo: page.resultInfo };
  });
  on('POST', '/zones/:zone/dns_records', (ctx) => {
    const zone = zoneById(ctx);
    const records = zoneRecords(zone);
    const record = buildRecord(ctx.body as RecordInput, zone);
    checkConflicts(record, records.values());
    records.set(record.id, record);
    return { result: recordJson(record, zone) };
  });
  const existing = (zone: FakeZone, id: string, path: string) => {
    const record = zoneRecords(zone).get(id);
    if (!record) throw notFound(81044, `Record does not exist.`);
    void path;
    return record;
  };
  on('GET', '/zones/:zone/dns_records/:record', (ctx) => {
    const zone = zoneById(ctx);
    return { result: recordJson(existing(zone, ctx.params.record!, ctx.path), zone) };
  });
  const overwrite = (patch: boolean) => (ctx: Ctx) => {
    const zone = zoneById(ctx);
    const records = zoneRecords(zone);
    const old = existing(zone, ctx.params.record!, ctx.path);
    const input = (patch ? ctx.body : { proxied: false, ttl: 1, comment: null, tags: [], ...(ctx.body as object) }) as RecordInput;
    if (!patch && (input.name === undefined || input.type === undefined)) throw badRequest(1004, 'DNS Validation Error: name and type are required');
    const record = buildRecord(input, zone, old);
    checkConflicts(record, records.values());
    records.set(record.id, record);
    return { result: recordJson(record, zone) };
  };
  on('PUT', '/zones/:zone/dns_records/:record', overwrite(false));
  on('PATCH', '/zones/:zone/dns_records/:record', overwrite(true));
  on('DELETE', '/zones/:zone/dns_records/:record', (ctx) => {
    const zone = zoneById(ctx);
    existing(zone, ctx.params.record!, ctx.path);
    zoneRecords(zone).delete(ctx.params.record!);
    return { result: { id: ctx.params.record } };
  });
  on('POST', '/zones/:zone/dns_records/batch', (ctx) => {
    const zone = zoneById(ctx);
    const body = (ctx.body ?? {}) as { deletes?: unknown; patches?: unknown; puts?: unknown; posts?: unknown };
    const lists = { deletes: body.deletes ?? [], patches: body.patches ?? [], puts: body.puts ?? [], posts: body.posts ?? [] };
    for (const [key, list] of Object.entries(lists)) if (!Array.isArray(list)) throw badRequest(1004, `${key} must be a list`);
    const total = Object.values(lists).reduce<number>((n, l) => n + (l as unknown[]).length, 0);
    // Documented per-plan batch sizes (Free 200, paid 3,500); the code and wording of the refusal are the fake's.
    const limit = zone.plan === 'free' ? 200 : 3500;
    if (total > limit) throw badRequest(81098, `Batch of ${total} changes exceeds the limit of ${limit} for this zone's plan`);
    const working = new Map([...zoneRecords(zone)].map(([id, r]) => [id, { ...r }]));
    const byName = new Map<string, Set<string>>();
    const index = (r: FakeDnsRecord, add: boolean) => {
      let ids = byName.get(r.name);
      if (!ids) byName.set(r.name, (ids = new Set()));
      if (add) ids.add(r.id);
      else ids.delete(r.id);
    };
    for (const r of working.values()) index(r, true);
    const sameName = (name: string) => [...(byName.get(name) ?? [])].map((id) => working.get(id)!);
    const save = (r: FakeDnsRecord) => {
      const old = working.get(r.id);
      if (old) index(old, false);
      working.set(r.id, r);
      index(r, true);
    };
    const result: Record<string, unknown[]> = { deletes: [], patches: [], puts: [], posts: [] };
    // Documented: one database transaction, run in the order deletes, patches, puts, posts, so nothing of a failed
    // batch is applied. Modelled after the API's behaviour, not from a documented or observed answer's wording: it
    // stops at the first failing operation and reports only that error, so a caller cannot learn from one answer
    // which other operations would fail. The `kind[index]: ` prefix is the fake's own.
    let error: { code: number; message: string } | undefined;
    const step = (kind: string, index: number, run: () => FakeDnsRecord) => {
      if (error) return;
      try {
        result[kind]!.push(recordJson(run(), zone));
      } catch (err) {
        if (!(err instanceof FakeApiError)) throw err;
        const first = err.errors[0]!;
        error = { code: first.code, message: `${kind}[${index}]: ${first.message}` };
      }
    };
    (lists.deletes as Array<{ id?: string }>).forEach((d, i) => {
      step('deletes', i, () => {
        const r = working.get(String(d?.id));
        if (!r) throw notFound(81044, 'Record does not exist.');
        working.delete(r.id);
        index(r, false);
        return r;
      });
    });
    const change = (kind: 'patches' | 'puts') => (raw: RecordInput & { id?: string }, i: number) =>
      step(kind, i, () => {
        const old = working.get(String(raw?.id));
        if (!old) throw notFound(81044, 'Record does not exist.');
        const { id: _id, ...input } = raw;
        const record = buildRecord(kind === 'puts' ? { proxied: false, ttl: 1, comment: null, tags: [], ...input } : input, zone, old);
        checkConflicts(record, sameName(record.name));
        save(record);
        return record;
      });
    (lists.patches as Array<RecordInput & { id?: string }>).forEach(change('patches'));
    (lists.puts as Array<RecordInput & { id?: string }>).forEach(change('puts'));
    (lists.posts as RecordInput[]).forEach((raw, i) => {
      step('posts', i, () => {
        const record = buildRecord(raw, zone);
        checkConflicts(record, sameName(record.name));
        save(record);
        return record;
      });
    });
    if (error) throw new FakeApiError(400, [error]);
    state.records.set(zone.id, working);
    return { result };
  });

  // ---- tunnels
  const tunnelJson = (t: FakeTunnel) => ({
    id: t.id,
    account_tag: t.accountId,
    name: t.name,
    created_at: t.createdAt,
    deleted_at: t.deletedAt,
    config_src: t.configSrc,
    remote_config: t.configSrc === 'cloudflare',
    status: t.connections > 0 ? 'healthy' : 'inactive',
    tun_type: 'cfd_tunnel',
    connections: [],
    conns_active_at: null,
    conns_inactive_at: t.createdAt,
    metadata: {},
  });
  const tokenOf = (t: FakeTunnel) => Buffer.from(JSON.stringify({ a: t.accountId, t: t.id, s: t.secret.toString('base64') })).toString('base64');
  const tunnelById = (ctx: Ctx): FakeTunnel => {
    const accountId = account(ctx);
    const id = ctx.params.tunnel!;
    if (!/^[0-9a-f-]{36}$/.test(id)) throw unroutable(ctx.path);
    const t = state.tunnels.get(id);
    if (!t || t.accountId !== accountId) throw notFound(1003, 'Tunnel not found');
    return t;
  };
  const createTunnel = (accountId: string, body: Record<string, unknown>): FakeTunnel => {
    const name = body.name;
    if (typeof name !== 'string' || name.trim() === '') throw badRequest(1001, 'Tunnel name is required');
    if (/^[0-9a-f]{8}-[0-9a-f]{4}-/i.test(name)) throw badRequest(1001, 'Tunnel name must not be a UUID');
    const configSrc = body.config_src ?? 'local';
    if (configSrc !== 'local' && configSrc !== 'cloudflare') throw badRequest(1001, 'config_src must be "local" or "cloudflare"');
    const secret = body.tunnel_secret === undefined ? Buffer.from(crypto.getRandomValues(new Uint8Array(32))) : tunnelSecret(body.tunnel_secret);
    if ([...state.tunnels.values()].some((t) => t.accountId === accountId && t.name === name && !t.deletedAt)) {
      throw new FakeApiError(409, [{ code: 1013, message: 'You already have a tunnel with this name' }], { 'x-should-retry': 'false' });
    }
    const tunnel: FakeTunnel = { id: crypto.randomUUID(), accountId, name, createdAt: now(), deletedAt: null, configSrc, secret, connections: 0, connectors: 0 };
    state.tunnels.set(tunnel.id, tunnel);
    return tunnel;
  };
  on('GET', '/accounts/:account/cfd_tunnel', (ctx) => {
    const accountId = account(ctx);
    let rows = [...state.tunnels.values()].filter((t) => t.accountId === accountId);
    const q = ctx.query;
    const isDeleted = q.get('is_deleted');
    if (isDeleted === 'false') rows = rows.filter((t) => !t.deletedAt);
    if (isDeleted === 'true') rows = rows.filter((t) => t.deletedAt);
    const name = q.get('name');
    if (name !== null) rows = rows.filter((t) => t.name === name);
    const uuid = q.get('uuid');
    if (uuid) rows = rows.filter((t) => t.id === uuid);
    const include = q.get('include_prefix');
    if (include) rows = rows.filter((t) => t.name.startsWith(include));
    const exclude = q.get('exclude_prefix');
    if (exclude) rows = rows.filter((t) => !t.name.startsWith(exclude));
    rows.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
    const page = paginate(rows, q, { defaultPerPage: 20, minPerPage: 1, maxPerPage: 1000 });
    return { result: page.items.map(tunnelJson), resultInfo: page.resultInfo };
  });
  on('POST', '/accounts/:account/cfd_tunnel', (ctx) => {
    const t = createTunnel(account(ctx), (ctx.body ?? {}) as Record<string, unknown>);
    return {
      result: {
        ...tunnelJson(t),
        token: tokenOf(t),
        credentials_file: { AccountTag: t.accountId, TunnelID: t.id, TunnelName: t.name, TunnelSecret: t.secret.toString('base64') },
      },
    };
  });
  on('GET', '/accounts/:account/cfd_tunnel/:tunnel', (ctx) => ({ result: tunnelJson(tunnelById(ctx)) }));
  const tunnelSecret = (raw: unknown): Buffer => {
    if (typeof raw !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(raw)) throw badRequest(1001, 'tunnel_secret must be base64');
    const secret = Buffer.from(raw, 'base64');
    if (secret.length < 32) throw badRequest(1001, 'tunnel_secret must be at least 32 bytes');
    return secret;
  };
  // A new `tunnel_secret` rotates the tunnel's credentials: the old token no longer authenticates at the edge.
  on('PATCH', '/accounts/:account/cfd_tunnel/:tunnel', (ctx) => {
    const t = tunnelById(ctx);
    if (t.deletedAt) throw notFound(1003, 'Tunnel not found');
    const body = (ctx.body ?? {}) as Record<string, unknown>;
    if (body.name !== undefined) {
      if (typeof body.name !== 'string' || body.name.trim() === '') throw badRequest(1001, 'Tunnel name is required');
      t.name = body.name;
    }
    if (body.tunnel_secret !== undefined) t.secret = tunnelSecret(body.tunnel_secret);
    return { result: tunnelJson(t) };
  });
  on('GET', '/accounts/:account/cfd_tunnel/:tunnel/token', (ctx) => {
    const t = tunnelById(ctx);
    if (t.deletedAt) throw notFound(1003, 'Tunnel not found');
    return { result: tokenOf(t) };
  });
  // Cleaning up connections drops them, but connectors still running reconnect straight away (connectors
  // retry a dropped connection), so the tunnel has active connections again.
  on('DELETE', '/accounts/:account/cfd_tunnel/:tunnel/connections', (ctx) => {
    const t = tunnelById(ctx);
    t.connections = t.deletedAt ? 0 : t.connectors;
    return { result: null };
  });
  // Without `cascade=true` a tunnel with active connections is not deleted (1022; the code is the fake's choice);
  // with it, its connections go too (`cascade` is the API's documented query parameter for this).
  on('DELETE', '/accounts/:account/cfd_tunnel/:tunnel', (ctx) => {
    const t = tunnelById(ctx);
    if (t.connections > 0 && ctx.query.get('cascade') !== 'true') {
      throw badRequest(1022, 'Cannot delete tunnel because it has active connections');
    }
    t.deletedAt ??= now();
    t.connections = 0;
    return { result: tunnelJson(t) };
  });

  // ---- rulesets (zone entrypoints)
  const rulesetJson = (r: FakeRuleset) => ({
    id: r.id,
    name: r.name,
    description: r.description,
    kind: r.kind,
    phase: r.phase,
    version: String(r.version),
    last_updated: r.lastUpdated,
    rules: r.rules.map((rule) => ({
      id: rule.id,
      version: String(rule.version),
      action: rule.action,
      expression: rule.expression,
      description: rule.description,
      last_updated: rule.lastUpdated,
      ref: rule.ref,
      enabled: rule.enabled,
      ...(rule.actionParameters !== undefined ? { action_parameters: rule.actionParameters } : {}),
    })),
  });
  const entrypoint = (zone: FakeZone, phase: string) => [...state.rulesets.values()].find((r) => r.zoneId === zone.id && r.phase === phase && r.kind === 'zone');
  const buildRule = (zone: FakeZone, phase: string, raw: unknown, base?: FakeRule): FakeRule => {
    if (typeof raw !== 'object' || raw === null) throw badRequest(20021, 'a rule must be a JSON object');
    const r = raw as Record<string, unknown>;
    const action = r.action ?? base?.action;
    if (typeof action !== 'string' || (phase === 'http_request_firewall_custom' && !FIREWALL_ACTIONS.has(action))) {
      throw badRequest(20021, `'${String(action)}' is not a valid action for the ${phase} phase`);
    }
    const expression = r.expression ?? base?.expression;
    const problem = checkExpression(expression, { regexAllowed: zone.plan === 'business' || zone.plan === 'enterprise' });
    if (problem) throw badRequest(20020, `filter parsing error: ${problem}`);
    const description = r.description ?? base?.description ?? '';
    if (typeof description !== 'string' || description.length > 500) throw badRequest(20021, 'description must be a string of at most 500 characters');
    const enabled = r.enabled ?? base?.enabled ?? true;
    if (typeof enabled !== 'boolean') throw badRequest(20021, 'enabled must be a boolean');
    const id = base?.id ?? (typeof r.id === 'string' && r.id ? r.id : newId());
    const ref = r.ref ?? base?.ref ?? id;
    if (typeof ref !== 'string' || ref.length > 100) throw badRequest(20021, 'ref must be a string of at most 100 characters');
    return {
      id,
      version: (base?.version ?? 0) + 1,
      action,
      expression: expression as string,
      description,
      ref,
      enabled,
      lastUpdated: now(),
      ...(r.action_parameters !== undefined ? { actionParameters: r.action_parameters } : {}),
    };
  };
  const checkRefs = (rules: FakeRule[]) => {
    const seen = new Set<string>();
    for (const rule of rules) {
      if (seen.has(rule.ref)) throw badRequest(20022, `duplicate rule ref '${rule.ref}'`);
      seen.add(rule.ref);
    }
  };
  const saveRuleset = (zone: FakeZone, phase: string, body: Record<string, unknown>, existingSet?: FakeRuleset): FakeRuleset => {
    const rawRules = body.rules ?? [];
    if (!Array.isArray(rawRules)) throw badRequest(20021, 'rules must be a list');
    const rules = rawRules.map((raw) => {
      const old = existingSet?.rules.find((r) => r.id === (raw as { id?: unknown })?.id);
      return buildRule(zone, phase, raw, old);
    });
    checkRefs(rules);
    checkRuleLimit(zone, phase, rules);
    const set: FakeRuleset = existingSet ?? {
      id: newId(),
      zoneId: zone.id,
      name: typeof body.name === 'string' ? body.name : 'default',
      description: typeof body.description === 'string' ? body.description : '',
      kind: 'zone',
      phase,
      version: 0,
      lastUpdated: now(),
      rules: [],
    };
    set.rules = rules;
    set.version++;
    set.lastUpdated = now();
    state.rulesets.set(set.id, set);
    return set;
  };
  on('GET', '/zones/:zone/rulesets/phases/:phase/entrypoint', (ctx) => {
    const zone = zoneById(ctx);
    const set = entrypoint(zone, ctx.params.phase!);
    if (!set) throw notFound(10003, `could not find entrypoint ruleset in the ${ctx.params.phase} phase`);
    return { result: rulesetJson(set) };
  });
  on('PUT', '/zones/:zone/rulesets/phases/:phase/entrypoint', (ctx) => {
    const zone = zoneById(ctx);
    const set = saveRuleset(zone, ctx.params.phase!, (ctx.body ?? {}) as Record<string, unknown>, entrypoint(zone, ctx.params.phase!));
    return { result: rulesetJson(set) };
  });
  on('POST', '/zones/:zone/rulesets', (ctx) => {
    const zone = zoneById(ctx);
    const body = (ctx.body ?? {}) as Record<string, unknown>;
    if (body.kind !== 'zone') throw badRequest(20021, 'kind must be "zone" for a zone ruleset');
    if (typeof body.phase !== 'string' || !body.phase) throw badRequest(20021, 'phase is required');
    if (typeof body.name !== 'string' || !body.name) throw badRequest(20021, 'name is required');
    // The API refuses a create without `rules` (the SDK's types leave it optional). Not an observed answer: the
    // code and wording here are the fake's own.
    if (!Array.isArray(body.rules)) throw badRequest(20021, 'rules is required');
    if (entrypoint(zone, body.phase)) {
      throw badRequest(
        20217,
        'A similar configuration with rules already exists and overwriting will have unintended consequences. If you are trying to update the ruleset, use the PUT method',
      );
    }
    return { result: rulesetJson(saveRuleset(zone, body.phase, body)) };
  });
  const rulesetById = (ctx: Ctx): { zone: FakeZone; set: FakeRuleset } => {
    const zone = zoneById(ctx);
    const set = state.rulesets.get(ctx.params.ruleset!);
    if (!set || set.zoneId !== zone.id) throw notFound(10003, 'could not find the ruleset');
    return { zone, set };
  };
  on('GET', '/zones/:zone/rulesets/:ruleset', (ctx) => ({ result: rulesetJson(rulesetById(ctx).set) }));
  const place = (rules: FakeRule[], rule: FakeRule, position: unknown) => {
    const p = (position ?? {}) as { before?: string; after?: string; index?: number };
    const at =
      typeof p.index === 'number'
        ? Math.max(0, Math.min(rules.length, p.index - 1))
        : p.before !== undefined
          ? rules.findIndex((r) => r.id === p.before)
          : p.after !== undefined
            ? rules.findIndex((r) => r.id === p.after) + 1
            : rules.length;
    if (at < 0 || (p.after !== undefined && at === 0)) throw badRequest(20021, 'position refers to a rule that does not exist');
    rules.splice(at, 0, rule);
  };
  on('POST', '/zones/:zone/rulesets/:ruleset/rules', (ctx) => {
    const { zone, set } = rulesetById(ctx);
    const body = (ctx.body ?? {}) as Record<string, unknown>;
    const rule = buildRule(zone, set.phase, { ...body, id: undefined });
    const rules = [...set.rules];
    place(rules, rule, body.position);
    checkRefs(rules);
    checkRuleLimit(zone, set.phase, rules);
    set.rules = rules;
    set.version++;
    set.lastUpdated = now();
    return { result: rulesetJson(set) };
  });
  on('PATCH', '/zones/:zone/rulesets/:ruleset/rules/:rule', (ctx) => {
    const { zone, set } = rulesetById(ctx);
    const index = set.rules.findIndex((r) => r.id === ctx.params.rule);
    if (index < 0) throw notFound(10003, 'could not find the rule');
    const body = (ctx.body ?? {}) as Record<string, unknown>;
    const rule = buildRule(zone, set.phase, body, set.rules[index]);
    const rules = set.rules.filter((_, i) => i !== index);
    if (body.position !== undefined) place(rules, rule, body.position);
    else rules.splice(index, 0, rule);
    checkRefs(rules);
    set.rules = rules;
    set.version++;
    set.lastUpdated = now();
    return { result: rulesetJson(set) };
  });
  on('DELETE', '/zones/:zone/rulesets/:ruleset/rules/:rule', (ctx) => {
    const { set } = rulesetById(ctx);
    if (!set.rules.some((r) => r.id === ctx.params.rule)) throw notFound(10003, 'could not find the rule');
    set.rules = set.rules.filter((r) => r.id !== ctx.params.rule);
    set.version++;
    set.lastUpdated = now();
    return { result: rulesetJson(set) };
  });

  // ---- HTTP plumbing
  const send = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cf-ray': `${newId().slice(0, 16)}-FAKE`, ...headers });
    res.end(text);
  };
  const failure = (e: FakeApiError) => ({ success: false, errors: e.errors, messages: [], result: null });

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    const fullPath = url.pathname;
    const path = fullPath.startsWith(basePath) ? fullPath.slice(basePath.length) || '/' : fullPath;
    let routeName = 'unrouted';
    let status = 500;
    try {
      if (options.latencyMs) await new Promise((r) => setTimeout(r, options.latencyMs));
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      const auth = req.headers.authorization;
      const match = /^Bearer (\S+)$/.exec(auth ?? '');
      if (!fullPath.startsWith(basePath)) throw unroutable(fullPath);
      if (!match) {
        throw new FakeApiError(400, [
          { code: 6003, message: 'Invalid request headers' },
          { code: 6111, message: 'Invalid format for Authorization header' },
        ]);
      }
      const token = tokens.find((t) => t.value === match[1]);
      if (!token) throw new FakeApiError(401, [{ code: 1000, message: 'Invalid API Token' }]);
      if (options.rateLimit) {
        // Counted per user, whichever of the user's tokens is used; a user over the limit is blocked for blockMs.
        const user = token.user ?? '';
        const { requests, windowMs, blockMs = 300_000 } = options.rateLimit;
        const at = Date.now();
        const blocked = blockedUntil.get(user) ?? 0;
        const stamps = (windows.get(user) ?? []).filter((stamp) => stamp > at - windowMs);
        if (blocked <= at && stamps.length >= requests) blockedUntil.set(user, at + blockMs);
        const until = blockedUntil.get(user) ?? 0;
        if (until > at) {
          windows.set(user, stamps);
          throw new FakeApiError(429, [{ code: 10000, message: 'Rate limited. Please wait and consider throttling your request speed' }], {
            'retry-after': String(Math.max(1, Math.ceil((until - at) / 1000))),
          });
        }
        stamps.push(at);
        windows.set(user, stamps);
      }
      let found: { route: Route; params: Params } | undefined;
      let pathMatched = false;
      for (const route of routes) {
        const m = route.pattern.exec(path);
        if (!m) continue;
        pathMatched = true;
        if (route.method !== method) continue;
        found = { route, params: Object.fromEntries(route.keys.map((k, i) => [k, decodeURIComponent(m[i + 1]!)])) };
        break;
      }
      if (!found) {
        if (pathMatched) throw new FakeApiError(405, [{ code: 10405, message: `Method ${method} not allowed` }]);
        throw unroutable(path);
      }
      routeName = found.route.template;
      const fault = pending.find((f) => !f.route || routeName.includes(f.route));
      if (fault) {
        fault.left--;
        pending = pending.filter((f) => f.left > 0);
        if (fault.kind === '429') {
          throw new FakeApiError(429, [{ code: 10000, message: 'Rate limited. Please wait and consider throttling your request speed' }], {
            'retry-after': String(fault.retryAfter),
          });
        }
        if (fault.kind === 'api') throw new FakeApiError(fault.status, [{ code: fault.code!, message: fault.message! }]);
        throw new FakeApiError(fault.status, [{ code: 10001, message: 'service temporarily unavailable' }]);
      }
      let body: unknown;
      if (chunks.length) {
        const text = Buffer.concat(chunks).toString('utf8');
        try {
          body = JSON.parse(text);
        } catch {
          throw badRequest(6007, 'Malformed JSON in request body');
        }
      }
      const out = found.route.handler({ method, path, query: url.searchParams, params: found.params, body, token });
      status = out.status ?? 200;
      send(res, status, { success: true, errors: [], messages: [], result: out.result, ...(out.resultInfo ? { result_info: out.resultInfo } : {}) });
    } catch (err) {
      const e = err instanceof FakeApiError ? err : new FakeApiError(500, [{ code: 10000, message: `internal error: ${(err as Error).message}` }]);
      status = e.status;
      send(res, status, failure(e), e.headers);
    } finally {
      log.push({ method, path, route: routeName, query: url.search, status, at: Date.now() });
    }
  };

  const server = createServer((req, res) => void handle(req, res));
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const zoneByName = (name: string): FakeZone => {
    const zone = [...state.zones.values()].find((z) => z.name === name.toLowerCase());
    if (!zone) throw new Error(`fake Cloudflare: no zone ${name}`);
    return zone;
  };

  return {
    baseUrl: `http://127.0.0.1:${port}${basePath}`,
    requests: log,
    faults: {
      rateLimit(count, retryAfterSeconds = 1, route) {
        pending.push({ kind: '429', status: 429, retryAfter: retryAfterSeconds, route, left: count });
      },
      serverError(count, status = 500, route) {
        pending.push({ kind: '5xx', status, retryAfter: 0, route, left: count });
      },
      apiError(count, status, code, message, route) {
        pending.push({ kind: 'api', status, retryAfter: 0, route, left: count, code, message });
      },
      clear() {
        pending = [];
      },
    },
    clients(token, options = {}) {
      return createCloudflareClientFactory({
        config: parseConfig({ cloudflare: { apiBaseUrl: `http://127.0.0.1:${port}${basePath}` } }).cloudflare,
        logger: options.logger ?? pino({ level: 'silent' }),
        env: { CLOUDFLARE_API_TOKEN: token },
        ...(options.maxRetries === undefined ? {} : { maxRetries: options.maxRetries }),
      });
    },
    count(route) {
      if (route === undefined) return log.length;
      return log.filter((e) => (typeof route === 'string' ? e.route === route : route.test(e.route))).length;
    },
    resetLog() {
      log.length = 0;
    },
    addZone(name, o = {}) {
      const zone: FakeZone = {
        id: o.id ?? newId(),
        name: name.toLowerCase(),
        accountId: o.accountId ?? '0'.repeat(32),
        status: o.status ?? 'active',
        plan: o.plan ?? 'free',
        createdOn: now(),
      };
      state.zones.set(zone.id, zone);
      return { id: zone.id, name: zone.name };
    },
    addRecord(zoneName, input) {
      const zone = zoneByName(zoneName);
      const records = zoneRecords(zone);
      const record = buildRecord(input, zone);
      checkConflicts(record, records.values());
      records.set(record.id, record);
      return { ...record };
    },
    records(zoneName) {
      return [...zoneRecords(zoneByName(zoneName)).values()].map((r) => ({ ...r })).sort((a, b) => a.name.localeCompare(b.name) || a.type.localeCompare(b.type));
    },
    editRecord(zoneName, id, patch) {
      const zone = zoneByName(zoneName);
      const records = zoneRecords(zone);
      const record = buildRecord(patch, zone, records.get(id));
      records.set(id, record);
      return { ...record };
    },
    deleteRecord(zoneName, id) {
      zoneRecords(zoneByName(zoneName)).delete(id);
    },
    tunnels(accountId) {
      return [...state.tunnels.values()].filter((t) => t.accountId === accountId).map((t) => ({ ...t }));
    },
    addTunnel(accountId, name, o = {}) {
      return createTunnel(accountId, { name, config_src: o.configSrc ?? 'local', ...(o.secret ? { tunnel_secret: o.secret.toString('base64') } : {}) });
    },
    connectTunnel(tunnelId, connectors) {
      const t = state.tunnels.get(tunnelId);
      if (!t) throw new Error(`fake Cloudflare: no tunnel ${tunnelId}`);
      t.connectors = connectors;
      t.connections = t.deletedAt ? 0 : connectors;
    },
    rotateTunnelSecret(tunnelId) {
      const t = state.tunnels.get(tunnelId);
      if (!t) throw new Error(`fake Cloudflare: no tunnel ${tunnelId}`);
      t.secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32)));
      return Buffer.from(t.secret);
    },
    routedTunnel(host) {
      const name = host.toLowerCase();
      for (const zone of state.zones.values()) {
        if (name !== zone.name && !name.endsWith(`.${zone.name}`)) continue;
        const cname = [...zoneRecords(zone).values()].find((r) => r.name === name && r.type === 'CNAME' && r.proxied);
        const id = /^([0-9a-f-]{36})\.cfargotunnel\.com$/.exec(cname?.content ?? '')?.[1];
        const tunnel = id ? state.tunnels.get(id) : undefined;
        if (tunnel && !tunnel.deletedAt && tunnel.accountId === zone.accountId) return tunnel.id;
      }
      return undefined;
    },
    setPlan(zoneName, plan) {
      zoneByName(zoneName).plan = plan;
    },
    ruleset(zoneName, phase = 'http_request_firewall_custom') {
      const set = entrypoint(zoneByName(zoneName), phase);
      return set ? structuredClone(set) : undefined;
    },
    addRule(zoneName, rule, phase = 'http_request_firewall_custom') {
      const zone = zoneByName(zoneName);
      const set = entrypoint(zone, phase) ?? saveRuleset(zone, phase, { name: 'default', rules: [] });
      const built = buildRule(zone, phase, rule);
      const rules = [...set.rules, built];
      checkRefs(rules);
      checkRuleLimit(zone, phase, rules);
      set.rules = rules;
      set.version++;
      return { ...built };
    },
    close() {
      return new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}
