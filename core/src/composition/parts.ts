import type { DependencyContainer, InjectionToken } from 'tsyringe';
import { instanceCachingFactory } from 'tsyringe';
import type { BudgetedClientFactory } from '../cloudflare/client.js';
import type { KubeClient } from '../k8s/api/client.js';
import type { Elector, Manager, NamedRunnable } from '../lifecycle/manager.js';
import type { HealthCheck, HealthServer } from '../observability/health-server.js';
import type { ControlPluginInstance } from '../plugin-api/registered.js';
import type { Runnable } from '../plugin-api/lifecycle.js';
import type { RoutingConfig, RouteTableBuilder } from '../routes/build.js';
import type { GatewayTunnelsStore } from '../state/gateway-tunnels.js';
import type { TunnelStateStore } from '../state/tunnel.js';
import type { KubernetesControlPlane } from './kubernetes.js';
import { token } from '../di/tokens.js';

/** A readiness check of the health server. */
export interface NamedCheck {
  readonly name: string;
  readonly check: HealthCheck;
}

/**
 * Tokens of Warren's own parts, registered by the composition root (`core/src/composition/`). Not part of the
 * plugin contract. A test or benchmark replaces a part by registering its own value for the token after the
 * providers ran (the last registration wins).
 */
export type { NamedRunnable };

/**
 * Kubernetes mode: the control plane, registered by `provideKubernetes` (composition/kubernetes.ts). The token lives
 * here so that folder mode, which never loads that module and the Kubernetes code behind it, can still ask for it.
 */
export const KUBERNETES = token<KubernetesControlPlane>('core.KubernetesControlPlane');

export const PARTS = {
  /** Environment (`TUNNEL_TOKEN`, `POD_NAME`, `POD_NAMESPACE`, `CLOUDFLARE_API_TOKEN`, …). */
  Env: token<NodeJS.ProcessEnv>('core.Env'),
  /** What assembly acquired outside the manager, released by `Warren.close`. */
  Resources: token<Resources>('core.Resources'),
  /** The writer's side of `TOKENS.TunnelState`. */
  TunnelState: token<TunnelStateStore>('core.TunnelState'),
  /** The Gateways' own tunnels (managed tunnel; empty otherwise), written by the Gateway tunnels part. */
  GatewayTunnels: token<GatewayTunnelsStore>('core.GatewayTunnels'),
  /** True when each Gateway gets a tunnel of its own (`perGatewayTunnels`). */
  PerGatewayTunnels: token<boolean>('core.PerGatewayTunnels'),
  /** Leader election (or none: this replica always leads); its `leadership` is the one published leadership. */
  Elector: token<Elector>('core.Elector'),
  /** The Cloudflare client factory with its write fence (`TOKENS.CloudflareClient` is this). */
  CloudflareClients: token<BudgetedClientFactory>('core.CloudflareClients'),
  /** The enabled control plugins, one instance each, shared by the parts that drive them. */
  ControlPlugins: token<readonly ControlPluginInstance[]>('core.ControlPlugins'),
  RoutingConfig: token<RoutingConfig>('core.RoutingConfig'),
  RouteBuilder: token<RouteTableBuilder>('core.RouteBuilder'),
  /** Kubernetes mode: the API client (default built from `kubernetes.kubeconfig` or in-cluster). */
  KubeClient: token<KubeClient>('core.KubeClient'),
  /** Kubernetes mode: the Lease holder identity (default pod name + random suffix). */
  Identity: token<string>('core.Identity'),
  /** Multi-token: every runnable part, added to the manager. */
  Runnable: token<NamedRunnable>('core.Runnable'),
  /** Multi-token: readiness checks of the health server. */
  Readiness: token<NamedCheck>('core.Readiness'),
  Health: token<HealthServer>('core.Health'),
  Manager: token<Manager>('core.Manager'),
} as const;

/** Registers `make` as the one instance of `part` in `container`, built on first use. */
export function provide<T>(container: DependencyContainer, part: InjectionToken<T>, make: (c: DependencyContainer) => T): void {
  container.register(part, { useFactory: instanceCachingFactory(make) });
}

/** Adds a runnable part (built on first use of the manager). */
export function provideRunnable(container: DependencyContainer, name: string, make: (c: DependencyContainer) => Runnable): void {
  container.register(PARTS.Runnable, { useFactory: instanceCachingFactory((c) => ({ name, runnable: make(c) })) });
}

/** Adds a readiness check; `make` runs on the first probe, so checks may read parts built after the health server. */
export function provideReadiness(container: DependencyContainer, name: string, make: (c: DependencyContainer) => HealthCheck): void {
  let check: HealthCheck | undefined;
  container.register(PARTS.Readiness, { useValue: { name, check: () => (check ??= make(container))() } });
}

/** What assembly acquired outside the manager (the API client, the demo's edge), released in reverse order. */
export class Resources {
  readonly #releases: Array<() => Promise<void>> = [];

  add(release: () => Promise<void>): void {
    this.#releases.push(release);
  }

  /** Releases everything once; a failing release does not keep the others from running. */
  async release(): Promise<void> {
    for (const release of this.#releases.splice(0).reverse()) await release().catch(() => undefined);
  }
}
