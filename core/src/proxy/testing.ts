import { createServer, get, type RequestListener, type Server } from 'node:http';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:https';
import type { AddressInfo, Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { pino, type Logger } from 'pino';
import type { DependencyContainer } from 'tsyringe';
import { TOKENS } from '../di/tokens.js';
import type { EventObject, EventSink, SecretReader } from '../plugin-api/lifecycle.js';
import type { PluginModule } from '../plugin-api/module.js';
import type { ControlPluginInstance } from '../plugin-api/registered.js';
import { checkPlugins, compareManifests, type LoadedPlugin } from '../plugins/registry.js';
import type { BackendProtocol, Endpoint, PathType, Route, RouteTable } from '../routes/types.js';
import { onSignalAbort } from './client-gone.js';
import type { Exchange, ExchangeFailure, ExchangeHandler, RawHeaders, RequestHead, ResponseHead } from './exchange.js';

/**
 * Test helpers for the proxy pipeline and upstream plugins (exported through `@warren/core/testing`): a
 * hand-built route table, in-memory Secrets and Events, loopback origins and in-memory exchanges. The harness
 * that runs the real pipeline behind the real plain-HTTP entry point is `testing/proxy-harness.ts`.
 */

export interface TestRouteInit {
  readonly id?: string;
  readonly host?: string;
  readonly path?: string;
  readonly pathType?: PathType;
  readonly namespace?: string;
  readonly ingress?: string;
  readonly service?: string;
  readonly port?: number;
  readonly portName?: string;
  readonly appProtocol?: string;
  /** `address:port` strings (IPv6 in brackets) or full endpoints. */
  readonly endpoints: ReadonlyArray<string | Endpoint>;
  readonly protocol?: BackendProtocol;
  /** Parsed annotation values, keyed without the `warren.dev/` prefix. */
  readonly annotations?: Readonly<Record<string, unknown>>;
  readonly secretRefs?: readonly string[];
  /** Gateway API parts of a route (see `Route`). */
  readonly filters?: Route['filters'];
  readonly conditions?: Route['conditions'];
  readonly timeouts?: Route['timeouts'];
  readonly unresolved?: Route['unresolved'];
}

/** Parses `address:port` / `[v6]:port` into an endpoint. */
export function testEndpoint(key: string): Endpoint {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(key);
  if (!m) throw new TypeError(`endpoint "${key}" must be address:port`);
  return { key, address: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]), terminating: false };
}

let routeSerial = 0;

/** A route as the routing model would build it. */
export function testRoute(init: TestRouteInit): Route {
  const namespace = init.namespace ?? 'default';
  const ingress = init.ingress ?? 'test';
  const path = init.path ?? '/';
  const endpoints = init.endpoints.map((e) => (typeof e === 'string' ? testEndpoint(e) : e));
  return Object.freeze({
    id: init.id ?? `${namespace}/${ingress}#${++routeSerial}${path}`,
    ingress: { namespace, name: ingress, uid: `uid-${ingress}`, creationTimestamp: '2026-01-01T00:00:00Z', generation: 1 },
    host: init.host,
    path,
    pathType: init.pathType ?? 'Prefix',
    backend: {
      namespace,
      service: init.service ?? 'svc',
      port: init.port ?? endpoints[0]?.port ?? 80,
      portName: init.portName,
      appProtocol: init.appProtocol,
      endpoints: [...endpoints].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
    },
    protocol: init.protocol ?? 'http',
    annotations: init.annotations ?? {},
    secretRefs: init.secretRefs ?? [],
    ...(init.filters && { filters: init.filters }),
    ...(init.conditions && { conditions: init.conditions }),
    ...(init.timeouts && { timeouts: init.timeouts }),
    ...(init.unresolved && { unresolved: init.unresolved }),
  });
}

function pathMatches(route: Route, path: string): boolean {
  if (route.pathType === 'Exact') return path === route.path;
  const prefix = route.path.replace(/\/+$/, '');
  if (prefix === '') return true;
  return path === prefix || path.startsWith(`${prefix}/`);
}

function hostRank(routeHost: string | undefined, host: string): number {
  if (routeHost === undefined) return 1;
  if (routeHost === host) return 3;
  if (routeHost.startsWith('*.')) {
    const dot = host.indexOf('.');
    if (dot > 0 && host.slice(dot + 1) === routeHost.slice(2)) return 2;
  }
  return 0;
}

/**
 * A route table over a fixed list, with the routing model's matching rules in their simplest form: exact host
 * over one-label wildcard over hostless; longest path; Exact over Prefix on a tie.
 */
export function testRouteTable(routes: readonly Route[], generation = 1): RouteTable {
  const frozen = Object.freeze([...routes]);
  return Object.freeze({
    generation,
    routes: frozen,
    diagnostics: [],
    ownedIngresses: [],
    hosts: [...new Set(frozen.flatMap((r) => (r.host ? [r.host] : [])))],
    match(rawHost: string, path: string): Route | undefined {
      const host = rawHost.replace(/:\d+$/, '').toLowerCase();
      let best: Route | undefined;
      let bestKey = -1;
      for (const r of frozen) {
        const rank = hostRank(r.host, host);
        if (rank === 0 || !pathMatches(r, path)) continue;
        const key = rank * 1e6 + r.path.length * 2 + (r.pathType === 'Exact' ? 1 : 0);
        if (key > bestKey) {
          best = r;
          bestKey = key;
        }
      }
      return best;
    },
  });
}

/** Secrets held in memory; `set`/`delete` notify `onChange` listeners like the real Secret cache. */
export class MemorySecrets implements SecretReader {
  readonly #data = new Map<string, Readonly<Record<string, Buffer>>>();
  readonly #listeners = new Set<(namespace: string, name: string) => void>();

  get(namespace: string, name: string): Readonly<Record<string, Buffer>> | undefined {
    return this.#data.get(`${namespace}/${name}`);
  }

  onChange(listener: (namespace: string, name: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  set(namespace: string, name: string, data: Record<string, string | Buffer>): void {
    const entries = Object.entries(data).map(([k, v]) => [k, Buffer.isBuffer(v) ? v : Buffer.from(v)] as const);
    this.#data.set(`${namespace}/${name}`, Object.freeze(Object.fromEntries(entries)));
    for (const l of this.#listeners) l(namespace, name);
  }

  delete(namespace: string, name: string): void {
    this.#data.delete(`${namespace}/${name}`);
    for (const l of this.#listeners) l(namespace, name);
  }
}

export interface MemoryEventRecord {
  readonly type: 'Warning' | 'Normal';
  readonly object: EventObject;
  readonly reason: string;
  readonly message: string;
}

/** Events recorded in memory. */
export class MemoryEvents implements EventSink {
  readonly records: MemoryEventRecord[] = [];

  warning(object: EventObject, reason: string, message: string): void {
    this.records.push({ type: 'Warning', object, reason, message });
  }

  normal(object: EventObject, reason: string, message: string): void {
    this.records.push({ type: 'Normal', object, reason, message });
  }
}

/** A plugin module with the settings to enable it with (parsed by its schema). */
export interface TestPlugin {
  readonly module: PluginModule;
  readonly config?: Record<string, unknown>;
}

/** Parses, checks (as `resolvePlugins` does) and sorts plugin modules for `registerPlugins`. */
export function loadTestPlugins(plugins: readonly TestPlugin[]): LoadedPlugin[] {
  checkPlugins(plugins.map(({ module }) => ({ module, source: `test:${module.manifest.id}` })));
  return plugins
    .map(({ module, config }) => ({ module, config: Object.freeze(module.manifest.configSchema.parse(config ?? {})), source: 'test' }))
    .sort((a, b) => compareManifests(a.module.manifest, b.module.manifest));
}

/** The control plugins registered in `container`, as core resolves them (`registerPlugins`). */
export function registeredControlPlugins(container: DependencyContainer): ControlPluginInstance[] {
  return container.isRegistered(TOKENS.ControlPlugin, true) ? container.resolveAll(TOKENS.ControlPlugin) : [];
}

/** A pino logger (level `info`) whose JSON lines a test reads from `lines`. */
export function capturedLogger(): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const line of chunk.toString().split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}

/** The `error` of the newest access-log record (for `host`, when given) in lines from {@link capturedLogger}: the cause a client is not told. */
export function loggedError(lines: ReadonlyArray<Record<string, unknown>>, host?: string): string {
  return String(lines.findLast((l) => l.component === 'access' && (host === undefined || l.host === host))?.error);
}

/** A loopback origin server started by {@link startOrigin}. */
export interface TestOrigin {
  /** `address:port`, usable as an endpoint key. */
  readonly key: string;
  readonly host: string;
  readonly port: number;
  readonly server: Server | TlsServer;
  /** Requests seen so far. */
  readonly requests: number;
  /** Distinct TCP connections accepted so far. */
  readonly connections: number;
  /** Stops listening and destroys every open connection (simulates a killed pod). */
  kill(): Promise<void>;
  close(): Promise<void>;
}

export interface OriginOptions {
  /** Loopback or test-host address to bind (default 127.0.0.1). */
  readonly host?: string;
  /** Serve HTTPS with this certificate (PEM). `requestCert`/`ca` ask for client certificates (mTLS). */
  readonly tls?: { cert: string; key: string; ca?: string; requestCert?: boolean };
  /** Request handler; default: the echo handler ({@link echoHandler}). */
  readonly handler?: RequestListener;
}

/**
 * Echo handler: answers 200 with JSON `{origin, method, url, headers, rawHeaders, bodyBytes}` after reading
 * the whole request body (counting bytes only).
 */
export function echoHandler(origin: string): RequestListener {
  return (req, res) => {
    let bytes = 0;
    req.on('data', (chunk: Buffer) => (bytes += chunk.length));
    req.on('end', () => {
      const body = JSON.stringify({ origin, method: req.method, url: req.url, headers: req.headers, rawHeaders: req.rawHeaders, bodyBytes: bytes });
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  };
}

/** Starts an HTTP(S)/1.1 origin on a loopback (or test-host) address and a free port. */
export async function startOrigin(options: OriginOptions = {}): Promise<TestOrigin> {
  const host = options.host ?? '127.0.0.1';
  let requests = 0;
  let connections = 0;
  const sockets = new Set<Socket>();
  let key = '';
  const handler = options.handler;
  const listener: RequestListener = (req, res) => {
    requests++;
    (handler ?? echoHandler(key))(req, res);
  };
  const server = options.tls
    ? createTlsServer(
        {
          cert: options.tls.cert,
          key: options.tls.key,
          ca: options.tls.ca,
          requestCert: options.tls.requestCert ?? false,
          rejectUnauthorized: options.tls.requestCert ?? false,
        },
        listener,
      )
    : createServer(listener);
  server.on('connection', (socket: Socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  key = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  const stop = async (force: boolean): Promise<void> => {
    if (!server.listening) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    if (force) for (const s of sockets) s.destroy();
    else server.closeIdleConnections();
    server.closeAllConnections?.();
    await closed;
  };
  return {
    key,
    host,
    port,
    server,
    get requests() {
      return requests;
    },
    get connections() {
      return connections;
    },
    kill: () => stop(true),
    close: () => stop(false),
  };
}

/** What {@link runExchange} observed. */
export interface ExchangeResult {
  readonly response: ResponseHead | undefined;
  readonly failure: ExchangeFailure | undefined;
  readonly body: Buffer;
  readonly trailers: RawHeaders | undefined;
}

/**
 * Feeds one in-memory exchange to a handler (as an acceptor would) and collects what the handler answered.
 * `head` fields default to a GET of `/` for host `test` from 127.0.0.1 without a body; `signal` is the
 * exchange's client-gone signal (default: one that never aborts).
 */
export async function runExchange(handler: ExchangeHandler, head: Partial<RequestHead> & { body?: Buffer | string; signal?: AbortSignal }): Promise<ExchangeResult> {
  const chunks: Buffer[] = [];
  let response: ResponseHead | undefined;
  let failure: ExchangeFailure | undefined;
  let trailers: RawHeaders | undefined;
  const bodyBytes = head.body === undefined ? undefined : Buffer.from(head.body);
  const full: RequestHead = {
    method: head.method ?? 'GET',
    scheme: head.scheme ?? 'https',
    authority: head.authority ?? 'test',
    path: head.path ?? '/',
    headers: head.headers ?? [],
    clientAddress: head.clientAddress ?? '127.0.0.1',
    forwardedBy: head.forwardedBy,
    upgrade: head.upgrade,
    contentLength: head.contentLength ?? bodyBytes?.length ?? 0,
  };
  let responded = false;
  const signal = head.signal ?? new AbortController().signal;
  const exchange: Exchange = {
    id: `mem-${++routeSerial}`,
    head: full,
    body: Readable.from(bodyBytes ? [bodyBytes] : []),
    signal,
    onClientGone: onSignalAbort(signal),
    get responded() {
      return responded;
    },
    respond(h) {
      if (responded) throw new Error('respond() called twice');
      responded = true;
      response = h;
      return new Writable({
        write(chunk: Buffer, _e, cb) {
          chunks.push(chunk);
          cb();
        },
      });
    },
    setTrailers(t) {
      trailers = t;
    },
    fail(f) {
      responded = true;
      failure = f;
    },
  };
  await handler.handle(exchange);
  return { response, failure, body: Buffer.concat(chunks), trailers };
}

/** One GET on a fresh connection with the given Host; resolves with the status and the body as text. */
export function getText(url: string, host: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false, headers: { host } }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    }).on('error', reject);
  });
}
