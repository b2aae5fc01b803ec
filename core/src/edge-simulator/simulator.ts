import { randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { EventEmitter, on, once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { constants as h2, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer, type TLSSocket } from 'node:tls';
import type { Logger } from 'pino';
import { createTestCa, issueCert, type TestCa } from './certs.js';
import { bytesToUuid, encodeCredentialsJson, encodeTunnelToken, uuidToBytes } from '../tunnel/credentials.js';
import { EDGE_SERVER_NAME, HEADER_CONNECTION_UPGRADE, HEADER_PROXY_SRC, UPGRADE_UPDATE_CONFIGURATION, UPGRADE_WEBSOCKET } from '../tunnel/protocol.js';
import type { RegistrationHandler, RegistrationRequest, RegistrationResult, RpcFaults } from '../tunnel/rpc/index.js';
import { SimulatedConnection } from './edge-connection.js';
import { fixedCertificate, startEyeball, type Eyeball, type EyeballTls } from './eyeball.js';
import { TunnelEntrances, type TunnelEntrance, type TunnelEntrancesOptions } from './tunnel-entrances.js';
import { decodeTunnelResponse, type TunnelResponseHead } from './tunnel-response.js';

/** Credentials the simulated edge accepts. */
export interface SimulatorCredentials {
  readonly accountTag: string;
  readonly tunnelSecret: Buffer;
  readonly tunnelId: string;
}

export interface EdgeSimulatorOptions {
  /** Credentials the edge accepts (default: a random account, tunnel and 32-byte secret). */
  readonly credentials?: SimulatorCredentials;
  /** Loopback address to listen on (default 127.0.0.1). */
  readonly host?: string;
  /** Number of edge listeners, each a distinct "edge server" with its own address (default 1). */
  readonly edgeListeners?: number;
  /** Port of the first edge listener (default 0: any free port). */
  readonly edgePort?: number;
  /**
   * The eyeball entrance (HTTP/1.1 + h2c on one port; TLS h2/HTTP/1.1 on a second port with `tls`); `false` for
   * none. `tls: true` serves the simulator's own `localhost` certificate on a free port; an {@link EyeballTls}
   * picks the port and the certificate per server name, as the edge holds each zone's certificate.
   */
  readonly eyeball?: { readonly port?: number; readonly host?: string; readonly tls?: boolean | EyeballTls } | false;
  /**
   * An entrance of its own for each tunnel that registers (see {@link TunnelEntrancesOptions}), next to `eyeball`
   * (which sends to every tunnel's connections): what a client resolving `<tunnel-id>.cfargotunnel.com` reaches.
   * Default none.
   */
  readonly tunnelEntrances?: TunnelEntrancesOptions;
  /**
   * Route each edge socket through a JavaScript tap so faults can write raw HTTP/2 frames the client API
   * cannot produce (`goAwayLikeGoClient`, `SimulatedConnection.writeRawFrame`). Costs some throughput;
   * default false.
   */
  readonly rawFrames?: boolean;
  /** Edge location reported at registration (default "SIM"). */
  readonly locationName?: string;
  /** Answer registrations with `tunnelIsRemotelyManaged` (default false). */
  readonly tunnelIsRemotelyManaged?: boolean;
  /**
   * Decides which tunnels the edge accepts, instead of exactly `credentials` — e.g. the live tunnels of a fake
   * Cloudflare API, so that a deleted tunnel is refused and its replacement accepted.
   */
  readonly authorize?: (credentials: SimulatorCredentials) => boolean;
  /**
   * How long a connection holding a slot gets to answer a PING when the same slot registers again: no answer
   * releases its registration (default 1000 ms); an answer makes the new one `EDUPCONN`.
   */
  readonly livenessTimeoutMs?: number;
  /** How long an eyeball request waits for a registered connection before 530 (default 5000 ms). */
  readonly eyeballWaitMs?: number;
  readonly logger?: Logger;
}

/**
 * Fault knobs. Fields apply to what happens next (new connections, registrations, eyeball requests);
 * methods act at once on live connections, selected by connIndex (default: every connection).
 */
export class EdgeFaults {
  /** Answer registrations with this error instead of checking credentials; `times` limits it (default: always). */
  refuseRegistration: { cause: string; shouldRetry: boolean; retryAfterMs?: number; times?: number } | undefined;
  /** Answer `EDUPCONN` on these listener indexes (0-based) regardless of other connections. */
  duplicateOnListeners: readonly number[] = [];
  /** RPC misbehaviour for new control streams (silence, delays, malformed returns, exceptions). */
  rpc: RpcFaults | undefined;
  /** Open no control stream on new connections (a silent edge). */
  noControlStream = false;
  /** Delay every eyeball request this long before its tunnel stream opens. */
  streamDelayMs = 0;
  /** Reset every tunnel stream (RST_STREAM CANCEL) as soon as its response head arrives. */
  resetStreamsAfterHead = false;

  constructor(private readonly sim: EdgeSimulator) {}

  #select(connIndex?: number): SimulatedConnection[] {
    return this.sim.connections.filter((c) => !c.closed && (connIndex === undefined || c.connIndex === connIndex));
  }

  /** Closes the TCP/TLS connection(s) abruptly. Returns how many were dropped. */
  dropConnection(connIndex?: number): number {
    const selected = this.#select(connIndex);
    for (const c of selected) c.drop();
    return selected.length;
  }

  /** Sends GOAWAY on the connection(s). */
  goAway(connIndex?: number): number {
    const selected = this.#select(connIndex);
    for (const c of selected) c.goAway();
    return selected.length;
  }

  /** Sends GOAWAY as the edge does when it shuts a connection down: raw frame, odd last_stream_id (see SimulatedConnection). */
  goAwayLikeGoClient(connIndex?: number): number {
    const selected = this.#select(connIndex);
    for (const c of selected) c.goAwayLikeGoClient();
    return selected.length;
  }

  /** Resets the control stream(s). */
  resetControlStream(connIndex?: number): number {
    const selected = this.#select(connIndex);
    for (const c of selected) c.resetControlStream();
    return selected.length;
  }
}

/** A request sent straight into the tunnel (no eyeball), for tests that need exact control over the stream. */
export interface TunnelRequestOptions {
  readonly method?: string;
  readonly path?: string;
  readonly authority?: string;
  /** Extra request headers, sent as given (names must be lower-case for HTTP/2). */
  readonly headers?: ReadonlyArray<readonly [string, string]>;
  readonly body?: string | Buffer;
  /** Stream type to mark with the special headers (default `http`). */
  readonly kind?: 'http' | 'websocket' | 'configuration' | 'tcp';
  /** Send on the registered connection with this connIndex (default: round robin). */
  readonly connIndex?: number;
  /** Send only on a connection registered for this tunnel (default: any tunnel's). */
  readonly tunnelId?: string;
  readonly timeoutMs?: number;
}

export interface TunnelReply extends TunnelResponseHead {
  readonly body: Buffer;
  readonly trailers: IncomingHttpHeaders | undefined;
  /** RST_STREAM code when the connector reset the stream instead of ending it. */
  readonly rstCode: number;
}

/**
 * Warren's stand-in for Cloudflare's edge, for tests, benchmarks and local mode:
 * TLS listeners with a test CA and an `h2.cftunnel.com` leaf; per accepted socket an HTTP/2 client that opens
 * the control stream first and serves the registration RPC; credential checks (a wrong account, tunnel or
 * secret is refused as `Unauthorized`); `EDUPCONN` for a second registration of the same connector slot on
 * one listener while the first still answers (a dead holder is released); fault knobs; and an eyeball entrance that turns ordinary client requests (WebSocket
 * upgrades included) into tunnel streams spread across registered connections — and, with `tunnelEntrances`, one
 * entrance per tunnel that sends only to that tunnel's connections (event `entrance` when one opens).
 */
export class EdgeSimulator extends EventEmitter {
  readonly credentials: SimulatorCredentials;
  readonly ca: TestCa;
  readonly caPem: string;
  readonly caFile: string;
  /** The tunnel token for `credentials` (give it to the connector as TUNNEL_TOKEN). */
  readonly token: string;
  /** A file holding `token`. */
  readonly tokenFile: string;
  /** A credentials-file JSON for `credentials`. */
  readonly credentialsFile: string;
  readonly faults: EdgeFaults;
  /** Every connection accepted so far, closed ones included, in order. */
  readonly connections: SimulatedConnection[] = [];
  /** Protocol violations the simulator saw from the connector (tests assert this stays empty). */
  readonly violations: string[] = [];
  readonly #options: EdgeSimulatorOptions;
  readonly #servers: TlsServer[] = [];
  #edgeAddresses: string[] = [];
  #eyeball: Eyeball | undefined;
  readonly #entrances: TunnelEntrances | undefined;
  #nextId = 1;
  #roundRobin = 0;
  #closing = false;

  constructor(options: EdgeSimulatorOptions = {}) {
    super();
    this.setMaxListeners(0);
    this.#options = options;
    this.credentials = options.credentials ?? { accountTag: randomBytes(16).toString('hex'), tunnelSecret: randomBytes(32), tunnelId: randomUUID() };
    this.ca = createTestCa('Warren Edge Simulator CA');
    this.caPem = this.ca.certPem;
    this.caFile = this.ca.certFile;
    this.token = encodeTunnelToken(this.credentials);
    this.tokenFile = join(this.ca.dir, 'tunnel-token');
    writeFileSync(this.tokenFile, this.token, { mode: 0o600 });
    this.credentialsFile = join(this.ca.dir, 'tunnel-credentials.json');
    writeFileSync(this.credentialsFile, encodeCredentialsJson(this.credentials), { mode: 0o600 });
    this.faults = new EdgeFaults(this);
    this.#entrances =
      options.tunnelEntrances &&
      new TunnelEntrances(this, this.ca, options.tunnelEntrances, {
        waitMs: options.eyeballWaitMs ?? 5000,
        onOpen: (entrance) => this.emit('entrance', entrance),
        logger: options.logger,
      });
  }

  /** `host:port` of every edge listener. */
  get edgeAddresses(): readonly string[] {
    return this.#edgeAddresses;
  }

  /** `host:port` of the first edge listener. */
  get edgeAddress(): string {
    return this.#edgeAddresses[0]!;
  }

  /** `http://host:port` of the eyeball entrance (HTTP/1.1 and h2c). */
  get eyeballUrl(): string {
    if (!this.#eyeball) throw new Error('the eyeball entrance is disabled');
    return this.#eyeball.url;
  }

  /** `https://host:port` of the TLS eyeball entrance (when started with `eyeball.tls`). */
  get eyeballTlsUrl(): string | undefined {
    return this.#eyeball?.tlsUrl;
  }

  /** Connections currently registered and accepting new requests (only those of `tunnelId` when given). */
  registeredConnections(tunnelId?: string): SimulatedConnection[] {
    return this.connections.filter((c) => c.routable && (tunnelId === undefined || c.tunnelId === tunnelId));
  }

  /** The entrance of a tunnel (option `tunnelEntrances`), once its first connection registered and it opened. */
  entranceOf(tunnelId: string): TunnelEntrance | undefined {
    return this.#entrances?.of(tunnelId);
  }

  /** Every open tunnel entrance, in the order they opened. */
  get entrances(): TunnelEntrance[] {
    return this.#entrances?.list() ?? [];
  }

  /** Resolves with the entrance of `tunnelId` once it is open, rejecting after `timeoutMs`. */
  async waitForEntrance(tunnelId: string, timeoutMs = 10_000): Promise<TunnelEntrance> {
    if (!this.#entrances) throw new Error('edge simulator: started without tunnelEntrances');
    const open = this.entranceOf(tunnelId);
    if (open) return open;
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), timeoutMs);
    try {
      for await (const [entrance] of on(this, 'entrance', { signal: ac.signal }) as AsyncIterable<[TunnelEntrance]>) {
        if (entrance.tunnelId === tunnelId) return entrance;
      }
    } catch (err) {
      if (!ac.signal.aborted) throw err;
    } finally {
      clearTimeout(timer);
    }
    throw new Error(`edge simulator: timed out after ${timeoutMs} ms waiting for the entrance of tunnel ${tunnelId}`);
  }

  /** Why tunnels got no entrance (every host of the pool taken, a port in use), in order. */
  get entranceFailures(): readonly string[] {
    return this.#entrances?.failures ?? [];
  }

  /** Listens; when any listener cannot (a port in use), closes the ones already open and rejects. */
  async start(): Promise<this> {
    try {
      await this.#listen();
    } catch (err) {
      await this.close();
      throw err;
    }
    return this;
  }

  async #listen(): Promise<void> {
    const leaf = issueCert(this.ca, { dns: [EDGE_SERVER_NAME, 'quic.cftunnel.com', 'probe.cftunnel.com'] });
    const host = this.#options.host ?? '127.0.0.1';
    const count = this.#options.edgeListeners ?? 1;
    for (let i = 0; i < count; i++) {
      const server = createTlsServer({ cert: leaf.certPem, key: leaf.keyPem, minVersion: 'TLSv1.2' }, (socket) => this.#accept(i, socket));
      server.on('tlsClientError', () => {
        // A connector that rejects our certificate or speaks garbage: nothing to do on the edge side.
      });
      server.listen(i === 0 ? (this.#options.edgePort ?? 0) : 0, host);
      await once(server, 'listening');
      this.#servers.push(server);
      const port = (server.address() as AddressInfo).port;
      this.#edgeAddresses.push(`${host.includes(':') ? `[${host}]` : host}:${port}`);
    }
    if (this.#options.eyeball !== false) {
      const eyeball = this.#options.eyeball ?? {};
      this.#eyeball = await startEyeball(this, {
        host: eyeball.host ?? host,
        port: eyeball.port ?? 0,
        tls: eyeball.tls === true ? { certificate: fixedCertificate(issueCert(this.ca, { dns: ['localhost'], ips: ['127.0.0.1', '::1'] })) } : eyeball.tls || undefined,
        waitMs: this.#options.eyeballWaitMs ?? 5000,
      });
    }
  }

  #accept(listener: number, socket: TLSSocket): void {
    if (this.#closing) return void socket.destroy();
    socket.setNoDelay(true);
    const id = this.#nextId++;
    const connection = new SimulatedConnection(id, listener, socket, {
      handler: (c) => this.#registrationHandler(c),
      rpcFaults: this.faults.rpc,
      openControlStream: !this.faults.noControlStream,
      rawFrames: this.#options.rawFrames,
      logger: this.#options.logger,
      onProtocolViolation: (message) => this.recordViolation(`connection ${id} (listener ${listener}): ${message}`),
    });
    this.connections.push(connection);
    connection.on('change', () => this.emit('change', connection));
    this.emit('connection', connection);
  }

  /** Records a protocol violation by the connector. */
  recordViolation(message: string): void {
    this.violations.push(message);
    this.#options.logger?.warn({ violation: message }, 'edge simulator: connector violated the protocol');
    this.emit('violation', message);
  }

  #registrationHandler(connection: SimulatedConnection): RegistrationHandler {
    return {
      registerConnection: async (req) => {
        const result = await this.#decideRegistration(connection, req);
        connection.registration = req;
        connection.result = result;
        if (result.ok) connection.registeredAt = Date.now();
        if (result.ok && connection.tunnelId) void this.#entrances?.open(connection.tunnelId);
        connection.emit('change');
        this.emit(result.ok ? 'registered' : 'refused', connection);
        return result;
      },
      unregisterConnection: () => {
        connection.unregistered = true;
        connection.emit('change');
        this.emit('unregistered', connection);
      },
      updateLocalConfiguration: (config) => {
        connection.localConfigs.push(Buffer.from(config));
        connection.emit('change');
        this.emit('local-config', connection);
      },
    };
  }

  async #decideRegistration(connection: SimulatedConnection, req: RegistrationRequest): Promise<RegistrationResult> {
    const refusal = this.faults.refuseRegistration;
    if (refusal && (refusal.times === undefined || refusal.times > 0)) {
      if (refusal.times !== undefined) refusal.times--;
      return { ok: false, error: { cause: refusal.cause, shouldRetry: refusal.shouldRetry, retryAfterMs: refusal.retryAfterMs ?? 0 } };
    }
    if (!this.#credentialsMatch(req)) {
      return { ok: false, error: { cause: 'Unauthorized: tunnel credentials (account tag, tunnel id or secret) are not valid', shouldRetry: false, retryAfterMs: 0 } };
    }
    if (this.faults.duplicateOnListeners.includes(connection.listener)) return { ok: false, error: { cause: 'EDUPCONN', shouldRetry: true, retryAfterMs: 0 } };
    // The slot is taken while another connection on this listener holds it and still answers; a holder that no
    // longer answers a PING in time is dead and loses its registration, as at an edge that notices a lost peer.
    const holders = this.connections.filter(
      (c) =>
        c !== connection &&
        c.listener === connection.listener &&
        c.routable &&
        c.registration?.connIndex === req.connIndex &&
        c.registration.options.client.clientId.equals(req.options.client.clientId),
    );
    for (const holder of holders) {
      if (await holder.answersPing(this.#options.livenessTimeoutMs ?? 1000)) return { ok: false, error: { cause: 'EDUPCONN', shouldRetry: true, retryAfterMs: 0 } };
      this.#options.logger?.info({ connection: holder.id, connIndex: req.connIndex }, 'edge simulator: releasing the registration of a connection that no longer answers');
      holder.drop();
    }
    return {
      ok: true,
      details: {
        uuid: uuidToBytes(randomUUID())!,
        locationName: this.#options.locationName ?? 'SIM',
        tunnelIsRemotelyManaged: this.#options.tunnelIsRemotelyManaged ?? false,
      },
    };
  }

  #credentialsMatch(req: RegistrationRequest): boolean {
    const authorize = this.#options.authorize;
    if (authorize) {
      if (req.tunnelId.length !== 16) return false;
      return authorize({ accountTag: req.auth.accountTag, tunnelId: bytesToUuid(req.tunnelId), tunnelSecret: Buffer.from(req.auth.tunnelSecret) });
    }
    const c = this.credentials;
    const expectedId = uuidToBytes(c.tunnelId)!;
    return (
      req.auth.accountTag === c.accountTag &&
      req.tunnelId.length === 16 &&
      req.tunnelId.equals(expectedId) &&
      req.auth.tunnelSecret.length === c.tunnelSecret.length &&
      timingSafeEqual(req.auth.tunnelSecret, c.tunnelSecret)
    );
  }

  /** Resolves once `predicate` holds (checked on every change), rejecting after `timeoutMs`. */
  waitFor(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`edge simulator: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.off('change', check);
        this.off('connection', check);
      };
      this.on('change', check);
      this.on('connection', check);
    });
  }

  /** Resolves with the registered connections once at least `count` are registered. */
  async waitForRegistrations(count: number, timeoutMs = 10_000): Promise<SimulatedConnection[]> {
    await this.waitFor(() => this.registeredConnections().length >= count, timeoutMs, `${count} registered connections`);
    return this.registeredConnections();
  }

  /**
   * Picks a connection for a new request: the registered one with `connIndex`, or the next in round-robin
   * order; only among those of `tunnelId` when given. Undefined when none is routable.
   */
  pickConnection(connIndex?: number, tunnelId?: string): SimulatedConnection | undefined {
    const candidates = this.registeredConnections(tunnelId).filter((c) => connIndex === undefined || c.connIndex === connIndex);
    if (candidates.length === 0) return undefined;
    return candidates[this.#roundRobin++ % candidates.length];
  }

  /** Opens a raw tunnel stream with exactly these headers (no defaults), for protocol-level tests. */
  openStream(headers: OutgoingHttpHeaders, options: { connIndex?: number; tunnelId?: string; endStream?: boolean } = {}): ClientHttp2Stream {
    const connection = this.pickConnection(options.connIndex, options.tunnelId);
    if (!connection) throw new Error(`edge simulator: no registered connection${options.tunnelId ? ` of tunnel ${options.tunnelId}` : ''}`);
    return connection.request(headers, options.endStream ?? false);
  }

  /** Sends one request into the tunnel and collects the decoded response, body and trailers. */
  async request(options: TunnelRequestOptions = {}): Promise<TunnelReply> {
    const headers: OutgoingHttpHeaders = {
      ':method': options.method ?? 'GET',
      ':scheme': 'https',
      ':authority': options.authority ?? 'app.example.com',
      ':path': options.path ?? '/',
    };
    if (options.kind === 'websocket') headers[HEADER_CONNECTION_UPGRADE] = UPGRADE_WEBSOCKET;
    if (options.kind === 'configuration') headers[HEADER_CONNECTION_UPGRADE] = UPGRADE_UPDATE_CONFIGURATION;
    if (options.kind === 'tcp') headers[HEADER_PROXY_SRC] = 'warp';
    for (const [name, value] of options.headers ?? []) {
      const prev = headers[name];
      headers[name] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [String(prev), value];
    }
    const body = options.body === undefined ? undefined : Buffer.from(options.body);
    const stream = this.openStream(headers, {
      ...(options.connIndex === undefined ? {} : { connIndex: options.connIndex }),
      ...(options.tunnelId === undefined ? {} : { tunnelId: options.tunnelId }),
      endStream: body === undefined,
    });
    if (body !== undefined) stream.end(body);
    return collectReply(stream, options.timeoutMs ?? 10_000);
  }

  /** Stops listening, closes every connection and the eyeball entrances. */
  async close(): Promise<void> {
    this.#closing = true;
    await this.#eyeball?.close();
    await this.#entrances?.close();
    for (const server of this.#servers) server.close();
    for (const c of this.connections) if (!c.closed) c.drop();
    await Promise.all(this.connections.map((c) => c.closedPromise));
  }
}

/** Reads a tunnel stream to its end: decoded head, body, trailers and reset code. */
function collectReply(stream: ClientHttp2Stream, timeoutMs: number): Promise<TunnelReply> {
  return new Promise((resolve, reject) => {
    let head: TunnelResponseHead | undefined;
    let trailers: IncomingHttpHeaders | undefined;
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      stream.close(h2.NGHTTP2_CANCEL);
      reject(new Error(`tunnel request timed out after ${timeoutMs} ms`));
    }, timeoutMs);
    stream.on('response', (headers) => {
      try {
        head = decodeTunnelResponse(headers);
      } catch (err) {
        clearTimeout(timer);
        stream.close(h2.NGHTTP2_PROTOCOL_ERROR);
        reject(err);
      }
    });
    stream.on('trailers', (t) => (trailers = t));
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('error', () => {
      // The close handler reports the outcome.
    });
    stream.once('close', () => {
      clearTimeout(timer);
      if (!head) return reject(new Error(`tunnel stream closed without a response (rst code ${stream.rstCode})`));
      resolve({ ...head, body: Buffer.concat(chunks), trailers, rstCode: stream.rstCode ?? 0 });
    });
  });
}

/** Starts an edge simulator; see {@link EdgeSimulator}. */
export async function startEdgeSimulator(options: EdgeSimulatorOptions = {}): Promise<EdgeSimulator> {
  return new EdgeSimulator(options).start();
}
