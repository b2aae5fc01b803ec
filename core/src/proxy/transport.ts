import { createHash } from 'node:crypto';
import { Pool } from 'undici';
import type { TransportProfile, UpstreamPool, UpstreamTls } from '../plugin-api/upstream.js';
import { AdmissionPool, type AdmissionLimits } from './admission.js';
import { H2C_DEFAULT_SESSIONS, H2cPool } from './h2-pool.js';
import { HeadTimeoutPool } from './head-timeout.js';
import { resetVisibleConnector } from './reset-visible.js';
import { subjectAltNameCheck } from './subject-alt-names.js';

/**
 * Connection pools: one undici `Pool` per endpoint origin and transport profile. Pools are shared across
 * route-table generations through reference counts: each generation retains the pool keys its routes can
 * use and releases them once it has drained; a pool nobody retains is closed gracefully (in-flight requests
 * finish, upgraded sockets are already detached from it).
 */

export type { UpstreamPool };

/** Opens a plugin's pool for one endpoint (see `UpstreamPlugin.createPool`). */
export type PoolOpener = (origin: string, profile: TransportProfile) => UpstreamPool;

/** Largest response head accepted from an upstream. */
const MAX_RESPONSE_HEADER_BYTES = 64 * 1024;

/**
 * Bytes a plain-TCP upstream socket reads ahead of the response handler: one read. A response waits for a slower
 * client after nearly every chunk; meanwhile undici's read-ahead (64 KiB) lets the socket take a second read, and
 * the next `read()` joins the two into a fresh copy. With one read ahead, each read is handed on as it is.
 * (undici's own `highWaterMark` would win over the readable one, so it is cleared; writes keep Node's default.)
 */
const UPSTREAM_READ_AHEAD = { highWaterMark: undefined, readableHighWaterMark: 1 } as const;

/** Plain-data identity of a profile; TLS material is reduced to a fingerprint (never kept in the key). */
function profileKey(profile: TransportProfile): string {
  const tls = profile.tls;
  return [
    profile.scheme,
    profile.http2,
    profile.connectTimeout,
    profile.keepAlive ? `${profile.keepAlive.timeout}/${profile.keepAlive.maxConnections}` : 'close',
    profile.maxConcurrentStreams ?? '',
    tls ? `${tls.rejectUnauthorized ? 'verify' : 'noverify'}/${tls.servername ?? ''}/${tls.subjectAltNames?.join(',') ?? ''}/${tls.fingerprint ?? tlsFingerprint(tls)}` : '',
  ].join('|');
}

/** SHA-256 over the TLS material, for profiles whose plugin gave no fingerprint. */
function tlsFingerprint(tls: UpstreamTls): string {
  const hash = createHash('sha256');
  const add = (v: string | Buffer | Array<string | Buffer> | undefined): void => {
    if (v === undefined) hash.update('-');
    else if (Array.isArray(v)) for (const item of v) add(item);
    else hash.update(v);
    hash.update('\0');
  };
  add(tls.ca);
  add(tls.cert);
  add(tls.key);
  return hash.digest('base64url').slice(0, 22);
}

/** Registry key of the pool of one endpoint origin and profile; `owner` is the id of the plugin whose pool it is. */
export function poolKey(origin: string, profile: TransportProfile, owner?: string): string {
  const key = `${origin}|${profileKey(profile)}`;
  return owner === undefined ? key : `${owner}|${key}`;
}

/** Origin URL of an endpoint for a scheme (`address:port`, IPv6 already bracketed in the key). */
export function endpointOrigin(scheme: 'http:' | 'https:', endpointKey: string): string {
  return `${scheme}//${endpointKey}`;
}

/**
 * Creates the pool for one endpoint origin and profile. No sockets are opened until the first request.
 * A plugin's `open` speaks its own wire protocol (core bounds its wait for a response head,
 * {@link HeadTimeoutPool}); otherwise cleartext HTTP/2 with prior knowledge uses `node:http2` ({@link H2cPool})
 * and everything else undici's `Pool`.
 * With `limits`, requests beyond what the pool's connections can carry at once wait in a bounded queue for a
 * bounded time ({@link AdmissionPool}) instead of the client library's unbounded one.
 */
export function createPool(origin: string, profile: TransportProfile, limits?: AdmissionLimits, open?: PoolOpener): UpstreamPool {
  const pool = open ? new HeadTimeoutPool(open(origin, profile)) : createClientPool(origin, profile);
  const capacity = concurrencyOf(profile);
  return limits && Number.isFinite(capacity) ? new AdmissionPool(pool, capacity, limits) : pool;
}

/**
 * Requests the pool of a profile carries at once: one per HTTP/1.1 connection, the stream limit per HTTP/2
 * connection (h2c sessions default to 16 per endpoint). Without keep-alive every request has a connection of its
 * own, so there is no limit to wait for. An ALPN profile counts as HTTP/2: should the upstream pick HTTP/1.1,
 * requests beyond its connections wait in undici's own queue.
 */
function concurrencyOf(profile: TransportProfile): number {
  const h2 = profile.http2 !== 'off';
  const connections = profile.keepAlive?.maxConnections ?? (h2 && profile.scheme === 'http:' ? H2C_DEFAULT_SESSIONS : Infinity);
  return h2 ? connections * (profile.maxConcurrentStreams ?? 100) : connections;
}

function createClientPool(origin: string, profile: TransportProfile): UpstreamPool {
  if (profile.http2 === 'prior-knowledge' && profile.scheme === 'http:') return new H2cPool(origin, profile);
  const tls = profile.tls;
  const h2 = profile.http2 !== 'off';
  const streams = profile.maxConcurrentStreams ?? 100;
  return new Pool(origin, {
    connections: profile.keepAlive ? profile.keepAlive.maxConnections : null,
    connect: resetVisibleConnector({
      timeout: profile.connectTimeout,
      ...UPSTREAM_READ_AHEAD,
      allowH2: h2,
      useH2c: profile.http2 === 'prior-knowledge',
      maxCachedSessions: 100,
      // ALPN: offer h2 first when HTTP/2 is wanted (undici offers http/1.1 first otherwise).
      ...(profile.http2 === 'alpn' ? { preferH2: true } : {}),
      ...(tls
        ? {
            ca: tls.ca,
            cert: tls.cert,
            key: tls.key,
            servername: tls.servername,
            rejectUnauthorized: tls.rejectUnauthorized,
            ...(tls.subjectAltNames?.length ? { checkServerIdentity: subjectAltNameCheck(tls.subjectAltNames) } : {}),
          }
        : {}),
    }),
    allowH2: h2,
    useH2c: profile.http2 === 'prior-knowledge',
    ...(h2 ? { maxConcurrentStreams: streams } : {}),
    pipelining: profile.http2 === 'prior-knowledge' ? streams : 1,
    keepAliveTimeout: profile.keepAlive?.timeout ?? 1_000,
    keepAliveMaxTimeout: profile.keepAlive?.timeout ?? 1_000,
    headersTimeout: 0,
    bodyTimeout: 0,
    maxHeaderSize: MAX_RESPONSE_HEADER_BYTES,
    strictContentLength: true,
  } as Pool.Options);
}

interface Entry {
  readonly key: string;
  readonly origin: string;
  readonly profile: TransportProfile;
  /** The plugin's opener for a plugin pool; core's HTTP pools otherwise. */
  readonly open: PoolOpener | undefined;
  pool: UpstreamPool | undefined;
  refs: number;
}

export class PoolRegistry {
  readonly #entries = new Map<string, Entry>();
  readonly #closing = new Set<Promise<void>>();
  readonly #create: (origin: string, profile: TransportProfile, open?: PoolOpener) => UpstreamPool;

  constructor(
    create: (origin: string, profile: TransportProfile, open?: PoolOpener) => UpstreamPool = (origin, profile, open) => createPool(origin, profile, undefined, open),
  ) {
    this.#create = create;
  }

  /** A registry whose pools let requests wait for a connection only within `limits` (see `admission.ts`). */
  static admitting(limits: AdmissionLimits): PoolRegistry {
    return new PoolRegistry((origin, profile, open) => createPool(origin, profile, limits, open));
  }

  /**
   * Takes a reference on a pool key (creating nothing yet); returns the registry's copy of the key. `open` is the
   * plugin's opener of a plugin pool, whose key names the plugin (see `poolKey`), so pools never mix; the first
   * retain of a key decides.
   */
  retain(key: string, origin: string, profile: TransportProfile, open?: PoolOpener): string {
    const entry = this.#entries.get(key);
    if (entry) {
      entry.refs++;
      return entry.key;
    }
    this.#entries.set(key, { key, origin, profile, open, pool: undefined, refs: 1 });
    return key;
  }

  /** The registry's copy of a retained key, if any. */
  canonical(key: string): string | undefined {
    return this.#entries.get(key)?.key;
  }

  /** The pool for a retained key, created on first use. */
  get(key: string): UpstreamPool {
    const entry = this.#entries.get(key);
    if (!entry) throw new Error(`pool ${key} used without being retained`);
    return (entry.pool ??= this.#create(entry.origin, entry.profile, entry.open));
  }

  /** Drops a reference; the last one closes the pool gracefully. */
  release(key: string): void {
    const entry = this.#entries.get(key);
    if (!entry || --entry.refs > 0) return;
    this.#entries.delete(key);
    if (entry.pool) this.#track(entry.pool.close());
  }

  /** Pools that currently exist (created on use). */
  get openPools(): number {
    let n = 0;
    for (const e of this.#entries.values()) if (e.pool) n++;
    return n;
  }

  /** Keys currently retained. */
  get retainedKeys(): number {
    return this.#entries.size;
  }

  /** Closes every pool: gracefully within `graceMs`, then destroys what is left. */
  async closeAll(graceMs: number): Promise<void> {
    const pools = [...this.#entries.values()].flatMap((e) => (e.pool ? [e.pool] : []));
    this.#entries.clear();
    const closing = Promise.allSettled([...pools.map((p) => p.close()), ...this.#closing]);
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<'expired'>((resolve) => {
      timer = setTimeout(() => resolve('expired'), graceMs);
      timer.unref();
    });
    const result = await Promise.race([closing, expired]);
    clearTimeout(timer);
    if (result === 'expired') await Promise.allSettled(pools.map((p) => p.destroy()));
  }

  #track(closing: Promise<void>): void {
    const p = closing.catch(() => {}).finally(() => this.#closing.delete(p));
    this.#closing.add(p);
  }
}
