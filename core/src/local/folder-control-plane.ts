import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import { managed, type ManagedRunnable } from '../lifecycle/manager.js';
import type { HealthCheck } from '../observability/health-server.js';
import { componentLogger } from '../observability/logger.js';
import { ControlPlaneMetrics } from '../observability/metrics.js';
import type { ControlContext } from '../plugin-api/control.js';
import type { ControlPluginInstance } from '../plugin-api/registered.js';
import type { EventSink, SecretReader } from '../plugin-api/lifecycle.js';
import { ControlPluginRunner } from '../reconcile/control-plugins.js';
import { RouteSync, type RouteBuilder } from '../reconcile/route-sync.js';
import type { RouteStore } from '../routes/store.js';
import { LocalEventLog, RouteDiagnosticsLog } from './event-log.js';
import { FolderSource } from './folder-source.js';

export interface FolderControlPlaneOptions {
  /** Settings; `source.folder` names the folder. */
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly routeBuilder: RouteBuilder;
  readonly routeStore: RouteStore;
  /** Enabled control plugins (DNS, firewall): driven as on a cluster's leader. */
  readonly controlPlugins?: readonly ControlPluginInstance[] | undefined;
  /** The tunnel id once known; control plugins wait for it (DNS targets `<id>.cfargotunnel.com`). */
  readonly tunnelId?: (() => string | undefined) | undefined;
}

/**
 * Folder mode's counterpart of `createKubernetesControlPlane`: the folder source instead of informers, then the
 * same route sync (and metrics), the same control-plugin runner, and Events as log lines. There is no leader
 * election: the one process is the leader, so leader-only work runs from the start. There are no finalizers
 * either: an Ingress removed from the folder leaves the next route table, and the control plugins, which get the
 * whole desired state on every call, release what it owned.
 */
export interface FolderControlPlane {
  readonly source: FolderSource;
  /** `TOKENS.Secrets`: the folder's Secrets. */
  readonly secrets: SecretReader;
  /** `TOKENS.Events`: Events as log lines (component `events`). */
  readonly events: EventSink;
  readonly routeSync: RouteSync;
  readonly controlPluginRunner: ControlPluginRunner;
  /** Runnables for the `Manager`: folder source (caches), route sync, diagnostics log and control plugins (others). */
  readonly runnables: readonly ManagedRunnable[];
  readonly readiness: { readonly caches: HealthCheck };
  /** Call when the tunnel id becomes known or changes. */
  refreshTunnelId(): void;
}

export function createFolderControlPlane(options: FolderControlPlaneOptions): FolderControlPlane {
  const { config, logger, routeBuilder, routeStore } = options;
  const folder = config.source.folder;
  if (!folder) throw new Error('createFolderControlPlane needs source.folder');
  const metrics = new ControlPlaneMetrics(options.registry);
  metrics.leader.set(1);
  const tunnelId = options.tunnelId ?? (() => undefined);
  const log = (component: string) => componentLogger(logger, component);

  const source = new FolderSource({ folder, logger: log('folder-source') });
  const events = new LocalEventLog({ logger: log('events'), fileOf: (o) => source.fileOf(o.kind, o.namespace, o.name) });
  const routeSync = new RouteSync({ source, builder: routeBuilder, store: routeStore, logger: log('routes'), metrics, coalesceMs: config.kubernetes.resyncBurstWindow });
  const context = (signal: AbortSignal): ControlContext => ({ signal, tunnelId: tunnelId(), formerTunnelIds: [], term: 1 });
  const controlPluginRunner = new ControlPluginRunner({ plugins: options.controlPlugins ?? [], store: routeStore, context, logger: log('control-plugins'), metrics });

  return {
    source,
    secrets: source.secrets,
    events,
    routeSync,
    controlPluginRunner,
    runnables: [
      managed('folder-source', 'caches', source, {
        waitForSync: async (s) => {
          await source.waitForSync(s);
          // The folder is this mode's cache: dashboards and alerts read the same gauge as in a cluster.
          if (source.synced) metrics.cachesSynced.set(1);
        },
      }),
      managed('route-sync', 'others', routeSync),
      managed('route-diagnostics', 'others', new RouteDiagnosticsLog(routeStore, events)),
      managed('control-plugins', 'others', controlPluginRunner),
    ],
    readiness: { caches: () => (source.synced ? true : 'manifest folder not read yet') },
    refreshTunnelId: () => controlPluginRunner.refresh(),
  };
}
