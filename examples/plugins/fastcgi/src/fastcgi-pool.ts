import net, { type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import {
  defineExchangeKey,
  ErrorCode,
  WarrenError,
  type DispatchHandler,
  type PoolDispatchOptions,
  type ProvisionContext,
  type TransportProfile,
  type UpstreamPool,
} from '@warren/core/plugin';
import { cgiParams, type ScriptSettings } from './cgi-params.js';
import { encodedPairsLength } from './records.js';
import { FastCgiRequest, RequestController, type RequestLimits, type RequestOwner } from './fastcgi-request.js';

/** The plugin's logger (pino, from `ProvisionContext`). */
type Logger = ProvisionContext['logger'];

/**
 * Connections to one FastCGI endpoint, behind core's pool contract (undici's `dispatch(options, handler)` plus
 * `close` and `destroy`). Core still picks the endpoint, retries connect failures and runs the exchange's
 * timeouts; this pool speaks the wire protocol.
 *
 * Connections: with a keep-alive profile (the keepalive plugin), requests ask the application to keep the
 * connection (FCGI_KEEP_CONN) and idle connections are reused for `keepAlive.timeout`; at most
 * `keepAlive.maxConnections` are open at once and further requests wait in order (their response-head timeout
 * runs while they wait). Without one, every request opens its own connection and the application closes it.
 * One request per connection at a time: PHP-FPM does not multiplex.
 *
 * Errors keep the codes core's error mapping and retries know: the socket's own (`ECONNREFUSED`, `ECONNRESET`),
 * `UND_ERR_CONNECT_TIMEOUT`, `UND_ERR_HEADERS_TIMEOUT`, `UND_ERR_SOCKET` (closed before END_REQUEST),
 * `UND_ERR_CLOSED`; a malformed exchange is a `WarrenError` (UpstreamProtocol, 502).
 */

/** Where the interceptor leaves a route's script settings for the pool, on the exchange's context. */
export const SCRIPT_SETTINGS = defineExchangeKey<ScriptSettings>('example.fastcgi.script-settings');

export interface PoolLimits extends RequestLimits {
  readonly maxParamsBytes: number;
  /** Most bytes of a request body without a declared length, read whole to compute CONTENT_LENGTH. */
  readonly maxUnsizedBodyBytes: number;
}

function coded(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

export class FastCgiPool implements UpstreamPool, RequestOwner {
  readonly #host: string;
  readonly #port: number;
  readonly #connectTimeout: number;
  readonly #keepAlive: { readonly timeout: number; readonly maxConnections: number } | undefined;
  readonly #limits: PoolLimits;
  readonly #logger: Logger | undefined;
  /** Every open or opening socket. */
  readonly #sockets = new Set<Socket>();
  /** Idle kept-alive sockets, most recently used last. */
  readonly #idle: Socket[] = [];
  /** Per idle socket: its idle timer and the listener that closes it when the application speaks or closes. */
  readonly #idleWatch = new Map<Socket, { readonly timer: NodeJS.Timeout; readonly close: () => void }>();
  readonly #queue: FastCgiRequest[] = [];
  #closed = false;
  #drained: (() => void) | undefined;

  constructor(origin: string, profile: TransportProfile, limits: PoolLimits, logger: Logger | undefined) {
    const url = new URL(origin);
    this.#host = url.hostname.replace(/^\[|\]$/g, '');
    this.#port = Number(url.port || 9000);
    this.#connectTimeout = profile.connectTimeout;
    this.#keepAlive = profile.keepAlive;
    this.#limits = limits;
    this.#logger = logger;
  }

  /** Open sockets (busy or idle), for tests and diagnostics. */
  get openConnections(): number {
    return this.#sockets.size;
  }

  dispatch(options: PoolDispatchOptions, handler: DispatchHandler): boolean {
    if (this.#closed) {
      handler.onResponseError?.(new RequestController(() => {}), coded('UND_ERR_CLOSED', 'the FastCGI pool is closed'));
      return false;
    }
    const request = new FastCgiRequest(handler, {
      method: options.method,
      keepConnection: this.#keepAlive !== undefined,
      limits: this.#limits,
      logger: this.#logger,
      exchangeId: options.context?.exchange.id ?? '',
    });
    handler.onRequestStart?.(request.controller, {});
    if (request.done) return true;
    request.startHeadersTimer(options.headersTimeout);
    const body = (options.body ?? null) as Readable | null;
    const declared = contentLengthOf(options.headers);
    if (body === null || declared !== undefined) this.#start(request, options, body, declared);
    else {
      // FastCGI applications need CONTENT_LENGTH up front: a body without one is read whole first, bounded.
      readBounded(body, this.#limits.maxUnsizedBodyBytes).then(
        (whole) => {
          if (!request.done) this.#start(request, options, whole, whole.length);
        },
        (err: Error) => request.fail(err),
      );
    }
    return true;
  }

  #start(request: FastCgiRequest, options: PoolDispatchOptions, body: Readable | Buffer | null, bodyLength: number | undefined): void {
    try {
      request.prepare({ params: this.#params(options, bodyLength), body, bodyLength });
    } catch (err) {
      request.fail(err as Error);
      return;
    }
    this.#acquire(request);
  }

  /** The request's meta-variables, from the route settings the interceptor left in the exchange. Throws a WarrenError. */
  #params(options: PoolDispatchOptions, bodyLength: number | undefined): Array<[string, string]> {
    const context = options.context;
    const settings = context?.get(SCRIPT_SETTINGS);
    if (!context || !settings) throw new WarrenError(ErrorCode.UpstreamConnect, "route reached the FastCGI pool without the fastcgi plugin's settings");
    const head = context.exchange.head;
    const params = cgiParams(
      { method: options.method, target: options.path, headers: options.headers, authority: head.authority, clientAddress: head.clientAddress, contentLength: bodyLength },
      settings,
    );
    const size = encodedPairsLength(params);
    if (size > this.#limits.maxParamsBytes) {
      throw new WarrenError(ErrorCode.BadRequest, `FastCGI params of ${size} bytes exceed maxParamsBytes (${this.#limits.maxParamsBytes})`, { status: 431 });
    }
    return params;
  }

  #acquire(request: FastCgiRequest): void {
    if (request.done) return;
    const idle = this.#idle.pop();
    if (idle) {
      this.#unwatch(idle);
      request.attach(idle, this, true);
      return;
    }
    if (this.#keepAlive && this.#sockets.size >= this.#keepAlive.maxConnections) {
      this.#queue.push(request);
      request.onEndWhileWaiting = () => {
        const i = this.#queue.indexOf(request);
        if (i !== -1) this.#queue.splice(i, 1);
      };
      return;
    }
    this.#connect(request);
  }

  #connect(request: FastCgiRequest): void {
    const socket = net.connect({ host: this.#host, port: this.#port, noDelay: true });
    this.#sockets.add(socket);
    // A socket always has an error listener: errors after a request let go of it must not go unhandled.
    socket.on('error', () => socket.destroy());
    socket.once('close', () => this.#forget(socket));
    const timer = setTimeout(() => {
      socket.destroy(coded('UND_ERR_CONNECT_TIMEOUT', `connecting to the FastCGI application timed out (${this.#connectTimeout} ms)`));
    }, this.#connectTimeout);
    const failed = (err: Error): void => {
      clearTimeout(timer);
      request.fail(err);
    };
    socket.once('error', failed);
    request.onEndWhileWaiting = () => socket.destroy();
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', failed);
      request.onEndWhileWaiting = undefined;
      request.attach(socket, this);
    });
  }

  release(socket: Socket, reusable: boolean): void {
    if (!reusable || this.#closed || socket.destroyed || !this.#keepAlive) {
      socket.end();
      setTimeout(() => socket.destroy(), 1_000).unref();
    } else {
      const next = this.#queue.shift();
      if (next) {
        next.onEndWhileWaiting = undefined;
        next.attach(socket, this, true);
        return;
      }
      this.#idle.push(socket);
      const timer = setTimeout(() => socket.destroy(), this.#keepAlive.timeout);
      timer.unref();
      // An idle connection that the application closes or writes to is done.
      const close = (): void => void socket.destroy();
      socket.once('end', close);
      socket.once('data', close);
      this.#idleWatch.set(socket, { timer, close });
    }
  }

  #unwatch(socket: Socket): void {
    const watch = this.#idleWatch.get(socket);
    if (!watch) return;
    this.#idleWatch.delete(socket);
    clearTimeout(watch.timer);
    socket.off('end', watch.close);
    socket.off('data', watch.close);
  }

  reconnect(request: FastCgiRequest): void {
    if (this.#closed) request.fail(coded('UND_ERR_CLOSED', 'the FastCGI pool is closed'));
    else this.#connect(request);
  }

  #forget(socket: Socket): void {
    this.#sockets.delete(socket);
    this.#unwatch(socket);
    const i = this.#idle.indexOf(socket);
    if (i !== -1) this.#idle.splice(i, 1);
    // A slot is free: the next waiting request connects.
    const next = this.#queue.shift();
    if (next) {
      next.onEndWhileWaiting = undefined;
      this.#acquire(next);
    }
    if (this.#closed && this.#sockets.size === 0) this.#drained?.();
  }

  /** Takes no new requests; resolves once the requests in flight ended and every connection closed. */
  close(): Promise<void> {
    this.#closed = true;
    for (const request of this.#queue.splice(0)) request.fail(coded('UND_ERR_CLOSED', 'the FastCGI pool is closed'));
    for (const socket of this.#idle.splice(0)) socket.destroy();
    if (this.#sockets.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.#drained = resolve));
  }

  /** Closes every connection now; requests in flight fail. */
  destroy(): Promise<void> {
    const closing = this.close();
    for (const socket of this.#sockets) socket.destroy(coded('UND_ERR_CLOSED', 'the FastCGI pool was destroyed'));
    return closing;
  }
}

/** The one `content-length` of an upstream header list, if any. */
function contentLengthOf(headers: readonly string[]): number | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) if (headers[i] === 'content-length') return Number(headers[i + 1]);
  return undefined;
}

/** Reads a body whole, refusing (413) one longer than `max` bytes. */
function readBounded(body: Readable, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let total = 0;
    body.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > max) {
        body.destroy();
        reject(new WarrenError(ErrorCode.BadRequest, `request body without a length exceeds maxUnsizedBodyBytes (${max})`, { status: 413 }));
        return;
      }
      chunks.push(chunk);
    });
    body.once('end', () => resolve(Buffer.concat(chunks)));
    body.once('error', reject);
  });
}
