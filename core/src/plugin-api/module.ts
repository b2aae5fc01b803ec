import type { ClassProvider } from 'tsyringe';
import type { z } from 'zod';
import type { ControlPlugin } from './control.js';
import type { DeclaredManifest, UpstreamKind } from './manifest.js';
import type { UpstreamPlugin } from './upstream.js';

/** A plugin class. The container constructs it: constructor parameters are injected (`@injectable()`, `@inject(token)`). */
export type PluginClass<T> = ClassProvider<T>['useClass'];

/** A data-plane plugin package (kinds `transport`, `protocol`, `policy`): its class is an {@link UpstreamPlugin}. */
export interface UpstreamPluginModule<S extends z.ZodType = z.ZodType> {
  readonly kind: UpstreamKind;
  readonly manifest: DeclaredManifest<UpstreamKind, S>;
  readonly plugin: PluginClass<UpstreamPlugin>;
}

/** A control plugin package (kind `control`): its class is a {@link ControlPlugin}, run on the leader only. */
export interface ControlPluginModule<S extends z.ZodType = z.ZodType> {
  readonly kind: 'control';
  readonly manifest: DeclaredManifest<'control', S>;
  readonly plugin: PluginClass<ControlPlugin>;
  /** Its data-plane side, when it has one: an {@link UpstreamPlugin} every replica's proxy runs (in chain order of this manifest). */
  readonly upstream?: PluginClass<UpstreamPlugin> | undefined;
}

/**
 * What a plugin package default-exports (made with {@link definePlugin}). Core loads it, checks it (manifest and
 * class, before any plugin code runs), parses the settings with `manifest.configSchema`, registers them under
 * `manifest.configToken` and the class under core's token for its kind, one instance per plugin set. Disabled
 * plugins are never registered.
 */
export type PluginModule<S extends z.ZodType = z.ZodType> = UpstreamPluginModule<S> | ControlPluginModule<S>;

/**
 * Pairs a manifest (from `defineManifest`) with the class its `kind` calls for.
 *
 * @example
 * export default definePlugin({ manifest, plugin: RequestIdPlugin });
 */
export function definePlugin<S extends z.ZodType>(module: {
  readonly manifest: DeclaredManifest<UpstreamKind, S>;
  readonly plugin: PluginClass<UpstreamPlugin>;
}): UpstreamPluginModule<S>;
export function definePlugin<S extends z.ZodType>(module: {
  readonly manifest: DeclaredManifest<'control', S>;
  readonly plugin: PluginClass<ControlPlugin>;
  readonly upstream?: PluginClass<UpstreamPlugin>;
}): ControlPluginModule<S>;
export function definePlugin<S extends z.ZodType>(module: Omit<PluginModule<S>, 'kind'>): PluginModule<S> {
  return Object.freeze({ ...module, kind: module.manifest.kind } as PluginModule<S>);
}
