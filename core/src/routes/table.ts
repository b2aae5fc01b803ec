import { requestHost } from './hosts.js';
import { prefixMatches, requestPath } from './paths.js';
import type { Diagnostic, IngressRef, Route, RouteTable } from './types.js';

/**
 * Lookup structures of a route table. Everything here is immutable once constructed.
 *
 * Per host (exact, wildcard parent, or hostless) a {@link PathIndex} holds Exact paths in a Map and prefixes
 * either as a short list sorted longest first or, when there are many, in a Map probed once per path element.
 */

/** Prefix counts up to this are scanned as a list; above it they are probed per path element. */
const PREFIX_LIST_LIMIT = 8;

export class PathIndex {
  readonly #exact: Map<string, Route> | undefined;
  readonly #prefixKeys: readonly string[] | undefined;
  readonly #prefixRoutes: readonly Route[] | undefined;
  readonly #prefixMap: Map<string, Route> | undefined;

  /** `prefixes` holds `[key, route]` pairs with unique keys (prefix without trailing slash, `''` for `/`). */
  constructor(exact: ReadonlyArray<readonly [string, Route]>, prefixes: ReadonlyArray<readonly [string, Route]>) {
    this.#exact = exact.length > 0 ? new Map(exact) : undefined;
    if (prefixes.length > PREFIX_LIST_LIMIT) {
      this.#prefixMap = new Map(prefixes);
    } else if (prefixes.length > 0) {
      const sorted = [...prefixes].sort((a, b) => b[0].length - a[0].length);
      this.#prefixKeys = sorted.map((p) => p[0]);
      this.#prefixRoutes = sorted.map((p) => p[1]);
    }
    Object.freeze(this);
  }

  /** The best route for a request path (query already stripped): an Exact match, else the longest prefix. */
  match(path: string): Route | undefined {
    if (this.#exact !== undefined) {
      const hit = this.#exact.get(path);
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

/** Everything {@link CompiledRouteTable} is made of; the builder hands over ownership (no later mutation). */
export interface RouteTableParts {
  readonly generation: number;
  readonly routes: readonly Route[];
  readonly diagnostics: readonly Diagnostic[];
  readonly ownedIngresses: readonly IngressRef[];
  readonly hosts: readonly string[];
  /** Exact host → paths. */
  readonly exactHosts: ReadonlyMap<string, PathIndex>;
  /** Parent domain (`example.com` for `*.example.com`) → paths. */
  readonly wildcardHosts: ReadonlyMap<string, PathIndex>;
  /** Rules without host. */
  readonly hostless: PathIndex | undefined;
  /** Winning Ingress `spec.defaultBackend`, else the controller default backend. */
  readonly fallback: Route | undefined;
}

/**
 * The published, immutable table. `match` tries, in order: the exact host, the wildcard covering the host's
 * first label, rules without host, then the default backend. Within each, an Exact path beats any prefix and
 * the longest prefix wins; when a host has no matching path the search goes on with the next level.
 */
export class CompiledRouteTable implements RouteTable {
  readonly generation: number;
  readonly routes: readonly Route[];
  readonly diagnostics: readonly Diagnostic[];
  readonly ownedIngresses: readonly IngressRef[];
  readonly hosts: readonly string[];
  readonly #exactHosts: ReadonlyMap<string, PathIndex>;
  readonly #wildcardHosts: ReadonlyMap<string, PathIndex>;
  readonly #hostless: PathIndex | undefined;
  readonly #fallback: Route | undefined;

  constructor(parts: RouteTableParts) {
    this.generation = parts.generation;
    this.routes = Object.freeze(parts.routes);
    this.diagnostics = Object.freeze(parts.diagnostics);
    this.ownedIngresses = Object.freeze(parts.ownedIngresses);
    this.hosts = Object.freeze(parts.hosts);
    this.#exactHosts = parts.exactHosts;
    this.#wildcardHosts = parts.wildcardHosts;
    this.#hostless = parts.hostless;
    this.#fallback = parts.fallback;
    Object.freeze(this);
  }

  match(host: string, path: string): Route | undefined {
    const h = requestHost(host);
    const p = requestPath(path);
    const exact = this.#exactHosts.get(h);
    if (exact !== undefined) {
      const hit = exact.match(p);
      if (hit !== undefined) return hit;
    }
    const dot = h.indexOf('.');
    if (dot > 0 && this.#wildcardHosts.size > 0) {
      const wildcard = this.#wildcardHosts.get(h.slice(dot + 1));
      if (wildcard !== undefined) {
        const hit = wildcard.match(p);
        if (hit !== undefined) return hit;
      }
    }
    if (this.#hostless !== undefined) {
      const hit = this.#hostless.match(p);
      if (hit !== undefined) return hit;
    }
    return this.#fallback;
  }
}

const EMPTY_MAP: ReadonlyMap<string, PathIndex> = new Map();

/** A table with no routes (generation 0 unless given): what readers see before the first build. */
export function emptyRouteTable(generation = 0): RouteTable {
  return new CompiledRouteTable({
    generation,
    routes: [],
    diagnostics: [],
    ownedIngresses: [],
    hosts: [],
    exactHosts: EMPTY_MAP,
    wildcardHosts: EMPTY_MAP,
    hostless: undefined,
    fallback: undefined,
  });
}
