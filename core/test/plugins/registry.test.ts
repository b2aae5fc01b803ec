import test from 'ava';
import { container as rootContainer } from 'tsyringe';
import { z } from 'zod';
import { parseConfig } from '../../src/config/load.js';
import { TOKENS } from '../../src/di/tokens.js';
import { ErrorCode, isWarrenError } from '../../src/errors.js';
import type { ControlPlugin, FinalizerCandidate } from '../../src/plugin-api/control.js';
import { inject, injectable } from '../../src/plugin-api/index.js';
import { defineAnnotation, defineManifest, type PluginConfig, type PluginManifest } from '../../src/plugin-api/manifest.js';
import { definePlugin, type PluginModule } from '../../src/plugin-api/module.js';
import type { RouteBinding, UpstreamPlugin } from '../../src/plugin-api/upstream.js';
import { checkPlugins, HostedControlPlugin, registerPlugins, resolvePlugins } from '../../src/plugins/registry.js';
import { BUILTIN_PLUGINS } from '../../src/plugins/builtin.js';
import type { Route } from '../../src/routes/types.js';
import { loadTestPlugins } from '../../src/proxy/testing.js';
import { testRoute } from '../../src/testing/index.js';

type ManifestFields = Omit<PluginManifest, 'kind'>;

const fields = (over: Partial<ManifestFields>): ManifestFields => ({
  id: 'acme.thing',
  name: 'thing',
  description: 'test plugin',
  coreRange: '^0.1.0',
  order: 0,
  ...over,
});

class Binds implements UpstreamPlugin {
  bind(route: Route): RouteBinding {
    return { route, options: {} };
  }
}

class Reacts implements ControlPlugin {
  async onRoutesChanged(): Promise<void> {}
}

/** A policy plugin module (upstream class `Binds`) with the given manifest fields and settings schema. */
const module = (over: Partial<ManifestFields>, configSchema: z.ZodType = z.object({}).strict()): PluginModule =>
  definePlugin({ manifest: defineManifest({ ...fields(over), kind: 'policy', configSchema }), plugin: Binds });

const check = (...modules: PluginModule[]) => checkPlugins(modules.map((m, i) => ({ module: m, source: `src${i}` })));

test('built-in plugins load by package name; defaults decide which run', async (t) => {
  const loaded = await resolvePlugins(parseConfig({}));
  const ids = loaded.map((p) => p.module.manifest.id);
  t.true(ids.includes('upstream.tls'));
  t.false(ids.includes('cloud.dns'), 'dns is off by default');
  const kinds = loaded.map((p) => p.module.manifest.kind);
  t.deepEqual(
    kinds,
    [...kinds].sort((a, b) => ['transport', 'protocol', 'policy', 'control'].indexOf(a) - ['transport', 'protocol', 'policy', 'control'].indexOf(b)),
  );
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
  const err = await t.throwsAsync(resolvePlugins(parseConfig({ extraPlugins: [{ package: 'acme-header', config: { headr: 'x' } }] }), importer));
  t.regex(err!.message, /unknown setting "extraPlugins\[0\]\.config\.headr"/);
  const missing = await t.throwsAsync(resolvePlugins(parseConfig({ extraPlugins: [{ package: 'no-such-plugin-pkg' }] })));
  t.true(isWarrenError(missing, ErrorCode.PluginLoad));
});

test('manifest checks: core range, id format, duplicate claims', (t) => {
  const version = t.throws(() => check(module({ coreRange: '^9.0.0' })));
  t.true(isWarrenError(version, ErrorCode.PluginVersion));
  t.throws(() => check(module({ id: 'NoNamespace' })), { message: /namespaced/ });
  t.throws(() => check(module({ order: 1.5 })), { message: /plugin src0: manifest\.order must be an integer/ });
  t.throws(() => check(module({ id: 'a.one' }), module({ id: 'a.one' })), { message: /plugin id a\.one is provided by both src0 and src1/ });
  t.throws(() => check(module({ id: 'a.one', protocols: ['grpc'] }), module({ id: 'b.two', protocols: ['grpc'] })), {
    message: /backend protocol "grpc" is claimed by a\.one and b\.two/,
  });
  t.throws(() => check(module({ annotations: [defineAnnotation({ key: 'backend-protocol', description: '', example: '', schema: z.string() })] })), {
    message: /claimed by core/,
  });
  const dependency = t.throws(() => check(module({ id: 'a.one', dependsOn: ['b.missing'] })));
  t.true(isWarrenError(dependency, ErrorCode.PluginDependency));
  t.regex(dependency!.message, /plugin a\.one \(src0\) needs plugin b\.missing/);
});

test('the kind selects the class: a control plugin needs onRoutesChanged, an upstream plugin at least one hook', (t) => {
  const control = defineManifest({ ...fields({ id: 'acme.control' }), kind: 'control', configSchema: z.object({}).strict() });
  const policy = defineManifest({ ...fields({ id: 'acme.policy' }), kind: 'policy', configSchema: z.object({}).strict() });
  t.notThrows(() => check(definePlugin({ manifest: control, plugin: Reacts }), definePlugin({ manifest: policy, plugin: Binds })));

  // Types stop these at compile time for TypeScript authors; core still refuses them for plain JavaScript modules.
  const upstreamAsControl = { kind: 'control', manifest: control, plugin: Binds } as unknown as PluginModule;
  const err = t.throws(() => check(upstreamAsControl));
  t.true(isWarrenError(err, ErrorCode.PluginLoad));
  t.is(err!.message, 'plugin acme.control (src0): kind "control" needs a ControlPlugin class with onRoutesChanged(table, ctx); class Binds has none');

  class Hookless {
    provision(): void {}
  }
  const hookless = definePlugin({ manifest: policy, plugin: Hookless });
  t.throws(() => check(hookless), {
    message:
      'plugin acme.policy (src0): plugin must be an UpstreamPlugin class with at least one of bind, configureTransport, createPool, interceptor, mapError, onUpgrade, upgradeProfile; class Hookless has none',
  });
  t.throws(() => check(definePlugin({ manifest: policy, plugin: Reacts as never })), { message: /class Reacts has none/ });
  t.throws(() => check(definePlugin({ manifest: control, plugin: Reacts, upstream: Hookless })), {
    message: /plugin acme\.control \(src0\): upstream must be an UpstreamPlugin class .*class Hookless has none/,
  });
  const mismatched = { ...definePlugin({ manifest: policy, plugin: Binds }), kind: 'control' } as unknown as PluginModule;
  t.throws(() => check(mismatched), { message: /module\.kind "control" differs from manifest\.kind "policy"; make the module with definePlugin/ });
});

test('a default export that is not a definePlugin module is refused by name', async (t) => {
  const oldStyle = { manifest: fields({ id: 'acme.old' }), configSchema: z.object({}).strict(), register() {} };
  const importer = async (name: string) => (name === 'acme-old' ? { default: oldStyle } : import(name));
  const err = await t.throwsAsync(resolvePlugins(parseConfig({ extraPlugins: [{ package: 'acme-old' }] }), importer));
  t.true(isWarrenError(err, ErrorCode.PluginLoad));
  t.regex(err!.message, /plugin acme-old: default export is not a plugin module: make it with definePlugin\(\{ manifest, plugin \}\)/);
});

test('core registers each class under the token its kind calls for, with typed settings and its manifest id', (t) => {
  const seen: Array<PluginConfig<typeof manifest>> = [];
  const manifest = defineManifest({
    ...fields({ id: 'acme.greeter', name: 'greeter' }),
    kind: 'policy',
    configSchema: z.object({ greeting: z.string().default('hi') }).strict(),
  });
  @injectable()
  class Greeter implements UpstreamPlugin {
    constructor(@inject(manifest.configToken) config: PluginConfig<typeof manifest>) {
      seen.push(config);
    }
    bind(route: Route): RouteBinding {
      return { route, options: {} };
    }
  }
  const control = defineManifest({ ...fields({ id: 'acme.watcher', name: 'watcher' }), kind: 'control', configSchema: z.object({}).strict() });
  const root = rootContainer.createChildContainer();
  registerPlugins(
    root,
    loadTestPlugins([
      { module: definePlugin({ manifest, plugin: Greeter }), config: { greeting: 'hello' } },
      { module: definePlugin({ manifest: control, plugin: Reacts, upstream: Binds }) },
    ]),
  );
  const child = root.createChildContainer();
  const upstream = child.resolveAll(TOKENS.UpstreamPlugin);
  t.deepEqual(
    upstream.map((e) => e.manifest.id),
    ['acme.greeter', 'acme.watcher'],
    "the control plugin's upstream side too, under its manifest",
  );
  t.true(upstream[0]!.plugin instanceof Greeter);
  t.true(upstream[1]!.plugin instanceof Binds);
  t.deepEqual(seen, [{ greeting: 'hello' }], 'the settings reached the class typed, parsed by its schema');
  t.is(child.resolveAll(TOKENS.UpstreamPlugin)[0], upstream[0], 'one instance per container');
  t.not(root.createChildContainer().resolveAll(TOKENS.UpstreamPlugin)[0]!.plugin, upstream[0]!.plugin, 'a fresh one in the next plugin set');
  const [watcher] = child.resolveAll(TOKENS.ControlPlugin);
  t.is(watcher!.id, 'acme.watcher');
  t.true(watcher instanceof HostedControlPlugin && watcher.plugin instanceof Reacts);
});

test('a control plugin sees annotations parsed in needsFinalizer, as on routes in onRoutesChanged', async (t) => {
  const KEEP = defineAnnotation({
    key: 'test-keep',
    description: '',
    example: 'true',
    schema: z
      .string()
      .trim()
      .pipe(z.enum(['true', 'false']))
      .transform((v) => v === 'true'),
  });
  const manifest = defineManifest({ ...fields({ id: 'acme.keeper' }), kind: 'control', annotations: [KEEP], configSchema: z.object({}).strict() });
  const asked: FinalizerCandidate[] = [];
  const keeper = {
    async onRoutesChanged() {},
    needsFinalizer(ingress: FinalizerCandidate): boolean {
      asked.push(ingress);
      return KEEP.get(ingress) !== false;
    },
  };
  const hosted = new HostedControlPlugin(manifest, keeper);
  t.false(hosted.needsFinalizer({ namespace: 'ns', name: 'a', annotations: { 'warren.dev/test-keep': ' false', other: 'x' } }));
  t.true(hosted.needsFinalizer({ namespace: 'ns', name: 'b', annotations: { 'warren.dev/test-keep': 'nope' } }), 'a value the schema refuses is absent');
  t.true(hosted.needsFinalizer({ namespace: 'ns', name: 'c', annotations: { 'test-keep': 'false' } }), "only prefixed keys are Warren's");
  t.deepEqual(asked, [
    { namespace: 'ns', name: 'a', annotations: { 'test-keep': false } },
    { namespace: 'ns', name: 'b', annotations: {} },
    { namespace: 'ns', name: 'c', annotations: {} },
  ]);
  t.false(new HostedControlPlugin(manifest, new Reacts()).needsFinalizer({ namespace: 'ns', name: 'a', annotations: {} }), 'no hook: no finalizer');
});

test('defineAnnotation: one declaration is the spec and the typed accessor', (t) => {
  const LIMIT = defineAnnotation({ key: 'test-limit', description: 'd', example: '5', schema: z.string().regex(/^\d+$/).transform(Number) });
  const route = testRoute({ endpoints: [], annotations: { 'test-limit': 7 } });
  const limit: number | undefined = LIMIT.get(route);
  t.is(limit, 7);
  t.is(LIMIT.get(testRoute({ endpoints: [] })), undefined);
  t.is(LIMIT.schema.parse('12'), 12);
  t.like(LIMIT, { key: 'test-limit', description: 'd', example: '5' });
  t.true(Object.isFrozen(LIMIT));
});

test('every built-in plugin folder exists with a manifest', async (t) => {
  for (const [name, pkg] of Object.entries(BUILTIN_PLUGINS)) {
    const mod = (await import(pkg)) as { default: PluginModule };
    t.is(mod.default.manifest.name, name);
  }
});
