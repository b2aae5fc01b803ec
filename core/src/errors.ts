/**
 * Warren's error vocabulary. Every error that crosses a module or plugin boundary is a {@link WarrenError}
 * with a stable `code`; callers branch on the code, never on the message.
 *
 * `instanceof WarrenError` works across duplicate copies of `@warren/core` (a custom plugin may bundle its
 * own copy) because the check uses a `Symbol.for` brand instead of the prototype chain.
 */
const brand = Symbol.for('warren.error');

export const ErrorCode = {
  /** A setting failed validation; the message names the key, the value and what was expected. */
  ConfigInvalid: 'WARREN_ERR_CONFIG_INVALID',
  /** A plugin could not be loaded (package missing, no default export, bad manifest). */
  PluginLoad: 'WARREN_ERR_PLUGIN_LOAD',
  /** A plugin's manifest `coreRange` does not include this core's version. */
  PluginVersion: 'WARREN_ERR_PLUGIN_VERSION',
  /** A plugin depends on a plugin that is not enabled. */
  PluginDependency: 'WARREN_ERR_PLUGIN_DEPENDENCY',
  /** Two plugins claim the same id, annotation or protocol. */
  PluginConflict: 'WARREN_ERR_PLUGIN_CONFLICT',
  /** Tunnel credentials (token or credentials file) are malformed; the message names the field, never the secret. */
  TunnelCredentials: 'WARREN_ERR_TUNNEL_CREDENTIALS',
  /** The edge refused registration. */
  TunnelRegistration: 'WARREN_ERR_TUNNEL_REGISTRATION',
  /** The tunnel protocol was violated by the peer (bad frame, bad RPC message). */
  TunnelProtocol: 'WARREN_ERR_TUNNEL_PROTOCOL',
  /** No route matched the request (404). */
  NoRoute: 'WARREN_ERR_NO_ROUTE',
  /** The route's backend has no ready endpoint (503). */
  NoEndpoints: 'WARREN_ERR_NO_ENDPOINTS',
  /** Connecting to the upstream failed (502). */
  UpstreamConnect: 'WARREN_ERR_UPSTREAM_CONNECT',
  /** The upstream did not answer in time (504). */
  UpstreamTimeout: 'WARREN_ERR_UPSTREAM_TIMEOUT',
  /** The upstream broke the exchange after it started (502 or stream reset). */
  UpstreamProtocol: 'WARREN_ERR_UPSTREAM_PROTOCOL',
  /** Every connection to the endpoint stayed busy for the queue timeout, or its queue is full (503). */
  UpstreamBusy: 'WARREN_ERR_UPSTREAM_BUSY',
  /** The client's request is malformed or hostile (400/413/431). */
  BadRequest: 'WARREN_ERR_BAD_REQUEST',
  /** An access policy refused the request (403), e.g. a route's firewall lists. */
  Forbidden: 'WARREN_ERR_FORBIDDEN',
  /** A Kubernetes object is invalid for Warren's purposes; never retried (terminal). */
  InvalidObject: 'WARREN_ERR_INVALID_OBJECT',
  /** A call to the Cloudflare API failed. */
  CloudflareApi: 'WARREN_ERR_CLOUDFLARE_API',
  /** A call to the Kubernetes API failed. */
  KubernetesApi: 'WARREN_ERR_KUBERNETES_API',
  /** Shutdown in progress. */
  ShuttingDown: 'WARREN_ERR_SHUTTING_DOWN',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface WarrenErrorOptions {
  cause?: unknown;
  /** HTTP status to answer with when this error ends an exchange. */
  status?: number;
  /** True when retrying cannot help (bad user input): reconcilers drop the key instead of requeueing. */
  terminal?: boolean;
  /** Seconds after which the client may retry; sent as `Retry-After` when this error ends an exchange. */
  retryAfter?: number;
}

export class WarrenError extends Error {
  readonly code: ErrorCode;
  readonly status: number | undefined;
  readonly terminal: boolean;
  readonly retryAfter: number | undefined;

  constructor(code: ErrorCode, message: string, options: WarrenErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'WarrenError';
    this.code = code;
    this.status = options.status;
    this.terminal = options.terminal ?? false;
    this.retryAfter = options.retryAfter;
    (this as unknown as Record<symbol, boolean>)[brand] = true;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true;
  }
}

/** True when `err` is a WarrenError with the given code. */
export function isWarrenError(err: unknown, code?: ErrorCode): err is WarrenError {
  return err instanceof WarrenError && (code === undefined || err.code === code);
}
