import { inject, injectable, type Route, type RouteBinding, type TransportProfile, type UpstreamPlugin } from '@warren/core/plugin';
import { KEEPALIVE_CONNECTIONS, KEEPALIVE_TIMEOUT, manifest, type KeepaliveConfig } from './manifest.js';

interface KeepaliveOptions {
  readonly timeout: number;
  readonly maxConnections: number;
}

/** Turns on connection reuse for every route; annotations tune the limits per Ingress. */
@injectable()
export class KeepalivePlugin implements UpstreamPlugin<KeepaliveOptions> {
  readonly #settings: KeepaliveConfig;

  constructor(@inject(manifest.configToken) settings: KeepaliveConfig) {
    this.#settings = settings;
  }

  bind(route: Route): RouteBinding<KeepaliveOptions> {
    return {
      route,
      options: {
        timeout: KEEPALIVE_TIMEOUT.get(route) ?? this.#settings.idleTimeout,
        maxConnections: KEEPALIVE_CONNECTIONS.get(route) ?? this.#settings.maxConnectionsPerEndpoint,
      },
    };
  }

  configureTransport(binding: RouteBinding<KeepaliveOptions>, profile: TransportProfile): void {
    profile.keepAlive = { timeout: binding.options.timeout, maxConnections: binding.options.maxConnections };
  }
}
