import { inject, injectable, type Route, type RouteBinding, type TransportProfile, type UpstreamPlugin } from '@warren/core/plugin';
import { MAX_CONCURRENT_STREAMS, manifest, type Http2Config } from './manifest.js';

export interface Http2Options {
  /** `prior-knowledge` for cleartext protocols, `alpn` for TLS ones, `auto` when TLS decides. */
  readonly mode: 'prior-knowledge' | 'alpn' | 'auto';
  readonly maxConcurrentStreams: number;
}

const MODES: Readonly<Record<string, Http2Options['mode']>> = {
  h2c: 'prior-knowledge',
  grpc: 'prior-knowledge',
  h2: 'alpn',
  grpcs: 'alpn',
  auto: 'auto',
};

/**
 * Sets the HTTP/2 mode of routes whose protocol calls for it. Core's pools do the rest (`node:http2` sessions
 * for prior knowledge, undici with `allowH2` over TLS). `AUTO` offers h2 and http/1.1 by ALPN when the upstream speaks
 * TLS and stays on HTTP/1.1 in cleartext (there is no safe way to discover h2c).
 */
@injectable()
export class Http2Plugin implements UpstreamPlugin<Http2Options> {
  readonly #settings: Http2Config;

  constructor(@inject(manifest.configToken) settings: Http2Config) {
    this.#settings = settings;
  }

  bind(route: Route): RouteBinding<Http2Options> | undefined {
    const mode = MODES[route.protocol];
    if (!mode) return undefined;
    const streams = MAX_CONCURRENT_STREAMS.get(route);
    return { route, options: { mode, maxConcurrentStreams: streams ?? this.#settings.maxConcurrentStreams } };
  }

  configureTransport(binding: RouteBinding<Http2Options>, profile: TransportProfile): void {
    const { mode, maxConcurrentStreams } = binding.options;
    if (mode === 'auto') {
      if (profile.scheme !== 'https:') return;
      profile.http2 = 'alpn';
    } else {
      profile.http2 = mode;
    }
    profile.maxConcurrentStreams = maxConcurrentStreams;
  }
}
