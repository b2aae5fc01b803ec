import { ErrorCode, WarrenError } from '@warren/core/plugin';

/**
 * FastCGI 1.0 records: the 8-byte header (version, type, request id, content length, padding length), the
 * bodies of the records a web server sends (BEGIN_REQUEST, ABORT_REQUEST, name-value pairs for PARAMS) and an
 * incremental reader for what the application sends back. Nothing here knows about HTTP or sockets.
 */

const FCGI_VERSION_1 = 1;

export const RecordType = {
  BeginRequest: 1,
  AbortRequest: 2,
  EndRequest: 3,
  Params: 4,
  Stdin: 5,
  Stdout: 6,
  Stderr: 7,
  Data: 8,
  GetValues: 9,
  GetValuesResult: 10,
  UnknownType: 11,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** `protocolStatus` of END_REQUEST. */
export const ProtocolStatus = { RequestComplete: 0, CantMpxConn: 1, Overloaded: 2, UnknownRole: 3 } as const;

const ROLE_RESPONDER = 1;
/** BEGIN_REQUEST flag: the application keeps the connection open after the request. */
const FLAG_KEEP_CONN = 1;

const HEADER_BYTES = 8;
/** Largest content of one record (16-bit length). */
const MAX_CONTENT_BYTES = 0xffff;
/** Content per record when splitting a stream: a multiple of 8, so full records need no padding. */
const STREAM_CHUNK_BYTES = 0xfff8;

const PADDING = Buffer.alloc(8);

/** Header of a record with `contentLength` bytes of content, padded to a multiple of 8. */
function recordHeader(type: RecordType, requestId: number, contentLength: number): Buffer {
  if (contentLength > MAX_CONTENT_BYTES) throw new RangeError(`record content of ${contentLength} bytes exceeds ${MAX_CONTENT_BYTES}`);
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header[0] = FCGI_VERSION_1;
  header[1] = type;
  header.writeUInt16BE(requestId, 2);
  header.writeUInt16BE(contentLength, 4);
  header[6] = paddingFor(contentLength);
  header[7] = 0;
  return header;
}

/** Padding bytes after `contentLength` bytes of content. */
function paddingFor(contentLength: number): number {
  return (8 - (contentLength % 8)) % 8;
}

/** One whole record (header, content, padding) in one buffer: for the small records a client sends. */
export function record(type: RecordType, requestId: number, content: Buffer = PADDING.subarray(0, 0)): Buffer {
  const pad = paddingFor(content.length);
  return Buffer.concat([recordHeader(type, requestId, content.length), content, PADDING.subarray(0, pad)]);
}

/**
 * The buffers that carry `data` as records of a stream type (PARAMS, STDIN), split at
 * {@link STREAM_CHUNK_BYTES}. The content is not copied. An empty `data` yields the stream's end record.
 */
export function streamRecords(type: RecordType, requestId: number, data: Buffer): Buffer[] {
  if (data.length === 0) return [recordHeader(type, requestId, 0)];
  const out: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += STREAM_CHUNK_BYTES) {
    const part = data.subarray(offset, offset + STREAM_CHUNK_BYTES);
    out.push(recordHeader(type, requestId, part.length), part);
    const pad = paddingFor(part.length);
    if (pad > 0) out.push(PADDING.subarray(0, pad));
  }
  return out;
}

/** BEGIN_REQUEST for the Responder role. */
export function beginRequest(requestId: number, keepConnection: boolean): Buffer {
  const body = Buffer.alloc(8);
  body.writeUInt16BE(ROLE_RESPONDER, 0);
  body[2] = keepConnection ? FLAG_KEEP_CONN : 0;
  return record(RecordType.BeginRequest, requestId, body);
}

export function abortRequest(requestId: number): Buffer {
  return record(RecordType.AbortRequest, requestId);
}

/** Length prefix of a name or value: one byte below 128, else four bytes with the high bit set. */
function lengthBytes(length: number): number {
  return length < 128 ? 1 : 4;
}

function writeLength(target: Buffer, offset: number, length: number): number {
  if (length < 128) {
    target[offset] = length;
    return offset + 1;
  }
  target.writeUInt32BE((length | 0x80000000) >>> 0, offset);
  return offset + 4;
}

/** Bytes `pairs` take as name-value pairs. */
export function encodedPairsLength(pairs: ReadonlyArray<readonly [string, string]>): number {
  let total = 0;
  for (const [name, value] of pairs) {
    const n = Buffer.byteLength(name, 'latin1');
    const v = Buffer.byteLength(value, 'latin1');
    total += lengthBytes(n) + lengthBytes(v) + n + v;
  }
  return total;
}

/**
 * Name-value pairs (the content of PARAMS). Names and values are written as latin1: header values arrive as
 * byte strings (one character per byte), and meta-variables built from decoded UTF-8 paths are converted to
 * such byte strings by the caller.
 */
export function encodePairs(pairs: ReadonlyArray<readonly [string, string]>): Buffer {
  const out = Buffer.allocUnsafe(encodedPairsLength(pairs));
  let offset = 0;
  for (const [name, value] of pairs) {
    offset = writeLength(out, offset, name.length);
    offset = writeLength(out, offset, value.length);
    offset += out.write(name, offset, 'latin1');
    offset += out.write(value, offset, 'latin1');
  }
  return out;
}

/**
 * A broken FastCGI exchange: a malformed record stream (the application, or whatever listens on its port, does
 * not speak FastCGI), or a response the application got wrong. Answered 502, never retried.
 */
export function protocolError(message: string): WarrenError {
  return new WarrenError(ErrorCode.UpstreamProtocol, `FastCGI: ${message}`);
}

export interface RecordSink {
  onRecord(type: number, requestId: number, content: Buffer): void;
}

/**
 * Reads records from a byte stream. Buffers at most one record (8 + 65535 + 255 bytes); hands each whole
 * record's content to the sink (a view, valid until the next `push`). Throws a {@link protocolError} for a version
 * other than 1.
 */
export class RecordReader {
  readonly #sink: RecordSink;
  #pending: Buffer | undefined;

  constructor(sink: RecordSink) {
    this.#sink = sink;
  }

  /** True while part of a record is buffered (a stream that ends now was cut off). */
  get midRecord(): boolean {
    return this.#pending !== undefined && this.#pending.length > 0;
  }

  push(chunk: Buffer): void {
    let data = this.#pending ? Buffer.concat([this.#pending, chunk]) : chunk;
    this.#pending = undefined;
    let offset = 0;
    while (data.length - offset >= HEADER_BYTES) {
      if (data[offset] !== FCGI_VERSION_1) throw protocolError(`record version ${data[offset]} (expected ${FCGI_VERSION_1})`);
      const type = data[offset + 1]!;
      const requestId = data.readUInt16BE(offset + 2);
      const contentLength = data.readUInt16BE(offset + 4);
      const total = HEADER_BYTES + contentLength + data[offset + 6]!;
      if (data.length - offset < total) break;
      const start = offset + HEADER_BYTES;
      offset += total;
      this.#sink.onRecord(type, requestId, data.subarray(start, start + contentLength));
    }
    if (offset < data.length) {
      // Keep a copy of the partial record only: the rest of `data` may be a large socket chunk.
      data = data.subarray(offset);
      this.#pending = Buffer.from(data);
    }
  }
}

/** END_REQUEST content: the application's exit status and the protocol status. */
export function parseEndRequest(content: Buffer): { appStatus: number; protocolStatus: number } {
  if (content.length < 8) throw protocolError(`END_REQUEST record of ${content.length} bytes (expected 8)`);
  return { appStatus: content.readUInt32BE(0), protocolStatus: content[4]! };
}
