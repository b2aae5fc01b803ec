import { TOKENS, inject, injectable, type ControlContext, type ControlPlugin, type ProvisionContext, type RouteTable } from '@warren/core/plugin';
import { unenforcedFirewallGauge, type CloudflareClientFactory, type UnenforcedFirewallGauge } from '@warren/core';
import type { Logger } from 'pino';
import { FirewallSync } from './firewall-sync.js';
import { manifest } from './manifest.js';
import type { FirewallConfig } from './config.js';

/** The `cloud.firewall` control plugin: wires {@link FirewallSync} into core's control-plugin contract. Leader only. */
@injectable()
export class FirewallPlugin implements ControlPlugin {
  readonly #config: FirewallConfig;
  readonly #clients: CloudflareClientFactory;
  readonly #unenforced: UnenforcedFirewallGauge | undefined;
  #sync: FirewallSync | undefined;
  #log: Logger | undefined;
  #term: number | undefined;

  /** `registry`: the process's prom-client registry (`TOKENS.Metrics`, optional), for `warren_firewall_unenforced_ingresses`. */
  constructor(
    @inject(manifest.configToken) config: FirewallConfig,
    @inject(TOKENS.CloudflareClient) clients: CloudflareClientFactory,
    @inject(TOKENS.Metrics, { isOptional: true }) registry?: Parameters<typeof unenforcedFirewallGauge>[0],
  ) {
    this.#config = config;
    this.#clients = clients;
    this.#unenforced = registry ? unenforcedFirewallGauge(registry) : undefined;
  }

  provision(ctx: ProvisionContext): void {
    this.#log = ctx.logger;
    this.#sync = new FirewallSync({ config: this.#config, client: this.#clients, logger: ctx.logger, events: ctx.events, unenforced: this.#unenforced });
  }

  async onRoutesChanged(table: RouteTable, ctx: ControlContext): Promise<void> {
    const ownerKey = this.#config.ownerId ?? ctx.tunnelId;
    if (!ownerKey) {
      this.#log?.debug('no tunnel id and no plugins.firewall.ownerId yet; firewall sync waits');
      return;
    }
    if (!this.#sync) throw new Error('cloud.firewall used before provision');
    if (ctx.term !== undefined && ctx.term !== this.#term) {
      // Leading again: another leader may have changed the rules meanwhile.
      if (this.#term !== undefined) this.#sync.forgetRemoteState();
      this.#term = ctx.term;
    }
    // Without ownerId the key is the tunnel id: rules under replaced tunnels are ours too.
    await this.#sync.sync(table, ownerKey, ctx.signal, this.#config.ownerId ? [] : (ctx.formerTunnelIds ?? []));
  }
}
