import type { Dispatcher } from 'undici';
import type { Route } from '../routes/types.js';
import type { Exchange } from '../proxy/exchange.js';
import type { PluginLifecycle } from './lifecycle.js';

/**
 * A data-plane plugin (kinds `transport`, `protocol`, `policy`), registered under `UPSTREAM_PLUGIN`.
 * The pipeline compiles every route once per route-table generation (never per request):
 *
 *  1. route phase: `bind(route)` for every plugin; a plugin that returns undefined stays out of this route.
 *     Exactly one plugin serves the route's protocol (manifest `protocols`; `http` is core's own).
 *  2. connection phase: `configureTransport(binding, profile)` for every bound plugin, in chain order; core
 *     keeps one connection pool per distinct profile.
 *  3. exchange phase: `interceptor(binding)` for every bound plugin, composed in chain order around the
 *     undici dispatch (undici's `DispatchHandler` contract covers streaming bodies, trailers and upgrades);
 *     `handleUpgrade` lets a protocol plugin take over upgrade exchanges.
 */
export interface UpstreamPlugin extends PluginLifecycle {
  readonly id: string;
  bind?(route: Route): RouteBinding | undefined;
  configureTransport?(binding: RouteBinding, profile: TransportProfile): void;
  interceptor?(binding: RouteBinding): Dispatcher.DispatcherComposeInterceptor;
  handleUpgrade?(binding: RouteBinding, exchange: Exchange, upstream: UpstreamTarget): Promise<void>;
}

/** Per-route state a plugin computed in `bind`: parsed options, resolved secrets. Immutable. */
export interface RouteBinding {
  readonly route: Route;
  readonly options: Readonly<Record<string, unknown>>;
}

/** Upstream connection options; plugins fill it in `configureTransport`. */
export interface TransportProfile {
  /** `http:` or `https:` */
  scheme: 'http:' | 'https:';
  /** Speak HTTP/2: over TLS via ALPN, or cleartext with prior knowledge (h2c). */
  http2: 'off' | 'alpn' | 'prior-knowledge';
  tls?: {
    ca?: string | Buffer | Array<string | Buffer>;
    cert?: string | Buffer;
    key?: string | Buffer;
    servername?: string;
    rejectUnauthorized: boolean;
    /** Identity of the TLS material, so a rotated Secret yields a new pool while the old one drains. */
    fingerprint?: string;
  };
  keepAlive?: { timeout: number; maxConnections: number };
  maxConcurrentStreams?: number;
}

export interface UpstreamTarget {
  readonly origin: string;
  readonly endpointKey: string;
}
