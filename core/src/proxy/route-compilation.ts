import { ErrorCode, WarrenError } from '../errors.js';
import type { Route, RouteChanges, RouteTable } from '../routes/types.js';
import type { CompiledRoute } from './compile.js';
import type { GenerationPools, HeldPool } from './pool-references.js';

/**
 * When a generation's routes compile: lazily, a request compiling its route on first use (memoized), and in the
 * background, {@link COMPILE_BATCH} routes per event-loop turn, so that a swap costs the same whatever the size of
 * the table and warnings and events that plugins raise in `bind` appear without a request. A generation that
 * shares its predecessor's plugin set takes over the predecessor's compiled routes and applies the table's route
 * changes (`RouteTable.routeChangesSince`), so a change costs — and re-binds — only the routes it touched.
 */

/** Routes compiled in the background per event-loop turn, so requests and I/O interleave with the compile. */
const COMPILE_BATCH = 256;

/**
 * The compiled routes of a generation's table and the pools they use, plus the routes not compiled yet. Handed
 * from a generation to its successor when both share one plugin set, so that a change costs what it touched:
 * the successor removes the routes the change removed and compiles the ones it added, and takes over the rest
 * without visiting them. Owned by one generation at a time. Invariant: `compiled` keys and `pending` are disjoint
 * and together are exactly the owner's table routes.
 */
class CompiledRoutes {
  /** Keyed by the Route object (identity hashing; ids are long concatenated strings). */
  readonly compiled = new Map<Route, CompiledRoute>();
  /** Pool key → the pool and how many routes in `compiled` use it. */
  readonly poolUsers = new Map<string, { readonly pool: HeldPool; routes: number }>();

  constructor(readonly pending: Set<Route>) {}

  add(route: Route, compiled: CompiledRoute, pools: ReadonlyMap<string, HeldPool>): void {
    this.compiled.set(route, compiled);
    this.pending.delete(route);
    for (const key of poolKeysOf(compiled)) {
      const users = this.poolUsers.get(key);
      if (users) users.routes++;
      else this.poolUsers.set(key, { pool: pools.get(key)!, routes: 1 });
    }
  }

  /** Applies a table change: forgets removed routes (and pools no route uses any more), queues added ones. */
  apply(changes: RouteChanges): void {
    for (const route of changes.removed) {
      this.pending.delete(route);
      const compiled = this.compiled.get(route);
      if (compiled === undefined) continue;
      this.compiled.delete(route);
      for (const key of poolKeysOf(compiled)) {
        const users = this.poolUsers.get(key)!;
        if (--users.routes === 0) this.poolUsers.delete(key);
      }
    }
    for (const route of changes.added) if (!this.compiled.has(route)) this.pending.add(route);
  }
}

/** The distinct pool keys a compiled route uses (its upgrade pools included). */
function poolKeysOf(compiled: CompiledRoute): readonly string[] {
  const upgrade = compiled.upgradePoolKeys;
  if (upgrade === undefined || upgrade === compiled.poolKeys || upgrade.length === 0) return compiled.poolKeys;
  return [...new Set([...compiled.poolKeys, ...upgrade])];
}

/** The compilation of one generation's table. */
export class RouteCompilation {
  /** Created on first use unless taken over from the predecessor. */
  #routes: CompiledRoutes | undefined;
  #cursor: Iterator<Route> | undefined;
  #complete = false;
  #stopped = false;
  #whenComplete: Array<() => void> = [];

  constructor(
    readonly table: RouteTable,
    /** Holds the pools of the compiled routes. */
    readonly pools: GenerationPools,
    readonly compile: (route: Route) => CompiledRoute,
    /** Called once when every route is compiled (not when stopped first). */
    readonly onComplete: () => void,
  ) {}

  /** Every route of the table pending, unless taken over. */
  get #own(): CompiledRoutes {
    return (this.#routes ??= new CompiledRoutes(new Set(this.table.routes)));
  }

  /** Routes compiled so far. */
  get compiledRoutes(): number {
    return this.#own.compiled.size;
  }

  /** The compiled routes by Route object (a live map: it grows while the compilation runs). */
  get compiledMap(): ReadonlyMap<Route, CompiledRoute> {
    return this.#own.compiled;
  }

  /** Routes not compiled yet. */
  get pendingRoutes(): number {
    return this.#own.pending.size;
  }

  /** True once every route of the table is compiled. */
  get complete(): boolean {
    return this.#complete;
  }

  /**
   * Takes over `predecessor`'s compiled routes (same plugin set; `changes` lead from its table to this one's),
   * leaving it none: call only when this generation replaces it, before it could compile anything itself. Takes a
   * reference on every pool the routes taken over use.
   */
  takeOver(predecessor: RouteCompilation, changes: RouteChanges): void {
    const routes = predecessor.#own;
    predecessor.#routes = new CompiledRoutes(new Set());
    predecessor.#cursor = undefined;
    routes.apply(changes);
    this.#routes = routes;
    this.#cursor = undefined;
    this.pools.holdAll(routes.poolUsers);
  }

  /** The compiled form of `route` (a route of this table), compiling it now if needed. */
  route(route: Route): CompiledRoute {
    const routes = this.#own;
    let compiled = routes.compiled.get(route);
    if (compiled) return compiled;
    if (this.#stopped) throw new WarrenError(ErrorCode.NoRoute, `generation ${this.table.generation} was replaced before route ${route.id} was compiled`);
    compiled = this.compile(route);
    routes.add(route, compiled, this.pools.held);
    return compiled;
  }

  /** Compiles the routes no request needed yet, a batch per event-loop turn, until done or stopped. */
  inBackground(): void {
    const step = (): void => {
      if (this.#stopped) return;
      const pending = this.#own.pending;
      // A Set iterator survives deletions, so each turn resumes where the last stopped.
      this.#cursor ??= pending.values();
      for (let n = 0; n < COMPILE_BATCH; n++) {
        const next = this.#cursor.next();
        if (next.done) break;
        this.route(next.value);
      }
      if (pending.size > 0) {
        setImmediate(step);
        return;
      }
      this.#cursor = undefined;
      this.#complete = true;
      this.onComplete();
      for (const resolve of this.#whenComplete.splice(0)) resolve();
    };
    setImmediate(step);
  }

  /** Resolves when every route is compiled, or when the compilation is stopped first. */
  whenComplete(): Promise<void> {
    if (this.#complete || this.#stopped) return Promise.resolve();
    return new Promise((resolve) => this.#whenComplete.push(resolve));
  }

  /**
   * Stops compiling (the generation was replaced). Exchanges in flight hold their compiled route; the table-sized
   * map is not needed any more (and may have been handed to the successor).
   */
  stop(): void {
    this.#stopped = true;
    this.#routes = new CompiledRoutes(new Set());
    this.#cursor = undefined;
    for (const resolve of this.#whenComplete.splice(0)) resolve();
  }
}
