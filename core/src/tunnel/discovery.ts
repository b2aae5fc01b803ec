import { promises as dns } from 'node:dns';
import { isIP } from 'node:net';
import { ErrorCode, WarrenError } from '../errors.js';

/**
 * Edge discovery and address allocation.
 *
 * With DNS: SRV `_v2-origintunneld._tcp.argotunnel.com` (or `_<region>-v2-origintunneld…`) must return at least
 * two records; the first two become region 1 and 2, each resolved to all its A/AAAA addresses with the SRV
 * port. With `tunnel.edgeAddresses` no DNS lookup happens at all: the listed addresses form one region, and
 * listing an address twice gives one more HA slot against the same listener.
 *
 * Each address serves at most one connection at a time; connections take an unused address from the region
 * with more unused addresses (random on a tie), which spreads 4 connections 2+2 over two regions.
 */

/** One edge address. Identity matters: the same host:port listed twice is two distinct addresses. */
export interface EdgeAddress {
  /** IP literal (DNS discovery) or the configured host (static list). */
  readonly host: string;
  readonly port: number;
  /** 4 or 6 for IP literals; 0 for a configured hostname (resolved when dialling). */
  readonly family: 0 | 4 | 6;
  /** `host:port` (IPv6 in brackets) for logs. */
  readonly label: string;
  /** Which region the address belongs to (1 or 2; 1 for static lists). */
  readonly region: number;
}

export interface SrvAnswer {
  readonly name: string;
  readonly port: number;
  readonly priority: number;
  readonly weight: number;
}

/** DNS operations discovery needs; injectable so tests never touch real DNS. */
export interface EdgeResolver {
  resolveSrv(name: string): Promise<SrvAnswer[]>;
  /** All addresses of `host` in the resolver's (the OS's) preference order. */
  lookup(host: string): Promise<Array<{ address: string; family: number }>>;
}

/** The system resolver (`node:dns`), addresses in OS preference order. */
const systemResolver: EdgeResolver = {
  resolveSrv: (name) => dns.resolveSrv(name),
  lookup: (host) => dns.lookup(host, { all: true, order: 'verbatim' }),
};

export type EdgeIpVersion = 'auto' | '4' | '6';

/** SRV name for discovery: `_v2-origintunneld._tcp.argotunnel.com`, or `_<region>-v2-origintunneld._tcp…`. */
export function srvServiceName(region?: string): string {
  return region ? `_${region}-v2-origintunneld._tcp.argotunnel.com` : '_v2-origintunneld._tcp.argotunnel.com';
}

/** How long a region stays on its secondary IP family after an IPv6 connectivity failure. */
export const FAMILY_FALLBACK_MS = 10 * 60_000;

function label(host: string, port: number): string {
  return `${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/** Parses `host:port` / `[v6]:port`; throws a WarrenError naming the setting on malformed input. */
export function parseEdgeAddress(text: string, setting = 'tunnel.edgeAddresses', region = 1): EdgeAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^\s:[\]/]+)):(\d{1,5})$/.exec(text.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) {
    throw new WarrenError(ErrorCode.ConfigInvalid, `${setting}: "${text}" is not host:port (e.g. "127.0.0.1:7844" or "[::1]:7844")`, {
      terminal: true,
    });
  }
  const host = m[1] ?? m[2]!;
  const ipFamily = isIP(host);
  if (m[1] !== undefined && ipFamily !== 6) {
    throw new WarrenError(ErrorCode.ConfigInvalid, `${setting}: "${text}" has brackets around something that is not an IPv6 address`, {
      terminal: true,
    });
  }
  return { host, port, family: ipFamily === 4 ? 4 : ipFamily === 6 ? 6 : 0, label: label(host, port), region };
}

/**
 * The addresses of one region, split by IP family. The primary family is the family of the first
 * address the resolver returned (`auto`), or the only family allowed (`4`/`6`).
 */
export class EdgeRegion {
  readonly #primary: EdgeAddress[];
  readonly #secondary: EdgeAddress[];
  #onSecondarySince: number | undefined;
  readonly #now: () => number;

  /**
   * @param splitFamilies false for a static address list: in `auto` every listed address stays usable.
   */
  constructor(addresses: readonly EdgeAddress[], ipVersion: EdgeIpVersion = 'auto', now: () => number = Date.now, splitFamilies = true) {
    this.#now = now;
    const wanted = ipVersion === '4' ? 4 : ipVersion === '6' ? 6 : (addresses[0]?.family ?? 4);
    if (ipVersion === 'auto' && (wanted === 0 || !splitFamilies)) {
      this.#primary = [...addresses];
      this.#secondary = [];
    } else {
      this.#primary = addresses.filter((a) => a.family === wanted || a.family === 0);
      this.#secondary = ipVersion === 'auto' ? addresses.filter((a) => a.family !== wanted && a.family !== 0) : [];
    }
  }

  /** The addresses currently in use for new assignments. */
  get active(): readonly EdgeAddress[] {
    return this.#onSecondarySince === undefined ? this.#primary : this.#secondary;
  }

  get usingSecondary(): boolean {
    return this.#onSecondarySince !== undefined;
  }

  has(address: EdgeAddress): boolean {
    return this.#primary.includes(address) || this.#secondary.includes(address);
  }

  /**
   * Adjusts the active family after an address came back: an IPv6 connectivity failure moves the
   * region to its secondary (IPv4) set for 10 minutes; an IPv4 connectivity failure on the secondary set
   * moves it back at once; after the timeout the next give-back returns to the primary set.
   */
  noteGiveBack(address: EdgeAddress, connectivityError: boolean): void {
    if (this.#onSecondarySince !== undefined) {
      const expired = this.#now() - this.#onSecondarySince >= FAMILY_FALLBACK_MS;
      if (expired || (connectivityError && address.family === 4)) this.#onSecondarySince = undefined;
      return;
    }
    if (connectivityError && address.family === 6 && this.#secondary.length > 0) this.#onSecondarySince = this.#now();
  }
}

/** Allocates edge addresses to HA connection slots across regions. */
export class EdgeAddressPool {
  readonly regions: readonly EdgeRegion[];
  readonly #inUse = new Map<EdgeAddress, number>();
  readonly #random: () => number;

  constructor(regions: readonly EdgeRegion[], random: () => number = Math.random) {
    this.regions = regions;
    this.#random = random;
  }

  /** Addresses available for assignment right now (used or not), i.e. the maximum number of HA slots. */
  get capacity(): number {
    return this.regions.reduce((n, r) => n + r.active.length, 0);
  }

  /** The address currently held by `connIndex`, if any. */
  addressOf(connIndex: number): EdgeAddress | undefined {
    for (const [address, owner] of this.#inUse) if (owner === connIndex) return address;
    return undefined;
  }

  #unused(region: EdgeRegion, exclude?: EdgeAddress): EdgeAddress[] {
    return region.active.filter((a) => !this.#inUse.has(a) && a !== exclude);
  }

  /**
   * Gives `connIndex` an unused address (keeping the one it already holds), preferring the region with
   * more unused addresses, random on a tie. Returns undefined when every address is taken.
   */
  take(connIndex: number, exclude?: EdgeAddress): EdgeAddress | undefined {
    const held = this.addressOf(connIndex);
    if (held && held !== exclude) return held;
    const candidates = this.regions.map((r) => this.#unused(r, exclude));
    let best = -1;
    for (let i = 0; i < candidates.length; i++) {
      const n = candidates[i]!.length;
      if (n === 0) continue;
      if (best < 0 || n > candidates[best]!.length || (n === candidates[best]!.length && this.#random() < 0.5)) best = i;
    }
    if (best < 0) return undefined;
    const address = candidates[best]![0]!;
    this.#inUse.set(address, connIndex);
    return address;
  }

  /** Returns an address to the pool; a connectivity error may switch its region's IP family. */
  giveBack(address: EdgeAddress, connectivityError: boolean): void {
    this.#inUse.delete(address);
    for (const region of this.regions) if (region.has(address)) region.noteGiveBack(address, connectivityError);
  }

  /**
   * Moves `connIndex` to a different address (EDUPCONN, dial failures). Keeps the current address when no
   * other one is free.
   */
  rotate(connIndex: number, connectivityError: boolean): EdgeAddress | undefined {
    const current = this.addressOf(connIndex);
    if (current) this.giveBack(current, connectivityError);
    return this.take(connIndex, current) ?? this.take(connIndex);
  }
}

export interface DiscoveryOptions {
  /** `tunnel.edgeAddresses`: when non-empty, no DNS lookup happens. */
  readonly staticAddresses?: readonly string[];
  /** Region prefix (`tunnel.region` or the credentials' endpoint). */
  readonly region?: string | undefined;
  readonly ipVersion?: EdgeIpVersion;
  readonly resolver?: EdgeResolver;
  readonly random?: () => number;
  readonly now?: () => number;
}

/**
 * Builds the address pool: the static list when given (no DNS), otherwise SRV discovery with A/AAAA
 * resolution of the first two targets. Throws a WarrenError naming what failed.
 */
export async function discoverEdge(options: DiscoveryOptions): Promise<EdgeAddressPool> {
  const ipVersion = options.ipVersion ?? 'auto';
  if (options.staticAddresses && options.staticAddresses.length > 0) {
    const addresses = options.staticAddresses.map((a) => parseEdgeAddress(a));
    const allowed = ipVersion === 'auto' ? addresses : addresses.filter((a) => a.family === 0 || String(a.family) === ipVersion);
    if (allowed.length === 0) {
      throw new WarrenError(ErrorCode.ConfigInvalid, `tunnel.edgeAddresses: no address matches tunnel.edgeIpVersion "${ipVersion}"`, {
        terminal: true,
      });
    }
    return new EdgeAddressPool([new EdgeRegion(allowed, ipVersion, options.now, false)], options.random);
  }
  const resolver = options.resolver ?? systemResolver;
  const name = srvServiceName(options.region);
  let records: SrvAnswer[];
  try {
    records = await resolver.resolveSrv(name);
  } catch (err) {
    throw new WarrenError(ErrorCode.TunnelRegistration, `edge discovery: SRV lookup of ${name} failed: ${(err as Error).message}`, { cause: err });
  }
  if (records.length < 2) {
    throw new WarrenError(ErrorCode.TunnelRegistration, `edge discovery: expected at least 2 Cloudflare regions from SRV ${name}, got ${records.length}`);
  }
  const ordered = [...records].sort((a, b) => a.priority - b.priority);
  const regions: EdgeRegion[] = [];
  for (const [i, record] of ordered.slice(0, 2).entries()) {
    let resolved: Array<{ address: string; family: number }>;
    try {
      resolved = await resolver.lookup(record.name);
    } catch (err) {
      throw new WarrenError(ErrorCode.TunnelRegistration, `edge discovery: cannot resolve ${record.name} (region ${i + 1}): ${(err as Error).message}`, {
        cause: err,
      });
    }
    const addresses = resolved
      .filter((r) => r.family === 4 || r.family === 6)
      .map((r): EdgeAddress => ({ host: r.address, port: record.port, family: r.family as 4 | 6, label: label(r.address, record.port), region: i + 1 }));
    const region = new EdgeRegion(addresses, ipVersion, options.now);
    if (region.active.length === 0) {
      throw new WarrenError(
        ErrorCode.TunnelRegistration,
        `edge discovery: ${record.name} (region ${i + 1}) has no ${ipVersion === 'auto' ? '' : `IPv${ipVersion} `}addresses`,
      );
    }
    regions.push(region);
  }
  return new EdgeAddressPool(regions, options.random);
}
