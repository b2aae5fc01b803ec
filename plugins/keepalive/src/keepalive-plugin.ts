import { pluginConfigToken, type RouteBinding, type TransportProfile, type UpstreamPlugin } from '@warren/core/plugin';
import type { Route } from '@warren/core/plugin';
import { inject, injectable } from 'tsyringe';

interface KeepaliveSettings {
  readonly idleTimeout: number;
  readonly maxConnectionsPerEndpoint: number;
}

interface KeepaliveOptions {
  readonly timeout: number;
  readonly maxConnections: number;
}

/** Turns on connection reuse for every route; annotations tune the limits per Ingress. */
@injectable()
export class KeepalivePlugin implements UpstreamPlugin<KeepaliveOptions> {
  readonly id = 'upstream.keepalive';
  readonly #settings: KeepaliveSettings;

  constructor(@inject(pluginConfigToken('keepalive')) settings: KeepaliveSettings) {
    this.#settings = settings;
  }

  bind(route: Route): RouteBinding<KeepaliveOptions> {
    const a = route.annotations;
    return {
      route,
      options: {
        timeout: (a['upstream-keepalive-timeout'] as number | undefined) ?? this.#settings.idleTimeout,
        maxConnections: (a['upstream-keepalive-connections'] as number | undefined) ?? this.#settings.maxConnectionsPerEndpoint,
      },
    };
  }

  configureTransport(binding: RouteBinding<KeepaliveOptions>, profile: TransportProfile): void {
    profile.keepAlive = { timeout: binding.options.timeout, maxConnections: binding.options.maxConnections };
  }
}
