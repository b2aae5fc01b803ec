import { instancePerContainerCachingFactory, type DependencyContainer } from 'tsyringe';
import type { Config } from '../config/schema.js';
import { formatIssues } from '../config/load.js';
import { PARSED_ONCE } from '../config/parse-once.js';
import { ErrorCode, WarrenError } from '../errors.js';
import { PLUGIN_KINDS, type PluginManifest } from '../plugin-api/manifest.js';
import type { PluginClass, PluginModule } from '../plugin-api/module.js';
import type { UpstreamPlugin } from '../plugin-api/upstream.js';
import { TOKENS } from '../di/tokens.js';
import { BUILTIN_PLUGINS, importPluginPackage, type PluginImporter } from './builtin.js';
import { checkPlugins, loadError } from './checks.js';
import { HostedControlPlugin } from './control-instance.js';

export { checkPlugins, CORE_ANNOTATION_KEYS, type PluginCandidate } from './checks.js';
export { HostedControlPlugin } from './control-instance.js';

/** A plugin that passed every check, with its parsed config. */
export interface LoadedPlugin {
  readonly module: PluginModule;
  readonly config: unknown;
  /** `builtin` or the package name it came from. */
  readonly source: string;
}

export type { PluginImporter } from './builtin.js';

/**
 * Resolves which plugins run: built-ins enabled in `plugins.<name>` (or on by default), then
 * `extraPlugins`. Every check happens before any plugin code runs, and every failure is a WarrenError that
 * stops start-up: unknown plugin names, packages that do not load, bad manifests, duplicate ids,
 * annotations or protocols claimed twice, `coreRange` mismatches, unmet `dependsOn`, invalid config.
 * The result is sorted in chain order (kind, order, id).
 */
export async function resolvePlugins(config: Readonly<Config>, importer: PluginImporter = importPluginPackage): Promise<LoadedPlugin[]> {
  for (const name of Object.keys(config.plugins)) {
    if (!(name in BUILTIN_PLUGINS)) {
      throw new WarrenError(
        ErrorCode.ConfigInvalid,
        `unknown plugin "plugins.${name}": built-in plugins are ${Object.keys(BUILTIN_PLUGINS).join(', ')}; load custom plugins with extraPlugins`,
        { terminal: true },
      );
    }
  }
  const candidates: Array<{ module: PluginModule; raw: Record<string, unknown>; source: string; configPath: string }> = [];
  for (const [name, pkg] of Object.entries(BUILTIN_PLUGINS)) {
    const toggle = config.plugins[name];
    if (toggle && !toggle.enabled) continue;
    const module = await importPlugin(pkg, importer);
    if (module.manifest.name !== name) {
      throw loadError(pkg, `manifest.name is "${module.manifest.name}", expected "${name}"`);
    }
    const enabled = toggle ? toggle.enabled : module.manifest.enabledByDefault === true;
    if (!enabled) continue;
    const { enabled: _enabled, ...raw } = toggle ?? { enabled: true };
    candidates.push({ module, raw, source: 'builtin', configPath: `plugins.${name}` });
  }
  for (const [i, extra] of config.extraPlugins.entries()) {
    const module = await importPlugin(extra.package, importer);
    candidates.push({ module, raw: { ...extra.config }, source: extra.package, configPath: `extraPlugins[${i}].config` });
  }
  checkPlugins(candidates);
  const loaded = candidates.map((c) => ({ module: c.module, config: parsePluginConfig(c.module, c.raw, c.configPath), source: c.source }));
  return loaded.sort((a, b) => compareManifests(a.module.manifest, b.module.manifest));
}

/**
 * Registers every plugin the way its kind calls for: the parsed config under `manifest.configToken`, an upstream
 * class under `TOKENS.UpstreamPlugin` paired with its manifest, a control class under `TOKENS.ControlPlugin` (with
 * its optional upstream side under `TOKENS.UpstreamPlugin`). One instance per container that resolves it (a
 * plugin set is a child container). The manifests go under `TOKENS.EnabledManifests`.
 */
export function registerPlugins(container: DependencyContainer, plugins: readonly LoadedPlugin[]): void {
  for (const { module, config } of plugins) {
    container.register(module.manifest.configToken, { useValue: config });
    if (module.kind === 'control') {
      const { manifest, plugin } = module;
      container.register(TOKENS.ControlPlugin, {
        useFactory: instancePerContainerCachingFactory((c) => new HostedControlPlugin(manifest, c.resolve(plugin))),
      });
      if (module.upstream) registerUpstream(container, manifest, module.upstream);
    } else {
      registerUpstream(container, module.manifest, module.plugin);
    }
  }
  container.register(TOKENS.EnabledManifests, { useValue: Object.freeze(plugins.map((p) => p.module.manifest)) });
}

function registerUpstream(container: DependencyContainer, manifest: PluginManifest, plugin: PluginClass<UpstreamPlugin>): void {
  container.register(TOKENS.UpstreamPlugin, { useFactory: instancePerContainerCachingFactory((c) => ({ plugin: c.resolve(plugin), manifest })) });
}

/** Chain order: kind (transport, protocol, policy, control), then `order`, then `id`. */
export function compareManifests(a: PluginManifest, b: PluginManifest): number {
  return PLUGIN_KINDS.indexOf(a.kind) - PLUGIN_KINDS.indexOf(b.kind) || a.order - b.order || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

function parsePluginConfig(module: PluginModule, raw: Record<string, unknown>, path: string): unknown {
  const result = module.manifest.configSchema.safeParse(raw, PARSED_ONCE);
  if (!result.success) {
    const prefixed = result.error.issues.map((issue) => ({ ...issue, path: [...path.split('.'), ...issue.path] }));
    throw new WarrenError(ErrorCode.ConfigInvalid, `invalid configuration: ${formatIssues(prefixed as never, wrap(path, raw))}`, {
      terminal: true,
    });
  }
  return Object.freeze(result.data);
}

function wrap(path: string, value: unknown): unknown {
  return path.split('.').reduceRight<unknown>((acc, key) => ({ [key]: acc }), value);
}

async function importPlugin(pkg: string, importer: PluginImporter): Promise<PluginModule> {
  let imported: unknown;
  try {
    imported = await importer(pkg);
  } catch (err) {
    throw loadError(pkg, `cannot import package: ${(err as Error).message}`, err);
  }
  const module = (imported as { default?: unknown })?.default ?? imported;
  if (!isPluginModule(module)) {
    throw loadError(pkg, 'default export is not a plugin module: make it with definePlugin({ manifest, plugin }) from @warren/core/plugin');
  }
  return module;
}

function isPluginModule(value: unknown): value is PluginModule {
  if (typeof value !== 'object' || value === null) return false;
  const manifest: unknown = Reflect.get(value, 'manifest');
  if (typeof manifest !== 'object' || manifest === null) return false;
  const schema: unknown = Reflect.get(manifest, 'configSchema');
  return (
    typeof Reflect.get(manifest, 'id') === 'string' &&
    Reflect.get(manifest, 'configToken') !== undefined &&
    typeof schema === 'object' &&
    schema !== null &&
    typeof Reflect.get(schema, 'safeParse') === 'function' &&
    typeof Reflect.get(value, 'kind') === 'string' &&
    typeof Reflect.get(value, 'plugin') === 'function'
  );
}
