import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { isWarrenError, type WarrenError } from '../../errors.js';
import { DEFAULT_FRAME_LIMITS, DEFAULT_READ_LIMITS, FrameReader, protocolError, type FrameLimits, type ReadLimits } from './codec/index.js';
import { decodeRpcMessage, type DecodedRpcMessage } from './messages.js';

/** Limits for what a peer may send (defaults: 64 segments / 8 MiB per message, 64 MiB traversal, depth 64). */
export interface RpcLimits {
  frame?: FrameLimits;
  read?: ReadLimits;
}

/** What the owner of an {@link RpcTransport} is told. Handlers are never called after the transport shut down. */
export interface RpcTransportHandlers {
  /** One decoded message. A throw from here is treated like malformed input. */
  message(decoded: DecodedRpcMessage): void;
  /** Malformed input (or a handler throw): no further messages are delivered; the owner should abort. */
  protocolError(err: WarrenError): void;
  /** The peer ended its side, or the stream errored or closed (`cause` set for errors). */
  ended(cause: Error | undefined): void;
}

/**
 * Carries RPC messages over a byte stream in Cap'n Proto stream framing: reassembles messages across chunks,
 * decodes them, and writes framed messages. It never throws past its boundary and always listens for `'error'`
 * on the stream, so nothing a peer sends can crash the process. It does not destroy the stream; it only ends its
 * writable side ({@link shutdown}).
 */
export class RpcTransport {
  /** Resolves once the stream ended, errored or closed, or after {@link shutdown} flushed the writable side. */
  readonly closed: Promise<void>;
  readonly #stream: Duplex;
  readonly #handlers: RpcTransportHandlers;
  readonly #frames: FrameReader;
  readonly #readLimits: ReadLimits;
  readonly #logger: Logger | undefined;
  #delivering = true;
  #shutDown = false;
  #markClosed!: () => void;

  constructor(stream: Duplex, handlers: RpcTransportHandlers, options: { limits?: RpcLimits; logger?: Logger } = {}) {
    this.#stream = stream;
    this.#handlers = handlers;
    this.#frames = new FrameReader(options.limits?.frame ?? DEFAULT_FRAME_LIMITS);
    this.#readLimits = options.limits?.read ?? DEFAULT_READ_LIMITS;
    this.#logger = options.logger;
    this.closed = new Promise((resolve) => (this.#markClosed = resolve));
    stream.on('data', (chunk: Buffer) => this.#onData(chunk));
    stream.on('error', (err: Error) => this.#onEnded(err));
    stream.once('end', () => this.#onEnded(undefined));
    stream.once('close', () => this.#onEnded(undefined));
    if (stream.destroyed || stream.readableEnded) queueMicrotask(() => this.#onEnded(undefined));
  }

  /** True until {@link shutdown} was called or the stream ended. */
  get open(): boolean {
    return !this.#shutDown;
  }

  /** Writes one framed message; silently dropped once the writable side is gone. */
  send(frame: Buffer): void {
    if (this.#shutDown) return;
    this.#write(frame);
  }

  /**
   * Writes `finalFrames`, ends the writable side and stops delivering messages (later input is drained and
   * discarded). `closed` resolves when the end is flushed, the stream closes, or after `graceMs` at the latest.
   */
  shutdown(finalFrames: readonly Buffer[] = [], graceMs = 5_000): void {
    if (this.#shutDown) return;
    for (const f of finalFrames) this.#write(f);
    this.#shutDown = true;
    this.#delivering = false;
    const s = this.#stream;
    if (s.destroyed || s.writableFinished) {
      this.#markClosed();
      return;
    }
    const timer = setTimeout(() => this.#markClosed(), graceMs);
    timer.unref();
    void this.closed.then(() => clearTimeout(timer));
    try {
      s.end(() => this.#markClosed());
    } catch {
      this.#markClosed();
    }
  }

  #write(frame: Buffer): void {
    const s = this.#stream;
    if (s.destroyed || s.writableEnded) return;
    try {
      s.write(frame);
    } catch (err) {
      this.#logger?.debug({ err }, 'rpc write failed');
    }
  }

  #onData(chunk: Buffer): void {
    if (!this.#delivering) return;
    let frames: Buffer[][];
    try {
      frames = this.#frames.push(chunk);
    } catch (err) {
      this.#fail(err);
      return;
    }
    for (const segments of frames) {
      if (!this.#delivering) return;
      try {
        this.#handlers.message(decodeRpcMessage(segments, this.#readLimits));
      } catch (err) {
        this.#fail(err);
        return;
      }
    }
  }

  #fail(err: unknown): void {
    this.#delivering = false;
    const protocolErr = isWarrenError(err) ? err : protocolError(`failed to process an RPC message: ${(err as Error)?.message ?? String(err)}`, err);
    this.#handlers.protocolError(protocolErr);
  }

  #onEnded(cause: Error | undefined): void {
    const wasDelivering = this.#delivering || !this.#shutDown;
    this.#delivering = false;
    this.#shutDown = true;
    this.#markClosed();
    if (wasDelivering) {
      this.#handlers.ended(cause);
      // The peer is gone or done: end our side too (without an Abort: there is nobody left to read it).
      const s = this.#stream;
      if (!s.destroyed && !s.writableEnded) s.end();
    }
  }
}
