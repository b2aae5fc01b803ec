import test from 'ava';
import { z } from 'zod';
import { parseConfig } from '../../src/config/load.js';
import { ErrorCode, isWarrenError } from '../../src/errors.js';
import type { PluginManifest } from '../../src/plugin-api/manifest.js';
import type { PluginModule } from '../../src/plugin-api/module.js';
import { checkManifests, resolvePlugins } from '../../src/plugins/registry.js';
import { BUILTIN_PLUGINS } from '../../src/plugins/builtin.js';

const manifest = (over: Partial<PluginManifest>): PluginManifest => ({
  id: 'acme.thing',
  name: 'thing',
  description: 'test plugin',
  coreRange: '^0.1.0',
  kind: 'policy',
  order: 0,
  ...over,
});

const module = (over: Partial<PluginManifest>, schema: z.ZodType = z.object({}).strict()): PluginModule => ({
  manifest: manifest(over),
  configSchema: schema,
  register() {},
});

test('built-in plugins load by package name; defaults decide which run', async (t) => {
  const loaded = await resolvePlugins(parseConfig({}));
  const ids = loaded.map((p) => p.module.manifest.id);
  t.true(ids.includes('upstream.tls'));
  t.false(ids.includes('cloud.dns'), 'dns is off by default');
  const kinds = loaded.map((p) => p.module.manifest.kind);
  t.deepEqual(kinds, [...kinds].sort((a, b) => ['transport', 'protocol', 'policy', 'control'].indexOf(a) - ['transport', 'protocol', 'policy', 'control'].indexOf(b)));
});

test('a plugin whose dependency is disabled stops start-up with a clear error', async (t) => {
  const err = await t.throwsAsync(resolvePlugins(parseConfig({ plugins: { http2: { enabled: false } } })));
  t.true(isWarrenError(err, ErrorCode.PluginDependency));
  t.regex(err!.message, /upstream\.grpc .* needs plugin upstream\.http2/);
});

test('an unknown built-in plugin name is refused', async (t) => {
  const err = await t.throwsAsync(resolvePlugins(parseConfig({ plugins: { grpcc: { enabled: true } } })));
  t.regex(err!.message, /unknown plugin "plugins\.grpcc"/);
});

test('custom plugins load by package name with their own strict settings', async (t) => {
  const custom = module({ id: 'acme.header', name: 'header' }, z.object({ header: z.string().default('x-a') }).strict());
  const importer = async (name: string) => {
    if (name === 'acme-header') return { default: custom };
    return import(name);
  };
  const loaded = await resolvePlugins(parseConfig({ extraPlugins: [{ package: 'acme-header', config: {} }] }), importer);
  const found = loaded.find((p) => p.module.manifest.id === 'acme.header');
  t.deepEqual(found?.config, { header: 'x-a' });
  const err = await t.throwsAsync(
    resolvePlugins(parseConfig({ extraPlugins: [{ package: 'acme-header', config: { headr: 'x' } }] }), importer),
  );
  t.regex(err!.message, /unknown setting "extraPlugins\[0\]\.config\.headr"/);
  const missing = await t.throwsAsync(resolvePlugins(parseConfig({ extraPlugins: [{ package: 'no-such-plugin-pkg' }] })));
  t.true(isWarrenError(missing, ErrorCode.PluginLoad));
});

test('manifest checks: core range, id format, duplicate claims', (t) => {
  const version = t.throws(() => checkManifests([{ manifest: manifest({ coreRange: '^9.0.0' }), source: 'x' }]));
  t.true(isWarrenError(version, ErrorCode.PluginVersion));
  t.throws(() => checkManifests([{ manifest: manifest({ id: 'NoNamespace' }), source: 'x' }]), { message: /namespaced/ });
  t.throws(
    () =>
      checkManifests([
        { manifest: manifest({ id: 'a.one', protocols: ['grpc'] }), source: 'a' },
        { manifest: manifest({ id: 'b.two', protocols: ['grpc'] }), source: 'b' },
      ]),
    { message: /backend protocol "grpc" is claimed by a\.one and b\.two/ },
  );
  t.throws(() => checkManifests([{ manifest: manifest({ annotations: [{ key: 'backend-protocol', description: '', example: '', schema: z.string() }] }), source: 'x' }]), {
    message: /claimed by core/,
  });
});

test('every built-in plugin folder exists with a manifest', async (t) => {
  for (const [name, pkg] of Object.entries(BUILTIN_PLUGINS)) {
    const mod = (await import(pkg)) as { default: PluginModule };
    t.is(mod.default.manifest.name, name);
  }
});
