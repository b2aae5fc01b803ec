import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import {
  ErrorCode,
  ForwardingHandler,
  inject,
  injectable,
  WarrenError,
  type DispatchController,
  type DispatchHandler,
  type ResponseHeaders,
  type Route,
  type RouteBinding,
  type TransportProfile,
  type UpgradeSession,
  type UpstreamInterceptor,
  type UpstreamPlugin,
} from '@warren/core/plugin';
import { WEBSOCKET_IDLE_TIMEOUT, manifest, type WebsocketConfig } from './manifest.js';

export interface WebsocketOptions {
  /** From `websocket-idle-timeout`, when set. */
  readonly idleTimeout: number | undefined;
}

/** Pipes upgraded sessions; see the module doc in `index.ts`. */
@injectable()
export class WebsocketPlugin implements UpstreamPlugin<WebsocketOptions> {
  readonly #settings: WebsocketConfig;

  constructor(@inject(manifest.configToken) settings: WebsocketConfig) {
    this.#settings = settings;
  }

  bind(route: Route): RouteBinding<WebsocketOptions> {
    return { route, options: { idleTimeout: WEBSOCKET_IDLE_TIMEOUT.get(route) } };
  }

  /**
   * Upgrade requests carry the handshake fields the client sent; a missing version defaults to 13 (RFC 6455).
   * The upstream's 101 must complete that handshake (see {@link HandshakeCheck}).
   */
  interceptor(): UpstreamInterceptor {
    return (next) =>
      function websocketHandshake(options, handler) {
        if (!options.upgrade) return next(options, handler);
        const h = options.headers;
        if (!h.includes('sec-websocket-version')) h.push('sec-websocket-version', '13');
        let key: string | undefined;
        for (let i = 0; i < h.length; i += 2) if (h[i] === 'sec-websocket-key') key = h[i + 1];
        next(options, new HandshakeCheck(handler, key));
      };
  }

  /**
   * The WebSocket handshake is an HTTP/1.1 upgrade, and the upgraded connection leaves its pool: a route that
   * otherwise speaks HTTP/2 sends its upgrade requests over HTTP/1.1 connections of their own.
   */
  upgradeProfile(_binding: RouteBinding<WebsocketOptions>, profile: Readonly<TransportProfile>): TransportProfile {
    return profile.http2 === 'off' ? profile : { ...profile, http2: 'off', maxConcurrentStreams: undefined };
  }

  onUpgrade(binding: RouteBinding<WebsocketOptions>, session: UpgradeSession): Promise<void> {
    const idleMs = binding.options.idleTimeout ?? session.idleTimeout ?? this.#settings.idleTimeout;
    return pipeSession(session, idleMs);
  }
}

/**
 * Pipes bytes both ways with backpressure until the session ends: the upstream closing ends the client side
 * once its last bytes are written; the client going away, an error on either side or `idleMs` without a byte
 * destroys both. Resolves when both sides are done.
 */
function pipeSession(session: UpgradeSession, idleMs: number): Promise<void> {
  const { fromClient, toClient, upstream, exchange } = session;
  (upstream as Duplex & { setNoDelay?: (v: boolean) => void }).setNoDelay?.(true);
  return new Promise<void>((resolve) => {
    let done = false;
    const timer = setTimeout(() => finish(true), idleMs);
    const touch = (): void => {
      timer.refresh();
    };
    const onAbort = (): void => finish(true);
    const finish = (destroy: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      exchange.signal.removeEventListener('abort', onAbort);
      fromClient.off('data', touch);
      upstream.off('data', touch);
      if (destroy) {
        fromClient.unpipe(upstream);
        upstream.unpipe(toClient);
        upstream.destroy();
        toClient.destroy();
      }
      resolve();
    };
    exchange.signal.addEventListener('abort', onAbort, { once: true });
    fromClient.on('data', touch);
    upstream.on('data', touch);
    fromClient.pipe(upstream);
    upstream.pipe(toClient);
    for (const side of [fromClient, toClient, upstream]) side.once('error', () => finish(true));
    // pipe() ends toClient after upstream's last byte; the session is over when that write side finished
    // and the upstream connection closed.
    let upstreamClosed = false;
    let clientFinished = false;
    const maybeDone = (): void => {
      if (upstreamClosed && clientFinished) finish(false);
    };
    upstream.once('close', () => {
      upstreamClosed = true;
      if (!toClient.writableEnded) toClient.end();
      maybeDone();
    });
    toClient.once('finish', () => {
      clientFinished = true;
      maybeDone();
    });
    toClient.once('close', () => {
      clientFinished = true;
      if (!upstream.destroyed) upstream.end();
      maybeDone();
    });
  });
}

/** The value a server answers in `Sec-WebSocket-Accept` for `key` (RFC 6455 §4.2.2). */
export function websocketAccept(key: string): string {
  return createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
}

/**
 * Accepts the upstream's 101 only when it completes the WebSocket handshake the client started: `Upgrade:
 * websocket` and `Sec-WebSocket-Accept` derived from the client's key. Anything else (another protocol such as
 * h2c, a missing or wrong accept value) would hand the client a byte stream it did not ask for: the upstream
 * connection is closed and the client gets 502.
 */
class HandshakeCheck extends ForwardingHandler {
  readonly #key: string | undefined;

  constructor(next: DispatchHandler, key: string | undefined) {
    super(next);
    this.#key = key;
  }

  override onRequestUpgrade(controller: DispatchController, statusCode: number, headers: ResponseHeaders, socket: Duplex): void {
    const problem = handshakeProblem(this.#key, headers);
    if (problem === undefined) return super.onRequestUpgrade(controller, statusCode, headers, socket);
    socket.destroy();
    this.onResponseError(controller, new WarrenError(ErrorCode.UpstreamProtocol, `upstream answered the WebSocket handshake wrongly: ${problem}`, { status: 502 }));
  }
}

function handshakeProblem(key: string | undefined, headers: ResponseHeaders): string | undefined {
  const one = (name: string): string | undefined => {
    const v = headers[name];
    return Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v;
  };
  const upgrade = one('upgrade')?.trim().toLowerCase();
  // Upstream values are not quoted: error messages reach the client.
  if (upgrade !== 'websocket') return 'the 101 does not switch to websocket';
  if (key === undefined) return 'the client sent no Sec-WebSocket-Key';
  const accept = one('sec-websocket-accept')?.trim();
  if (accept !== websocketAccept(key)) return accept === undefined ? 'Sec-WebSocket-Accept is missing' : 'Sec-WebSocket-Accept does not match the key';
  return undefined;
}
