import { performance } from 'node:perf_hooks';
import { Pool } from 'undici';

/**
 * A closed-loop HTTP/1.1 load generator: `concurrency` workers, each on its own keep-alive connection,
 * issue requests back to back until `durationMs` passes or `maxRequests` were sent (whichever first),
 * reading every body to the end. Shared by the benchmarks that need request latencies.
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

export interface LoadResult {
  readonly requests: number;
  readonly errors: number;
  readonly bytes: number;
  readonly elapsedMs: number;
  /** Per-request latencies in ms, sorted ascending. */
  readonly latencies: Float64Array;
  readonly statuses: ReadonlyMap<number, number>;
}

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const pool = new Pool(options.url, { connections: options.concurrency, pipelining: 1, keepAliveTimeout: 30_000 });
  const latencies = new Float64Array(options.maxRequests);
  const statuses = new Map<number, number>();
  let issued = 0;
  let done = 0;
  let errors = 0;
  let bytes = 0;
  const started = performance.now();
  const deadline = started + options.durationMs;
  const worker = async () => {
    while (issued < options.maxRequests && performance.now() < deadline) {
      issued++;
      const t0 = performance.now();
      try {
        const res = await pool.request({
          path: options.path,
          method: options.body ? 'POST' : 'GET',
          headers: options.headers ?? {},
          ...(options.body ? { body: options.body } : {}),
        });
        for await (const chunk of res.body) bytes += (chunk as Buffer).length;
        statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
        if (res.statusCode !== 200) errors++;
      } catch {
        errors++;
      }
      latencies[done++] = performance.now() - t0;
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, worker));
  const elapsedMs = performance.now() - started;
  await pool.close();
  const used = latencies.subarray(0, done).sort();
  return { requests: done, errors, bytes, elapsedMs, latencies: used, statuses };
}

/** The p-th percentile (0–100) of ascending `sorted` values; NaN when empty. */
export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
