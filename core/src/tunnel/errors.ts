import { ErrorCode, WarrenError } from '../errors.js';

/**
 * Why one edge connection ended or could not be established, as the supervisor needs to know it:
 *  - `dial`: TCP/TLS to the edge failed (connectivity; rotates the address),
 *  - `registration`: the edge answered registerConnection with an error (`cause`, `shouldRetry`, `retryAfterMs`),
 *  - `rpc`: the control-stream RPC failed (malformed, exception, timeout, stream gone before an answer),
 *  - `closed`: the edge closed the connection or the control stream after registration,
 *  - `protocol`: the edge broke the HTTP/2 transport rules.
 */
export type ConnectionFailureKind = 'dial' | 'registration' | 'rpc' | 'closed' | 'protocol';

export interface TunnelConnectionErrorOptions {
  readonly cause?: unknown;
  readonly retryable: boolean;
  /** The edge's `retryAfter`, honoured as a minimum delay before the slot retries. */
  readonly retryAfterMs?: number;
  /** The edge's `cause` text for registration errors (e.g. `EDUPCONN`). */
  readonly edgeCause?: string;
}

/** A failure of one edge connection; a WarrenError (TunnelRegistration or TunnelProtocol) with supervisor hints. */
export class TunnelConnectionError extends WarrenError {
  readonly kind: ConnectionFailureKind;
  readonly retryable: boolean;
  readonly retryAfterMs: number;
  readonly edgeCause: string | undefined;

  constructor(kind: ConnectionFailureKind, message: string, options: TunnelConnectionErrorOptions) {
    super(kind === 'protocol' || kind === 'rpc' ? ErrorCode.TunnelProtocol : ErrorCode.TunnelRegistration, message, {
      cause: options.cause,
      terminal: !options.retryable,
    });
    this.name = 'TunnelConnectionError';
    this.kind = kind;
    this.retryable = options.retryable;
    this.retryAfterMs = options.retryAfterMs ?? 0;
    this.edgeCause = options.edgeCause;
  }

  /** Prototype check: WarrenError's brand check would make every WarrenError look like this subclass. */
  static override [Symbol.hasInstance](value: unknown): boolean {
    // biome-ignore lint/complexity/noThisInStatic: `this` is the class the check runs on, a subclass included
    return Function.prototype[Symbol.hasInstance].call(this, value);
  }

  /** True for the edge's "already connected to this server" answer: rotate to another address. */
  get duplicateConnection(): boolean {
    return this.kind === 'registration' && this.edgeCause === 'EDUPCONN';
  }

  /** True when the edge refused the credentials (the connector retries a few of these: see `unauthorizedRetries`). */
  get unauthorized(): boolean {
    return this.kind === 'registration' && (this.edgeCause ?? '').includes('Unauthorized');
  }
}
