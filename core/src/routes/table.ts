import { requestHost } from './hosts.js';
import { prefixMatches, requestPath, type MatchKind } from './paths.js';
import { LayeredMap } from './layered-map.js';
import type { Diagnostic, IngressRef, Route, RouteChanges, RouteTable } from './types.js';

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

export class PathIndex {
  readonly #exactKeys: readonly string[] | undefined;
  readonly #exactRoutes: readonly Route[] | undefined;
  readonly #exactMap: Map<string, Route> | undefined;
  readonly #prefixKeys: readonly string[] | undefined;
  readonly #prefixRoutes: readonly Route[] | undefined;
  readonly #prefixMap: Map<string, Route> | undefined;

  /**
   * `entries` are the winning paths of one host: `kind` exact (`key` is the path) or prefix (`key` is the path
   * without trailing slash, `''` for `/`); (kind, key) pairs are unique.
   */
  constructor(entries: ReadonlyArray<{ readonly kind: MatchKind; readonly key: string; readonly route: Route }>) {
    const exact = entries.filter((e) => e.kind === 'exact');
    const prefixes = entries.filter((e) => e.kind !== 'exact');
    if (exact.length > SMALL_LIST_LIMIT) {
      this.#exactMap = new Map(exact.map((e) => [e.key, e.route]));
    } else if (exact.length > 0) {
      this.#exactKeys = exact.map((e) => e.key);
      this.#exactRoutes = exact.map((e) => e.route);
    }
    if (prefixes.length > SMALL_LIST_LIMIT) {
      this.#prefixMap = new Map(prefixes.map((e) => [e.key, e.route]));
    } else if (prefixes.length > 0) {
      const sorted = prefixes.sort((a, b) => b.key.length - a.key.length);
      this.#prefixKeys = sorted.map((e) => e.key);
      this.#prefixRoutes = sorted.map((e) => e.route);
    }
    Object.freeze(this);
  }

  /** The best route for a request path (query already stripped): an Exact match, else the longest prefix. */
  match(path: string): Route | undefined {
    const exactKeys = this.#exactKeys;
    if (exactKeys !== undefined) {
      for (let i = 0; i < exactKeys.length; i++) if (exactKeys[i] === path) return this.#exactRoutes![i];
    } else if (this.#exactMap !== undefined) {
      const hit = this.#exactMap.get(path);
      if (hit !== undefined) return hit;
    }
    const keys = this.#prefixKeys;
    if (keys !== undefined) {
      for (let i = 0; i < keys.length; i++) if (prefixMatches(path, keys[i]!)) return this.#prefixRoutes![i];
      return undefined;
    }
    const map = this.#prefixMap;
    if (map === undefined) return undefined;
    // Probe the path itself, then the path cut before each "/" from the right, down to "" (the "/" rule).
    let end = path.length;
    for (;;) {
      const hit = map.get(end === path.length ? path : path.slice(0, end));
      if (hit !== undefined) return hit;
      if (end === 0) return undefined;
      end = path.lastIndexOf('/', end - 1);
      if (end < 0) return undefined;
    }
  }
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
 * first label, rules without host, then the default backend. Within each, an Exact path beats any prefix and
 * the longest prefix wins; when a host has no matching path the search goes on with the next level.
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

  match(host: string, path: string): Route | undefined {
    const parts = this.#parts;
    const h = requestHost(host);
    const p = requestPath(path);
    const exact = parts.exactHosts.get(h);
    if (exact !== undefined) {
      const hit = exact.match(p);
      if (hit !== undefined) return hit;
    }
    if (parts.wildcardHosts.size > 0) {
      const dot = h.indexOf('.');
      const wildcard = dot > 0 ? parts.wildcardHosts.get(h.slice(dot + 1)) : undefined;
      if (wildcard !== undefined) {
        const hit = wildcard.match(p);
        if (hit !== undefined) return hit;
      }
    }
    if (parts.hostless !== undefined) {
      const hit = parts.hostless.match(p);
      if (hit !== undefined) return hit;
    }
    return parts.fallback;
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
