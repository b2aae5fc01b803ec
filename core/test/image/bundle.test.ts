/**
 * The image's core is a bundle (scripts/bundle.js, run by the Dockerfile's assembly step). Here it runs as the image
 * runs it, from the assembled tree with a custom plugin installed the way docs/helm.md says (copied into
 * node_modules): the built-in plugins must come from the bundle (the tree has no compiled plugin packages), and the
 * custom plugin's `@warren/core/plugin` must be the bundle's own modules, or its injected constructor could not be
 * built by the bundled container (tsyringe keeps `@injectable()` metadata in module state).
 */
import test from 'ava';
import { cpSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startEdgeSimulator } from '../../src/edge-simulator/index.js';
import { cleanUpAfter, describeExit, spawnLogged, tempDir, waitUntil } from '../e2e/support/children.js';
import { send } from '../e2e/support/http.js';
import { baseEnv, NODE_BIN } from '../e2e/support/paths.js';
import { BUILTIN_PLUGINS, loadBuiltinManifests } from '../../src/plugins/builtin.js';
import { assembleRuntimeTree, final, ROOT } from './dockerfile.js';

const PLUGIN = '@warren-examples/plugin-request-id';
const ORIGIN = new URL('../../../../examples/local/origin/server.js', import.meta.url).href;

interface DemoOrigin {
  servers: Array<{ name: string; port: number }>;
  close(): Promise<void>;
}

test('the bundled core runs the built-in plugins from the bundle and a custom plugin from node_modules on its own copy of the contract', async (t) => {
  const out = assembleRuntimeTree(t);
  // What `npm ci` links for the core workspace, and a custom plugin with its peer dependency, as a derived image has.
  const modules = join(out, 'node_modules');
  mkdirSync(join(modules, '@warren'), { recursive: true });
  symlinkSync(join(out, 'core'), join(modules, '@warren', 'core'), 'dir');
  symlinkSync(join(ROOT, 'node_modules', 'zod'), join(modules, 'zod'), 'dir');
  const plugin = join(modules, PLUGIN);
  mkdirSync(plugin, { recursive: true });
  cpSync(join(ROOT, 'examples/plugins/request-id/package.json'), join(plugin, 'package.json'));
  cpSync(join(ROOT, 'examples/plugins/request-id/build/src'), join(plugin, 'build/src'), { recursive: true });

  const { startDemoOrigin } = (await import(ORIGIN)) as { startDemoOrigin: (o: unknown) => Promise<DemoOrigin> };
  const origin = await startDemoOrigin({ services: [{ name: 'web', port: 0 }] });
  t.teardown(() => origin.close());
  const edge = await startEdgeSimulator({ edgeListeners: 1, eyeball: { host: '127.0.0.1', port: 0 } });
  t.teardown(() => edge.close());

  const folder = tempDir('bundle-folder');
  writeFileSync(join(folder, 'ingress.yaml'), readFileSync(join(ROOT, 'examples/local/ingress.yaml')));
  writeFileSync(join(folder, 'services.yaml'), readFileSync(join(ROOT, 'examples/local/services.yaml'), 'utf8').replace('port: 3001', `port: ${origin.servers[0]!.port}`));
  const settings = join(tempDir('bundle-settings'), 'warren.json');
  writeFileSync(
    settings,
    JSON.stringify({
      tunnel: { edgeAddresses: [...edge.edgeAddresses], edgeCaFile: edge.caFile, haConnections: 1 },
      server: { listen: '127.0.0.1:0' },
      extraPlugins: [{ package: PLUGIN, config: { header: 'x-bundle-request-id' } }],
    }),
  );

  // The image's own command line, run in the assembled tree.
  const argv = JSON.parse(final.instructions.find((i) => i.op === 'ENTRYPOINT')!.args) as string[];
  const warren = spawnLogged('warren-bundle', NODE_BIN, [...argv.slice(1), '--local', folder, '--config', settings], {
    cwd: out,
    env: baseEnv({ TUNNEL_TOKEN: edge.token }),
  });
  cleanUpAfter(t, warren);
  await Promise.race([
    edge.waitForRegistrations(1, 30_000),
    warren.exited.then((exit) => Promise.reject(new Error(`warren exited: ${describeExit(exit)}\n${warren.stderr()}${warren.stdout()}`))),
  ]);

  let answer = await send(edge.eyeballUrl, '/hello', { host: 'app.localhost' });
  await waitUntil('the route to be served', async () => (answer = await send(edge.eyeballUrl, '/hello', { host: 'app.localhost' })).status === 200, 10_000).catch(
    (err: Error) => {
      throw new Error(`${err.message} (last answer ${answer.status}); warren's log:\n${warren.stdout().slice(-3000)}`);
    },
  );
  t.is(answer.echo?.service, 'web');
  const id = answer.echo?.headers?.['x-bundle-request-id'];
  t.regex(String(id), /^[0-9a-f-]{36}$/, 'the custom plugin, built with its settings injected, added the header upstream');
  t.is(answer.headers['x-bundle-request-id'], id, 'and returned it');
  t.truthy(answer.echo?.headers?.['cf-ray'], 'the request crossed the tunnel');
  // The metrics endpoint collects prom-client's default metrics, whose CPU counters are where the bundle leaves
  // @opentelemetry/api out.
  const [, health] = await warren.waitForOutput(/"address":"([^"]+)","msg":"health and metrics server listening"/, 10_000, 'the health address');
  const metrics = await send(`http://${health}`, '/metrics');
  t.is(metrics.status, 200);
  t.regex(metrics.body, /^process_cpu_seconds_total \d/m);
  t.false(warren.stdout().includes('"level":50'), 'no error logged');

  warren.signal('SIGTERM');
  const exit = await warren.exited;
  t.is(exit.code, 0, describeExit(exit));
});

test("the bundle takes from Node's built-in modules only the names it imports, without esbuild's CommonJS interop copy", (t) => {
  const out = assembleRuntimeTree(t);
  const dir = join(out, 'core/build/src');
  const chunks = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js'));
  const code = chunks.map((f) => readFileSync(join(dir, f), 'utf8')).join('\n');
  // Such a copy defines a getter per export of the built-in module for every importing module, and reading the
  // exports' descriptors makes Node load what some of them hide behind lazy getters (scripts/bundle.js).
  t.deepEqual([...new Set(code.match(/__toESM\(require_node_\w+\(\)/g) ?? [])], []);
  t.regex(code, /=__require\("node:util"\),\{parseArgs\}=/, "the CLI's one import from node:util, by name");
});

test('only the chunks that name require() make one (a require function and import.meta cost CPU per chunk at start)', (t) => {
  const out = assembleRuntimeTree(t);
  const dir = join(out, 'core/build/src');
  const banner = /^import \{ createRequire as __createRequire \} from 'node:module'; const require = __createRequire\(import\.meta\.url\);$/m;
  const chunks = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js') && !f.startsWith('warm-compile-cache'));
  const withBanner = chunks.filter((f) => banner.test(readFileSync(join(dir, f), 'utf8')));
  const usesRequire = (f: string) => /(?<![\w$.])require(?![\w$])/.test(readFileSync(join(dir, f), 'utf8').replace(banner, ''));
  t.deepEqual(
    chunks.filter((f) => !withBanner.includes(f) && usesRequire(f)),
    [],
    'a chunk naming require() has the banner',
  );
  t.deepEqual(
    withBanner.filter((f) => !usesRequire(f)),
    [],
    'a chunk that never names require() has no banner',
  );
  t.true(withBanner.length > 0 && withBanner.length < chunks.length / 4, `${withBanner.length} of ${chunks.length} chunks make a require()`);
});

test('the built-in plugins come from one chunk, one dynamic import for all (start-up reads every manifest)', async (t) => {
  const out = assembleRuntimeTree(t);
  const dir = join(out, 'core/build/src');
  const chunks = readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.js') && !f.startsWith('warm-compile-cache'));
  const ids = (await loadBuiltinManifests()).map((m) => m.id);
  t.is(ids.length, Object.keys(BUILTIN_PLUGINS).length);
  const holding = new Set(ids.flatMap((id) => chunks.filter((f) => readFileSync(join(dir, f), 'utf8').includes(`id:${JSON.stringify(id)}`))));
  t.is(holding.size, 1, `manifests in ${[...holding].join(', ')}`);
  const main = readFileSync(join(dir, 'main.js'), 'utf8');
  const imports = [...main.matchAll(/import\("\.\/([^"]+)"\)/g)].map((m) => m[1]);
  t.is(imports.length, 2, `the bin imports the plugins' chunk and core's own entry: ${imports.join(', ')}`);
  t.true(imports.includes([...holding][0]));
});
