import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Config } from '../config/schema.js';
import type { Cache } from '../lifecycle/manager.js';
import { componentLogger } from '../observability/logger.js';
import { ControlPlaneMetrics } from '../observability/metrics.js';
import type { ControlPluginInstance } from '../plugin-api/registered.js';
import type { EventSink, SecretReader } from '../plugin-api/lifecycle.js';
import { ControlPluginRunner } from '../reconcile/control-plugins.js';
import { RouteSync, type RouteBuilder } from '../reconcile/route-sync.js';
import type { RouteStore } from '../routes/store.js';
import { ALWAYS_LEADING } from '../state/leadership.js';
import type { Published } from '../state/published.js';
import type { TunnelState } from '../state/tunnel.js';
import { LocalEventLog, RouteDiagnosticsLog } from './event-log.js';
import { FolderSource } from './folder-source.js';
import { FolderGatewayReport } from './gateway-report.js';

export interface FolderControlPlaneOptions {
  /** Settings; `source.folder` names the folder. */
  readonly config: Readonly<Config>;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly routeBuilder: RouteBuilder;
  readonly routeStore: RouteStore;
  /** Enabled control plugins (DNS, firewall): driven as on a cluster's leader. */
  readonly controlPlugins?: readonly ControlPluginInstance[] | undefined;
  /** The tunnel's published state; control plugins wait for its id (DNS targets `<id>.cfargotunnel.com`). */
  readonly tunnel: Published<TunnelState>;
}

/**
 * Folder mode's counterpart of the Kubernetes control plane: the folder source instead of informers, then the
 * same route sync (and metrics), the same control-plugin runner, and Events as log lines. There is no leader
 * election: the one process is the leader, so leader-only work runs from the start. There are no finalizers
 * either: an Ingress removed from the folder leaves the next route table, and the control plugins, which get the
 * whole desired state on every call, release what it owned.
 */
export interface FolderControlPlane {
  readonly source: FolderSource;
  /** The folder as the manager's cache: synced once the folder was read (and the caches gauge says so). */
  readonly cache: Cache;
  /** `TOKENS.Secrets`: the folder's Secrets. */
  readonly secrets: SecretReader;
  /** `TOKENS.Events`: Events as log lines (component `events`). */
  readonly events: EventSink;
  readonly routeSync: RouteSync;
  readonly diagnostics: RouteDiagnosticsLog;
  /** Gateway API problems a cluster's status would show, as log lines. */
  readonly gatewayReport: FolderGatewayReport;
  readonly controlPluginRunner: ControlPluginRunner;
}

export function createFolderControlPlane(options: FolderControlPlaneOptions): FolderControlPlane {
  const { config, logger, routeBuilder, routeStore } = options;
  const folder = config.source.folder;
  if (!folder) throw new Error('createFolderControlPlane needs source.folder');
  const metrics = new ControlPlaneMetrics(options.registry);
  metrics.leader.set(1);
  const log = (component: string) => componentLogger(logger, component);

  const source = new FolderSource({ folder, logger: log('folder-source') });
  const events = new LocalEventLog({ logger: log('events'), fileOf: (o) => source.fileOf(o.kind, o.namespace, o.name) });
  const routeSync = new RouteSync({ source, builder: routeBuilder, store: routeStore, logger: log('routes'), metrics, coalesceMs: config.kubernetes.resyncBurstWindow });
  const state = { tunnel: options.tunnel, leadership: ALWAYS_LEADING };
  const controlPluginRunner = new ControlPluginRunner({ plugins: options.controlPlugins ?? [], store: routeStore, state, logger: log('control-plugins'), metrics });
  const cache: Cache = {
    needsLeader: false,
    start: (signal) => source.start(signal),
    async waitForSync(signal) {
      await source.waitForSync(signal);
      // The folder is this mode's cache: dashboards and alerts read the same gauge as in a cluster.
      if (source.synced) metrics.cachesSynced.set(1);
    },
  };
  const gatewayReport = new FolderGatewayReport({ source, events, logger: log('gateway'), enabled: config.gateway.enabled });
  return { source, cache, secrets: source.secrets, events, routeSync, diagnostics: new RouteDiagnosticsLog(routeStore, events), gatewayReport, controlPluginRunner };
}
