/**
 * Randomized exponential backoff between connection attempts: each wait increments `retries` up to
 * `maxRetries` and lasts a uniformly random time in [0, base × 2^retries). With base 1 s and 5 retries the
 * waits are up to 2, 4, 8, 16, 32, 32… s. `reset()` after a success starts over.
 */
export class Backoff {
  readonly baseMs: number;
  readonly maxRetries: number;
  #retries = 0;
  readonly #random: () => number;

  constructor(baseMs = 1000, maxRetries = 5, random: () => number = Math.random) {
    this.baseMs = baseMs;
    this.maxRetries = maxRetries;
    this.#random = random;
  }

  /** Retries consumed so far (sent to the edge as `numPreviousAttempts`). */
  get retries(): number {
    return this.#retries;
  }

  /** Upper bound of the next wait, without consuming it. */
  get nextCeilingMs(): number {
    return this.baseMs * 2 ** Math.min(this.#retries + 1, this.maxRetries);
  }

  /** Consumes one retry and returns how long to wait, at least `minimumMs` (the edge's retryAfter). */
  next(minimumMs = 0): number {
    if (this.#retries < this.maxRetries) this.#retries++;
    return Math.max(minimumMs, Math.floor(this.#random() * this.baseMs * 2 ** this.#retries));
  }

  reset(): void {
    this.#retries = 0;
  }
}

/** Resolves after `ms`, or early (without rejecting) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
