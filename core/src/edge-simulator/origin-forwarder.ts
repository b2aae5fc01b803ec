import { Agent, request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { Exchange, ExchangeHandler } from '../proxy/exchange.js';

/**
 * A minimal `ExchangeHandler` that forwards every exchange to one HTTP/1.1 origin with node:http — enough to
 * exercise the connector (tests, the tunnel benchmark) without the proxy pipeline. It keeps header order,
 * case and repeats, streams bodies both ways with backpressure, forwards trailers, and pipes WebSocket
 * upgrades. Not a proxy for production: no routing, no header hygiene, no retries.
 */
export interface OriginForwarderOptions {
  /** `http://host:port` of the origin. */
  readonly origin: string;
  /** Keep-alive sockets per origin (default 256). */
  readonly maxSockets?: number;
}

export function createOriginForwarder(options: OriginForwarderOptions): ExchangeHandler & { close(): void } {
  const origin = new URL(options.origin);
  const agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256 });
  return {
    close: () => agent.destroy(),
    handle: (exchange: Exchange) =>
      new Promise<void>((resolve) => {
        const head = exchange.head;
        const upgrade = head.upgrade === 'websocket';
        const headers = [...head.headers, 'host', head.authority];
        if (upgrade) headers.push('connection', 'Upgrade', 'upgrade', 'websocket');
        const req = request({
          host: origin.hostname,
          port: origin.port,
          method: head.method,
          path: head.path,
          headers,
          setHost: false,
          agent: upgrade ? false : agent,
        });
        const fail = (err: Error) => {
          if (!exchange.responded) exchange.fail({ status: 502, message: `origin: ${err.message}`, cause: err });
          else exchange.fail({ status: 502, message: `origin: ${err.message}` });
          resolve();
        };
        req.on('error', fail);
        req.on('socket', (socket) => socket.setNoDelay(true));
        exchange.signal.addEventListener('abort', () => req.destroy(), { once: true });
        req.on('response', (res: IncomingMessage) => {
          const lengthHeader = res.headers['content-length'];
          const trailers = res.headers.trailer !== undefined;
          const sink = exchange.respond({
            status: res.statusCode ?? 502,
            headers: res.rawHeaders,
            contentLength: lengthHeader === undefined ? undefined : Number(lengthHeader),
            trailers,
          });
          if (trailers) res.once('end', () => exchange.setTrailers(res.rawTrailers));
          res.once('error', fail);
          res.once('end', () => resolve());
          res.once('close', () => resolve());
          sink.on('error', () => res.destroy());
          res.pipe(sink);
        });
        req.on('upgrade', (res: IncomingMessage, socket: Socket, rest: Buffer) => {
          const sink = exchange.respond({ status: 101, headers: res.rawHeaders });
          if (rest.length > 0) sink.write(rest);
          socket.on('error', () => undefined);
          sink.on('error', () => socket.destroy());
          socket.pipe(sink);
          exchange.body.pipe(socket);
          const end = () => {
            socket.destroy();
            if (!sink.writableEnded) sink.end();
            resolve();
          };
          socket.once('close', end);
          exchange.body.once('end', end);
          exchange.signal.addEventListener('abort', end, { once: true });
        });
        if (upgrade) req.end();
        else exchange.body.pipe(req);
      }),
  };
}
