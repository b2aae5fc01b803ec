import { inject, injectable, TOKENS, type PluginManifest, type Route, type RouteBinding, type TransportProfile, type UpstreamPlugin } from '@warren/core/plugin';
import { MAX_CONCURRENT_STREAMS, manifest, type Http2Config } from './manifest.js';

export interface Http2Options {
  /** `prior-knowledge` for cleartext protocols, `alpn` for TLS ones, `auto` when TLS decides. */
  readonly mode: 'prior-knowledge' | 'alpn' | 'auto';
  readonly maxConcurrentStreams: number;
}

/** HTTP/2 mode of every protocol whose manifest says it needs HTTP/2 (`protocolTraits`): ALPN over TLS, else h2c. */
function modesOf(manifests: readonly PluginManifest[]): Map<string, Http2Options['mode']> {
  const modes = new Map<string, Http2Options['mode']>();
  for (const m of manifests) {
    for (const protocol of m.protocols ?? []) {
      const traits = m.protocolTraits?.[protocol];
      if (traits?.http2 && !modes.has(protocol)) modes.set(protocol, traits.tls ? 'alpn' : 'prior-knowledge');
    }
  }
  return modes;
}

/** Core's value for a route whose protocol is to be guessed from the Service port. */
const AUTO = 'auto';

/**
 * Sets the HTTP/2 mode of routes whose protocol calls for it, as the enabled plugins' manifests declare it (`h2c`,
 * `h2` here; `grpc`, `grpcs` from the gRPC plugin). Core's pools do the rest (`node:http2` sessions for prior
 * knowledge, undici with `allowH2` over TLS). `AUTO` offers h2 and http/1.1 by ALPN when the upstream speaks TLS and
 * stays on HTTP/1.1 in cleartext (there is no safe way to discover h2c).
 */
@injectable()
export class Http2Plugin implements UpstreamPlugin<Http2Options> {
  readonly #settings: Http2Config;
  readonly #modes: ReadonlyMap<string, Http2Options['mode']>;

  constructor(@inject(manifest.configToken) settings: Http2Config, @inject(TOKENS.EnabledManifests) manifests: readonly PluginManifest[]) {
    this.#settings = settings;
    this.#modes = modesOf(manifests);
  }

  bind(route: Route): RouteBinding<Http2Options> | undefined {
    const mode = route.protocol === AUTO ? 'auto' : this.#modes.get(route.protocol);
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
