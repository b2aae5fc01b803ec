import type { PluginModule } from '../plugin-api/module.js';
import { BUILTIN_PLUGINS } from '../plugins/builtin.js';
import { compareManifests } from '../plugins/registry.js';

/**
 * Imports every built-in plugin package (without enabling or registering anything) so that the generators can
 * read manifests and settings schemas. Sorted in chain order, like the registry sorts enabled plugins.
 */
export async function loadBuiltinPluginModules(): Promise<PluginModule[]> {
  const modules: PluginModule[] = [];
  for (const [name, pkg] of Object.entries(BUILTIN_PLUGINS)) {
    const imported = (await import(pkg)) as { default?: PluginModule };
    const module = imported.default;
    if (!module?.manifest || module.manifest.name !== name) {
      throw new Error(`built-in plugin package ${pkg} does not default-export the plugin module "${name}"`);
    }
    modules.push(module);
  }
  return modules.sort((a, b) => compareManifests(a.manifest, b.manifest));
}
