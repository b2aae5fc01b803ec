import { Duplex } from 'node:stream';
import type { Socket } from 'node:net';

type WriteCallback = (error?: Error | null) => void;

/**
 * A Duplex that relays a socket byte for byte, for placing JavaScript between a socket and an HTTP/2
 * session (which otherwise reads and writes the socket natively). Subclasses may look at, and rewrite in
 * place, every chunk read before the session sees it (`inspect`). Backpressure and ends pass both ways.
 */
export class SocketRelay extends Duplex {
  protected readonly socket: Socket;

  constructor(socket: Socket) {
    super({ allowHalfOpen: true });
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.inspect(chunk);
      if (!this.push(chunk)) socket.pause();
    });
    socket.on('end', () => this.push(null));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => {
      if (!this.destroyed) this.destroy();
    });
  }

  /** Called with every chunk read from the socket, before it is passed on; may change bytes in place. */
  protected inspect(_chunk: Buffer): void {}

  override _read(): void {
    this.socket.resume();
  }

  /**
   * Writes go straight to the socket (every response byte passes here, so the relay adds no writable
   * buffering of its own); `end()` still runs through `_final`, after every write was handed over.
   */
  override write(chunk: unknown, encoding?: BufferEncoding | WriteCallback, callback?: WriteCallback): boolean {
    if (typeof encoding === 'function') return this.socket.write(chunk as Buffer, encoding);
    return encoding === undefined ? this.socket.write(chunk as Buffer, callback) : this.socket.write(chunk as Buffer, encoding, callback);
  }

  override cork(): void {
    this.socket.cork();
  }

  override uncork(): void {
    this.socket.uncork();
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.socket.end(callback);
  }

  override _destroy(error: Error | null, callback: (error: Error | null) => void): void {
    this.socket.destroy(error ?? undefined);
    callback(error);
  }
}
