import { Writable } from 'node:stream';
import { ClientGone } from '../proxy/client-gone.js';
import { lowerCase } from '../model/exchange.js';
import type { Exchange, ExchangeFailure, RawHeaders, RequestHead, ResponseHead } from '../proxy/exchange.js';
import { ErrorCode } from './h2/frames.js';
import type { H2Stream } from './h2/stream.js';
import { serializeHeaders } from './header-serialization.js';
import { HEADER_RESPONSE_HEADERS, HEADER_RESPONSE_META, META_CLOUDFLARED, META_ORIGIN } from './protocol.js';

/**
 * One tunnel stream as an `Exchange` (the contract in proxy/exchange.ts), answering the edge in the form it
 * expects from a connector:
 *  - `:status` is the origin's, except 101 which becomes 200;
 *  - the origin's headers travel in `cf-cloudflared-response-headers` (order, case and repeats kept);
 *  - `cf-cloudflared-response-meta` is `{"src":"origin"}`, or `{"src":"cloudflared"}` for responses Warren
 *    generated (`source: 'warren'`, `fail()`);
 *  - a known length is also sent as a real `content-length` (for HEAD, the origin's declared one);
 *  - trailers go out as a real trailing HEADERS frame;
 *  - a failure after the response head resets the stream with INTERNAL_ERROR.
 * The body sink is the HTTP/2 stream itself, so every write goes out as DATA without extra buffering.
 */

let sequence = 0;
const idPrefix = `t${process.pid.toString(36)}`;

/** Statuses whose responses never carry a body (the stream ends with the head). */
function bodiless(status: number, method: string): boolean {
  return method === 'HEAD' || status === 204 || status === 205 || status === 304;
}

/** Swallows writes for responses that cannot have a body, so pipelines can write unconditionally. */
function discardSink(): Writable {
  return new Writable({
    write(_chunk, _enc, cb) {
      cb();
    },
  });
}

/** Trailers with HTTP/2's lower-case names, order and repeats kept. */
function h2Trailers(trailers: RawHeaders): string[] {
  const out: string[] = [];
  for (let i = 0; i + 1 < trailers.length; i += 2) out.push(trailers[i]!.toLowerCase(), trailers[i + 1]!);
  return out;
}

/**
 * What a connection hears of its exchanges: one object per connection, not a closure per exchange.
 */
export interface TunnelExchangeHooks {
  /** Called once when the exchange is over (stream closed), with the status sent (0 when none). */
  onDone?(exchange: TunnelExchange, status: number, failed: boolean): void;
}

const NO_HOOKS: TunnelExchangeHooks = {};
const NO_TRAILERS: RawHeaders = Object.freeze([]);

export class TunnelExchange implements Exchange {
  readonly id: string;
  readonly head: RequestHead;
  readonly body: H2Stream;
  readonly #gone = new ClientGone();
  readonly #stream: H2Stream;
  readonly #hooks: TunnelExchangeHooks;
  #responded = false;
  #status = 0;
  #failed = false;
  #trailersAllowed = false;
  #trailers: RawHeaders = NO_TRAILERS;

  constructor(stream: H2Stream, head: RequestHead, hooks: TunnelExchangeHooks = NO_HOOKS) {
    this.id = `${idPrefix}-${(++sequence).toString(36)}`;
    this.head = head;
    this.body = stream;
    this.#stream = stream;
    this.#hooks = hooks;
    // 'close' comes once: `on` spares the once-wrapper per exchange.
    stream.on('close', () => {
      // A stream that closes before its response was completely written was cut off (edge reset,
      // connection lost, or our own fail()); either way upstream work must stop. A clean close after the
      // response was ended is its normal end: once both END_STREAMs are out HTTP/2 may close the stream
      // before the writable side reports finished (typical after a request body).
      const answered = stream.writableFinished || stream.writableEnded;
      try {
        if (stream.rstCode !== ErrorCode.NO_ERROR || !answered) {
          this.#gone.fire(new Error(`tunnel stream closed (rst code ${stream.rstCode ?? 'none'})`));
        }
      } finally {
        // The connection's accounting (streams in flight, the drain) must hear of the end whatever a listener did.
        this.#hooks.onDone?.(this, this.#status, this.#failed || stream.rstCode !== ErrorCode.NO_ERROR);
      }
    });
  }

  get signal(): AbortSignal {
    return this.#gone.signal;
  }

  onClientGone(listener: () => void): boolean {
    return this.#gone.listen(listener);
  }

  get responded(): boolean {
    return this.#responded;
  }

  respond(head: ResponseHead): Writable {
    if (this.#responded) throw new Error(`exchange ${this.id}: respond() called twice`);
    this.#responded = true;
    const stream = this.#stream;
    if (stream.destroyed) return discardSink();
    this.#status = head.status;
    const status = String(head.status === 101 ? 200 : head.status);
    const serialized = serializeHeaders(head.headers);
    const meta = head.source === 'warren' ? META_CLOUDFLARED : META_ORIGIN;
    // A HEAD response carries no body but describes one: the origin's Content-Length goes
    // out at the HTTP/2 level as well (the edge uses it), not the 0 bytes that follow.
    const length = this.head.method === 'HEAD' ? declaredLength(head.headers) : (head.contentLength ?? declaredLength(head.headers));
    // One literal either way: a push after it would grow the array into a larger copy.
    const headers =
      length !== undefined && head.status !== 101 && head.status !== 204 && head.status !== 304
        ? [':status', status, HEADER_RESPONSE_HEADERS, serialized, HEADER_RESPONSE_META, meta, 'content-length', String(length)]
        : [':status', status, HEADER_RESPONSE_HEADERS, serialized, HEADER_RESPONSE_META, meta];
    const list = head.headers;
    for (let i = 0; i + 1 < list.length; i += 2) {
      const name = list[i]!;
      if (name.length === 26 && lowerCase(name) === 'cf-int-cloudflared-tracing') headers.push('cf-int-cloudflared-tracing', list[i + 1]!);
    }
    const noBody = bodiless(head.status, this.head.method);
    this.#trailersAllowed = head.trailers === true && !noBody;
    try {
      if (noBody) {
        stream.respond(headers, { endStream: true });
        return discardSink();
      }
      if (this.#trailersAllowed) {
        // Trailers end the stream through #finish: a HEADERS frame, or an empty END_STREAM DATA frame when
        // there are none.
        stream.respond(headers, { waitForTrailers: true });
        stream.once('wantTrailers', () => this.#finish());
      } else {
        // END_STREAM follows the last write only, so a fail() before the body's end still resets the
        // stream and the edge never takes a truncated body as complete.
        stream.respond(headers);
      }
    } catch {
      this.#failed = true;
      stream.close(ErrorCode.INTERNAL_ERROR);
      return discardSink();
    }
    return stream;
  }

  setTrailers(trailers: RawHeaders): void {
    if (!this.#trailersAllowed) throw new Error(`exchange ${this.id}: setTrailers() needs respond({ trailers: true })`);
    this.#trailers = trailers;
  }

  #finish(): void {
    if (this.#failed) return;
    try {
      this.#stream.sendTrailers(h2Trailers(this.#trailers));
    } catch {
      // Invalid trailer names/values: the response cannot be completed correctly.
      this.#failed = true;
      this.#stream.close(ErrorCode.INTERNAL_ERROR);
    }
  }

  fail(error: ExchangeFailure): void {
    const stream = this.#stream;
    if (this.#failed || stream.destroyed) return;
    this.#failed = true;
    if (this.#responded || stream.headersSent) {
      stream.close(ErrorCode.INTERNAL_ERROR);
      return;
    }
    this.#responded = true;
    this.#status = error.status;
    const headers = [':status', String(error.status), HEADER_RESPONSE_META, META_CLOUDFLARED];
    if (error.headers && error.headers.length > 0) headers.push(HEADER_RESPONSE_HEADERS, serializeHeaders(error.headers));
    const body = error.body === undefined || error.body.length === 0 || bodiless(error.status, this.head.method) ? undefined : error.body;
    try {
      stream.respond(headers, { endStream: body === undefined });
      if (body !== undefined) stream.end(body);
    } catch {
      stream.close(ErrorCode.INTERNAL_ERROR);
    }
  }
}

function declaredLength(headers: RawHeaders): number | undefined {
  let found: number | undefined;
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    if (name.length !== 14 || lowerCase(name) !== 'content-length') continue;
    if (!/^\d{1,15}$/.test(value)) return undefined;
    const n = Number(value);
    if (found !== undefined && found !== n) return undefined;
    found = n;
  }
  return found;
}
