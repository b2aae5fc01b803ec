import { randomBytes } from 'node:crypto';
import { constants as h2, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { performance } from 'node:perf_hooks';
import { type ClosedLoopResult, ClosedLoopTally, ClosedLoopWorker, declaredLength, runClosedLoop } from './closed-loop.js';
import { tunnelHeaders } from './eyeball.js';
import type { EdgeSimulator } from './simulator.js';

/**
 * Closed-loop load generated inside the simulator as tunnel streams, for benchmarks of a connector: no eyeball
 * client, no eyeball HTTP hop. Each request is the tunnel stream the eyeball entrance would open for the same
 * HTTP/1.1 request (the edge's headers, a fresh `cf-ray` each), so the connector receives what it receives
 * from the eyeball path; the simulator only skips turning the answer back into an HTTP/1.1 response.
 * `concurrency` streams are open at a time, each followed by the next as soon as it ends, on the registered
 * connections in round robin, until `durationMs` passes or `maxRequests` were opened.
 */
export interface StreamLoadOptions {
  /** `:authority` (the eyeball's Host). */
  readonly authority: string;
  readonly path: string;
  readonly concurrency: number;
  readonly durationMs: number;
  readonly maxRequests: number;
  /** Sent as the body of a POST with every request, with its content-length (default: GETs without a body). */
  readonly body?: Buffer;
}

/**
 * A closed loop of tunnel streams: `errors` counts streams that failed (no registered connection, reset, closed
 * before their end, a body other than its content-length) or were answered other than 200; a latency runs from
 * the stream's opening to its last body byte.
 */
export type StreamLoadResult = ClosedLoopResult;

/** `cf-ray` values as the edge shapes them (16 hex digits, then the location): a random prefix and a counter. */
function rayIds(): () => string {
  const prefix = randomBytes(4).toString('hex');
  let n = 0;
  return () => `${prefix}${(n++ >>> 0).toString(16).padStart(8, '0')}-SIM`;
}

/** One worker of the closed loop: a stream, read to its end, then the next. */
class StreamLoop extends ClosedLoopWorker {
  readonly #sim: EdgeSimulator;
  /** Names and values in order, `cf-ray`'s value last (replaced per stream). */
  readonly #headers: readonly string[];
  readonly #ray: () => string;
  readonly #body: Buffer | undefined;

  constructor(sim: EdgeSimulator, headers: readonly string[], ray: () => string, body: Buffer | undefined, more: () => boolean, tally: ClosedLoopTally) {
    super(more, tally);
    this.#sim = sim;
    this.#headers = headers;
    this.#ray = ray;
    this.#body = body;
  }

  protected start(): void {
    const started = performance.now();
    const connection = this.#sim.pickConnection();
    let stream: ClientHttp2Stream;
    try {
      if (!connection) throw new Error('no registered connection');
      const headers = this.#headers.slice();
      headers[headers.length - 1] = this.#ray();
      stream = connection.request(headers, this.#body === undefined);
    } catch {
      // Not at once: a loop without a connection must not spin through its requests in one turn.
      return this.#record(started, performance.now(), 0, 0, false, () => setTimeout(() => this.next(), 1));
    }
    if (this.#body !== undefined) stream.end(this.#body);
    let status = 0;
    let expected = -1;
    let received = 0;
    let endedAt = 0;
    stream.on('error', () => {
      // The close handler records the outcome.
    });
    stream.once('response', (headers: IncomingHttpHeaders) => {
      status = Number(headers[':status']);
      expected = declaredLength(headers['content-length']);
    });
    stream.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    stream.once('end', () => {
      endedAt = performance.now();
    });
    stream.once('close', () => {
      // Complete only when the stream ended cleanly (END_STREAM, no reset) with every declared byte.
      const complete = endedAt !== 0 && stream.rstCode === h2.NGHTTP2_NO_ERROR && status !== 0 && (expected === -1 || received === expected);
      this.#record(started, endedAt || performance.now(), status, received, complete, () => this.next());
    });
  }

  #record(started: number, finished: number, status: number, received: number, complete: boolean, next: () => void): void {
    this.tally.record(finished - started, status, received, complete);
    next();
  }
}

/** Runs closed-loop tunnel-stream load on `sim`'s registered connections; see {@link StreamLoadOptions}. */
export async function runStreamLoad(sim: EdgeSimulator, options: StreamLoadOptions): Promise<StreamLoadResult> {
  const raw = ['host', options.authority];
  if (options.body) raw.push('content-length', String(options.body.length));
  // The headers the eyeball entrance sends for this request from a loopback HTTP/1.1 client, as a raw list in their
  // order (cheaper per stream for node:http2 than an object; the same HEADERS frame), cf-ray last and per stream.
  const { 'cf-ray': _ray, ...fields } = tunnelHeaders(options.body ? 'POST' : 'GET', options.authority, options.path, raw, '127.0.0.1', 'http', false);
  const headers: string[] = [];
  for (const [name, value] of Object.entries(fields)) for (const v of Array.isArray(value) ? value : [value]) headers.push(name, String(v));
  headers.push('cf-ray', '');
  const tally = new ClosedLoopTally(options.maxRequests);
  const ray = rayIds();
  const elapsedMs = await runClosedLoop(options, (more) => new StreamLoop(sim, headers, ray, options.body, more, tally).run());
  return tally.result(elapsedMs);
}
