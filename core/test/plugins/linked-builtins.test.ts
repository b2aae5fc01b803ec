/**
 * Built-in plugins linked into a bundle (`linkBuiltinPlugins`, called by the bundle's entry): `resolvePlugins` and
 * `loadBuiltinManifests` take them from the linked loaders, everything else still loads by package name. Linking is
 * process-wide, so this file has its own worker, links once and runs its tests one after another.
 */
import test from 'ava';
import { parseConfig } from '../../src/config/load.js';
import { importPluginPackage, linkBuiltinPlugins, loadBuiltinManifests } from '../../src/plugins/builtin.js';
import { resolvePlugins } from '../../src/plugins/registry.js';

const SSE = '@warren/plugin-sse';
const loads: string[] = [];
const linked = (await import(SSE)) as { default: { manifest: { id: string; name: string } } };
linkBuiltinPlugins({
  [SSE]: async () => {
    loads.push(SSE);
    return linked;
  },
});

test.serial('only built-in plugin packages can be linked, and a failed call links nothing', (t) => {
  t.throws(() => linkBuiltinPlugins({ '@warren/plugin-websocket': async () => ({}), '@acme/warren-plugin-x': async () => ({}) }), {
    message: '@acme/warren-plugin-x is not a built-in plugin',
  });
});

test.serial('a linked built-in comes from its loader; other packages still load by name', async (t) => {
  loads.length = 0;
  t.is(await importPluginPackage(SSE), linked);
  t.deepEqual(loads, [SSE]);
  const websocket = (await importPluginPackage('@warren/plugin-websocket')) as { default: { manifest: { name: string } } };
  t.is(websocket.default.manifest.name, 'websocket', 'not linked (the failed call above linked nothing): imported by name');
  await t.throwsAsync(importPluginPackage('@acme/not-installed'), { code: 'ERR_MODULE_NOT_FOUND' });
});

test.serial('resolvePlugins and loadBuiltinManifests use the linked loader by default', async (t) => {
  loads.length = 0;
  const plugins = await resolvePlugins(parseConfig({}));
  t.true(
    plugins.some((p) => p.module === linked.default),
    'the enabled SSE plugin is the linked module',
  );
  t.true(loads.includes(SSE));
  loads.length = 0;
  const manifests = await loadBuiltinManifests();
  t.true(manifests.includes(linked.default.manifest as never));
  t.deepEqual(loads, [SSE]);
});
