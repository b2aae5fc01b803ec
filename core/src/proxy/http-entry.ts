import { randomBytes } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import http2, { type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import net, { type AddressInfo, type Socket } from 'node:net';
import { Writable, type Duplex, type Readable } from 'node:stream';
import type { Logger } from 'pino';
import { sniffH2c } from '../http/sniff-h2c.js';
import type { Runnable } from '../plugin-api/lifecycle.js';
import { ClientGone } from './client-gone.js';
import { ERROR_PAGE_HEADERS } from './errors.js';
import type { Exchange, ExchangeFailure, ExchangeHandler, RawHeaders, RequestHead, ResponseHead } from './exchange.js';

/**
 * The plain-HTTP entry point (setting `server.proxyListen`): a cleartext listener that turns every request
 * into an {@link Exchange} for the same pipeline the tunnel feeds. HTTP/1.1 (upgrades included) and, detected
 * by the connection preface, HTTP/2 with prior knowledge (h2c, so gRPC clients can use it). For tests and
 * local debugging; it is not hardened for the internet (no TLS, Node's parser defaults).
 */

export interface HttpEntryOptions {
  readonly handler: ExchangeHandler;
  /** `host:port` (`[v6]:port`); port 0 picks a free port. */
  readonly listen: string;
  readonly logger?: Logger | undefined;
  /**
   * Node's parser limit for a request head. Keep it above the pipeline's `proxy.maxHeaderBytes` so the
   * pipeline answers oversize heads itself (the parser would answer 431 too, without a message).
   */
  readonly maxHeaderSize?: number | undefined;
}

const ID_PREFIX = randomBytes(3).toString('hex');
let nextId = 0;
const exchangeId = (): string => `${ID_PREFIX}-${(++nextId).toString(36)}`;

/** Node's raw request headers with lower-case names (the exchange's contract). */
function lowerCaseNames(raw: readonly string[]): string[] {
  const out = raw.slice();
  for (let i = 0; i < out.length; i += 2) out[i] = out[i]!.toLowerCase();
  return out;
}

/** What the entry's exchanges share: a process-unique id, the client-gone signal and the one-response rule. */
abstract class EntryExchange {
  readonly id = exchangeId();
  readonly #gone = new ClientGone();
  #responded = false;

  get signal(): AbortSignal {
    return this.#gone.signal;
  }

  onClientGone(listener: () => void): boolean {
    return this.#gone.listen(listener);
  }

  get responded(): boolean {
    return this.#responded;
  }

  /** Fires `signal`: the client went away. */
  protected abort(): void {
    this.#gone.fire();
  }

  /** Marks the exchange answered; a second claim is a caller bug (`respond()` twice). */
  protected claimResponse(): void {
    if (this.#responded) throw new Error('respond() called twice');
    this.#responded = true;
  }
}

function requestHead(req: IncomingMessage, upgrade: boolean): RequestHead {
  const headers = lowerCaseNames(req.rawHeaders);
  const cl = req.headers['content-length'];
  const chunked = req.headers['transfer-encoding'] !== undefined;
  const upgradeTo = upgrade && String(req.headers.upgrade ?? '').toLowerCase() === 'websocket' ? 'websocket' : undefined;
  return {
    method: req.method ?? 'GET',
    scheme: 'http',
    authority: req.headers.host ?? '',
    path: req.url ?? '/',
    headers,
    clientAddress: req.socket.remoteAddress,
    upgrade: upgradeTo,
    contentLength: chunked ? undefined : cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : cl === undefined ? 0 : undefined,
  };
}

/** An ordinary request answered through Node's `ServerResponse`. */
class ResponseExchange extends EntryExchange implements Exchange {
  readonly head: RequestHead;
  readonly body: Readable;
  readonly #res: ServerResponse;

  constructor(req: IncomingMessage, res: ServerResponse) {
    super();
    this.head = requestHead(req, false);
    this.body = req;
    this.#res = res;
    res.sendDate = false;
    res.on('close', () => {
      if (!res.writableFinished) this.abort();
    });
  }

  respond(head: ResponseHead): Writable {
    this.claimResponse();
    this.#res.writeHead(head.status, head.headers.slice());
    return this.#res;
  }

  setTrailers(trailers: RawHeaders): void {
    const pairs: Array<[string, string]> = [];
    for (let i = 0; i + 1 < trailers.length; i += 2) pairs.push([trailers[i]!, trailers[i + 1]!]);
    this.#res.addTrailers(pairs);
  }

  fail(failure: ExchangeFailure): void {
    const res = this.#res;
    if (this.responded || res.headersSent) {
      res.destroy();
      return;
    }
    this.claimResponse();
    const body = failure.body === undefined ? undefined : Buffer.from(failure.body);
    const headers = [...(failure.headers ?? []), 'content-length', String(body?.length ?? 0)];
    res.writeHead(failure.status, headers);
    res.end(body);
  }
}

const STATUS_TEXT = (status: number): string => http.STATUS_CODES[status] ?? 'Unknown';

/** A request that carried `Upgrade`: answered on the raw socket (101 and then bytes, or a normal response). */
class SocketExchange extends EntryExchange implements Exchange {
  readonly head: RequestHead;
  readonly body: Readable;
  readonly #socket: Duplex;

  constructor(req: IncomingMessage, socket: Duplex, initial: Buffer) {
    super();
    this.head = requestHead(req, true);
    if (initial.length > 0) socket.unshift(initial);
    this.body = socket;
    this.#socket = socket;
    socket.on('close', () => this.abort());
    socket.on('error', () => this.abort());
  }

  respond(head: ResponseHead): Writable {
    this.claimResponse();
    let text = `HTTP/1.1 ${head.status} ${STATUS_TEXT(head.status)}\r\n`;
    const headers = head.headers;
    for (let i = 0; i + 1 < headers.length; i += 2) {
      if (head.status !== 101 && headers[i]!.toLowerCase() === 'connection') continue;
      text += `${headers[i]}: ${headers[i + 1]}\r\n`;
    }
    if (head.status !== 101) text += 'connection: close\r\n';
    this.#socket.write(`${text}\r\n`, 'latin1');
    return this.#socket;
  }

  setTrailers(): void {
    // close-delimited HTTP/1.1 bodies carry no trailers
  }

  fail(failure: ExchangeFailure): void {
    if (this.responded) {
      this.#socket.destroy();
      return;
    }
    this.claimResponse();
    const body = failure.body === undefined ? Buffer.alloc(0) : Buffer.from(failure.body);
    let text = `HTTP/1.1 ${failure.status} ${STATUS_TEXT(failure.status)}\r\n`;
    const headers = failure.headers ?? [];
    for (let i = 0; i + 1 < headers.length; i += 2) text += `${headers[i]}: ${headers[i + 1]}\r\n`;
    text += `content-length: ${body.length}\r\nconnection: close\r\n\r\n`;
    this.#socket.end(Buffer.concat([Buffer.from(text, 'latin1'), body]));
  }
}

/** One HTTP/2 stream of an h2c connection. */
class StreamExchange extends EntryExchange implements Exchange {
  readonly head: RequestHead;
  readonly body: Readable;
  readonly #stream: ServerHttp2Stream;
  #trailers: RawHeaders | undefined;

  constructor(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, rawHeaders: string[], clientAddress: string | undefined) {
    super();
    const list: string[] = [];
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      if (rawHeaders[i]!.charCodeAt(0) !== 58 /* : */) list.push(rawHeaders[i]!, rawHeaders[i + 1]!);
    }
    const cl = headers['content-length'];
    this.head = {
      method: String(headers[':method'] ?? 'GET'),
      scheme: 'http',
      authority: String(headers[':authority'] ?? headers.host ?? ''),
      path: String(headers[':path'] ?? '/'),
      headers: list,
      clientAddress,
      contentLength: stream.readableEnded || stream.endAfterHeaders ? 0 : cl !== undefined && /^\d+$/.test(cl) ? Number(cl) : undefined,
    };
    this.body = stream;
    this.#stream = stream;
    stream.on('close', () => {
      if (!stream.writableEnded || stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) this.abort();
    });
    stream.on('error', () => this.abort());
    stream.on('wantTrailers', () => {
      if (!this.#trailers || this.#trailers.length === 0) return void stream.close();
      stream.sendTrailers(headerObject(this.#trailers));
    });
  }

  respond(head: ResponseHead): Writable {
    this.claimResponse();
    const stream = this.#stream;
    if (stream.destroyed) return new Writable({ write: (_c, _e, cb) => cb() });
    // A response without body and trailers ends with its HEADERS frame (gRPC trailers-only responses need it).
    if (head.contentLength === 0 && head.trailers !== true) {
      stream.respond(h2Headers(head.status, head.headers), { endStream: true });
      return new Writable({ write: (_c, _e, cb) => cb() });
    }
    stream.respond(h2Headers(head.status, head.headers), { waitForTrailers: head.trailers === true });
    return stream;
  }

  setTrailers(trailers: RawHeaders): void {
    this.#trailers = trailers;
  }

  fail(failure: ExchangeFailure): void {
    const stream = this.#stream;
    if (this.responded || stream.headersSent) {
      stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    this.claimResponse();
    if (stream.destroyed) return;
    const body = failure.body === undefined ? undefined : Buffer.from(failure.body);
    stream.respond(h2Headers(failure.status, failure.headers ?? []), { endStream: body === undefined });
    if (body) stream.end(body);
  }
}

/** HTTP/2 forbids connection-specific fields; everything else keeps its values (repeats become arrays). */
const H2_FORBIDDEN = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade', 'host']);

function h2Headers(status: number, headers: RawHeaders): Record<string, string | string[] | number> {
  return headerObject(headers, { ':status': status }, H2_FORBIDDEN);
}

/** Adds a raw list to a Node HTTP/2 header object: lower-case names, repeats as arrays, names in `skip` left out. */
function headerObject(headers: RawHeaders, out: Record<string, string | string[] | number> = {}, skip?: ReadonlySet<string>): Record<string, string | string[] | number> {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const k = headers[i]!.toLowerCase();
    if (skip?.has(k)) continue;
    const value = headers[i + 1]!;
    const prev = out[k];
    out[k] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
  }
  return out;
}

function parseListen(listen: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(listen);
  if (!m) throw new TypeError(`listen address "${listen}" must be host:port`);
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

export class HttpEntry implements Runnable {
  readonly needsLeader = false;
  readonly #options: HttpEntryOptions;
  readonly #server: net.Server;
  readonly #h1: http.Server;
  readonly #h2: http2.Http2Server;
  readonly #sessions = new Set<ServerHttp2Session>();
  readonly #addresses = new WeakMap<ServerHttp2Session, string | undefined>();
  #connecting: string | undefined;

  constructor(options: HttpEntryOptions) {
    this.#options = options;
    const maxHeaderSize = options.maxHeaderSize ?? 80 * 1024;
    const h1 = http.createServer({ maxHeaderSize, requestTimeout: 0, headersTimeout: 60_000, keepAliveTimeout: 5_000 });
    h1.maxHeadersCount = 0;
    h1.on('request', (req, res) => this.#dispatch(new ResponseExchange(req, res)));
    h1.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => this.#dispatch(new SocketExchange(req, socket, head)));
    const h2 = http2.createServer({ settings: { maxConcurrentStreams: 256, maxHeaderListSize: maxHeaderSize } });
    h2.on('session', (session: ServerHttp2Session) => {
      this.#addresses.set(session, this.#connecting);
      this.#sessions.add(session);
      session.on('close', () => this.#sessions.delete(session));
    });
    h2.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, _flags: number, raw: string[]) => {
      this.#dispatch(new StreamExchange(stream, headers, raw, this.#addresses.get(stream.session as ServerHttp2Session)));
    });
    this.#h1 = h1;
    this.#h2 = h2;
    this.#server = net.createServer((socket) => this.#accept(socket));
  }

  #accept(socket: Socket): void {
    // Node's servers turn Nagle off themselves, but not through the wrapper the HTTP/2 server gets.
    socket.setNoDelay(true);
    sniffH2c(socket, {
      h2c: (stream) => {
        this.#connecting = socket.remoteAddress;
        this.#h2.emit('connection', stream);
        this.#connecting = undefined;
      },
      http1: (plain) => this.#h1.emit('connection', plain),
    });
    socket.on('error', () => socket.destroy());
  }

  /** Starts listening; resolves with the bound address. */
  async listen(): Promise<AddressInfo> {
    const { host, port } = parseListen(this.#options.listen);
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(port, host, () => {
        this.#server.off('error', reject);
        resolve();
      });
    });
    this.#options.logger?.info({ address: this.url }, 'plain-HTTP proxy entry listening');
    return this.#server.address() as AddressInfo;
  }

  /** `http://host:port` of the bound listener. */
  get url(): string {
    const a = this.#server.address() as AddressInfo | null;
    if (!a) throw new Error('not listening');
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  /** Stops accepting, lets running requests finish for up to `graceMs`, then drops the rest. */
  async close(graceMs = 5_000): Promise<void> {
    if (!this.#server.listening) return;
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#h1.closeIdleConnections();
    for (const session of this.#sessions) session.close();
    const timer = setTimeout(() => {
      this.#h1.closeAllConnections();
      for (const session of this.#sessions) session.destroy();
    }, graceMs);
    timer.unref();
    await closed;
    clearTimeout(timer);
  }

  /** Runnable: listens until `signal` aborts, then closes. */
  async start(signal: AbortSignal): Promise<void> {
    await this.listen();
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    await this.close();
  }

  #dispatch(exchange: Exchange): void {
    this.#options.handler.handle(exchange).catch((err) => {
      this.#options.logger?.error({ err, id: exchange.id }, 'exchange handler failed');
      if (!exchange.responded) exchange.fail({ status: 500, message: 'internal error', headers: ERROR_PAGE_HEADERS, body: 'internal error\n' });
    });
  }
}

/** Creates the entry point and starts listening. */
export async function startHttpEntry(options: HttpEntryOptions): Promise<HttpEntry> {
  const entry = new HttpEntry(options);
  await entry.listen();
  return entry;
}
