import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { container as globalContainer, type DependencyContainer } from 'tsyringe';
import { createCloudflareClientFactory } from '../cloudflare/client.js';
import type { Config } from '../config/schema.js';
import { PARTS, provide, Resources } from './parts.js';
import { TOKENS } from '../di/tokens.js';
import { Manager, NO_ELECTION } from '../lifecycle/manager.js';
import { HealthServer } from '../observability/health-server.js';
import { componentLogger } from '../observability/logger.js';
import type { PluginManifest } from '../plugin-api/manifest.js';
import { registerPlugins, type LoadedPlugin } from '../plugins/registry.js';
import { RouteTableBuilder, routingConfig } from '../routes/build.js';
import { describeRouteTable, routeViewQuery } from '../routes/debug-view.js';
import { RouteStore } from '../routes/store.js';
import { TunnelStateStore } from '../state/tunnel.js';
import { GatewayTunnelsStore } from '../state/gateway-tunnels.js';
import { perGatewayTunnels } from '../cloudflare/tunnel-lifecycle.js';
import { gatewayRouteSources } from '../gateway/source.js';

export interface RootOptions {
  readonly logger: Logger;
  readonly registry: Registry;
  /** Environment (default `process.env`). */
  readonly env?: NodeJS.ProcessEnv | undefined;
  /** Enabled plugins, loaded (`resolvePlugins`); registered into the container. */
  readonly plugins?: readonly LoadedPlugin[] | undefined;
  /** Manifests of known but disabled plugins, for better messages (`loadBuiltinManifests`). */
  readonly knownManifests?: readonly PluginManifest[] | undefined;
}

/**
 * The container Warren is assembled in, with what every mode shares: settings, logger, metrics, environment, the
 * route store and builder, the tunnel's published state, the Cloudflare client, the enabled plugins, the health
 * server and the manager (which takes every registered runnable). The providers of each area (`provideKubernetes`
 * or `provideFolder`, `provideProxy`, `provideTunnel`, `provideServers`) add their parts.
 */
export function createRootContainer(config: Readonly<Config>, options: RootOptions): DependencyContainer {
  const { logger, registry } = options;
  const env = options.env ?? process.env;
  const root = globalContainer.createChildContainer();
  root.register(TOKENS.Config, { useValue: config });
  root.register(TOKENS.Logger, { useValue: logger });
  root.register(TOKENS.Metrics, { useValue: registry });
  root.register(PARTS.Env, { useValue: env });
  root.register(PARTS.Resources, { useValue: new Resources() });
  root.register(TOKENS.RouteStore, { useValue: new RouteStore(undefined, (err) => logger.error({ err }, 'route table listener failed')) });
  root.register(PARTS.TunnelState, { useValue: new TunnelStateStore(undefined, (err) => logger.error({ err }, 'tunnel state listener failed')) });
  root.register(TOKENS.TunnelState, { useToken: PARTS.TunnelState });
  root.register(PARTS.GatewayTunnels, { useValue: new GatewayTunnelsStore((err) => logger.error({ err }, 'Gateway tunnels listener failed')) });
  const perGateway = config.tunnel.enabled && perGatewayTunnels(config, env);
  root.register(PARTS.PerGatewayTunnels, { useValue: perGateway });
  root.register(PARTS.Elector, { useValue: NO_ELECTION });
  provide(root, PARTS.CloudflareClients, (c) => createCloudflareClientFactory({ config: config.cloudflare, logger, env, registry: c.resolve(TOKENS.Metrics) }));
  root.register(TOKENS.CloudflareClient, { useToken: PARTS.CloudflareClients });
  registerPlugins(root, options.plugins ?? []);
  provide(root, PARTS.ControlPlugins, (c) => (c.isRegistered(TOKENS.ControlPlugin, true) ? c.resolveAll(TOKENS.ControlPlugin) : []));
  // Ingress is the builder's own source; the Gateway API joins it through the route-source seam.
  provide(root, PARTS.RoutingConfig, (c) => ({
    ...routingConfig(config, c.resolve(TOKENS.EnabledManifests), options.knownManifests ?? []),
    sources: gatewayRouteSources(config, perGateway),
  }));
  provide(root, PARTS.RouteBuilder, (c) => new RouteTableBuilder(c.resolve(PARTS.RoutingConfig)));
  provide(root, PARTS.Health, (c) => {
    const health = new HealthServer({ listen: config.server.listen, registry: c.resolve(TOKENS.Metrics), logger: componentLogger(logger, 'health') });
    if (config.server.debugRoutes) {
      const routes = c.resolve(TOKENS.RouteStore);
      const routing = c.resolve(PARTS.RoutingConfig);
      health.serveRouteView((query) => describeRouteTable(routes.current, routing.plugins, routeViewQuery(query)));
    }
    for (const { name, check } of c.isRegistered(PARTS.Readiness, true) ? c.resolveAll(PARTS.Readiness) : []) health.addReadinessCheck(name, check);
    let manager: Manager | undefined;
    health.addReadinessCheck('manager', () => (manager ??= c.resolve(PARTS.Manager)).readinessCheck());
    return health;
  });
  provide(root, PARTS.Manager, (c) => {
    const manager = new Manager({ logger: componentLogger(logger, 'manager'), shutdownGracePeriodMs: config.shutdownGracePeriod, elector: c.resolve(PARTS.Elector) });
    for (const { name, runnable } of c.isRegistered(PARTS.Runnable, true) ? c.resolveAll(PARTS.Runnable) : []) manager.add(name, runnable);
    return manager;
  });
  return root;
}
