import type { Socket } from 'node:net';
import { Duplex } from 'node:stream';

/** The first bytes of the HTTP/2 connection preface (`PRI * HTTP/2.0…`); no HTTP/1.1 method starts so. */
const H2_PREFACE_START = Buffer.from('PRI');

/** Where {@link sniffH2c} hands a cleartext connection once its first bytes say which protocol it speaks. */
export interface CleartextServers {
  /** HTTP/2 with prior knowledge: a Duplex that replays the sniffed bytes, then the socket's data. */
  h2c(stream: Duplex): void;
  /** HTTP/1.1: the socket itself, sniffed bytes put back; it is resumed right after this returns. */
  http1(socket: Socket): void;
}

/**
 * Reads the first chunk of a cleartext connection and passes the connection to HTTP/2 (h2c, prior knowledge)
 * when it starts like the HTTP/2 preface, else to HTTP/1.1. Lets one plain port serve both. Only the first
 * chunk is looked at; a preface split after fewer than three bytes goes to HTTP/1.1 (which answers 400).
 */
export function sniffH2c(socket: Socket, servers: CleartextServers): void {
  socket.once('data', (first: Buffer) => {
    socket.pause();
    if (first.subarray(0, 3).equals(H2_PREFACE_START)) {
      servers.h2c(replaying(socket, first));
    } else {
      socket.unshift(first);
      servers.http1(socket);
      socket.resume();
    }
  });
}

/**
 * A Duplex over `socket` that yields `first` (bytes already read) before the rest of the socket's data, with
 * the socket's backpressure, end, errors and close, and its `remoteAddress`/`remotePort`.
 */
function replaying(socket: Socket, first: Buffer): Duplex {
  const duplex = new Duplex({
    read() {
      socket.resume();
    },
    write(chunk, encoding, callback) {
      socket.write(chunk, encoding, callback);
    },
    final(callback) {
      socket.end(callback);
    },
    destroy(err, callback) {
      socket.destroy(err ?? undefined);
      callback(err);
    },
  });
  duplex.push(first);
  socket.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.once('end', () => duplex.push(null));
  socket.on('error', (err) => duplex.destroy(err));
  socket.once('close', () => duplex.destroy());
  Object.assign(duplex, { remoteAddress: socket.remoteAddress, remotePort: socket.remotePort });
  return duplex;
}
