import type { DependencyContainer } from 'tsyringe';
import { KubernetesCredentialsSecretStore, NoCredentialsSecretStore } from '../cloudflare/secret-store.js';
import { TunnelLifecycle } from '../cloudflare/tunnel-lifecycle.js';
import { TunnelPart } from '../cloudflare/tunnel-runner.js';
import { GatewayTunnels, KubernetesGatewayTunnelSecrets } from '../cloudflare/gateway-tunnels.js';
import { informerGatewaySet } from '../gateway/gateway-set.js';
import { gatewayEntrance } from '../model/entrance.js';
import { KUBERNETES, PARTS, provide, provideReadiness, provideRunnable } from './parts.js';
import { token, TOKENS } from '../di/tokens.js';
import { ErrorCode, WarrenError } from '../errors.js';
import { podNamespace } from '../k8s/namespace.js';
import { TunnelConnector } from '../tunnel/connector.js';
import { loadTunnelCredentials, makeCredentials, uuidToBytes, type TunnelCredentials } from '../tunnel/credentials.js';

/** The tunnel part registered in `container` (present with `tunnel.enabled`). */
export const TUNNEL = token<TunnelPart>('core.TunnelPart');

export interface TunnelProviderOptions {
  /**
   * Credentials known at assembly (the demo's edge simulator): run as they are. Otherwise the tunnel lifecycle
   * decides (managed tunnel) or follows the supplied token or credentials file.
   */
  readonly credentials?: TunnelCredentials | undefined;
  /** Kubernetes mode: a managed tunnel keeps its credentials in a cluster Secret. Folder mode refused one already. */
  readonly cluster: boolean;
}

/**
 * Registers the tunnel part (with `tunnel.enabled`): its connector hands exchanges to `TOKENS.ExchangeHandler`, its
 * state is published under `TOKENS.TunnelState`, and readiness needs a registered connection. Returns the
 * credentials known at assembly: folder mode reads the supplied ones now, so that a bad token fails the start.
 */
export function provideTunnel(container: DependencyContainer, options: TunnelProviderOptions): TunnelCredentials | undefined {
  const config = container.resolve(TOKENS.Config);
  const env = container.resolve(PARTS.Env);
  if (!config.tunnel.enabled) return undefined;
  const follows = options.credentials === undefined;
  const credentials = options.credentials ?? (options.cluster ? undefined : loadTunnelCredentials(config.tunnel, env));
  provide(container, TUNNEL, (c) => {
    const logger = c.resolve(TOKENS.Logger);
    const elector = c.resolve(PARTS.Elector);
    const lifecycle = follows
      ? new TunnelLifecycle({
          config,
          logger,
          clientFactory: c.resolve(PARTS.CloudflareClients),
          secretStore: options.cluster
            ? new KubernetesCredentialsSecretStore(c.resolve(KUBERNETES).leaderClient, podNamespace(env), config.cloudflare.credentialsSecretName)
            : new NoCredentialsSecretStore(),
          leadership: elector.leadership,
          env,
          existenceCheckMs: config.cloudflare.tunnelCheckInterval,
          replacementCheckMs: Math.min(30_000, config.cloudflare.tunnelCheckInterval),
        })
      : undefined;
    const handler = c.resolve(TOKENS.ExchangeHandler);
    const registry = c.resolve(TOKENS.Metrics);
    return new TunnelPart({
      lifecycle,
      credentials,
      credentialsOf: (tunnel) => (tunnel.mode === 'managed' ? toTunnelCredentials(tunnel.credentials) : loadTunnelCredentials(config.tunnel, env)),
      connector: (creds) => new TunnelConnector({ config: config, handler, logger, registry, env, credentials: creds }),
      state: c.resolve(PARTS.TunnelState),
      logger,
    });
  });
  provideRunnable(container, 'tunnel', (c) => c.resolve(TUNNEL));
  if (options.cluster && follows && container.resolve(PARTS.PerGatewayTunnels)) provideGatewayTunnels(container);
  provideReadiness(container, 'tunnel', (c) => {
    const state = c.resolve(TOKENS.TunnelState);
    return () => (state.current.registeredConnections > 0 ? true : 'no registered tunnel connection');
  });
  return credentials;
}

/**
 * Managed tunnel with the Gateway API: the Gateway tunnels part (a tunnel per Gateway, see {@link GatewayTunnels}).
 * Each Gateway's connector hands its exchanges to `TOKENS.ExchangeHandler` marked with the Gateway as their
 * entrance, so they match only that Gateway's routes.
 */
export function provideGatewayTunnels(container: DependencyContainer): void {
  provideRunnable(container, 'gateway-tunnels', (c) => {
    const config = c.resolve(TOKENS.Config);
    const env = c.resolve(PARTS.Env);
    const logger = c.resolve(TOKENS.Logger);
    const handler = c.resolve(TOKENS.ExchangeHandler);
    const kubernetes = c.resolve(KUBERNETES);
    return new GatewayTunnels({
      config,
      logger,
      clientFactory: c.resolve(PARTS.CloudflareClients),
      leadership: c.resolve(PARTS.Elector).leadership,
      env,
      gateways: informerGatewaySet(kubernetes.informers),
      secrets: new KubernetesGatewayTunnelSecrets(kubernetes.leaderClient, podNamespace(env), config.cloudflare.credentialsSecretName),
      // No connector metrics: the cloudflared_tunnel_* series describe the main tunnel.
      connector: (gateway, creds) =>
        new TunnelConnector({ config, handler: gatewayEntrance(gateway, handler), logger: logger.child({ gateway }), env, credentials: toTunnelCredentials(creds) }),
      state: c.resolve(PARTS.GatewayTunnels),
      events: kubernetes.events,
      existenceCheckMs: config.cloudflare.tunnelCheckInterval,
      replacementCheckMs: Math.min(30_000, config.cloudflare.tunnelCheckInterval),
      registry: c.resolve(TOKENS.Metrics),
    });
  });
}

/** Credentials from the tunnel lifecycle or the simulator, in the connector's shape. */
export function toTunnelCredentials(c: { accountTag: string; tunnelSecret: Buffer; tunnelId: string; endpoint?: string | undefined }): TunnelCredentials {
  const bytes = uuidToBytes(c.tunnelId);
  if (!bytes) throw new WarrenError(ErrorCode.TunnelCredentials, `tunnel id "${c.tunnelId}" is not a UUID`, { terminal: true });
  return makeCredentials(c.accountTag, c.tunnelSecret, { text: c.tunnelId.toLowerCase(), bytes }, c.endpoint);
}
