import type { ExecutionContext } from 'ava';
import { once } from 'node:events';
import { createServer, connect, type AddressInfo, type Socket } from 'node:net';
import { CLIENT_PREFACE, frame } from '../../../src/tunnel/h2/frames.js';
import { encodeHeaderBlock } from '../../../src/tunnel/h2/hpack.js';
import { H2ServerSession, type H2SessionOptions } from '../../../src/tunnel/h2/session.js';

/**
 * An H2ServerSession on one end of a loopback TCP connection and a byte-level HTTP/2 client on the other,
 * for tests that need frames no well-behaved client sends.
 */

export interface ReadFrame {
  readonly type: number;
  readonly flags: number;
  readonly streamId: number;
  readonly payload: Buffer;
}

export const DEFAULT_TEST_OPTIONS: H2SessionOptions = {
  settings: { headerTableSize: 4096, maxConcurrentStreams: 100, initialWindowSize: 65_535, maxFrameSize: 16_384, maxHeaderListSize: 65_536 },
  connectionWindow: 65_535,
  limits: { maxHeaderPairs: 128, maxQueuedBytes: 16 * 1024 * 1024, streamResetBurst: 1000, streamResetRate: 100 },
};

export class RawPeer {
  readonly socket: Socket;
  readonly frames: ReadFrame[] = [];
  #buffer = Buffer.alloc(0);
  #waiters: Array<() => void> = [];
  closed = false;

  constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#buffer = Buffer.concat([this.#buffer, chunk]);
      while (this.#buffer.length >= 9) {
        const length = this.#buffer.readUIntBE(0, 3);
        if (this.#buffer.length < 9 + length) break;
        this.frames.push({
          type: this.#buffer[3]!,
          flags: this.#buffer[4]!,
          streamId: this.#buffer.readUInt32BE(5) & 0x7fffffff,
          payload: this.#buffer.subarray(9, 9 + length),
        });
        this.#buffer = this.#buffer.subarray(9 + length);
      }
      this.#wake();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.#wake();
    });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }

  send(...chunks: Buffer[]): void {
    this.socket.write(Buffer.concat(chunks));
  }

  /** Sends `bytes` in pieces of `size`, letting the event loop turn between them so reads split there. */
  async sendSplit(bytes: Buffer, size: number): Promise<void> {
    for (let i = 0; i < bytes.length; i += size) {
      this.socket.write(bytes.subarray(i, i + size));
      await new Promise((resolve) => setImmediate(resolve));
    }
  }

  /** Preface + empty SETTINGS + ACK of the server's SETTINGS. */
  handshake(settings: Buffer = Buffer.alloc(0)): void {
    this.send(CLIENT_PREFACE, frame(0x4, 0, 0, settings), frame(0x4, 0x1, 0));
  }

  /** Resolves with the first frame read that matches, or rejects after `timeoutMs`. */
  async waitFor(match: (f: ReadFrame) => boolean, label: string, timeoutMs = 3000): Promise<ReadFrame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.frames.find(match);
      if (found) return found;
      if (this.closed) throw new Error(`connection closed while waiting for ${label}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${label}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.#waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The GOAWAY the session sent: [last_stream_id, error code]. */
  async goaway(timeoutMs = 3000): Promise<[number, number]> {
    const f = await this.waitFor((x) => x.type === 0x7, 'GOAWAY', timeoutMs);
    return [f.payload.readUInt32BE(0), f.payload.readUInt32BE(4)];
  }

  async reset(streamId: number, timeoutMs = 3000): Promise<number> {
    const f = await this.waitFor((x) => x.type === 0x3 && x.streamId === streamId, `RST_STREAM on ${streamId}`, timeoutMs);
    return f.payload.readUInt32BE(0);
  }

  /** PING round trip: proves the connection is still served. */
  async ping(tag: number): Promise<void> {
    const data = Buffer.alloc(8);
    data.writeUInt32BE(tag, 4);
    this.send(frame(0x6, 0, 0, data));
    await this.waitFor((f) => f.type === 0x6 && f.flags === 0x1 && f.payload.equals(data), `PING ack ${tag}`);
  }
}

export function requestHeaders(path = '/', extra: string[] = []): Buffer {
  return encodeHeaderBlock([':method', 'POST', ':scheme', 'https', ':authority', 'app.example.com', ':path', path, ...extra]);
}

export interface RawPair {
  readonly session: H2ServerSession;
  /** The session's end of the connection. */
  readonly socket: Socket;
  readonly peer: RawPeer;
  readonly errors: Error[];
}

export async function rawPair(t: ExecutionContext, options: H2SessionOptions = DEFAULT_TEST_OPTIONS): Promise<RawPair> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1');
  const [socket] = await accepted;
  server.close();
  const session = new H2ServerSession(socket, options);
  const errors: Error[] = [];
  session.on('error', (err: Error) => errors.push(err));
  t.teardown(() => {
    session.destroy();
    client.destroy();
  });
  return { session, socket, peer: new RawPeer(client), errors };
}
