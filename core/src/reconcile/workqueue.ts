import type { Logger } from 'pino';
import { isWarrenError } from '../errors.js';
import type { ControlPlaneMetrics } from '../observability/metrics.js';
import { errorSummary } from '../observability/logger.js';

/** Reconciles one key. Reads the current state itself (level-based); throwing schedules a retry with backoff. */
export type ReconcileFn<K> = (key: K, signal: AbortSignal) => void | Promise<void>;

export interface WorkQueueOptions {
  /** Used in logs and metric labels (`routes`, `status`, …). */
  readonly name: string;
  /**
   * Minimum time between the starts of two reconciles of the same key (setting `kubernetes.resyncBurstWindow`).
   * A key that becomes dirty after a quiet spell runs at once; changes arriving within the window after a
   * reconcile started wait for the window's end and then run together, so a burst (a rollout touching many
   * EndpointSlices) becomes a few reconciles, never one per change. A throttle, not a debounce: isolated
   * changes pay no delay.
   */
  readonly coalesceMs?: number | undefined;
  /** First retry delay after a failure; doubles per consecutive failure of the same key. Default 100 ms. */
  readonly baseRetryMs?: number | undefined;
  /** Retry delay cap. Default 5 minutes. */
  readonly maxRetryMs?: number | undefined;
  /** Keys processed at the same time (never the same key twice at once). Default 1. */
  readonly concurrency?: number | undefined;
  readonly logger?: Logger | undefined;
  readonly metrics?: ControlPlaneMetrics | undefined;
}

/**
 * A level-based, rate-limited work queue:
 *
 *  - `add` marks a key dirty. A key is queued at most once however often it is added (dedupe), and while it is
 *    being processed a new `add` only re-marks it, so it runs once more afterwards — never twice at the same time.
 *  - Reconciles of one key start at most once per `coalesceMs`: adds within that window after a reconcile
 *    started are served together by one more reconcile at the window's end.
 *  - A reconcile that throws is retried after an exponential, per-key backoff (`baseRetryMs` · 2ⁿ, capped);
 *    success resets the key's failure count.
 *  - A reconcile that throws a terminal {@link WarrenError} (invalid user input) is not retried: retrying cannot
 *    help, and the next change of the object will add the key again.
 *
 * Keys compare with `===` (use strings such as `namespace/name`).
 */
export class WorkQueue<K> {
  readonly name: string;
  readonly #coalesceMs: number;
  readonly #baseRetryMs: number;
  readonly #maxRetryMs: number;
  readonly #concurrency: number;
  readonly #logger: Logger | undefined;
  readonly #metrics: ControlPlaneMetrics | undefined;
  readonly #dirty = new Set<K>();
  readonly #queue: K[] = [];
  readonly #processing = new Set<K>();
  readonly #delayed = new Map<K, { at: number; timer: NodeJS.Timeout }>();
  readonly #failures = new Map<K, number>();
  /** When the last reconcile of a key started (only keys started within the coalescing window matter). */
  readonly #lastStart = new Map<K, number>();
  #wake: (() => void) | undefined;
  #idleWaiters: Array<() => void> = [];
  #stopped = false;

  constructor(options: WorkQueueOptions) {
    this.name = options.name;
    this.#coalesceMs = options.coalesceMs ?? 0;
    this.#baseRetryMs = options.baseRetryMs ?? 100;
    this.#maxRetryMs = options.maxRetryMs ?? 300_000;
    this.#concurrency = Math.max(1, options.concurrency ?? 1);
    this.#logger = options.logger;
    this.#metrics = options.metrics;
  }

  /** Marks `key` dirty; it is processed at once, or at the end of the coalescing window of its last start. */
  add(key: K): void {
    const last = this.#lastStart.get(key);
    this.addAfter(key, last === undefined ? 0 : last + this.#coalesceMs - Date.now());
  }

  /** Marks `key` dirty no earlier than `delayMs` from now (an earlier pending time wins). */
  addAfter(key: K, delayMs: number): void {
    if (this.#stopped) return;
    if (delayMs <= 0) {
      this.#makeReady(key);
      return;
    }
    if (this.#dirty.has(key) && !this.#processing.has(key)) return; // already queued and ready
    const at = Date.now() + delayMs;
    const pending = this.#delayed.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => this.#makeReady(key), delayMs);
    this.#delayed.set(key, { at, timer });
    this.#updateDepth();
  }

  /** Re-adds `key` after its backoff delay, counting one more failure. */
  addRateLimited(key: K): void {
    const failures = (this.#failures.get(key) ?? 0) + 1;
    this.#failures.set(key, failures);
    this.#metrics?.queueRetries.inc({ queue: this.name });
    this.addAfter(key, this.backoff(failures));
  }

  /** The retry delay after `failures` consecutive failures. */
  backoff(failures: number): number {
    return Math.min(this.#maxRetryMs, this.#baseRetryMs * 2 ** Math.max(0, failures - 1));
  }

  /** Clears the failure count of `key` (after success, or when giving up). */
  forget(key: K): void {
    this.#failures.delete(key);
  }

  /** Consecutive failures of `key` so far. */
  failures(key: K): number {
    return this.#failures.get(key) ?? 0;
  }

  /** Keys waiting (ready or delayed), not counting those being processed. */
  get length(): number {
    return this.#queue.length + this.#delayed.size;
  }

  /** Resolves when nothing is queued, delayed or being processed. For tests and orderly shutdown. */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Processes keys with `reconcile` until `signal` aborts, then waits for reconciles in flight and resolves.
   * Delayed keys are dropped at shutdown.
   */
  async run(reconcile: ReconcileFn<K>, signal: AbortSignal): Promise<void> {
    const stop = (): void => {
      this.#stopped = true;
      for (const { timer } of this.#delayed.values()) clearTimeout(timer);
      this.#delayed.clear();
      this.#wake?.();
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
    const workers = Array.from({ length: this.#concurrency }, () => this.#worker(reconcile, signal));
    await Promise.all(workers);
    signal.removeEventListener('abort', stop);
    this.#notifyIdle(true);
  }

  async #worker(reconcile: ReconcileFn<K>, signal: AbortSignal): Promise<void> {
    for (;;) {
      const key = await this.#next();
      if (key === undefined) return;
      await this.#process(key, reconcile, signal);
    }
  }

  async #next(): Promise<K | undefined> {
    for (;;) {
      if (this.#stopped) return undefined;
      const key = this.#queue.shift();
      if (key !== undefined) {
        this.#dirty.delete(key);
        this.#processing.add(key);
        if (this.#coalesceMs > 0) this.#noteStart(key);
        this.#updateDepth();
        return key;
      }
      await new Promise<void>((resolve) => {
        const previous = this.#wake;
        this.#wake = () => {
          this.#wake = undefined;
          previous?.();
          resolve();
        };
      });
    }
  }

  async #process(key: K, reconcile: ReconcileFn<K>, signal: AbortSignal): Promise<void> {
    const started = performance.now();
    let result: 'success' | 'error' | 'terminal' = 'success';
    try {
      await reconcile(key, signal);
      this.forget(key);
    } catch (err) {
      if (isWarrenError(err) && err.terminal) {
        result = 'terminal';
        this.forget(key);
        this.#logger?.warn({ queue: this.name, key: String(key), err: errorSummary(err) }, 'reconcile failed on invalid input; not retried');
      } else {
        result = 'error';
        if (!signal.aborted) {
          const failures = this.failures(key) + 1;
          this.#logger?.warn(
            { queue: this.name, key: String(key), failures, retryInMs: this.backoff(failures), err: errorSummary(err) },
            'reconcile failed; retrying with backoff',
          );
          this.addRateLimited(key);
        }
      }
    } finally {
      this.#metrics?.reconciles.inc({ controller: this.name, result });
      this.#metrics?.reconcileSeconds.observe({ controller: this.name }, (performance.now() - started) / 1000);
      this.#processing.delete(key);
      if (this.#dirty.has(key) && !this.#stopped) {
        this.#queue.push(key);
        this.#wake?.();
      }
      this.#updateDepth();
      this.#notifyIdle(false);
    }
  }

  #noteStart(key: K): void {
    const now = Date.now();
    if (this.#lastStart.size >= 10_000) {
      for (const [k, at] of this.#lastStart) if (now - at >= this.#coalesceMs) this.#lastStart.delete(k);
    }
    this.#lastStart.set(key, now);
  }

  #makeReady(key: K): void {
    const pending = this.#delayed.get(key);
    if (pending) {
      clearTimeout(pending.timer);
      this.#delayed.delete(key);
    }
    if (this.#stopped) return;
    if (this.#dirty.has(key)) {
      this.#updateDepth();
      return;
    }
    this.#dirty.add(key);
    if (!this.#processing.has(key)) {
      this.#queue.push(key);
      this.#wake?.();
    }
    this.#updateDepth();
  }

  #isIdle(): boolean {
    return this.#queue.length === 0 && this.#delayed.size === 0 && this.#processing.size === 0 && this.#dirty.size === 0;
  }

  #notifyIdle(force: boolean): void {
    if (!force && !this.#isIdle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  #updateDepth(): void {
    this.#metrics?.queueDepth.set({ queue: this.name }, this.length);
  }
}
