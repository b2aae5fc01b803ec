import type { Logger } from 'pino';
import { ErrorCode, WarrenError } from '../errors.js';
import { routeChangesBetween } from '../routes/table.js';
import type { RouteTable } from '../routes/types.js';
import { GENERATION_DRAIN_LIMIT_MS, type Generation } from './generation.js';

/**
 * Which generation is live. Each generation swaps in with one assignment; builds are coalesced (only the newest
 * wanted table is built); a failed build leaves the previous generation serving. The generation swapped in takes
 * over what it can from its predecessor before the predecessor retires: its compiled routes when both share one
 * plugin set, and a reference on every pool the predecessor holds until it has compiled its own routes.
 */

export interface GenerationSwapOptions {
  /**
   * Builds a generation up to the point where it can serve. `predecessor` is the live generation whose plugin
   * set it may share (undefined: provision a new set).
   */
  readonly build: (table: RouteTable, predecessor: Generation | undefined) => Promise<Generation>;
  /** Called when a generation went live. */
  readonly onLive?: ((generation: Generation) => void) | undefined;
  readonly logger: Logger;
  /** How long a retired generation may wait for its exchanges (default {@link GENERATION_DRAIN_LIMIT_MS}). */
  readonly drainLimitMs?: number | undefined;
}

interface Waiter {
  resolve(): void;
  reject(err: unknown): void;
}

export class GenerationSwap {
  readonly #options: GenerationSwapOptions;
  readonly #drainLimitMs: number;
  readonly #retiring = new Set<Promise<void>>();
  #live: Generation | undefined;
  #wanted: { table: RouteTable; waiters: Waiter[]; freshPlugins: boolean } | undefined;
  #building: Promise<void> | undefined;
  #closed = false;

  constructor(options: GenerationSwapOptions) {
    this.#options = options;
    this.#drainLimitMs = options.drainLimitMs ?? GENERATION_DRAIN_LIMIT_MS;
  }

  /** The generation serving new exchanges. */
  get live(): Generation | undefined {
    return this.#live;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The table waiting to be built next, if any. */
  get wanted(): { readonly table: RouteTable } | undefined {
    return this.#wanted;
  }

  /** Generations not yet released (the live one included). */
  get alive(): number {
    return (this.#live ? 1 : 0) + this.#retiring.size;
  }

  /**
   * Builds `table` and makes it live. Calls made while a build runs coalesce: only the newest table is built,
   * and every caller's promise settles with that build. `freshPlugins` (sticky until that build) makes it
   * provision a new plugin set instead of sharing the live one's.
   */
  setTable(table: RouteTable, options: { readonly freshPlugins?: boolean } = {}): Promise<void> {
    if (this.#closed) return Promise.reject(new WarrenError(ErrorCode.ShuttingDown, 'the pipeline is closed'));
    return new Promise<void>((resolve, reject) => {
      const waiters = this.#wanted?.waiters ?? [];
      waiters.push({ resolve, reject });
      this.#wanted = { table, waiters, freshPlugins: (this.#wanted?.freshPlugins ?? false) || options.freshPlugins === true };
      this.#startBuilding();
    });
  }

  /** Stops swapping, retires the live generation and waits up to `graceMs` for every retired one to be released. */
  async close(graceMs: number): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#building?.catch(() => {});
    const live = this.#live;
    this.#live = undefined;
    if (live) this.#retire(live);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      Promise.allSettled([...this.#retiring]),
      new Promise((resolve) => {
        timer = setTimeout(resolve, graceMs);
        timer.unref();
      }),
    ]);
    clearTimeout(timer);
  }

  #startBuilding(): void {
    // A table wanted after the loop's last check but before this `finally` ran starts the next loop.
    this.#building ??= this.#buildLoop().finally(() => {
      this.#building = undefined;
      if (this.#wanted) this.#startBuilding();
    });
  }

  async #buildLoop(): Promise<void> {
    while (this.#wanted) {
      const { table, waiters, freshPlugins } = this.#wanted;
      this.#wanted = undefined;
      try {
        if (this.#closed) throw new WarrenError(ErrorCode.ShuttingDown, 'the pipeline is closed');
        const next = await this.#options.build(table, freshPlugins ? undefined : this.#live);
        if (this.#closed) {
          this.#retire(next);
          throw new WarrenError(ErrorCode.ShuttingDown, 'the pipeline is closed');
        }
        const previous = this.#live;
        if (previous) handOver(previous, next);
        this.#live = next;
        this.#options.onLive?.(next);
        if (previous) this.#retire(previous);
        next.compilation.inBackground();
        this.#options.logger.debug({ generation: table.generation, compiled: next.compilation.compiledRoutes }, 'route table live');
        for (const w of waiters) w.resolve();
      } catch (err) {
        for (const w of waiters) w.reject(err);
      }
    }
  }

  #retire(gen: Generation): void {
    const done = gen.retire(this.#drainLimitMs).finally(() => this.#retiring.delete(done));
    this.#retiring.add(done);
  }
}

/**
 * What `next` takes over from the generation it replaces: with the same plugin instances, the unchanged routes
 * keep their compiled form without being visited; and every pool `previous` holds stays open until `next` has
 * compiled its routes, so kept-alive connections survive the swap.
 */
function handOver(previous: Generation, next: Generation): void {
  if (previous.plugins === next.plugins) next.compilation.takeOver(previous.compilation, routeChangesBetween(previous.table, next.table));
  next.pools.carry(previous.pools);
}
