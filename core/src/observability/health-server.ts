import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { once } from 'node:events';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Runnable } from '../plugin-api/lifecycle.js';

/**
 * A named health check. Returns `true` when healthy, or a short human reason when not (shown by
 * `/readyz?verbose`). Must be cheap and synchronous: probes call it on every request.
 */
export type HealthCheck = () => true | string;

/** Produces the JSON body of `/debug/routes` from the request's query parameters. Must not throw for any query. */
export type RouteDebugView = (query: URLSearchParams) => unknown;

export interface HealthServerOptions {
  /** `host:port` from `server.listen`; port 0 picks a free port (tests). */
  readonly listen: string;
  readonly registry: Registry;
  readonly logger: Logger;
}

/**
 * The observability endpoint (setting `server.listen`, default `0.0.0.0:10254`):
 *  - `GET /healthz`: 200 while every liveness check passes (the process is not wedged);
 *  - `GET /readyz`: 200 only when every readiness check passes — caches synced, and with the tunnel enabled at
 *    least one registered tunnel connection; 503 otherwise and during shutdown. `?verbose` lists each check;
 *  - `GET /metrics`: Prometheus text format from the registry;
 *  - `GET /debug/routes`: the live route table as JSON (read-only; see `routes/debug-view.ts`), once wired.
 *
 * A Runnable in the manager's first group: it starts before everything else and stops last, so probes and
 * scrapes keep working while the rest drains.
 */
export class HealthServer implements Runnable {
  readonly needsLeader = false;
  readonly #options: HealthServerOptions;
  readonly #readiness = new Map<string, HealthCheck>();
  readonly #liveness = new Map<string, HealthCheck>();
  #routeView: RouteDebugView | undefined;
  #listening: Promise<AddressInfo> | undefined;
  #resolveListening: ((a: AddressInfo) => void) | undefined;

  constructor(options: HealthServerOptions) {
    this.#options = options;
    this.#listening = new Promise((resolve) => (this.#resolveListening = resolve));
  }

  /** Adds (or replaces) a readiness check. Register before traffic is expected; checks run on every probe. */
  addReadinessCheck(name: string, check: HealthCheck): void {
    this.#readiness.set(name, check);
  }

  /** Adds (or replaces) a liveness check. Only for conditions a restart would fix. */
  addLivenessCheck(name: string, check: HealthCheck): void {
    this.#liveness.set(name, check);
  }

  /** Serves `GET /debug/routes` from `view` (404 until set). */
  serveRouteView(view: RouteDebugView): void {
    this.#routeView = view;
  }

  /** Resolves with the bound address once listening (useful with port 0). */
  address(): Promise<AddressInfo> {
    return this.#listening!;
  }

  /** Current readiness: `true` or the reasons, one per failing check. */
  readiness(): true | string[] {
    return evaluate(this.#readiness);
  }

  async start(signal: AbortSignal): Promise<void> {
    const { host, port } = splitHostPort(this.#options.listen);
    const server = createServer((req, res) => void this.#handle(req, res));
    server.keepAliveTimeout = 5_000;
    server.headersTimeout = 10_000;
    server.requestTimeout = 10_000;
    server.listen(port, host);
    await once(server, 'listening');
    const address = server.address() as AddressInfo;
    this.#options.logger.info({ address: `${address.address}:${address.port}` }, 'health and metrics server listening');
    this.#resolveListening?.(address);
    if (!signal.aborted) await once(signal, 'abort');
    server.closeIdleConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n');
    switch (url.pathname) {
      case '/healthz':
      case '/livez':
        return this.#probe(res, this.#liveness, url.searchParams.has('verbose'), 'failed');
      case '/readyz':
        return this.#probe(res, this.#readiness, url.searchParams.has('verbose'), 'not ready');
      case '/metrics':
        try {
          const body = await this.#options.registry.metrics();
          res.writeHead(200, { 'content-type': this.#options.registry.contentType });
          res.end(body);
        } catch (err) {
          this.#options.logger.error({ err }, 'metrics collection failed');
          send(res, 500, 'metrics collection failed\n');
        }
        return;
      case '/debug/routes':
        return this.#routes(res, url.searchParams);
      default:
        return send(res, 404, 'not found\n');
    }
  }

  #routes(res: ServerResponse, query: URLSearchParams): void {
    if (!this.#routeView) return send(res, 404, 'not found\n');
    let body: string;
    try {
      body = `${JSON.stringify(this.#routeView(query), null, 1)}\n`;
    } catch (err) {
      this.#options.logger.error({ err }, 'describing the route table failed');
      return send(res, 500, 'describing the route table failed\n');
    }
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.end(body);
  }

  /**
   * `not` is how a failing check is worded: a liveness check `failed`; a readiness check is `not ready` (it may
   * be starting or stopping, which is no failure), followed by the check's reason.
   */
  #probe(res: ServerResponse, checks: Map<string, HealthCheck>, verbose: boolean, not: 'failed' | 'not ready'): void {
    const lines: string[] = [];
    let ok = true;
    for (const [name, check] of checks) {
      const result = safe(check);
      if (result !== true) ok = false;
      if (verbose) lines.push(result === true ? `[+] ${name} ok` : `[-] ${name} ${not}: ${result}`);
    }
    const body = verbose ? `${lines.join('\n')}${lines.length ? '\n' : ''}${ok ? 'ok' : not}\n` : ok ? 'ok\n' : `${not}\n`;
    send(res, ok ? 200 : 503, body);
  }
}

function evaluate(checks: Map<string, HealthCheck>): true | string[] {
  const failed: string[] = [];
  for (const [name, check] of checks) {
    const result = safe(check);
    if (result !== true) failed.push(`${name}: ${result}`);
  }
  return failed.length === 0 ? true : failed;
}

function safe(check: HealthCheck): true | string {
  try {
    return check();
  } catch (err) {
    return `check threw: ${(err as Error).message}`;
  }
}

function send(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end(body);
}

/** Splits `host:port` / `[v6]:port`. */
function splitHostPort(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(':');
  const host = listen.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(listen.slice(i + 1)) };
}
