import type { Socket } from 'node:net';
import { SocketRelay } from '../tunnel/socket-relay.js';

/**
 * A pass-through between an edge socket and the simulator's HTTP/2 client. Node's HTTP/2 session writes to
 * a TLS socket natively, so a JavaScript write on the same socket can land in the middle of one of its
 * writes; through this tap every write is queued in order, and `inject` adds whole frames between them.
 */
export class SocketTap extends SocketRelay {
  constructor(socket: Socket) {
    super(socket);
  }

  /** Queues bytes for the peer after everything the session wrote so far. */
  inject(bytes: Buffer): void {
    if (!this.destroyed && !this.writableEnded) this.write(bytes);
  }
}
