import semver from 'semver';
import type { DependencyContainer } from 'tsyringe';
import type { z } from 'zod';
import type { Config } from '../config/schema.js';
import { formatIssues } from '../config/load.js';
import { ErrorCode, WarrenError } from '../errors.js';
import { PLUGIN_KINDS, type PluginManifest } from '../plugin-api/manifest.js';
import type { PluginModule } from '../plugin-api/module.js';
import { TOKENS } from '../di/tokens.js';
import { CORE_VERSION } from '../version.js';
import { BUILTIN_PLUGINS } from './builtin.js';

/** A plugin that passed every check, with its parsed settings. */
export interface LoadedPlugin {
  readonly module: PluginModule;
  readonly config: unknown;
  /** `builtin` or the package name it came from. */
  readonly source: string;
}

/** Imports a plugin package; injectable so tests can load modules that are not installed packages. */
export type PluginImporter = (packageName: string) => Promise<unknown>;

const defaultImporter: PluginImporter = (name) => import(name);
const ID_PATTERN = /^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/;

/**
 * Resolves which plugins run: built-ins enabled in `plugins.<name>` (or on by default), then
 * `extraPlugins`. Every check happens before any plugin code runs, and every failure is a WarrenError that
 * stops start-up: unknown plugin names, packages that do not load, bad manifests, duplicate ids,
 * annotations or protocols claimed twice, `coreRange` mismatches, unmet `dependsOn`, invalid settings.
 * The result is sorted in chain order (kind, order, id).
 */
export async function resolvePlugins(config: Readonly<Config>, importer: PluginImporter = defaultImporter): Promise<LoadedPlugin[]> {
  for (const name of Object.keys(config.plugins)) {
    if (!(name in BUILTIN_PLUGINS)) {
      throw new WarrenError(
        ErrorCode.ConfigInvalid,
        `unknown plugin "plugins.${name}": built-in plugins are ${Object.keys(BUILTIN_PLUGINS).join(', ')}; load custom plugins with extraPlugins`,
        { terminal: true },
      );
    }
  }
  const candidates: Array<{ module: PluginModule; settings: Record<string, unknown>; source: string; settingsPath: string }> = [];
  for (const [name, pkg] of Object.entries(BUILTIN_PLUGINS)) {
    const toggle = config.plugins[name];
    if (toggle && !toggle.enabled) continue;
    const module = await importPlugin(pkg, importer);
    if (module.manifest.name !== name) {
      throw loadError(pkg, `manifest.name is "${module.manifest.name}", expected "${name}"`);
    }
    const enabled = toggle ? toggle.enabled : module.manifest.enabledByDefault === true;
    if (!enabled) continue;
    const { enabled: _enabled, ...settings } = toggle ?? { enabled: true };
    candidates.push({ module, settings, source: 'builtin', settingsPath: `plugins.${name}` });
  }
  for (const [i, extra] of config.extraPlugins.entries()) {
    const module = await importPlugin(extra.package, importer);
    candidates.push({ module, settings: { ...extra.config }, source: extra.package, settingsPath: `extraPlugins[${i}].config` });
  }
  checkManifests(candidates.map((c) => ({ manifest: c.module.manifest, source: c.source })));
  const loaded = candidates.map((c) => ({ module: c.module, config: parseSettings(c.module, c.settings, c.settingsPath), source: c.source }));
  return loaded.sort((a, b) => compareManifests(a.module.manifest, b.module.manifest));
}

/** Calls `register` of every plugin and records their manifests under `TOKENS.EnabledManifests`. */
export function registerPlugins(container: DependencyContainer, plugins: readonly LoadedPlugin[]): void {
  for (const plugin of plugins) plugin.module.register(container, plugin.config);
  container.register(TOKENS.EnabledManifests, { useValue: Object.freeze(plugins.map((p) => p.module.manifest)) });
}

/** Chain order: kind (transport, protocol, policy, control), then `order`, then `id`. */
export function compareManifests(a: PluginManifest, b: PluginManifest): number {
  return (
    PLUGIN_KINDS.indexOf(a.kind) - PLUGIN_KINDS.indexOf(b.kind) || a.order - b.order || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)
  );
}

/** Validates a set of manifests as if they were enabled together; throws the first problem found. */
export function checkManifests(entries: ReadonlyArray<{ manifest: PluginManifest; source: string }>): void {
  const ids = new Map<string, string>();
  const annotations = new Map<string, string>();
  const protocols = new Map<string, string>();
  for (const { manifest: m, source } of entries) {
    if (!ID_PATTERN.test(m.id)) throw loadError(source, `manifest.id "${m.id}" must be namespaced and lower-case, like "upstream.websocket"`);
    if (!PLUGIN_KINDS.includes(m.kind)) throw loadError(source, `manifest.kind "${m.kind}" must be one of ${PLUGIN_KINDS.join(', ')}`);
    if (!Number.isInteger(m.order)) throw loadError(source, `manifest.order must be an integer`);
    if (semver.validRange(m.coreRange) === null) throw loadError(source, `manifest.coreRange "${m.coreRange}" is not a semver range`);
    if (!semver.satisfies(CORE_VERSION, m.coreRange, { includePrerelease: true })) {
      throw new WarrenError(
        ErrorCode.PluginVersion,
        `plugin ${m.id} (${source}) supports @warren/core ${m.coreRange}, but this is ${CORE_VERSION}`,
        { terminal: true },
      );
    }
    const dup = ids.get(m.id);
    if (dup) throw new WarrenError(ErrorCode.PluginConflict, `plugin id ${m.id} is provided by both ${dup} and ${source}`, { terminal: true });
    ids.set(m.id, source);
    for (const a of m.annotations ?? []) {
      const owner = annotations.get(a.key) ?? (CORE_ANNOTATION_KEYS.has(a.key) ? 'core' : undefined);
      if (owner) throw new WarrenError(ErrorCode.PluginConflict, `annotation warren.dev/${a.key} is claimed by ${owner} and ${m.id}`, { terminal: true });
      annotations.set(a.key, m.id);
    }
    for (const p of m.protocols ?? []) {
      const owner = protocols.get(p) ?? (p === 'http' ? 'core' : undefined);
      if (owner) throw new WarrenError(ErrorCode.PluginConflict, `backend protocol "${p}" is claimed by ${owner} and ${m.id}`, { terminal: true });
      protocols.set(p, m.id);
    }
  }
  for (const { manifest: m, source } of entries) {
    for (const dep of m.dependsOn ?? []) {
      if (!ids.has(dep)) {
        throw new WarrenError(
          ErrorCode.PluginDependency,
          `plugin ${m.id} (${source}) needs plugin ${dep}, which is not enabled`,
          { terminal: true },
        );
      }
    }
  }
}

/** Annotation keys core itself owns (see `routes/core-annotations.ts`); plugins may not claim them. */
export const CORE_ANNOTATION_KEYS: ReadonlySet<string> = new Set([
  'backend-protocol',
  'upstream-host',
  'connect-timeout',
  'response-header-timeout',
  'idle-timeout',
  'request-body-timeout',
  'upstream-queue-timeout',
  'load-balancing',
]);

function parseSettings(module: PluginModule, settings: Record<string, unknown>, path: string): unknown {
  const result = (module.configSchema as z.ZodType).safeParse(settings);
  if (!result.success) {
    const prefixed = result.error.issues.map((issue) => ({ ...issue, path: [...path.split('.'), ...issue.path] }));
    throw new WarrenError(ErrorCode.ConfigInvalid, `invalid configuration: ${formatIssues(prefixed as never, wrap(path, settings))}`, {
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
  if (!isPluginModule(module)) throw loadError(pkg, 'default export is not a plugin module (manifest, configSchema, register)');
  return module;
}

function isPluginModule(value: unknown): value is PluginModule {
  const v = value as Partial<PluginModule> | undefined;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.manifest === 'object' &&
    typeof v.manifest?.id === 'string' &&
    typeof v.register === 'function' &&
    typeof (v.configSchema as { safeParse?: unknown } | undefined)?.safeParse === 'function'
  );
}

function loadError(source: string, message: string, cause?: unknown): WarrenError {
  return new WarrenError(ErrorCode.PluginLoad, `plugin ${source}: ${message}`, { terminal: true, cause });
}
