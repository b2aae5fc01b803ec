import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { SecureContext } from 'node:tls';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { DEFAULT_TUNNEL_FEATURES, type Config } from '../config/schema.js';
import { ErrorCode, WarrenError } from '../errors.js';
import type { Runnable } from '../plugin-api/lifecycle.js';
import type { ExchangeHandler } from '../proxy/exchange.js';
import type { ClientInfo, ConnectionDetails } from './rpc/index.js';
import { CORE_VERSION } from '../version.js';
import { Backoff, sleep } from './backoff.js';
import { ConfigurationVersions } from './configuration-update.js';
import { BodyBudget } from './body-budget.js';
import { EdgeConnection, type ConnectionLimits } from './connection.js';
import { bytesToUuid, describeCredentials, loadTunnelCredentials, uuidToBytes, type TunnelCredentials } from './credentials.js';
import { discoverEdge, type EdgeAddressPool, type EdgeResolver } from './discovery.js';
import { createEdgeSecureContext } from './edge-tls.js';
import { TunnelConnectionError } from './errors.js';
import { TunnelMetrics } from './metrics.js';

/** Config the connector reads: the `tunnel` section and the shutdown grace period. */
export type TunnelConfig = Pick<Config, 'tunnel' | 'shutdownGracePeriod'>;

export interface TunnelConnectorOptions {
  readonly config: TunnelConfig;
  /** Receives every request stream as an Exchange (the proxy pipeline). */
  readonly handler: ExchangeHandler;
  readonly logger: Logger;
  /** prom-client registry for the connector series (`cloudflared_tunnel_*`); none registered when omitted. */
  readonly registry?: Registry | undefined;
  /** Credentials to use instead of loading them from the config and environment. */
  readonly credentials?: TunnelCredentials | undefined;
  /** Environment for `TUNNEL_TOKEN` (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** DNS for edge discovery (default: the system resolver). Unused with `tunnel.edgeAddresses`. */
  readonly resolver?: EdgeResolver | undefined;
  /** Per-slot backoff base (default 1000 ms) and cap exponent (default 5). */
  readonly backoff?: { readonly baseMs?: number; readonly maxRetries?: number } | undefined;
  /** Delay between starting HA slots after slot 0 registered (default 1000 ms). */
  readonly registrationIntervalMs?: number | undefined;
  /** Start-up attempts rejected as `Unauthorized` before giving up (default 5). */
  readonly unauthorizedRetries?: number | undefined;
  /** `ClientInfo.features` instead of `tunnel.features`. */
  readonly features?: readonly string[] | undefined;
  /** Connector UUID (default: random per process). */
  readonly connectorId?: string | undefined;
  readonly dialTimeoutMs?: number | undefined;
  readonly limits?: ConnectionLimits | undefined;
  readonly random?: () => number;
}

/**
 * Features announced to the edge by default (`tunnel.features`). `serialized_headers` is what this connector
 * speaks (response headers serialized into one header); the two QUIC features are sent by every cloudflared and kept for parity. `allow_remote_config`
 * is left out because Warren acknowledges but never applies remote configuration; `management_logs` because the
 * management service is not implemented.
 */
export const DEFAULT_FEATURES: readonly string[] = DEFAULT_TUNNEL_FEATURES;

/**
 * The minimal local configuration pushed on connection 0: Warren routes from Ingress objects, so the
 * edge only learns that the connector answers unknown requests itself.
 */
export const LOCAL_CONFIG_JSON = '{"ingress":[{"service":"http_status:404","originRequest":{}}],"warp-routing":{}}';

const GOARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', ia32: '386', arm: 'arm', s390x: 's390x', ppc64: 'ppc64le', riscv64: 'riscv64' };

interface Slot {
  readonly index: number;
  readonly backoff: Backoff;
  connection: EdgeConnection | undefined;
  registered: boolean;
  unauthorizedFailures: number;
}

/**
 * The native Cloudflare Tunnel connector: keeps `tunnel.haConnections` registered HTTP/2
 * connections to the edge, spread over the two edge regions, and hands every request stream to the
 * `ExchangeHandler`. A Runnable that every replica runs (`needsLeader` false).
 *
 * Start-up: after edge discovery, the connector waits until the handler routes requests (its first route table
 * is live, `ExchangeHandler.whenRouting`), since the edge sends requests to a connection as soon as it registers.
 * Then slot 0 connects first and is retried until it registers; the other slots start after it, one
 * per `registrationIntervalMs`. A registration refused with `shouldRetry=false` (other than `EDUPCONN`), or
 * refused as `Unauthorized` more than `unauthorizedRetries` times, fails `start()` with a terminal
 * WarrenError before the first registration; afterwards every failure is retried with per-slot randomized
 * exponential backoff, never shorter than the edge's `retryAfter`. `EDUPCONN` moves the slot to another
 * edge address at once; dial failures move it too.
 *
 * Shutdown (signal aborted): every connection unregisters, sends GOAWAY, lets in-flight streams finish
 * within `shutdownGracePeriod`, then releases the RPC capability, aborts the RPC and closes.
 */
export class TunnelConnector extends EventEmitter implements Runnable {
  readonly needsLeader = false;
  readonly connectorId: string;
  readonly #o: TunnelConnectorOptions;
  readonly #log: Logger;
  readonly #metrics: TunnelMetrics | undefined;
  readonly #versions = new ConfigurationVersions();
  /** Unread request bodies over every edge connection of this connector (one per process). */
  readonly #bodyBudget: BodyBudget;
  readonly #slots: Slot[] = [];
  #credentials: TunnelCredentials | undefined;
  #registered = 0;
  #everRegistered = false;
  #stopping = false;
  #fatal: WarrenError | undefined;
  readonly #wake = new AbortController();

  constructor(options: TunnelConnectorOptions) {
    super();
    this.#o = options;
    const t = options.config.tunnel;
    this.#bodyBudget = new BodyBudget({
      connectionBytes: t.requestBodyBufferBytes,
      totalBytes: t.requestBodyBufferTotalBytes,
      streamWindow: t.streamWindowBytes,
    });
    this.#log = options.logger.child({ component: 'tunnel' });
    this.#metrics = options.registry ? new TunnelMetrics(options.registry) : undefined;
    this.connectorId = options.connectorId ?? randomUUID();
    this.#credentials = options.credentials;
  }

  get tunnelId(): string | undefined {
    return this.#credentials?.tunnelId;
  }

  get registeredConnections(): number {
    return this.#registered;
  }

  onConnectionsChange(listener: (registered: number) => void): () => void {
    this.on('connections', listener);
    return () => this.off('connections', listener);
  }

  /**
   * Called each time the edge refuses this connector's credentials (`Unauthorized`) on a registration or a
   * re-registration — for instance after the tunnel's token was rotated — so that whoever supplied them can
   * fetch new ones at once. The slot keeps retrying with back-off meanwhile.
   */
  onCredentialsRefused(listener: (error: TunnelConnectionError) => void): () => void {
    this.on('credentials-refused', listener);
    return () => this.off('credentials-refused', listener);
  }

  /** Details of every registered connection, by slot (for diagnostics). */
  connections(): Array<{ connIndex: number; edge: string; location: string; connectionId: string }> {
    const out = [];
    for (const slot of this.#slots) {
      const c = slot.connection;
      if (slot.registered && c?.details) {
        out.push({ connIndex: slot.index, edge: c.address.label, location: c.details.locationName, connectionId: bytesToUuid(c.details.uuid) });
      }
    }
    return out;
  }

  async start(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const config = this.#o.config.tunnel;
    const credentials = (this.#credentials ??= loadTunnelCredentials({ tokenFile: config.tokenFile, credentialsFile: config.credentialsFile }, this.#o.env ?? process.env));
    if (config.region && credentials.endpoint) {
      throw new WarrenError(
        ErrorCode.ConfigInvalid,
        `tunnel.region "${config.region}" is set but the tunnel credentials name the endpoint "${credentials.endpoint}"; remove one of them`,
        { terminal: true },
      );
    }
    const secureContext = createEdgeSecureContext(config.edgeCaFile);
    this.#log.info({ ...describeCredentials(credentials), connectorId: this.connectorId }, 'starting the tunnel connector');
    const pool = await this.#discover(signal);
    if (!pool) return;
    // The edge sends a registered connection requests at once: register only when they can be routed.
    if (!(await this.#routing(signal))) return;
    const wanted = config.haConnections;
    const count = Math.min(wanted, pool.capacity);
    if (count < wanted) {
      this.#log.warn({ requested: wanted, available: pool.capacity }, `requested ${wanted} HA connections but the edge offers at most ${pool.capacity} addresses`);
    }
    const client: ClientInfo = {
      clientId: uuidToBytes(this.connectorId)!,
      features: [...(this.#o.features ?? config.features ?? DEFAULT_FEATURES)],
      version: config.clientVersion ?? `warren/${CORE_VERSION}`,
      arch: `${process.platform}_${GOARCH[process.arch] ?? process.arch}`,
    };
    const backoff = this.#o.backoff ?? {};
    for (let i = 0; i < count; i++) {
      this.#slots.push({
        index: i,
        backoff: new Backoff(backoff.baseMs, backoff.maxRetries, this.#o.random),
        connection: undefined,
        registered: false,
        unauthorizedFailures: 0,
      });
    }
    const onAbort = () => void this.#stop();
    signal.addEventListener('abort', onAbort, { once: true });
    const run = (slot: Slot) => this.#runSlot(slot, pool, secureContext, credentials, client);
    const loops: Array<Promise<void>> = [];
    try {
      const firstRegistered = new Promise<void>((resolve) => this.once('first-registration', resolve));
      loops.push(run(this.#slots[0]!));
      await Promise.race([firstRegistered, loops[0], once(this.#wake.signal)]);
      for (const slot of this.#slots.slice(1)) {
        if (this.#stopping) break;
        await sleep(this.#o.registrationIntervalMs ?? 1000, this.#wake.signal);
        if (this.#stopping) break;
        loops.push(run(slot));
      }
      await Promise.all(loops);
    } finally {
      signal.removeEventListener('abort', onAbort);
      await this.#stop();
      await Promise.all(loops);
    }
    if (this.#fatal) throw this.#fatal;
  }

  /** Waits until the handler routes requests (`ExchangeHandler.whenRouting`); false when `signal` aborted first. */
  async #routing(signal: AbortSignal): Promise<boolean> {
    const whenRouting = this.#o.handler.whenRouting?.(signal);
    if (!whenRouting) return true;
    const waited = performance.now();
    const nag = setInterval(() => this.#log.warn({ waitedMs: Math.round(performance.now() - waited) }, 'still waiting for the first route table before registering'), 30_000);
    try {
      await whenRouting;
    } finally {
      clearInterval(nag);
    }
    if (signal.aborted) return false;
    this.#log.debug({ waitedMs: Math.round(performance.now() - waited) }, 'routes are live; registering');
    return true;
  }

  async #discover(signal: AbortSignal): Promise<EdgeAddressPool | undefined> {
    const config = this.#o.config.tunnel;
    const backoff = new Backoff(this.#o.backoff?.baseMs, this.#o.backoff?.maxRetries, this.#o.random);
    for (;;) {
      try {
        return await discoverEdge({
          staticAddresses: config.edgeAddresses,
          region: config.region ?? this.#credentials?.endpoint,
          ipVersion: config.edgeIpVersion,
          resolver: this.#o.resolver,
          random: this.#o.random,
        });
      } catch (err) {
        if ((err as WarrenError).terminal) throw err;
        const wait = backoff.next();
        this.#log.error({ err: (err as Error).message, retryInMs: wait }, 'edge discovery failed');
        await sleep(wait, signal);
        if (signal.aborted) return undefined;
      }
    }
  }

  async #runSlot(slot: Slot, pool: EdgeAddressPool, secureContext: SecureContext, credentials: TunnelCredentials, client: ClientInfo): Promise<void> {
    const config = this.#o.config;
    while (!this.#stopping) {
      const address = pool.take(slot.index);
      if (!address) {
        const wait = slot.backoff.next();
        this.#log.warn({ connIndex: slot.index, retryInMs: wait }, 'no free edge address for this connection; waiting');
        await sleep(wait, this.#wake.signal);
        continue;
      }
      const connection = new EdgeConnection({
        connIndex: slot.index,
        address,
        credentials,
        client,
        secureContext,
        handler: this.#o.handler,
        logger: this.#log,
        rpcTimeoutMs: config.tunnel.rpcTimeout,
        numPreviousAttempts: slot.backoff.retries,
        localConfig: slot.index === 0 ? Buffer.from(LOCAL_CONFIG_JSON) : undefined,
        configurationVersions: this.#versions,
        metrics: this.#metrics,
        dialTimeoutMs: this.#o.dialTimeoutMs,
        limits: { maxConcurrentStreams: config.tunnel.maxConcurrentStreams, bodyBudget: this.#bodyBudget, ...this.#o.limits },
      });
      slot.connection = connection;
      connection.on('unregistered', () => this.#setRegistered(slot, false));
      let reason: TunnelConnectionError | undefined;
      try {
        const details = await connection.establish();
        this.#onRegistered(slot, connection, details);
        reason = await connection.closed;
      } catch (err) {
        reason = err instanceof TunnelConnectionError ? err : new TunnelConnectionError('rpc', String(err), { cause: err, retryable: true });
      }
      this.#setRegistered(slot, false);
      slot.connection = undefined;
      if (this.#stopping || !reason) break;
      this.#metrics?.registerFail.inc({ error: failureLabel(reason) });
      if (reason.unauthorized) this.emit('credentials-refused', reason);
      const fatal = this.#fatalAtStartup(slot, reason);
      if (fatal) {
        this.#fatal = fatal;
        this.#log.error({ connIndex: slot.index, err: fatal.message }, 'the tunnel cannot start');
        void this.#stop();
        break;
      }
      if (reason.duplicateConnection) {
        const next = pool.rotate(slot.index, false);
        this.#log.warn({ connIndex: slot.index, from: address.label, to: next?.label }, 'the edge reports this connection as a duplicate (EDUPCONN); trying another address');
        if (next && next !== address) continue;
      } else if (reason.kind === 'dial') {
        pool.rotate(slot.index, true);
      }
      const wait = slot.backoff.next(reason.retryAfterMs);
      this.#metrics?.timerRetries.inc();
      this.#log.warn({ connIndex: slot.index, edge: address.label, err: reason.message, retryInMs: wait }, 'edge connection failed; retrying');
      await sleep(wait, this.#wake.signal);
    }
    const held = pool.addressOf(slot.index);
    if (held) pool.giveBack(held, false);
  }

  /** Before the first registration, decides which failures end start-up. */
  #fatalAtStartup(slot: Slot, reason: TunnelConnectionError): WarrenError | undefined {
    if (this.#everRegistered) return undefined;
    if (reason.unauthorized) {
      slot.unauthorizedFailures++;
      if (slot.unauthorizedFailures <= (this.#o.unauthorizedRetries ?? 5)) return undefined;
      return new WarrenError(
        ErrorCode.TunnelCredentials,
        `the edge rejected the tunnel credentials ${slot.unauthorizedFailures} times ("${reason.edgeCause}"): check the tunnel token or credentials file (account tag, tunnel id and secret)`,
        { terminal: true, cause: reason },
      );
    }
    if (reason.kind === 'registration' && !reason.retryable) {
      return new WarrenError(ErrorCode.TunnelRegistration, `the edge refused to register the tunnel: ${reason.edgeCause}`, { terminal: true, cause: reason });
    }
    return undefined;
  }

  #onRegistered(slot: Slot, connection: EdgeConnection, details: ConnectionDetails): void {
    slot.backoff.reset();
    slot.unauthorizedFailures = 0;
    this.#metrics?.registerSuccess.inc();
    this.#log.info(
      {
        connIndex: slot.index,
        connection: bytesToUuid(details.uuid),
        event: 0,
        ip: connection.address.host,
        location: details.locationName,
        protocol: 'http2',
      },
      'Registered tunnel connection',
    );
    if (details.tunnelIsRemotelyManaged && slot.index === 0) {
      this.#log.warn('the tunnel is managed remotely (dashboard configuration); Warren ignores that configuration and routes from Ingress objects');
    }
    this.#setRegistered(slot, true);
    if (!this.#everRegistered) {
      this.#everRegistered = true;
      this.emit('first-registration');
    }
  }

  #setRegistered(slot: Slot, registered: boolean): void {
    if (slot.registered === registered) return;
    slot.registered = registered;
    this.#registered += registered ? 1 : -1;
    this.#metrics?.haConnections.set(this.#registered);
    this.emit('connections', this.#registered);
  }

  async #stop(): Promise<void> {
    if (!this.#stopping) {
      this.#stopping = true;
      this.#wake.abort();
      this.#log.info({ graceMs: this.#o.config.shutdownGracePeriod }, 'stopping the tunnel connector');
    }
    const grace = this.#o.config.shutdownGracePeriod;
    await Promise.all(this.#slots.map((slot) => slot.connection?.shutdown(grace)));
  }
}

function once(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
}

/** Bounded label values for `cloudflared_tunnel_tunnel_register_fail`. */
function failureLabel(reason: TunnelConnectionError): string {
  if (reason.duplicateConnection) return 'duplicate_connection';
  if (reason.unauthorized) return 'unauthorized';
  return reason.kind;
}
