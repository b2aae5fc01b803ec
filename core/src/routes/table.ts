import { requestHost } from './hosts.js';
import { edgeRequestPort, listenerPicked } from './listener-scope.js';
import { prefixMatches, requestPath, type MatchKind } from './paths.js';
import { LayeredMap } from './layered-map.js';
import { compileConditions, conditionsHold, conditionsKey, RequestView, type CompiledConditions } from './conditions.js';
import type { Diagnostic, IngressRef, ListenerScope, RequestFacts, Route, RouteChanges, RouteTable } from './types.js';

/**
 * Lookup structures of a route table. Everything here is immutable once constructed.
 *
 * Per host (exact, wildcard parent, or hostless) a {@link PathIndex} holds Exact paths and prefixes, each as a
 * short list (prefixes sorted longest first) or, when there are many, in a Map (prefixes probed once per path
 * element). The per-host indexes sit in {@link LayeredMap}s shared between generations, and the table's lists
 * (`routes`, `diagnostics`, `hosts`, `ownedIngresses`) are computed on first use from per-key parts, so an
 * incremental build costs what changed, not the size of the cluster.
 */

/** Lists up to this length are scanned; longer ones become Maps (prefixes are then probed per path element). */
const SMALL_LIST_LIMIT = 8;

/**
 * The Gateway whose own tunnel delivered a request, and which of its listeners the request reaches there: routes
 * are matched only among that Gateway's, and only among those attached to that listener (see {@link ListenerScope}).
 */
export class Entrance {
  readonly gateway: string;
  readonly #host: string;
  readonly #authority: string;
  readonly #request: RequestFacts | undefined;
  #port: number | undefined;

  /** `host` as matched (lower-case, no port); `authority` as sent, for its port. */
  constructor(gateway: string, host: string, authority: string, request: RequestFacts | undefined) {
    this.gateway = gateway;
    this.#host = host;
    this.#authority = authority;
    this.#request = request;
  }

  /** True when one of `scopes` is the listener the Gateway picks for this request. */
  picks(scopes: readonly ListenerScope[]): boolean {
    this.#port ??= edgeRequestPort(this.#authority, this.#request);
    return listenerPicked(scopes, this.#host, this.#port);
  }
}

/** One entry of a {@link PathIndex}: `kind` exact (`key` is the path) or prefix (`key` is the path without trailing slash, `''` for `/`). */
export interface PathEntry {
  readonly kind: MatchKind;
  readonly key: string;
  readonly route: Route;
}

/**
 * Paths of one host. When no route has conditions or weights and none is a Gateway API route (Ingress only), each (kind, key) holds one route and
 * a lookup is a plain search. Otherwise each (kind, key) holds a {@link Slot} of alternatives tried in order, and a
 * request that satisfies none of them goes on to the next shorter prefix.
 */
export class PathIndex {
  /**
   * True when a route here is a Gateway API route: as a wildcard (`*.example.com`) it covers hosts of any depth
   * below its parent, where an Ingress wildcard covers exactly one label.
   */
  readonly coversDeeper: boolean;
  /** True when the values are {@link Slot}s rather than routes. */
  readonly #slots: boolean;
  readonly #exactKeys: readonly string[] | undefined;
  readonly #exactValues: readonly (Route | Slot)[] | undefined;
  readonly #exactMap: Map<string, Route | Slot> | undefined;
  readonly #prefixKeys: readonly string[] | undefined;
  readonly #prefixValues: readonly (Route | Slot)[] | undefined;
  readonly #prefixMap: Map<string, Route | Slot> | undefined;

  /**
   * `entries` are the winning routes of one host. Routes sharing a (kind, key) must come in precedence order
   * (see `routes/build.ts`); without conditions or weights, (kind, key) pairs are unique. `random` picks among
   * weighted routes (tests pass a seeded one).
   */
  constructor(entries: readonly PathEntry[], random: () => number = Math.random) {
    // Gateway routes always take the slot path: a wildcard index must be able to skip Ingress routes when asked
    // for a deeper host (see matchDeep).
    this.#slots = entries.some((e) => e.route.conditions !== undefined || e.route.weight !== undefined || e.route.ingress.kind !== undefined);
    this.coversDeeper = entries.some((e) => coversDeeper(e.route));
    let exact: Array<readonly [string, Route | Slot]>;
    let prefixes: Array<readonly [string, Route | Slot]>;
    if (this.#slots) {
      const grouped = new Map<string, { kind: MatchKind; key: string; routes: Route[] }>();
      for (const e of entries) {
        const slot = `${e.kind}\u0000${e.key}`;
        let group = grouped.get(slot);
        if (!group) grouped.set(slot, (group = { kind: e.kind, key: e.key, routes: [] }));
        group.routes.push(e.route);
      }
      const all = [...grouped.values()].map((g) => ({ kind: g.kind, key: g.key, value: new Slot(g.routes, random) }));
      exact = all.filter((e) => e.kind === 'exact').map((e) => [e.key, e.value] as const);
      prefixes = all.filter((e) => e.kind !== 'exact').map((e) => [e.key, e.value] as const);
    } else {
      exact = entries.filter((e) => e.kind === 'exact').map((e) => [e.key, e.route] as const);
      prefixes = entries.filter((e) => e.kind !== 'exact').map((e) => [e.key, e.route] as const);
    }
    if (exact.length > SMALL_LIST_LIMIT) {
      this.#exactMap = new Map(exact);
    } else if (exact.length > 0) {
      this.#exactKeys = exact.map((e) => e[0]);
      this.#exactValues = exact.map((e) => e[1]);
    }
    if (prefixes.length > SMALL_LIST_LIMIT) {
      this.#prefixMap = new Map(prefixes);
    } else if (prefixes.length > 0) {
      const sorted = prefixes.sort((a, b) => b[0].length - a[0].length);
      this.#prefixKeys = sorted.map((e) => e[0]);
      this.#prefixValues = sorted.map((e) => e[1]);
    }
    Object.freeze(this);
  }

  /**
   * The best route for a request path (query already stripped): an Exact match, else the longest prefix; with
   * conditions, the first alternative the request satisfies, trying Exact, then ever shorter prefixes. Only
   * routes of the `entrance` Gateway take part (see {@link RouteTable.match}).
   */
  match(path: string, request?: RequestFacts, entrance?: Entrance): Route | undefined {
    if (this.#slots) return this.#matchSlots(path, new RequestView(request), entrance);
    // Without slots every route here is an Ingress route: none is served through a Gateway's own tunnel.
    if (entrance !== undefined) return undefined;
    const exactKeys = this.#exactKeys;
    if (exactKeys !== undefined) {
      for (let i = 0; i < exactKeys.length; i++) if (exactKeys[i] === path) return this.#exactValues![i] as Route;
    } else if (this.#exactMap !== undefined) {
      const hit = this.#exactMap.get(path);
      if (hit !== undefined) return hit as Route;
    }
    const keys = this.#prefixKeys;
    if (keys !== undefined) {
      for (let i = 0; i < keys.length; i++) if (prefixMatches(path, keys[i]!)) return this.#prefixValues![i] as Route;
      return undefined;
    }
    const map = this.#prefixMap;
    if (map === undefined) return undefined;
    // Probe the path itself, then the path cut before each "/" from the right, down to "" (the "/" rule).
    let end = path.length;
    for (;;) {
      const hit = map.get(end === path.length ? path : path.slice(0, end));
      if (hit !== undefined) return hit as Route;
      if (end === 0) return undefined;
      end = path.lastIndexOf('/', end - 1);
      if (end < 0) return undefined;
    }
  }

  /**
   * {@link match} for a host more than one label below this wildcard index's parent: only routes whose wildcards
   * cover any depth (Gateway API) may answer.
   */
  matchDeep(path: string, request?: RequestFacts, entrance?: Entrance): Route | undefined {
    return this.coversDeeper ? this.#matchSlots(path, new RequestView(request), entrance, true) : undefined;
  }

  /** {@link match} over slots: each matching key in turn, until an alternative accepts the request. */
  #matchSlots(path: string, view: RequestView, entrance: Entrance | undefined, deepOnly = false): Route | undefined {
    const exactKeys = this.#exactKeys;
    let slot: Slot | undefined;
    if (exactKeys !== undefined) {
      for (let i = 0; i < exactKeys.length; i++) {
        if (exactKeys[i] === path) {
          slot = this.#exactValues![i] as Slot;
          break;
        }
      }
    } else if (this.#exactMap !== undefined) {
      slot = this.#exactMap.get(path) as Slot | undefined;
    }
    const exactHit = slot?.pick(view, entrance, deepOnly);
    if (exactHit !== undefined) return exactHit;
    const keys = this.#prefixKeys;
    if (keys !== undefined) {
      for (let i = 0; i < keys.length; i++) {
        if (!prefixMatches(path, keys[i]!)) continue;
        const hit = (this.#prefixValues![i] as Slot).pick(view, entrance, deepOnly);
        if (hit !== undefined) return hit;
      }
      return undefined;
    }
    const map = this.#prefixMap;
    if (map === undefined) return undefined;
    let end = path.length;
    for (;;) {
      const hit = (map.get(end === path.length ? path : path.slice(0, end)) as Slot | undefined)?.pick(view, entrance, deepOnly);
      if (hit !== undefined) return hit;
      if (end === 0) return undefined;
      end = path.lastIndexOf('/', end - 1);
      if (end < 0) return undefined;
    }
  }
}

/**
 * The routes of one host and path key, as alternatives in precedence order. Routes of one weighted group with the
 * same conditions form one alternative, which picks one of them per request in proportion to the weights.
 */
class Slot {
  readonly #choices: readonly Choice[];

  constructor(routes: readonly Route[], random: () => number) {
    const choices: Choice[] = [];
    const groups = new Map<string, Route[]>();
    for (const route of routes) {
      const group = route.weight?.group;
      if (group === undefined) {
        choices.push(new Choice([route], random));
        continue;
      }
      // Members of a group need not be adjacent: they join the alternative of the first one.
      const id = `${group}\u0000${conditionsKey(route.conditions)}\u0000${route.gateway ?? ''}\u0000${listenersKey(route)}`;
      const members = groups.get(id);
      if (members) {
        members.push(route);
        continue;
      }
      const list = [route];
      groups.set(id, list);
      choices.push(new Choice(list, random));
    }
    for (const c of choices) c.seal();
    this.#choices = choices;
    Object.freeze(this);
  }

  /** The route of the first alternative of the `entrance` Gateway (and listener) whose conditions the request satisfies. */
  pick(view: RequestView, entrance: Entrance | undefined, deepOnly = false): Route | undefined {
    for (const c of this.#choices) {
      if (c.conditions === null || c.gateway !== entrance?.gateway || (deepOnly && !c.coversDeeper)) continue;
      if (c.listeners !== undefined && !entrance!.picks(c.listeners)) continue;
      if (c.conditions === undefined || conditionsHold(c.conditions, view)) return c.pick();
    }
    return undefined;
  }
}

/** One alternative: a route, or a weighted group of routes sharing conditions. */
class Choice {
  /** Undefined: no conditions; null: conditions that do not compile (never hold; the builder reports them). */
  readonly conditions: CompiledConditions | undefined | null;
  readonly #routes: Route[];
  readonly #random: () => number;
  /** Running sums of the weights (weighted groups only). */
  #cumulative: number[] | undefined;
  /** What a group whose weights are all 0 answers: unavailable (500). */
  #unavailable: Route | undefined;

  /** See {@link PathIndex.coversDeeper}. */
  readonly coversDeeper: boolean;
  /** The entrance whose exchanges may take this alternative ({@link Route.gateway}, shared by its routes). */
  readonly gateway: string | undefined;
  /** The listeners of {@link gateway} the alternative is attached through ({@link Route.listeners}, shared by its routes). */
  readonly listeners: readonly ListenerScope[] | undefined;

  constructor(routes: Route[], random: () => number) {
    this.#routes = routes;
    this.coversDeeper = coversDeeper(routes[0]!);
    this.gateway = routes[0]!.gateway;
    // Listener scoping applies within a Gateway's own tunnel only: without a Gateway there is no listener to pick.
    this.listeners = this.gateway === undefined ? undefined : routes[0]!.listeners;
    this.#random = random;
    const conditions = routes[0]!.conditions;
    if (conditions === undefined) this.conditions = undefined;
    else {
      const check = compileConditions(conditions);
      this.conditions = check.ok ? check.compiled : null;
    }
  }

  /** Called once all members joined. */
  seal(): void {
    if (this.#routes[0]!.weight === undefined) return;
    let total = 0;
    this.#cumulative = this.#routes.map((r) => (total += weightOf(r)));
    if (total === 0) this.#unavailable = unavailableRoute(this.#routes[0]!);
  }

  pick(): Route {
    const cumulative = this.#cumulative;
    if (cumulative === undefined) return this.#routes[0]!;
    if (this.#unavailable !== undefined) return this.#unavailable;
    const r = this.#random() * cumulative.at(-1)!;
    for (let i = 0; i < cumulative.length; i++) if (r < cumulative[i]!) return this.#routes[i]!;
    // random() is below 1, so only rounding lands here: the last route with a weight.
    for (let i = cumulative.length - 1; i >= 0; i--) if (weightOf(this.#routes[i]!) > 0) return this.#routes[i]!;
    return this.#routes[0]!;
  }
}

/** What tells routes attached through different listeners apart ({@link Route.listeners}); `''` when unscoped. */
export function listenersKey(route: Route): string {
  const scopes = route.listeners;
  return scopes === undefined ? '' : scopes.map((s) => s.name).join('\u0000');
}

/** Gateway API wildcards cover one or more labels; Ingress wildcards exactly one. */
function coversDeeper(route: Route): boolean {
  return route.ingress.kind !== undefined;
}

function weightOf(route: Route): number {
  const w = route.weight?.weight ?? 0;
  return Number.isFinite(w) && w > 0 ? w : 0;
}

/**
 * The route a weighted group whose weights are all 0 answers with: the group's id, no endpoints, and
 * `unresolved` with status 500 (the Gateway API's answer when no backend may receive the request). Not part of
 * the table's `routes`.
 */
function unavailableRoute(first: Route): Route {
  const group = first.weight!.group;
  return Object.freeze({
    ...first,
    id: group,
    weight: undefined,
    backend: Object.freeze({ ...first.backend, endpoints: Object.freeze([]) }),
    unresolved: Object.freeze({ reason: 'NoWeight', status: 500, message: `every backend of ${group} has weight 0` }),
  });
}

/** Everything {@link IndexedRouteTable} is made of; the builder hands over ownership (no later mutation). */
export interface RouteTableParts {
  readonly generation: number;
  /** Exact host → paths. */
  readonly exactHosts: LayeredMap<string, PathIndex>;
  /** Parent domain (`example.com` for `*.example.com`) → paths. */
  readonly wildcardHosts: LayeredMap<string, PathIndex>;
  /** Rules without host. */
  readonly hostless: PathIndex | undefined;
  /** Winning Ingress `spec.defaultBackend`, else the controller default backend. */
  readonly fallback: Route | undefined;
  /** Winning routes per host key (any key naming scheme); with `extraRoutes` they make `routes`. */
  readonly routesByKey: LayeredMap<string, readonly Route[]>;
  readonly extraRoutes: readonly Route[];
  /** Diagnostics in groups (per Ingress, per host, per Service); with `extraDiagnostics` they make `diagnostics`. */
  readonly diagnosticGroups: ReadonlyArray<LayeredMap<string, readonly Diagnostic[]>>;
  readonly extraDiagnostics: readonly Diagnostic[];
  readonly owned: LayeredMap<string, IngressRef>;
}

/**
 * The published, immutable table. `match` tries, in order: the exact host, the wildcard covering the host's
 * first label, Gateway API wildcards covering more labels (nearest parent first), rules without host, then the default backend. Within each, an Exact path beats any prefix and
 * the longest prefix wins; routes with conditions on the same path are tried in precedence order, and when the
 * request satisfies none of them the search goes on with the next shorter prefix. When a host has no matching
 * path the search goes on with the next level.
 */
export class IndexedRouteTable implements RouteTable {
  readonly generation: number;
  readonly #parts: RouteTableParts;
  #routes: readonly Route[] | undefined;
  #diagnostics: readonly Diagnostic[] | undefined;
  #owned: readonly IngressRef[] | undefined;
  #hosts: readonly string[] | undefined;

  constructor(parts: RouteTableParts) {
    this.generation = parts.generation;
    this.#parts = parts;
    Object.freeze(this);
  }

  get routes(): readonly Route[] {
    if (this.#routes === undefined) {
      const all: Route[] = [];
      for (const list of this.#parts.routesByKey.values()) for (const r of list) all.push(r);
      for (const r of this.#parts.extraRoutes) all.push(r);
      this.#routes = Object.freeze(all);
    }
    return this.#routes;
  }

  get diagnostics(): readonly Diagnostic[] {
    if (this.#diagnostics === undefined) {
      const all: Diagnostic[] = [];
      for (const group of this.#parts.diagnosticGroups) for (const list of group.values()) for (const d of list) all.push(d);
      for (const d of this.#parts.extraDiagnostics) all.push(d);
      this.#diagnostics = Object.freeze(all);
    }
    return this.#diagnostics;
  }

  get ownedIngresses(): readonly IngressRef[] {
    this.#owned ??= Object.freeze([...this.#parts.owned.values()]);
    return this.#owned;
  }

  ownedChangesSince(previous: RouteTable): ReadonlyMap<string, IngressRef | undefined> | undefined {
    if (!(previous instanceof IndexedRouteTable)) return undefined;
    const keys = this.#parts.owned.changedSince(previous.#parts.owned);
    if (keys === undefined) return undefined;
    const changes = new Map<string, IngressRef | undefined>();
    for (const key of keys) changes.set(key, this.#parts.owned.get(key));
    return changes;
  }

  routeChangesSince(previous: RouteTable): RouteChanges | undefined {
    if (!(previous instanceof IndexedRouteTable)) return undefined;
    const now = this.#parts;
    const before = previous.#parts;
    const keys = now.routesByKey.changedSince(before.routesByKey);
    if (keys === undefined) return undefined;
    const added = new Set<Route>();
    const removed = new Set<Route>();
    const compare = (older: readonly Route[], newer: readonly Route[]): void => {
      for (const r of newer) if (!older.includes(r)) added.add(r);
      for (const r of older) if (!newer.includes(r)) removed.add(r);
    };
    for (const key of keys) compare(before.routesByKey.get(key) ?? NO_ROUTES, now.routesByKey.get(key) ?? NO_ROUTES);
    if (now.extraRoutes !== before.extraRoutes) compare(before.extraRoutes, now.extraRoutes);
    // A route object that moved between keys is in neither.
    for (const r of added) if (removed.delete(r)) added.delete(r);
    return { added: [...added], removed: [...removed] };
  }

  get hosts(): readonly string[] {
    if (this.#hosts === undefined) {
      const hosts = [...this.#parts.exactHosts.keys()];
      for (const parent of this.#parts.wildcardHosts.keys()) hosts.push(`*.${parent}`);
      this.#hosts = Object.freeze(hosts);
    }
    return this.#hosts;
  }

  match(host: string, path: string, request?: RequestFacts, gateway?: string): Route | undefined {
    const parts = this.#parts;
    const h = requestHost(host);
    const p = requestPath(path);
    const entrance = gateway === undefined ? undefined : new Entrance(gateway, h, host, request);
    const exact = parts.exactHosts.get(h);
    if (exact !== undefined) {
      const hit = exact.match(p, request, entrance);
      if (hit !== undefined) return hit;
    }
    if (parts.wildcardHosts.size > 0) {
      const dot = h.indexOf('.');
      const wildcard = dot > 0 ? parts.wildcardHosts.get(h.slice(dot + 1)) : undefined;
      if (wildcard !== undefined) {
        const hit = wildcard.match(p, request, entrance);
        if (hit !== undefined) return hit;
      }
      // Deeper hosts: `x.y.example.com` is covered by a Gateway API `*.example.com` (nearest parent first).
      for (let at = dot > 0 ? h.indexOf('.', dot + 1) : -1; at > 0; at = h.indexOf('.', at + 1)) {
        const hit = parts.wildcardHosts.get(h.slice(at + 1))?.matchDeep(p, request, entrance);
        if (hit !== undefined) return hit;
      }
    }
    if (parts.hostless !== undefined) {
      const hit = parts.hostless.match(p, request, entrance);
      if (hit !== undefined) return hit;
    }
    // Default backends are Ingress (and controller) settings: never served through a Gateway's own tunnel.
    return gateway === undefined ? parts.fallback : undefined;
  }
}

const NO_ROUTES: readonly Route[] = Object.freeze([]);

/** A table with no routes (generation 0 unless given): what readers see before the first build. */
export function emptyRouteTable(generation = 0): RouteTable {
  const none = LayeredMap.empty<string, never>();
  return new IndexedRouteTable({
    generation,
    exactHosts: none,
    wildcardHosts: none,
    hostless: undefined,
    fallback: undefined,
    routesByKey: none,
    extraRoutes: [],
    diagnosticGroups: [],
    extraDiagnostics: [],
    owned: none,
  });
}

/**
 * The route objects `next` has and `previous` had not, and the reverse: from the table's own change record when
 * it has one (in proportion to the change), else by comparing both route lists in full.
 */
export function routeChangesBetween(previous: RouteTable, next: RouteTable): RouteChanges {
  const changes = next.routeChangesSince?.(previous);
  if (changes !== undefined) return changes;
  const was = new Set(previous.routes);
  const now = new Set(next.routes);
  return { added: next.routes.filter((r) => !was.has(r)), removed: previous.routes.filter((r) => !now.has(r)) };
}
