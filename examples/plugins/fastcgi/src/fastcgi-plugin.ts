import {
  pluginConfigToken,
  type ProvisionContext,
  type Route,
  type RouteBinding,
  type TransportProfile,
  type UpstreamInterceptor,
  type UpstreamPlugin,
} from '@warren/core/plugin';
import { inject, injectable } from 'tsyringe';
import type { ScriptSettings } from './cgi-params.js';
import { FastCgiPool, SCRIPT_SETTINGS_ATTRIBUTE } from './fastcgi-pool.js';
import { FASTCGI_INDEX, FASTCGI_PARAMS, FASTCGI_PROTOCOL, FASTCGI_SCRIPT_ROOT, type FastcgiConfig } from './manifest.js';

/**
 * Serves routes whose backend protocol is `fcgi`. `bind` settles the route's script settings (plugin settings,
 * then the Ingress's annotations); the interceptor hands them to the exchange; `createPool` gives core a
 * {@link FastCgiPool} per endpoint, which speaks FastCGI instead of HTTP. Pools are shared by every route with
 * the same endpoint and transport profile, so route settings travel with each exchange, not with the pool.
 */
@injectable()
export class FastcgiPlugin implements UpstreamPlugin<ScriptSettings> {
  readonly id = 'example.fastcgi';
  readonly #config: FastcgiConfig;
  #logger: ProvisionContext['logger'] | undefined;

  constructor(@inject(pluginConfigToken('fastcgi')) config: FastcgiConfig) {
    this.#config = config;
  }

  provision(ctx: ProvisionContext): void {
    this.#logger = ctx.logger;
  }

  bind(route: Route): RouteBinding<ScriptSettings> | undefined {
    if (route.protocol !== FASTCGI_PROTOCOL) return undefined;
    const a = route.annotations;
    const params = new Map(Object.entries(this.#config.params));
    for (const [name, value] of (a[FASTCGI_PARAMS.key] as ReadonlyArray<readonly [string, string]> | undefined) ?? []) {
      params.delete(name);
      params.set(name, value);
    }
    return {
      route,
      options: Object.freeze({
        documentRoot: (a[FASTCGI_SCRIPT_ROOT.key] as string | undefined) ?? this.#config.documentRoot,
        index: (a[FASTCGI_INDEX.key] as string | undefined) ?? this.#config.index,
        scriptExtension: this.#config.scriptExtension,
        params: Object.freeze([...params]),
      }),
    };
  }

  interceptor(binding: RouteBinding<ScriptSettings>): UpstreamInterceptor {
    const settings = binding.options;
    return (next) =>
      function fastcgi(options, handler) {
        options.context.attributes.set(SCRIPT_SETTINGS_ATTRIBUTE, settings);
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
