import type { Duplex } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { PoolDispatchOptions, UpstreamPool } from '../plugin-api/upstream.js';
import { RequestController } from './controller.js';

type Controller = Dispatcher.DispatchController;
type Headers = Parameters<NonNullable<Dispatcher.DispatchHandler['onResponseStart']>>[2];

/**
 * Bounds the wait for a response head on a plugin's pool (`UpstreamPlugin.createPool`) as core's HTTP pools do
 * themselves: `options.headersTimeout` ms after dispatch (the route's `response-header-timeout`) without a final
 * response head, the request is aborted and fails with `UND_ERR_HEADERS_TIMEOUT` (504). A pool that honours the
 * option itself is unaffected: whichever fires first wins, the other finds the request done.
 */
export class HeadTimeoutPool implements UpstreamPool {
  constructor(private readonly inner: UpstreamPool) {}

  dispatch(options: PoolDispatchOptions, handler: Dispatcher.DispatchHandler): boolean {
    const ms = options.headersTimeout;
    if (typeof ms !== 'number' || ms <= 0) return this.inner.dispatch(options, handler);
    return this.inner.dispatch(options, new HeadTimer(handler, ms));
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  destroy(): Promise<void> {
    return this.inner.destroy();
  }
}

/** Forwards every callback; ends the request with a timeout when no final head came in time, then ignores the pool. */
class HeadTimer implements Dispatcher.DispatchHandler {
  readonly #next: Dispatcher.DispatchHandler;
  #controller: Controller | undefined;
  #timer: NodeJS.Timeout | undefined;
  #timedOut = false;

  constructor(next: Dispatcher.DispatchHandler, ms: number) {
    this.#next = next;
    this.#timer = setTimeout(() => this.#expire(ms), ms);
  }

  #expire(ms: number): void {
    this.#timer = undefined;
    this.#timedOut = true;
    const error = Object.assign(new Error(`no response head within ${ms} ms`), { code: 'UND_ERR_HEADERS_TIMEOUT' });
    const controller = this.#controller ?? new RequestController(() => {});
    if (!controller.aborted) controller.abort(error);
    this.#next.onResponseError?.(controller, error);
  }

  #stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  onRequestStart(controller: Controller, context: unknown): void {
    this.#controller = controller;
    if (!this.#timedOut) this.#next.onRequestStart?.(controller, context);
  }

  onRequestUpgrade(controller: Controller, statusCode: number, headers: Headers, socket: Duplex): void {
    this.#stop();
    if (this.#timedOut) return void socket.destroy();
    this.#next.onRequestUpgrade?.(controller, statusCode, headers, socket);
  }

  onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    if (this.#timedOut) return;
    if (statusCode >= 200) this.#stop();
    this.#next.onResponseStart?.(controller, statusCode, headers, statusMessage);
  }

  onResponseData(controller: Controller, chunk: Buffer): void {
    if (!this.#timedOut) this.#next.onResponseData?.(controller, chunk);
  }

  onResponseEnd(controller: Controller, trailers: Headers): void {
    this.#stop();
    if (!this.#timedOut) this.#next.onResponseEnd?.(controller, trailers);
  }

  onResponseError(controller: Controller, error: Error): void {
    this.#stop();
    if (!this.#timedOut) this.#next.onResponseError?.(controller, error);
  }
}
