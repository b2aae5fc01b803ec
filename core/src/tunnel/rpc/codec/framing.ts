import { protocolError } from './protocol-error.js';

/**
 * Cap'n Proto standard stream framing (unpacked): u32 LE `segmentCount - 1`, `segmentCount` u32 LE segment sizes
 * in 8-byte words, zero padding to a multiple of 8 bytes, then the segments back to back.
 */

/** Limits a {@link FrameReader} enforces on every message, checked from the header before any body is buffered. */
export interface FrameLimits {
  /** Most segments one message may have. */
  maxSegments: number;
  /** Most bytes of segment data (header excluded) one message may have. */
  maxMessageBytes: number;
}

/** 64 segments, 8 MiB: far above anything the tunnel RPC produces, far below what would hurt the process. */
export const DEFAULT_FRAME_LIMITS: Readonly<FrameLimits> = Object.freeze({
  maxSegments: 64,
  maxMessageBytes: 8 * 1024 * 1024,
});

/** Sizes of a message whose header has been read but whose body is still incomplete. */
interface PendingFrame {
  headerBytes: number;
  segmentBytes: number[];
  totalBytes: number;
}

/**
 * Splits a byte stream into framed messages. Feed it chunks as they arrive ({@link push}); it buffers across
 * chunks, returns every message completed by the chunk (several per chunk are fine) as its list of segments.
 * A header that breaks the limits or describes an empty root segment throws a `TunnelProtocol` WarrenError; after
 * that the reader is poisoned and every later push throws the same error (the stream cannot be resynchronised).
 */
export class FrameReader {
  readonly #limits: FrameLimits;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #pending: PendingFrame | undefined;
  #failure: Error | undefined;

  constructor(limits: FrameLimits = DEFAULT_FRAME_LIMITS) {
    this.#limits = limits;
  }

  /** Bytes received but not yet returned as part of a message. */
  get bufferedBytes(): number {
    return this.#buffered;
  }

  push(chunk: Uint8Array): Buffer[][] {
    if (this.#failure) throw this.#failure;
    if (chunk.length === 0) return [];
    this.#chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length));
    this.#buffered += chunk.length;
    const messages: Buffer[][] = [];
    try {
      for (;;) {
        const pending = this.#pending ?? this.#readHeader();
        if (!pending || this.#buffered < pending.totalBytes) break;
        messages.push(this.#takeMessage(pending));
      }
    } catch (err) {
      this.#failure = err as Error;
      this.#chunks = [];
      this.#buffered = 0;
      throw err;
    }
    return messages;
  }

  #readHeader(): PendingFrame | undefined {
    if (this.#buffered < 4) return undefined;
    const segmentCount = this.#peek(4).readUInt32LE(0) + 1;
    if (segmentCount > this.#limits.maxSegments) {
      throw protocolError(`RPC frame declares ${segmentCount} segments (limit ${this.#limits.maxSegments})`);
    }
    const headerBytes = (4 + 4 * segmentCount + 7) & ~7;
    if (this.#buffered < headerBytes) return undefined;
    const header = this.#peek(headerBytes);
    const segmentBytes: number[] = [];
    let bodyBytes = 0;
    for (let i = 0; i < segmentCount; i++) {
      const bytes = header.readUInt32LE(4 + 4 * i) * 8;
      bodyBytes += bytes;
      if (bodyBytes > this.#limits.maxMessageBytes) {
        throw protocolError(`RPC frame exceeds ${this.#limits.maxMessageBytes} bytes (segment ${i} alone is ${bytes})`);
      }
      segmentBytes.push(bytes);
    }
    if (segmentBytes[0] === 0) throw protocolError('RPC frame has an empty first segment (no root pointer)');
    this.#pending = { headerBytes, segmentBytes, totalBytes: headerBytes + bodyBytes };
    return this.#pending;
  }

  /** First `n` buffered bytes as one buffer (coalesces the chunk list only when the first chunk is too short). */
  #peek(n: number): Buffer {
    if (this.#chunks[0]!.length < n) this.#chunks = [Buffer.concat(this.#chunks, this.#buffered)];
    return this.#chunks[0]!;
  }

  #takeMessage(pending: PendingFrame): Buffer[] {
    const all = this.#peek(pending.totalBytes);
    this.#pending = undefined;
    const rest = all.subarray(pending.totalBytes);
    this.#chunks[0] = rest;
    if (rest.length === 0) this.#chunks.shift();
    this.#buffered -= pending.totalBytes;
    const segments: Buffer[] = [];
    let at = pending.headerBytes;
    for (const bytes of pending.segmentBytes) {
      segments.push(all.subarray(at, at + bytes));
      at += bytes;
    }
    return segments;
  }
}

/** Frames one single-segment message (`segment.length` must be a multiple of 8). */
export function frameSingleSegment(segment: Buffer): Buffer {
  const framed = Buffer.allocUnsafe(8 + segment.length);
  framed.writeUInt32LE(0, 0);
  framed.writeUInt32LE(segment.length >>> 3, 4);
  segment.copy(framed, 8);
  return framed;
}
