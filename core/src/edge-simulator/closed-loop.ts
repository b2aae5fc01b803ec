import { performance } from 'node:perf_hooks';

/**
 * The bookkeeping every closed-loop load generator shares (the simulator's tunnel-stream load, the benchmarks'
 * HTTP/1.1 one): a bound on requests and time, and the tally of what came back. The generator supplies the
 * workers; each asks `more()` before every request and records every request once.
 */
export interface ClosedLoopResult {
  /** Requests finished, answered or failed. */
  readonly requests: number;
  /** Requests that failed (the generator says what counts) or were answered other than 200. */
  readonly errors: number;
  /** Body bytes received, of complete responses only. */
  readonly bytes: number;
  readonly elapsedMs: number;
  /** Per-request latencies in ms (request start to the last body byte, or to its failure), ascending. */
  readonly latencies: Float64Array;
  /** Complete responses by status code. */
  readonly statuses: ReadonlyMap<number, number>;
}

export interface ClosedLoopBounds {
  readonly concurrency: number;
  readonly durationMs: number;
  readonly maxRequests: number;
}

/** What the workers of one closed loop add to. */
export class ClosedLoopTally {
  #done = 0;
  #errors = 0;
  #bytes = 0;
  readonly #latencies: Float64Array;
  readonly #statuses = new Map<number, number>();

  constructor(maxRequests: number) {
    this.#latencies = new Float64Array(maxRequests);
  }

  /** One finished request: complete (every declared byte, a clean end) or not; only 200 counts as success. */
  record(latencyMs: number, status: number, bytes: number, complete: boolean): void {
    this.#latencies[this.#done++] = latencyMs;
    if (complete && status !== 0) {
      this.#bytes += bytes;
      this.#statuses.set(status, (this.#statuses.get(status) ?? 0) + 1);
      if (status !== 200) this.#errors++;
    } else {
      this.#errors++;
    }
  }

  /** An error found outside any one request's record (a response that turned out longer than declared). */
  error(): void {
    this.#errors++;
  }

  result(elapsedMs: number): ClosedLoopResult {
    const latencies = this.#latencies.subarray(0, this.#done).sort();
    return { requests: this.#done, errors: this.#errors, bytes: this.#bytes, elapsedMs, latencies, statuses: this.#statuses };
  }
}

/**
 * One worker of a closed loop: a request, then the next as soon as it finished, until the loop's bounds say no.
 * A generator supplies `start`, which sends one request, records it in `tally` once, and then calls `next()`.
 */
export abstract class ClosedLoopWorker {
  readonly #more: () => boolean;
  protected readonly tally: ClosedLoopTally;
  #resolve: () => void = () => undefined;

  constructor(more: () => boolean, tally: ClosedLoopTally) {
    this.#more = more;
    this.tally = tally;
  }

  /** Resolves once the loop stopped sending and this worker's last request finished. */
  run(): Promise<void> {
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.next();
    });
  }

  /** Starts the next request, or ends the worker once the loop's bounds are reached. */
  protected next(): void {
    if (this.#more()) this.start();
    else this.#resolve();
  }

  protected abstract start(): void;
}

/** A response's declared body length (its `content-length`), or -1 when it has none or an unreadable one. */
export function declaredLength(value: string | string[] | undefined): number {
  return typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : -1;
}

/**
 * Runs `bounds.concurrency` workers until `bounds.durationMs` passed or `bounds.maxRequests` were started; each
 * worker resolves once `more()` said no and its last request finished. Resolves with the elapsed time.
 */
export async function runClosedLoop(bounds: ClosedLoopBounds, worker: (more: () => boolean) => Promise<void>): Promise<number> {
  let issued = 0;
  const started = performance.now();
  const deadline = started + bounds.durationMs;
  const more = () => {
    if (issued >= bounds.maxRequests || performance.now() >= deadline) return false;
    issued++;
    return true;
  };
  await Promise.all(Array.from({ length: bounds.concurrency }, () => worker(more)));
  return performance.now() - started;
}
