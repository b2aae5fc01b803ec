import { randomUUID } from 'node:crypto';
import {
  defineExchangeKey,
  ForwardingHandler,
  inject,
  injectable,
  type DispatchController,
  type DispatchHandler,
  type ResponseHeaders,
  type Route,
  type RouteBinding,
  type UpstreamInterceptor,
  type UpstreamPlugin,
} from '@warren/core/plugin';
import { REQUEST_ID_HEADER, manifest, type RequestIdConfig } from './manifest.js';

/** Per-route options, computed once per route-table generation in `bind`. */
export interface RequestIdOptions {
  readonly header: string;
  readonly trustIncoming: boolean;
  readonly echo: boolean;
}

/** What an incoming id may look like to be kept: short, printable, no separators that could smuggle values. */
const WELL_FORMED = /^[A-Za-z0-9._:-]{1,128}$/;

/** The request's id, for plugins later in the chain (`options.context.get(REQUEST_ID)`). */
const REQUEST_ID = defineExchangeKey<string>('example.request-id');

/**
 * The plugin class. The container builds one instance per route-table generation (never per request), so it
 * keeps no per-request state: everything about one request lives in the interceptor call.
 */
@injectable()
export class RequestIdPlugin implements UpstreamPlugin<RequestIdOptions> {
  readonly #config: RequestIdConfig;

  constructor(@inject(manifest.configToken) config: RequestIdConfig) {
    this.#config = config;
  }

  /** Route phase: read this plugin's annotation (already parsed by its schema, typed) and settle the options. */
  bind(route: Route): RouteBinding<RequestIdOptions> {
    const header = REQUEST_ID_HEADER.get(route) ?? this.#config.header;
    return { route, options: { header, trustIncoming: this.#config.trustIncoming, echo: this.#config.echo } };
  }

  /** Exchange phase: runs for every request of the route, so it stays small. */
  interceptor(binding: RouteBinding<RequestIdOptions>): UpstreamInterceptor {
    const { header, trustIncoming, echo } = binding.options;
    return (next) =>
      function requestId(options, handler) {
        const headers = options.headers;
        let id: string | undefined;
        for (let i = headers.length - 2; i >= 0; i -= 2) {
          if (headers[i] !== header) continue;
          if (trustIncoming && id === undefined && WELL_FORMED.test(headers[i + 1]!)) id = headers[i + 1];
          headers.splice(i, 2);
        }
        id ??= randomUUID();
        headers.push(header, id);
        options.context.set(REQUEST_ID, id);
        next(options, echo ? new EchoIdHandler(handler, header, id) : handler);
      };
  }
}

/** Adds the id to the response head; everything else passes through untouched. */
class EchoIdHandler extends ForwardingHandler {
  readonly #header: string;
  readonly #id: string;

  constructor(next: DispatchHandler, header: string, id: string) {
    super(next);
    this.#header = header;
    this.#id = id;
  }

  override onResponseStart(controller: DispatchController, statusCode: number, headers: ResponseHeaders, statusMessage?: string): void {
    super.onResponseStart(controller, statusCode, { ...headers, [this.#header]: this.#id }, statusMessage);
  }
}
