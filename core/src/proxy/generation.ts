import type { Route, RouteTable } from '../routes/types.js';
import type { CompiledRoute } from './compile.js';
import type { PluginSet } from './plugin-set.js';
import type { GenerationPools } from './pool-references.js';
import type { RouteCompilation } from './route-compilation.js';

/**
 * A retired generation whose exchanges have not all ended after this long is released anyway: long-lived
 * exchanges (WebSocket sessions, event streams, gRPC streams) must not pin every generation built during their
 * life. They keep running: each holds its compiled route, an upgraded session no longer uses a pool, and pools
 * close gracefully (requests in flight finish first) once no live generation uses them.
 */
export const GENERATION_DRAIN_LIMIT_MS = 5 * 60_000;

/**
 * One route-table generation: its table, plugin set, pool references and compilation, and the exchanges it
 * serves. An exchange holds the generation it started on until it ends; a retired generation is released (its
 * pool references dropped, its plugin set's use ended) once its last exchange ended, or after the drain limit.
 */
export class Generation {
  inflight = 0;
  retired = false;
  #released: Promise<void> | undefined;
  #onDrained: (() => void) | undefined;
  #limit: NodeJS.Timeout | undefined;

  constructor(
    readonly table: RouteTable,
    readonly plugins: PluginSet,
    readonly pools: GenerationPools,
    readonly compilation: RouteCompilation,
    readonly release: () => Promise<void>,
  ) {}

  /** The compiled form of `route` (a route of this generation's table), compiling it now if needed. */
  route(route: Route): CompiledRoute {
    return this.compilation.route(route);
  }

  enter(): void {
    this.inflight++;
  }

  leave(): void {
    if (--this.inflight === 0 && this.retired) void this.#releaseOnce();
  }

  /** Stops new exchanges (the caller swapped in another generation) and releases once drained. */
  retire(drainLimitMs: number): Promise<void> {
    this.retired = true;
    this.compilation.stop();
    if (this.inflight === 0) return this.#releaseOnce();
    this.#limit = setTimeout(() => void this.#releaseOnce(), drainLimitMs);
    this.#limit.unref();
    return new Promise((resolve) => (this.#onDrained = resolve));
  }

  #releaseOnce(): Promise<void> {
    clearTimeout(this.#limit);
    this.#released ??= this.release().finally(() => this.#onDrained?.());
    return this.#released;
  }
}
