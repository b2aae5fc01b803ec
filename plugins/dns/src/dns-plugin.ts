import { TOKENS, inject, injectable, type ControlContext, type ControlPlugin, type FinalizerCandidate, type ProvisionContext, type RouteTable } from '@warren/core/plugin';
import type { CloudflareClientFactory } from '@warren/core';
import type { Logger } from 'pino';
import { DnsSync } from './dns-sync.js';
import { DNS_MANAGED, manifest } from './manifest.js';
import type { DnsConfig } from './config.js';

/** The `cloud.dns` control plugin: wires {@link DnsSync} into core's control-plugin contract. Leader only. */
@injectable()
export class DnsPlugin implements ControlPlugin {
  readonly #config: DnsConfig;
  readonly #clients: CloudflareClientFactory;
  #sync: DnsSync | undefined;
  #log: Logger | undefined;
  #term: number | undefined;

  constructor(@inject(manifest.configToken) config: DnsConfig, @inject(TOKENS.CloudflareClient) clients: CloudflareClientFactory) {
    this.#config = config;
    this.#clients = clients;
  }

  provision(ctx: ProvisionContext): void {
    this.#log = ctx.logger;
    this.#sync = new DnsSync({ config: this.#config, client: this.#clients, logger: ctx.logger, events: ctx.events });
  }

  async onRoutesChanged(table: RouteTable, ctx: ControlContext): Promise<void> {
    if (!ctx.tunnelId) {
      this.#log?.debug('no tunnel id yet; DNS sync waits');
      return;
    }
    await this.#engine(ctx).sync(table, ctx.tunnelId, ctx.signal, ctx.formerTunnelIds, ctx.gatewayTunnelIds);
  }

  async onIngressDeleted(ingress: { namespace: string; name: string; hosts: readonly string[] }, ctx: ControlContext): Promise<void> {
    await this.#engine(ctx).releaseIngress(ingress, ctx.tunnelId, ctx.signal, ctx.formerTunnelIds);
  }

  needsFinalizer(ingress: FinalizerCandidate): boolean {
    return DNS_MANAGED.get(ingress) !== false;
  }

  /** The sync engine, which forgets what it read from Cloudflare when a new leadership term began. */
  #engine(ctx: ControlContext): DnsSync {
    if (!this.#sync) throw new Error('cloud.dns used before provision');
    if (ctx.term !== undefined && ctx.term !== this.#term) {
      if (this.#term !== undefined) this.#sync.forgetRemoteState();
      this.#term = ctx.term;
    }
    return this.#sync;
  }
}
