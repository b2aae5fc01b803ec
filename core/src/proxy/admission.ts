import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import { ErrorCode, WarrenError } from '../errors.js';
import { ForwardingHandler, type ResponseHeaders, type PoolDispatchOptions, type UpstreamPool } from '../plugin-api/upstream.js';
import { RequestController } from './controller.js';

/**
 * Admission in front of one endpoint's pool: at most `capacity` requests run on its connections at once (one
 * per HTTP/1.1 connection, the stream limit per HTTP/2 connection); the rest wait in arrival order, at most
 * `maxQueued` of them, each for at most its queue timeout. A request that cannot wait answers 503 with
 * `Retry-After` (gRPC: UNAVAILABLE) instead of joining the client library's unbounded queue, so a Service whose
 * connections are all held (slow uploads, a stalled pod) fails fast and visibly rather than piling up requests.
 *
 * Requests that stream their body from the client (`streamsBody`) hold a slot for as long as the client takes to
 * send it, so they may hold at most `uploadShare` of the slots until their response starts: however slowly many
 * clients upload, the other requests to the Service keep the rest.
 */

type Handler = Dispatcher.DispatchHandler;
type Controller = Dispatcher.DispatchController;

export interface AdmissionLimits {
  /** Requests that may wait for this pool at once (setting `proxy.maxQueuedRequests`). */
  readonly maxQueued: number;
  /** Default wait for a free slot in ms (setting `proxy.upstreamQueueTimeout`). */
  readonly queueTimeout: number;
  /** Share of the slots (0–1) that requests still streaming their body may hold (setting `proxy.uploadSlotShare`). */
  readonly uploadShare: number;
}

/** Dispatch options core sets per request. */
export interface AdmissionDispatchOptions extends PoolDispatchOptions {
  /** The route's wait for a free slot (ms). */
  queueTimeout?: number | undefined;
  /** The request body streams from the client while the request holds its slot. */
  streamsBody?: boolean | undefined;
}

interface Waiting {
  /** Arrival order across both queues. */
  readonly serial: number;
  readonly options: AdmissionDispatchOptions;
  readonly handler: Handler;
  /** Aborting it while the request waits takes the request out of the queue. */
  readonly controller: RequestController;
  timer: NodeJS.Timeout | undefined;
}

export class AdmissionPool implements UpstreamPool {
  readonly #inner: UpstreamPool;
  readonly #capacity: number;
  /** Slots requests that stream their body may hold. */
  readonly #uploadCapacity: number;
  readonly #limits: AdmissionLimits;
  /** Insertion-ordered, so the first entry is the oldest; deletion on timeout or abort is O(1). */
  readonly #queue = new Set<Waiting>();
  /** Waiting requests that stream their body: they also wait for an upload slot. */
  readonly #uploadQueue = new Set<Waiting>();
  #serial = 0;
  #active = 0;
  #uploading = 0;
  #closing = false;
  /** Resolves a graceful close once the queue is empty. */
  #onDrained: (() => void) | undefined;

  constructor(inner: UpstreamPool, capacity: number, limits: AdmissionLimits) {
    this.#inner = inner;
    this.#capacity = Math.max(1, capacity);
    this.#uploadCapacity = Math.max(1, Math.floor(this.#capacity * limits.uploadShare));
    this.#limits = limits;
  }

  /** Requests running on the pool now. For tests and diagnostics. */
  get active(): number {
    return this.#active;
  }

  /** Requests waiting for a slot now. For tests and diagnostics. */
  get queued(): number {
    return this.#queue.size + this.#uploadQueue.size;
  }

  dispatch(options: AdmissionDispatchOptions, handler: Handler): boolean {
    if (this.#closing) {
      handler.onResponseError?.(new RequestController(() => {}), closedError());
      return false;
    }
    const upload = options.streamsBody === true;
    const queue = upload ? this.#uploadQueue : this.#queue;
    if (queue.size === 0 && this.#fits(upload)) return this.#start(options, handler);
    const wait = options.queueTimeout ?? this.#limits.queueTimeout;
    if (this.queued >= this.#limits.maxQueued) {
      handler.onResponseError?.(
        new RequestController(() => {}),
        busy(`all ${this.#capacity} connection slots of the endpoint are busy and ${this.#limits.maxQueued} requests already wait (proxy.maxQueuedRequests)`, wait),
      );
      return false;
    }
    const controller = new RequestController((reason) => {
      if (!this.#leave(waiting)) return;
      handler.onResponseError?.(controller, reason);
    });
    const waiting: Waiting = { serial: this.#serial++, options, handler, controller, timer: undefined };
    queue.add(waiting);
    waiting.timer = setTimeout(() => {
      if (!this.#leave(waiting)) return;
      controller.aborted = true;
      handler.onResponseError?.(controller, busy(`no free connection to the endpoint within ${wait} ms (proxy.upstreamQueueTimeout)`, wait));
    }, wait);
    // The handler gets an abort handle while it waits (the client may go away); the pool gives it the real
    // controller when the request starts.
    handler.onRequestStart?.(controller, {});
    return false;
  }

  /** Takes no new requests; those waiting still get their turn (or their timeout), then the pool closes gracefully. */
  async close(): Promise<void> {
    this.#closing = true;
    if (this.queued > 0) await new Promise<void>((resolve) => (this.#onDrained = resolve));
    return this.#inner.close();
  }

  destroy(): Promise<void> {
    this.#closing = true;
    this.#rejectWaiting();
    return this.#inner.destroy();
  }

  /** Whether a request (streaming its body or not) may start now. */
  #fits(upload: boolean): boolean {
    return this.#active < this.#capacity && (!upload || this.#uploading < this.#uploadCapacity);
  }

  #start(options: AdmissionDispatchOptions, handler: Handler): boolean {
    this.#active++;
    const uploading = options.streamsBody === true;
    if (uploading) this.#uploading++;
    const releasing = new ReleasingHandler(handler, this, uploading);
    try {
      return this.#inner.dispatch(options, releasing);
    } catch (err) {
      releasing.release();
      throw err;
    }
  }

  /** An upload gave back its upload slot (its response started: the body was read by then). */
  uploadSlotFreed(): void {
    this.#uploading--;
    this.#admit();
  }

  /** A request gave back its slot (and its upload slot, if it still held one). */
  slotFreed(uploading: boolean): void {
    if (uploading) this.#uploading--;
    this.#active--;
    this.#admit();
  }

  #leave(waiting: Waiting): boolean {
    if (!this.#queue.delete(waiting) && !this.#uploadQueue.delete(waiting)) return false;
    clearTimeout(waiting.timer);
    if (this.queued === 0) this.#onDrained?.();
    return true;
  }

  /** Starts waiting requests in arrival order while slots are free; uploads only while an upload slot is free. */
  #admit(): void {
    // (Most calls find both queues empty: no iterators made for them.)
    while (this.#active < this.#capacity && this.#queue.size + this.#uploadQueue.size > 0) {
      const other = this.#queue.values().next().value;
      const upload = this.#uploading < this.#uploadCapacity ? this.#uploadQueue.values().next().value : undefined;
      const waiting = other === undefined ? upload : upload === undefined || other.serial < upload.serial ? other : upload;
      if (waiting === undefined) return;
      this.#leave(waiting);
      if (waiting.controller.aborted) continue;
      try {
        this.#start(waiting.options, waiting.handler);
      } catch (err) {
        waiting.handler.onResponseError?.(waiting.controller, err as Error);
      }
    }
  }

  #rejectWaiting(): void {
    for (const waiting of [...this.#queue, ...this.#uploadQueue]) {
      this.#leave(waiting);
      waiting.handler.onResponseError?.(waiting.controller, closedError());
    }
  }
}

/** The error undici reports for a closed pool, so core's error mapping treats both alike. */
function closedError(): Error {
  return Object.assign(new Error('the upstream pool is closed'), { code: 'UND_ERR_CLOSED' });
}

function busy(message: string, waitMs: number): WarrenError {
  return new WarrenError(ErrorCode.UpstreamBusy, message, { status: 503, retryAfter: Math.min(60, Math.max(1, Math.ceil(waitMs / 1000))) });
}

/** Gives back the upload slot when the response starts, and the slot once, at the terminal callback. */
/** Gives a started request's slots back to its pool: the upload slot when the response starts, the slot at the end. */
class ReleasingHandler extends ForwardingHandler {
  readonly #pool: AdmissionPool;
  #uploading: boolean;
  #released = false;

  constructor(next: Handler, pool: AdmissionPool, uploading: boolean) {
    super(next);
    this.#pool = pool;
    this.#uploading = uploading;
  }

  #uploaded(): void {
    if (!this.#uploading) return;
    this.#uploading = false;
    this.#pool.uploadSlotFreed();
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    const uploading = this.#uploading;
    this.#uploading = false;
    this.#pool.slotFreed(uploading);
  }

  override onResponseStart(controller: Controller, status: number, headers: ResponseHeaders, message?: string): void {
    // A 1xx (100 Continue, 103 Early Hints) is not the response: the upload may still be under way.
    if (status >= 200) this.#uploaded();
    super.onResponseStart(controller, status, headers, message);
  }

  override onRequestUpgrade(controller: Controller, status: number, headers: ResponseHeaders, socket: Duplex): void {
    this.release();
    super.onRequestUpgrade(controller, status, headers, socket);
  }

  override onResponseEnd(controller: Controller, trailers: ResponseHeaders): void {
    this.release();
    super.onResponseEnd(controller, trailers);
  }

  override onResponseError(controller: Controller, err: Error): void {
    this.release();
    super.onResponseError(controller, err);
  }
}
