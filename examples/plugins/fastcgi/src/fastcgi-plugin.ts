import {
  inject,
  injectable,
  type ProvisionContext,
  type Route,
  type RouteBinding,
  type TransportProfile,
  type UpstreamInterceptor,
  type UpstreamPlugin,
} from '@warren/core/plugin';
import type { ScriptSettings } from './cgi-params.js';
import { FastCgiPool, SCRIPT_SETTINGS } from './fastcgi-pool.js';
import { FASTCGI_INDEX, FASTCGI_PARAMS, FASTCGI_PROTOCOL, FASTCGI_SCRIPT_ROOT, manifest, type FastcgiConfig } from './manifest.js';

/**
 * Serves routes whose backend protocol is `fcgi`. `bind` settles the route's script settings (plugin settings,
 * then the Ingress's annotations); the interceptor hands them to the exchange; `createPool` gives core a
 * {@link FastCgiPool} per endpoint, which speaks FastCGI instead of HTTP. Pools are shared by every route with
 * the same endpoint and transport profile, so route settings travel with each exchange, not with the pool.
 */
@injectable()
export class FastcgiPlugin implements UpstreamPlugin<ScriptSettings> {
  readonly #config: FastcgiConfig;
  #logger: ProvisionContext['logger'] | undefined;

  constructor(@inject(manifest.configToken) config: FastcgiConfig) {
    this.#config = config;
  }

  provision(ctx: ProvisionContext): void {
    this.#logger = ctx.logger;
  }

  bind(route: Route): RouteBinding<ScriptSettings> | undefined {
    if (route.protocol !== FASTCGI_PROTOCOL) return undefined;
    const params = new Map(Object.entries(this.#config.params));
    for (const [name, value] of FASTCGI_PARAMS.get(route) ?? []) {
      params.delete(name);
      params.set(name, value);
    }
    return {
      route,
      options: Object.freeze({
        documentRoot: FASTCGI_SCRIPT_ROOT.get(route) ?? this.#config.documentRoot,
        index: FASTCGI_INDEX.get(route) ?? this.#config.index,
        scriptExtension: this.#config.scriptExtension,
        params: Object.freeze([...params]),
      }),
    };
  }

  interceptor(binding: RouteBinding<ScriptSettings>): UpstreamInterceptor {
    const settings = binding.options;
    return (next) =>
      function fastcgi(options, handler) {
        options.context.set(SCRIPT_SETTINGS, settings);
        next(options, handler);
      };
  }

  createPool(_binding: RouteBinding<ScriptSettings>, origin: string, profile: TransportProfile): FastCgiPool {
    const c = this.#config;
    const limits = {
      maxResponseHeaderBytes: c.maxResponseHeaderBytes,
      maxParamsBytes: c.maxParamsBytes,
      maxStderrBytes: c.maxStderrBytes,
      maxUnsizedBodyBytes: c.maxUnsizedBodyBytes,
    };
    return new FastCgiPool(origin, profile, limits, this.#logger);
  }
}
