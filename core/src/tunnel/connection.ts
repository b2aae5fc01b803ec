import { EventEmitter } from 'node:events';
import { isIPv4, isIPv6 } from 'node:net';
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import type { ExchangeHandler, RawHeaders } from '../proxy/exchange.js';
import { RegistrationClient, type ClientInfo, type ConnectionDetails, type RegistrationRequest } from './rpc/index.js';
import { type ConfigurationVersions, serveConfigurationUpdate } from './configuration-update.js';
import type { TunnelCredentials } from './credentials.js';
import type { EdgeAddress } from './discovery.js';
import { dialEdge } from './edge-tls.js';
import { TunnelConnectionError } from './errors.js';
import type { BodyBudget, BodyLedger } from './body-budget.js';
import type { TunnelMetrics } from './metrics.js';
import { serializeHeaders } from './header-serialization.js';
import { CONNECTOR_CONNECTION_WINDOW, CONNECTOR_H2_SETTINGS, HEADER_RESPONSE_HEADERS, HEADER_RESPONSE_META, META_CLOUDFLARED } from './protocol.js';
import { buildRequestHead } from './request-head.js';
import { classifyRawHeaders, type StreamKind } from './stream-classifier.js';
import { ErrorCode, type H2ConnectionError } from './h2/frames.js';
import { H2ServerSession } from './h2/session.js';
import type { H2Stream } from './h2/stream.js';
import { TunnelExchange, type TunnelExchangeHooks } from './tunnel-exchange.js';

/**
 * One HTTP/2 connection to the edge, in cloudflared's reverse roles: Warren dials TLS
 * but is the HTTP/2 *server*; the edge opens the control stream first, Warren registers over it
 * (RPC), then the edge opens request streams that become `Exchange`s.
 *
 * Lifecycle: `establish()` resolves once registered (or rejects with a `TunnelConnectionError`), `closed`
 * resolves when the connection is over (with the reason, or undefined after our own shutdown),
 * `shutdown(graceMs)` ends it gracefully and `destroy()` at once. Events: `unregistered` (the edge no longer
 * routes here: shutdown, control stream lost, edge GOAWAY).
 */

/** Limits for edge-opened streams; defaults are at least as permissive as cloudflared. */
export interface ConnectionLimits {
  /** Header fields per request, pseudo-headers included; more resets the stream (ENHANCE_YOUR_CALM). Default 1024. */
  readonly maxHeaderPairs?: number;
  /** HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE announced to the edge. */
  readonly maxHeaderListSize?: number;
  /** HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS announced to the edge. */
  readonly maxConcurrentStreams?: number;
  /** Bytes queued for the edge's socket, in MB, beyond which the edge is taken as not reading and the connection ends. Default 64. */
  readonly maxSessionMemoryMb?: number;
  /** RST_STREAM frames from the edge tolerated in a burst (default {@link DEFAULT_STREAM_RESET_BURST}). */
  readonly streamResetBurst?: number;
  /** RST_STREAM frames per second that refill the burst budget (default {@link DEFAULT_STREAM_RESET_RATE}). */
  readonly streamResetRate?: number;
  /**
   * Bounds unread request bodies, shared by every connection of the process; its window is announced as
   * SETTINGS_INITIAL_WINDOW_SIZE. Without it the connection announces a 1 MiB window and no bound.
   */
  readonly bodyBudget?: BodyBudget;
}

/** Header fields per request unless `maxHeaderPairs` says otherwise. */
const DEFAULT_MAX_HEADER_PAIRS = 1024;
/** Bytes queued for the edge's socket unless `maxSessionMemoryMb` says otherwise, in MB. */
const DEFAULT_SESSION_MEMORY_MB = 64;
/** Stream resets from the edge tolerated in a burst before the session gives up (nghttp2's default was 1000). */
const DEFAULT_STREAM_RESET_BURST = 100_000;
/** Stream resets per second that refill that budget (nghttp2's default was 33). */
const DEFAULT_STREAM_RESET_RATE = 10_000;

export interface EdgeConnectionOptions {
  readonly connIndex: number;
  readonly address: EdgeAddress;
  readonly credentials: TunnelCredentials;
  readonly client: ClientInfo;
  readonly secureContext: SecureContext;
  readonly handler: ExchangeHandler;
  readonly logger: Logger;
  /** Timeout of each RPC call, and of waiting for the edge to open the control stream. */
  readonly rpcTimeoutMs: number;
  /** Backoff retries this slot used so far (sent to the edge). */
  readonly numPreviousAttempts: number;
  /** Pushed with updateLocalConfiguration on connection 0 unless the tunnel is remotely managed. */
  readonly localConfig?: Buffer | undefined;
  readonly configurationVersions: ConfigurationVersions;
  readonly metrics?: TunnelMetrics | undefined;
  readonly dialTimeoutMs?: number | undefined;
  readonly limits?: ConnectionLimits | undefined;
}

/** The local socket address as the 16 bytes the registration carries (IPv4 mapped as ::ffff:a.b.c.d). */
export function originLocalIp(address: string | undefined): Buffer | undefined {
  if (!address) return undefined;
  if (isIPv4(address)) return Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, ...address.split('.').map(Number)]);
  if (!isIPv6(address)) return undefined;
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return originLocalIp(mapped[1]);
  const [head, tail = ''] = address.split('::');
  const parse = (part: string) => (part ? part.split(':').map((g) => parseInt(g, 16)) : []);
  const front = parse(head!);
  const back = address.includes('::') ? parse(tail) : [];
  const groups = [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => {
    out.writeUInt16BE(g, i * 2);
  });
  return out;
}

export class EdgeConnection extends EventEmitter {
  readonly connIndex: number;
  readonly address: EdgeAddress;
  readonly #o: EdgeConnectionOptions;
  readonly #log: Logger;
  readonly #inflight = new Set<H2Stream>();
  /** The end of every exchange of this connection: one object, not a closure per exchange. */
  readonly #exchangeHooks: TunnelExchangeHooks = {
    onDone: (exchange, status, failed) => {
      this.#inflight.delete(exchange.body);
      const metrics = this.#o.metrics;
      if (metrics) {
        metrics.concurrentRequests.dec();
        if (status > 0) metrics.responseByCode.inc({ status_code: String(status) });
        if (failed) metrics.requestErrors.inc();
      }
      if (this.#ending) this.emit('drained-one');
    },
  };
  readonly #closed: Promise<TunnelConnectionError | undefined>;
  #resolveClosed!: (reason: TunnelConnectionError | undefined) => void;
  #socket: TLSSocket | undefined;
  #session: H2ServerSession | undefined;
  #control: H2Stream | undefined;
  /** Every stream's 'error' listener (one function per connection; `this` is the stream). */
  readonly #onStreamError: (this: H2Stream, err: Error) => void;
  #controlWaiter: ((stream: H2Stream | Error) => void) | undefined;
  #rpc: RegistrationClient | undefined;
  #details: ConnectionDetails | undefined;
  #registered = false;
  #ending = false;
  #shutdownRequested = false;
  #endReason: TunnelConnectionError | undefined;
  #tcpWarned = false;
  #bodies: BodyLedger | undefined;
  #lastBudgetWarning = 0;
  #dialAbort = new AbortController();

  constructor(options: EdgeConnectionOptions) {
    super();
    this.connIndex = options.connIndex;
    this.address = options.address;
    this.#o = options;
    this.#log = options.logger.child({ connIndex: options.connIndex, edge: options.address.label });
    this.#onStreamError = streamErrorLogger(this.#log);
    this.#closed = new Promise((resolve) => (this.#resolveClosed = resolve));
  }

  /** Resolves when the connection is over: with why, or undefined when it ended by our own shutdown. */
  get closed(): Promise<TunnelConnectionError | undefined> {
    return this.#closed;
  }

  /** The edge's registration answer, once registered. */
  get details(): ConnectionDetails | undefined {
    return this.#details;
  }

  get registered(): boolean {
    return this.#registered;
  }

  /** Request streams currently being served (the control stream excluded). */
  get inflight(): number {
    return this.#inflight.size;
  }

  /**
   * Dials, performs the HTTP/2 handshake, waits for the control stream and registers. Resolves with the
   * edge's connection details; rejects with a TunnelConnectionError (after cleaning up) otherwise.
   */
  async establish(): Promise<ConnectionDetails> {
    try {
      const socket = await dialEdge(this.#o.address, {
        secureContext: this.#o.secureContext,
        timeoutMs: this.#o.dialTimeoutMs,
        signal: this.#dialAbort.signal,
      });
      this.#socket = socket;
      if (this.#shutdownRequested) throw new TunnelConnectionError('closed', 'shutdown requested while dialling', { retryable: false });
      this.#startSession(socket);
      const control = await this.#waitForControlStream();
      const rpc = new RegistrationClient(control, { timeoutMs: this.#o.rpcTimeoutMs, logger: this.#log });
      this.#rpc = rpc;
      const details = await this.#register(rpc, socket);
      this.#details = details;
      this.#registered = true;
      void rpc.closed.then(() => this.#onControlStreamEnded());
      if (this.connIndex === 0 && !details.tunnelIsRemotelyManaged && this.#o.localConfig) {
        rpc
          .updateLocalConfiguration(this.#o.localConfig)
          .catch((err: unknown) => this.#log.warn({ err: (err as Error).message }, 'pushing the local configuration to the edge failed'));
      }
      return details;
    } catch (err) {
      const failure =
        err instanceof TunnelConnectionError ? err : new TunnelConnectionError('rpc', `registration failed: ${(err as Error).message}`, { cause: err, retryable: true });
      this.#endReason ??= failure;
      this.destroy();
      throw failure;
    }
  }

  #startSession(socket: TLSSocket): void {
    const limits = this.#o.limits ?? {};
    const session = new H2ServerSession(socket, {
      settings: {
        ...CONNECTOR_H2_SETTINGS,
        maxConcurrentStreams: limits.maxConcurrentStreams ?? CONNECTOR_H2_SETTINGS.maxConcurrentStreams,
        maxHeaderListSize: limits.maxHeaderListSize ?? CONNECTOR_H2_SETTINGS.maxHeaderListSize,
        initialWindowSize: limits.bodyBudget?.limits.streamWindow ?? CONNECTOR_H2_SETTINGS.initialWindowSize,
      },
      connectionWindow: CONNECTOR_CONNECTION_WINDOW,
      limits: {
        maxHeaderPairs: limits.maxHeaderPairs ?? DEFAULT_MAX_HEADER_PAIRS,
        maxQueuedBytes: (limits.maxSessionMemoryMb ?? DEFAULT_SESSION_MEMORY_MB) * 1024 * 1024,
        // The edge multiplexes every visitor over a few connections, so bursts of cancelled requests arrive as
        // bursts of RST_STREAM. nghttp2's default budget (1000, refilled at 33/s) gave up on the whole
        // connection mid-burst; the edge is an authenticated peer and each stream's work is bounded elsewhere.
        streamResetBurst: limits.streamResetBurst ?? DEFAULT_STREAM_RESET_BURST,
        streamResetRate: limits.streamResetRate ?? DEFAULT_STREAM_RESET_RATE,
      },
    });
    this.#session = session;
    this.#bodies = limits.bodyBudget?.open(session);
    session.on('stream', (stream: H2Stream, headers: string[], endStream: boolean) => this.#onStream(stream, headers, endStream));
    session.on('error', (err: H2ConnectionError) => {
      this.#log.debug({ code: err.code, err: err.message }, 'HTTP/2 connection error');
      this.#endReason ??= new TunnelConnectionError('protocol', `HTTP/2 session error: ${err.message}`, { cause: err, retryable: true });
    });
    session.on('goaway', (code: number, lastStreamId: number) => this.#onGoaway(code, lastStreamId));
    session.once('close', () => this.#onSessionClosed());
    socket.on('error', () => {
      // Reported through the session; the listener keeps an unhandled socket error from crashing the process.
    });
  }

  #waitForControlStream(): Promise<H2Stream> {
    if (this.#control) return Promise.resolve(this.#control);
    return new Promise<H2Stream>((resolve, reject) => {
      const timer = setTimeout(
        () => settle(new TunnelConnectionError('rpc', `the edge opened no control stream within ${this.#o.rpcTimeoutMs} ms`, { retryable: true })),
        this.#o.rpcTimeoutMs,
      );
      const settle = (result: H2Stream | Error) => {
        clearTimeout(timer);
        this.#controlWaiter = undefined;
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      this.#controlWaiter = settle;
    });
  }

  async #register(rpc: RegistrationClient, socket: TLSSocket): Promise<ConnectionDetails> {
    const c = this.#o.credentials;
    const ip = originLocalIp(socket.localAddress);
    const request: RegistrationRequest = {
      auth: { accountTag: c.accountTag, tunnelSecret: c.tunnelSecret },
      tunnelId: c.tunnelIdBytes,
      connIndex: this.connIndex,
      options: {
        client: this.#o.client,
        ...(ip ? { originLocalIp: ip } : {}),
        replaceExisting: false,
        compressionQuality: 0,
        numPreviousAttempts: Math.min(this.#o.numPreviousAttempts, 255),
      },
    };
    let result: Awaited<ReturnType<RegistrationClient['registerConnection']>>;
    try {
      result = await rpc.registerConnection(request);
    } catch (err) {
      throw new TunnelConnectionError('rpc', `registration RPC failed: ${(err as Error).message}`, { cause: err, retryable: true });
    }
    if (!result.ok) {
      const e = result.error;
      throw new TunnelConnectionError('registration', `the edge refused registration: ${e.cause}`, {
        retryable: e.shouldRetry || e.cause === 'EDUPCONN' || e.cause.includes('Unauthorized'),
        retryAfterMs: e.retryAfterMs,
        edgeCause: e.cause,
      });
    }
    return result.details;
  }

  #onStream(stream: H2Stream, headers: string[], endStream: boolean): void {
    stream.on('error', this.#onStreamError);
    const kind: StreamKind = classifyRawHeaders(headers);
    if (kind === 'control') {
      if (this.#control) {
        this.#log.warn({ stream: stream.id }, 'the edge opened a second control stream; refused');
        refuse(stream, 400);
        return;
      }
      this.#control = stream;
      // The control stream is answered 200 with an octet-stream body, which then carries the RPC.
      stream.respond([':status', '200', 'content-type', 'application/octet-stream']);
      this.#controlWaiter?.(stream);
      return;
    }
    if (kind === 'configuration') {
      serveConfigurationUpdate(stream, this.#o.configurationVersions, (update) => {
        if (update) {
          this.#log.warn({ version: update.version }, 'the edge pushed remote configuration; acknowledged but not applied (Warren routes from Ingress objects)');
        } else this.#log.warn('the edge pushed a configuration update that is not valid JSON {"version","config"}; answered 502');
      });
      return;
    }
    if (kind === 'tcp') {
      if (!this.#tcpWarned) {
        this.#tcpWarned = true;
        this.#log.warn({ destination: authorityOf(headers) }, 'raw TCP streams (WARP routing) are not supported by Warren; answered 502');
      }
      refuse(stream, 502);
      return;
    }
    this.#serveExchange(stream, kind, endStream, headers);
  }

  #serveExchange(stream: H2Stream, kind: 'http' | 'websocket', endStream: boolean, rawHeaders: string[]): void {
    const parsed = buildRequestHead(rawHeaders, kind === 'websocket' ? 'websocket' : undefined, endStream);
    if (!parsed.ok) {
      this.#log.warn({ stream: stream.id, field: parsed.field }, `malformed request from the edge: ${parsed.field} ${parsed.problem}; answered 400`);
      refuse(stream, 400);
      return;
    }
    // Bodies still to come count against the budget; a declared empty body (or END_STREAM on HEADERS) does not.
    if (parsed.head.contentLength !== 0 && this.#bodies && !this.#admitBody(stream)) return;
    const metrics = this.#o.metrics;
    this.#inflight.add(stream);
    metrics?.totalRequests.inc();
    metrics?.concurrentRequests.inc();
    const exchange = new TunnelExchange(stream, parsed.head, this.#exchangeHooks);
    let settled: Promise<void>;
    try {
      settled = this.#o.handler.handle(exchange);
    } catch (err) {
      settled = Promise.reject(err);
    }
    settled.then(
      () => {
        if (!exchange.responded && !stream.destroyed) {
          this.#log.warn({ exchange: exchange.id }, 'the exchange handler finished without responding; answered 502');
          exchange.fail({ status: 502, message: 'no response' });
        }
      },
      (err: unknown) => {
        this.#log.error({ exchange: exchange.id, err: (err as Error)?.message }, 'the exchange handler threw; answered 502');
        exchange.fail({ status: 502, message: 'handler error', cause: err });
      },
    );
  }

  /**
   * Tracks a request whose body is still to come, or answers 503 when the request-body budget cannot take
   * another unread body even at the smallest window (the edge may retry it elsewhere; Retry-After says when).
   */
  #admitBody(stream: H2Stream): boolean {
    const budget = this.#o.limits!.bodyBudget!;
    if (budget.admits(this.#bodies!)) {
      this.#bodies!.track(stream);
      return true;
    }
    const now = Date.now();
    if (now - this.#lastBudgetWarning >= BUDGET_WARNING_INTERVAL_MS) {
      this.#lastBudgetWarning = now;
      this.#log.warn(
        {
          stream: stream.id,
          connectionHeld: this.#bodies!.usage.held,
          totalHeld: budget.held,
          limits: { connection: budget.limits.connectionBytes, total: budget.limits.totalBytes },
        },
        'request-body buffer budget exhausted (tunnel.requestBodyBufferBytes / tunnel.requestBodyBufferTotalBytes); answered 503 to new uploads',
      );
    }
    this.#o.metrics?.requestErrors.inc();
    refuse(stream, 503, ['Retry-After', '1']);
    return false;
  }

  #onControlStreamEnded(): void {
    if (this.#ending) return;
    this.#log.warn('the edge closed the control stream; draining this connection and reconnecting');
    this.#endReason ??= new TunnelConnectionError('closed', 'the edge closed the control stream', { retryable: true });
    void this.#drainAndClose(this.#o.rpcTimeoutMs);
  }

  #onGoaway(code: number, lastStreamId: number): void {
    if (this.#ending) return;
    // In the tunnel the edge is the client, so last_stream_id names streams this side opened, and it opens
    // none: whatever the edge puts there (its own next stream id, when it shuts down like Go's client), the
    // GOAWAY means "no new streams" and the connection drains.
    this.#log.info({ code, lastStreamId }, 'the edge sent GOAWAY; draining this connection and reconnecting');
    this.#endReason ??= new TunnelConnectionError('closed', `the edge sent GOAWAY (code ${code})`, { retryable: true });
    void this.#drainAndClose(this.#o.rpcTimeoutMs);
  }

  #onSessionClosed(): void {
    this.#controlWaiter?.(new TunnelConnectionError('closed', 'the edge closed the connection before opening the control stream', { retryable: true }));
    this.#markUnregistered();
    this.#socket?.destroy();
    if (!this.#shutdownRequested) {
      this.#endReason ??= new TunnelConnectionError('closed', 'connection with edge closed', { retryable: true });
    }
    this.#resolveClosed(this.#shutdownRequested ? undefined : this.#endReason);
  }

  #markUnregistered(): void {
    if (!this.#registered) return;
    this.#registered = false;
    this.emit('unregistered');
  }

  /**
   * Graceful end: unregister (bounded by the grace period and the RPC timeout), GOAWAY so
   * the edge opens no new streams, let in-flight streams finish until the grace period ends, then Release +
   * Abort on the RPC, end the control stream and close the connection. Idempotent.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.#shutdownRequested = true;
    this.#dialAbort.abort();
    if (!this.#session) {
      this.destroy();
      return this.#closed.then(() => undefined);
    }
    await this.#drainAndClose(graceMs, true);
  }

  async #drainAndClose(graceMs: number, unregister = false): Promise<void> {
    if (this.#ending) return void (await this.#closed);
    this.#ending = true;
    const deadline = Date.now() + graceMs;
    const rpc = this.#rpc;
    if (unregister && rpc && this.#registered) {
      try {
        await rpc.unregisterConnection(Math.max(1, Math.min(this.#o.rpcTimeoutMs, deadline - Date.now())));
        this.#log.info('unregistered tunnel connection');
      } catch (err) {
        this.#log.warn({ err: (err as Error).message }, 'unregistering the tunnel connection failed');
      }
    }
    this.#markUnregistered();
    this.#session?.close();
    await this.#waitForInflight(deadline);
    for (const stream of this.#inflight) stream.close(ErrorCode.CANCEL);
    if (rpc) await rpc.close();
    this.#control?.end();
    // The session ends by itself once every stream closed; do not wait on a peer that never acknowledges.
    const finished = await Promise.race([this.#closed.then(() => true), delay(Math.min(1000, Math.max(100, deadline - Date.now()))).then(() => false)]);
    if (!finished) this.destroy();
    await this.#closed;
  }

  #waitForInflight(deadline: number): Promise<void> {
    if (this.#inflight.size === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer === undefined) return;
        clearTimeout(timer);
        timer = undefined;
        this.off('drained-one', check);
        resolve();
      };
      const check = () => {
        if (this.#inflight.size === 0) done();
      };
      timer = setTimeout(done, Math.max(0, deadline - Date.now()));
      this.on('drained-one', check);
      void this.#closed.then(done);
    });
  }

  /** Ends the connection at once (no unregister): in-flight streams are reset. Idempotent. */
  destroy(): void {
    this.#dialAbort.abort();
    if (this.#rpc) void this.#rpc.close();
    if (this.#session) this.#session.destroy();
    else {
      this.#socket?.destroy();
      this.#markUnregistered();
      this.#resolveClosed(this.#shutdownRequested ? undefined : this.#endReason);
    }
  }
}

/** At most one budget-exhaustion warning per connection in this interval. */
const BUDGET_WARNING_INTERVAL_MS = 10_000;

function refuse(stream: H2Stream, status: number, headers: RawHeaders = []): void {
  try {
    const head = [':status', String(status), HEADER_RESPONSE_META, META_CLOUDFLARED];
    if (headers.length > 0) head.push(HEADER_RESPONSE_HEADERS, serializeHeaders(headers));
    stream.respond(head, { endStream: true });
  } catch {
    stream.close(ErrorCode.INTERNAL_ERROR);
  }
}

function authorityOf(headers: readonly string[]): string | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) if (headers[i] === ':authority') return headers[i + 1];
  return undefined;
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function streamErrorLogger(log: Logger): (this: H2Stream, err: Error) => void {
  return function logStreamError(this: H2Stream, err: Error): void {
    log.debug({ err: err.message, stream: this.id }, 'tunnel stream error');
  };
}
