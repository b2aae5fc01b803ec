import { Duplex } from 'node:stream';
import { releaseListeners } from '../../release-listeners.js';
import { ErrorCode } from './frames.js';

/**
 * What a stream needs from its session; implemented by `H2ServerSession` (kept as an interface so this
 * module does not depend on the session's).
 */
export interface StreamHost {
  readonly peerMaxFrameSize: number;
  connectionSendWindow: number;
  /** The socket holds as much as DATA should queue until it drains. */
  readonly socketFull: boolean;
  writeHeaders(streamId: number, headers: readonly string[], endStream: boolean): void;
  writeData(streamId: number, data: Buffer, endStream: boolean): void;
  /** Ends the stream's response body: END_STREAM on its last DATA frame while that is still queued, else an empty DATA frame. */
  endData(streamId: number): void;
  writeReset(streamId: number, code: number): void;
  writeWindowUpdate(streamId: number, increment: number): void;
  /** Runs `callback` once the socket accepts more (at once when it does already). */
  whenWritable(callback: () => void): void;
  /** The stream waits for a connection-level WINDOW_UPDATE. */
  blocked(stream: H2Stream): void;
  /** The stream reached the closed state. */
  streamClosed(stream: H2Stream): void;
}

type Callback = (error?: Error | null) => void;

/** Names HTTP/2 forbids (RFC 9113 §8.2.2); Node threw for them too. */
const CONNECTION_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const FIELD_VALUE_INVALID = /[\0\r\n]/;

/** Throws for a response header list HTTP/2 cannot carry (as Node's `respond()` did), before anything is sent. */
function checkHeaders(headers: readonly string[], pseudoAllowed: boolean): void {
  for (let i = 0; i + 1 < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (!pseudoAllowed || name !== ':status') throw new TypeError(`invalid pseudo-header ${name}`);
    } else if (!FIELD_NAME.test(name)) throw new TypeError(`invalid header name "${name}"`);
    else if (CONNECTION_HEADERS.has(name) || (name === 'te' && value !== 'trailers')) throw new TypeError(`connection-specific header ${name}`);
    if (FIELD_VALUE_INVALID.test(value)) throw new TypeError(`invalid value for header ${name}`);
  }
}

/**
 * One edge-opened HTTP/2 stream: the readable side is the request body (DATA payloads as the session read
 * them, no copies), the writable side the response body. Stream flow control is returned as the body is
 * consumed; writes wait for both send windows and for the socket, so backpressure reaches the writer.
 */
export class H2Stream extends Duplex {
  readonly id: number;
  readonly #host: StreamHost;
  /** Bytes the peer may still send (our receive window as the peer sees it). */
  #recvWindow: number;
  /** The receive window to keep open; follows our SETTINGS_INITIAL_WINDOW_SIZE. */
  #targetWindow: number;
  #sendWindow: number;
  #received = 0;
  /** content-length of the request, when it declared one: DATA must match it (RFC 9113 §8.1.1). */
  #expectedLength: number | undefined;
  #remoteEnded = false;
  /** Someone asked for the body (`_read` was called). */
  #readRequested = false;
  /** The request ended before anyone asked for its body: the end is pushed on the first `_read`. */
  #endPending = false;
  #localEnded = false;
  #closed = false;
  #headersSent = false;
  #waitForTrailers = false;
  #rstCode: number | undefined;
  #pending: Buffer | undefined;
  #pendingCallback: Callback | undefined;
  #finalCallback: Callback | undefined;

  constructor(host: StreamHost, id: number, recvWindow: number, sendWindow: number, expectedLength: number | undefined) {
    super({ allowHalfOpen: true, autoDestroy: false, emitClose: true });
    this.#host = host;
    this.id = id;
    this.#recvWindow = recvWindow;
    this.#targetWindow = recvWindow;
    this.#sendWindow = sendWindow;
    this.#expectedLength = expectedLength;
  }

  /** The RST_STREAM code the stream ended with (0 for a clean end), once closed. */
  get rstCode(): number | undefined {
    return this.#rstCode;
  }

  get headersSent(): boolean {
    return this.#headersSent;
  }

  /**
   * Sends the response head (`[name, value, …]`, lower-case names, `:status` first). `endStream` ends the
   * response with it; `waitForTrailers` makes the end of the body emit `wantTrailers`, answered by
   * `sendTrailers()`. Throws for headers HTTP/2 cannot carry, or when the head was sent or the stream closed.
   */
  respond(headers: readonly string[], options: { endStream?: boolean; waitForTrailers?: boolean } = {}): void {
    if (this.#closed) throw new Error(`stream ${this.id} is closed`);
    if (this.#headersSent) throw new Error(`stream ${this.id}: response head already sent`);
    checkHeaders(headers, true);
    this.#headersSent = true;
    const endStream = options.endStream === true;
    this.#waitForTrailers = !endStream && options.waitForTrailers === true;
    this.#host.writeHeaders(this.id, headers, endStream);
    if (endStream) {
      this.#localEnded = true;
      this.end();
      this.#afterLocalEnd();
    }
  }

  /** Ends the response with trailers (a HEADERS frame), or with END_STREAM on DATA when there are none. */
  sendTrailers(trailers: readonly string[]): void {
    if (this.#closed || this.#localEnded) throw new Error(`stream ${this.id}: cannot send trailers now`);
    checkHeaders(trailers, false);
    this.#localEnded = true;
    if (trailers.length > 0) this.#host.writeHeaders(this.id, trailers, true);
    else this.#host.endData(this.id);
    const callback = this.#finalCallback;
    this.#finalCallback = undefined;
    // Writable first (end() callbacks, 'finish'), then the stream may close: destroyed first, it would
    // drop the callbacks end() registers.
    callback?.();
    this.#afterLocalEnd();
  }

  /** Resets the stream with `code` (RST_STREAM) unless it is closed already. */
  close(code: number = ErrorCode.NO_ERROR): void {
    if (this.#closed) return;
    this.#host.writeReset(this.id, code);
    this.closeWith(code);
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: Callback): void {
    if (this.#closed) return callback(new Error(`stream ${this.id} is closed`));
    if (!this.#headersSent) return callback(new Error(`stream ${this.id}: write before respond()`));
    this.#pending = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    this.#pendingCallback = callback;
    this.flush();
  }

  override _final(callback: Callback): void {
    if (this.#localEnded || this.#closed) return callback();
    if (this.#waitForTrailers) {
      this.#finalCallback = callback;
      this.emit('wantTrailers');
      return;
    }
    this.#localEnded = true;
    this.#host.endData(this.id);
    callback();
    this.#afterLocalEnd();
  }

  override _read(): void {
    // Data is pushed as it arrives; the window is returned in read(), once bytes have left the buffer.
    this.#readRequested = true;
    if (this.#endPending) {
      this.#endPending = false;
      this.push(null);
    }
  }

  override read(size?: number): unknown {
    const chunk: unknown = super.read(size);
    if (chunk !== null) this.#refill();
    return chunk;
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#closed) this.close(error ? ErrorCode.INTERNAL_ERROR : ErrorCode.CANCEL);
    callback(error);
    // The callback queued the stream's last events ('error', then 'close') for the next tick; this runs after them.
    process.nextTick(releaseListeners, this);
  }

  /** Sends what the windows allow of the pending write; completes the write once all of it is out. */
  flush(): void {
    const data = this.#pending;
    if (!data || this.#closed) return;
    const host = this.#host;
    let at = 0;
    while (at < data.length) {
      if (host.socketFull) {
        // However many streams write and however large their windows, the socket holds a bounded amount
        // at a time; the rest waits in the writers, under their backpressure.
        this.#pending = at === 0 ? data : data.subarray(at);
        host.whenWritable(() => this.flush());
        return;
      }
      const room = Math.min(this.#sendWindow, host.connectionSendWindow, host.peerMaxFrameSize, data.length - at);
      if (room <= 0) {
        this.#pending = at === 0 ? data : data.subarray(at);
        if (host.connectionSendWindow <= 0) host.blocked(this);
        return;
      }
      host.writeData(this.id, at === 0 && room === data.length ? data : data.subarray(at, at + room), false);
      this.#sendWindow -= room;
      host.connectionSendWindow -= room;
      at += room;
    }
    const callback = this.#pendingCallback!;
    this.#pending = undefined;
    this.#pendingCallback = undefined;
    host.whenWritable(callback);
  }

  // ---- called by the session ----

  /**
   * A DATA frame starts: `frameLength` counts against the window (padding included), `dataLength` against the
   * declared content-length. Returns the stream error to reset with, or undefined.
   */
  admitData(frameLength: number, dataLength: number): number | undefined {
    if (this.#remoteEnded) return ErrorCode.STREAM_CLOSED;
    this.#recvWindow -= frameLength;
    if (this.#recvWindow < 0) return ErrorCode.FLOW_CONTROL_ERROR;
    this.#received += dataLength;
    if (this.#expectedLength !== undefined && this.#received > this.#expectedLength) return ErrorCode.PROTOCOL_ERROR;
    return undefined;
  }

  /** Bytes of request body (padding excluded). Flow control was accounted for by `admitData`. */
  receive(data: Buffer): void {
    if (this.#closed) return;
    if (data.length > 0) this.push(data);
    // Nothing held: the bytes went straight to a reader (or were padding), so the window can be returned.
    if (this.readableLength === 0) this.#refill();
  }

  /** END_STREAM from the peer; false when the body did not match its declared content-length. */
  remoteEnd(): boolean {
    if (this.#remoteEnded) return true;
    this.#remoteEnded = true;
    if (this.#expectedLength !== undefined && this.#received !== this.#expectedLength) return false;
    // A body nobody has asked for yet (most requests have none) ends when someone does (`_read`): pushed now,
    // the end would cost Readable a 'readable' round on the next tick for every such request.
    if (this.#readRequested || this.readableFlowing !== null || this.readableLength > 0) this.push(null);
    else this.#endPending = true;
    if (this.#localEnded) this.closeWith(ErrorCode.NO_ERROR);
    return true;
  }

  /** WINDOW_UPDATE for this stream; false when it overflows the window (FLOW_CONTROL_ERROR). */
  addSendWindow(increment: number): boolean {
    this.#sendWindow += increment;
    if (this.#sendWindow > 0x7fffffff) return false;
    this.flush();
    return true;
  }

  /** The peer's SETTINGS_INITIAL_WINDOW_SIZE changed by `delta` (RFC 9113 §6.9.2). */
  adjustSendWindow(delta: number): boolean {
    this.#sendWindow += delta;
    return this.#sendWindow <= 0x7fffffff;
  }

  /** Our SETTINGS_INITIAL_WINDOW_SIZE changed by `delta` as the peer applies it. */
  adjustRecvWindow(delta: number): void {
    this.#recvWindow += delta;
    this.#targetWindow += delta;
    this.#refill();
  }

  /** The stream is over, after a reset (sent or received) or both END_STREAMs; `code` 0 for a clean end. */
  closeWith(code: number): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#rstCode = code;
    const waiting = this.#pendingCallback ?? this.#finalCallback;
    this.#pending = undefined;
    this.#pendingCallback = undefined;
    this.#finalCallback = undefined;
    this.#host.streamClosed(this);
    // A clean end may come from inside Writable's own bookkeeping (_final, or an end() called from a 'drain'
    // listener while the last write completes), before it has emitted 'finish' (queued for the next tick).
    // Destroyed now, the stream would fail end()'s callbacks with ERR_STREAM_DESTROYED and never finish, so
    // it is destroyed after that.
    if (code === ErrorCode.NO_ERROR && this.#localEnded && !this.writableFinished) process.nextTick(destroyStream, this);
    else if (!this.destroyed) this.destroy();
    // A write (or the end, awaiting trailers) cut off by a reset fails, and with it end()'s callbacks: left
    // uncalled, the writer would wait for ever.
    waiting?.(new Error(`stream ${this.id} was closed (code ${code}) before the response was sent`));
  }

  // ---- internals ----

  /**
   * Returns consumed window to the peer: what keeps `held + window` at the target, once that is at least half
   * the target (fewer WINDOW_UPDATE frames), or at once when nothing is held.
   */
  #refill(): void {
    if (this.#remoteEnded || this.#closed) return;
    const target = this.#targetWindow;
    const increment = target - this.readableLength - this.#recvWindow;
    if (increment <= 0) return;
    if (increment * 2 < target && this.#recvWindow > 0) return;
    this.#recvWindow += increment;
    this.#host.writeWindowUpdate(this.id, increment);
  }

  #afterLocalEnd(): void {
    if (this.#remoteEnded) {
      this.closeWith(ErrorCode.NO_ERROR);
      return;
    }
    // A complete response to a request whose body nobody read: ask the peer to stop sending it, without
    // error (RFC 9113 §8.1), as Node's server does.
    if (!this.readableDidRead && this.readableFlowing === null) setImmediate(() => this.close(ErrorCode.NO_ERROR));
  }
}

function destroyStream(stream: H2Stream): void {
  if (!stream.destroyed) stream.destroy();
}
