import { isIP } from 'node:net';
import type { Logger } from 'pino';
import { issueCert, type TestCa } from './certs.js';
import { fixedCertificate, startEyeball, type Eyeball, type EyeballTls } from './eyeball.js';
import type { EdgeSimulator } from './simulator.js';

/**
 * An eyeball entrance per tunnel, as Cloudflare's edge serves each tunnel at its own `<tunnel-id>.cfargotunnel.com`:
 * the first registration of a tunnel opens an entrance on the next host of a pool (HTTP/1.1 and h2c on one port,
 * HTTPS on a second), and that entrance sends requests only to registered connections of that tunnel, never to
 * another tunnel's.
 */
export interface TunnelEntrancesOptions {
  /** Hosts to give entrances, in order, one per tunnel; a tunnel that registers when all are taken gets none. */
  readonly hosts: readonly string[];
  /** Plain port of every entrance (default 80; 0: any free port). */
  readonly port?: number;
  /**
   * Further plain ports of every entrance (HTTP/1.1 and h2c, like `port`; default none), as Cloudflare's edge also
   * serves HTTP on 8080 and other ports. A request's Host reaches the tunnel as the client sent it, `:port` included.
   */
  readonly extraPorts?: readonly number[];
  /**
   * HTTPS on `port` (default 443; 0: any free port), presenting `certificate` per server name, as the edge holds each
   * zone's certificate whichever tunnel serves it (default: a certificate of the simulator's CA for
   * `<tunnel-id>.cfargotunnel.com` and the entrance host); `false` serves no HTTPS. Default: on, as described.
   */
  readonly tls?: { readonly port?: number; readonly certificate?: EyeballTls['certificate'] } | false;
}

/** Where one tunnel's requests enter the edge. */
export interface TunnelEntrance {
  readonly tunnelId: string;
  readonly host: string;
  /** `http://host:port` (HTTP/1.1 and h2c). */
  readonly url: string;
  /** `https://host:port`, unless the entrances serve no HTTPS. */
  readonly tlsUrl: string | undefined;
  /** `http://host:port` of each of the extra plain ports, in their order. */
  readonly extraUrls: readonly string[];
}

/** The standard tunnel hostname, `<tunnel-id>.cfargotunnel.com`. */
export function tunnelHostname(tunnelId: string): string {
  return `${tunnelId}.cfargotunnel.com`;
}

/** The simulator's entrances per tunnel: opened on a tunnel's first registration, kept until the simulator closes. */
export class TunnelEntrances {
  readonly #sim: EdgeSimulator;
  readonly #ca: TestCa;
  readonly #options: TunnelEntrancesOptions;
  readonly #waitMs: number;
  readonly #onOpen: (entrance: TunnelEntrance) => void;
  readonly #logger: Logger | undefined;
  readonly #opening = new Map<string, Promise<TunnelEntrance | undefined>>();
  readonly #open = new Map<string, TunnelEntrance>();
  readonly #eyeballs: Eyeball[] = [];
  /** Why a tunnel got no entrance (the pool ran out, a port was taken), in order. */
  readonly failures: string[] = [];
  #nextHost = 0;
  #closed = false;

  constructor(
    sim: EdgeSimulator,
    ca: TestCa,
    options: TunnelEntrancesOptions,
    settings: { readonly waitMs: number; readonly onOpen: (entrance: TunnelEntrance) => void; readonly logger?: Logger | undefined },
  ) {
    this.#sim = sim;
    this.#ca = ca;
    this.#options = options;
    this.#waitMs = settings.waitMs;
    this.#onOpen = settings.onOpen;
    this.#logger = settings.logger;
  }

  /** The open entrance of `tunnelId`, if any. */
  of(tunnelId: string): TunnelEntrance | undefined {
    return this.#open.get(tunnelId);
  }

  /** Every open entrance, in the order they opened. */
  list(): TunnelEntrance[] {
    return [...this.#open.values()];
  }

  /** Opens the entrance of `tunnelId` unless it has one (or is getting one); undefined when it cannot. */
  open(tunnelId: string): Promise<TunnelEntrance | undefined> {
    let opening = this.#opening.get(tunnelId);
    if (!opening) {
      opening = this.#start(tunnelId);
      this.#opening.set(tunnelId, opening);
    }
    return opening;
  }

  async #start(tunnelId: string): Promise<TunnelEntrance | undefined> {
    const { hosts } = this.#options;
    if (this.#closed) return undefined;
    if (this.#nextHost >= hosts.length) return this.#fail(`tunnel ${tunnelId} gets no entrance: all ${hosts.length} entrance hosts are taken`);
    const host = hosts[this.#nextHost++]!;
    try {
      const eyeball = await startEyeball(this.#sim, {
        host,
        port: this.#options.port ?? 80,
        tls: this.#tls(tunnelId, host),
        waitMs: this.#waitMs,
        tunnelId,
      });
      this.#eyeballs.push(eyeball);
      const extraUrls: string[] = [];
      for (const port of this.#options.extraPorts ?? []) {
        if (this.#closed) break;
        const extra = await startEyeball(this.#sim, { host, port, tls: undefined, waitMs: this.#waitMs, tunnelId });
        this.#eyeballs.push(extra);
        extraUrls.push(extra.url);
      }
      if (this.#closed) {
        await eyeball.close();
        return undefined;
      }
      const entrance: TunnelEntrance = { tunnelId, host, url: eyeball.url, tlsUrl: eyeball.tlsUrl, extraUrls };
      this.#open.set(tunnelId, entrance);
      this.#logger?.info({ tunnelId, url: entrance.url, tlsUrl: entrance.tlsUrl, extraUrls }, 'edge simulator: tunnel entrance open');
      this.#onOpen(entrance);
      return entrance;
    } catch (err) {
      return this.#fail(`tunnel ${tunnelId} gets no entrance on ${host}: ${(err as Error).message}`);
    }
  }

  #tls(tunnelId: string, host: string): EyeballTls | undefined {
    const tls = this.#options.tls ?? {};
    if (tls === false) return undefined;
    const certificate = tls.certificate ?? fixedCertificate(issueCert(this.#ca, { dns: [tunnelHostname(tunnelId)], ...(isIP(host) ? { ips: [host] } : {}) }));
    return { port: tls.port ?? 443, certificate };
  }

  #fail(message: string): undefined {
    this.failures.push(message);
    this.#logger?.warn({ reason: message }, 'edge simulator: no entrance for a tunnel');
    return undefined;
  }

  /** Closes every entrance (and any still opening). */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.allSettled(this.#opening.values());
    await Promise.all(this.#eyeballs.map((e) => e.close()));
  }
}
