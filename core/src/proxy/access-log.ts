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

/** Bytes counted on an exchange's streams. */
interface ByteCounts {
  bytesIn: number;
  bytesOut: number;
}

/**
 * What a metered stream holds: the counts and its own methods from before, nothing that leads back to the exchange.
 * A finished stream can outlive the young generation (docs/benchmarks.md, "What a finished request leaves in the
 * old generation"), and whatever it still points at goes with it: a closure over the exchange installed as its
 * `push` or `write` carried every logged request into the old generation.
 */
interface StreamMeter {
  readonly counts: ByteCounts;
  push?: Readable['push'];
  write?: (...args: unknown[]) => boolean;
  end?: (...args: unknown[]) => Writable;
}
const meters = new WeakMap<object, StreamMeter>();

function meterOf(stream: object, counts: ByteCounts): StreamMeter {
  let meter = meters.get(stream);
  if (!meter) meters.set(stream, (meter = { counts }));
  return meter;
}

// One function each for every metered stream (not a closure per exchange): they find their counts by the stream.
function countedPush(this: Readable, chunk: unknown, encoding?: BufferEncoding): boolean {
  const meter = meters.get(this)!;
  meter.counts.bytesIn += byteLength(chunk, encoding);
  return meter.push!.call(this, chunk, encoding);
}
function countedWrite(this: Writable, ...args: unknown[]): boolean {
  const meter = meters.get(this)!;
  meter.counts.bytesOut += byteLength(args[0], args[1]);
  return meter.write!.apply(this, args);
}
function countedEnd(this: Writable, ...args: unknown[]): Writable {
  const meter = meters.get(this)!;
  if (typeof args[0] !== 'function') meter.counts.bytesOut += byteLength(args[0], args[1]);
  return meter.end!.apply(this, args);
}

/**
 * Delegates every member to the acceptor's exchange and counts what passes: the body's pushes (bytes the
 * client sent, whoever reads them) and the response sink's writes. The streams themselves are the acceptor's;
 * only their `push`/`write`/`end` are observed, so backpressure and errors behave as without the log.
 */
class MeteredExchange implements Exchange, ExchangeMeter {
  grpcStatus: string | undefined;
  readonly #inner: Exchange;
  readonly #counts: ByteCounts = { bytesIn: 0, bytesOut: 0 };

  constructor(inner: Exchange) {
    this.#inner = inner;
    this.#countPushes(inner.body);
  }

  get bytesIn(): number {
    return this.#counts.bytesIn;
  }
  get bytesOut(): number {
    return this.#counts.bytesOut;
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
    if (!body.readableObjectMode) this.#counts.bytesIn += body.readableLength;
    const meter = meterOf(body, this.#counts);
    if (meter.push) return;
    meter.push = body.push;
    body.push = countedPush;
  }

  #countWrites(sink: Writable): void {
    const meter = meterOf(sink, this.#counts);
    if (meter.write) return;
    meter.write = sink.write as StreamMeter['write'];
    meter.end = sink.end as StreamMeter['end'];
    sink.write = countedWrite as Writable['write'];
    sink.end = countedEnd as Writable['end'];
  }
}
