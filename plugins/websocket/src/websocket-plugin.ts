import type { Duplex } from 'node:stream';
import {
  pluginConfigToken,
  type Route,
  type RouteBinding,
  type UpgradeSession,
  type UpstreamInterceptor,
  type UpstreamPlugin,
} from '@warren/core/plugin';
import { inject, injectable } from 'tsyringe';

interface WebsocketSettings {
  readonly idleTimeout: number;
}

export interface WebsocketOptions {
  /** From `websocket-idle-timeout`, when set. */
  readonly idleTimeout: number | undefined;
}

/** Pipes upgraded sessions; see the module doc in `index.ts`. */
@injectable()
export class WebsocketPlugin implements UpstreamPlugin<WebsocketOptions> {
  readonly id = 'upstream.websocket';
  readonly #settings: WebsocketSettings;

  constructor(@inject(pluginConfigToken('websocket')) settings: WebsocketSettings) {
    this.#settings = settings;
  }

  bind(route: Route): RouteBinding<WebsocketOptions> {
    return { route, options: { idleTimeout: route.annotations['websocket-idle-timeout'] as number | undefined } };
  }

  /** Upgrade requests carry the handshake fields the client sent; a missing version defaults to 13 (RFC 6455). */
  interceptor(): UpstreamInterceptor {
    return (next) =>
      function websocketHandshake(options, handler) {
        if (options.upgrade && !options.headers.includes('sec-websocket-version')) options.headers.push('sec-websocket-version', '13');
        next(options, handler);
      };
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
export function pipeSession(session: UpgradeSession, idleMs: number): Promise<void> {
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
