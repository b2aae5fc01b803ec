import type { Duplex, Readable, Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { Route } from '../model/routes.js';
import type { Exchange, RawHeaders, RequestHead } from '../model/exchange.js';
import type { WarrenError } from '../errors.js';
import type { ExchangeKey } from './exchange-key.js';
import type { PluginLifecycle } from './lifecycle.js';

/**
 * The class of a data-plane plugin (kinds `transport`, `protocol`, `policy`); core registers it (its id is the
 * manifest's) and refuses a class without at least one of the hooks below (declared as methods). Instances come from a tsyringe child
 * container (a *plugin set*) that the pipeline provisions and validates once and then shares across route-table
 * generations while nothing it was provisioned from changed; a rotated Secret that a live route references gets a fresh set. Each route object is
 * bound once per set: a route the table builder carries over unchanged keeps its binding in the next generation,
 * a new or changed route object is bound again. The set is disposed once the last generation using it was
 * released — after that generation's last exchange, or at most 5 minutes after it was replaced (long-lived
 * exchanges may outlive `dispose`, which must therefore not break them). Nothing here runs per request except
 * the interceptor and `onUpgrade`.
 *
 * Compilation of one route, in chain order (manifest kind, then `order`, then `id`; never registration order):
 *
 *  1. route phase: `bind(route)` on every plugin. `undefined` keeps the plugin out of this route. Throwing a
 *     `WarrenError` makes the route unavailable: its requests get that error (e.g. a TLS Secret that does not
 *     exist answers 502 and never silently falls back to an unverified connection).
 *     Exactly one party serves the route's protocol: core for `http` (and `auto`), otherwise the plugin whose
 *     manifest `protocols` lists it; a route whose protocol no bound plugin serves is unavailable.
 *  2. connection phase: `configureTransport(binding, profile)` on every bound plugin, in chain order. Core
 *     starts from a profile derived from the protocol (scheme, timeouts) and keeps one connection pool per
 *     endpoint and distinct resulting profile; pools are shared across generations while the profile stays
 *     the same, so a route-table change does not drop kept-alive connections.
 *  3. exchange phase: `interceptor(binding)` of every bound plugin, composed once per route so that the first
 *     plugin in chain order is outermost. Each request flows through the chain to core's dispatch, which picks
 *     an endpoint, retries connect failures and talks to the pool.
 *  4. upgrades: an upgrade request (WebSocket) is forwarded only when a bound plugin implements `onUpgrade`
 *     (the first in chain order wins), over the pools of its `upgradeProfile` when it has one; after the
 *     upstream's 101, core answers the client and hands both byte streams to `onUpgrade`. Without such a plugin the Upgrade header is dropped and the request is proxied
 *     as plain HTTP.
 *
 * Implementations must not keep per-request state on the instance (one instance serves every exchange of
 * several generations concurrently), nor state per route that must be dropped with the route (`bind` has no
 * counterpart; a set outlives routes removed from the table); use per-exchange values ({@link ExchangeContext.get}) instead. `O` is the type of the options
 * the plugin's own `bind` computes; a plugin without `bind` is bound to every route with empty options.
 */
export interface UpstreamPlugin<O extends object = object> extends PluginLifecycle {
  bind?(route: Route): RouteBinding<O> | undefined;
  configureTransport?(binding: RouteBinding<O>, profile: TransportProfile): void;
  interceptor?(binding: RouteBinding<O>): UpstreamInterceptor;
  /**
   * Takes over an exchange whose upgrade the upstream accepted (101). Core already sent the 101 to the
   * client. Pipe the bytes both ways and resolve when both sides are closed; reject only for bugs (errors of
   * either peer are a normal end of the session).
   */
  onUpgrade?(binding: RouteBinding<O>, session: UpgradeSession): Promise<void>;
  /**
   * Opens the connection pool for one endpoint of a route whose backend protocol this plugin serves (its manifest
   * lists the protocol). Core keeps choosing the endpoint, retrying connect failures, enforcing timeouts and
   * counting pool references; the pool only speaks the wire protocol. Without it core uses its HTTP pools.
   *
   * A pool is keyed by this plugin's id, the endpoint's `origin` and the `profile` (after every plugin's
   * `configureTransport`), and is shared by every route with the same key, across generations, until the last
   * one lets go of it: it must depend on nothing else of `binding`. Per-route choices travel with each request
   * (`options.context.route`, or what an interceptor put in the request).
   */
  createPool?(binding: RouteBinding<O>, origin: string, profile: TransportProfile): UpstreamPool;
  /**
   * Answers a failed exchange in the plugin's protocol instead of core's HTTP error page (e.g. a gRPC status).
   * Asked only when Warren itself fails an exchange (no route, no endpoint, connect failure, timeout, a policy's
   * refusal, an upstream that broke its response), of every plugin that implements it, in chain order, with the
   * plugin's binding for the route, or `undefined` when it is not bound to it or no route matched (so a plugin
   * can classify the request by itself, e.g. by its content type); the first answer wins, `undefined` passes.
   * Runs per failure: keep it cheap, and never put request data into what the client reads.
   */
  mapError?(binding: RouteBinding<O> | undefined, failure: FailedExchange): ErrorAnswer | undefined;
  /**
   * The transport profile of this route's upgrade requests, asked of the plugin that takes the upgrade (the first
   * bound plugin with `onUpgrade`) after every `configureTransport`: e.g. HTTP/1.1 for a route that otherwise
   * speaks HTTP/2, since an upgraded connection is handed over whole. Return a new object (the route's profile is
   * shared); upgrade requests then get pools of their own. Without it they use the route's pools.
   */
  upgradeProfile?(binding: RouteBinding<O>, profile: Readonly<TransportProfile>): TransportProfile;
}

/** Per-route state a plugin computed in `bind`: parsed annotations, resolved secrets. Immutable. */
export interface RouteBinding<O extends object = object> {
  readonly route: Route;
  readonly options: O;
}

/** TLS options of an upstream connection (Node `tls.connect` names). */
export interface UpstreamTls {
  /** Trusted CAs; undefined means Node's default roots. */
  ca?: string | Buffer | Array<string | Buffer> | undefined;
  /** Client certificate and key for mutual TLS. */
  cert?: string | Buffer | undefined;
  key?: string | Buffer | undefined;
  /** SNI and the name the certificate is verified against. Core's default: `<service>.<namespace>.svc`. */
  servername?: string | undefined;
  /**
   * When set, the certificate must carry one of these subject alternative names (`DNS:<name>`, wildcards as TLS
   * clients match them, or `URI:<uri>`, exactly) and `servername` is no longer checked against it (SNI only).
   */
  subjectAltNames?: readonly string[] | undefined;
  /** Verify the upstream certificate. Only an explicit opt-out sets this to false. */
  rejectUnauthorized: boolean;
  /**
   * Identity of the TLS material (e.g. a hash of the Secret's data). When absent core hashes the material
   * itself. A rotated Secret yields a new fingerprint, hence a new pool, while the old pool drains.
   */
  fingerprint?: string | undefined;
}

/**
 * How core connects to a route's endpoints. Core fills `scheme`, `http2: 'off'`, `connectTimeout` and, for TLS
 * schemes, `tls` with verification on; plugins adjust it in `configureTransport`. Everything in it is part of
 * the pool identity, so keep it plain data.
 */
export interface TransportProfile {
  scheme: 'http:' | 'https:';
  /** Speak HTTP/2: over TLS via ALPN (falls back to HTTP/1.1), or cleartext with prior knowledge (h2c). */
  http2: 'off' | 'alpn' | 'prior-knowledge';
  /** Milliseconds for TCP connect plus TLS handshake. */
  connectTimeout: number;
  tls?: UpstreamTls | undefined;
  /**
   * Reuse idle connections for this long (ms), at most `maxConnections` per endpoint. Without it every HTTP/1.1
   * request gets its own connection (closed after the response).
   */
  keepAlive?: { timeout: number; maxConnections: number } | undefined;
  /** HTTP/2: streams per connection (the upstream's SETTINGS can only lower it). */
  maxConcurrentStreams?: number | undefined;
}

/**
 * What an interceptor receives: undici's dispatch options plus Warren's per-exchange context. Interceptors may
 * replace `headers` (an even-length `[name, value, …]` string array, lower-case names), `headersTimeout`,
 * `path` and `method`; they must not replace `body` once it may have been read.
 */
export interface UpstreamDispatchOptions extends Dispatcher.DispatchOptions {
  headers: string[];
  /** TLS name (SNI and verification) set by core from the transport profile; never derived from Host. */
  servername?: string | undefined;
  readonly context: ExchangeContext;
}

/** Sends one upstream request; the handler follows undici's `DispatchHandler` contract. */
export type UpstreamDispatch = (options: UpstreamDispatchOptions, handler: Dispatcher.DispatchHandler) => void;

/**
 * undici's interceptor shape over {@link UpstreamDispatch}: `(next) => (options, handler) => …`. Wrap the
 * handler (extend {@link ForwardingHandler}) to see the response; call `next` with changed options to change
 * the request. Created once per route binding (see {@link UpstreamPlugin}), so validate options when it is
 * created, not per call.
 */
export type UpstreamInterceptor = (next: UpstreamDispatch) => UpstreamDispatch;

/** Per-exchange facts and controls handed to interceptors. */
export interface ExchangeContext {
  readonly exchange: Exchange;
  readonly route: Route;
  /** This exchange's value for `key` (see `defineExchangeKey`), if a plugin set one. */
  get<T>(key: ExchangeKey<T>): T | undefined;
  /** Sets this exchange's value for `key`; it lives as long as the exchange. */
  set<T>(key: ExchangeKey<T>, value: T): void;
  /** Endpoint key (`address:port`) of the current attempt; undefined before core picked one. */
  readonly endpoint: string | undefined;
  /**
   * Turns the idle timeout off for the rest of the exchange (long-lived streams such as SSE). The client's
   * disconnect still ends it.
   */
  suspendIdleTimeout(): void;
  /**
   * Replaces the idle bound of this exchange (ms without a byte from the upstream or the client once the
   * response head arrived), e.g. a stream idle timeout for gRPC calls or event streams. Only upstream bytes and
   * request bytes count as activity, not bytes a plugin inserts. Undoes an earlier `suspendIdleTimeout`.
   */
  setIdleTimeout(ms: number): void;
  /**
   * Ends the exchange with a timeout (504, or gRPC DEADLINE_EXCEEDED) `ms` from now unless it finished first.
   * A later call replaces the earlier deadline.
   */
  setDeadline(ms: number): void;
}

/** An upgraded exchange (after the upstream's 101) as handed to {@link UpstreamPlugin.onUpgrade}. */
export interface UpgradeSession {
  readonly exchange: Exchange;
  /** Bytes from the client (the exchange body). */
  readonly fromClient: Readable;
  /** Bytes to the client (the sink `exchange.respond` returned). */
  readonly toClient: Writable;
  /** The upstream connection after its 101, already past the response head. */
  readonly upstream: Duplex;
  /** The route's `idle-timeout` annotation when set (ms); plugins fall back to their own setting. */
  readonly idleTimeout: number | undefined;
}

/** undici's handler contract, re-exported so plugins need no direct undici dependency. */
export type DispatchHandler = Dispatcher.DispatchHandler;
/** Pause, resume or abort the upstream response from a handler. */
export type DispatchController = Dispatcher.DispatchController;
/** Parsed response headers or trailers (lower-case names; repeats as arrays). */
export type ResponseHeaders = Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseStart']>>[2];

type Controller = DispatchController;
type IncomingHeaders = ResponseHeaders;

/**
 * Base class for interceptor handlers: forwards every callback to the wrapped handler and enforces undici's
 * callback order (start once; no data after the end or an error; exactly one terminal callback). Subclasses
 * override the callbacks they care about and call `super`.
 *
 * @example
 * class StampHandler extends ForwardingHandler {
 *   override onResponseStart(c, status, headers, message) {
 *     super.onResponseStart(c, status, { ...headers, 'x-stamp': '1' }, message);
 *   }
 * }
 */
export class ForwardingHandler implements Dispatcher.DispatchHandler {
  readonly #next: Dispatcher.DispatchHandler;
  #started = false;
  #done = false;

  constructor(next: Dispatcher.DispatchHandler) {
    this.#next = next;
  }

  /** True once the response ended, failed or was upgraded. */
  protected get finished(): boolean {
    return this.#done;
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.#next.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(controller: Controller, statusCode: number, headers: IncomingHeaders, socket: Duplex): void {
    this.#finish('onRequestUpgrade');
    this.#next.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: IncomingHeaders, statusMessage?: string): void {
    if (this.#done || this.#started) throw new Error(`handler state: onResponseStart after ${this.#done ? 'the end' : 'a start'}`);
    // A 1xx informational response (103 Early Hints) precedes the final one on the same handler.
    if (statusCode >= 200) this.#started = true;
    this.#next.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.#done || !this.#started) throw new Error('handler state: onResponseData outside a response');
    this.#next.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Controller, trailers: IncomingHeaders): void {
    this.#finish('onResponseEnd');
    this.#next.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Controller, error: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#next.onResponseError?.(controller, error);
  }

  #finish(callback: string): void {
    if (this.#done) throw new Error(`handler state: ${callback} after the end`);
    this.#done = true;
  }
}

/**
 * A connection pool to one endpoint: undici's `dispatch(options, handler)` contract (the handler follows
 * {@link DispatchHandler}), plus a graceful `close` (requests in flight finish) and a hard `destroy`. Core's HTTP
 * pools implement it; a plugin's {@link UpstreamPlugin.createPool} returns one for its own wire protocol. `dispatch`
 * returns false when the caller should wait for the pool's `drain` before sending more (core does not).
 */
export interface UpstreamPool {
  dispatch(options: PoolDispatchOptions, handler: DispatchHandler): boolean;
  close(): Promise<void>;
  destroy(): Promise<void>;
}

/** What a pool's `dispatch` receives: the request as the interceptors left it (see {@link UpstreamDispatchOptions}). */
export interface PoolDispatchOptions extends Dispatcher.DispatchOptions {
  headers: string[];
  servername?: string | undefined;
  /** Set on every request core sends; absent only when a pool is driven directly (tests). */
  readonly context?: ExchangeContext | undefined;
}

/** A failed exchange as {@link UpstreamPlugin.mapError} sees it. */
export interface FailedExchange {
  readonly error: WarrenError;
  readonly request: RequestHead;
  /** The matched route; undefined when the request failed before one matched. */
  readonly route: Route | undefined;
  /** The response head already sent to the client, if any: then only trailers can still carry an answer. */
  readonly response: SentResponse | undefined;
  /** What the client may read about the failure: a fixed sentence per error (setting `proxy.errorDetails`). */
  readonly publicMessage: string;
  /** The reference the logs carry for this exchange (the Ray ID through Cloudflare, else the exchange id). */
  readonly reference: string;
}

/** A response head as it went to the client. */
export interface SentResponse {
  readonly status: number;
  readonly headers: RawHeaders;
  /** Whether trailers may still follow it. */
  readonly trailers: boolean;
}

/**
 * A plugin's answer to a failure: before the response head went out, a response of its own (`status`, `headers`,
 * optional plain `body`); after it, `trailers` that end the response (used only when the sent head allows
 * trailers; otherwise the response is reset, as without an answer).
 */
export type ErrorAnswer = { readonly status: number; readonly headers: RawHeaders; readonly body?: string | undefined } | { readonly trailers: RawHeaders };
