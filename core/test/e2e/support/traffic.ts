/**
 * A steady, bounded stream of requests through the edge for failover tests: `concurrency` workers, each sending
 * one request at a time with a short pause in between, at most `maxRequests` in all and for at most `maxMs`,
 * every answer (or error) recorded. It can be paused so a test acts at a moment when no request is in flight.
 */
import { send } from './http.js';

export interface TrafficResult {
  readonly status: number;
  /** The backend's `service` field, when the answer was an echo. */
  readonly service: string | undefined;
  /** The start of the body when the answer was not an echo, or the error when there was no HTTP answer. */
  readonly error: string | undefined;
  /** Date.now() when the answer (or error) arrived. */
  readonly at: number;
}

export interface TrafficOptions {
  readonly baseUrl: string;
  readonly host: string;
  readonly path?: string;
  /** Request method (default GET). */
  readonly method?: string;
  /** Hard bounds: the loop stops by itself after this many requests or this long. */
  readonly maxRequests: number;
  readonly maxMs: number;
  /** Requests in flight at once (default 1). */
  readonly concurrency?: number;
  /** Pause between two requests of one worker (default 20 ms). */
  readonly intervalMs?: number;
}

export class TrafficLoop {
  readonly results: TrafficResult[] = [];
  readonly #options: TrafficOptions;
  #stopped = false;
  #inFlight = 0;
  #gate: Promise<void> | undefined;
  #openGate: (() => void) | undefined;
  #onIdle: (() => void) | undefined;
  #done: Promise<void> | undefined;

  constructor(options: TrafficOptions) {
    this.#options = options;
  }

  start(): this {
    const workers = Array.from({ length: this.#options.concurrency ?? 1 }, () => this.#work());
    this.#done ??= Promise.all(workers).then(() => undefined);
    return this;
  }

  async #work(): Promise<void> {
    const { baseUrl, host, path = '/', method, maxRequests, maxMs, intervalMs = 20 } = this.#options;
    const deadline = Date.now() + maxMs;
    while (!this.#stopped && this.results.length + this.#inFlight < maxRequests && Date.now() < deadline) {
      if (this.#gate) {
        await this.#gate;
        continue;
      }
      this.#inFlight++;
      try {
        const answer = await send(baseUrl, path, { host, method, timeoutMs: 10_000 });
        const service = answer.echo?.service;
        this.results.push({ status: answer.status, service, error: service === undefined ? answer.body.slice(0, 120) : undefined, at: Date.now() });
      } catch (err) {
        this.results.push({ status: 0, service: undefined, error: (err as Error).message, at: Date.now() });
      } finally {
        this.#inFlight--;
        if (this.#inFlight === 0) this.#onIdle?.();
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  }

  /** Resolves once no request is in flight; no new request starts until {@link resume}. */
  pause(): Promise<void> {
    this.#gate ??= new Promise((resolve) => (this.#openGate = resolve));
    return new Promise((resolve) => {
      if (this.#inFlight === 0) return resolve();
      this.#onIdle = resolve;
    });
  }

  resume(): void {
    const open = this.#openGate;
    this.#gate = undefined;
    this.#openGate = undefined;
    this.#onIdle = undefined;
    open?.();
  }

  /** Stops after the requests in flight and resolves with every result. */
  async stop(): Promise<TrafficResult[]> {
    this.#stopped = true;
    this.resume();
    await this.#done;
    return this.results;
  }

  /** Results that were not a 200 from a backend, described for an assertion message. */
  failures(): string[] {
    return this.results.filter((r) => r.status !== 200 || r.service === undefined).map((r) => `${new Date(r.at).toISOString()} ${r.status} ${r.error ?? ''}`.trim());
  }

  /** Resolves once at least `count` more results than now have arrived; throws after `timeoutMs`. */
  async next(count: number, timeoutMs = 10_000): Promise<void> {
    const want = this.results.length + count;
    const deadline = Date.now() + timeoutMs;
    while (this.results.length < want) {
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${count} more requests (have ${this.results.length})`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}
