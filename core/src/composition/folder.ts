import type { DependencyContainer } from 'tsyringe';
import { PARTS, provide, provideReadiness, provideRunnable } from './parts.js';
import { token, TOKENS } from '../di/tokens.js';
import { NO_ELECTION } from '../lifecycle/manager.js';
import { createFolderControlPlane, type FolderControlPlane } from '../local/folder-control-plane.js';

/** The folder part registered in `container` (built on first use). */
export const FOLDER = token<FolderControlPlane>('core.FolderControlPlane');

/**
 * Registers folder mode's object source: the manifest folder, route sync, control plugins, Events as log lines,
 * `TOKENS.Secrets` and `TOKENS.Events`, and the caches' readiness check. No leader election: the one process leads.
 */
export function provideFolder(container: DependencyContainer): void {
  provide(container, FOLDER, (c) =>
    createFolderControlPlane({
      config: c.resolve(TOKENS.Config),
      logger: c.resolve(TOKENS.Logger),
      registry: c.resolve(TOKENS.Metrics),
      routeBuilder: c.resolve(PARTS.RouteBuilder),
      routeStore: c.resolve(TOKENS.RouteStore),
      controlPlugins: c.resolve(PARTS.ControlPlugins),
      tunnel: c.resolve(TOKENS.TunnelState),
    }),
  );
  const plane = (c: DependencyContainer): FolderControlPlane => c.resolve(FOLDER);
  provide(container, TOKENS.Secrets, (c) => plane(c).secrets);
  provide(container, TOKENS.Events, (c) => plane(c).events);
  container.register(PARTS.Elector, { useValue: NO_ELECTION });
  provideRunnable(container, 'folder-source', (c) => plane(c).cache);
  provideRunnable(container, 'route-sync', (c) => plane(c).routeSync);
  provideRunnable(container, 'route-diagnostics', (c) => plane(c).diagnostics);
  provideRunnable(container, 'gateway-report', (c) => plane(c).gatewayReport);
  provideRunnable(container, 'control-plugins', (c) => plane(c).controlPluginRunner);
  provideReadiness(container, 'caches', (c) => {
    const source = plane(c).source;
    return () => (source.synced ? true : 'manifest folder not read yet');
  });
}
