import { EventEmitter } from 'node:events';
import type { Socket } from 'node:net';
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_SIZE,
  DEFAULT_WINDOW,
  ErrorCode,
  Flag,
  FRAME_HEADER_LENGTH,
  FrameType,
  frame,
  frameHeader,
  H2ConnectionError,
  MAX_FRAME_SIZE_LIMIT,
  MAX_WINDOW,
  SettingId,
  writeFrameHeader,
} from './frames.js';
import { encodeHeaderBlock, HpackDecoder, HpackError } from './hpack.js';
import { H2Stream, type StreamHost } from './stream.js';

/**
 * The server side of one HTTP/2 connection (RFC 9113), on a socket the connector dialled: the peer (the
 * edge) is the client and opens every stream. Frames are read from and written to the socket directly:
 * DATA payloads reach streams as views of the bytes read, and response bodies leave as a frame header plus
 * the caller's buffer, both under flow control. No server push, no priorities (PRIORITY is ignored), no
 * streams of our own.
 *
 * Every resource the peer can make this side hold has a bound (`H2SessionLimits`). A connection error sends
 * GOAWAY with its code and ends the session ('error' then 'close'); a stream error resets that stream only.
 * A GOAWAY from the peer is reported ('goaway') whatever its last_stream_id: this side never opens streams,
 * so the field has nothing to say here.
 *
 * Events: 'stream' (stream, headers `[name, value, …]`, endStream), 'goaway' (code, lastStreamId),
 * 'localSettings' (a SETTINGS of ours was acknowledged), 'error' (H2ConnectionError), 'close'.
 */

export interface H2Settings {
  readonly headerTableSize: number;
  readonly maxConcurrentStreams: number;
  readonly initialWindowSize: number;
  readonly maxFrameSize: number;
  readonly maxHeaderListSize: number;
}

export interface H2SessionLimits {
  /** Header fields per request, pseudo-headers included; more resets the stream with ENHANCE_YOUR_CALM. */
  readonly maxHeaderPairs: number;
  /** Bytes queued for the socket beyond which the peer is not reading and the session ends (ENHANCE_YOUR_CALM). */
  readonly maxQueuedBytes: number;
  /** RST_STREAM frames from the peer tolerated in a burst, refilled at `streamResetRate` per second. */
  readonly streamResetBurst: number;
  readonly streamResetRate: number;
  /** CONTINUATION frames per header block (default {@link DEFAULT_MAX_CONTINUATIONS}). */
  readonly maxContinuations?: number;
  /** Acknowledgements (SETTINGS, PING) owed while the socket is backed up (default {@link DEFAULT_MAX_OWED_ACKS}). */
  readonly maxOwedAcks?: number;
}

export interface H2SessionOptions {
  readonly settings: H2Settings;
  /** Connection-level receive window to open to right after the preface. */
  readonly connectionWindow: number;
  readonly limits: H2SessionLimits;
}

/** nghttp2's default, which Node's sessions had: header blocks are rarely split at all. */
const DEFAULT_MAX_CONTINUATIONS = 8;
/** nghttp2's default bound on queued acknowledgements (its SETTINGS/PING flood guard). */
const DEFAULT_MAX_OWED_ACKS = 1000;
/** Our SETTINGS frames awaiting acknowledgement (Node's default `maxOutstandingSettings`). */
const MAX_PENDING_SETTINGS = 10;
/**
 * Bytes queued on the socket beyond which response DATA waits for it to drain. Well above the socket's own
 * buffer, so that concurrent responses leave in large socket writes (fewer event-loop turns per byte), and
 * about one connection window, so that what waits is bounded whatever the edge's windows.
 */
const WRITE_QUEUE_BYTES = 1_048_576;
/**
 * A turn's frames up to this many bytes are joined into one buffer before the socket: one socket write (and one
 * TLS record) whatever the number of frames, where the socket's own path would take a write per frame and join
 * them natively anyway. Larger batches (bodies) go to the socket frame by frame, uncopied.
 */
const JOIN_BYTES = 16_384;
/** How long a closing socket may take to flush before it is destroyed. */
const CLOSE_FLUSH_MS = 1000;

const CONNECTION_HEADERS = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'upgrade']);
const REQUEST_PSEUDO = new Set([':method', ':scheme', ':authority', ':path', ':protocol']);
const FIELD_NAME = /^[!#$%&'*+\-.^_`|~0-9a-z]+$/;
const FIELD_VALUE_INVALID = /[\0\r\n]/;
const DIGITS = /^\d{1,15}$/;

interface HeaderBlock {
  readonly streamId: number;
  readonly flags: number;
  readonly parts: Buffer[];
  length: number;
  continuations: number;
}

export class H2ServerSession extends EventEmitter implements StreamHost {
  readonly #socket: Socket;
  readonly #settings: H2Settings;
  readonly #limits: Required<H2SessionLimits>;
  readonly #decoder: HpackDecoder;
  readonly #streams = new Map<number, H2Stream>();
  readonly #blocked = new Set<H2Stream>();

  // Reading.
  #prefaceLeft = CLIENT_PREFACE.length;
  #sawSettings = false;
  #stash: Buffer[] = [];
  #stashLength = 0;
  #needed = 0;
  /** A DATA frame whose payload is still arriving: bytes left, its stream and END_STREAM. */
  #dataLeft = 0;
  #dataStream: H2Stream | undefined;
  #dataEnd = false;
  #headerBlock: HeaderBlock | undefined;

  // Peer state.
  #peerInitialWindow = DEFAULT_WINDOW;
  peerMaxFrameSize = DEFAULT_MAX_FRAME_SIZE;
  connectionSendWindow = DEFAULT_WINDOW;
  #lastStreamId = 0;

  // Our receive windows.
  #connectionRecvWindow = DEFAULT_WINDOW;
  readonly #connectionTarget: number;
  /** The stream window new streams get: the peer's view of our SETTINGS_INITIAL_WINDOW_SIZE. */
  #localInitialWindow = DEFAULT_WINDOW;
  /** Our SETTINGS sent and not yet acknowledged, oldest first. */
  readonly #unacked: Array<Partial<H2Settings>> = [];

  // Limits' state.
  #resetTokens: number;
  #resetRefilled = Date.now();
  #owedAcks = 0;
  #drainWaiters: Array<() => void> = [];

  // Ending.
  #goawayLastId: number | undefined;
  #ending = false;
  #destroyed = false;
  #closeEmitted = false;

  // Writing: the frames of one event-loop turn, handed to the socket together at the turn's end. The turn's
  // frames are the first `#batchCount` slots of `#batch`; two arrays take turns and are emptied slot by slot,
  // so a turn allocates no array (a fresh one per turn, grown by pushes, was ~150 bytes of each request's).
  #batch: Array<Buffer | undefined> = [];
  #spare: Array<Buffer | undefined> = [];
  #batchCount = 0;
  #batchBytes = 0;
  #flushScheduled = false;
  /** The batch's last frame when it is a DATA frame without END_STREAM (its header), and its stream. */
  #tailData: Buffer | undefined;
  #tailDataStream = 0;

  constructor(socket: Socket, options: H2SessionOptions) {
    super();
    this.#socket = socket;
    this.#settings = options.settings;
    this.#limits = { maxContinuations: DEFAULT_MAX_CONTINUATIONS, maxOwedAcks: DEFAULT_MAX_OWED_ACKS, ...options.limits };
    this.#decoder = new HpackDecoder(options.settings.headerTableSize);
    this.#connectionTarget = Math.max(DEFAULT_WINDOW, options.connectionWindow);
    this.#resetTokens = this.#limits.streamResetBurst;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#onDrain());
    socket.on('error', () => {
      // The session ends through 'close'; the listener keeps the error from becoming an uncaught one.
    });
    socket.on('close', () => this.#onSocketClose());
    // Server preface: our SETTINGS, then the connection window opened beyond the default.
    this.#sendSettings(options.settings, true);
    if (this.#connectionTarget > DEFAULT_WINDOW) {
      this.writeWindowUpdate(0, this.#connectionTarget - DEFAULT_WINDOW);
      this.#connectionRecvWindow = this.#connectionTarget;
    }
  }

  get closed(): boolean {
    return this.#ending || this.#destroyed;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Whether a SETTINGS frame of ours awaits the peer's acknowledgement. */
  get pendingSettingsAck(): boolean {
    return this.#unacked.length > 0;
  }

  /** Streams not yet closed. */
  get streamCount(): number {
    return this.#streams.size;
  }

  /** Announces new settings (only SETTINGS_INITIAL_WINDOW_SIZE changes in practice). */
  settings(settings: Partial<H2Settings>): void {
    if (this.closed) throw new Error('the HTTP/2 session is closed');
    if (this.#unacked.length >= MAX_PENDING_SETTINGS) throw new Error('too many SETTINGS awaiting acknowledgement');
    this.#sendSettings(settings, false);
  }

  /**
   * Graceful end: GOAWAY (NO_ERROR, the last stream seen), no new streams; the connection closes once every
   * open stream has. Idempotent.
   */
  close(): void {
    if (this.closed) return;
    this.#ending = true;
    this.#sendGoaway(ErrorCode.NO_ERROR);
    this.#maybeFinish();
  }

  /** Ends at once: open streams are reset (CANCEL) and the socket destroyed. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    this.#closeStreams(ErrorCode.CANCEL);
    this.#batch = [];
    this.#batchCount = 0;
    this.#batchBytes = 0;
    this.#socket.destroy();
    if (this.#socket.closed) this.#emitClose();
  }

  // ---- StreamHost ----

  writeHeaders(streamId: number, headers: readonly string[], endStream: boolean): void {
    // Encoded after room for the frame header: a block that fits one frame leaves as one buffer.
    const out = encodeHeaderBlock(headers, FRAME_HEADER_LENGTH);
    const length = out.length - FRAME_HEADER_LENGTH;
    const max = this.peerMaxFrameSize;
    if (length <= max) {
      writeFrameHeader(out, length, FrameType.HEADERS, Flag.END_HEADERS | (endStream ? Flag.END_STREAM : 0), streamId);
      this.#write(out);
      return;
    }
    const block = out.subarray(FRAME_HEADER_LENGTH);
    for (let at = 0; at < length; at += max) {
      const part = block.subarray(at, at + max);
      const last = at + max >= length;
      const type = at === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
      const flags = (last ? Flag.END_HEADERS : 0) | (at === 0 && endStream ? Flag.END_STREAM : 0);
      this.#write(frameHeader(part.length, type, flags, streamId), part);
    }
  }

  writeData(streamId: number, data: Buffer, endStream: boolean): void {
    const head = frameHeader(data.length, FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId);
    if (!this.#write(head, data.length > 0 ? data : undefined) || endStream) return;
    this.#tailData = head;
    this.#tailDataStream = streamId;
  }

  endData(streamId: number): void {
    // The stream's last DATA frame has not left yet: END_STREAM rides on it instead of on a frame of its own.
    if (this.#tailData !== undefined && this.#tailDataStream === streamId) {
      this.#tailData[4] = Flag.END_STREAM; // its flags byte, 0 until now (no padding)
      this.#tailData = undefined;
      return;
    }
    this.writeData(streamId, EMPTY, true);
  }

  writeReset(streamId: number, code: number): void {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(code, 0);
    this.#write(frame(FrameType.RST_STREAM, 0, streamId, payload));
  }

  writeWindowUpdate(streamId: number, increment: number): void {
    const payload = Buffer.allocUnsafe(4);
    payload.writeUInt32BE(increment, 0);
    this.#write(frame(FrameType.WINDOW_UPDATE, 0, streamId, payload));
  }

  get socketFull(): boolean {
    return this.#socket.writableLength + this.#batchBytes >= WRITE_QUEUE_BYTES;
  }

  whenWritable(callback: () => void): void {
    // Below the queue bound the socket accepts more at once: a writer waits for 'drain' (the socket empty)
    // only once the bound is reached, not whenever the socket holds more than its own small buffer.
    if (this.socketFull && !this.#socket.destroyed) this.#drainWaiters.push(callback);
    else callback();
  }

  blocked(stream: H2Stream): void {
    this.#blocked.add(stream);
  }

  streamClosed(stream: H2Stream): void {
    this.#streams.delete(stream.id);
    this.#blocked.delete(stream);
    this.#maybeFinish();
  }

  // ---- writing ----

  /** Queues a frame for the turn's socket write; false when the socket takes no more. */
  #write(head: Buffer, body?: Buffer): boolean {
    const socket = this.#socket;
    if (socket.destroyed || socket.writableEnded || this.#destroyed) return false;
    this.#queue(head);
    if (body) this.#queue(body);
    this.#tailData = undefined;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
    if (socket.writableLength + this.#batchBytes > this.#limits.maxQueuedBytes) {
      this.#fail(new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `over ${this.#limits.maxQueuedBytes} bytes queued for a peer that does not read`), false);
    }
    return true;
  }

  #queue(piece: Buffer): void {
    const batch = this.#batch;
    if (this.#batchCount < batch.length) batch[this.#batchCount] = piece;
    else batch.push(piece);
    this.#batchCount++;
    this.#batchBytes += piece.length;
  }

  /** Hands the turn's frames to the socket (one function for the session, not a closure per turn). */
  readonly #flush = (): void => {
    this.#flushScheduled = false;
    const batch = this.#batch;
    const count = this.#batchCount;
    const bytes = this.#batchBytes;
    if (count === 0) return;
    // Frames queued while these are written (from a socket callback) go to the other array.
    this.#batch = this.#spare;
    this.#spare = batch;
    this.#batchCount = 0;
    this.#batchBytes = 0;
    this.#tailData = undefined;
    const socket = this.#socket;
    if (socket.destroyed || socket.writableEnded) {
      batch.fill(undefined, 0, count);
      return;
    }
    if (count === 1) socket.write(batch[0]!);
    else if (bytes <= JOIN_BYTES) {
      const out = Buffer.allocUnsafe(bytes);
      for (let i = 0, at = 0; i < count; i++) {
        const piece = batch[i]!;
        out.set(piece, at);
        at += piece.length;
      }
      socket.write(out);
    } else {
      socket.cork();
      for (let i = 0; i < count; i++) socket.write(batch[i]!);
      socket.uncork();
    }
    // Emptied (not shortened, which would drop the array's storage): the frames are the socket's now.
    batch.fill(undefined, 0, count);
  };

  #writeAck(out: Buffer): void {
    if (this.#socket.writableNeedDrain && ++this.#owedAcks > this.#limits.maxOwedAcks) {
      this.#fail(
        new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `over ${this.#limits.maxOwedAcks} SETTINGS/PING acknowledgements owed to a peer that does not read`),
        false,
      );
      return;
    }
    this.#write(out);
  }

  #onDrain(): void {
    this.#owedAcks = 0;
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const callback of waiters) callback();
  }

  #sendSettings(settings: Partial<H2Settings>, initial: boolean): void {
    const entries: Array<[number, number]> = [];
    if (settings.headerTableSize !== undefined && (!initial || settings.headerTableSize !== 4096)) entries.push([SettingId.HEADER_TABLE_SIZE, settings.headerTableSize]);
    if (initial) entries.push([SettingId.ENABLE_PUSH, 0]);
    if (settings.maxConcurrentStreams !== undefined) entries.push([SettingId.MAX_CONCURRENT_STREAMS, settings.maxConcurrentStreams]);
    if (settings.initialWindowSize !== undefined) entries.push([SettingId.INITIAL_WINDOW_SIZE, settings.initialWindowSize]);
    if (settings.maxFrameSize !== undefined) entries.push([SettingId.MAX_FRAME_SIZE, settings.maxFrameSize]);
    if (settings.maxHeaderListSize !== undefined) entries.push([SettingId.MAX_HEADER_LIST_SIZE, settings.maxHeaderListSize]);
    const payload = Buffer.allocUnsafe(entries.length * 6);
    entries.forEach(([id, value], i) => {
      payload.writeUInt16BE(id, i * 6);
      payload.writeUInt32BE(value, i * 6 + 2);
    });
    this.#unacked.push(settings);
    // A larger window applies at once (the peer may use it as soon as it reads this); a smaller one only
    // when acknowledged (until then the peer may still use the larger one).
    if (settings.initialWindowSize !== undefined && settings.initialWindowSize > this.#localInitialWindow) this.#applyLocalWindow(settings.initialWindowSize);
    this.#write(frame(FrameType.SETTINGS, 0, 0, payload));
  }

  #applyLocalWindow(window: number): void {
    const delta = window - this.#localInitialWindow;
    if (delta === 0) return;
    this.#localInitialWindow = window;
    for (const stream of this.#streams.values()) stream.adjustRecvWindow(delta);
  }

  #sendGoaway(code: number, debug?: string): void {
    if (this.#goawayLastId !== undefined && code === ErrorCode.NO_ERROR) return;
    this.#goawayLastId = this.#lastStreamId;
    const message = debug === undefined ? undefined : Buffer.from(debug.slice(0, 256), 'latin1');
    const payload = Buffer.allocUnsafe(8 + (message?.length ?? 0));
    payload.writeUInt32BE(this.#lastStreamId, 0);
    payload.writeUInt32BE(code, 4);
    message?.copy(payload, 8);
    this.#write(frame(FrameType.GOAWAY, 0, 0, payload));
  }

  // ---- reading ----

  #onData(chunk: Buffer): void {
    if (this.#destroyed) return;
    try {
      this.#read(chunk);
    } catch (err) {
      if (err instanceof H2ConnectionError) this.#fail(err, true);
      else if (err instanceof HpackError) this.#fail(new H2ConnectionError(ErrorCode.COMPRESSION_ERROR, `header block: ${err.message}`), true);
      else this.#fail(new H2ConnectionError(ErrorCode.INTERNAL_ERROR, `internal error: ${(err as Error).message}`), true);
    }
  }

  #read(chunk: Buffer): void {
    let buffer = chunk;
    let at = 0;
    if (this.#dataLeft > 0) at = this.#continueData(buffer, 0);
    if (this.#stashLength > 0 && at < buffer.length) {
      if (this.#prefaceLeft === 0 && this.#stashLength < FRAME_HEADER_LENGTH) {
        // A frame header split across reads: complete it alone, so a DATA payload after it is not copied.
        const take = Math.min(FRAME_HEADER_LENGTH - this.#stashLength, buffer.length - at);
        this.#stash.push(buffer.subarray(at, at + take));
        this.#stashLength += take;
        at += take;
        if (this.#stashLength < FRAME_HEADER_LENGTH) return;
        const header = Buffer.concat(this.#stash, FRAME_HEADER_LENGTH);
        this.#stash = [];
        this.#stashLength = 0;
        const length = this.#beginFrame(header, 0);
        if (length < 0) at = this.#continueData(buffer, at);
        else {
          this.#stash = [header];
          this.#stashLength = FRAME_HEADER_LENGTH;
          this.#needed = FRAME_HEADER_LENGTH + length;
        }
        if (at >= buffer.length || this.#destroyed) return;
      }
      if (this.#stashLength > 0) {
        this.#stash.push(at === 0 ? buffer : buffer.subarray(at));
        this.#stashLength += buffer.length - at;
        if (this.#stashLength < this.#needed) return;
        buffer = Buffer.concat(this.#stash, this.#stashLength);
        this.#stash = [];
        this.#stashLength = 0;
        at = 0;
      }
    }
    const end = buffer.length;
    while (at < end && !this.#destroyed) {
      if (this.#prefaceLeft > 0) {
        if (end - at < this.#prefaceLeft) return this.#keep(buffer, at, this.#prefaceLeft);
        if (!buffer.subarray(at, at + CLIENT_PREFACE.length).equals(CLIENT_PREFACE))
          throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'the peer did not send the HTTP/2 client preface');
        at += CLIENT_PREFACE.length;
        this.#prefaceLeft = 0;
        continue;
      }
      if (end - at < FRAME_HEADER_LENGTH) return this.#keep(buffer, at, FRAME_HEADER_LENGTH);
      const length = this.#beginFrame(buffer, at);
      if (length < 0) {
        at = this.#continueData(buffer, at + FRAME_HEADER_LENGTH);
        continue;
      }
      if (end - at < FRAME_HEADER_LENGTH + length) return this.#keep(buffer, at, FRAME_HEADER_LENGTH + length);
      const start = at;
      at += FRAME_HEADER_LENGTH + length;
      this.#onFrame(buffer[start + 3]!, buffer[start + 4]!, buffer.readUInt32BE(start + 5) & 0x7fffffff, buffer.subarray(start + FRAME_HEADER_LENGTH, at));
    }
  }

  /**
   * Checks the frame header at `at`. An unpadded DATA frame starts streaming (its payload then goes through
   * `#continueData`) and −1 is returned; otherwise the payload length, for the caller to wait for.
   */
  #beginFrame(buffer: Buffer, at: number): number {
    const length = (buffer[at]! << 16) | (buffer[at + 1]! << 8) | buffer[at + 2]!;
    const type = buffer[at + 3]!;
    const flags = buffer[at + 4]!;
    if (length > this.#settings.maxFrameSize) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `a ${length}-byte frame exceeds SETTINGS_MAX_FRAME_SIZE`);
    if (!this.#sawSettings && type !== FrameType.SETTINGS) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'the client preface must end with SETTINGS');
    if (this.#headerBlock && type !== FrameType.CONTINUATION) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'a header block was interrupted');
    if (type !== FrameType.DATA || (flags & Flag.PADDED) !== 0) return length;
    this.#startData(buffer.readUInt32BE(at + 5) & 0x7fffffff, length, length, flags);
    return -1;
  }

  /** Keeps the incomplete frame (or preface) at `at` until `needed` bytes of it are there. */
  #keep(buffer: Buffer, at: number, needed: number): void {
    this.#stash = [buffer.subarray(at)];
    this.#stashLength = buffer.length - at;
    this.#needed = needed;
  }

  #onFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    switch (type) {
      case FrameType.DATA:
        return this.#onPaddedData(flags, streamId, payload);
      case FrameType.HEADERS:
        return this.#onHeaders(flags, streamId, payload);
      case FrameType.PRIORITY:
        if (streamId === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5) this.#resetStream(streamId, ErrorCode.FRAME_SIZE_ERROR);
        return;
      case FrameType.RST_STREAM:
        return this.#onReset(streamId, payload);
      case FrameType.SETTINGS:
        return this.#onSettings(flags, streamId, payload);
      case FrameType.PUSH_PROMISE:
        throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
      case FrameType.PING:
        if (streamId !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
        if (payload.length !== 8) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING payload is not 8 bytes');
        if ((flags & Flag.ACK) === 0) this.#writeAck(frame(FrameType.PING, Flag.ACK, 0, payload));
        return;
      case FrameType.GOAWAY:
        return this.#onGoaway(streamId, payload);
      case FrameType.WINDOW_UPDATE:
        return this.#onWindowUpdate(streamId, payload);
      case FrameType.CONTINUATION:
        return this.#onContinuation(flags, streamId, payload);
      default:
        // Unknown frame types are ignored (RFC 9113 §4.1), outside header blocks.
        return;
    }
  }

  // DATA

  /** Accounts for a DATA frame whose payload follows; its bytes then go through `#continueData`. */
  #startData(streamId: number, frameLength: number, dataLength: number, flags: number): void {
    if (streamId === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
    this.#connectionRecvWindow -= frameLength;
    if (this.#connectionRecvWindow < 0) throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'DATA beyond the connection window');
    // The connection window is returned as bytes arrive; stream windows bound what is held unread.
    if (this.#connectionTarget - this.#connectionRecvWindow >= this.#connectionTarget / 2) {
      this.writeWindowUpdate(0, this.#connectionTarget - this.#connectionRecvWindow);
      this.#connectionRecvWindow = this.#connectionTarget;
    }
    let stream = this.#streams.get(streamId);
    if (!stream && streamId > this.#lastStreamId) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, `DATA on idle stream ${streamId}`);
    if (stream) {
      const error = stream.admitData(frameLength, dataLength);
      if (error !== undefined) {
        stream.close(error);
        stream = undefined;
      }
    }
    // Frames for streams already closed are dropped (they may have been in flight when we reset them).
    this.#dataStream = stream;
    this.#dataLeft = dataLength;
    this.#dataEnd = (flags & Flag.END_STREAM) !== 0;
    if (dataLength === 0) this.#endData();
  }

  /** Hands the bytes of the current DATA frame at `at` to its stream; returns where the frame's bytes end. */
  #continueData(buffer: Buffer, at: number): number {
    const take = Math.min(this.#dataLeft, buffer.length - at);
    if (take > 0) {
      this.#dataStream?.receive(at === 0 && take === buffer.length ? buffer : buffer.subarray(at, at + take));
      this.#dataLeft -= take;
      if (this.#dataLeft === 0) this.#endData();
    }
    return at + take;
  }

  #endData(): void {
    const stream = this.#dataStream;
    this.#dataStream = undefined;
    if (stream && this.#dataEnd && !stream.remoteEnd()) stream.close(ErrorCode.PROTOCOL_ERROR);
  }

  #onPaddedData(flags: number, streamId: number, payload: Buffer): void {
    const data = stripPadding(flags, payload, 0);
    this.#startData(streamId, payload.length, data.length, flags);
    if (data.length > 0) this.#continueData(data, 0);
    else this.#dataStream?.receive(data);
  }

  // HEADERS

  #onHeaders(flags: number, streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    const fragment = stripPadding(flags, payload, (flags & Flag.PRIORITY) !== 0 ? 5 : 0);
    if ((flags & Flag.END_HEADERS) !== 0) return this.#onHeaderBlock(streamId, flags, fragment);
    this.#headerBlock = { streamId, flags, parts: [fragment], length: fragment.length, continuations: 0 };
    this.#checkBlockSize(this.#headerBlock);
  }

  #onContinuation(flags: number, streamId: number, payload: Buffer): void {
    const block = this.#headerBlock;
    if (!block || block.streamId !== streamId) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without a header block to continue');
    if (++block.continuations > this.#limits.maxContinuations) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `a header block in over ${this.#limits.maxContinuations} CONTINUATION frames`);
    }
    block.parts.push(payload);
    block.length += payload.length;
    this.#checkBlockSize(block);
    if ((flags & Flag.END_HEADERS) === 0) return;
    this.#headerBlock = undefined;
    this.#onHeaderBlock(streamId, block.flags, Buffer.concat(block.parts, block.length));
  }

  /** Compressed blocks larger than twice the header-list limit cannot decode into an acceptable list. */
  #checkBlockSize(block: HeaderBlock): void {
    if (block.length > 2 * this.#settings.maxHeaderListSize) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `a header block of over ${2 * this.#settings.maxHeaderListSize} bytes`);
    }
  }

  #onHeaderBlock(streamId: number, flags: number, block: Buffer): void {
    // Decoded whatever becomes of the stream: the decoder's table must follow the peer's encoder.
    const decoded = this.#decoder.decode(block, { maxPairs: this.#limits.maxHeaderPairs, maxListSize: this.#settings.maxHeaderListSize });
    const endStream = (flags & Flag.END_STREAM) !== 0;
    const existing = this.#streams.get(streamId);
    if (existing) {
      // Trailers: they must end the request; their content is not passed on (the pipeline takes none).
      if (!endStream || decoded.overLimit || !validTrailers(decoded.headers)) existing.close(ErrorCode.PROTOCOL_ERROR);
      else if (!existing.remoteEnd()) existing.close(ErrorCode.PROTOCOL_ERROR);
      return;
    }
    if (streamId % 2 === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, `the client opened even stream ${streamId}`);
    if (streamId <= this.#lastStreamId) return; // A stream we closed or reset: its late frames are dropped.
    this.#lastStreamId = streamId;
    if (this.#goawayLastId !== undefined) return this.#resetStream(streamId, ErrorCode.REFUSED_STREAM);
    if (decoded.overLimit) return this.#resetStream(streamId, ErrorCode.ENHANCE_YOUR_CALM);
    const check = checkRequestHeaders(decoded.headers);
    if (check === false) return this.#resetStream(streamId, ErrorCode.PROTOCOL_ERROR);
    // END_STREAM on HEADERS is a body of 0 bytes: another declared content-length makes the request malformed.
    if (endStream && check !== undefined && check !== 0) return this.#resetStream(streamId, ErrorCode.PROTOCOL_ERROR);
    if (this.#streams.size >= this.#settings.maxConcurrentStreams) return this.#resetStream(streamId, ErrorCode.REFUSED_STREAM);
    const stream = new H2Stream(this, streamId, this.#localInitialWindow, this.#peerInitialWindow, endStream ? undefined : check);
    this.#streams.set(streamId, stream);
    if (endStream) stream.remoteEnd();
    this.emit('stream', stream, decoded.headers, endStream);
  }

  /** RST_STREAM for a stream that has no object (refused before it was opened). */
  #resetStream(streamId: number, code: number): void {
    const stream = this.#streams.get(streamId);
    if (stream) stream.close(code);
    else this.writeReset(streamId, code);
  }

  // Control frames

  #onReset(streamId: number, payload: Buffer): void {
    if (streamId === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
    if (payload.length !== 4) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM payload is not 4 bytes');
    if (streamId > this.#lastStreamId) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, `RST_STREAM on idle stream ${streamId}`);
    const now = Date.now();
    const limits = this.#limits;
    this.#resetTokens = Math.min(limits.streamResetBurst, this.#resetTokens + ((now - this.#resetRefilled) / 1000) * limits.streamResetRate);
    this.#resetRefilled = now;
    if (this.#resetTokens < 1) {
      throw new H2ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, `over ${limits.streamResetBurst} stream resets in a burst (refilled at ${limits.streamResetRate}/s)`);
    }
    this.#resetTokens--;
    this.#streams.get(streamId)?.closeWith(payload.readUInt32BE(0));
  }

  #onSettings(flags: number, streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((flags & Flag.ACK) !== 0) {
      if (payload.length !== 0) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS acknowledgement with a payload');
      const acked = this.#unacked.shift();
      if (!acked) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS acknowledgement without SETTINGS');
      if (acked.initialWindowSize !== undefined && acked.initialWindowSize < this.#localInitialWindow) this.#applyLocalWindow(acked.initialWindowSize);
      this.emit('localSettings', acked);
      return;
    }
    if (payload.length % 6 !== 0) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS payload is not a multiple of 6 bytes');
    this.#sawSettings = true;
    for (let i = 0; i < payload.length; i += 6) {
      const id = payload.readUInt16BE(i);
      const value = payload.readUInt32BE(i + 2);
      switch (id) {
        case SettingId.ENABLE_PUSH:
          if (value > 1) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_ENABLE_PUSH is neither 0 nor 1');
          break;
        case SettingId.INITIAL_WINDOW_SIZE: {
          if (value > MAX_WINDOW) throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'SETTINGS_INITIAL_WINDOW_SIZE above 2^31-1');
          const delta = value - this.#peerInitialWindow;
          this.#peerInitialWindow = value;
          for (const stream of this.#streams.values()) {
            if (!stream.adjustSendWindow(delta)) throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'a stream window above 2^31-1');
          }
          break;
        }
        case SettingId.MAX_FRAME_SIZE:
          if (value < DEFAULT_MAX_FRAME_SIZE || value > MAX_FRAME_SIZE_LIMIT) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS_MAX_FRAME_SIZE out of range');
          this.peerMaxFrameSize = value;
          break;
        default:
          // HEADER_TABLE_SIZE: responses never use the dynamic table. MAX_CONCURRENT_STREAMS: we open none.
          // MAX_HEADER_LIST_SIZE is advisory. Unknown settings are ignored.
          break;
      }
    }
    this.#writeAck(frame(FrameType.SETTINGS, Flag.ACK, 0));
    for (const stream of this.#streams.values()) stream.flush();
  }

  #onGoaway(streamId: number, payload: Buffer): void {
    if (streamId !== 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
    if (payload.length < 8) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'GOAWAY payload shorter than 8 bytes');
    this.emit('goaway', payload.readUInt32BE(4), payload.readUInt32BE(0) & 0x7fffffff);
  }

  #onWindowUpdate(streamId: number, payload: Buffer): void {
    if (payload.length !== 4) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE payload is not 4 bytes');
    const increment = payload.readUInt32BE(0) & 0x7fffffff;
    if (streamId === 0) {
      if (increment === 0) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0 on the connection');
      this.connectionSendWindow += increment;
      if (this.connectionSendWindow > MAX_WINDOW) throw new H2ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window above 2^31-1');
      const waiting = [...this.#blocked];
      this.#blocked.clear();
      for (const stream of waiting) stream.flush();
      return;
    }
    const stream = this.#streams.get(streamId);
    if (!stream) {
      if (streamId > this.#lastStreamId) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, `WINDOW_UPDATE on idle stream ${streamId}`);
      return;
    }
    if (increment === 0) return stream.close(ErrorCode.PROTOCOL_ERROR);
    if (!stream.addSendWindow(increment)) stream.close(ErrorCode.FLOW_CONTROL_ERROR);
  }

  // ---- ending ----

  /** A connection error: GOAWAY with its code, 'error', then the connection ends. */
  #fail(error: H2ConnectionError, sendGoaway: boolean): void {
    if (this.#destroyed) return;
    if (sendGoaway) this.#sendGoaway(error.code, error.message);
    this.#ending = true;
    this.#closeStreams(error.code === ErrorCode.NO_ERROR ? ErrorCode.CANCEL : error.code);
    this.emit('error', error);
    this.#endSocket();
  }

  #maybeFinish(): void {
    if (this.#ending && !this.#destroyed && this.#streams.size === 0) this.#endSocket();
  }

  #endSocket(): void {
    const socket = this.#socket;
    if (socket.writableEnded || socket.destroyed) return;
    this.#flush();
    socket.end();
    setTimeout(() => this.destroy(), CLOSE_FLUSH_MS).unref();
  }

  #closeStreams(code: number): void {
    for (const stream of [...this.#streams.values()]) stream.closeWith(code);
    this.#blocked.clear();
  }

  #onSocketClose(): void {
    this.#destroyed = true;
    this.#closeStreams(ErrorCode.CANCEL);
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const callback of waiters) callback();
    this.#emitClose();
  }

  #emitClose(): void {
    if (this.#closeEmitted) return;
    this.#closeEmitted = true;
    this.emit('close');
  }
}

/** The payload of a frame without its padding (and `skip` bytes of priority fields). */
function stripPadding(flags: number, payload: Buffer, skip: number): Buffer {
  let from = 0;
  let to = payload.length;
  if ((flags & Flag.PADDED) !== 0) {
    if (payload.length < 1) throw new H2ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'padded frame without a pad length');
    const pad = payload[0]!;
    from = 1;
    to -= pad;
  }
  from += skip;
  if (to < from) throw new H2ConnectionError(ErrorCode.PROTOCOL_ERROR, 'padding longer than the frame');
  return payload.subarray(from, to);
}

/**
 * Checks a request header list (RFC 9113 §8.2, §8.3): lower-case field names, pseudo-headers known, not
 * repeated and before regular fields, no connection-specific fields, no NUL/CR/LF in values. Returns false
 * when malformed, else the declared content-length (undefined when none or not a number: the request head
 * refuses those).
 */
function checkRequestHeaders(headers: readonly string[]): number | undefined | false {
  let regular = false;
  let seen = 0;
  let contentLength: number | undefined;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    const value = headers[i + 1]!;
    if (FIELD_VALUE_INVALID.test(value)) return false;
    if (name.charCodeAt(0) === 58 /* : */) {
      if (regular || !REQUEST_PSEUDO.has(name)) return false;
      const bit = name === ':method' ? 1 : name === ':scheme' ? 2 : name === ':authority' ? 4 : name === ':path' ? 8 : 16;
      if (seen & bit) return false;
      seen |= bit;
      continue;
    }
    regular = true;
    if (!FIELD_NAME.test(name) || CONNECTION_HEADERS.has(name) || (name === 'te' && value !== 'trailers')) return false;
    if (name === 'content-length' && DIGITS.test(value)) contentLength = Number(value);
  }
  return contentLength;
}

function validTrailers(headers: readonly string[]): boolean {
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i]!;
    if (name.charCodeAt(0) === 58 || !FIELD_NAME.test(name) || FIELD_VALUE_INVALID.test(headers[i + 1]!)) return false;
  }
  return true;
}

const EMPTY = Buffer.alloc(0);
