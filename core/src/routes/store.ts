import { PublishedValue, type Published } from '../state/published.js';
import { emptyRouteTable } from './table.js';
import type { RouteTable } from './types.js';

/** Called with each newly published table. Must be cheap and must not throw (errors are reported, not rethrown). */
export type RouteTableListener = (table: RouteTable) => void;

export interface WaitForOptions {
  /** Reject after this many milliseconds (default: wait forever). */
  readonly timeout?: number | undefined;
  readonly signal?: AbortSignal | undefined;
}

/**
 * The current route table and its changes. One writer (the reconcile loop) publishes; any number of readers
 * take `current` for the duration of a request (the swap is a single reference assignment, so a reader never
 * sees a half-built table) or follow changes through `subscribe` or async iteration.
 *
 * Registered under `TOKENS.RouteStore`.
 */
export class RouteStore implements Published<RouteTable> {
  readonly #table: PublishedValue<RouteTable>;

  /**
   * @param initial table readers see before the first publish (default: an empty table of generation 0)
   * @param onListenerError where listener exceptions go (default: `queueMicrotask` rethrow, i.e. unhandled)
   */
  constructor(initial: RouteTable = emptyRouteTable(), onListenerError?: (err: unknown) => void) {
    this.#table = new PublishedValue(initial, onListenerError ? { onListenerError } : {});
  }

  /** The table to use now. */
  get current(): RouteTable {
    return this.#table.current;
  }

  /**
   * Makes `table` current and tells every listener, synchronously, in subscription order. Tables must arrive
   * in increasing generation order; an older or equal generation is refused and `false` is returned.
   */
  publish(table: RouteTable): boolean {
    const current = this.#table.current;
    if (table === current) return true;
    if (table.generation <= current.generation) return false;
    return this.#table.publish(table);
  }

  /**
   * Resolves true once a built table is current ({@link isBuiltTable}), false if `signal` aborts first. Leader-only
   * work that acts on the routes (status, finalizers, control plugins) waits for it: the placeholder would make
   * every Ingress look not Warren's.
   */
  async whenBuilt(signal: AbortSignal): Promise<boolean> {
    if (isBuiltTable(this.current)) return true;
    return this.waitFor(isBuiltTable, { signal }).then(
      () => true,
      () => false,
    );
  }

  /** Calls `listener` after every publish (not with the current table). Returns an unsubscribe function. */
  subscribe(listener: RouteTableListener): () => void {
    return this.#table.subscribe(listener);
  }

  /**
   * Yields the current table, then every newer one. A slow consumer skips intermediate generations and always
   * gets the latest (level-based, like a reconcile). Ends when `signal` aborts or the consumer stops iterating.
   */
  async *changes(signal?: AbortSignal): AsyncGenerator<RouteTable, void, undefined> {
    let last: RouteTable | undefined;
    let wake: (() => void) | undefined;
    const unsubscribe = this.subscribe(() => wake?.());
    const onAbort = () => wake?.();
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      while (!signal?.aborted) {
        const table = this.#table.current;
        if (table !== last) {
          last = table;
          yield table;
          continue;
        }
        await new Promise<void>((resolve) => {
          wake = resolve;
        });
        wake = undefined;
      }
    } finally {
      unsubscribe();
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Same as {@link changes} without a signal. */
  [Symbol.asyncIterator](): AsyncGenerator<RouteTable, void, undefined> {
    return this.changes();
  }

  /**
   * Resolves with the first table (current or future) for which `predicate` is true. Mostly for tests:
   * `await store.waitFor((t) => t.match('a.example', '/') !== undefined, { timeout: 5000 })`.
   */
  waitFor(predicate: (table: RouteTable) => boolean, options: WaitForOptions = {}): Promise<RouteTable> {
    return new Promise<RouteTable>((resolve, reject) => {
      const check = (table: RouteTable): boolean => {
        let ok: boolean;
        try {
          ok = predicate(table);
        } catch (err) {
          finish();
          reject(err);
          return true;
        }
        if (ok) {
          finish();
          resolve(table);
        }
        return ok;
      };
      const onAbort = () => {
        finish();
        reject(options.signal?.reason ?? new Error('waitFor aborted'));
      };
      const timer =
        options.timeout === undefined
          ? undefined
          : setTimeout(() => {
              finish();
              reject(new Error(`waitFor: no route table matched within ${options.timeout} ms (generation ${this.#table.current.generation})`));
            }, options.timeout);
      const unsubscribe = this.subscribe((t) => void check(t));
      const finish = () => {
        unsubscribe();
        if (timer) clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
      };
      if (options.signal?.aborted) return onAbort();
      options.signal?.addEventListener('abort', onAbort, { once: true });
      check(this.#table.current);
    });
  }
}

/** True for a table a build produced; false for the store's placeholder before the first publish (generation 0). */
export function isBuiltTable(table: RouteTable): boolean {
  return table.generation > 0;
}

/**
 * Wraps a listener so that it runs after the current publish has returned, once per burst, with the latest
 * table. For bookkeeping subscribers (status, finalizers) whose work must not delay the subscribers that make
 * a table serve (the proxy pipeline), and for which only the newest table matters.
 */
export function deferredListener(listener: RouteTableListener): RouteTableListener {
  let latest: RouteTable | undefined;
  return function deferred(table) {
    const scheduled = latest !== undefined;
    latest = table;
    if (scheduled) return;
    setImmediate(() => {
      const current = latest!;
      latest = undefined;
      listener(current);
    });
  };
}
