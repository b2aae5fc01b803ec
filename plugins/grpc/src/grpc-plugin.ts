import { inject, injectable, type Route, type RouteBinding, type UpstreamInterceptor, type UpstreamPlugin } from '@warren/core/plugin';
import { parseGrpcTimeout } from './grpc-timeout.js';
import { GRPC_DEFAULT_TIMEOUT, GRPC_IDLE_TIMEOUT, manifest, type GrpcConfig } from './manifest.js';

export interface GrpcOptions {
  readonly defaultTimeout: number | undefined;
  /** Stream idle bound in ms. */
  readonly idleTimeout: number;
}

/**
 * Binds `grpc`/`grpcs` routes. Core already keeps `te: trailers`, passes trailers through and answers
 * failures with a trailers-only gRPC status for these routes (see core's `proxy/errors.ts`); this plugin adds
 * the call deadline: the client's `grpc-timeout` (or the configured default) ends the call with
 * DEADLINE_EXCEEDED and cancels the upstream stream. Instead of the route's idle timeout a call has a stream idle
 * timeout (default 5 minutes): messages either way reset it, so a long stream that keeps talking lives on while
 * one whose pod went silent is ended.
 */
@injectable()
export class GrpcPlugin implements UpstreamPlugin<GrpcOptions> {
  readonly #settings: GrpcConfig;

  constructor(@inject(manifest.configToken) settings: GrpcConfig) {
    this.#settings = settings;
  }

  bind(route: Route): RouteBinding<GrpcOptions> | undefined {
    if (route.protocol !== 'grpc' && route.protocol !== 'grpcs') return undefined;
    const annotated = GRPC_DEFAULT_TIMEOUT.get(route);
    const idle = GRPC_IDLE_TIMEOUT.get(route);
    return { route, options: { defaultTimeout: annotated ?? this.#settings.defaultTimeout, idleTimeout: idle ?? this.#settings.idleTimeout } };
  }

  interceptor(binding: RouteBinding<GrpcOptions>): UpstreamInterceptor {
    const fallback = binding.options.defaultTimeout;
    const idle = binding.options.idleTimeout;
    return (next) =>
      function grpcDeadline(options, handler) {
        const h = options.headers;
        let timeout: number | undefined;
        for (let i = 0; i < h.length; i += 2) {
          if (h[i] === 'grpc-timeout') {
            timeout = parseGrpcTimeout(h[i + 1]);
            break;
          }
        }
        timeout ??= fallback;
        options.context.setIdleTimeout(idle);
        if (timeout !== undefined) {
          options.context.setDeadline(timeout);
          // The response head of a long unary call may legitimately take until the deadline.
          if (typeof options.headersTimeout === 'number' && options.headersTimeout < timeout) options.headersTimeout = timeout;
        }
        next(options, handler);
      };
  }
}
