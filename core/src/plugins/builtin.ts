import type { PluginManifest } from '../plugin-api/manifest.js';

/**
 * Built-in plugins, by config key, with the package that provides each. Core does not import them statically: it
 * loads them by package name exactly as it loads custom plugins, so a built-in has no access a custom one lacks.
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

/**
 * Imports every built-in plugin package and returns the manifests that load, without registering anything.
 * Packages that fail to import are skipped: the result only improves diagnostics for disabled plugins.
 */
export async function loadBuiltinManifests(importer: (packageName: string) => Promise<unknown> = (name) => import(name)): Promise<PluginManifest[]> {
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
