import type { DependencyContainer } from 'tsyringe';
import type { z } from 'zod';
import type { PluginManifest } from './manifest.js';

/**
 * What a plugin package default-exports. Core loads it, checks the manifest, parses the plugin's settings
 * with `configSchema` (strict, with defaults; `enabled` is removed before parsing), then calls `register`.
 *
 * `register` is the only place a plugin touches the container: it binds its classes under core's tokens
 * (`UPSTREAM_PLUGIN`, `CONTROL_PLUGIN`) with `Lifecycle.ContainerScoped`, and its parsed settings under
 * `pluginConfigToken(manifest.name)`. Disabled plugins are never registered.
 *
 * @example
 * export default definePlugin({
 *   manifest: { id: 'acme.request-id', name: 'request-id', kind: 'policy', order: 10, coreRange: '^0.1.0', description: '…' },
 *   configSchema: z.object({ header: z.string().default('x-request-id') }).strict(),
 *   register(container, config) {
 *     container.register(pluginConfigToken('request-id'), { useValue: config });
 *     container.register(UPSTREAM_PLUGIN, { useClass: RequestIdPlugin }, { lifecycle: Lifecycle.ContainerScoped });
 *   },
 * });
 */
export interface PluginModule<C = unknown> {
  readonly manifest: PluginManifest;
  readonly configSchema: z.ZodType<C>;
  register(container: DependencyContainer, config: C): void;
}

/** Identity helper that keeps the config type flowing from the schema to `register`. */
export function definePlugin<S extends z.ZodType>(module: {
  manifest: PluginManifest;
  configSchema: S;
  register(container: DependencyContainer, config: z.output<S>): void;
}): PluginModule<z.output<S>> {
  return module as unknown as PluginModule<z.output<S>>;
}
