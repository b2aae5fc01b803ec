/**
 * The controller's resident module graph must not contain `@kubernetes/client-node`: importing it costs ~80 MB of
 * RSS (its generated models load as one graph), which is what kept the controller over its memory budget at
 * 10,000 Ingresses. Warren talks to the API server through its own client (core/src/k8s/api); client-node is a
 * type-only dependency at run time (a devDependency) and a test driver in tests.
 *
 * Nor undici's package entry, which loads every feature undici has (see core/src/http/undici.ts).
 *
 * Nor the `cloudflare` SDK, until the Cloudflare API is used: token mode without the DNS or firewall plugin never
 * calls it, and its module graph costs tens of MB of RSS.
 *
 * The check loads what `warren` loads — the entry's assembly module and every built-in plugin package — in a fresh
 * Node process with a resolve hook that records every module, then looks for either package among them. A second
 * check runs the real controller in token mode (local mode: tunnel token, edge simulator) through a request and a
 * shutdown with the same hook.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { BUILTIN_PLUGINS } from '../../src/plugins/builtin.js';
import { cleanUpAfter, spawnLogged, tempDir, waitUntil } from '../e2e/support/children.js';
import { send } from '../e2e/support/http.js';
import { baseEnv, MAIN_JS, NODE_BIN, REPO_ROOT } from '../e2e/support/paths.js';

const run = promisify(execFile);
const bootstrap = new URL('../../src/bootstrap.js', import.meta.url).href;
const uninstall = new URL('../../src/uninstall.js', import.meta.url).href;

async function loadedModules(entries: readonly string[]): Promise<string[]> {
  const script = `
    import { registerHooks } from 'node:module';
    const seen = new Set();
    registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.add(r.url); return r; } });
    await import('reflect-metadata');
    for (const entry of ${JSON.stringify(entries)}) await import(entry);
    process.stdout.write(JSON.stringify([...seen]));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], {
    cwd: fileURLToPath(new URL('../../../', import.meta.url)),
    maxBuffer: 16 * 1024 * 1024,
  });
  return JSON.parse(stdout) as string[];
}

test('the controller and its built-in plugins load without @kubernetes/client-node', async (t) => {
  const modules = await loadedModules([bootstrap, uninstall, ...Object.values(BUILTIN_PLUGINS)]);
  // The graph was really walked: Warren's own API client and each plugin package are in it.
  t.true(
    modules.some((m) => m.endsWith('/k8s/api/client.js')),
    'own Kubernetes client loaded',
  );
  t.true(
    modules.some((m) => m.includes('/plugins/tls/')),
    'tls plugin loaded',
  );
  t.true(modules.length > 50, `only ${modules.length} modules seen`);
  t.deepEqual(
    modules.filter((m) => m.includes('@kubernetes/client-node')),
    [],
  );
  t.deepEqual(modules.filter(isCloudflareSdk), [], 'the cloudflare SDK is not loaded by importing Warren');
  // undici's package entry loads fetch, WebSocket, EventSource, caches and mocks: ~50 ms of start-up CPU and
  // ~12 MiB that Warren never uses. Its dispatchers come from core/src/http/undici.ts instead.
  t.true(modules.some((m) => m.endsWith('/undici/lib/dispatcher/pool.js')), 'undici pools loaded');
  t.deepEqual(
    modules.filter((m) => m.endsWith('/undici/index.js')),
    [],
    "undici's package entry is not loaded",
  );
});

const isCloudflareSdk = (url: string): boolean => url.includes('/node_modules/cloudflare/');

test('a token-mode controller serving traffic never loads the cloudflare SDK', async (t) => {
  const dir = tempDir('resident-token-mode');
  const list = join(dir, 'modules.json');
  const hook = join(dir, 'record-modules.mjs');
  writeFileSync(
    hook,
    `import { registerHooks } from 'node:module';
import { writeFileSync } from 'node:fs';
const seen = new Set();
registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.add(r.url); return r; } });
process.on('exit', () => writeFileSync(${JSON.stringify(list)}, JSON.stringify([...seen])));
`,
  );
  const warren = spawnLogged(
    'warren-token-mode',
    NODE_BIN,
    ['--import', hook, MAIN_JS, '--local', join(REPO_ROOT, 'examples', 'local'), '--set', 'local.eyeballListen=127.0.0.1:0', '--set', 'server.listen=127.0.0.1:0'],
    { cwd: REPO_ROOT, env: baseEnv() },
  );
  cleanUpAfter(t, warren);
  const [, eyeball] = await warren.waitForOutput(/Requests enter the built-in edge simulator at (http:\/\/127\.0\.0\.1:\d+)/, 60_000, 'the banner');
  const [, health] = await warren.waitForOutput(/"address":"([^"]+)","msg":"health and metrics server listening"/, 30_000, 'the health address');
  await waitUntil('/readyz 200', async () => (await send(`http://${health}`, '/readyz', { timeoutMs: 2_000 }).catch(() => undefined))?.status === 200, 30_000);
  // A request crosses the edge simulator, the tunnel and the pipeline (the demo origin is not running: a 5xx
  // generated by Warren).
  t.regex(String((await send(eyeball!, '/', { host: 'app.localhost' })).status), /^5\d\d$/);
  const exit = await warren.stop(15_000);
  t.is(exit.code, 0, warren.tail());
  const modules = JSON.parse(readFileSync(list, 'utf8')) as string[];
  t.true(
    modules.some((m) => m.endsWith('/tunnel/connector.js')),
    'the connector ran',
  );
  t.deepEqual(modules.filter(isCloudflareSdk), []);
});

test('the check detects the cloudflare SDK once a client is made', async (t) => {
  const client = new URL('../../src/cloudflare/client.js', import.meta.url).href;
  const script = `
    import { registerHooks } from 'node:module';
    const seen = new Set();
    registerHooks({ resolve(specifier, context, next) { const r = next(specifier, context); seen.add(r.url); return r; } });
    const { createCloudflareClientFactory } = await import(${JSON.stringify(client)});
    const { pino } = await import('pino');
    const { parseConfig } = await import(${JSON.stringify(new URL('../../src/config/load.js', import.meta.url).href)});
    createCloudflareClientFactory({ config: parseConfig({}).cloudflare, logger: pino({ level: 'silent' }), env: { CLOUDFLARE_API_TOKEN: 'x' } })();
    process.stdout.write(JSON.stringify([...seen]));
  `;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { cwd: REPO_ROOT, maxBuffer: 16 * 1024 * 1024 });
  t.true((JSON.parse(stdout) as string[]).some(isCloudflareSdk));
});

test('the check detects client-node when something does load it', async (t) => {
  const modules = await loadedModules(['@kubernetes/client-node']);
  t.true(modules.some((m) => m.includes('@kubernetes/client-node')));
});
