import { setTimeout as sleep } from 'node:timers/promises';

/** Options of a {@link RequestBudget}; the controller's come from the config's `cloudflare.rateLimit`. */
export interface RequestBudgetOptions {
  /** Most requests in any window of `windowMs`. */
  readonly requests: number;
  readonly windowMs: number;
  /** Requests that may go back to back; capped at half of `requests` so that pacing always refills. */
  readonly burst: number;
  /** Clock, for tests. */
  readonly now?: () => number;
}

/**
 * A token bucket shared by every Cloudflare API request of one replica, including the SDK's own retries.
 *
 * The bucket holds at most `burst` tokens and refills at `(requests - burst) / window`, so no window of that
 * length ever sees more than `requests` requests. Waiters are served first come, first served. A 429 from the
 * API pauses the whole bucket (`pauseFor`) so that every caller backs off together, not just the one that hit it.
 */
export class RequestBudget {
  readonly #capacity: number;
  readonly #ratePerMs: number;
  readonly #now: () => number;
  #tokens: number;
  #last: number;
  #pausedUntil = 0;
  #tail: Promise<void> = Promise.resolve();
  #granted = 0;

  constructor(options: RequestBudgetOptions) {
    this.#now = options.now ?? Date.now;
    this.#capacity = Math.max(1, Math.min(options.burst, Math.floor(options.requests / 2)));
    this.#ratePerMs = (options.requests - this.#capacity) / options.windowMs;
    this.#tokens = this.#capacity;
    this.#last = this.#now();
  }

  /** Requests granted so far. */
  get granted(): number {
    return this.#granted;
  }

  /** Resolves when the caller may send one request; rejects only when `signal` aborts. */
  acquire(signal?: AbortSignal): Promise<void> {
    const turn = this.#tail.then(() => this.#take(signal));
    this.#tail = turn.catch(() => undefined);
    return turn;
  }

  /** Holds every request back for at least `ms` (e.g. the `retry-after` of a 429). */
  pauseFor(ms: number): void {
    if (!(ms > 0)) return;
    this.#pausedUntil = Math.max(this.#pausedUntil, this.#now() + ms);
  }

  async #take(signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      signal?.throwIfAborted();
      const now = this.#now();
      this.#tokens = Math.min(this.#capacity, this.#tokens + (now - this.#last) * this.#ratePerMs);
      this.#last = now;
      const pause = this.#pausedUntil - now;
      const wait = pause > 0 ? pause : this.#tokens >= 1 ? 0 : (1 - this.#tokens) / this.#ratePerMs;
      if (wait <= 0) {
        this.#tokens -= 1;
        this.#granted++;
        return;
      }
      await sleep(Math.ceil(wait), undefined, signal ? { signal } : undefined);
    }
  }
}
