import type { DependencyContainer } from 'tsyringe';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { KUBERNETES, PARTS, provide, provideReadiness, provideRunnable } from './parts.js';
import { TOKENS } from '../di/tokens.js';
import { loadClusterAccess } from '../k8s/api/access.js';
import { KubeClient } from '../k8s/api/client.js';
import { ClusterInformers } from '../k8s/informers.js';
import { holderIdentity, LeaderElector } from '../k8s/leader-election.js';
import { podNamespace } from '../k8s/namespace.js';
import { NO_ELECTION } from '../lifecycle/manager.js';
import { componentLogger } from '../observability/logger.js';
import { ControlPlaneMetrics } from '../observability/metrics.js';
import type { ControlPluginInstance } from '../plugin-api/registered.js';
import type { EventSink, SecretReader } from '../plugin-api/lifecycle.js';
import { ControlPluginRunner } from '../reconcile/control-plugins.js';
import type { ControlState } from '../reconcile/control-context.js';
import { EventRecorder } from '../reconcile/events.js';
import { FinalizerController } from '../reconcile/finalizer.js';
import { BackendTLSPolicyStatusWriter } from '../reconcile/backend-tls-status.js';
import { GatewayStatusWriter } from '../reconcile/gateway-status.js';
import { RouteEventsReporter } from '../reconcile/route-events.js';
import { RouteSync, type RouteBuilder } from '../reconcile/route-sync.js';
import { IngressStatusWriter } from '../reconcile/status.js';
import type { RouteStore } from '../routes/store.js';
import { ALWAYS_LEADING } from '../state/leadership.js';
import type { Published } from '../state/published.js';
import type { GatewayTunnels } from '../state/gateway-tunnels.js';
import type { TunnelState } from '../state/tunnel.js';
import { CORE_VERSION } from '../version.js';

interface KubernetesControlPlaneOptions {
  readonly config: Readonly<Config>;
  /** Root logger; components log through children (`component: informers`, …). */
  readonly logger: Logger;
  readonly registry: Registry;
  /** The routing model's builder (`new RouteTableBuilder(routingConfig(config, manifests, known))`). */
  readonly routeBuilder: RouteBuilder;
  readonly routeStore: RouteStore;
  readonly client: KubeClient;
  /** Enabled control plugins; drive finalizers and `onRoutesChanged`. */
  readonly controlPlugins: readonly ControlPluginInstance[];
  /** Watch Secrets (default true); see `ClusterInformersOptions.watchSecrets`. */
  readonly watchSecrets?: boolean | undefined;
  /** The tunnel's published state (its id is the published hostname and what control plugins target). */
  readonly tunnel: Published<TunnelState>;
  /** Managed tunnel with a tunnel per Gateway: the Gateways' own tunnels (their addresses and DNS targets). */
  readonly gatewayTunnels?: Published<GatewayTunnels> | undefined;
  /** Lease holder identity. */
  readonly identity: string;
  /**
   * Release the leader Lease on a graceful stop (default true). False makes a stop look like a killed process
   * to the other replicas (they wait for the Lease to expire); tests use it.
   */
  readonly releaseLeaseOnStop?: boolean | undefined;
  /** Finalizer cleanup retries: attempts before giving up (default 5) and the first retry delay (default 1 s). */
  readonly cleanup?: { readonly maxAttempts?: number | undefined; readonly retryBaseMs?: number | undefined } | undefined;
  /** Environment (POD_NAMESPACE); default `process.env`. */
  readonly env?: NodeJS.ProcessEnv | undefined;
}

/** The Kubernetes side of Warren: informers, route sync, leader election, status, Events, finalizers, control plugins. */
export interface KubernetesControlPlane {
  /** The API client every component uses (one connection pool). */
  readonly client: KubeClient;
  /**
   * The same client for leader-only writes: fenced by the elector (see `LeaderElector.fence`), so none is sent
   * unless this replica holds a fresh Lease, and each is aborted when the term ends. Equal to `client` without
   * leader election.
   */
  readonly leaderClient: KubeClient;
  readonly identity: string;
  readonly informers: ClusterInformers;
  /** `TOKENS.Secrets`: Secrets referenced by routes. */
  readonly secrets: SecretReader;
  /** `TOKENS.Events`: leader-only, deduplicated Kubernetes Events. */
  readonly events: EventSink & { flush(): Promise<void> };
  /** Undefined when `kubernetes.leaderElection.enabled` is false (this replica then always leads). */
  readonly elector: LeaderElector | undefined;
  readonly routeSync: RouteSync;
  readonly status: IngressStatusWriter;
  /** Undefined when `gateway.enabled` is false. */
  readonly gatewayStatus: GatewayStatusWriter | undefined;
  /** Undefined when `gateway.enabled` is false. */
  readonly policyStatus: BackendTLSPolicyStatusWriter | undefined;
  readonly finalizers: FinalizerController;
  readonly controlPluginRunner: ControlPluginRunner;
  readonly metrics: ControlPlaneMetrics;
}

/** Builds the Kubernetes side; {@link provideKubernetes} registers it and its runnables. */
function createKubernetesControlPlane(options: KubernetesControlPlaneOptions): KubernetesControlPlane {
  const { config, logger, registry, routeBuilder, routeStore, client, identity } = options;
  const env = options.env ?? process.env;
  const k8s = config.kubernetes;
  const metrics = new ControlPlaneMetrics(registry);
  const plugins = options.controlPlugins;
  const log = (component: string) => componentLogger(logger, component);

  const gateway = config.gateway.enabled;
  // Gateway listeners name certificate Secrets: with the Gateway API on, Secrets are watched (only referenced ones are kept).
  const informers = new ClusterInformers({
    client,
    namespaces: k8s.namespaces,
    logger: log('informers'),
    metrics,
    watchSecrets: (options.watchSecrets ?? true) || gateway,
    gatewayApi: gateway,
  });

  const le = k8s.leaderElection;
  const elector = le.enabled
    ? new LeaderElector({
        client,
        namespace: le.leaseNamespace ?? podNamespace(env),
        name: le.leaseName,
        identity,
        leaseDurationMs: le.leaseDuration,
        renewDeadlineMs: le.renewDeadline,
        retryPeriodMs: le.retryPeriod,
        releaseOnCancel: options.releaseLeaseOnStop ?? true,
        logger: log('leader-election'),
        metrics,
      })
    : undefined;
  if (!elector) metrics.leader.set(1);
  const leadership = elector?.leadership ?? ALWAYS_LEADING;
  const leaderClient = elector ? client.fenced(elector.fence) : client;
  const state: ControlState = { tunnel: options.tunnel, leadership, gatewayTunnels: options.gatewayTunnels };

  const events = new EventRecorder({ client: leaderClient, logger: log('events'), metrics, instance: identity, leadership });
  const routeSync = new RouteSync({ source: informers, builder: routeBuilder, store: routeStore, logger: log('routes'), metrics, coalesceMs: k8s.resyncBurstWindow });
  const status = new IngressStatusWriter({
    client: leaderClient,
    ingresses: informers,
    store: routeStore,
    publishHostname: k8s.publishHostname,
    tunnel: options.tunnel,
    logger: log('status'),
    metrics,
    coalesceMs: k8s.resyncBurstWindow,
  });
  const gatewayStatus = gateway
    ? new GatewayStatusWriter({
        client: leaderClient,
        source: informers,
        publishAddress: config.gateway.publishAddress,
        tunnel: options.tunnel,
        gatewayTunnels: options.gatewayTunnels,
        logger: log('gateway-status'),
        coalesceMs: k8s.resyncBurstWindow,
      })
    : undefined;
  const policyStatus = gateway
    ? new BackendTLSPolicyStatusWriter({ client: leaderClient, source: informers, logger: log('backend-tls-policy-status'), coalesceMs: k8s.resyncBurstWindow })
    : undefined;
  const finalizers = new FinalizerController({
    client: leaderClient,
    ingresses: informers,
    store: routeStore,
    plugins,
    events,
    state,
    logger: log('finalizer'),
    metrics,
    coalesceMs: k8s.resyncBurstWindow,
    maxCleanupAttempts: options.cleanup?.maxAttempts,
    retryBaseMs: options.cleanup?.retryBaseMs,
  });
  const controlPluginRunner = new ControlPluginRunner({ plugins, store: routeStore, state, logger: log('control-plugins'), metrics });
  return {
    client,
    leaderClient,
    identity,
    informers,
    secrets: informers.secrets,
    events,
    elector,
    routeSync,
    status,
    gatewayStatus,
    policyStatus,
    finalizers,
    controlPluginRunner,
    metrics,
  };
}

/** Test and benchmark settings of the Kubernetes part. */
export interface KubernetesPartOptions {
  readonly releaseLeaseOnStop?: boolean | undefined;
  readonly cleanup?: KubernetesControlPlaneOptions['cleanup'];
}

/** The Kubernetes part registered in `container` (built on first use). */
export { KUBERNETES };

/**
 * Registers the Kubernetes side of Warren: the API client (unless one is registered under `PARTS.KubeClient`
 * already, which its owner closes), the control plane, `TOKENS.Secrets` and `TOKENS.Events`, leader election, its
 * runnables and the caches' readiness check.
 */
export function provideKubernetes(container: DependencyContainer, options: KubernetesPartOptions = {}): void {
  if (!container.isRegistered(PARTS.Identity)) provide(container, PARTS.Identity, (c) => holderIdentity(c.resolve(PARTS.Env)));
  if (!container.isRegistered(PARTS.KubeClient)) {
    provide(container, PARTS.KubeClient, (c) => {
      // The identity in the User-Agent lets audit logs tell the replicas (which share one ServiceAccount) apart.
      const client = new KubeClient(loadClusterAccess(c.resolve(TOKENS.Config).kubernetes), { userAgent: `warren/${CORE_VERSION} (${c.resolve(PARTS.Identity)})` });
      c.resolve(PARTS.Resources).add(() => client.close());
      return client;
    });
  }
  provide(container, KUBERNETES, (c) => {
    const manifests = c.resolve(TOKENS.EnabledManifests);
    const cp = createKubernetesControlPlane({
      config: c.resolve(TOKENS.Config),
      logger: c.resolve(TOKENS.Logger),
      registry: c.resolve(TOKENS.Metrics),
      routeBuilder: c.resolve(PARTS.RouteBuilder),
      routeStore: c.resolve(TOKENS.RouteStore),
      client: c.resolve(PARTS.KubeClient),
      controlPlugins: c.resolve(PARTS.ControlPlugins),
      watchSecrets: manifests.some((m) => m.annotations?.some((a) => a.secretRef)),
      tunnel: c.resolve(TOKENS.TunnelState),
      gatewayTunnels: c.resolve(PARTS.PerGatewayTunnels) ? c.resolve(PARTS.GatewayTunnels) : undefined,
      identity: c.resolve(PARTS.Identity),
      env: c.resolve(PARTS.Env),
      releaseLeaseOnStop: options.releaseLeaseOnStop,
      cleanup: options.cleanup,
    });
    // Every Cloudflare write of a replica is leader-only work: fenced by the Lease like its Kubernetes writes.
    if (cp.elector) c.resolve(PARTS.CloudflareClients).fenceWrites(cp.elector.fence);
    return cp;
  });
  const cp = (c: DependencyContainer): KubernetesControlPlane => c.resolve(KUBERNETES);
  provide(container, TOKENS.Secrets, (c) => cp(c).secrets);
  provide(container, TOKENS.Events, (c) => cp(c).events);
  provide(container, PARTS.Elector, (c) => cp(c).elector ?? NO_ELECTION);
  provideRunnable(container, 'informers', (c) => cp(c).informers);
  provideRunnable(container, 'route-sync', (c) => cp(c).routeSync);
  provideRunnable(container, 'ingress-status', (c) => cp(c).status);
  if (container.resolve(TOKENS.Config).gateway.enabled) provideRunnable(container, 'gateway-status', (c) => cp(c).gatewayStatus!);
  if (container.resolve(TOKENS.Config).gateway.enabled) provideRunnable(container, 'backend-tls-policy-status', (c) => cp(c).policyStatus!);
  provideRunnable(
    container,
    'route-events',
    (c) => new RouteEventsReporter({ store: c.resolve(TOKENS.RouteStore), events: cp(c).events, logger: componentLogger(c.resolve(TOKENS.Logger), 'events') }),
  );
  provideRunnable(container, 'finalizers', (c) => cp(c).finalizers);
  provideRunnable(container, 'control-plugins', (c) => cp(c).controlPluginRunner);
  provideReadiness(container, 'caches', (c) => {
    const informers = cp(c).informers;
    return () => (informers.synced ? true : 'informer caches not synced yet');
  });
}
