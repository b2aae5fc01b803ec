import http2, { type ClientHttp2Session, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import net from 'node:net';
import type { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { TransportProfile } from '../plugin-api/upstream.js';
import { releaseListeners } from '../release-listeners.js';
import { RequestController } from './controller.js';

/**
 * Cleartext HTTP/2 with prior knowledge (h2c, gRPC) on `node:http2`, behind the same `dispatch(options,
 * handler)` contract as undici's pools. `bench/proxy.ts` measured undici's h2c client at 2–3× the CPU per
 * request of a plain `node:http2` session, so core uses this for prior knowledge; HTTP/2 over TLS stays on undici
 * (it falls back to HTTP/1.1 when ALPN does not pick h2, which `node:http2` cannot).
 *
 * Sessions are opened on demand: a request goes to the first connected session with a free stream (the lower of
 * the profile's `maxConcurrentStreams` and the peer's SETTINGS), a new session is opened when all are full (at
 * most `keepAlive.maxConnections`, default 16), and requests queue beyond that (core's admission in front of the pool
bounds how many may wait, see `admission.ts`). A session idle for the keep-alive
 * timeout, or told GOAWAY, takes no new streams and closes. Errors keep the codes core's error mapping knows
 * (`ECONNREFUSED`…, `UND_ERR_CONNECT_TIMEOUT`, `UND_ERR_HEADERS_TIMEOUT`, `ERR_HTTP2_*`).
 */

type Handler = Dispatcher.DispatchHandler;

const CONNECTION_SPECIFIC = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);
/** Sessions per endpoint when no keep-alive profile sets a connection limit. */
export const H2C_DEFAULT_SESSIONS = 16;
const DEFAULT_IDLE_MS = 60_000;

function codedError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** One request's undici-style controller over an HTTP/2 stream. */
class StreamController extends RequestController {
  stream: ClientHttp2Stream | undefined;

  override pause(): void {
    super.pause();
    this.stream?.pause();
  }

  override resume(): void {
    super.resume();
    this.stream?.resume();
  }
}

interface Pending {
  readonly options: Dispatcher.DispatchOptions;
  readonly handler: Handler;
}

class Session {
  readonly session: ClientHttp2Session;
  connected = false;
  closing = false;
  active = 0;
  /** The peer's SETTINGS_MAX_CONCURRENT_STREAMS (reading `remoteSettings` is a native call each time). */
  peerStreams = Infinity;
  readonly waiting: Pending[] = [];
  #idle: NodeJS.Timeout | undefined;

  constructor(
    readonly pool: H2cPool,
    origin: string,
    connectTimeout: number,
  ) {
    const url = new URL(origin);
    const session = http2.connect(origin, {
      settings: { enablePush: false },
      // Small frames (headers, window updates) must not wait for Nagle.
      createConnection: () => net.connect({ host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port), noDelay: true }),
    });
    this.session = session;
    const timer = setTimeout(() => session.destroy(codedError('UND_ERR_CONNECT_TIMEOUT', `connect timeout (${connectTimeout} ms)`)), connectTimeout);
    session.on('remoteSettings', (settings: http2.Settings) => {
      this.peerStreams = settings.maxConcurrentStreams ?? Infinity;
    });
    session.once('connect', () => {
      clearTimeout(timer);
      this.connected = true;
      for (const p of this.waiting.splice(0)) this.pool.start(this, p);
      this.touch();
    });
    session.on('error', (err: Error) => {
      clearTimeout(timer);
      this.closing = true;
      for (const p of this.waiting.splice(0)) p.handler.onResponseError?.(new StreamController(() => {}), err);
    });
    session.on('goaway', () => {
      this.closing = true;
    });
    session.once('close', () => {
      clearTimeout(timer);
      clearTimeout(this.#idle);
      this.closing = true;
      const err = codedError('ERR_HTTP2_GOAWAY_SESSION', 'upstream session closed');
      for (const p of this.waiting.splice(0)) p.handler.onResponseError?.(new StreamController(() => {}), err);
      this.pool.forget(this);
    });
  }

  /** Streams this session may still open. */
  capacity(limit: number): number {
    if (this.closing || this.session.destroyed) return 0;
    return Math.min(limit, this.peerStreams) - this.active - this.waiting.length;
  }

  /** Restarts the idle clock when the session has nothing to do. */
  touch(): void {
    if (this.active > 0 || this.closing) return;
    clearTimeout(this.#idle);
    this.#idle = setTimeout(() => {
      if (this.active === 0) {
        this.closing = true;
        this.session.close();
      }
    }, this.pool.idleMs);
    this.#idle.unref();
  }
}

export class H2cPool {
  readonly #origin: string;
  readonly #authority: string;
  readonly #limit: number;
  readonly #maxSessions: number;
  readonly #connectTimeout: number;
  readonly idleMs: number;
  readonly #sessions = new Set<Session>();
  readonly #queue: Pending[] = [];
  #closed = false;

  constructor(origin: string, profile: TransportProfile) {
    this.#origin = origin;
    this.#authority = new URL(origin).host;
    this.#limit = profile.maxConcurrentStreams ?? 100;
    this.#maxSessions = profile.keepAlive?.maxConnections ?? H2C_DEFAULT_SESSIONS;
    this.#connectTimeout = profile.connectTimeout;
    this.idleMs = profile.keepAlive?.timeout ?? DEFAULT_IDLE_MS;
  }

  dispatch(options: Dispatcher.DispatchOptions, handler: Handler): boolean {
    if (this.#closed) {
      handler.onResponseError?.(new StreamController(() => {}), codedError('UND_ERR_CLOSED', 'the upstream pool is closed'));
      return false;
    }
    const pending = { options, handler };
    const session = this.#pick();
    if (!session) {
      this.#queue.push(pending);
      return false;
    }
    if (session.connected) this.start(session, pending);
    else session.waiting.push(pending);
    return true;
  }

  #pick(): Session | undefined {
    for (const s of this.#sessions) if (s.capacity(this.#limit) > 0) return s;
    if (this.#sessions.size >= this.#maxSessions) return undefined;
    const session = new Session(this, this.#origin, this.#connectTimeout);
    this.#sessions.add(session);
    return session;
  }

  /** Opens the stream of one request on a connected session. */
  start(session: Session, { options, handler }: Pending): void {
    session.active++;
    let done = false;
    let trailers: IncomingHttpHeaders = {};
    let headersTimer: NodeJS.Timeout | undefined;
    let stream: ClientHttp2Stream | undefined;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(headersTimer);
      session.active--;
      session.touch();
      this.#drain();
    };
    const fail = (err: Error): void => {
      if (done) return;
      finish();
      if (stream && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
      handler.onResponseError?.(controller, err);
    };
    const controller = new StreamController(fail);
    handler.onRequestStart?.(controller, {});
    if (controller.aborted) return;
    const body = (options.body ?? null) as Readable | null;
    try {
      stream = session.session.request(requestHeaders(options, this.#authority), { endStream: body === null });
    } catch (err) {
      fail(err as Error);
      return;
    }
    controller.stream = stream;
    const timeout = options.headersTimeout;
    if (typeof timeout === 'number' && timeout > 0) {
      headersTimer = setTimeout(() => fail(codedError('UND_ERR_HEADERS_TIMEOUT', 'headers timeout')), timeout);
    }
    stream.once('response', (headers: IncomingHttpHeaders) => {
      if (done) return;
      clearTimeout(headersTimer);
      const status = Number(headers[':status']);
      const fields: IncomingHttpHeaders = {};
      for (const name in headers) if (name.charCodeAt(0) !== 58 /* : */) fields[name] = headers[name];
      controller.rawHeaders = fields;
      handler.onResponseStart?.(controller, status, fields as never, '');
      if (controller.paused) stream!.pause();
    });
    stream.on('data', (chunk: Buffer) => {
      if (!done) handler.onResponseData?.(controller, chunk);
    });
    let trailersSeen = false;
    stream.once('trailers', (t: IncomingHttpHeaders) => {
      trailersSeen = true;
      trailers = t;
      controller.rawTrailers = t;
    });
    stream.once('end', () => {
      if (done) return;
      // Node also ends the readable side when the stream is reset or its session dies (rstCode CANCEL): that
      // is a cut-off body, never a complete one. Trailers come with END_STREAM, so they prove completion.
      if (!trailersSeen && (stream!.destroyed || stream!.rstCode !== http2.constants.NGHTTP2_NO_ERROR)) {
        fail(codedError('ERR_HTTP2_STREAM_ERROR', `upstream stream ended before the response was complete (code ${stream!.rstCode})`));
        return;
      }
      finish();
      handler.onResponseEnd?.(controller, trailers as never);
    });
    stream.once('error', (err: Error) => fail(err));
    const onBodyError = body ? (err: Error): void => fail(err) : undefined;
    stream.once('close', () => {
      if (!done) fail(codedError('ERR_HTTP2_STREAM_ERROR', `stream closed before the response ended (code ${stream!.rstCode})`));
      // The body may outlive the upstream stream (it is the client's request); its listener reaches the exchange.
      if (onBodyError) body!.removeListener('error', onBodyError);
      // After every 'close' listener (a piped body's too). Node's own listeners on the stream ('pause', 'end',
      // 'finish', listener counting) do nothing once it is destroyed and has dropped its session.
      process.nextTick(releaseListeners, stream!);
    });
    if (body && onBodyError) {
      body.once('error', onBodyError);
      body.pipe(stream);
    }
  }

  #drain(): void {
    while (this.#queue.length > 0) {
      const session = this.#pick();
      if (!session) return;
      const next = this.#queue.shift()!;
      if (session.connected) this.start(session, next);
      else session.waiting.push(next);
    }
  }

  /** Called by a session that closed. */
  forget(session: Session): void {
    this.#sessions.delete(session);
    this.#drain();
  }

  /** Stops taking requests; resolves when every session closed after its streams ended. */
  async close(): Promise<void> {
    this.#closed = true;
    const err = codedError('UND_ERR_CLOSED', 'the upstream pool is closed');
    for (const p of this.#queue.splice(0)) p.handler.onResponseError?.(new StreamController(() => {}), err);
    await Promise.all([...this.#sessions].map((s) => (s.session.closed ? undefined : new Promise<void>((resolve) => s.session.close(() => resolve())))));
  }

  /** Closes every session at once. */
  async destroy(): Promise<void> {
    this.#closed = true;
    for (const s of this.#sessions) s.session.destroy();
  }
}

function requestHeaders(options: Dispatcher.DispatchOptions, defaultAuthority: string): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = { ':method': options.method, ':path': options.path, ':scheme': 'http' };
  const list = options.headers as string[] | null | undefined;
  let authority = defaultAuthority;
  if (list) {
    for (let i = 0; i + 1 < list.length; i += 2) {
      const name = list[i]!;
      const value = list[i + 1]!;
      if (name === 'host') {
        authority = value;
        continue;
      }
      if (CONNECTION_SPECIFIC.has(name)) continue;
      const prev = out[name];
      out[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
    }
  }
  out[':authority'] = authority;
  return out;
}
