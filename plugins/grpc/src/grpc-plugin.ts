import {
  headerValue,
  inject,
  injectable,
  type ErrorAnswer,
  type FailedExchange,
  type Route,
  type RouteBinding,
  type UpstreamDispatchOptions,
  type UpstreamInterceptor,
  type UpstreamPlugin,
} from '@warren/core/plugin';
import { GrpcResponseHandler } from './grpc-response.js';
import { grpcStatusFields, isGrpcType } from './grpc-status.js';
import { parseGrpcTimeout } from './grpc-timeout.js';
import { GRPC_DEFAULT_TIMEOUT, GRPC_IDLE_TIMEOUT, manifest, type GrpcConfig } from './manifest.js';

export interface GrpcOptions {
  /** The route's backend protocol is gRPC (`grpc`, `grpcs`); otherwise only gRPC requests get gRPC treatment. */
  readonly grpcRoute: boolean;
  readonly defaultTimeout: number | undefined;
  /** Stream idle bound in ms. */
  readonly idleTimeout: number;
}

/** The backend protocols this plugin serves (its manifest lists them). */
const GRPC_PROTOCOLS: ReadonlySet<string> = new Set(['grpc', 'grpcs']);

/**
 * gRPC, end to end. Every exchange that speaks gRPC — on a `grpc`/`grpcs` route, or a request whose content type is
 * `application/grpc…` on any route — keeps the client's `te: trailers` (core drops TE), and its response status
 * reaches the client as trailers (a trailers-only response is passed on as a head plus trailers, see
 * {@link GrpcResponseHandler}). Failures Warren answers itself become gRPC statuses (`mapError`): a trailers-only
 * response before the head went out, status trailers after it.
 *
 * On gRPC routes it also enforces the call deadline: the client's `grpc-timeout` (or the configured default) ends
 * the call with DEADLINE_EXCEEDED and cancels the upstream stream. Instead of the route's idle timeout a call has a
 * stream idle timeout (default 5 minutes): messages either way reset it, so a long stream that keeps talking lives
 * on while one whose pod went silent is ended.
 */
@injectable()
export class GrpcPlugin implements UpstreamPlugin<GrpcOptions> {
  readonly #settings: GrpcConfig;

  constructor(@inject(manifest.configToken) settings: GrpcConfig) {
    this.#settings = settings;
  }

  /** Binds every route: gRPC requests may reach any of them. */
  bind(route: Route): RouteBinding<GrpcOptions> {
    const grpcRoute = GRPC_PROTOCOLS.has(route.protocol);
    const annotated = GRPC_DEFAULT_TIMEOUT.get(route);
    const idle = GRPC_IDLE_TIMEOUT.get(route);
    return {
      route,
      options: { grpcRoute, defaultTimeout: annotated ?? this.#settings.defaultTimeout, idleTimeout: idle ?? this.#settings.idleTimeout },
    };
  }

  interceptor(binding: RouteBinding<GrpcOptions>): UpstreamInterceptor {
    const { grpcRoute, defaultTimeout, idleTimeout } = binding.options;
    return (next) =>
      function grpc(options, handler) {
        if (!grpcRoute && !isGrpcType(headerValue(options.context.exchange.head.headers, 'content-type'))) {
          next(options, handler);
          return;
        }
        keepTeTrailers(options);
        if (grpcRoute) enforceDeadline(options, defaultTimeout, idleTimeout);
        next(options, new GrpcResponseHandler(handler));
      };
  }

  /**
   * A gRPC status instead of an HTTP error page, for gRPC routes and gRPC requests: a trailers-only response
   * (HTTP 200, `content-type: application/grpc`, `grpc-status`, `grpc-message`) before the head went out, status
   * trailers after it. Once a response head went out, its content type decides on other routes.
   */
  mapError(binding: RouteBinding<GrpcOptions> | undefined, failure: FailedExchange): ErrorAnswer | undefined {
    const sent = failure.response;
    const grpc =
      binding?.options.grpcRoute === true || (sent ? isGrpcType(headerValue(sent.headers, 'content-type')) : isGrpcType(headerValue(failure.request.headers, 'content-type')));
    if (!grpc) return undefined;
    const status = grpcStatusFields(failure);
    return sent ? { trailers: status } : { status: 200, headers: ['content-type', 'application/grpc', ...status] };
  }
}

/** Puts the client's `te: trailers` back on the upstream request (gRPC servers require it). */
function keepTeTrailers(options: UpstreamDispatchOptions): void {
  const head = options.context.exchange.head.headers;
  for (let i = 0; i + 1 < head.length; i += 2) {
    const name = head[i]!;
    if (name.length !== 2 || name.toLowerCase() !== 'te') continue;
    if (head[i + 1]!.split(',').some((token) => token.trim().toLowerCase() === 'trailers')) {
      options.headers = [...options.headers, 'te', 'trailers'];
      return;
    }
  }
}

function enforceDeadline(options: UpstreamDispatchOptions, fallback: number | undefined, idle: number): void {
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
}
