import type { PluginManifest } from '../plugin-api/manifest.js';

/**
 * Built-in plugins, by config key, with the package that provides each. Core does not import them statically: it
 * loads them by package name exactly as it loads custom plugins (or, in the image's bundle, from the loaders the
 * bundle links in, see {@link linkBuiltinPlugins}), so a built-in has no access a custom one lacks.
 */
export const BUILTIN_PLUGINS: Readonly<Record<string, string>> = Object.freeze({
  tls: '@warren/plugin-tls',
  http2: '@warren/plugin-http2',
  keepalive: '@warren/plugin-keepalive',
  websocket: '@warren/plugin-websocket',
  grpc: '@warren/plugin-grpc',
  sse: '@warren/plugin-sse',
  dns: '@warren/plugin-dns',
  firewall: '@warren/plugin-firewall',
});

/** Imports a plugin package; injectable so tests can load modules that are not installed packages. */
export type PluginImporter = (packageName: string) => Promise<unknown>;

/** Loaders of the built-in plugins compiled into a bundled entry, by package name (see {@link linkBuiltinPlugins}). */
const linked = new Map<string, () => Promise<unknown>>();

/**
 * Called by a bundled entry (scripts/bundle.js) before anything else runs: the built-in plugins come from the
 * bundle, sharing its one copy of `@warren/core/plugin`, instead of from their packages. Other packages still load
 * by name.
 */
export function linkBuiltinPlugins(loaders: Readonly<Record<string, () => Promise<unknown>>>): void {
  const unknown = Object.keys(loaders).filter((pkg) => !Object.values(BUILTIN_PLUGINS).includes(pkg));
  if (unknown.length > 0) throw new Error(`${unknown.join(', ')} is not a built-in plugin`);
  for (const [pkg, load] of Object.entries(loaders)) linked.set(pkg, load);
}

/** Imports a plugin package: a built-in linked into the bundle, else by package name. */
export const importPluginPackage: PluginImporter = (name) => linked.get(name)?.() ?? import(name);

/**
 * Imports every built-in plugin package and returns the manifests that load, without registering anything.
 * Packages that fail to import are skipped: the result only improves diagnostics for disabled plugins.
 */
export async function loadBuiltinManifests(importer: PluginImporter = importPluginPackage): Promise<PluginManifest[]> {
  const manifests: PluginManifest[] = [];
  for (const pkg of Object.values(BUILTIN_PLUGINS)) {
    try {
      const imported = (await importer(pkg)) as { default?: { manifest?: PluginManifest }; manifest?: PluginManifest } | undefined;
      const manifest = imported?.default?.manifest ?? imported?.manifest;
      if (manifest && typeof manifest.id === 'string') manifests.push(manifest);
    } catch {
      // Not installed or broken: that plugin simply gets no better message.
    }
  }
  return manifests;
}
