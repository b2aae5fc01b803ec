import type { StreamLoadOptions } from '../../core/src/edge-simulator/index.js';
import type { JsonChild } from './child.js';
import type { LoadResult } from './load.js';

/** A simulator process's answer to a `streamLoad` command (see simulator-process.ts). */
interface StreamLoadAnswer {
  requests: number;
  errors: number;
  bytes: number;
  elapsedMs: number;
  statuses: Array<[number, number]>;
  /** Base64 of the ascending latencies' Float64Array. */
  latencies: string;
}

/** What `streamLoad` sends: the options, with a request body given by its size (bytes of 'u'). */
export type StreamLoadCommand = Omit<StreamLoadOptions, 'body'> & { readonly bodySize?: number };

/**
 * Runs closed-loop tunnel-stream load inside a simulator process (lib/simulator-process.js, started with
 * `input`) and returns its result; rejects when no answer comes within the duration plus `graceMs`.
 */
export async function streamLoadIn(sim: JsonChild, command: StreamLoadCommand, graceMs = 60_000): Promise<LoadResult> {
  const answer = sim.nextNew<{ streamLoadResult: StreamLoadAnswer }>((m) => typeof m.streamLoadResult === 'object', command.durationMs + graceMs);
  sim.send({ streamLoad: command });
  const r = (await answer).streamLoadResult;
  // Copied out: a Float64Array needs an aligned buffer, which a decoded Buffer need not be.
  const latencies = new Float64Array(new Uint8Array(Buffer.from(r.latencies, 'base64')).buffer);
  return { requests: r.requests, errors: r.errors, bytes: r.bytes, elapsedMs: r.elapsedMs, latencies, statuses: new Map(r.statuses) };
}
