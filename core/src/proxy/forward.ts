import { Readable, type Duplex, type Writable } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ErrorCode, WarrenError } from '../errors.js';
import type { SentResponse, UpgradeSession, UpstreamDispatchOptions } from '../plugin-api/upstream.js';
import type { Route } from '../routes/types.js';
import type { EndpointState, EndpointStates } from './balancer.js';
import type { CompiledRoute } from './compile.js';
import { failExchange, failurePhase, toWarrenError } from './errors.js';
import { PluginContext } from './exchange-context.js';
import type { Exchange, RawHeaders } from './exchange.js';
import { downstreamResponseHeaders, headersOfObject, type RequestFraming } from './headers.js';
import type { AdmissionDispatchOptions } from './admission.js';
import { Deadline } from './deadlines.js';
import type { PoolRegistry } from './transport.js';

/**
 * One exchange on its way through a compiled route: the interceptor chain, core's dispatch (endpoint choice,
 * connect retries, ejection), the response written back with backpressure, timeouts, and upgrades.
 */

type Controller = Dispatcher.DispatchController;
type Headers = Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseStart']>>[2];

export interface ForwardEnv {
  readonly states: EndpointStates;
  readonly pools: PoolRegistry;
  /** Other endpoints tried after a connect failure (setting `proxy.retries`). */
  readonly retries: number;
  /** Called for each retry and ejection (metrics). */
  readonly onRetry?: ((run: ExchangeRun, ejected: boolean) => void) | undefined;
  /** Reports a session that ended with an unexpected error (logs). */
  readonly onUpgradeError?: ((run: ExchangeRun, err: unknown) => void) | undefined;
  /** Reports a response cut off after its head went out: the client gets a reset, never a short body as complete (logs). */
  readonly onBrokenResponse?: ((run: ExchangeRun, err: WarrenError) => void) | undefined;
  /** Request bodies with a declared length up to this many bytes are read whole before dispatch (`proxy.requestBufferBytes`). */
  readonly requestBufferBytes: number;
  /** Error pages show the failure's message (`proxy.errorDetails`). */
  readonly errorDetails: boolean;
}

/** How an exchange ended, for metrics and the access log. */
export interface Outcome {
  /** Status the client saw; 499 when the client went away first. */
  readonly status: number;
  readonly error: WarrenError | undefined;
  readonly endpoint: string | undefined;
  readonly attempts: number;
}

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);
const CLIENT_GONE = 499;

/** Core's state of one exchange. Plugins see it through its {@link PluginContext}, never directly. */
export class ExchangeRun {
  readonly context = new PluginContext(this);
  readonly route: Route;
  endpoint: string | undefined;
  attempts = 0;

  #finished = false;
  #resolve!: () => void;
  #abortReason: Error | undefined;
  #controller: Controller | undefined;
  /** The idle timeout (a shared deadline list's entry rather than a timer of its own: it is refreshed per chunk). */
  #idle: Deadline | undefined;
  #idleSuspended = false;
  /** The idle bound a plugin set for this exchange (`setIdleTimeout`); else the route's. */
  #idleMs: number | undefined;
  /** Runs while the upstream waits for request-body bytes the client has not sent (`requestBodyTimeout`). */
  #bodyTimer: NodeJS.Timeout | undefined;
  /** The body timeout applies until the response head arrives; then the idle timeout covers both directions. */
  #bodyWatched = true;
  /** The whole request body, when it was read before dispatch. */
  #buffered: Buffer | undefined;
  #deadline: NodeJS.Timeout | undefined;
  /** The route's bound of the whole exchange (`timeouts.request`); unlike a plugin's deadline, never replaced. */
  #requestTimer: NodeJS.Timeout | undefined;
  /** The response head sent to the client and its body sink, once `respond` was called. */
  #sent: { readonly head: SentResponse; readonly sink: Writable } | undefined;
  #upstreamSocket: Duplex | undefined;
  readonly #onClientAbort = (): void => this.#clientGone();

  constructor(
    readonly exchange: Exchange,
    readonly compiled: CompiledRoute,
    readonly env: ForwardEnv,
    readonly framing: RequestFraming,
    readonly headers: string[],
    /** Told how the exchange ended, once, before `run`'s promise settles (metrics, the access log). */
    readonly onEnd: (outcome: Outcome) => void,
  ) {
    this.route = compiled.route;
  }

  /**
   * Runs the exchange to its end; the promise settles after `onEnd`. Never rejects. The acceptor's promise itself,
   * rather than an async caller awaiting this one: a request makes one promise, not three.
   */
  run(): Promise<void> {
    const done = new Promise<void>((resolve) => (this.#resolve = resolve));
    const ex = this.exchange;
    // Kept after the end (the exchange's own, and `#clientGone` then returns): a plain callback, not a listener
    // on `signal`, which the acceptor then need not even make.
    if (!ex.onClientGone(this.#onClientAbort)) {
      this.#finish(CLIENT_GONE, undefined);
      return done;
    }
    const limit = this.compiled.requestTimeout;
    if (limit !== undefined) {
      this.#requestTimer = setTimeout(() => {
        this.abort(new WarrenError(ErrorCode.UpstreamTimeout, `no complete response within ${limit} ms (route timeouts.request)`));
      }, limit);
    }
    const upgrading = ex.head.upgrade !== undefined && this.compiled.upgrade !== undefined;
    const length = this.framing.contentLength;
    // A small body is read whole before a connection is taken: a client that sends it slowly then holds no
    // upstream connection, only these bytes.
    const readFirst = !upgrading && ex.head.upgrade === undefined && length !== undefined && length > 0 && length <= this.env.requestBufferBytes;
    // Every field in one literal, present in every request: one object of one shape, which the attempts copy cheaply.
    const options: UpstreamDispatchOptions & AdmissionDispatchOptions = {
      path: this.framing.target,
      method: ex.head.method as Dispatcher.HttpMethod,
      headers: this.headers,
      body: null,
      headersTimeout: this.compiled.responseHeaderTimeout,
      bodyTimeout: 0,
      // undici would otherwise take the TLS name from the Host header, which the client controls.
      servername: this.compiled.profile.tls?.servername,
      context: this.context,
      upgrade: upgrading ? ex.head.upgrade : null,
      queueTimeout: this.compiled.queueTimeout,
      // A body that streams from the client while the request holds a connection: admission limits how many
      // connections such requests may hold.
      streamsBody: !readFirst && !upgrading && ex.head.upgrade === undefined && length !== 0,
    };
    if (readFirst) {
      readWhole(ex.body, length, this).then(
        (body) => {
          if (this.#finished) return;
          this.#buffered = body;
          this.#dispatch(options);
        },
        (err) => this.fail(err),
      );
    } else {
      this.#dispatch(options);
    }
    return done;
  }

  #dispatch(options: UpstreamDispatchOptions): void {
    try {
      this.compiled.dispatch(options, new ResponseWriter(this));
    } catch (err) {
      this.fail(err);
    }
  }

  // timeout controls, offered to plugins through the context

  suspendIdleTimeout(): void {
    this.#idleSuspended = true;
    this.#idle?.cancel();
    this.#idle = undefined;
  }

  setIdleTimeout(ms: number): void {
    if (this.#finished) return;
    this.#idleMs = ms;
    this.#idleSuspended = false;
    if (this.#idle) {
      this.#idle.cancel();
      this.#idle = undefined;
      this.startIdleTimer();
    }
  }

  setDeadline(ms: number): void {
    if (this.#finished) return;
    if (this.#deadline) clearTimeout(this.#deadline);
    this.#deadline = setTimeout(() => {
      this.abort(new WarrenError(ErrorCode.UpstreamTimeout, `deadline of ${ms} ms exceeded`));
    }, ms);
  }

  // internals used by the handlers below

  get finished(): boolean {
    return this.#finished;
  }

  get abortReason(): Error | undefined {
    return this.#abortReason;
  }

  get controller(): Controller | undefined {
    return this.#controller;
  }

  set controller(c: Controller | undefined) {
    this.#controller = c;
    if (c && this.#abortReason && !c.aborted) c.abort(this.#abortReason);
  }

  /** Stops upstream work with `reason`; the response handler then reports it. */
  abort(reason: Error): void {
    if (this.#finished || this.#abortReason) return;
    this.#abortReason = reason;
    if (this.#upstreamSocket) {
      this.#upstreamSocket.destroy();
      this.#finish(this.exchange.responded ? 101 : CLIENT_GONE, toWarrenError(reason));
      return;
    }
    const c = this.#controller;
    if (c && !c.aborted) c.abort(reason);
    else if (!c) this.fail(reason);
  }

  /** Refreshes the idle timer (response data, request data). */
  touch(): void {
    this.#idle?.refresh();
  }

  startIdleTimer(): void {
    if (this.#idleSuspended || this.#idle || this.#finished) return;
    const ms = this.#idleMs ?? this.compiled.idleTimeout;
    this.#idle = new Deadline(() => this.abort(new WarrenError(ErrorCode.UpstreamTimeout, `no data for ${ms} ms (idle timeout)`)));
    this.#idle.start(ms);
  }

  // request-body watch, driven by the body readers below

  /** The upstream (or the pre-dispatch read) waits for body bytes: the client has `requestBodyTimeout` to send some. */
  bodyWanted(): void {
    if (!this.#bodyWatched || this.#finished) return;
    if (this.#bodyTimer) {
      this.#bodyTimer.refresh();
      return;
    }
    const ms = this.compiled.requestBodyTimeout;
    this.#bodyTimer = setTimeout(() => {
      this.abort(new WarrenError(ErrorCode.BadRequest, `request body stalled: no bytes for ${ms} ms (request body timeout)`, { status: 408 }));
    }, ms);
  }

  /** Body bytes arrived: they count as activity for the idle timeout too (gRPC client messages). */
  bodyReceived(): void {
    this.#bodyTimer?.refresh();
    this.touch();
  }

  /** The body ended, or the upstream stopped reading for now (its backpressure is not the client's stall). */
  bodyIdle(): void {
    if (this.#bodyTimer) clearTimeout(this.#bodyTimer);
    this.#bodyTimer = undefined;
  }

  /** The response head arrived: from now on the idle timeout watches both directions. */
  stopBodyWatch(): void {
    this.#bodyWatched = false;
    this.bodyIdle();
  }

  respond(status: number, headers: RawHeaders, contentLength: number | undefined, trailers: boolean): Writable {
    const sink = this.exchange.respond({ status, headers, contentLength, trailers });
    this.#sent = { head: { status, headers, trailers }, sink };
    sink.on('error', this.#onClientAbort);
    return sink;
  }

  /** Ends the exchange with an error, through the one error mapping. */
  fail(error: unknown): void {
    if (this.#finished) return;
    const err = toWarrenError(error);
    if (this.exchange.signal.aborted) {
      this.#finish(CLIENT_GONE, err);
      return;
    }
    const broken = this.exchange.responded;
    const status = failExchange(this.exchange, err, {
      mapError: this.compiled.mapError,
      route: this.route,
      sent: this.#sent,
      details: this.env.errorDetails,
    });
    this.#finish(status, err);
    if (broken) this.env.onBrokenResponse?.(this, err);
  }

  complete(status: number): void {
    this.#finish(status, undefined);
  }

  upgraded(socket: Duplex, session: UpgradeSession): void {
    this.#upstreamSocket = socket;
    // The upgrade answered the request: the session that follows is no request the route's timeout bounds.
    if (this.#requestTimer) clearTimeout(this.#requestTimer);
    this.suspendIdleTimeout();
    const upgrade = this.compiled.upgrade!;
    let ended: Promise<void>;
    try {
      ended = upgrade.plugin.onUpgrade!(upgrade.binding, session);
    } catch (err) {
      ended = Promise.reject(err);
    }
    ended.then(
      () => this.#finish(101, undefined),
      (err) => {
        this.env.onUpgradeError?.(this, err);
        socket.destroy();
        session.toClient.destroy();
        this.#finish(101, toWarrenError(err));
      },
    );
  }

  /**
   * The response sink failed to take the end of the body (the client's stream broke): the response is truncated,
   * so the exchange ends as the client's going away, with the sink's error, never as complete.
   */
  sinkFailed(err: Error): void {
    if (this.#finished) return;
    this.#clientGone(toWarrenError(err));
  }

  #clientGone(error?: WarrenError): void {
    if (this.#finished) return;
    if (!this.#abortReason) this.#abortReason = new WarrenError(ErrorCode.UpstreamProtocol, 'client went away');
    this.#controller?.abort(this.#abortReason);
    this.#upstreamSocket?.destroy();
    const sink = this.#sent?.sink;
    if (sink && !sink.destroyed) sink.destroy();
    this.#finish(this.#upstreamSocket ? 101 : CLIENT_GONE, error);
  }

  #finish(status: number, error: WarrenError | undefined): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#idle?.cancel();
    if (this.#deadline) clearTimeout(this.#deadline);
    if (this.#requestTimer) clearTimeout(this.#requestTimer);
    if (this.#bodyTimer) clearTimeout(this.#bodyTimer);
    try {
      this.onEnd({ status, error, endpoint: this.endpoint, attempts: this.attempts });
    } finally {
      this.#resolve();
    }
  }

  /**
   * The request body for one attempt: a fresh reader over the exchange body. The upstream client may destroy
   * what it is given (undici does, once written or on error); the exchange body itself must survive that,
   * because for HTTP/2 acceptors it is the same stream as the response sink.
   */
  bodyForAttempt(): Readable | null {
    // An upgrade request has no body: the client's bytes after the head belong to the upgraded session.
    if (this.framing.contentLength === 0 || this.exchange.head.upgrade !== undefined) return null;
    if (this.#buffered) return Readable.from([this.#buffered], { objectMode: false });
    return detachedReader(this.exchange.body, this);
  }

  /** Whether a failed attempt may be repeated on another endpoint. */
  mayRetry(err: Error): 'eject-and-retry' | 'retry' | 'eject' | 'no' {
    const phase = failurePhase(err);
    if (phase === 'other' || this.#abortReason) return 'no';
    const body = this.exchange.body;
    const bodyUntouched =
      this.framing.contentLength === 0 ||
      this.exchange.head.upgrade !== undefined ||
      this.#buffered !== undefined ||
      (!body.readableDidRead && !body.readableEnded && !body.destroyed);
    const allowed = this.attempts <= this.env.retries && IDEMPOTENT.has(this.exchange.head.method) && bodyUntouched;
    if (phase === 'connect') return allowed ? 'eject-and-retry' : 'eject';
    return allowed ? 'retry' : 'no';
  }
}

/**
 * Core's innermost dispatch: picks an endpoint, sends the request to its pool, and on a connect failure of a
 * retryable request ejects that endpoint and tries another one. The handler above it sees one request.
 */
export function coreDispatch(options: UpstreamDispatchOptions, handler: Dispatcher.DispatchHandler): void {
  new Attempts(PluginContext.runOf(options.context), options, handler).next(undefined);
}

/** A socket read up to this size costs little to keep alive with the response head it carried. */
const SMALL_READ_BYTES = 16_384;

/**
 * Gives the response head's raw fields a buffer of their own once the handlers have seen the head. The HTTP/1.1
 * client hands them over as views of the socket read that carried the head, and in a large response that read
 * is also the body's first bytes (up to 64 KiB). The client's controller holds the fields until the response
 * ends, so that read outlived the body chunks read with it: the GC promoted it, and every large response left
 * one to wait for the next full collection (docs/benchmarks.md, "What the connector holds"). Same bytes, same
 * field boundaries; heads read alone or in small reads are left as they are.
 */
function ownRawHeaders(controller: Controller): void {
  const raw = controller.rawHeaders;
  if (!Array.isArray(raw)) return;
  let bytes = 0;
  let large = false;
  for (const field of raw) {
    if (!Buffer.isBuffer(field)) return;
    bytes += field.length;
    if (field.buffer.byteLength > SMALL_READ_BYTES) large = true;
  }
  if (!large) return;
  const own = Buffer.concat(raw as Buffer[], bytes);
  let at = 0;
  controller.rawHeaders = (raw as Buffer[]).map((field) => own.subarray(at, (at += field.length)));
}

/**
 * One exchange's attempts. It is also the controller the handlers above it see (one per exchange, across
 * attempts): it reads through to the current attempt's controller, so no closures are made per request.
 */
class Attempts implements Dispatcher.DispatchHandler, Controller {
  readonly #run: ExchangeRun;
  readonly #options: UpstreamDispatchOptions;
  readonly #next: Dispatcher.DispatchHandler;
  /** Endpoint indexes tried before the current attempt; made on the first retry. */
  #tried: Set<number> | undefined;
  /** Endpoint index of the current attempt; -1 before the first. */
  #index = -1;
  #state: EndpointState | undefined;
  #started = false;
  #responding = false;
  /** Runs from the first 1xx until the final response head: the client library restarts its own head timer per 1xx. */
  #informational: NodeJS.Timeout | undefined;
  /** Bounds the current attempt until its response ended (the route's `timeouts.backendRequest`). */
  #attemptTimer: NodeJS.Timeout | undefined;

  constructor(run: ExchangeRun, options: UpstreamDispatchOptions, next: Dispatcher.DispatchHandler) {
    this.#run = run;
    this.#options = options;
    this.#next = next;
  }

  // the controller the handlers above see

  get aborted(): boolean {
    const run = this.#run;
    return run.controller?.aborted ?? run.abortReason !== undefined;
  }

  get paused(): boolean {
    return this.#run.controller?.paused ?? false;
  }

  get reason(): Error | null {
    const run = this.#run;
    return run.controller?.reason ?? run.abortReason ?? null;
  }

  get rawHeaders(): Controller['rawHeaders'] {
    return this.#run.controller?.rawHeaders;
  }

  get rawTrailers(): Controller['rawTrailers'] {
    return this.#run.controller?.rawTrailers;
  }

  abort(reason: Error): void {
    this.#run.abort(reason);
  }

  pause(): void {
    this.#run.controller?.pause();
  }

  resume(): void {
    this.#run.controller?.resume();
  }

  next(lastError: Error | undefined): void {
    const run = this.#run;
    const compiled = run.compiled;
    const upgrade = this.#options.upgrade !== undefined && this.#options.upgrade !== null;
    if (this.#index >= 0) (this.#tried ??= new Set()).add(this.#index);
    const index = compiled.balancer.pick(this.#tried);
    if (index < 0) {
      this.#forwardError(
        lastError ?? new WarrenError(ErrorCode.NoEndpoints, `service ${compiled.route.backend.namespace}/${compiled.route.backend.service} has no ready endpoint`),
      );
      return;
    }
    this.#index = index;
    const state = compiled.balancer.states[index]!;
    this.#state = state;
    state.outstanding++;
    run.attempts++;
    run.endpoint = state.key;
    const key = (upgrade ? compiled.upgradePoolKeys : compiled.poolKeys)![index]!;
    const options: UpstreamDispatchOptions = { ...this.#options, body: run.bodyForAttempt() };
    // A cleartext connection verifies no name; without one undici would derive one per request from the Host
    // header (which the client controls) and hand it to its connect.
    options.servername ??= state.host;
    if (compiled.closeConnections || upgrade) options.reset = true;
    const limit = compiled.backendRequestTimeout;
    if (limit !== undefined) {
      this.#attemptTimer = setTimeout(() => {
        run.abort(new WarrenError(ErrorCode.UpstreamTimeout, `upstream request not complete within ${limit} ms (route timeouts.backendRequest)`));
      }, limit);
    }
    try {
      run.env.pools.get(key).dispatch(options, this);
    } catch (err) {
      this.onResponseError(undefined as unknown as Controller, err as Error);
    }
  }

  /**
   * An origin may send 1xx responses for ever without a final one: the response-head timeout then runs from the
   * first of them and is not restarted by the next.
   */
  #awaitFinalResponse(status: number): void {
    const ms = this.#options.headersTimeout;
    if (this.#informational || ms === undefined || ms === null || ms <= 0) return;
    this.#informational = setTimeout(() => {
      this.#run.abort(new WarrenError(ErrorCode.UpstreamTimeout, `no final response within ${ms} ms of an informational ${status} response (response-head timeout)`));
    }, ms);
  }

  #stopInformationalTimer(): void {
    if (this.#informational) clearTimeout(this.#informational);
    this.#informational = undefined;
  }

  #release(): void {
    this.#stopInformationalTimer();
    if (this.#attemptTimer) clearTimeout(this.#attemptTimer);
    this.#attemptTimer = undefined;
    if (this.#state) {
      this.#state.outstanding--;
      this.#state = undefined;
    }
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.#run.controller = controller;
    if (controller.aborted || this.#started) return;
    this.#started = true;
    this.#next.onRequestStart?.(this, context);
  }

  onResponseStart(_c: Controller, status: number, headers: Headers, message?: string): void {
    // A 1xx informational response (103 Early Hints, an unsolicited 100 Continue) precedes the real one and is
    // not forwarded (the edge expects none from a connector); the final response follows on this handler.
    if (status < 200) {
      this.#awaitFinalResponse(status);
      return;
    }
    this.#stopInformationalTimer();
    this.#responding = true;
    this.#run.stopBodyWatch();
    if (this.#state) this.#run.env.states.recordSuccess(this.#state);
    this.#next.onResponseStart?.(this, status, headers, message);
    ownRawHeaders(_c);
  }

  onResponseData(_c: Controller, chunk: Buffer): void {
    // Only the upstream's bytes count as activity: bytes a plugin inserts (SSE heartbeats) must not keep a
    // silent upstream alive.
    this.#run.touch();
    this.#next.onResponseData?.(this, chunk);
  }

  onResponseEnd(_c: Controller, trailers: Headers): void {
    this.#release();
    this.#next.onResponseEnd?.(this, trailers);
  }

  onRequestUpgrade(_c: Controller, status: number, headers: Headers, socket: Duplex): void {
    if (this.#state) this.#run.env.states.recordSuccess(this.#state);
    this.#release();
    this.#next.onRequestUpgrade?.(this, status, headers, socket);
  }

  onResponseError(_c: Controller, err: Error): void {
    const state = this.#state;
    this.#release();
    if (!this.#responding && state) {
      const decision = this.#run.mayRetry(err);
      if (decision === 'eject' || decision === 'eject-and-retry') this.#run.env.states.recordFailure(state);
      if (decision === 'eject-and-retry' || decision === 'retry') {
        this.#run.env.onRetry?.(this.#run, decision === 'eject-and-retry');
        this.#run.controller = undefined;
        this.next(err);
        return;
      }
    }
    this.#forwardError(err);
  }

  #forwardError(err: Error): void {
    this.#next.onResponseError?.(this, err);
  }
}

/** The handler at the top of the chain: writes the response into the exchange. */
class ResponseWriter implements Dispatcher.DispatchHandler {
  readonly #run: ExchangeRun;
  #sink: Writable | undefined;
  #status = 0;
  #paused: Controller | undefined;
  /**
   * Made and listening from the first time the sink fills, then for the rest of the response: most responses
   * never fill it (they make no listener), and one that does usually fills it again (a `once` per pause would
   * cost a wrapper each time).
   */
  #onDrain: (() => void) | undefined;
  /** The sink's end: only a response the acceptor took whole is complete; one it failed to end is the client's loss. */
  readonly #onEnded = (err?: Error | null): void => {
    if (err) this.#run.sinkFailed(err);
    else this.#run.complete(this.#status);
  };

  constructor(run: ExchangeRun) {
    this.#run = run;
  }

  onRequestStart(): void {}

  onResponseStart(controller: Controller, status: number, headers: Headers): void {
    const run = this.#run;
    if (run.finished) return;
    const head = run.exchange.head;
    this.#status = status;
    const list = downstreamResponseHeaders(controller.rawHeaders as Buffer[] | null | undefined, headers as Record<string, string>, status);
    const bodyless = head.method === 'HEAD' || status === 204 || status === 304 || status < 200;
    const declared = headers['content-length'];
    const contentLength = bodyless ? 0 : declared !== undefined ? Number(declared) : undefined;
    // Trailers may follow a response that announces them (`Trailer`; an interceptor may announce the trailers it
    // will add) and any HTTP/2 response.
    const trailers = headers.trailer !== undefined || run.compiled.profile.http2 !== 'off';
    this.#sink = run.respond(status, list, Number.isFinite(contentLength) ? contentLength : undefined, trailers);
    run.startIdleTimer();
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    const run = this.#run;
    if (run.finished || !this.#sink) return;
    if (!this.#sink.write(chunk) && !this.#paused) {
      this.#paused = controller;
      controller.pause();
      if (!this.#onDrain) {
        this.#onDrain = () => {
          const c = this.#paused;
          this.#paused = undefined;
          c?.resume();
        };
        this.#sink.on('drain', this.#onDrain);
      }
    }
  }

  onResponseEnd(_controller: Controller, trailers: Headers): void {
    const run = this.#run;
    const sink = this.#sink;
    if (run.finished || !sink) return;
    const fields = headersOfObject(trailers, []);
    if (fields.length > 0) {
      try {
        run.exchange.setTrailers(fields);
      } catch {
        // the head did not announce trailers: they are dropped (HTTP/1.1 clients without chunked framing)
      }
    }
    sink.end(this.#onEnded);
  }

  onRequestUpgrade(controller: Controller, status: number, headers: Headers, socket: Duplex): void {
    const run = this.#run;
    if (run.finished) {
      socket.destroy();
      return;
    }
    const list = downstreamResponseHeaders(controller.rawHeaders as Buffer[] | null | undefined, headers as Record<string, string>, status);
    const toClient = run.respond(status, list, undefined, false);
    run.upgraded(socket, {
      exchange: run.exchange,
      fromClient: run.exchange.body,
      toClient,
      upstream: socket,
      idleTimeout: run.compiled.idleTimeoutOverride,
    });
  }

  onResponseError(_controller: Controller, err: Error): void {
    this.#run.fail(err);
  }
}

/** What the body readers report, so the exchange can time the client's sending (see `ExchangeRun.bodyWanted`). */
interface BodyWatch {
  bodyWanted(): void;
  bodyReceived(): void;
  bodyIdle(): void;
}

/**
 * A Readable over `source` that starts reading it only when first read, and whose destruction leaves
 * `source` alone (backpressure is kept: `source` pauses while the reader is full). While the reader wants bytes
 * and `source` has none, `watch` times the client.
 */
function detachedReader(source: Readable, watch: BodyWatch): Readable {
  let attached = false;
  const onData = (chunk: Buffer): void => {
    watch.bodyReceived();
    if (!reader.push(chunk)) {
      source.pause();
      watch.bodyIdle();
    }
  };
  const onEnd = (): void => {
    watch.bodyIdle();
    reader.push(null);
  };
  const onError = (err: Error): void => {
    watch.bodyIdle();
    reader.destroy(err);
  };
  const reader = new Readable({
    read() {
      if (!attached) {
        attached = true;
        if (source.readableEnded) return void this.push(null);
        source.on('data', onData);
        source.once('end', onEnd);
        source.once('error', onError);
      }
      watch.bodyWanted();
      source.resume();
    },
    destroy(err, callback) {
      watch.bodyIdle();
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      callback(err);
    },
  });
  return reader;
}

const EMPTY = Buffer.alloc(0);

/**
 * Reads a body of declared `length` whole, timed by `watch`. More bytes than declared is a framing error
 * (400); fewer is one too when the body ends early. Memory grows with the bytes received, never with the
 * declared length: a client that declares a large body and sends none must not make Warren allocate it.
 */
function readWhole(source: Readable, length: number, watch: BodyWatch): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    // Grown by doubling as bytes arrive (at most twice what was received), up to the declared length.
    let body = EMPTY;
    let filled = 0;
    const cleanup = (): void => {
      watch.bodyIdle();
      source.off('data', onData);
      source.off('end', onEnd);
      source.off('error', onError);
      source.off('close', onClose);
      source.pause();
    };
    const mismatch = (): void => {
      cleanup();
      reject(new WarrenError(ErrorCode.BadRequest, 'request body length does not match its content-length', { status: 400 }));
    };
    const onData = (chunk: Buffer): void => {
      watch.bodyReceived();
      if (filled + chunk.length > length) return mismatch();
      if (filled + chunk.length > body.length) {
        const grown = Buffer.allocUnsafe(Math.min(length, Math.max(filled + chunk.length, body.length * 2, 4096)));
        body.copy(grown, 0, 0, filled);
        body = grown;
      }
      chunk.copy(body, filled);
      filled += chunk.length;
    };
    const onEnd = (): void => {
      if (filled !== length) return mismatch();
      cleanup();
      resolve(body);
    };
    const onError = (err: Error): void => {
      cleanup();
      reject(err);
    };
    // A body that closes without ending was cut off by the client, whose abort ends the exchange.
    const onClose = (): void => {
      if (!source.readableEnded) onError(new WarrenError(ErrorCode.BadRequest, 'request body was cut off', { status: 400 }));
    };
    if (source.readableEnded) return void (length === 0 ? resolve(EMPTY) : mismatch());
    source.on('data', onData);
    source.once('end', onEnd);
    source.once('error', onError);
    source.once('close', onClose);
    watch.bodyWanted();
    source.resume();
  });
}
