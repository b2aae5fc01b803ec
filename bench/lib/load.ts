import type { IncomingHttpHeaders } from 'node:http';
import { performance } from 'node:perf_hooks';
import { type Dispatcher, Pool } from 'undici';
import type * as Simulator from '../../core/src/edge-simulator/index.js';
import type { ClosedLoopResult, ClosedLoopTally as Tally } from '../../core/src/edge-simulator/index.js';

const { ClosedLoopTally, ClosedLoopWorker, declaredLength, runClosedLoop } = (await import(
  new URL('../../../core/build/src/edge-simulator/index.js', import.meta.url).href
)) as typeof Simulator;

/**
 * A closed-loop HTTP/1.1 load generator: `concurrency` workers, each on its own keep-alive connection,
 * issue requests back to back until `durationMs` passes or `maxRequests` were sent (whichever first),
 * reading every body to the end. Shared by the benchmarks that need request latencies.
 *
 * Responses are read through undici's dispatch handler and only counted: no body stream and no async
 * iteration per chunk, so the generator costs far less CPU per byte than the servers it measures.
 */
export interface LoadOptions {
  /** Origin to send to, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  readonly path: string;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly maxRequests: number;
  readonly headers?: Record<string, string>;
  /** Sent as the body of a POST with every request (default: GETs without a body). */
  readonly body?: Buffer;
}

/**
 * `errors` counts requests that failed (connection error, body shorter than its content-length) or were not
 * answered 200, and responses followed by bytes beyond their declared end (a body longer than its
 * content-length); a latency runs from the request's start to its last body byte.
 */
export type LoadResult = ClosedLoopResult;

/**
 * One connection's worth of closed loop: sends a request, counts its answer as it arrives, records it when the
 * last byte is in, sends the next. One instance is the dispatch handler of each of its requests in turn.
 */
class ClosedLoop extends ClosedLoopWorker implements Dispatcher.DispatchHandler {
  readonly #pool: Pool;
  readonly #request: Dispatcher.DispatchOptions;
  #started = 0;
  #status = 0;
  #expected = -1;
  #received = 0;
  #settled = true;

  constructor(pool: Pool, request: Dispatcher.DispatchOptions, more: () => boolean, tally: Tally) {
    super(more, tally);
    this.#pool = pool;
    this.#request = request;
  }

  protected start(): void {
    this.#status = 0;
    this.#expected = -1;
    this.#received = 0;
    this.#settled = false;
    this.#started = performance.now();
    try {
      this.#pool.dispatch(this.#request, this);
    } catch {
      this.#finish(false);
    }
  }

  onRequestStart(): void {
    // Nothing to do until the answer starts; undici requires the method.
  }

  onResponseStart(_controller: Dispatcher.DispatchController, statusCode: number, headers: IncomingHttpHeaders): void {
    this.#status = statusCode;
    this.#expected = declaredLength(headers['content-length']);
    this.#received = 0;
  }

  onResponseData(_controller: Dispatcher.DispatchController, chunk: Buffer): void {
    this.#received += chunk.length;
  }

  onResponseEnd(): void {
    // undici frames an HTTP/1.1 body by its content-length already; the count is checked again so that a
    // response that is not what it declared can never pass as complete.
    this.#finish(this.#expected === -1 || this.#received === this.#expected);
  }

  onResponseError(): void {
    this.#finish(false);
  }

  #finish(complete: boolean): void {
    if (this.#settled) return;
    this.#settled = true;
    this.tally.record(performance.now() - this.#started, this.#status, this.#received, complete);
    // Once undici's callback has returned, as after an awaited request: never re-entering its dispatch.
    queueMicrotask(() => this.next());
  }
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const pool = new Pool(options.url, { connections: options.concurrency, pipelining: 1, keepAliveTimeout: 30_000 });
  const tally = new ClosedLoopTally(options.maxRequests);
  pool.on('disconnect', (_origin, _targets, err: Error) => {
    // Bytes after a response's declared end (a body longer than its content-length) reach a connection with no
    // request running: undici drops the connection. The response they belong to was not what it declared.
    if (err.name === 'SocketError' && err.message === 'bad response') tally.error();
  });
  const request: Dispatcher.DispatchOptions = {
    path: options.path,
    method: options.body ? 'POST' : 'GET',
    headers: options.headers ?? {},
    ...(options.body ? { body: options.body } : {}),
  };
  const elapsedMs = await runClosedLoop(options, (more) => new ClosedLoop(pool, request, more, tally).run());
  await pool.close();
  return tally.result(elapsedMs);
}

/** The p-th percentile (0–100) of ascending `sorted` values; NaN when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
