import type { Readable, Writable } from 'node:stream';
import type { Logger } from 'pino';
import type { Exchange, ExchangeFailure, RawHeaders, ResponseHead } from './exchange.js';
import { headerValue } from '../model/exchange.js';

/** One access-log record. Paths are logged without their query string (queries often carry tokens). */
interface AccessRecord {
  readonly id: string;
  readonly method: string;
  readonly host: string;
  readonly path: string;
  readonly status: number;
  readonly durationMs: number;
  readonly route: string | undefined;
  /** Address of the endpoint that answered (`host:port`). */
  readonly upstream: string | undefined;
  readonly attempts: number;
  readonly error: string | undefined;
  readonly clientAddress: string | undefined;
}

export interface AccessLogConfig {
  readonly enabled: boolean;
  /** Fraction of exchanges logged, 0–1. */
  readonly sampleRate: number;
}

/**
 * What an exchange carried, gathered while it runs: body bytes each way (after an upgrade, the session's
 * bytes) and the gRPC status the client was sent, from the response head, its trailers or a Warren-generated
 * error.
 */
interface ExchangeMeter {
  readonly bytesIn: number;
  readonly bytesOut: number;
  readonly grpcStatus: string | undefined;
}

/** An exchange being logged: the same exchange to the pipeline, with its meter. */
export interface LoggedExchange {
  readonly exchange: Exchange;
  readonly meter: ExchangeMeter;
}

export interface AccessLog {
  /**
   * Decides (by the sample rate) whether this exchange is logged. When it is, returns the exchange to run
   * instead, which meters bytes and the gRPC status; unlogged exchanges cost nothing.
   */
  begin(exchange: Exchange): LoggedExchange | undefined;
  /** Writes the record of an exchange `begin` accepted. */
  write(record: AccessRecord, logged: LoggedExchange): void;
}

/** Structured access log through pino at `info`, sampled per exchange (setting `proxy.accessLog`). */
export function createAccessLog(logger: Logger, config: AccessLogConfig): AccessLog | undefined {
  if (!config.enabled || config.sampleRate <= 0) return undefined;
  const log = logger.child({ component: 'access' });
  const rate = config.sampleRate;
  return {
    begin(exchange) {
      if (rate < 1 && Math.random() >= rate) return undefined;
      const metered = new MeteredExchange(exchange);
      return { exchange: metered, meter: metered };
    },
    write(record, { exchange, meter }) {
      const q = record.path.indexOf('?');
      log.info(
        {
          id: record.id,
          method: record.method,
          host: record.host,
          path: q === -1 ? record.path : record.path.slice(0, q),
          status: record.status,
          ...(meter.grpcStatus === undefined ? {} : { grpcStatus: Number(meter.grpcStatus) }),
          ms: Math.round(record.durationMs * 1000) / 1000,
          bytesIn: meter.bytesIn,
          bytesOut: meter.bytesOut,
          route: record.route,
          upstream: record.upstream,
          attempts: record.attempts,
          ...(record.error ? { error: record.error } : {}),
          client: record.clientAddress,
          cfRay: cfRay(exchange.head.headers),
        },
        'request',
      );
    },
  };
}

/** The edge's request id (`cf-ray`), which Cloudflare's own logs and support tickets use. */
function cfRay(headers: RawHeaders): string | undefined {
  for (let i = 0; i + 1 < headers.length; i += 2) if (headers[i] === 'cf-ray') return headers[i + 1]!.slice(0, 64);
  return undefined;
}

const GRPC_STATUS = /^\d{1,2}$/;

function grpcStatusOf(headers: RawHeaders | undefined): string | undefined {
  const value = headers && headerValue(headers, 'grpc-status');
  return value !== undefined && GRPC_STATUS.test(value) ? value : undefined;
}

function byteLength(chunk: unknown, encoding?: unknown): number {
  if (typeof chunk === 'string') return Buffer.byteLength(chunk, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (chunk instanceof Uint8Array) return chunk.byteLength;
  return 0;
}

/**
 * Delegates every member to the acceptor's exchange and counts what passes: the body's pushes (bytes the
 * client sent, whoever reads them) and the response sink's writes. The streams themselves are the acceptor's;
 * only their `push`/`write`/`end` are observed, so backpressure and errors behave as without the log.
 */
class MeteredExchange implements Exchange, ExchangeMeter {
  bytesIn = 0;
  bytesOut = 0;
  grpcStatus: string | undefined;
  readonly #inner: Exchange;

  constructor(inner: Exchange) {
    this.#inner = inner;
    this.#countPushes(inner.body);
  }

  get id(): string {
    return this.#inner.id;
  }
  get head(): Exchange['head'] {
    return this.#inner.head;
  }
  get body(): Readable {
    return this.#inner.body;
  }
  get signal(): AbortSignal {
    return this.#inner.signal;
  }
  onClientGone(listener: () => void): boolean {
    return this.#inner.onClientGone(listener);
  }
  get responded(): boolean {
    return this.#inner.responded;
  }

  respond(head: ResponseHead): Writable {
    this.grpcStatus = grpcStatusOf(head.headers) ?? this.grpcStatus;
    const sink = this.#inner.respond(head);
    this.#countWrites(sink);
    return sink;
  }

  setTrailers(trailers: RawHeaders): void {
    this.grpcStatus = grpcStatusOf(trailers) ?? this.grpcStatus;
    this.#inner.setTrailers(trailers);
  }

  fail(error: ExchangeFailure): void {
    this.grpcStatus = grpcStatusOf(error.headers) ?? this.grpcStatus;
    this.#inner.fail(error);
  }

  #countPushes(body: Readable): void {
    // Bytes may already wait in the body (through the tunnel a small body often arrives with its head).
    if (!body.readableObjectMode) this.bytesIn += body.readableLength;
    const push = body.push;
    body.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
      this.bytesIn += byteLength(chunk, encoding);
      return push.call(body, chunk, encoding);
    };
  }

  #countWrites(sink: Writable): void {
    const write = sink.write as (...args: unknown[]) => boolean;
    const end = sink.end as (...args: unknown[]) => Writable;
    sink.write = ((...args: unknown[]): boolean => {
      this.bytesOut += byteLength(args[0], args[1]);
      return write.apply(sink, args);
    }) as Writable['write'];
    sink.end = ((...args: unknown[]): Writable => {
      if (typeof args[0] !== 'function') this.bytesOut += byteLength(args[0], args[1]);
      return end.apply(sink, args);
    }) as Writable['end'];
  }
}
