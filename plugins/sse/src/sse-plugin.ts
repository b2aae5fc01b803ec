import {
  ForwardingHandler,
  inject,
  injectable,
  type DispatchController as Controller,
  type DispatchHandler,
  type ExchangeContext,
  type ResponseHeaders as Headers,
  type Route,
  type RouteBinding,
  type UpstreamInterceptor,
  type UpstreamPlugin,
} from '@warren/core/plugin';
import { SSE_HEARTBEAT, SSE_IDLE_TIMEOUT, manifest, type SseConfig } from './manifest.js';

export interface SseOptions {
  /** Heartbeat interval in ms; 0 = off. */
  readonly heartbeat: number;
  /** Stream idle bound in ms (upstream bytes only). */
  readonly idleTimeout: number;
}

const HEARTBEAT = Buffer.from(': keep-alive\n\n');

/** Binds every route; the handler acts only on `text/event-stream` responses. */
@injectable()
export class SsePlugin implements UpstreamPlugin<SseOptions> {
  readonly #settings: SseConfig;

  constructor(@inject(manifest.configToken) settings: SseConfig) {
    this.#settings = settings;
  }

  bind(route: Route): RouteBinding<SseOptions> {
    return {
      route,
      options: {
        heartbeat: SSE_HEARTBEAT.get(route) ?? this.#settings.heartbeat,
        idleTimeout: SSE_IDLE_TIMEOUT.get(route) ?? this.#settings.idleTimeout,
      },
    };
  }

  interceptor(binding: RouteBinding<SseOptions>): UpstreamInterceptor {
    const { heartbeat, idleTimeout } = binding.options;
    return (next) =>
      function sse(options, handler) {
        next(options, new SseStreamHandler(handler, options.context, heartbeat, idleTimeout));
      };
  }
}

/**
 * Gives event streams their own idle bound (`idleTimeout` ms without an upstream byte) and, when configured,
 * inserts a comment after `heartbeat` ms of silence (it does not count as upstream activity). A heartbeat is only written at an event boundary (after a blank line), never inside an event, and
 * not while the client is applying backpressure.
 */
export class SseStreamHandler extends ForwardingHandler {
  readonly #context: ExchangeContext;
  readonly #interval: number;
  readonly #idleTimeout: number;
  #timer: NodeJS.Timeout | undefined;
  #controller: Controller | undefined;
  /** The last bytes passed on (at most 4), to tell whether the stream sits between events. */
  #tail = '\n\n';

  constructor(next: DispatchHandler, context: ExchangeContext, heartbeat: number, idleTimeout: number) {
    super(next);
    this.#context = context;
    this.#interval = heartbeat;
    this.#idleTimeout = idleTimeout;
  }

  override onResponseStart(controller: Controller, statusCode: number, headers: Headers, statusMessage?: string): void {
    const type = headers['content-type'];
    if (statusCode === 200 && typeof type === 'string' && type.toLowerCase().startsWith('text/event-stream')) {
      this.#context.setIdleTimeout(this.#idleTimeout);
      this.#controller = controller;
      if (this.#interval > 0) this.#timer = setTimeout(() => this.#beat(), this.#interval);
    }
    super.onResponseStart(controller, statusCode, headers, statusMessage);
  }

  override onResponseData(controller: Controller, chunk: Buffer): void {
    if (this.#timer) {
      this.#timer.refresh();
      this.#tail = (this.#tail + chunk.subarray(Math.max(0, chunk.length - 4)).toString('latin1')).slice(-4);
    }
    super.onResponseData(controller, chunk);
  }

  override onResponseEnd(controller: Controller, trailers: Headers): void {
    this.#stop();
    super.onResponseEnd(controller, trailers);
  }

  override onResponseError(controller: Controller, error: Error): void {
    this.#stop();
    super.onResponseError(controller, error);
  }

  #beat(): void {
    const c = this.#controller;
    if (this.finished || !c || c.aborted) return this.#stop();
    if (atEventBoundary(this.#tail) && !c.paused) super.onResponseData(c, HEARTBEAT);
    this.#timer?.refresh();
  }

  #stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}

/** Whether a stream whose last bytes are `tail` sits between events (it ends with a blank line). */
export function atEventBoundary(tail: string): boolean {
  return tail.endsWith('\n\n') || tail.endsWith('\r\r') || tail.endsWith('\r\n\r\n');
}
