import type { Socket } from 'node:net';
import { SocketRelay } from './socket-relay.js';

/**
 * Sits between the edge's TLS socket and the connector's HTTP/2 server session and makes every GOAWAY the
 * edge sends acceptable to nghttp2.
 *
 * In the tunnel the edge is the HTTP/2 client, so the last_stream_id of its GOAWAY names streams the
 * connector opened — and the connector never opens any. When the edge shuts a connection down it nevertheless
 * puts its own next (odd) stream id there; nghttp2 answers that with `PROTOCOL_ERROR "invalid
 * last_stream_id"` and drops the connection with every in-flight request on it, where the edge expects a drain.
 * Rewriting the field to 0 ("none of your streams were processed") is exactly true for a connector and keeps
 * the GOAWAY graceful: no new streams, in-flight streams finish. It also keeps repeated GOAWAYs from looking
 * like an increasing last_stream_id.
 *
 * Only the 4 id bytes of GOAWAY frames change; everything else passes through unchanged and writes go
 * straight to the socket. Frames are tracked across reads by length alone, so parsing is O(frames).
 */

const PREFACE_LENGTH = 24; // "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", sent by the edge as the HTTP/2 client
const FRAME_HEADER = 9;
const TYPE_GOAWAY = 0x7;
const LAST_STREAM_ID_BYTES = 4;

export class GoawayGuard extends SocketRelay {
  /** Bytes of the client preface still to pass. */
  #preface = PREFACE_LENGTH;
  /** A frame header split across reads. */
  readonly #header = Buffer.alloc(FRAME_HEADER);
  #headerFill = 0;
  /** Payload bytes of the current frame still to pass. */
  #payload = 0;
  /** last_stream_id bytes of the current GOAWAY still to rewrite (0 outside GOAWAY frames). */
  #idBytes = 0;
  #originalId = 0;
  /**
   * The last non-zero last_stream_id rewritten, as the edge sent it (for logs and tests), and how many GOAWAYs
   * were rewritten: a count, not a list, so an edge repeating GOAWAY cannot grow this connection's memory.
   */
  lastRewritten: number | undefined;
  rewrittenCount = 0;

  constructor(socket: Socket) {
    super(socket);
  }

  protected override inspect(chunk: Buffer): void {
    let at = 0;
    const end = chunk.length;
    if (this.#preface > 0) {
      const take = Math.min(this.#preface, end);
      this.#preface -= take;
      at = take;
    }
    while (at < end) {
      if (this.#payload > 0) {
        const take = Math.min(this.#payload, end - at);
        if (this.#idBytes > 0) {
          const zero = Math.min(this.#idBytes, take);
          for (let i = 0; i < zero; i++) {
            this.#originalId = this.#originalId * 256 + (chunk[at + i]! & (this.#idBytes - i === LAST_STREAM_ID_BYTES ? 0x7f : 0xff));
            chunk[at + i] = 0;
          }
          this.#idBytes -= zero;
          if (this.#idBytes === 0 && this.#originalId !== 0) {
            this.lastRewritten = this.#originalId;
            this.rewrittenCount++;
          }
        }
        this.#payload -= take;
        at += take;
        continue;
      }
      let header: Buffer;
      let base: number;
      if (this.#headerFill === 0 && end - at >= FRAME_HEADER) {
        header = chunk;
        base = at;
        at += FRAME_HEADER;
      } else {
        const take = Math.min(FRAME_HEADER - this.#headerFill, end - at);
        chunk.copy(this.#header, this.#headerFill, at, at + take);
        this.#headerFill += take;
        at += take;
        if (this.#headerFill < FRAME_HEADER) return;
        this.#headerFill = 0;
        header = this.#header;
        base = 0;
      }
      this.#payload = (header[base]! << 16) | (header[base + 1]! << 8) | header[base + 2]!;
      const isGoaway = header[base + 3] === TYPE_GOAWAY && this.#payload >= LAST_STREAM_ID_BYTES;
      this.#idBytes = isGoaway ? LAST_STREAM_ID_BYTES : 0;
      this.#originalId = 0;
    }
  }
}
