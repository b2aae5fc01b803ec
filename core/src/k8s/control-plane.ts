import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { ControlContext } from '../plugin-api/control.js';
import type { ControlPluginInstance } from '../plugin-api/registered.js';
import type { EventSink, SecretReader } from '../plugin-api/lifecycle.js';
import type { HealthCheck } from '../observability/health-server.js';
import { componentLogger } from '../observability/logger.js';
import { CORE_VERSION } from '../version.js';
import { ControlPlaneMetrics } from '../observability/metrics.js';
import { managed, type ManagedRunnable } from '../lifecycle/manager.js';
import type { RouteStore } from '../routes/store.js';
import { ControlPluginRunner } from '../reconcile/control-plugins.js';
import { EventRecorder } from '../reconcile/events.js';
import { FinalizerController } from '../reconcile/finalizer.js';
import { RouteEventsReporter } from '../reconcile/route-events.js';
import { RouteSync, type RouteBuilder } from '../reconcile/route-sync.js';
import { IngressStatusWriter, tunnelHostname } from '../reconcile/status.js';
import { loadClusterAccess } from './api/access.js';
import { KubeClient } from './api/client.js';
import { ClusterInformers } from './informers.js';
import { holderIdentity, LeaderElector } from './leader-election.js';

/** The in-cluster file naming the pod's namespace. */
const POD_NAMESPACE_FILE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export interface KubernetesControlPlaneOptions {
  readonly config: Readonly<Config>;
  /** Root logger; components log through children (`component: informers`, …). */
  readonly logger: Logger;
  readonly registry: Registry;
  /** The routing model's builder (`new RouteTableBuilder(routeBuildSettings(config, manifests, known))`). */
  readonly routeBuilder: RouteBuilder;
  readonly routeStore: RouteStore;
  /** API client; default one built from {@link loadClusterAccess} of `config.kubernetes`. The caller closes a client it passes. */
  readonly client?: KubeClient | undefined;
  /** Enabled control plugins (resolved `TOKENS.ControlPlugin`); drive finalizers and `onRoutesChanged`. */
  readonly controlPlugins?: readonly ControlPluginInstance[] | undefined;
  /** Watch Secrets (default true); see `ClusterInformersOptions.watchSecrets`. */
  readonly watchSecrets?: boolean | undefined;
  /** The tunnel id once known (from the connector's credentials or the tunnel lifecycle). */
  readonly tunnelId?: (() => string | undefined) | undefined;
  /** Managed tunnels replaced before the current one, newest first (the tunnel lifecycle's `replacedTunnelIds`). */
  readonly formerTunnelIds?: (() => readonly string[]) | undefined;
  /** Lease holder identity; default pod name + random suffix ({@link holderIdentity}). */
  readonly identity?: string | undefined;
  /**
   * Release the leader Lease on a graceful stop (default true). False makes a stop look like a killed process
   * to the other replicas (they wait for the Lease to expire); tests use it.
   */
  readonly releaseLeaseOnStop?: boolean | undefined;
  /** Finalizer cleanup retries: attempts before giving up (default 5) and the first retry delay (default 1 s). */
  readonly cleanup?: { readonly maxAttempts?: number | undefined; readonly retryBaseMs?: number | undefined } | undefined;
  /** Environment (POD_NAME, POD_NAMESPACE); default `process.env`. */
  readonly env?: NodeJS.ProcessEnv | undefined;
}

/**
 * The Kubernetes side of Warren, assembled and ready to hand to the lifecycle `Manager`:
 *
 * ```ts
 * const cp = createKubernetesControlPlane({ config, logger, registry, routeBuilder, routeStore, controlPlugins, tunnelId });
 * for (const r of cp.runnables) manager.add(r);
 * health.addReadinessCheck('caches', cp.readiness.caches);
 * // register cp.secrets as TOKENS.Secrets and cp.events as TOKENS.Events; call cp.refreshTunnelId() when the id changes
 * ```
 */
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
  readonly finalizers: FinalizerController;
  readonly controlPluginRunner: ControlPluginRunner;
  readonly metrics: ControlPlaneMetrics;
  /** Every runnable, grouped for the `Manager`: informers (caches), route sync (others), the rest leader-only. */
  readonly runnables: readonly ManagedRunnable[];
  /** Readiness checks to register on the health server. */
  readonly readiness: { readonly caches: HealthCheck };
  /** Call when the tunnel id (and so the published hostname) becomes known or changes. */
  refreshTunnelId(): void;
}

/** Assembles informers, route sync, leader election, status, events, finalizers and control plugins. */
export function createKubernetesControlPlane(options: KubernetesControlPlaneOptions): KubernetesControlPlane {
  const { config, logger, registry, routeBuilder, routeStore } = options;
  const env = options.env ?? process.env;
  const k8s = config.kubernetes;
  const identity = options.identity ?? holderIdentity(env);
  // The identity in the User-Agent lets audit logs tell the replicas (which share one ServiceAccount) apart.
  const client = options.client ?? new KubeClient(loadClusterAccess(k8s), { userAgent: `warren/${CORE_VERSION} (${identity})` });
  const metrics = new ControlPlaneMetrics(registry);
  const tunnelId = options.tunnelId ?? (() => undefined);
  const plugins = options.controlPlugins ?? [];
  const log = (component: string) => componentLogger(logger, component);

  const informers = new ClusterInformers({ client, namespaces: k8s.namespaces, logger: log('informers'), metrics, watchSecrets: options.watchSecrets });

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
  const isLeader = elector ? () => elector.isLeader : () => true;
  const leaderClient = elector ? client.fenced(elector.fence) : client;

  const events = new EventRecorder({ client: leaderClient, logger: log('events'), metrics, instance: identity, isLeader });
  const routeSync = new RouteSync({ source: informers, builder: routeBuilder, store: routeStore, logger: log('routes'), metrics, coalesceMs: k8s.resyncBurstWindow });
  const hostname = (): string | undefined => {
    if (k8s.publishHostname) return k8s.publishHostname;
    const id = tunnelId();
    return id ? tunnelHostname(id) : undefined;
  };
  const status = new IngressStatusWriter({ client: leaderClient, ingresses: informers, store: routeStore, hostname, logger: log('status'), metrics, coalesceMs: k8s.resyncBurstWindow });
  const formerTunnelIds = options.formerTunnelIds ?? (() => []);
  const context = (signal: AbortSignal): ControlContext => ({ signal, tunnelId: tunnelId(), formerTunnelIds: formerTunnelIds(), term: elector?.term ?? 1 });
  const finalizers = new FinalizerController({
    client: leaderClient,
    ingresses: informers,
    store: routeStore,
    plugins,
    events,
    context,
    logger: log('finalizer'),
    metrics,
    coalesceMs: k8s.resyncBurstWindow,
    maxCleanupAttempts: options.cleanup?.maxAttempts,
    retryBaseMs: options.cleanup?.retryBaseMs,
  });
  const controlPluginRunner = new ControlPluginRunner({ plugins, store: routeStore, context, logger: log('control-plugins'), metrics });
  const routeEvents = new RouteEventsReporter({ store: routeStore, events, logger: log('events') });

  const runnables: ManagedRunnable[] = [
    managed('informers', 'caches', informers, { waitForSync: (signal: AbortSignal) => informers.waitForSync(signal) }),
    managed('route-sync', 'others', routeSync),
    managed('ingress-status', 'others', status),
    managed('route-events', 'others', routeEvents),
    managed('finalizers', 'others', finalizers),
    managed('control-plugins', 'others', controlPluginRunner),
  ];

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
    finalizers,
    controlPluginRunner,
    metrics,
    runnables,
    readiness: { caches: () => (informers.synced ? true : 'informer caches not synced yet') },
    refreshTunnelId() {
      status.refresh();
      controlPluginRunner.refresh();
    },
  };
}

/** Namespace for the Lease when not set: POD_NAMESPACE, the service-account namespace file, else `default`. */
export function podNamespace(env: NodeJS.ProcessEnv = process.env): string {
  if (env.POD_NAMESPACE) return env.POD_NAMESPACE;
  try {
    return readFileSync(POD_NAMESPACE_FILE, 'utf8').trim() || 'default';
  } catch {
    return 'default';
  }
}
