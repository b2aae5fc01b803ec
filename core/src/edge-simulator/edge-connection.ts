import { EventEmitter } from 'node:events';
import { connect as h2connect, constants as h2, type ClientHttp2Session, type ClientHttp2Stream, type OutgoingHttpHeaders } from 'node:http2';
import type { TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { serveRegistration, type RegistrationHandler, type RegistrationServerSession, type RpcFaults } from '../tunnel/rpc/index.js';
import type { RegistrationRequest, RegistrationResult } from '../tunnel/rpc/index.js';
import { bytesToUuid } from '../tunnel/credentials.js';
import { HEADER_CONNECTION_UPGRADE, UPGRADE_CONTROL_STREAM } from '../tunnel/protocol.js';
import { SocketTap } from './socket-tap.js';

/**
 * The edge's side of one connector connection: the simulator accepted the TLS socket and
 * is the HTTP/2 *client* on it. It opens the control stream first, serves the registration RPC on it, and
 * afterwards originates request streams. Everything the connector sent is recorded here for tests.
 */
export class SimulatedConnection extends EventEmitter {
  /** Sequence number within the simulator, from 1. */
  readonly id: number;
  /** Index of the edge listener (address) that accepted it. */
  readonly listener: number;
  readonly remoteAddress: string;
  readonly session: ClientHttp2Session;
  readonly acceptedAt = Date.now();
  /** The control stream, once opened. */
  controlStream: ClientHttp2Stream | undefined;
  /** `:status` the connector answered the control stream with. */
  controlStatus: number | undefined;
  /** The RPC server session on the control stream: its `events` log holds every decoded RPC message. */
  rpc: RegistrationServerSession | undefined;
  /** The registration request as received (auth, tunnel id, connIndex, options). */
  registration: RegistrationRequest | undefined;
  /** What the simulator answered. */
  result: RegistrationResult | undefined;
  /** When registration succeeded (ms epoch). */
  registeredAt: number | undefined;
  /** Local configurations pushed with updateLocalConfiguration, in order. */
  readonly localConfigs: Buffer[] = [];
  /** True after the connector called unregisterConnection. */
  unregistered = false;
  /** True once the connector ended its side of the control stream. */
  controlEnded = false;
  /** True once the connector sent GOAWAY. */
  goawayReceived = false;
  /** Error code of the connector's GOAWAY (0 = NO_ERROR; 1 = PROTOCOL_ERROR means it refused something). */
  goawayCode: number | undefined;
  /** True once the simulator sent GOAWAY (fault). */
  goawaySent = false;
  /** True once the socket closed. */
  closed = false;
  /** Request streams opened on this connection (control stream excluded). */
  streamsOpened = 0;
  /** Request streams currently open. */
  activeStreams = 0;
  readonly closedPromise: Promise<void>;
  /** The tap raw frames are written through; undefined unless the simulator runs with `rawFrames`. */
  readonly #tap: SocketTap | undefined;

  constructor(
    id: number,
    listener: number,
    socket: TLSSocket,
    private readonly options: {
      handler: (connection: SimulatedConnection) => RegistrationHandler;
      rpcFaults?: RpcFaults | undefined;
      openControlStream: boolean;
      rawFrames?: boolean | undefined;
      logger?: Logger | undefined;
      onProtocolViolation: (message: string) => void;
    },
  ) {
    super();
    this.id = id;
    this.listener = listener;
    this.remoteAddress = `${socket.remoteAddress}:${socket.remotePort}`;
    this.#tap = options.rawFrames ? new SocketTap(socket) : undefined;
    socket.on('error', () => {
      // Surfaced through the session's close.
    });
    this.session = h2connect('https://h2.cftunnel.com', {
      createConnection: () => this.#tap ?? socket,
      settings: { initialWindowSize: 4 * 1024 * 1024, maxHeaderListSize: 1024 * 1024 },
      maxSessionMemory: 256,
      maxHeaderListPairs: 4096,
    });
    this.session.on('error', (err: Error) => this.options.logger?.debug({ err: err.message, connection: id }, 'edge-side session error'));
    this.session.on('goaway', (code: number) => {
      this.goawayReceived = true;
      this.goawayCode ??= code;
      this.emit('change');
    });
    this.session.on('connect', () => {
      try {
        this.session.setLocalWindowSize(8 * 1024 * 1024);
      } catch {
        // best effort
      }
    });
    this.closedPromise = new Promise((resolve) =>
      this.session.once('close', () => {
        this.closed = true;
        this.emit('change');
        resolve();
      }),
    );
    if (options.openControlStream) this.#openControlStream();
  }

  /** Registered and not unregistered, draining or closed: eligible for new eyeball requests. */
  get routable(): boolean {
    return (
      this.result?.ok === true &&
      !this.unregistered &&
      !this.controlEnded &&
      !this.goawayReceived &&
      !this.goawaySent &&
      !this.closed &&
      !this.session.closed &&
      !this.session.destroyed
    );
  }

  /** The connIndex the connector registered with (undefined before registration). */
  get connIndex(): number | undefined {
    return this.registration?.connIndex;
  }

  /** The tunnel (UUID) the connector registered for (undefined before registration or for a malformed id). */
  get tunnelId(): string | undefined {
    const id = this.registration?.tunnelId;
    return id?.length === 16 ? bytesToUuid(id) : undefined;
  }

  #openControlStream(): void {
    const stream = this.session.request(
      { ':method': 'GET', ':path': '/', ':scheme': 'https', ':authority': 'h2.cftunnel.com', [HEADER_CONNECTION_UPGRADE]: UPGRADE_CONTROL_STREAM },
      { endStream: false },
    );
    this.controlStream = stream;
    stream.on('error', () => {
      // A reset control stream is recorded through `controlEnded`.
    });
    stream.once('response', (headers) => {
      this.controlStatus = Number(headers[':status']);
      if (this.controlStatus !== 200) this.options.onProtocolViolation(`control stream answered ${this.controlStatus}, expected 200`);
    });
    stream.once('close', () => {
      this.controlEnded = true;
      this.emit('change');
    });
    stream.once('end', () => {
      this.controlEnded = true;
      this.emit('change');
    });
    this.rpc = serveRegistration(stream, this.options.handler(this), {
      ...(this.options.rpcFaults ? { faults: this.options.rpcFaults } : {}),
      ...(this.options.logger ? { logger: this.options.logger } : {}),
    });
  }

  /** Opens a request stream with the given HTTP/2 headers (an object, or a raw list of names and values in order). */
  request(headers: OutgoingHttpHeaders | readonly string[], endStream: boolean): ClientHttp2Stream {
    const stream = this.session.request(headers, { endStream });
    this.streamsOpened++;
    this.activeStreams++;
    this.emit('change');
    stream.once('close', () => {
      this.activeStreams--;
      this.emit('change');
    });
    return stream;
  }

  /** Resolves true when the connector answers a PING within `timeoutMs`, false otherwise (or when closed). */
  answersPing(timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      if (this.session.closed || this.session.destroyed) return resolve(false);
      const timer = setTimeout(() => resolve(false), timeoutMs);
      try {
        this.session.ping((err) => {
          clearTimeout(timer);
          resolve(!err);
        });
      } catch {
        clearTimeout(timer);
        resolve(false);
      }
    });
  }

  /** Closes the TCP/TLS connection abruptly (fault). */
  drop(): void {
    this.session.destroy();
  }

  /** Sends GOAWAY (NO_ERROR) and stops opening streams (fault / edge drain). */
  goAway(): void {
    if (!this.session.closed && !this.session.destroyed) this.session.goaway(h2.NGHTTP2_NO_ERROR);
    this.goawaySent = true;
    this.emit('change');
  }

  /**
   * Sends GOAWAY the way the edge's HTTP/2 client does when it shuts a connection down (fault / a draining edge): a
   * raw frame, NO_ERROR, whose last_stream_id is the client's own next stream id — odd, which RFC 9113 does
   * not expect from a client and which Node's client API refuses to send, hence written on the socket
   * between frames. Open streams continue; no new ones are routed here. Returns the id sent.
   */
  goAwayLikeGoClient(): number {
    const next = this.session.state.nextStreamID ?? 1;
    const lastStreamId = next % 2 === 1 ? next : next + 1;
    const payload = Buffer.alloc(8);
    payload.writeUInt32BE(lastStreamId & 0x7fffffff, 0);
    payload.writeUInt32BE(h2.NGHTTP2_NO_ERROR, 4);
    this.writeRawFrame(0x7, 0, 0, payload);
    this.goawaySent = true;
    this.emit('change');
    return lastStreamId;
  }

  /**
   * Writes one raw HTTP/2 frame to the connector, between the frames of the HTTP/2 client (needs the
   * simulator's `rawFrames` option: the client's native writes and a raw write must not interleave).
   */
  writeRawFrame(type: number, flags: number, streamId: number, payload: Buffer): void {
    if (!this.#tap) throw new Error('edge simulator: raw frames need the simulator option rawFrames: true');
    const header = Buffer.alloc(9);
    header.writeUIntBE(payload.length, 0, 3);
    header[3] = type;
    header[4] = flags;
    header.writeUInt32BE(streamId & 0x7fffffff, 5);
    this.#tap.inject(Buffer.concat([header, payload]));
  }

  /** Resets the control stream (fault). */
  resetControlStream(): void {
    this.controlStream?.close(h2.NGHTTP2_CANCEL);
  }
}
