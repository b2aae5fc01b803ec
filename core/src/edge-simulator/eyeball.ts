import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createHttpServer, STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  constants as h2,
  performServerHandshake,
  type ClientHttp2Stream,
  type IncomingHttpHeaders,
  type OutgoingHttpHeaders,
  type ServerHttp2Session,
  type ServerHttp2Stream,
} from 'node:http2';
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createSecureContext, createServer as createTlsServer, type SecureContext, type Server as TlsServer, type TLSSocket } from 'node:tls';
import { sniffH2c } from '../http/sniff-h2c.js';
import { HEADER_CONNECTION_UPGRADE, UPGRADE_WEBSOCKET } from '../tunnel/protocol.js';
import type { SimulatedConnection } from './edge-connection.js';
import type { EdgeSimulator } from './simulator.js';
import { decodeTunnelResponse, HOP_BY_HOP, type TunnelResponseHead } from './tunnel-response.js';

/**
 * The simulator's eyeball entrance: where ordinary clients send requests that the "edge" forwards through the
 * tunnel. One plain port serves HTTP/1.1 (including WebSocket upgrades) and h2c (prior knowledge); with TLS a
 * second port negotiates h2 or http/1.1 by ALPN. Each request becomes one tunnel stream on a registered
 * connection (round robin), carrying the headers an edge adds (`cf-connecting-ip`, `cf-ray`,
 * `x-forwarded-for`, `x-forwarded-proto`, `cf-visitor`); the response is translated back the way the edge does:
 * status (200 → 101 for accepted WebSockets), the decoded `cf-cloudflared-response-headers` with hop-by-hop
 * headers removed, the body as it streams, and trailers.
 */
export interface Eyeball {
  readonly url: string;
  readonly tlsUrl: string | undefined;
  close(): Promise<void>;
}

/** A certificate chain and its key, PEM. */
export interface EyeballCertificate {
  readonly certPem: string;
  readonly keyPem: string;
}

/** The TLS entrance of the eyeball: its port and the certificate it presents for each server name. */
export interface EyeballTls {
  /** Port to listen on (default 0: any free port). */
  readonly port?: number;
  /**
   * The certificate for a client hello's server name (undefined when the client sent none); undefined fails the
   * handshake, as the edge does for a name it holds no certificate for.
   */
  readonly certificate: (serverName: string | undefined) => EyeballCertificate | undefined | Promise<EyeballCertificate | undefined>;
}

/** An {@link EyeballTls} certificate lookup that presents `cert` for every name. */
export function fixedCertificate(cert: EyeballCertificate): EyeballTls['certificate'] {
  return () => cert;
}

interface EyeballOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: EyeballTls | undefined;
  readonly waitMs: number;
  /** Send requests only to connections registered for this tunnel (default: any registered connection). */
  readonly tunnelId?: string | undefined;
}

/** Secure contexts by certificate and key, so a handshake does not parse PEM again; at most this many kept. */
const MAX_CONTEXTS = 64;

function contextCache(): (cert: EyeballCertificate) => SecureContext {
  const contexts = new Map<string, SecureContext>();
  return (cert) => {
    const key = `${cert.certPem}\n${cert.keyPem}`;
    let context = contexts.get(key);
    if (!context) {
      context = createSecureContext({ cert: cert.certPem, key: cert.keyPem });
      if (contexts.size >= MAX_CONTEXTS) contexts.delete(contexts.keys().next().value!);
      contexts.set(key, context);
    }
    return context;
  };
}

export async function startEyeball(sim: EdgeSimulator, options: EyeballOptions): Promise<Eyeball> {
  const sockets = new Set<Socket | Duplex>();
  const sessions = new Set<ServerHttp2Session>();
  const track = <T extends Socket | Duplex>(socket: T): T => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    return socket;
  };
  const http1 = createHttpServer({ maxHeaderSize: 64 * 1024 });
  http1.on('request', (req: IncomingMessage, res: ServerResponse) => void forwardHttp1(sim, options, req, res));
  http1.on('upgrade', (req: IncomingMessage, socket: Socket, head: Buffer) => void forwardUpgrade(sim, options, req, socket, head));
  http1.on('clientError', (_err, socket: Socket) => socket.destroy());
  const serveH2 = (socket: Socket | Duplex, scheme: 'http' | 'https', remote: string) => {
    const session = performServerHandshake(socket as Socket, { maxSessionMemory: 256, maxHeaderListPairs: 4096 });
    sessions.add(session);
    session.once('close', () => sessions.delete(session));
    session.on('error', () => undefined);
    session.on('stream', (stream, headers, flags, rawHeaders) => void forwardH2(sim, options, stream, headers, flags, rawHeaders, scheme, remote));
  };

  const plain: NetServer = createNetServer({ noDelay: true }, (socket) => {
    track(socket);
    socket.on('error', () => undefined);
    sniffH2c(socket, {
      h2c: (stream) => serveH2(stream, 'http', socket.remoteAddress ?? ''),
      http1: (plain) => http1.emit('connection', plain),
    });
  });
  plain.listen(options.port, options.host);
  await once(plain, 'listening');
  const address = plain.address() as AddressInfo;
  const host = options.host.includes(':') ? `[${options.host}]` : options.host;

  let secure: TlsServer | undefined;
  let tlsUrl: string | undefined;
  if (options.tls) {
    // A TLS listener that cannot start (a port in use) must not leave the plain one listening.
    try {
      const { certificate } = options.tls;
      const contextFor = contextCache();
      const lookup = async (name: string | undefined) => {
        const cert = await certificate(name);
        return cert && contextFor(cert);
      };
      // A hello without a server name never reaches SNICallback: it gets the certificate for "no name", if any.
      const unnamed = await certificate(undefined);
      const sni = (name: string, done: (err: Error | null, context?: SecureContext) => void) => {
        lookup(name).then(
          (context) => (context ? done(null, context) : done(new Error(`no certificate for ${JSON.stringify(name)}`))),
          (err: Error) => done(err),
        );
      };
      secure = createTlsServer(
        { ...(unnamed ? { cert: unnamed.certPem, key: unnamed.keyPem } : {}), SNICallback: sni, ALPNProtocols: ['h2', 'http/1.1'] },
        (socket: TLSSocket) => {
          track(socket);
          socket.setNoDelay(true);
          socket.on('error', () => undefined);
          if (socket.alpnProtocol === 'h2') serveH2(socket, 'https', socket.remoteAddress ?? '');
          else http1.emit('connection', socket);
        },
      );
      secure.on('tlsClientError', () => undefined);
      secure.listen(options.tls.port ?? 0, options.host);
      await once(secure, 'listening');
      tlsUrl = `https://${host}:${(secure.address() as AddressInfo).port}`;
    } catch (err) {
      plain.close();
      throw err;
    }
  }

  return {
    url: `http://${host}:${address.port}`,
    tlsUrl,
    async close() {
      const closing = [new Promise<void>((resolve) => plain.close(() => resolve()))];
      if (secure) closing.push(new Promise<void>((resolve) => secure.close(() => resolve())));
      for (const session of sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      await Promise.all(closing);
    },
  };
}

async function routableConnection(sim: EdgeSimulator, options: EyeballOptions): Promise<SimulatedConnection | undefined> {
  const { tunnelId, waitMs } = options;
  const delay = sim.faults.streamDelayMs;
  if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
  let connection = sim.pickConnection(undefined, tunnelId);
  if (connection) return connection;
  // A connector that unregistered said goodbye (it is draining or gone): like the edge, answer 1033 at once
  // instead of waiting for a connection that is not coming. Waiting is for connections still being set up (of
  // this entrance's tunnel, or not registered yet).
  const relevant = tunnelId === undefined ? sim.connections : sim.connections.filter((c) => c.tunnelId === tunnelId || (!c.registration && !c.closed));
  if (relevant.some((c) => c.unregistered) && relevant.every((c) => c.unregistered || c.closed)) return undefined;
  try {
    await sim.waitFor(() => sim.registeredConnections(tunnelId).length > 0, waitMs, 'a registered connection');
  } catch {
    return undefined;
  }
  connection = sim.pickConnection(undefined, tunnelId);
  return connection;
}

/** The request headers an edge sends into the tunnel for an eyeball request. */
export function tunnelHeaders(
  method: string,
  authority: string,
  path: string,
  rawHeaders: readonly string[],
  remote: string,
  scheme: 'http' | 'https',
  websocket: boolean,
): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = { ':method': method, ':scheme': 'https', ':authority': authority, ':path': path };
  let forwardedFor: string | undefined;
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!.toLowerCase();
    const value = rawHeaders[i + 1]!;
    if (name.startsWith(':') || name === 'host' || name.startsWith('cf-cloudflared-')) continue;
    if (name === 'te' && value.trim().toLowerCase() === 'trailers') {
      headers.te = 'trailers';
      continue;
    }
    if (HOP_BY_HOP.has(name) || name === 'cf-connecting-ip' || name === 'cf-ray' || name === 'cf-visitor' || name === 'x-forwarded-proto') continue;
    if (name === 'x-forwarded-for') {
      forwardedFor = forwardedFor ? `${forwardedFor}, ${value}` : value;
      continue;
    }
    const prev = headers[name];
    headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
  }
  const client = remote.startsWith('::ffff:') ? remote.slice(7) : remote;
  headers['cf-connecting-ip'] = client;
  headers['x-forwarded-for'] = forwardedFor ? `${forwardedFor}, ${client}` : client;
  headers['x-forwarded-proto'] = scheme;
  headers['cf-visitor'] = `{"scheme":"${scheme}"}`;
  headers['cf-ray'] = `${randomBytes(8).toString('hex')}-SIM`;
  if (websocket) headers[HEADER_CONNECTION_UPGRADE] = UPGRADE_WEBSOCKET;
  return headers;
}

/**
 * The origin headers as the eyeball gets them: decoded pairs without hop-by-hop names. Content-Length is the
 * connector's real HTTP/2 `content-length` (the edge frames the response by that one, so a serialized value
 * that disagrees with it never reaches the eyeball); without one the response is delimited by its end.
 */
function eyeballHeaders(head: TunnelResponseHead, keepUpgrade: boolean): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const [name, value] of head.headers) {
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) && !(keepUpgrade && (lower === 'upgrade' || lower === 'connection'))) continue;
    if (lower === 'content-length') continue;
    out.push([name, value]);
  }
  const realLength = head.h2Headers['content-length'];
  if (typeof realLength === 'string') out.push(['content-length', realLength]);
  return out;
}

const NO_BYTES = Buffer.alloc(0);
const GRPC_STATUS_FIELDS = new Set(['grpc-status', 'grpc-message', 'grpc-status-details-bin']);
function decodeOrViolation(sim: EdgeSimulator, headers: IncomingHttpHeaders): TunnelResponseHead | undefined {
  try {
    const head = decodeTunnelResponse(headers);
    if (head.metaRaw === undefined) {
      sim.recordViolation(`response ${head.status} without cf-cloudflared-response-meta`);
    }
    return head;
  } catch (err) {
    sim.recordViolation((err as Error).message);
    return undefined;
  }
}

function textError(res: ServerResponse, status: number, text: string): void {
  if (res.headersSent) return void res.destroy();
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function bindAbort(eyeball: { once(event: 'close', fn: () => void): unknown }, tunnel: ClientHttp2Stream, done: () => boolean): void {
  eyeball.once('close', () => {
    if (!done() && !tunnel.closed) tunnel.close(h2.NGHTTP2_CANCEL);
  });
}

async function forwardHttp1(sim: EdgeSimulator, options: EyeballOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const connection = await routableConnection(sim, options);
  if (!connection) return textError(res, 530, 'error 1033: no tunnel connection is registered\n');
  const scheme = (req.socket as TLSSocket).encrypted ? 'https' : 'http';
  const headers = tunnelHeaders(req.method ?? 'GET', req.headers.host ?? '', req.url ?? '/', req.rawHeaders, req.socket.remoteAddress ?? '', scheme, false);
  const length = req.headers['content-length'];
  const hasBody = req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
  let tunnel: ClientHttp2Stream;
  try {
    tunnel = connection.request(headers, !hasBody);
  } catch {
    return textError(res, 502, 'tunnel stream could not be opened\n');
  }
  let finished = false;
  bindAbort(res, tunnel, () => finished);
  tunnel.on('error', () => undefined);
  if (hasBody) req.pipe(tunnel);
  else req.resume();
  tunnel.once('response', (h2headers, _responseFlags: number) => {
    if (sim.faults.resetStreamsAfterHead) {
      tunnel.close(h2.NGHTTP2_CANCEL);
      return textError(res, 502, 'stream reset by the edge (fault)\n');
    }
    const head = decodeOrViolation(sim, h2headers);
    if (!head) {
      tunnel.close(h2.NGHTTP2_PROTOCOL_ERROR);
      return textError(res, 502, 'unable to deserialize the origin response headers\n');
    }
    try {
      res.writeHead(head.status, eyeballHeaders(head, false).flat());
    } catch (err) {
      tunnel.close(h2.NGHTTP2_CANCEL);
      return textError(res, 502, `origin response headers are not valid HTTP/1.1: ${(err as Error).message}\n`);
    }
    // Not flushHeaders(): that writes the head as UTF-8 text, turning every header byte ≥ 0x80 into two. An
    // empty body write sends it as latin1, i.e. the origin's bytes unchanged.
    res.write(NO_BYTES);
    tunnel.on('trailers', (trailers: IncomingHttpHeaders) => {
      const list: Array<[string, string]> = [];
      for (const [name, value] of Object.entries(trailers)) {
        if (name.startsWith(':') || value === undefined) continue;
        for (const v of Array.isArray(value) ? value : [value]) list.push([name, String(v)]);
      }
      try {
        res.addTrailers(list);
      } catch {
        // Invalid trailer values cannot be forwarded over HTTP/1.1.
      }
    });
    pipeCoalesced(tunnel, res);
  });
  tunnel.once('close', () => {
    finished = true;
    if (tunnel.rstCode !== h2.NGHTTP2_NO_ERROR || !tunnel.readableEnded) {
      if (!res.headersSent) textError(res, 502, `tunnel stream closed (rst code ${tunnel.rstCode})\n`);
      else if (!res.writableEnded) res.destroy();
    }
  });
}

/**
 * `tunnel.pipe(res)`, with the body chunks of one event-loop turn written together. Node's HTTP/2 client hands
 * over a DATA frame in pieces cut at the TLS record boundaries (16,375 + 9 bytes, 16,366 + 18, …), each piece
 * from its own native callback, so an HTTP/1.1 response's own per-tick cork does not join them: without this,
 * a 1 MiB body leaves in ~128 writes (half of them tiny) and wakes the client as often. Corked until the
 * event loop's check phase, the pieces of every read from the connector leave in one write. Same bytes, same
 * order.
 */
function pipeCoalesced(tunnel: ClientHttp2Stream, res: ServerResponse): void {
  // The socket is corked, not the response: a corked ServerResponse holds chunked-encoding pieces back and
  // would write them after the terminating chunk if end() came first.
  let corked: Socket | undefined;
  const uncork = () => {
    const socket = corked;
    corked = undefined;
    // end() uncorks the socket fully by itself.
    if (socket && !res.writableEnded) socket.uncork();
  };
  // Before pipe's own listener, so the first chunk of a turn is already corked.
  tunnel.on('data', () => {
    if (corked || res.writableEnded || !res.socket) return;
    corked = res.socket;
    corked.cork();
    setImmediate(uncork);
  });
  tunnel.pipe(res);
}

async function forwardUpgrade(sim: EdgeSimulator, options: EyeballOptions, req: IncomingMessage, socket: Socket, head: Buffer): Promise<void> {
  socket.on('error', () => undefined);
  const reject = (status: number, text: string) => {
    socket.end(
      `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`,
    );
  };
  if ((req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return reject(501, 'only WebSocket upgrades are supported\n');
  const connection = await routableConnection(sim, options);
  if (!connection) return reject(530, 'error 1033: no tunnel connection is registered\n');
  const scheme = (socket as TLSSocket).encrypted ? 'https' : 'http';
  const headers = tunnelHeaders(req.method ?? 'GET', req.headers.host ?? '', req.url ?? '/', req.rawHeaders, socket.remoteAddress ?? '', scheme, true);
  let tunnel: ClientHttp2Stream;
  try {
    tunnel = connection.request(headers, false);
  } catch {
    return reject(502, 'tunnel stream could not be opened\n');
  }
  tunnel.on('error', () => undefined);
  if (head.length > 0) tunnel.write(head);
  const closeBoth = () => {
    if (!tunnel.closed) tunnel.close(h2.NGHTTP2_CANCEL);
    socket.destroy();
  };
  socket.once('close', closeBoth);
  tunnel.once('response', (h2headers, _responseFlags: number) => {
    const decoded = decodeOrViolation(sim, h2headers);
    if (!decoded) return closeBoth();
    const accepted = decoded.status === 200 && decoded.meta?.src === 'origin';
    const status = accepted ? 101 : decoded.status;
    const lines = eyeballHeaders(decoded, accepted).map(([name, value]) => `${name}: ${value}\r\n`);
    if (!accepted) lines.push('connection: close\r\n');
    socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${lines.join('')}\r\n`, 'latin1');
    if (accepted) {
      socket.pipe(tunnel);
      tunnel.pipe(socket);
      tunnel.once('end', () => socket.end());
      socket.once('end', () => tunnel.end());
    } else {
      tunnel.pipe(socket);
    }
  });
  tunnel.once('close', () => socket.end());
}

async function forwardH2(
  sim: EdgeSimulator,
  options: EyeballOptions,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  flags: number,
  rawHeaders: string[],
  scheme: 'http' | 'https',
  remote: string,
): Promise<void> {
  stream.on('error', () => undefined);
  const fail = (status: number, text: string) => {
    if (stream.headersSent || stream.closed) return void stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    stream.respond({ ':status': status, 'content-type': 'text/plain; charset=utf-8' });
    stream.end(text);
  };
  const method = String(headers[':method'] ?? 'GET');
  if (method === 'CONNECT') return fail(501, 'CONNECT is not supported by the edge simulator\n');
  const connection = await routableConnection(sim, options);
  if (!connection) return fail(530, 'error 1033: no tunnel connection is registered\n');
  const endStream = (flags & h2.NGHTTP2_FLAG_END_STREAM) !== 0;
  const out = tunnelHeaders(method, String(headers[':authority'] ?? headers.host ?? ''), String(headers[':path'] ?? '/'), rawHeaders, remote, scheme, false);
  let tunnel: ClientHttp2Stream;
  try {
    tunnel = connection.request(out, endStream);
  } catch {
    return fail(502, 'tunnel stream could not be opened\n');
  }
  let finished = false;
  bindAbort(stream, tunnel, () => finished);
  tunnel.on('error', () => undefined);
  if (!endStream) stream.pipe(tunnel);
  let trailers: OutgoingHttpHeaders | undefined;
  tunnel.on('trailers', (t: IncomingHttpHeaders) => {
    trailers = {};
    for (const [name, value] of Object.entries(t)) if (!name.startsWith(':') && value !== undefined) trailers[name] = value;
  });
  tunnel.once('response', (h2headers, responseFlags: number) => {
    if (sim.faults.resetStreamsAfterHead) {
      tunnel.close(h2.NGHTTP2_CANCEL);
      return fail(502, 'stream reset by the edge (fault)\n');
    }
    const head = decodeOrViolation(sim, h2headers);
    if (!head) {
      tunnel.close(h2.NGHTTP2_PROTOCOL_ERROR);
      return fail(502, 'unable to deserialize the origin response headers\n');
    }
    const response: OutgoingHttpHeaders = { ':status': head.status };
    const grpc = head.headers.some(([name, value]) => name.toLowerCase() === 'content-type' && value.startsWith('application/grpc'));
    // A connector sends a gRPC trailers-only answer as its head (status included) followed by an empty end.
    // Over HTTP/2 to a gRPC client the status fields must end the call, so they move to the trailers (unless
    // real trailers carry them): head, no messages, trailers with the status is equally valid gRPC.
    const statusFields: OutgoingHttpHeaders = {};
    for (const [name, value] of eyeballHeaders(head, false)) {
      const lower = name.toLowerCase();
      const target = grpc && GRPC_STATUS_FIELDS.has(lower) ? statusFields : response;
      const prev = target[lower];
      target[lower] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
    }
    // A head that ends the tunnel stream (a gRPC trailers-only answer, an empty error) ends the eyeball stream
    // the same way: one HEADERS frame with END_STREAM, which is what gRPC clients read as trailers-only.
    if ((responseFlags & h2.NGHTTP2_FLAG_END_STREAM) !== 0) {
      try {
        stream.respond({ ...response, ...statusFields }, { endStream: true });
      } catch (err) {
        return fail(502, `origin response headers are not valid HTTP/2: ${(err as Error).message}\n`);
      }
      return;
    }
    try {
      stream.respond(response, { waitForTrailers: true });
    } catch (err) {
      tunnel.close(h2.NGHTTP2_CANCEL);
      return fail(502, `origin response headers are not valid HTTP/2: ${(err as Error).message}\n`);
    }
    stream.once('wantTrailers', () => {
      try {
        stream.sendTrailers(trailers && (!grpc || trailers['grpc-status'] !== undefined) ? trailers : { ...statusFields, ...trailers });
      } catch {
        stream.close(h2.NGHTTP2_INTERNAL_ERROR);
      }
    });
    tunnel.pipe(stream);
  });
  tunnel.once('close', () => {
    finished = true;
    if (tunnel.rstCode !== h2.NGHTTP2_NO_ERROR || !tunnel.readableEnded) {
      if (!stream.headersSent) fail(502, `tunnel stream closed (rst code ${tunnel.rstCode})\n`);
      else if (!stream.closed) stream.close(h2.NGHTTP2_INTERNAL_ERROR);
    }
  });
}
